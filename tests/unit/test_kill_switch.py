"""The crash tests' kill -9 switch: which calls are writes, and that it kills at the Nth and is inert otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chts.node.kill_switch import VARIABLE, host_environment, is_write

ROOT = Path(__file__).resolve().parents[2]
THREE_WRITES = """
import os, sys
from chts.node.kill_switch import arm_from_environment
arm_from_environment()
with open(sys.argv[1] + "/a", "rb") as handle:  # a read: not a moment
    handle.read()
for name in ("b", "c", "d"):
    with open(sys.argv[1] + "/" + name, "w") as handle:
        handle.write(name)
"""


def test_writes_are_the_calls_that_change_the_file_system() -> None:
    assert is_write("open", ("/x", "w", os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    assert is_write("open", ("/x", None, os.O_RDWR))
    assert not is_write("open", ("/x", "r", os.O_RDONLY))
    assert all(is_write(event, ()) for event in ("os.rename", "os.remove", "os.mkdir", "os.symlink", "os.chmod"))
    assert not is_write("os.listdir", ("/x",))


@pytest.mark.parametrize(("value", "written", "code"), [
    ("1", "", -signal.SIGKILL), ("3", "bc", -signal.SIGKILL), ("4", "bcd", 0), ("", "bcd", 0), ("host:1", "bcd", 0),
    ("0", "bcd", 0), ("x", "bcd", 0),
])  # fmt: skip
def test_a_process_kills_itself_before_its_nth_write(tmp_path: Path, value: str, written: str, code: int) -> None:
    (tmp_path / "a").write_text("")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), VARIABLE: value}
    done = subprocess.run([sys.executable, "-c", THREE_WRITES, str(tmp_path)], env=env, check=False)
    assert done.returncode == code
    assert "".join(p.read_text() for p in sorted(tmp_path.iterdir()) if p.name != "a") == written


def test_host_programs_are_armed_only_by_host_n() -> None:
    assert host_environment({VARIABLE: "host:7"}) == {VARIABLE: "7:with-parent"}
    assert host_environment({VARIABLE: "7"}) == {}
    assert host_environment({}) == {}
