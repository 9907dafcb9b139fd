"""A bundle's config.json as the hook model reads it, and the hooks that apply to it.

The shim's create path edits the text (chts.shim.inject); `ctk hooks explain` shows what
it would do. Both read config.json here and select and merge hooks the same way.
"""

from __future__ import annotations

from chts.base.jsonio import loads_object
from chts.errors import ToolkitError
from chts.hooks.merge import SpecError, has_marker, merge_hooks
from chts.hooks.model import describe_json_error
from chts.hooks.sources import select_hooks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Tuple

    from chts.hooks.model import Hook
    from chts.hooks.sources import PlannedHook

MAX_SPEC_BYTES = 64 << 20


class SpecText:
    """config.json as read: its text, its value, and where each top-level member's value is."""

    __slots__ = ("close", "deep", "members", "path", "raw", "spec", "text")

    def __init__(self, path: str, raw: bytes) -> None:
        self.path = path
        self.raw = raw
        try:
            self.text = raw.decode("utf-8")
            self.spec, self.members, self.close, self.deep = loads_object(self.text)
        except UnicodeDecodeError as exc:
            raise ToolkitError(f"{path}: not UTF-8 (byte {exc.start})") from None
        except ValueError as exc:
            if str(exc).startswith("must be a JSON object"):
                raise ToolkitError(f"{path}: {exc}") from None
            raise ToolkitError(describe_json_error(path, self.text, exc)) from None


def read_spec_text(path: str) -> Optional[SpecText]:
    """config.json of a bundle; None when there is none (runc will say so in its own words)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise ToolkitError(f"{path}: larger than {MAX_SPEC_BYTES} bytes")
    return SpecText(path, raw)


def read_spec(path: str) -> Tuple[Optional[Dict[str, Any]], bytes]:
    """(spec, raw bytes); (None, b"") when there is no config.json for runc to complain about."""
    spec_text = read_spec_text(path)
    return (None, b"") if spec_text is None else (spec_text.spec, spec_text.raw)


def provenance(selected: List[PlannedHook], added: List[Tuple[str, Hook]]) -> List[PlannedHook]:
    """The planned entries behind ``added`` (the (stage, hook) pairs merging added, in order)."""
    remaining = list(added)
    result = []
    for entry in selected:
        if remaining and remaining[0] == (entry["stage"], entry["hook"]):
            result.append(entry)
            remaining.pop(0)
    return result


def apply_hooks(
    spec: Dict[str, Any], planned: List[PlannedHook], spec_path: str, previous: Sequence[Tuple[str, Hook]]
) -> List[PlannedHook]:
    """Merge the hooks that apply to this container into ``spec``; return those added.

    ``previous`` (what an earlier create recorded as its own, chts.hooks.bundle_record) are
    replaced, as on the create path.
    """
    if has_marker(spec):
        return []
    selected = select_hooks(planned, spec)
    try:
        added = merge_hooks(spec, [(entry["stage"], entry["hook"]) for entry in selected], previous)
    except SpecError as exc:
        raise ToolkitError(f"{spec_path}: {exc}") from None
    return provenance(selected, added)
