"""Planned edits of files, made before anything is written: engines and config edits plan, commands apply.

`EditWriter` writes a plan's edits so that a change found wrong afterwards (the engine's effective
configuration is not what was asked) can be taken back whole: the files, the backups writing made
and the directories made for new files.
"""

from __future__ import annotations

import os
from typing import List, NamedTuple, Optional

from chts.base.atomic import read_bytes, write_atomically
from chts.errors import ToolkitError

BACKUP_SUFFIX = ".container-hooks.bak"


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


def missing_directories(path: str) -> List[str]:
    """The directories above ``path`` that do not exist yet, deepest first (writing it creates them)."""
    missing = []
    directory = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(directory) and directory != os.path.dirname(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    return missing


def remove_empty_directories(directories: List[str]) -> None:
    """Remove each of ``directories`` (deepest first) that is empty; a directory with anything in it stays."""
    for directory in directories:
        try:
            os.rmdir(directory)
        except OSError:
            pass


def apply_edit(edit: FileEdit, keep_backup: bool = True) -> str:
    """Make ``edit`` (atomically; a backup when it and ``keep_backup`` ask for one); what was done, one line."""
    if edit.new is None:
        try:
            os.unlink(edit.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ToolkitError(f"{edit.path}: cannot remove: {exc.strerror}") from None
        if edit.remove_directory:
            remove_empty_directories([os.path.dirname(os.path.abspath(edit.path))])
        return f"removed {edit.path}"
    directory = os.path.dirname(os.path.abspath(edit.path))
    if edit.old is None and not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o755)
        except OSError as exc:
            raise ToolkitError(f"{directory}: cannot create: {exc.strerror}") from None
    suffix = BACKUP_SUFFIX if edit.backup and keep_backup else None
    backup = write_atomically(edit.path, edit.new, mode=edit.mode, backup_suffix=suffix)
    return f"wrote {edit.path}" + (f" (previous content in {backup})" if backup else "")


def undo(edit: FileEdit) -> FileEdit:
    """The edit that puts back what ``edit`` changed (a file it created is removed)."""
    return FileEdit(edit.path, edit.new, edit.old, backup=False, mode=edit.mode)


class EditWriter:
    """Writes edits one at a time, remembering enough to take every one of them back.

    ``keep_backups`` False: no backup beside any file (the node installer gives a node's files back whole
    on uninstall, so a backup would be one file more it leaves behind)."""

    def __init__(self, edits: List[FileEdit], keep_backups: bool = True) -> None:
        self.keep_backups = keep_backups
        # the backups writing will make, as they are now (None: none), put back when the change is taken back
        self.backups = [
            (edit.path + BACKUP_SUFFIX, read_bytes(edit.path + BACKUP_SUFFIX))
            for edit in edits
            if keep_backups and edit.backup and edit.old is not None
        ]
        self.created = [d for edit in edits if edit.old is None for d in missing_directories(edit.path)]
        self.written: List[FileEdit] = []
        self.reports: List[str] = []  # said by the caller only once the change stands

    def write(self, edit: FileEdit) -> None:
        self.reports.append(apply_edit(edit, self.keep_backups))
        self.written.append(edit)

    def take_back(self) -> None:
        """The backups as they were, then every file written put back, newest first: a failed change leaves
        no trace, not even a new backup, nor a directory made for a new file."""
        for path, content in self.backups:
            apply_edit(FileEdit(path, None, content, backup=False))
        for edit in reversed(self.written):
            apply_edit(undo(edit))
        remove_empty_directories(self.created)
