"""Which container engines on this host run the shim, from each engine's effective configuration, for `ctk check`.

The same view `runtime configure` verifies against (``Engine.effective``: the engine's own parser
when its binary is here, else its files read in its own order), so check and configure agree on
what the engine will run; nothing is written.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional

from chts import SHIM
from chts.engines import get_engine


class EngineUsage(NamedTuple):
    engine: str
    source: str  # where the view came from: "file" or the engine's command
    runtimes: Dict[str, str]  # the runtimes that run the shim -> the binary (which may be missing)
    default: Optional[str]


def named_shim(entry: Any) -> Optional[str]:
    """A path in a runtime's settings that names the shim, for a runtime whose binary cannot be found."""
    values = entry.values() if isinstance(entry, dict) else entry if isinstance(entry, list) else [entry]
    for value in values:
        if isinstance(value, str) and is_shim_name(os.path.basename(value)):
            return value
        found = named_shim(value) if isinstance(value, (dict, list)) else None
        if found is not None:
            return found
    return None


def is_shim_name(name: str) -> bool:
    """The shim's name, or container-hooks-runtime.TAG: the shim for a chained runtime (chts.ctk.chaining)."""
    return name == SHIM or name.startswith(SHIM + ".")


def runs_shim(binary: str, shims: List[str]) -> bool:
    """A runtime binary that is the shim: by its name, or the same file as a shim we know of."""
    if is_shim_name(os.path.basename(binary)):
        return True
    real = os.path.realpath(binary)
    return any(os.path.exists(shim) and real == os.path.realpath(shim) for shim in shims)


def engine_usage(name: str, path: str, shims: List[str], source: str = "auto") -> Optional[EngineUsage]:
    """None when ``path`` does not exist; raises ToolkitError naming the file when it cannot be read."""
    if not os.path.lexists(path):
        return None
    engine = get_engine(name)
    effective = engine.effective(path, source)
    runtimes = {}
    for runtime, entry in effective.runtimes.items():
        binary = engine.low_level_runtime(effective, runtime) or named_shim(entry)
        if binary is not None and runs_shim(binary, shims):
            runtimes[runtime] = binary
    return EngineUsage(name, effective.source, runtimes, effective.default)
