"""The .pyz as a pre-registered NRI plugin: started as NN-NAME from a runtime's plugin directory, on the
connection it inherits (NRI_PLUGIN_SOCKET), with no PATH at all (containerd gives none), under dash and
busybox sh; a fake runtime (tests/nri_runtime.py) registers it and asks for a container's hooks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, List

import pytest
from conftest import CLEAN_PATH, posix_shells, require
from nri_proto import compile_proto
from nri_runtime import FakeRuntime, hooks_of

pytestmark = pytest.mark.integration

BUILD_PYTHON = b"'/usr/bin/python3'"
MISSING_PYTHON = b"'/no/such/python3'"  # as long: the zip data after the sh start stays where it was


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return compile_proto(tmp_path_factory.mktemp("nri-proto"))


def without_build_python(pyz: Path, target: Path) -> Path:
    """A copy of the .pyz whose own Python (build.py's --python) is missing: only the search can find one."""
    data = pyz.read_bytes()
    head = data[:4096]
    assert BUILD_PYTHON in head, "the build's Python is not /usr/bin/python3"
    assert len(MISSING_PYTHON) == len(BUILD_PYTHON)
    target.write_bytes(head.replace(BUILD_PYTHON, MISSING_PYTHON) + data[4096:])
    target.chmod(0o755)
    return target


@pytest.mark.parametrize("shell", posix_shells(), ids=lambda shell: shell[-1])
def test_a_plugin_directory_entry_starts_the_plugin_without_path(
    shell: List[str], pyz: Path, pb: Any, tmp_path: Path
) -> None:
    require(Path("/usr/bin/python3").exists(), "/usr/bin/python3 is needed")
    copy = without_build_python(pyz, tmp_path / "container-hooks-toolkit.pyz")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    link = plugins / "10-container-hooks"
    link.symlink_to(copy)
    (tmp_path / "hooks.json").write_text(json.dumps({"createRuntime": [{"path": "/usr/bin/true"}]}))
    config = tmp_path / "config.toml"
    config.write_text(f'[container-hooks]\npath = "{tmp_path / "hooks.json"}"\nhooks-dirs = []\n'
                      f'[container-hooks-runtime]\ndebug = ""\n')  # fmt: skip
    ours, theirs = socket.socketpair()
    env = {
        "NRI_PLUGIN_SOCKET": str(theirs.fileno()),
        "NRI_PLUGIN_NAME": "container-hooks",
        "NRI_PLUGIN_IDX": "10",
        "CONTAINER_HOOKS_CONFIG": str(config),
        "CONTAINER_HOOKS_NRI_STATE_DIR": str(tmp_path / "state"),
        "CONTAINER_HOOKS_CACHE_DIR": str(tmp_path / "cache"),
    }
    process = subprocess.Popen(
        [*shell, str(link)], env=env, pass_fds=[theirs.fileno()], stderr=subprocess.PIPE, cwd=tmp_path
    )
    theirs.close()
    try:
        runtime = FakeRuntime(ours, pb)
        register, configured = runtime.handshake()
        assert (register.plugin_name, register.plugin_idx) == ("container-hooks", "10")
        assert os.readlink(f"/proc/{process.pid}/exe").startswith("/usr/bin/python3")  # found without PATH
        pod = pb.PodSandbox(id="p", name="web", namespace="shop")
        reply = runtime.create(pod, pb.Container(id="c", pod_sandbox_id="p", name="app"))
        assert hooks_of(pb, reply.adjust.hooks) == {"createRuntime": [{"path": "/usr/bin/true"}]}
        state_file = tmp_path / "state" / "container-hooks.json"
        deadline = time.monotonic() + 5  # the count is written after the reply, at most once a second
        while json.loads(state_file.read_text())["containers"] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        state = json.loads(state_file.read_text())
        assert state["registered"] and state["pid"] == process.pid and state["containers"] == 1
    finally:
        ours.close()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = err.decode().splitlines()
    assert any("msg=registered" in line for line in lines) and any("injected 1 hook(s)" in line for line in lines)
    assert "a pre-registered plugin exits" in lines[-1]
    assert not (tmp_path / "state" / "container-hooks.json").exists()


def test_an_empty_path_is_searched_like_no_path(pyz: Path, tmp_path: Path) -> None:
    """PATH set but empty: the usual places are searched too (an empty PATH used to find nothing)."""
    copy = without_build_python(pyz, tmp_path / "container-hooks-toolkit.pyz")
    result = subprocess.run(["/bin/sh", "-c", f'PATH=; export PATH; exec "{copy}" ctk --version'],
                            env={}, capture_output=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0 and result.stdout.decode().startswith("container-hooks-ctk "), result


def test_sigterm_stops_the_daemon_cleanly(pyz: Path, pb: Any, tmp_path: Path) -> None:
    """`ctk nri run --socket S`, registered, then SIGTERM: exit status 0, the state file gone, one line saying so."""
    import signal

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "nri.sock"))
    listener.listen(1)
    listener.settimeout(30)
    (tmp_path / "config.toml").write_text(f'[container-hooks]\npath = "{tmp_path / "none.json"}"\nhooks-dirs = []\n'
                                          f'[container-hooks-runtime]\ndebug = ""\n')  # fmt: skip
    env = {
        "PATH": CLEAN_PATH,
        "CONTAINER_HOOKS_CONFIG": str(tmp_path / "config.toml"),
        "CONTAINER_HOOKS_NRI_STATE_DIR": str(tmp_path / "state"),
        "CONTAINER_HOOKS_CACHE_DIR": str(tmp_path / "cache"),
    }
    argv = [str(pyz), "ctk", "nri", "run", "--socket", str(tmp_path / "nri.sock"), "--name", "x", "--index", "99"]
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    try:
        conn, _ = listener.accept()
        FakeRuntime(conn, pb).handshake()
        state = tmp_path / "state" / "x.json"
        deadline = time.monotonic() + 10  # the plugin reads the registration's reply after handshake() sent it
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert json.loads(state.read_text())["registered"] is True
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
    assert process.returncode == 0, err
    assert err.decode().splitlines()[-1].endswith("msg=stopping component=nri name=x")
    assert not state.exists()
