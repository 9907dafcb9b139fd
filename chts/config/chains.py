"""The record of which low-level runtime `runtime configure` chained the shim to, per engine.

`<toolkit config>.chains.json` maps "engine:engine config" to {"runtime": the binary the engine's
default ran, "tag": TAG, "link": the container-hooks-runtime.TAG link the engine's runtime entry names,
"before"/"after": the toolkit config's text around the edit that added
`[container-hooks-runtime.chains] TAG = "runtime"`, kept by the one record that owns that line}.
Records without "tag" come from versions that put the binary first in `runtimes` instead (one binary
for the whole host): unconfigure still takes those back. `runtime unconfigure` (chts.ctk.chaining)
takes back what its configure added; the node installer keeps the chains when it syncs a ConfigMap's
config.toml.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Final, List, Optional, Tuple, Type

from chts.base.config_files import parse_json_object
from chts.base.text_files import toml_decode_error, toml_loads
from chts.base.toml_edit import newline_of, set_key, split_statements, table_statements
from chts.config.edit import apply_assignments, read_toolkit_config
from chts.config.toolkit import CHAINS_KEY, chains_of, parse_config, runtimes_of
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
    """The binaries an earlier version's configure put first in runtimes, per the record beside ``toolkit_config``."""
    records = load_records(toolkit_config)
    found = [
        r["runtime"]
        for r in records.values()
        if isinstance(r, dict) and isinstance(r.get("runtime"), str) and "tag" not in r
    ]
    return list(dict.fromkeys(found))


def chain_tags(toolkit_config: str) -> Dict[str, str]:
    """TAG -> binary of every chain configure made, per the record beside ``toolkit_config``."""
    records = load_records(toolkit_config).values()
    return {
        r["tag"]: r["runtime"]
        for r in records
        if isinstance(r, dict) and isinstance(r.get("tag"), str) and isinstance(r.get("runtime"), str)
    }


def with_chains(text: str, path: str, chains: Dict[str, str]) -> str:
    """A toolkit config's ``text`` with each TAG = binary of ``chains`` in ``[container-hooks-runtime.chains]``."""
    result = text
    for tag, binary in chains.items():
        result = set_key(result, (SECTION, CHAINS_KEY), tag, binary, record=False)
    return checked(result, path, {**chains_of(parse_config(text, path)), **chains}, text)


def without_chain(text: str, path: str, tag: str) -> str:
    """A toolkit config's ``text`` without TAG's line in ``[container-hooks-runtime.chains]`` (and without
    that table's header when nothing is left in it); everything else as it was."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline_of(text)
    table = (SECTION, CHAINS_KEY)
    statements = split_statements(lines)
    found = table_statements(statements, table)
    chains = chains_of(parse_config(text, path))
    if tag not in chains:
        return text
    remaining = {name: binary for name, binary in chains.items() if name != tag}
    if found is not None:
        _, keys = found
        doomed = [s for s in keys if list(s.parsed) == [tag]]
        headers = [s for s in statements if s.is_header and s.table() == table] if len(keys) == len(doomed) else []
        for statement in sorted(doomed + headers, key=lambda s: s.start, reverse=True):
            del lines[statement.start : statement.end]
        for header in headers:  # the blank line set_key put before a table it appended at the end
            following = lines[header.start].strip() if header.start < len(lines) else ""
            if header.start > 0 and not following and not lines[header.start - 1].strip():
                del lines[header.start - 1]
    result = "".join(lines)
    if not text.endswith("\n") and result.endswith(newline_of(text)):
        result = result[: -len(newline_of(text))]
    return checked(result, path, remaining, text)


def checked(result: str, path: str, chains: Dict[str, str], original: str) -> str:
    """``result`` when it is ``original`` with exactly ``chains`` as its chains table; else refuse."""

    def without_empty_section(document: Dict[str, Any]) -> Dict[str, Any]:
        return {k: v for k, v in document.items() if not (k == SECTION and v == {})}

    unreadable: Tuple[Type[Exception], ...] = (*toml_decode_error(), AttributeError)  # AttributeError: not a table
    try:
        expected = toml_loads(original)
        section = expected.setdefault(SECTION, {})
        section.pop(CHAINS_KEY, None)
        if chains:
            section[CHAINS_KEY] = chains
        matches = without_empty_section(toml_loads(result)) == without_empty_section(expected)
    except unreadable:
        matches = False
    if not matches:
        raise ToolkitError(
            f"{path}: cannot change [{SECTION}.{CHAINS_KEY}] without losing its layout; edit the file by hand"
        )
    return result


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
