"""hooks.json, the OCI `hooks` object injected into every container: parsing and validation."""

from __future__ import annotations

from chts.base.jsonio import loads_strict
from chts.errors import ToolkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping

    from typing_extensions import NotRequired, TypedDict

    class Hook(TypedDict):
        """One OCI hook (runtime-spec config.md#posix-platform-hooks), as validate_hook keeps it."""

        path: str
        args: NotRequired[List[str]]
        env: NotRequired[List[str]]
        timeout: NotRequired[int]

    HooksByStage = Dict[str, List[Hook]]

# The stage model, one home for every reader (the shim, `hooks validate`, `check`).
# The runtime-spec's stages, in the order runc runs them: what config.json can hold.
STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Podman's extension stage (libpod passes it to containers/common): drop-in files may name it;
# the shim runs its hooks before runc (chts.shim.precreate), never writes them into config.json.
PRECREATE = "precreate"
EXTENSION_STAGES = (PRECREATE,)
# Where a hook's path is resolved (runtime-spec config.md, "POSIX-platform Hooks"): startContainer's
# in the container, after pivot_root, so the host's file at that path says nothing about it. Every
# other stage's path resolves in the runtime namespace: prestart, createRuntime, poststart and
# poststop run in the runtime's mount namespace, and createContainer runs before pivot_root
# (runc: in the container's new mount namespace, which still shows the host's files), so the
# host's file is what runs as root and its owner and mode are checked like any other's.
STAGES_RESOLVED_IN_CONTAINER = ("startContainer",)


def resolved_on_host(stage: str) -> bool:
    """Whether the executable of a hook of ``stage`` is the host's file at its path."""
    return stage not in STAGES_RESOLVED_IN_CONTAINER


def has_precreate(planned: Iterable[Mapping[str, object]]) -> bool:
    """Whether any of the planned hooks (chts.hooks.sources.PlannedHook) is a precreate hook."""
    return any(entry["stage"] == PRECREATE for entry in planned)


HOOK_KEYS = ("path", "args", "env", "timeout")
MAX_HOOKS_BYTES = 1 << 20
# runc reads a hook's timeout as a Go int and turns it into time.Duration(timeout) *
# time.Second, int64 nanoseconds: beyond this, the JSON is refused or the product wraps
# around (a negative timeout kills the hook at once).
MAX_TIMEOUT = (2**63 - 1) // 10**9


def describe_json_error(path: str, text: str, exc: ValueError) -> str:
    import json

    if isinstance(exc, json.JSONDecodeError):
        return f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
    return f"{path}: invalid JSON: {exc}"


def validate_hook(value: Any, where: str) -> Hook:
    """Check one OCI hook object; return a copy with its keys in canonical order."""
    if not isinstance(value, dict):
        raise ValueError(f'{where}: a hook must be an object with a "path", not {type(value).__name__}')
    unknown = [key for key in value if key not in HOOK_KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (a hook has: {', '.join(HOOK_KEYS)})")
    path = value.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f'{where}: "path" is required and must be a string')
    if not path.startswith("/"):
        raise ValueError(f"{where}.path: must be absolute, not {path!r}")
    if "\0" in path:
        raise ValueError(f"{where}.path: must not contain a NUL character")
    hook: Any = {"path": path}  # built key by key, in HOOK_KEYS order
    for key in ("args", "env"):
        if key not in value:
            continue
        items = value[key]
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"{where}.{key}: must be a list of strings")
        if any("\0" in item for item in items):
            raise ValueError(f"{where}.{key}: must not contain a NUL character")
        if key == "env":
            for item in items:
                if "=" not in item or item.startswith("="):
                    raise ValueError(f"{where}.env: {item!r} is not KEY=VALUE")
        hook[key] = list(items)
    if "timeout" in value:
        timeout = value["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT:
            raise ValueError(f"{where}.timeout: must be an integer from 1 to {MAX_TIMEOUT} (seconds), not {timeout!r}")
        hook["timeout"] = timeout
    checked: Hook = hook
    return checked


def validate_hooks_object(data: Any) -> HooksByStage:
    """Check an OCI `hooks` object: known stages, each a list of valid hooks."""
    if not isinstance(data, dict):
        raise ValueError(f"must be a JSON object of stages ({', '.join(STAGES)}), not {type(data).__name__}")
    hooks: HooksByStage = {}
    for stage, entries in data.items():
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
        if not isinstance(entries, list):
            raise ValueError(f"{stage}: must be a list of hooks")
        hooks[stage] = [validate_hook(entry, f"{stage}[{index}]") for index, entry in enumerate(entries)]
    return hooks


def parse_json_document(text: str, path: str, empty_hint: str) -> Any:
    """The JSON value of a hook file's ``text``; ToolkitError naming ``path`` (and line) when it is not one."""
    if not text.strip():
        raise ToolkitError(f"{path}: empty file ({empty_hint})")
    try:
        return loads_strict(text)
    except ValueError as exc:
        raise ToolkitError(describe_json_error(path, text, exc)) from None


def parse_hooks_json(text: str, path: str) -> HooksByStage:
    data = parse_json_document(text, path, "write {} for no hooks")
    try:
        return validate_hooks_object(data)
    except ValueError as exc:
        raise ToolkitError(f"{path}: {exc}") from None
