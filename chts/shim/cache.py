"""A marshal cache of parsed toolkit files, so runc calls skip TOML and JSON parsing.

Each entry records the stat signature of every file it was computed from, taken
before the file was read, and is used only while all of them are unchanged. Entries
for files changed (mtime or ctime) in the last two seconds are not stored: a same-size
rewrite within one timestamp tick would otherwise go unseen. The directory must belong to us and be writable by no one
else: it decides which hooks run as root. Imports builtins only (hot path).
"""

import marshal
import posix
import time

from chts import DEFAULT_CACHE_DIR
from chts.base.signature import RACY_SECONDS as RACY_SECONDS  # tests and bench/ set it here
from chts.base.signature import settled, signature, unchanged

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple

    from chts.base.signature import Signature

O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub

# Bump when the shape of cached values changes (new config keys, new planned-hook
# fields): entries written by an older .pyz must not be read by a newer one.
FORMAT = 4  # 4: drop-in plans hold Go patterns, createRuntime for prestart, 0.1.0 anyOf, precreate


def cache_dir() -> str:
    value = posix.environ.get(b"CONTAINER_HOOKS_CACHE_DIR")
    return value.decode("utf-8", "surrogateescape") if value else DEFAULT_CACHE_DIR


def _entry_path(key: str) -> str:
    # FNV-1a names the entry; the full key is stored inside and compared on read.
    digest = 0xCBF29CE484222325
    for byte in key.encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{cache_dir()}/{key.partition(':')[0]}-{digest:016x}"


def _trusted_dir(directory: str, create: bool) -> bool:
    try:
        st = posix.stat(directory)
    except FileNotFoundError:
        if not create:
            return False
        try:
            posix.mkdir(directory, 0o700)
            st = posix.stat(directory)
        except OSError:
            return False
    except OSError:
        return False
    return st.st_uid == posix.geteuid() and not st.st_mode & 0o022 and st.st_mode & 0o170000 == 0o040000


def read(key: str) -> "Any":
    """The cached value for ``key`` if every file it came from is unchanged, else None."""
    path = _entry_path(key)
    if not _trusted_dir(cache_dir(), False):
        return None
    found = read_own_file(path)
    if found is None:
        return None
    try:
        fmt, stored_key, sources, value = marshal.loads(found[0])
    except (EOFError, ValueError, TypeError):
        return None
    if fmt != FORMAT or stored_key != key:
        return None
    return value if unchanged(sources) else None


def read_own_file(path: str) -> "Optional[Tuple[bytes, Any]]":
    """(content, stat) of ``path`` if it is ours and writable by no one else, else None."""
    try:
        fd = posix.open(path, posix.O_RDONLY | O_CLOEXEC)
    except OSError:
        return None
    try:
        st = posix.fstat(fd)
        if st.st_uid != posix.geteuid() or st.st_mode & 0o022:
            return None
        return posix.read(fd, max(st.st_size, 1) + 1), st
    except OSError:
        return None
    finally:
        posix.close(fd)


def write(key: str, signed: "List[Tuple[str, Signature]]", value: "Any") -> None:
    """Store ``value`` as computed from the sources of ``signed``; never fails the caller.

    ``signed`` holds each source's signature taken before it was read. The entry is
    stored only if every source still has that signature (nothing replaced it while
    it was read) and none changed within RACY_SECONDS: neither its mtime (a same-size
    rewrite within one timestamp tick) nor its ctime, which `cp -p`, `install -p`,
    `rsync -t`, tar and dpkg cannot set back as they do the mtime.
    """
    path = _entry_path(key)
    if not _trusted_dir(cache_dir(), True):
        return
    if not settled(signed, time.time_ns(), RACY_SECONDS):
        return
    replace_file(path, marshal.dumps((FORMAT, key, signed, value)))


def replace_file(path: str, data: bytes, mtime_ns: "Optional[int]" = None) -> None:
    """Put ``data`` (and ``mtime_ns``) at ``path`` (mode 0600 when new), so a concurrent reader
    sees the old file or the new; never fails the caller. Not synced: a cache entry or record
    lost in a crash is only computed again."""
    from chts.base.atomic import write_atomically
    from chts.errors import ToolkitError

    try:
        write_atomically(path, data, mode=0o600, durable=False, follow_symlinks=False, mtime_ns=mtime_ns)
    except (ToolkitError, ValueError):
        pass


def load_config(path: str) -> "Tuple[Any, Optional[str]]":
    """(config, error message or None) for the toolkit config at ``path``, cached.

    A broken config yields the defaults and the error, so that passthrough calls
    still reach runc; a create reports the error.
    """
    key = "config:" + path
    cached = read(key)
    if cached is None:
        signed = [(path, signature(path))]
        from chts.config import toolkit as toolkit_config
        from chts.errors import ToolkitError, unexpected

        try:
            cached = (toolkit_config.load_config(path), None)
        except ToolkitError as exc:
            cached = (toolkit_config.default_config(), str(exc))
        except Exception as exc:  # a reader's bug must not stop passthrough: the create reports it
            return toolkit_config.default_config(), f"{path}: cannot use the toolkit config: {unexpected(exc)}"
        write(key, signed, cached)
    config, error = cached
    return config, error
