"""The node installer's files on a host root: the versioned .pyz behind stable links, ConfigMap sync, state, lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chts.errors import ToolkitError
from chts.node_files import NodeLock, NodeState, install_archive, sync_config
from chts.node_host import HostRoot

HOOKS = json.dumps({"prestart": [{"path": "/bin/true"}]})
DROP_IN = json.dumps(
    {"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": True}, "stages": ["prestart"]}
)


def configmap(directory: Path, files: dict) -> Path:  # type: ignore[type-arg]
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text) if isinstance(text, str) else (directory / name).write_bytes(text)
    return directory


def test_archive_goes_behind_one_stable_link_and_a_second_install_changes_nothing(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build one")
    first = install_archive(host, "/opt/container-hooks", str(source))
    shim = tmp_path / "host/opt/container-hooks/bin/container-hooks-runtime"
    assert os.readlink(shim) == "../current.pyz"
    assert shim.read_bytes() == b"build one"
    assert len(first) == 5  # the build, current.pyz, three links
    assert install_archive(host, "/opt/container-hooks", str(source)) == []

    # an upgrade switches current.pyz only; the links the engine names never change
    for build in (b"build two", b"build three"):
        source.write_bytes(build)
        changes = install_archive(host, "/opt/container-hooks", str(source))
        assert shim.read_bytes() == build
        assert os.readlink(shim) == "../current.pyz"
        assert not any("linked" in line for line in changes)
    versions = sorted(os.listdir(tmp_path / "host/opt/container-hooks/versions"))
    assert len(versions) == 2  # the current build and the one before it


def test_a_foreign_file_at_a_link_is_refused(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    (tmp_path / "host/opt/container-hooks/bin").mkdir(parents=True)
    (tmp_path / "host/opt/container-hooks/bin/container-hooks-ctk").write_text("someone else's")
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build")
    with pytest.raises(ToolkitError, match="exists and is not a link of this installer"):
        install_archive(host, "/opt/container-hooks", str(source))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"config.toml": "[container-hooks\n"}, "config.toml: invalid TOML"),
        ({"config.toml": '[container-hooks]\npath = "/srv/hooks.json"\n'}, "path must be /etc/container-hooks/hooks"),
        ({"hooks.json": "[]"}, "hooks.json: must be a JSON object of stages"),
        ({"hooks.json": ""}, "hooks.json: empty file"),
        ({"10-audit.json": '{"version": "1.0.0"}'}, "10-audit.json: missing required key 'hook'"),
        ({"notes.txt": "hello"}, "notes.txt: unknown key: expected config.toml, hooks.json or an oci-hooks(5) *.json"),
        ({"big.json": "{" + " " * (1 << 20) + "}"}, "big.json: larger than"),
        ({"bin.json": b"\xff\xfe{}"}, "bin.json: not UTF-8"),
    ],
)
def test_a_bad_configmap_is_one_line_and_writes_nothing(tmp_path: Path, files: dict, message: str) -> None:  # type: ignore[type-arg]
    host = HostRoot(str(tmp_path / "host"))
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS, **files})
    with pytest.raises(ToolkitError) as error:
        sync_config(host, NodeState(host, "/opt/container-hooks"), str(source))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "host" / "etc").exists()


def test_sync_writes_backs_up_removes_and_gives_back(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    etc = tmp_path / "host/etc/container-hooks"
    etc.mkdir(parents=True)
    (etc / "hooks.json").write_text("{}\n")  # the admin's own, before the installer
    (etc / "hooks.json").chmod(0o666)
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS, "10-audit.json": DROP_IN, "..data": ""})
    state = NodeState(host, "/opt/container-hooks")
    assert sync_config(host, state, str(source)) == [
        "synced /etc/container-hooks/hooks.d/10-audit.json",
        "synced /etc/container-hooks/hooks.json",
    ]
    assert (etc / "hooks.json").read_text() == HOOKS
    assert (etc / "hooks.json").stat().st_mode & 0o777 == 0o644  # the shim refuses files others can write
    assert sync_config(host, NodeState(host, "/opt/container-hooks"), str(source)) == []

    (source / "10-audit.json").unlink()
    state = NodeState(host, "/opt/container-hooks")
    assert sync_config(host, state, str(source)) == ["removed /etc/container-hooks/hooks.d/10-audit.json"]
    assert state.give_back(host, "/etc/container-hooks/hooks.json") == (
        "restored /etc/container-hooks/hooks.json as it was before the installer"
    )
    assert (etc / "hooks.json").read_text() == "{}\n"


def test_broken_state_file_is_one_line(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    (tmp_path / "opt/container-hooks").mkdir(parents=True)
    (tmp_path / "opt/container-hooks/node-state.json").write_text("{")
    with pytest.raises(ToolkitError, match="node-state.json: invalid JSON: .*; move it away to start over"):
        NodeState(host, "/opt/container-hooks")


def test_one_installer_per_node(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    held = rf"container-hooks-node.lock: another node installer holds it \(pid {os.getpid()}"
    with NodeLock(host), pytest.raises(ToolkitError, match=held), NodeLock(host):
        pass
    with NodeLock(host):
        pass
