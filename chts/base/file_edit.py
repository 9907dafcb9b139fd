"""Planned edits of files, made before anything is written: engines and config edits plan, commands apply."""

from __future__ import annotations

from typing import List, NamedTuple, Optional


class FileEdit(NamedTuple):
    """One file's change: ``new`` None deletes it; ``backup`` keeps a copy of a file the user owns.

    ``remove_directory``: deleting the file also removes its directory when that is left empty
    (one configure created for it).
    """

    path: str
    old: Optional[bytes]
    new: Optional[bytes]
    backup: bool = True
    mode: int = 0o644
    remove_directory: bool = False


class Plan(NamedTuple):
    edits: List[FileEdit]
    notes: List[str]
