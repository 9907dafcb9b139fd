"""Crash-safe file replacement: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import posix
import stat

from chts.errors import ToolkitError

# posix rather than os (outside the create path's tier, CONTRIBUTING.md): the shim writes every container's config.json
# through write_atomically.
O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub
O_DIRECTORY: int = posix.O_DIRECTORY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


def read_bytes(path: str) -> Optional[bytes]:
    """A file's current bytes (what a replacement would overwrite); None when there is none."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read: {exc.strerror}") from None


def _fsync_directory(directory: str) -> None:
    try:
        fd = posix.open(directory, posix.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    except OSError:
        return
    try:
        posix.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename is still atomic
    finally:
        posix.close(fd)


def _real_path(path: str) -> str:
    """``path`` with symlinks resolved (os.path.realpath), importing os only when there is one."""
    try:
        if not stat.S_ISLNK(posix.lstat(path).st_mode):
            return path
    except OSError:
        return path
    import os

    return os.path.realpath(path)


def write_atomically(
    path: str,
    data: bytes,
    *,
    mode: Optional[int] = None,
    backup_suffix: Optional[str] = None,
    durable: bool = True,
    follow_symlinks: bool = True,
    mtime_ns: Optional[int] = None,
) -> Optional[str]:
    """Replace ``path`` with ``data`` through a temporary file in the same directory.

    An existing file keeps its mode and owner (``mode`` applies to new files only,
    default 0644). A symlink is followed, so the link survives and its target is
    replaced. With ``backup_suffix`` the previous content is first copied to
    ``path + backup_suffix`` (itself written atomically) and that path is returned.
    ``durable=False`` skips the fsyncs, for a file whose loss in a crash costs nothing;
    ``follow_symlinks=False`` replaces a symlink at ``path`` instead of its target.
    ``mtime_ns`` dates the new file (access and modification time) before it is renamed into place.
    """
    target = _real_path(path) if follow_symlinks else path
    directory, _, name = target.rpartition("/")
    directory = directory or ("/" if target.startswith("/") else ".")
    try:
        old = posix.stat(target) if follow_symlinks else posix.lstat(target)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read: {exc.strerror}") from None
    if old is not None and not stat.S_ISREG(old.st_mode):
        if follow_symlinks or not stat.S_ISLNK(old.st_mode):
            raise ToolkitError(f"{path}: not a regular file")
        old = None  # the link itself is replaced, as a new file

    backup = None
    if old is not None and backup_suffix:
        backup = target + backup_suffix
        with open(target, "rb") as current:
            write_atomically(backup, current.read(), mode=stat.S_IMODE(old.st_mode))

    tmp = temp_name(directory, name, posix.getpid())
    flags = posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | O_CLOEXEC
    try:
        fd = posix.open(tmp, flags, 0o600)
    except FileExistsError:
        posix.unlink(tmp)  # left by a crashed run of this same pid number
        fd = posix.open(tmp, flags, 0o600)
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot write in {directory}: {exc.strerror}") from None
    try:
        view = memoryview(data)
        while view:
            written = posix.write(fd, view)
            view = view[written:]
        if old is not None:
            if (old.st_uid, old.st_gid) != (posix.geteuid(), posix.getegid()):
                posix.fchown(fd, old.st_uid, old.st_gid)
            posix.fchmod(fd, stat.S_IMODE(old.st_mode))
        else:
            posix.fchmod(fd, 0o644 if mode is None else mode)
        if mtime_ns is not None:
            posix.utime(fd, ns=(mtime_ns, mtime_ns))
        if durable:
            posix.fsync(fd)
        posix.close(fd)
        fd = -1
        posix.rename(tmp, target)
    except BaseException as exc:
        if fd >= 0:
            posix.close(fd)
        try:
            posix.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ToolkitError(f"{path}: cannot write: {exc.strerror}") from None
        raise
    if durable:
        _fsync_directory(directory)
    return backup


def temp_name(directory: str, name: str, pid: int) -> str:
    """The temporary file a writer with process id ``pid`` uses to replace ``directory/name``."""
    return f"{directory.rstrip('/')}/.{name}.{pid}.tmp"


def remove_stale_temps(path: str, *beside: str) -> None:
    """Remove temporary files a killed writer left beside ``path`` (kill -9 mid-write), and beside each
    of ``beside`` (files of the same directory: one listing serves all): those of processes that no
    longer exist. Never fails: a file left over is only clutter."""
    directory, _, name = _real_path(path).rpartition("/")
    directory = directory or "."
    names = [name, *(other.rpartition("/")[2] for other in beside)]
    try:
        entries = posix.listdir(directory)
    except (OSError, ValueError):
        return
    for entry in entries:
        if not entry.endswith(".tmp"):
            continue
        for name in names:
            prefix = f".{name}."
            pid = entry[len(prefix) : -len(".tmp")] if entry.startswith(prefix) else ""
            if not pid.isdigit() or int(pid) == posix.getpid() or _alive(int(pid)):
                continue
            try:
                posix.unlink(temp_name(directory, name, int(pid)))
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        posix.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True  # another user's process (EPERM), or not a pid at all: leave its file
    return True


def copy_atomically(source: str, destination: str, mode: int) -> None:
    """Copy ``source`` over ``destination`` so that no reader ever sees a partial copy."""
    import os
    import shutil

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


def symlink_atomically(link: str, target: str) -> None:
    """Make ``link`` point at ``target`` by renaming a new link over it: never absent, never half-made."""
    import os

    tmp = os.path.join(os.path.dirname(link), f".{os.path.basename(link)}.{os.getpid()}.tmp")
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.rename(tmp, link)
    except OSError as exc:
        raise ToolkitError(f"{link}: cannot link to {target}: {exc.strerror}") from None
