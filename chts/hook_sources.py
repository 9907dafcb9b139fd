"""Every configured hook with where it came from: the planning input of each create."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from chts.hooks_file import STAGES, load_hooks_json
from chts.toolkit_config import Config

# One planned hook: {"stage": str, "hook": {...}, "source": file it came from}.
PlannedHook = Dict[str, Any]


def load_hook_sources(config: Config) -> Tuple[List[PlannedHook], List[str]]:
    """(planned hooks in injection order, every file or directory read to find them).

    The second list is what the shim's cache watches. Raises ToolkitError naming
    the file when a source is unusable.
    """
    path = config["container-hooks"]["path"]
    hooks = load_hooks_json(path)
    planned = [
        {"stage": stage, "hook": hook, "source": path}
        for stage in STAGES
        for hook in hooks.get(stage, [])
    ]
    return planned, [path]


def select_hooks(planned: List[PlannedHook], spec: Dict[str, Any]) -> List[PlannedHook]:
    """The planned hooks that apply to the container described by ``spec``."""
    return list(planned)


def explain_hooks(planned: List[PlannedHook], spec: Dict[str, Any]) -> List[Tuple[PlannedHook, bool, str]]:
    """Each planned hook with whether it applies to ``spec`` and the reason, for `ctk hooks explain`."""
    chosen = select_hooks(planned, spec)
    return [
        (entry, entry in chosen, "hooks.json applies to every container" if entry in chosen else "not selected")
        for entry in planned
    ]
