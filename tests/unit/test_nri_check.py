"""`ctk check`'s NRI lines: socket, NRI in the runtime's config, the plugin's state file; only contradictions warn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from ctk_cli import run_ctk

from chts.engines import containerd_config


@pytest.fixture(autouse=True)
def no_containerd_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files decide which containerd rules apply (version 2: 1.x, version 3: 2.x), not the host's binary."""
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)


class Node:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.state = base / "nri-state"
        self.state.mkdir()
        self.containerd = base / "containerd.toml"
        self.socket = base / "nri.sock"

    def check(self, capsys: Any, *extra: str) -> Tuple[int, List[str], str]:
        status, out, err = run_ctk(
            capsys, "check", "--no-container", "--config-source=file", "--dest", str(self.base / "bin"),
            "--config", str(self.base / "toolkit.toml"), f"--containerd-config={self.containerd}",
            *(f"--{engine}-config={self.base / engine}" for engine in ("docker", "crio", "podman")),
            f"--nri-state-dir={self.state}", f"--nri-socket={self.socket}", *extra,
        )  # fmt: skip
        return status, [line for line in out.splitlines() if line[6:].startswith("nri")], err

    def plugin(self, name: str = "container-hooks", **fields: Any) -> Path:
        state = {"pid": os.getpid(), "socket": str(self.socket), "name": name, "index": "10", "registered": True,
                 "since": 1700000000.0, "version": "0.1.0", "containers": 3, **fields}  # fmt: skip
        path = self.state / f"{name}.json"
        path.write_text(json.dumps(state))
        return path


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    yield Node(tmp_path)


@pytest.fixture
def listening(node: Node) -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(node.socket))
    server.listen()
    yield server
    server.close()


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_nothing_of_nri_mode_is_skipped_and_never_fails(capsys: Any, node: Node) -> None:
    status, lines, err = node.check(capsys)
    assert status == 0 and err == ""
    assert lines == [
        f"SKIP  nri socket: no {node.socket}: no runtime serves NRI there (NRI mode is optional)",
        f"SKIP  nri plugin: not running here (no state file in {node.state})",
    ]


def test_containerd_17_with_nri_off_says_the_one_edit(capsys: Any, node: Node) -> None:
    node.containerd.write_text("version = 2\n")
    status, lines, _ = node.check(capsys)
    assert status == 0
    assert lines[0] == (
        f"SKIP  nri (containerd): NRI disabled ({node.containerd}, seen by file): NRI mode needs it on: set "
        f'[plugins."io.containerd.nri.v1.nri"] disable = false (in {node.containerd} or a file it imports) and '
        "restart containerd"
    )
    # turned on in the file (containerd 2.x's default for a version 3 file), at another socket
    node.containerd.write_text(
        'version = 2\n[plugins."io.containerd.nri.v1.nri"]\ndisable = false\nsocket_path = "/run/x/nri.sock"\n'
    )
    status, lines, _ = node.check(capsys)
    assert lines[0] == f"PASS  nri (containerd): NRI enabled, socket /run/x/nri.sock ({node.containerd}, seen by file)"
    node.containerd.write_text("version = 3\n")
    status, lines, _ = node.check(capsys)
    assert (
        lines[0]
        == f"PASS  nri (containerd): NRI enabled, socket /var/run/nri/nri.sock ({node.containerd}, seen by file)"
    )
    node.containerd.write_text('version = 3\ndisabled_plugins = ["io.containerd.nri.v1.nri"]\n')
    assert node.check(capsys)[1][0].startswith("SKIP  nri (containerd): NRI disabled")


def test_a_registered_plugin_on_a_served_socket_passes(capsys: Any, node: Node, listening: socket.socket) -> None:
    node.containerd.write_text(f'version = 3\n[plugins."io.containerd.nri.v1.nri"]\nsocket_path = "{node.socket}"\n')
    node.plugin()
    status, lines, _ = node.check(capsys)
    assert status == 0
    assert lines[1:] == [
        f"PASS  nri socket: {node.socket} is there (a runtime serves NRI)",
        f"PASS  nri plugin: 10-container-hooks (pid {os.getpid()}, version 0.1.0) registered on {node.socket} since "
        "2023-11-14 22:13:20 UTC, 3 container(s) seen",
    ]
    status, out, _ = run_ctk(capsys, *node_args(node), "--format=json")
    document = json.loads(out)
    assert document["nri"]["socket"] == {"path": str(node.socket), "present": True}
    assert document["nri"]["runtimes"]["containerd"]["enabled"] is True
    (plugin,) = document["nri"]["plugins"]
    assert (plugin["registered"], plugin["alive"], plugin["pid"]) == (True, True, os.getpid())


@pytest.mark.parametrize("since", [1e400, 10**30, -(10**30), "yesterday", None])
def test_a_start_time_this_host_cannot_show_is_unknown(
    capsys: Any, node: Node, listening: socket.socket, since: Any
) -> None:
    node.containerd.write_text(f'version = 3\n[plugins."io.containerd.nri.v1.nri"]\nsocket_path = "{node.socket}"\n')
    node.plugin(since=since)
    status, lines, err = node.check(capsys)
    assert (status, err) == (0, "")
    assert lines[-1] == (
        f"PASS  nri plugin: 10-container-hooks (pid {os.getpid()}, version 0.1.0) registered on {node.socket} since "
        "an unknown time, 3 container(s) seen"
    )


def node_args(node: Node) -> List[str]:
    return ["check", "--no-container", "--config-source=file", "--dest", str(node.base / "bin"), "--config",
            str(node.base / "toolkit.toml"), f"--containerd-config={node.containerd}",
            *(f"--{engine}-config={node.base / engine}" for engine in ("docker", "crio", "podman")),
            f"--nri-state-dir={node.state}", f"--nri-socket={node.socket}"]  # fmt: skip


def test_contradictions_warn_and_do_not_fail(capsys: Any, node: Node, listening: socket.socket) -> None:
    pid = dead_pid()
    path = node.plugin(pid=pid)
    status, lines, _ = node.check(capsys)
    assert status == 0
    assert lines[-1] == (
        f"WARN  nri plugin: {path} says 10-container-hooks (pid {pid}, version 0.1.0) is registered, but pid {pid} "
        "is gone: it died without cleaning up; containers created since get no hooks"
    )
    node.plugin()  # alive, while containerd has NRI off
    node.containerd.write_text("version = 2\n")
    status, lines, _ = node.check(capsys)
    assert status == 0
    assert f"WARN  nri plugin: 10-container-hooks (pid {os.getpid()}, version 0.1.0) runs, but NRI is disabled in " \
           "containerd's configuration: no container gets its hooks through it" in lines  # fmt: skip
    node.plugin(registered=False)  # beside a socket that is served, still not registered
    node.containerd.unlink()
    status, lines, _ = node.check(capsys)
    assert lines[-1] == (
        f"WARN  nri plugin: 10-container-hooks (pid {os.getpid()}, version 0.1.0) runs but is not registered on "
        f"{node.socket}: containers created now get no hooks from it"
    )
    node.plugin(socket="/elsewhere/nri.sock")
    status, lines, _ = node.check(capsys)
    assert f"WARN  nri plugin: 10-container-hooks (pid {os.getpid()}, version 0.1.0) uses /elsewhere/nri.sock, " \
           f"but the runtime serves NRI on {node.socket}" in lines  # fmt: skip


@pytest.mark.parametrize(
    "content, why",
    [
        (None, "cannot read the NRI plugin's state: Is a directory"),
        (
            b"{",
            "not an NRI plugin state file: not JSON (Expecting property name enclosed in double quotes: line 1 "
            "column 2 (char 1))",
        ),  # fmt: skip
        (
            b"\xff",
            "not an NRI plugin state file: not JSON ('utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte)",
        ),  # fmt: skip
        (b"[]", "not an NRI plugin state file: a JSON object was expected"),
        (b'{"pid": "1"}', "not an NRI plugin state file: 'pid' must be a int"),
        (b'{"pid": true}', "not an NRI plugin state file: 'pid' must be a int"),
        (
            json.dumps({"pid": 1, "socket": "/s", "name": "n", "index": 10}).encode(),
            "not an NRI plugin state file: 'index' must be a str",
        ),  # fmt: skip
        (b" " * 70000, "not an NRI plugin state file: larger than 65536 bytes"),
        *(
            (
                json.dumps({"pid": pid, "socket": "/s", "name": "n", "index": "10", "registered": True}).encode(),
                "not an NRI plugin state file: 'pid' must be a process id (1 to 4194304)",
            )
            for pid in (0, -1, 4194305, 10**25)  # 10**25: too large for kill(2) to be asked
        ),
    ],
)
def test_a_bad_state_file_is_one_line(capsys: Any, node: Node, content: Any, why: str) -> None:
    path = node.state / "bad.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    status, lines, err = node.check(capsys)
    assert (status, err) == (0, "")
    assert lines[-1] == f"WARN  nri plugin: {path}: {why}"


def test_an_unlistable_state_directory_is_one_line(capsys: Any, node: Node) -> None:
    node.state.rmdir()
    node.state.write_text("")
    status, lines, err = node.check(capsys)
    assert (status, err) == (0, "")
    assert lines[-1] == f"WARN  nri plugin: {node.state}: cannot list the NRI plugin's state: Not a directory"


def test_the_state_directory_comes_from_the_plugins_variable(
    capsys: Any, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_HOOKS_NRI_STATE_DIR", str(node.state))
    node.plugin(since=time.time())
    args = [arg for arg in node_args(node) if not arg.startswith("--nri-state-dir")]
    status, out, _ = run_ctk(capsys, *args)
    assert "PASS  nri plugin: 10-container-hooks" in out


def test_a_plugin_waiting_for_a_runtime_that_is_not_there_is_no_contradiction(capsys: Any, node: Node) -> None:
    node.plugin(registered=False)  # its socket is not there yet: it waits, as after a containerd restart
    status, lines, _ = node.check(capsys)
    assert status == 0
    assert lines[-1] == (
        f"SKIP  nri plugin: 10-container-hooks (pid {os.getpid()}, version 0.1.0) runs but is not registered on "
        f"{node.socket}: containers created now get no hooks from it"
    )
