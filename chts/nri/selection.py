"""Which hooks an NRI container gets: the shim's rules, from the same code.

The toolkit config, hooks.json and the hooks directories are read by
chts.hooks.sources.scan_hook_sources, the failure policy is apply_failure_policy's, the
choice and the dedupe against hooks the container already has are chts.hooks.bundle's
apply_hooks, on a spec-like dict built from what the runtime sent (annotations: the pod's,
then the container's, which win; process.args and env; mounts; hooks). What was read is kept
in memory while the stat signature of every file it came from is unchanged
(chts.base.signature, as the shim's cache), so an edited file counts from the next container on.

NRI returns adjustments, not a rewritten spec, so a precreate hook (Podman's stage, which may
rewrite config.json) cannot be delivered: it is refused, with a line per container it would
have applied to (docs/nri.md, "Precreate hooks").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from chts.base.signature import settled, signature, unchanged
from chts.errors import ToolkitError, unexpected
from chts.hooks.bundle import apply_hooks
from chts.hooks.model import PRECREATE
from chts.hooks.sources import apply_failure_policy, explain_hooks, scan_hook_sources

if TYPE_CHECKING:
    from chts.base.signature import Signature
    from chts.config.toolkit import Config
    from chts.hooks.model import Hook
    from chts.hooks.sources import PlannedHook

    Signed = List[Tuple[str, Signature]]


class Decision:
    """The hooks for one container, with why each applies, and the precreate hooks refused."""

    def __init__(self, added: List[PlannedHook], reasons: List[str], refused: List[str]) -> None:
        self.added = added
        self.reasons = reasons
        self.refused = refused

    def pairs(self) -> List[Tuple[str, Hook]]:
        return [(entry["stage"], entry["hook"]) for entry in self.added]

    def described(self) -> str:
        return ", ".join(
            f"{entry['stage']}:{entry['hook']['path']} ({why})" for entry, why in zip(self.added, self.reasons)
        )


def spec_of(pod: Dict[str, Any], container: Dict[str, Any]) -> Dict[str, Any]:
    """The parts of an OCI spec the hook conditions and the dedupe read, from the NRI messages."""
    annotations = dict(pod.get("annotations", {}))
    annotations.update(container.get("annotations", {}))
    spec: Dict[str, Any] = {
        "annotations": annotations,
        "process": {"args": list(container.get("args", [])), "env": list(container.get("env", []))},
        "mounts": [dict(mount) for mount in container.get("mounts", [])],
    }
    hooks = container.get("hooks")
    if hooks:
        spec["hooks"] = {stage: [dict(hook) for hook in items] for stage, items in hooks.items()}
    return spec


class HookPlan:
    """The toolkit config and the hooks it names, read again when any file they came from changes."""

    def __init__(self, config_path: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.config_path = config_path
        self.clock = clock
        self._config: Optional[Tuple[Signed, Config, Optional[str]]] = None
        self._hooks: Optional[Tuple[str, Signed, List[PlannedHook], List[str]]] = None
        self.reads = 0  # how many times the hook sources were scanned (tests count them)

    def config(self) -> Tuple[Config, Optional[str]]:
        """(config, error): a broken config means the defaults and the error, as in the shim."""
        if self._config is not None and unchanged(self._config[0]):
            return self._config[1], self._config[2]
        from chts.config import toolkit

        signed: Signed = [(self.config_path, signature(self.config_path))]
        error: Optional[str] = None
        try:
            config = toolkit.load_config(self.config_path)
        except ToolkitError as exc:
            config, error = toolkit.default_config(), str(exc)
        except Exception as exc:
            config, error = (
                toolkit.default_config(),
                f"{self.config_path}: cannot use the toolkit config: {unexpected(exc)}",
            )
        self._config = (signed, config, error) if settled(signed, self.clock()) else None
        return config, error

    def planned(self, config: Config) -> Tuple[List[PlannedHook], List[str]]:
        """(every configured hook, one line per unusable source)."""
        key = repr(sorted(config["container-hooks"].items()))
        if self._hooks is not None and self._hooks[0] == key and unchanged(self._hooks[1]):
            return self._hooks[2], self._hooks[3]
        signed: Signed = []
        planned, _, problems = scan_hook_sources(config, signed)
        self.reads += 1
        self._hooks = (key, signed, planned, problems) if settled(signed, self.clock()) else None
        return planned, problems

    def decide(self, pod: Dict[str, Any], container: Dict[str, Any], warn: Callable[[str], None]) -> Decision:
        """The hooks to add to this container; ToolkitError when its create must fail (a broken config,
        or an unusable hook source under on-error = fail)."""
        config, error = self.config()
        if error is not None:
            raise ToolkitError(error)
        planned, problems = self.planned(config)
        apply_failure_policy(problems, config["container-hooks"]["on-error"], warn)
        spec = spec_of(pod, container)
        label = f"container {container.get('id', '?')}"
        added = apply_hooks(spec, planned, label, ())
        reasons = [why for _, _, why in explain_hooks(added, spec)]
        precreate = [entry for entry in planned if entry["stage"] == PRECREATE]
        refused = [
            f"{entry['source']}: precreate hook {entry['hook']['path']}"
            for entry, matched, _ in explain_hooks(precreate, spec)
            if matched
        ]
        return Decision(added, reasons, refused)
