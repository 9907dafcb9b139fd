"""Merge configured hooks into a runtime spec: pure, idempotent, existing hooks first."""

from __future__ import annotations

from chts.hooks_file import STAGES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Sequence, Tuple

    from chts.hooks_file import Hook

MARKER_NAME = "container-hooks"


class SpecError(ValueError):
    """The spec's `hooks` cannot be merged into (wrong types)."""


def hook_identity(hook: Any) -> Tuple[Any, ...]:
    """What makes two hooks the same hook: path, args, env, timeout (absent == absent)."""
    if not isinstance(hook, dict):
        return (hook,)
    args = hook.get("args")
    env = hook.get("env")
    return (
        hook.get("path"),
        tuple(args) if isinstance(args, list) else args,
        tuple(env) if isinstance(env, list) else env,
        hook.get("timeout"),
    )


def has_marker(spec: Dict[str, Any]) -> bool:
    """The original toolkit's sign that a spec is done: a prestart hook named container-hooks."""
    hooks = spec.get("hooks")
    if not isinstance(hooks, dict) or not isinstance(hooks.get("prestart"), list):
        return False
    return any(
        isinstance(hook, dict) and isinstance(hook.get("path"), str) and hook["path"].rpartition("/")[2] == MARKER_NAME
        for hook in hooks["prestart"]
    )


def merge_hooks(spec: Dict[str, Any], wanted: Sequence[Tuple[str, Hook]]) -> List[Tuple[str, Hook]]:
    """Append each (stage, hook) of ``wanted`` to ``spec`` unless that stage already has it.

    Mutates ``spec`` and returns what was added, in order. Hooks already in the spec
    (Docker's libnetwork-setkey prestart hook) stay first and untouched.
    """
    if not wanted or has_marker(spec):
        return []
    hooks = spec.get("hooks")
    if hooks is None:
        hooks = {}
    elif not isinstance(hooks, dict):
        raise SpecError(f'"hooks" must be an object, not {type(hooks).__name__}')
    added: List[Tuple[str, Hook]] = []
    for stage, hook in wanted:
        if stage not in STAGES:
            raise SpecError(f"unknown hook stage {stage!r}")
        present = hooks.get(stage)
        if present is None:
            present = []
        elif not isinstance(present, list):
            raise SpecError(f'"hooks.{stage}" must be a list, not {type(present).__name__}')
        identity = hook_identity(hook)
        if any(hook_identity(existing) == identity for existing in present):
            continue
        present.append(dict(hook))
        hooks[stage] = present
        added.append((stage, hook))
    if added:
        spec["hooks"] = hooks
    return added
