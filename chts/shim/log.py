"""The shim's log lines: its own log file, and errors where the engine will look for them."""

from __future__ import annotations

import posix

from chts.base.logfile import LogFile, append_line, quote, timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chts.config.toolkit import Config
    from chts.shim.argv import RuncCall


def open_log(config: Config, call: RuncCall) -> LogFile:
    section = config["container-hooks-runtime"]
    return LogFile(section["debug"], "debug" if call.debug else section["log-level"])


def runc_log_line(message: str, log_format: str) -> str:
    """A line in runc's own --log format, which containerd and Docker read back on failure."""
    if log_format == "json":
        import json

        return json.dumps({"level": "error", "msg": message, "time": timestamp()}) + "\n"
    return f'time="{timestamp()}" level=error msg={quote(message)}\n'


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
