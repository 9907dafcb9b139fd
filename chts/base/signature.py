"""A file's stat signature: what changes when the file changes. Builtins only (the shim's hot path)."""

import posix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional, Tuple

    Signature = Optional[Tuple[int, ...]]


def signature(path: str) -> "Signature":
    """What changes when the file at ``path`` changes; None when there is no file."""
    try:
        st = posix.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev, st.st_mode, st.st_uid)


# A file changed this recently may change again within the same timestamp tick and keep its size:
# its signature does not prove that what was read is what is there now.
RACY_SECONDS = 2.0


def unchanged(signed: "Iterable[Tuple[str, Signature]]") -> bool:
    """Whether every (path, signature) of ``signed`` still has that signature."""
    return all(signature(path) == sig for path, sig in signed)


def settled(signed: "Iterable[Tuple[str, Signature]]", now_ns: int, racy_seconds: float = RACY_SECONDS) -> bool:
    """Whether what was read under ``signed`` may be kept: every source unchanged since, and none
    changed within ``racy_seconds`` of ``now_ns`` (neither mtime nor ctime, which `cp -p`, tar and dpkg
    cannot set back as they do the mtime)."""
    racy_after = now_ns - int(racy_seconds * 1e9)
    for path, sig in signed:
        if sig is not None and max(sig[0], sig[1]) > racy_after:
            return False
        if signature(path) != sig:
            return False
    return True
