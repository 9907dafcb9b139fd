"""Which low-level runtime the shim execs for an engine: what the engine's default runtime ran before configure.

The shim execs the first of ``[container-hooks-runtime] runtimes`` that exists. An engine whose
default ran something else than that (crun, CRI-O's ``/usr/libexec/crio/runc``, a containerd
``BinaryName``, nvidia-container-runtime) would silently change low-level runtime once the shim
is its default. So `runtime configure` puts that binary first in the list, and records that it
did in ``<toolkit config>.chains.json`` (engine and engine config -> binary); `unconfigure`
takes back only what its configure added. The shim never chains to itself, and one toolkit
config cannot chain two engines to two different binaries: configure refuses rather than
switch the other engine's containers.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from chts.base.file_edit import FileEdit
from chts.base.runtime_lookup import find_runtime
from chts.config.chains import KEY, RECORD_SUFFIX, SECTION, load_records, record_key, records_bytes
from chts.config.edit import apply_assignments, default_config_text, read_toolkit_config
from chts.config.toolkit import config_path, default_config, parse_config, runtimes_of
from chts.ctk.engine_usage import runs_shim
from chts.engines import Engine, RuntimeRequest
from chts.errors import ToolkitError


class Chain(NamedTuple):
    edits: List[FileEdit]
    notes: List[str]


def toolkit_runtimes(text: Optional[str], path: str) -> List[str]:
    return runtimes_of(default_config() if text is None else parse_config(text, path))


def chain_edits(engine: Engine, request: RuntimeRequest, configure: bool) -> Chain:
    """The toolkit config edits that make the shim exec, for this engine, what its default ran before."""
    toolkit_config = request.toolkit_config or config_path()
    records = load_records(toolkit_config)
    key = record_key(engine.name, request.config)
    text = read_toolkit_config(toolkit_config)
    runtimes = toolkit_runtimes(text, toolkit_config)
    if not configure:
        record = records.pop(key, None)
        if record is None:
            return Chain([], [])
        binary = record.get("runtime")
        if "after" in record and text == record["after"]:  # untouched since: give back the exact bytes
            before = record.get("before")
            edit = FileEdit(
                toolkit_config, None if text is None else text.encode(), None if before is None else before.encode()
            )
            return Chain([edit, record_edit(toolkit_config, records)], [])
        others = [r.get("runtime") for r in records.values() if isinstance(r, dict)]
        if binary in runtimes and binary not in others:
            runtimes = [r for r in runtimes if r != binary] or default_config()[SECTION][KEY]
        return written(toolkit_config, text, runtimes, records, None)
    if key in records:
        return Chain([], [])  # configured before: the record stands
    effective = engine.effective(request.config, request.config_source)
    binary = None if effective.default is None else engine.low_level_runtime(effective, effective.default)
    if binary is None:
        note = f"{engine.name}: the default runtime {effective.default!r} runs no runc-like binary we can name"
        return Chain([], [f"{note}; the shim execs the first of {toolkit_config}'s runtimes"])
    if runs_shim(binary, [request.path]):
        return Chain([], [])  # the default already is the shim: never chain to it
    current = find_runtime(runtimes, request.path)
    if current is not None and os.path.exists(binary) and os.path.samefile(current, binary):
        return Chain([], [])  # the shim already execs that very file
    for other_key, other in records.items():
        if isinstance(other, dict) and other.get("runtime") != binary:
            raise ToolkitError(
                f"{toolkit_config}: the shim already execs {other.get('runtime')} for {other_key}, while "
                f"{engine.name}'s default runtime runs {binary}; one toolkit config chains to one binary "
                f"(set [{SECTION}] {KEY} by hand if one serves both)"
            )
    note = f"{toolkit_config}: the shim now execs {binary} first, as {engine.name}'s default runtime did"
    new = apply_assignments(
        base_text(text), toolkit_config, [(SECTION, KEY, [binary, *(r for r in runtimes if r != binary)])]
    )
    records[key] = {"runtime": binary, "before": text, "after": new}
    return written(toolkit_config, text, new, records, note)


def base_text(text: Optional[str]) -> str:
    return default_config_text() if text is None else text


def written(toolkit_config: str, text: Optional[str], new: Any, records: Dict[str, Any], note: Optional[str]) -> Chain:
    """The edits of the toolkit config (``new``: its text, or the runtimes list to set in it) and of the record."""
    if isinstance(new, list):
        unneeded = text is None and new == default_config()[SECTION][KEY]  # no file, and none needed
        new = None if unneeded else apply_assignments(base_text(text), toolkit_config, [(SECTION, KEY, new)])
    edits = [
        FileEdit(toolkit_config, None if text is None else text.encode(), None if new is None else new.encode()),
        record_edit(toolkit_config, records),
    ]
    return Chain([edit for edit in edits if edit.old != edit.new], [note] if note else [])


def record_edit(toolkit_config: str, records: Dict[str, Any]) -> FileEdit:
    path = toolkit_config + RECORD_SUFFIX
    old = read_toolkit_config(path)
    return FileEdit(path, None if old is None else old.encode(), records_bytes(records), backup=False)


def chained_binary(engine: str, engine_config: str, toolkit_config: str) -> Optional[str]:
    """What configure recorded for this engine (None: nothing, the shim's runtimes list as it is)."""
    try:
        record = load_records(toolkit_config).get(record_key(engine, engine_config))
    except ToolkitError:
        return None
    runtime = record.get("runtime") if isinstance(record, dict) else None
    return runtime if isinstance(runtime, str) else None


def chain_report(engine: str, engine_config: str, toolkit_config: str, runtime: Optional[str]) -> Tuple[bool, str]:
    """(all right, what to say) about the binary the shim execs for ``engine``; ``runtime`` is the shim's pick."""
    recorded = chained_binary(engine, engine_config, toolkit_config)
    execs = runtime or "no runtime (none of the runtimes list exists)"
    if recorded is None:
        return runtime is not None, f"the shim execs {execs}"
    if runtime is not None and os.path.exists(recorded) and os.path.samefile(recorded, runtime):
        return True, f"the shim execs {runtime}, as {engine}'s default runtime did before configure"
    return (
        False,
        f"the shim execs {execs}, not {recorded} that {engine}'s default ran (missing, or not first in runtimes)",
    )
