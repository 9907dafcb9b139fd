"""The create path of the shim: plan the hooks, merge them into config.json, write it back."""

from __future__ import annotations

import posix

from chts import cache
from chts.errors import ToolkitError
from chts.hook_sources import apply_failure_policy, explain_hooks, scan_hook_sources, select_hooks
from chts.hooks_file import describe_json_error
from chts.jsonio import dumps, loads_strict
from chts.merge import SpecError, has_marker, merge_hooks
from chts.shim_log import ShimLog, open_log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

    from chts.hook_sources import PlannedHook
    from chts.toolkit_config import Config

MAX_SPEC_BYTES = 64 << 20


class InjectError(Exception):
    """The create cannot go on: the message is the one line the engine will show."""


def planned_hooks(config: Config, log: ShimLog) -> List[PlannedHook]:
    """The configured hooks, from the cache while no source file or directory has changed.

    Unusable sources are cached as problems, not as a failure, so that the failure
    policy (on-error) is applied on every create and each skip is logged each time.
    """
    section = config["container-hooks"]
    key = "hooks:" + repr(sorted(section.items()))
    cached = cache.read(key)
    if cached is None:
        planned, sources, problems = scan_hook_sources(config)
        cached = (planned, problems)
        cache.write(key, sources, cached)
    planned, problems = cached
    apply_failure_policy(problems, section["on-error"], log.warning)
    planned_list: List[PlannedHook] = planned
    return planned_list


def detect_indent(raw: bytes) -> Optional[str]:
    """The indentation config.json was written with (None: compact, as Docker/containerd write it)."""
    first_newline = raw.find(b"\n")
    if first_newline < 0:
        return None
    rest = raw[first_newline + 1 :]
    indent = rest[: len(rest) - len(rest.lstrip(b" \t"))]
    return indent.decode("ascii") or None


def serialize_spec(spec: Dict[str, Any], raw: bytes) -> bytes:
    indent = detect_indent(raw)
    text = dumps(spec, indent)
    if raw.endswith(b"\n"):
        text += "\n"
    return text.encode("ascii")


def read_spec(path: str) -> Tuple[Optional[Dict[str, Any]], bytes]:
    """(spec, raw bytes); (None, b"") when there is no config.json for runc to complain about."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        return None, b""
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise ToolkitError(f"{path}: larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        spec = loads_strict(text)
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise ToolkitError(describe_json_error(path, text, exc)) from None
    if not isinstance(spec, dict):
        raise ToolkitError(f"{path}: must be a JSON object, not {type(spec).__name__}")
    return spec, raw


def apply_hooks(spec: Dict[str, Any], planned: List[PlannedHook], spec_path: str) -> List[PlannedHook]:
    """Merge the hooks that apply to this container into ``spec``; return those added."""
    if has_marker(spec):
        return []
    selected = select_hooks(planned, spec)
    try:
        added = merge_hooks(spec, [(entry["stage"], entry["hook"]) for entry in selected])
    except SpecError as exc:
        raise ToolkitError(f"{spec_path}: {exc}") from None
    # merge_hooks returns the (stage, hook) pairs it added, in order; map back to provenance.
    remaining = list(added)
    result = []
    for entry in selected:
        if remaining and remaining[0] == (entry["stage"], entry["hook"]):
            result.append(entry)
            remaining.pop(0)
    return result


def absolute_path(path: str) -> str:
    """os.path.abspath without importing os (~1 ms the create path need not pay)."""
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


def inject(call: Any, config: Config, config_error: Optional[str]) -> None:
    """Add the configured hooks to the bundle's config.json; raise InjectError to stop the create."""
    log = open_log(config, call)
    spec_path = call.bundle + ("config.json" if call.bundle.endswith("/") else "/config.json")
    try:
        if config_error is not None:
            raise ToolkitError(config_error)
        if config["container-hooks"]["insecure-allow-non-root-files"]:
            log.warning("insecure-allow-non-root-files is on: hook files and directories of any owner are trusted")
        planned = planned_hooks(config, log)
        spec, raw = read_spec(spec_path)
        if spec is None:
            log.warning("no config.json in the bundle; leaving the error to the runtime", bundle=call.bundle)
            return
        if has_marker(spec):
            log.info(
                f"{call.command}: marker hook present, spec already done", id=call.container_id, bundle=call.bundle
            )
            return
        added = apply_hooks(spec, planned, spec_path)
        # --- begin hooksd-parity: Podman's precreate stage, on the config the hooks were added to
        from chts.precreate import run_precreate_stage

        spec, rewritten = run_precreate_stage(planned, spec, call.bundle, log)
        # --- end hooksd-parity
        if added or rewritten:
            from chts.atomic import write_atomically

            write_atomically(spec_path, serialize_spec(spec, raw))
    except ToolkitError as exc:
        log.error(str(exc), id=call.container_id, bundle=call.bundle)
        raise InjectError(str(exc)) from None
    # Spec 3.8: the log says which hooks were injected and why (which file, which condition).
    described = ", ".join(
        f"{entry['stage']}:{entry['hook']['path']} ({why})" for entry, _, why in explain_hooks(added, spec)
    )
    log.info(
        f"{call.command}: injected {len(added)} hook(s)" + (f": {described}" if added else ""),
        id=call.container_id,
        bundle=absolute_path(call.bundle),
    )
