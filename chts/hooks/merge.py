"""Merge configured hooks into a runtime spec: pure, idempotent, existing hooks first."""

from __future__ import annotations

from chts.hooks.model import STAGES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Sequence, Tuple, Union

    from chts.hooks.model import Hook

    # A stage's new list: an int is the index of a hook the spec already had (kept as it
    # was, text and all), a dict a hook to add.
    Layout = Dict[str, List[Union[int, Hook]]]
    StageHook = Tuple[str, Hook]

MARKER_NAME = "container-hooks"


class SpecError(ValueError):
    """The spec's `hooks` cannot be merged into (wrong types)."""


def hook_identity(hook: Any) -> Any:
    """What makes two hooks the same hook: path, args, env, timeout (absent == absent); hashable."""
    if not isinstance(hook, dict):
        return ("not a hook", repr(hook))
    args = hook.get("args")
    env = hook.get("env")
    identity = (
        hook.get("path"),
        tuple(args) if isinstance(args, list) else args,
        tuple(env) if isinstance(env, list) else env,
        hook.get("timeout"),
    )
    try:
        hash(identity)
    except TypeError:  # lists or objects where strings belong: compare their text
        return repr(identity)
    return identity


def has_marker(spec: Dict[str, Any]) -> bool:
    """The original toolkit's sign that a spec is done: a prestart hook named container-hooks."""
    hooks = spec.get("hooks")
    if not isinstance(hooks, dict) or not isinstance(hooks.get("prestart"), list):
        return False
    return any(
        isinstance(hook, dict) and isinstance(hook.get("path"), str) and hook["path"].rpartition("/")[2] == MARKER_NAME
        for hook in hooks["prestart"]
    )


def stage_lists(hooks: Any) -> Dict[str, List[Any]]:
    """The spec's `hooks` value as stage -> list; SpecError when it has the wrong shape."""
    if hooks is None:
        return {}
    if not isinstance(hooks, dict):
        raise SpecError(f'"hooks" must be an object, not {type(hooks).__name__}')
    result: Dict[str, List[Any]] = {}
    for stage, present in hooks.items():
        if present is None:
            continue
        if not isinstance(present, list):
            raise SpecError(f'"hooks.{stage}" must be a list, not {type(present).__name__}')
        result[stage] = present
    return result


def plan_merge(
    hooks: Any, wanted: Sequence[StageHook], previous: Sequence[StageHook] = ()
) -> Tuple[Layout, List[StageHook]]:
    """(new list of each stage that changes, the (stage, hook) pairs added), for the spec's ``hooks``.

    ``previous`` are the hooks this shim added on an earlier create of the same bundle:
    one equal hook per entry is taken out first, so the stage ends up with exactly what
    is wanted now. Then each wanted hook is appended unless the stage already has it.
    Linear in the number of hooks (identities are looked up in sets).
    """
    present = stage_lists(hooks)
    removed: Dict[str, Dict[Any, int]] = {}
    for stage, hook in previous:
        counts = removed.setdefault(stage, {})
        identity = hook_identity(hook)
        counts[identity] = counts.get(identity, 0) + 1
    layout: Layout = {}
    seen: Dict[str, set[Any]] = {}
    for stage, counts in removed.items():
        kept: List[Union[int, Hook]] = []
        for index, existing in enumerate(present.get(stage, [])):
            identity = hook_identity(existing)
            if counts.get(identity, 0) > 0:
                counts[identity] -= 1
                continue
            kept.append(index)
        if len(kept) != len(present.get(stage, [])):
            layout[stage] = kept
    added: List[StageHook] = []
    for stage, hook in wanted:
        if stage not in STAGES:
            raise SpecError(f"unknown hook stage {stage!r}")
        identities = seen.get(stage)
        if identities is None:
            items = layout[stage] if stage in layout else list(range(len(present.get(stage, []))))
            identities = seen[stage] = {hook_identity(present[stage][i]) for i in items if isinstance(i, int)}
        identity = hook_identity(hook)
        if identity in identities:
            continue
        identities.add(identity)
        if stage not in layout:
            layout[stage] = list(range(len(present.get(stage, []))))
        layout[stage].append(hook)
        added.append((stage, hook))
    return layout, added


def merge_hooks(
    spec: Dict[str, Any], wanted: Sequence[StageHook], previous: Sequence[StageHook] = ()
) -> List[StageHook]:
    """Append each (stage, hook) of ``wanted`` to ``spec`` unless that stage already has it.

    Mutates ``spec`` and returns what was added, in order. Hooks already in the spec
    (Docker's libnetwork-setkey prestart hook) stay first and untouched; those of
    ``previous`` (added by an earlier create) are taken out first.
    """
    if (not wanted and not previous) or has_marker(spec):
        return []
    layout, added = plan_merge(spec.get("hooks"), wanted, previous)
    if layout:
        hooks: Dict[str, Any] = spec["hooks"] if isinstance(spec.get("hooks"), dict) else {}
        present = stage_lists(hooks)
        for stage, items in layout.items():
            hooks[stage] = [present[stage][item] if isinstance(item, int) else dict(item) for item in items]
        spec["hooks"] = hooks
    return added
