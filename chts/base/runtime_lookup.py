"""Finding the low-level runtime as the shim execs it: a name with `/` as is, else $PATH, then the
standard directories; never the shim itself. The shim, `ctk check` and the engines' readers share it.

Builtins only: the shim looks the runtime up on every runc call.
"""

import posix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHAINED_PREFIX = "container-hooks-runtime."  # chts.SHIM and a dot: the shim's name for a chained runtime


def chain_tag(path: str) -> "Optional[str]":
    """TAG when ``path`` names the shim as container-hooks-runtime.TAG, the name `runtime configure` links
    for a chained runtime (it execs exactly ``[container-hooks-runtime.chains] TAG``), else None."""
    name = path.rpartition("/")[2]
    return name[len(CHAINED_PREFIX) :] if name.startswith(CHAINED_PREFIX) else None


def _stat_identity(path: str) -> "Optional[Tuple[int, int]]":
    try:
        st = posix.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _search_path() -> "List[str]":
    env = posix.environ
    path = env.get(b"PATH")
    dirs = path.decode("utf-8", "surrogateescape").split(":") if path else []
    for fallback in FALLBACK_PATH.split(":"):
        if fallback not in dirs:
            dirs.append(fallback)
    return [d or "." for d in dirs]


def find_runtime(candidates: "Sequence[str]", self_path: str) -> "Optional[str]":
    """The first candidate that is an executable file and not this shim itself, or None."""
    me = _stat_identity(self_path)
    search = None
    for candidate in candidates:
        if "/" in candidate:
            paths = [candidate]
        else:
            if search is None:
                search = _search_path()
            paths = [d + "/" + candidate for d in search]
        for path in paths:
            try:
                st = posix.stat(path)
            except (OSError, ValueError):
                continue
            if st.st_mode & 0o170000 != 0o100000 or not posix.access(path, posix.X_OK):
                continue
            if (st.st_dev, st.st_ino) == me:
                continue  # ourselves under another name: exec'ing it would loop
            return path
    return None
