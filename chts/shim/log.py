"""The shim's log lines: its own log file, and errors where the engine will look for them."""

from __future__ import annotations

import posix
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from chts.config.toolkit import Config
    from chts.shim.argv import RuncCall

O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub
O_NONBLOCK: int = posix.O_NONBLOCK
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _timestamp() -> str:
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


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:,=@+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class ShimLog:
    """Lines of `time level=... pid=... msg=... key=value` in the configured log file.

    A log file that cannot be opened is silently skipped: logging never fails a container.
    """

    def __init__(self, path: str, level: str) -> None:
        self.path = path
        self.threshold = LEVELS.get(level, 20)

    def log(self, level: str, message: str, **fields: Any) -> None:
        if not self.path or LEVELS[level] < self.threshold:
            return
        parts = [_timestamp(), f"level={level}", f"pid={posix.getpid()}", f"msg={_quote(message)}"]
        parts.extend(f"{key}={_quote(str(value))}" for key, value in fields.items())
        append_line(self.path, " ".join(parts) + "\n")

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)


def open_log(config: Config, call: RuncCall) -> ShimLog:
    section = config["container-hooks-runtime"]
    return ShimLog(section["debug"], "debug" if call.debug else section["log-level"])


def runc_log_line(message: str, log_format: str) -> str:
    """A line in runc's own --log format, which containerd and Docker read back on failure."""
    if log_format == "json":
        import json

        return json.dumps({"level": "error", "msg": message, "time": _timestamp()}) + "\n"
    return f'time="{_timestamp()}" level=error msg={_quote(message)}\n'


def one_line(message: str) -> str:
    """``message`` on one line: an engine shows the first line of stderr, and log lines are lines."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def report_error(message: str, runc_log: str, log_format: str) -> None:
    """Show a failure on stderr and in runc's --log file (never on stdout: engines parse it).

    Never raises: a closed or broken stderr only loses the line.
    """
    message = one_line(message)
    try:
        posix.write(2, (message + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass
    if runc_log:
        append_line(runc_log, runc_log_line(message, log_format))
