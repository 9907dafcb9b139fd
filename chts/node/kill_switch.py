"""kill -9 at a chosen moment, for the node installer's crash tests; inert unless its variable is set.

CONTAINER_HOOKS_TEST_KILL_AT_WRITE=N makes a ctk process SIGKILL itself just before its Nth write to
the file system (an open for writing, rename, unlink, mkdir, rmdir, symlink, chmod, chown ... as
Python's audit events report them), so N = 1, 2, ... visits every moment between two writes; a run
that ends by itself had fewer writes than N. ``N:with-parent`` kills the parent first (a host program
the installer runs: the whole pod dies at once, as it does). ``host:N`` leaves this process alone and
arms the host programs it runs (HostRoot.run passes ``N:with-parent`` on), each counting from 1.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Dict, Mapping, Tuple

VARIABLE = "CONTAINER_HOOKS_TEST_KILL_AT_WRITE"
HOST_PREFIX = "host:"
WITH_PARENT = ":with-parent"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
WRITE_EVENTS = frozenset(
    ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
     "os.truncate", "os.utime", "shutil.copyfile")
)  # fmt: skip


def is_write(event: str, args: Tuple[Any, ...]) -> bool:
    if event == "open":
        return len(args) > 2 and isinstance(args[2], int) and bool(args[2] & WRITE_FLAGS)
    return event in WRITE_EVENTS


def arm_from_environment(environ: Mapping[str, str] = os.environ) -> None:
    """Install the audit hook when the variable asks for this process (nothing else is done otherwise)."""
    value = environ.get(VARIABLE)
    if not value or value.startswith(HOST_PREFIX):
        return
    count, _, parent = value.partition(":")
    if not count.isdigit() or int(count) < 1:
        return
    remaining = [int(count)]
    with_parent = parent == WITH_PARENT[1:]

    def hook(event: str, args: Tuple[Any, ...]) -> None:
        if not is_write(event, args):
            return
        remaining[0] -= 1
        if remaining[0] == 0:
            if with_parent:
                os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)


def host_environment(environ: Mapping[str, str] = os.environ) -> Dict[str, str]:
    """What a host program run by this process gets of the variable (empty unless ``host:N`` is set)."""
    value = environ.get(VARIABLE, "")
    if value.startswith(HOST_PREFIX):
        return {VARIABLE: value[len(HOST_PREFIX) :] + WITH_PARENT}
    return {}
