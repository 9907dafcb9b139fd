"""The create path of the shim: plan the hooks, merge them into config.json, write it back."""

from __future__ import annotations

import posix

from chts.base.jsonio import dumps, encode_key, render_array, render_object, scan_items, scan_members
from chts.errors import ToolkitError
from chts.hooks.bundle import SpecText, provenance, read_spec_text
from chts.hooks.bundle_record import previously_added, read_record, record_path, render, update_record
from chts.hooks.merge import SpecError, has_marker, hook_identity, plan_merge, stage_lists
from chts.hooks.model import has_precreate
from chts.hooks.sources import apply_failure_policy, explain_hooks, scan_hook_sources, select_hooks
from chts.shim import cache
from chts.shim.log import open_log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

    from chts.base.jsonio import Member
    from chts.base.logfile import LogFile
    from chts.base.signature import Signature
    from chts.config.toolkit import Config
    from chts.hooks.merge import Layout
    from chts.hooks.model import Hook
    from chts.hooks.sources import PlannedHook
    from chts.shim.argv import RuncCall


class InjectError(Exception):
    """The create cannot go on: the message is the one line the engine will show."""


def planned_hooks(config: Config, log: LogFile) -> List[PlannedHook]:
    """The configured hooks, from the cache while no source file or directory has changed.

    Unusable sources are cached as problems, not as a failure, so that the failure
    policy (on-error) is applied on every create and each skip is logged each time.
    """
    section = config["container-hooks"]
    key = "hooks:" + repr(sorted(section.items()))
    cached = cache.read(key)
    if cached is None:
        signed: List[Tuple[str, Signature]] = []
        planned, _, problems = scan_hook_sources(config, signed)
        cached = (planned, problems)
        cache.write(key, signed, cached)
    planned, problems = cached
    apply_failure_policy(problems, section["on-error"], log.warning)
    planned_list: List[PlannedHook] = planned
    return planned_list


def detect_indent(text: str) -> Optional[str]:
    """The indentation config.json was written with (None: compact, as Docker/containerd write it)."""
    first_newline = text.find("\n")
    if first_newline < 0:
        return None
    rest = text[first_newline + 1 :]
    return rest[: len(rest) - len(rest.lstrip(" \t"))] or None


def edit_spec(
    spec_text: SpecText, planned: List[PlannedHook], previous: Sequence[Tuple[str, Hook]] = ()
) -> Tuple[Optional[bytes], List[Tuple[str, Hook]], List[PlannedHook]]:
    """(new config.json bytes, or None when nothing changes; the (stage, hook) pairs added; the
    planned hooks behind them).

    Afterwards the spec holds the hooks it had from its writer, then exactly the hooks
    that apply now; ``previous`` (what an earlier create of this bundle added, from
    chts.hooks.bundle_record) is replaced. Only `hooks` is rewritten; every other byte is kept.
    """
    spec, path = spec_text.spec, spec_text.path
    if "hooks" in spec_text.deep:
        raise ToolkitError(f'{path}: "hooks" is nested too deeply to edit')
    selected = select_hooks(planned, spec)
    hooks = spec.get("hooks")
    try:
        layout, added = plan_merge(hooks, [(entry["stage"], entry["hook"]) for entry in selected], previous)
        present = stage_lists(hooks)
    except SpecError as exc:
        raise ToolkitError(f"{path}: {exc}") from None
    layout = {
        stage: items
        for stage, items in layout.items()
        if [hook_identity(present[stage][i] if isinstance(i, int) else i) for i in items]
        != [hook_identity(hook) for hook in present.get(stage, [])]
        or stage not in present
    }
    if not layout:
        return None, added, provenance(selected, added)
    text = spec_text.text
    indent = detect_indent(text)
    members = {member[0]: member for member in spec_text.members}
    hooks_text = _hooks_text(text, members.get("hooks"), layout, indent)
    data = _replace_members(spec_text, [("hooks", hooks_text)], indent).encode("utf-8")
    return data, added, provenance(selected, added)


def _replace_members(spec_text: SpecText, values: List[Tuple[str, str]], indent: Optional[str]) -> str:
    """The document with each (key, value text) of ``values`` in place of that member's value, or
    appended after the last member (in the file's style) when it has none; all else as it was."""
    edits: List[Tuple[int, int, str]] = []
    appended: List[str] = []
    spans = {member[0]: (member[3], member[4]) for member in spec_text.members}
    for key, value_text in values:
        if key in spans:
            edits.append((*spans[key], value_text))
        else:
            member = encode_key(key) + (":" if indent is None else ": ") + value_text
            appended.append(member if indent is None else "\n" + indent + member)
    if appended:
        if spec_text.members:
            after = spec_text.members[-1][4]
            edits.append((after, after, "," + ",".join(appended)))
        else:
            edits.append((spec_text.close, spec_text.close, ",".join(appended) + ("" if indent is None else "\n")))
    text = spec_text.text
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _inner_members(text: str, member: Optional[Member]) -> List[Member]:
    """The members of the top-level ``member``'s value when it is an object (null, or absent: none)."""
    if member is None or not isinstance(member[5], dict):
        return []
    return scan_members(text, member[3])[0]


def _hooks_text(text: str, member: Optional[Member], layout: Layout, indent: Optional[str]) -> str:
    """The new value of `hooks`: unchanged stages copied as text, changed ones rebuilt item by item."""
    layout = dict(layout)
    rendered: List[Tuple[str, str]] = []
    for stage, key_start, key_end, value_start, value_end, value in _inner_members(text, member):
        items = layout.pop(stage, None)
        if items is None:
            rendered.append((text[key_start:key_end], text[value_start:value_end]))
            continue
        spans = scan_items(text, value_start) if isinstance(value, list) else []
        rebuilt = [text[spans[i][0] : spans[i][1]] if isinstance(i, int) else dumps(i, indent, 3) for i in items]
        rendered.append((text[key_start:key_end], render_array(rebuilt, indent, 2)))
    for stage, items in layout.items():  # stages the spec did not have
        rendered.append((encode_key(stage), render_array([dumps(item, indent, 3) for item in items], indent, 2)))
    return render_object(rendered, indent, 1)


def absolute_path(path: str) -> str:
    """os.path.abspath without importing os, which the create path does not load (CONTRIBUTING.md, hot-path tiers)."""
    if not path.startswith("/"):
        path = posix.getcwd() + "/" + path
    parts: List[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def inject(call: RuncCall, config: Config, config_error: Optional[str]) -> None:
    """Add the configured hooks to the bundle's config.json; raise InjectError to stop the create."""
    log = open_log(config, call)
    spec_path = call.spec_path()
    try:
        if config_error is not None:
            raise ToolkitError(config_error)
        if config["container-hooks"]["insecure-allow-non-root-files"]:
            log.warning("insecure-allow-non-root-files is on: hook files and directories of any owner are trusted")
        planned = planned_hooks(config, log)
        spec_text = read_spec_text(spec_path)
        if spec_text is None:
            log.warning("no config.json in the bundle; leaving the error to the runtime", bundle=call.bundle)
            return
        from chts.base.atomic import remove_stale_temps, write_atomically

        remove_stale_temps(spec_path, record_path(spec_path))
        if has_marker(spec_text.spec):
            log.info(
                f"{call.command}: marker hook present, spec already done", id=call.container_id, bundle=call.bundle
            )
            return
        found = read_record(spec_path)
        data, pairs, added = edit_spec(spec_text, planned, previously_added(found, spec_text.raw))
        spec = spec_text.spec
        if has_precreate(planned):
            # Podman's precreate stage: hooks that may rewrite the config runc will read (chts/shim/precreate.py).
            from chts.shim.precreate import run_precreate_stage

            rewritten = run_precreate_stage(planned, spec, spec_text.raw if data is None else data, call.bundle, log)
            data = rewritten if rewritten is not None else data
        if data is not None:
            write_atomically(spec_path, data)
        record = render(pairs, spec_text.raw if data is None else data) if pairs else None
        problem = update_record(spec_path, found, record)
        if problem is not None:
            log.warning(f"{problem} (the next create of this bundle will not replace the hooks added now)")
    except ToolkitError as exc:
        raise InjectError(str(exc)) from None  # shim.fail() reports it, in the shim's log too
    # The log says which hooks were injected and why (which file, which condition): docs/shim.md, "Logging".
    # config.json is written by now: nothing in the log line may fail the create any more.
    try:
        described = ", ".join(
            f"{entry['stage']}:{entry['hook']['path']} ({why})" for entry, _, why in explain_hooks(added, spec)
        )
        log.info(
            f"{call.command}: injected {len(added)} hook(s)" + (f": {described}" if added else ""),
            id=call.container_id,
            bundle=absolute_path(call.bundle),
        )
    except Exception:
        pass
