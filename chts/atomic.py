"""Crash-safe file replacement: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import stat

from chts.errors import ToolkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def write_atomically(
    path: str,
    data: bytes,
    *,
    mode: Optional[int] = None,
    backup_suffix: Optional[str] = None,
) -> Optional[str]:
    """Replace ``path`` with ``data`` through a temporary file in the same directory.

    An existing file keeps its mode and owner (``mode`` applies to new files only,
    default 0644). A symlink is followed, so the link survives and its target is
    replaced. With ``backup_suffix`` the previous content is first copied to
    ``path + backup_suffix`` (itself written atomically) and that path is returned.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read: {exc.strerror}") from None
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise ToolkitError(f"{path}: not a regular file")

    backup = None
    if old is not None and backup_suffix:
        backup = target + backup_suffix
        with open(target, "rb") as current:
            write_atomically(backup, current.read(), mode=stat.S_IMODE(old.st_mode))

    tmp = os.path.join(directory, f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        os.unlink(tmp)  # left by a crashed run of this same pid number
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot write in {directory}: {exc.strerror}") from None
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if old is not None:
            if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
        else:
            os.fchmod(fd, 0o644 if mode is None else mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, target)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ToolkitError(f"{path}: cannot write: {exc.strerror}") from None
        raise
    _fsync_directory(directory)
    return backup


def copy_atomically(source: str, destination: str, mode: int) -> None:
    """Copy ``source`` over ``destination`` so that no reader ever sees a partial copy."""
    import shutil  # not at the top: the shim's create path writes with write_atomically only

    directory = os.path.dirname(os.path.abspath(destination))
    tmp = os.path.join(directory, f".{os.path.basename(destination)}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as copied:
            os.fsync(copied.fileno())
        os.rename(tmp, destination)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ToolkitError(f"{destination}: cannot install: {exc.strerror}") from None
    _fsync_directory(directory)
