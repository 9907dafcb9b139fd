"""The runtime record: what the archive's sh start (chts/start.sh) needs to pass runc calls on by itself.

The shim's choice of runtime depends on the config's `runtimes` (and on PATH and the
files on it, which the sh looks up itself, as chts.shim.main.find_runtime does). Parsing
TOML is no job for sh, so every Python run of the shim renews this record of the
config's runtimes, which the sh uses only while it was made by the same build, for the
same config path, and config.toml is not newer than it: the record's mtime is set to
config.toml's. A config changed less than two seconds ago is not recorded (the sh's
`-nt` may compare whole seconds). A record with no runtimes sends every call to Python:
written when passthrough calls must be logged, or a value cannot be written on a line.
After the runtimes, an empty line and one "TAG BINARY" line per `[container-hooks-runtime.chains]`
entry: what the shim run as container-hooks-runtime.TAG execs (tags hold no space).

Like the parse cache (chts.shim.cache) it lives in the cache directory, only if that is
ours and writable by no one else, written to a temporary file and renamed.
Builtins only: the shim writes it before exec'ing runc.
"""

import posix
import time

from chts.shim import cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

RECORD_NAME = "runtime-record"
# First line of the record, followed by the build's identity (build.py writes chts/_build.py).
HEADER = "container-hooks-toolkit runtime record"
RACY_NS = 2_000_000_000


def header() -> "Optional[str]":
    """The record's first line for this build; None when not running from a built archive."""
    try:
        from chts._build import BUILD  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return f"{HEADER} {BUILD}"


def content(
    first_line: str,
    config_path: str,
    config_mtime_ns: "Optional[int]",
    runtimes: "List[str]",
    chains: "Optional[Dict[str, str]]" = None,
) -> bytes:
    """The record's lines: header, config path, whether it exists, one runtime a line, then the chains."""
    lines = [first_line, config_path, "absent" if config_mtime_ns is None else "present"]
    chains = chains or {}
    if runtimes and all("\n" not in value for value in (config_path, *runtimes, *chains, *chains.values())):
        lines.extend(runtimes)
        if chains:
            lines.append("")
            lines.extend(f"{tag} {binary}" for tag, binary in chains.items())
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def renew(
    config_path: str, runtimes: "List[str]", passthrough_logs: bool, chains: "Optional[Dict[str, str]]" = None
) -> None:
    """Make the record say ``runtimes`` (and ``chains``) for ``config_path`` as it is now; never fails the caller."""
    first_line = header()
    directory = cache.cache_dir()
    if first_line is None or not cache._trusted_dir(directory, True):
        return
    try:
        config_mtime_ns: Optional[int] = posix.stat(config_path).st_mtime_ns
    except (OSError, ValueError):
        config_mtime_ns = None
    if config_mtime_ns is not None and time.time_ns() - config_mtime_ns < RACY_NS:
        return  # changed just now (or dated in the future): the sh's -nt could miss the next change
    data = content(first_line, config_path, config_mtime_ns, [] if passthrough_logs else runtimes, chains)
    path = f"{directory}/{RECORD_NAME}"
    if _current(path, data, config_mtime_ns):
        return
    cache.replace_file(path, data, config_mtime_ns)


def _current(path: str, data: bytes, config_mtime_ns: "Optional[int]") -> bool:
    """Whether the record at ``path`` already holds ``data`` with the right mtime."""
    found = cache.read_own_file(path)
    if found is None:
        return False
    existing, st = found
    return existing == data and (config_mtime_ns is None or st.st_mtime_ns == config_mtime_ns)
