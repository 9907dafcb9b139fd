"""The record of the hooks a create added to a bundle's config.json, kept beside it and bound to its bytes.

A bundle created again (Podman restarts reuse theirs, and so do runc users) must lose the
hooks the last create added before today's are merged in, or a changed hook would run
twice and a removed one would keep running. The record says which hooks those were. It
lives in the bundle, where only the engine writes, never in the spec: whoever controls
a container's annotations controls the spec's content, and a record there could name an
engine's or admin's security hook as "ours" and have it taken out. It holds the exact
bytes of the config.json it describes, and is believed only while config.json still
has them: an engine that writes a fresh spec (a restart) never matches it, so a record
can take hooks out of nothing but the spec it was written for.

Builtins only: the create path writes it before exec'ing runc.
"""

from __future__ import annotations

import posix

from chts.base.jsonio import dumps, loads_strict
from chts.hooks.model import STAGES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    from chts.hooks.model import Hook

    StageHook = Tuple[str, Hook]

RECORD_NAME = "container-hooks.injected"
# First line of the record; the second is the JSON list of [stage, hook] pairs, the rest
# config.json as written.
HEADER = b"container-hooks-toolkit injected hooks 1\n"
# config.json's limit (chts.hooks.bundle.MAX_SPEC_BYTES) and as much again for the list of hooks.
MAX_RECORD_BYTES = 128 << 20


def record_path(spec_path: str) -> str:
    """The record beside ``spec_path`` (the bundle's config.json)."""
    directory, slash, _ = spec_path.rpartition("/")
    return directory + slash + RECORD_NAME


def read_record(spec_path: str) -> Optional[bytes]:
    """The record's bytes as found (None: there is none, or it cannot be read or is too large)."""
    try:
        with open(record_path(spec_path), "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
    except (OSError, ValueError):
        return None
    return data if len(data) <= MAX_RECORD_BYTES else None


def render(added: List[StageHook], spec_bytes: bytes) -> bytes:
    """The record saying that ``added`` were added to the config.json that now holds ``spec_bytes``."""
    return HEADER + dumps([[stage, hook] for stage, hook in added]).encode("utf-8") + b"\n" + spec_bytes


def previously_added(record: Optional[bytes], spec_bytes: bytes) -> List[StageHook]:
    """The (stage, hook) pairs an earlier create added, when ``record`` describes ``spec_bytes``; else none."""
    if record is None or not record.startswith(HEADER):
        return []
    pairs_line, newline, described = record[len(HEADER) :].partition(b"\n")
    if not newline or described != spec_bytes:
        return []  # a spec the engine wrote afresh (or changed by hand): nothing in it is ours
    try:
        pairs = loads_strict(pairs_line.decode("utf-8"))
    except ValueError:
        return []
    if not isinstance(pairs, list):
        return []
    result: List[StageHook] = []
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2 and pair[0] in STAGES and isinstance(pair[1], dict):
            result.append((pair[0], pair[1]))  # type: ignore[arg-type]  # a hook as written, checked by merging
    return result


def update_record(spec_path: str, found: Optional[bytes], wanted: Optional[bytes]) -> Optional[str]:
    """Make the record ``wanted`` (None: no record) where ``found`` was read; the problem, if any.

    Not synced to disk, and a record that cannot be written does not fail the create: a
    record lost, cut short or left stale no longer matches config.json, which only means
    that the next create of this bundle finds no hook to take out.
    """
    if wanted == found:
        return None
    path = record_path(spec_path)
    if wanted is None:
        try:
            posix.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            return f"{path}: cannot remove: {exc.strerror}"
        return None
    from chts.base.atomic import write_atomically
    from chts.errors import ToolkitError

    try:
        write_atomically(path, wanted, mode=0o600, durable=False, follow_symlinks=False)
    except ToolkitError as exc:
        return str(exc)
    return None
