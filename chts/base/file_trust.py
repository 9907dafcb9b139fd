"""Refuse toolkit files another user could have written: hooks they name run as root on the host."""

from __future__ import annotations

import posix
import stat

from chts.errors import ToolkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Tuple

# posix, not os, at import: the shim loads this module on every cache miss (CONTRIBUTING.md, hot-path tiers).
O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub
O_NONBLOCK: int = posix.O_NONBLOCK

# Writable by group or others: anyone in that group (or anyone at all) could add a hook.
UNSAFE_WRITE_BITS = stat.S_IWGRP | stat.S_IWOTH


def _lexists(path: str) -> bool:
    try:
        posix.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def trusted_owners() -> Tuple[int, ...]:
    """Root, and the user we run as: a non-root shim's hooks run as that user, so its files grant nothing more."""
    euid = posix.geteuid()
    return (0,) if euid == 0 else (0, euid)


def check_owner_and_mode(path: str, st: posix.stat_result, what: str, allow_any_owner: bool = False) -> None:
    """Raise ToolkitError naming ``path`` and its mode when ``st`` shows a file others could have written.

    ``allow_any_owner`` (config ``insecure-allow-non-root-files``) relaxes the owner
    check only, for test roots; a file writable by group or others is never accepted.
    """
    mode = stat.S_IMODE(st.st_mode)
    if not allow_any_owner and st.st_uid not in trusted_owners():
        owners = " or ".join(f"uid {uid}" if uid else "root" for uid in trusted_owners())
        raise ToolkitError(
            f"{path}: refusing {what} owned by uid {st.st_uid} (mode {mode:04o}): hooks run as root, "
            f"so it must be owned by {owners} (chown root {path})"
        )
    if mode & UNSAFE_WRITE_BITS:
        who = (
            "group and others"
            if mode & UNSAFE_WRITE_BITS == UNSAFE_WRITE_BITS
            else ("group" if mode & stat.S_IWGRP else "others")
        )
        raise ToolkitError(
            f"{path}: refusing {what} writable by {who} (mode {mode:04o}): hooks run as root (chmod go-w {path})"
        )


def check_trusted_directory(path: str, what: str, allow_any_owner: bool = False) -> bool:
    """Check a hooks directory; False when it does not exist (no hooks), ToolkitError when unusable."""
    try:
        st = posix.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ToolkitError(f"{path}: {what} is not a directory")
    check_owner_and_mode(path, st, what, allow_any_owner)
    return True


def check_trusted_executable(path: str, allow_any_owner: bool, looking_at: Callable[[str], None]) -> None:
    """Raise ToolkitError when a hook executable on the host, or a directory above it, could be
    changed by a user other than root (and ours), as for hook files.

    Both the path as written and the file it resolves to are checked, each directory from /
    down; ``looking_at`` hears of each path before it is examined (the cache signs them). A
    sticky directory (/tmp) may be writable by all: there only an entry's owner can replace
    it, and each entry's owner is checked. A file that does not exist is runc's to report.
    """
    import os.path  # on a cache miss only, like the rest of planning

    try:
        resolved = os.path.realpath(path)
    except (OSError, ValueError):  # a link it may not read (/proc/1/exe as non-owner): runc will say
        resolved = path
    for candidate in dict.fromkeys((path, resolved)):
        parts = candidate.split("/")[1:]
        for depth in range(len(parts) + 1):
            prefix = "/" + "/".join(parts[:depth])
            looking_at(prefix)
            try:
                st = posix.lstat(prefix) if candidate == path else posix.stat(prefix)
            except (OSError, ValueError):
                break
            if stat.S_ISLNK(st.st_mode):
                continue  # a link's own mode means nothing; its directory and its target are checked
            if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and st.st_uid in trusted_owners():
                continue
            what = "hook executable" if depth == len(parts) else "directory above a hook executable"
            check_owner_and_mode(prefix, st, what, allow_any_owner)


def read_trusted_file(path: str, limit: int, what: str, allow_any_owner: bool = False) -> Optional[str]:
    """The UTF-8 text of ``path`` after checking owner and mode; None when there is no such file.

    The checks use fstat on the descriptor that is read, so the file cannot be
    swapped between the check and the read. Symlinks are followed (packages install
    hooks that way); the file they reach is what is checked.
    """
    try:
        fd = posix.open(path, posix.O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    except FileNotFoundError:
        if _lexists(path):
            raise ToolkitError(f"{path}: {what} is a dangling symlink") from None
        return None
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        st = posix.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ToolkitError(f"{path}: is a directory, expected a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise ToolkitError(f"{path}: {what} is not a regular file")
        check_owner_and_mode(path, st, what, allow_any_owner)
        data = read_up_to(fd, limit + 1)
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read {what}: {exc.strerror}") from None
    finally:
        posix.close(fd)
    return decode_small_text(path, data, limit, what)


def decode_small_text(path: str, data: bytes, limit: int, what: str) -> str:
    """``data`` (read with a limit of ``limit + 1`` bytes) as text, or one error naming ``path``."""
    if len(data) > limit:
        raise ToolkitError(f"{path}: larger than {limit} bytes, refusing to read it as a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_up_to(fd: int, size: int) -> bytes:
    chunks: List[bytes] = []
    while size > 0:
        chunk = posix.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
