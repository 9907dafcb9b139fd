"""The record of which low-level runtime `runtime configure` chained the shim to, per engine.

`<toolkit config>.chains.json` maps "engine:engine config" to {"runtime": the binary the engine's
default ran, "before"/"after": the toolkit config's text around configure's edit}; the binary is
first in the toolkit config's `[container-hooks-runtime] runtimes`. `runtime unconfigure` (chts.ctk.chaining)
takes back what its configure added; the node installer keeps the chained binary first when it
syncs a ConfigMap's config.toml.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Final, List, Optional

from chts.base.config_files import parse_json_object
from chts.config.edit import apply_assignments, read_toolkit_config
from chts.config.toolkit import parse_config, runtimes_of
from chts.errors import ToolkitError

RECORD_SUFFIX = ".chains.json"
SECTION: Final = "container-hooks-runtime"
KEY: Final = "runtimes"


def record_key(engine: str, engine_config: str) -> str:
    return f"{engine}:{os.path.abspath(engine_config)}"


def load_records(toolkit_config: str) -> Dict[str, Any]:
    path = toolkit_config + RECORD_SUFFIX
    text = read_toolkit_config(path)
    return {} if text is None else parse_json_object(text, path)


def records_bytes(records: Dict[str, Any]) -> Optional[bytes]:
    return json.dumps(records, indent=2, sort_keys=True).encode() + b"\n" if records else None


def chained_runtimes(toolkit_config: str) -> List[str]:
    """The binaries configure chained the shim to, per the record beside ``toolkit_config`` (first first)."""
    records = load_records(toolkit_config)
    found = [r["runtime"] for r in records.values() if isinstance(r, dict) and isinstance(r.get("runtime"), str)]
    return list(dict.fromkeys(found))


def with_chained_first(text: str, path: str, chained: List[str]) -> str:
    """A toolkit config's ``text`` with the ``chained`` binaries first in its runtimes list, the rest after."""
    runtimes = runtimes_of(parse_config(text, path))
    wanted = [*chained, *(r for r in runtimes if r not in chained)]
    if wanted == runtimes:
        return text
    result = apply_assignments(text, path, [(SECTION, KEY, wanted)])
    if runtimes_of(parse_config(result, path)) != wanted:
        raise ToolkitError(f"{path}: cannot keep the chained runtime {chained[0]} first in its runtimes")
    return result
