"""Which low-level runtime the shim execs for an engine: what the engine's default runtime ran before configure.

An engine whose default ran something else than the shim's own pick (the first of
``[container-hooks-runtime] runtimes`` that exists) — crun, CRI-O's ``/usr/libexec/crio/runc``, a
containerd ``BinaryName``, nvidia-container-runtime — would silently change low-level runtime once
the shim is its runtime. So `runtime configure` chains it: it gives the binary a tag
(``[container-hooks-runtime.chains] TAG = "/usr/bin/crun"``), links ``container-hooks-runtime.TAG``
to the shim beside it, and names that link in the engine's runtime entry; the shim run under that
name execs exactly that binary (chts.shim.main.exec_runtime, and chts/start.sh from the runtime
record). Each engine keeps its own binary, whatever the order engines are configured in; an engine
whose binary is the shim's own pick keeps the plain name. ``<toolkit config>.chains.json`` records
(engine and engine config -> binary, tag, link) what configure added, and `unconfigure` takes back
only that: the link and the tag's line go with the last engine that uses them. The shim never
chains to itself. See docs/shim.md, "One host, several engines".
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from chts import SHIM
from chts.base.file_edit import FileEdit
from chts.base.runtime_lookup import find_runtime
from chts.config.chains import (
    KEY,
    RECORD_SUFFIX,
    SECTION,
    load_records,
    record_key,
    records_bytes,
    with_chains,
    without_chain,
)
from chts.config.edit import apply_assignments, default_config_text, read_toolkit_config
from chts.config.toolkit import (
    CHAINS_KEY,
    TAG_CHARACTERS,
    chains_of,
    config_path,
    default_config,
    parse_config,
    runtimes_of,
)
from chts.ctk.engine_usage import runs_shim
from chts.engines import Engine, RuntimeRequest
from chts.errors import ToolkitError


class LinkEdit(NamedTuple):
    """A symbolic link's change: its target before and after (None: no link)."""

    path: str
    old: Optional[str]
    new: Optional[str]


class Chain(NamedTuple):
    edits: List[FileEdit]
    notes: List[str]
    path: Optional[str] = None  # what the engine's runtime entry names instead of --runtime-path
    links: Tuple[LinkEdit, ...] = ()


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
        if isinstance(record, dict) and isinstance(record.get("tag"), str):
            return unchained(toolkit_config, text, record, records)
        # a record of an earlier version, which put the binary first in runtimes
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
    if key in records:  # configured before: the record stands, and so does the name it gave the engine
        link = records[key].get("link") if isinstance(records[key], dict) else None
        if not isinstance(link, str):
            return Chain([], [])
        found = link_target(link)  # a link removed since is made again
        return Chain([], [], link, () if found == SHIM else (LinkEdit(link, found, SHIM),))
    effective = engine.effective(request.config, request.config_source)
    binary = None if effective.default is None else engine.low_level_runtime(effective, effective.default)
    if binary is None:
        note = f"{engine.name}: the default runtime {effective.default!r} runs no runc-like binary we can name"
        return Chain([], [f"{note}; the shim execs the first of {toolkit_config}'s runtimes"])
    if runs_shim(binary, [request.path]):
        return Chain([], [])  # the default already is the shim: never chain to it
    current = find_runtime(runtimes, request.path)
    if current is not None and os.path.exists(binary) and os.path.samefile(current, binary):
        return Chain([], [])  # the shim already execs that very file under its plain name
    return chained(engine.name, request.path, toolkit_config, text, records, key, binary)


def new_tag(binary: str, chains: Dict[str, str]) -> str:
    """A tag for ``binary``: its file name (crun), made unique among ``chains`` (crun-2) when another binary has it."""
    base = "".join(c if c in TAG_CHARACTERS else "-" for c in os.path.basename(binary)) or "runtime"
    tag, number = base, 1
    while tag in chains and chains[tag] != binary:
        number += 1
        tag = f"{base}-{number}"
    return tag


def link_target(path: str) -> Optional[str]:
    """The target of the symbolic link at ``path``; None when there is nothing; raise when it is something else."""
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        what = "not a symbolic link" if os.path.lexists(path) else exc.strerror
        raise ToolkitError(f"{path}: {what}; runtime configure keeps that name for a chained runtime") from None


def chained(
    engine: str,
    runtime_path: str,
    toolkit_config: str,
    text: Optional[str],
    records: Dict[str, Any],
    key: str,
    binary: str,
) -> Chain:
    """Chain ``engine`` to ``binary``: a tag for it in the toolkit config, and the shim's link of that tag."""
    if os.path.basename(runtime_path) != SHIM:
        raise ToolkitError(
            f"--runtime-path {runtime_path}: {engine}'s default runtime runs {binary}, which the shim execs for it "
            f"under the name {SHIM}.TAG, a link made beside {SHIM}: give the path of {SHIM} itself"
        )
    if not os.path.isdir(os.path.dirname(runtime_path)):
        raise ToolkitError(
            f"--runtime-path {runtime_path}: no such directory; {engine}'s default runtime runs {binary}, which the "
            f"shim execs for it under a name linked beside {SHIM}: install the shim first (container-hooks-ctk install)"
        )
    chains = chains_of(default_config() if text is None else parse_config(text, toolkit_config))
    tag = next((t for t, b in chains.items() if b == binary), None) or new_tag(binary, chains)
    link = os.path.join(os.path.dirname(runtime_path), f"{SHIM}.{tag}")
    found = link_target(link)
    if found is not None and found != SHIM:
        raise ToolkitError(f"{link}: links to {found}, not {SHIM}; runtime configure needs that name for {binary}")
    record: Dict[str, Any] = {"runtime": binary, "tag": tag, "link": link}
    new = text
    if tag not in chains:  # this record owns the line: unconfigure gives back the bytes it found
        new = with_chains(base_text(text), toolkit_config, {tag: binary})
        record.update(before=text, after=new)
    records[key] = record
    note = (
        f"{toolkit_config}: {engine}'s containers run {binary}, as its default runtime did: its runtime entry "
        f"names {link} ([{SECTION}.{CHAINS_KEY}] {tag})"
    )
    links = () if found == SHIM else (LinkEdit(link, None, SHIM),)
    return written(toolkit_config, text, new, records, note)._replace(path=link, links=links)


def unchained(toolkit_config: str, text: Optional[str], record: Dict[str, Any], records: Dict[str, Any]) -> Chain:
    """Take back ``record``'s chain: its link unless another engine's record names it too (their shims
    share a directory), the tag's line unless another engine's record uses the tag."""
    tag, link = record["tag"], record.get("link")
    others = [r for _, r in sorted(records.items()) if isinstance(r, dict)]
    links: Tuple[LinkEdit, ...] = ()
    shared = any(r.get("link") == link for r in others)
    if isinstance(link, str) and not shared and os.path.islink(link) and os.readlink(link) == SHIM:
        links = (LinkEdit(link, SHIM, None),)  # anything else there is not ours to remove
    users = [r for r in others if r.get("tag") == tag]
    if users:
        if "after" in record:  # the line stays: its bytes are the next user's to give back
            users[0].update(before=record.get("before"), after=record["after"])
        return written(toolkit_config, text, text, records, None)._replace(links=links)
    if "after" in record and text == record["after"]:  # untouched since: the exact bytes configure found
        new = record.get("before")
    else:
        new = None if text is None else without_chain(text, toolkit_config, tag)
    return written(toolkit_config, text, new, records, None)._replace(links=links)


def apply_link(edit: LinkEdit) -> str:
    """Make the link ``edit`` says; what was done, for the report."""
    try:
        if edit.old is not None:
            os.unlink(edit.path)
        if edit.new is not None:
            os.symlink(edit.new, edit.path)
    except OSError as exc:
        raise ToolkitError(f"{edit.path}: cannot {'link' if edit.new else 'remove'}: {exc.strerror}") from None
    return f"linked {edit.path} -> {edit.new}" if edit.new is not None else f"removed {edit.path}"


def link_diff(edit: LinkEdit) -> str:
    return f"link {edit.path} -> {edit.new}\n" if edit.new is not None else f"remove link {edit.path}\n"


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
