"""A file's stat signature: what changes when the file changes. Builtins only (the shim's hot path)."""

import posix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

    Signature = Optional[Tuple[int, ...]]


def signature(path: str) -> "Signature":
    """What changes when the file at ``path`` changes; None when there is no file."""
    try:
        st = posix.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev, st.st_mode, st.st_uid)
