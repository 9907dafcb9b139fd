"""Log lines of `time level=... pid=... msg=... key=value` appended to a file: the shim's log, and the
NRI plugin's lines in the same file. Builtins only (the shim's create path loads it)."""

from __future__ import annotations

import posix
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict

O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub
O_NONBLOCK: int = posix.O_NONBLOCK
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def append_line(path: str, line: str) -> None:
    """Append one line with a single O_APPEND write, so concurrent shims never interleave.

    O_NONBLOCK: a FIFO in the log's place (no reader, or a full pipe) must not hang a
    create; the line is dropped instead (as it is when the file cannot be opened).
    """
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o640)
    except (OSError, ValueError):
        return
    try:
        posix.write(fd, line.encode("utf-8", "backslashreplace"))
    except OSError:
        pass
    finally:
        posix.close(fd)


BARE = {ord(c): None for c in "-_./:,=@+"}  # with letters and digits: what a value may hold unquoted


def quote(value: str) -> str:
    rest = value.translate(BARE)  # one C pass, where a test per character cost the NRI plugin per create
    if value and (not rest or rest.isalnum()):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(level: str, message: str, fields: Dict[str, Any]) -> str:
    """One log line, newline included."""
    parts = [timestamp(), f"level={level}", f"pid={posix.getpid()}", f"msg={quote(message)}"]
    parts.extend(f"{key}={quote(str(value))}" for key, value in fields.items())
    return " ".join(parts) + "\n"


class Levels:
    """debug/info/warning/error(message, **fields) for a class with log(level, message, **fields)."""

    def log(self, level: str, message: str, **fields: Any) -> None:
        raise NotImplementedError

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)


class LogFile(Levels):
    """Lines of `time level=... pid=... msg=... key=value` in the configured log file.

    A log file that cannot be opened is silently skipped: logging never fails a container.
    An empty path logs nothing.
    """

    def __init__(self, path: str, level: str) -> None:
        self.path = path
        self.threshold = LEVELS.get(level, 20)

    def log(self, level: str, message: str, **fields: Any) -> None:
        if not self.path or LEVELS[level] < self.threshold:
            return
        append_line(self.path, render(level, message, fields))
