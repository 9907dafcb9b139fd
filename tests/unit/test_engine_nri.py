"""chts.engines.nri: NRI as the engines print it, version rules, and containerd 1.7's NRI drop-in (planned, not run:
tests/integration/test_nri_node.py has real containerd judge it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import newer_engines
import pytest
from conftest import require

from chts.base.text_files import toml_loads
from chts.engines import containerd_config
from chts.engines.nri import (
    NRI_DROP_IN_HEADER,
    NriSetting,
    containerd_nri,
    crio_nri,
    disable_plan,
    dumped_nri,
    enable_plan,
    enablement_advice,
    engine_version,
    version_problem,
)
from chts.errors import ToolkitError

NRI = "io.containerd.nri.v1.nri"


@pytest.fixture(autouse=True)
def no_containerd_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)


@pytest.mark.parametrize(
    "dump, expected",
    [
        ({"version": 2, "plugins": {NRI: {"disable": True, "socket_path": "/var/run/nri/nri.sock"}}},
         NriSetting(True, False, "/var/run/nri/nri.sock")),  # 1.7's default
        ({"version": 3, "plugins": {NRI: {"disable": False, "socket_path": "/run/p/nri.sock"}}},
         NriSetting(True, True, "/run/p/nri.sock")),
        ({"version": 2, "plugins": {"io.containerd.grpc.v1.cri": {}}},
         NriSetting(False, False, "/var/run/nri/nri.sock")),
        ({"version": 3, "disabled_plugins": [NRI], "plugins": {}}, NriSetting(True, False, "/var/run/nri/nri.sock")),
        ({"plugins": {NRI: {"socket_path": ""}}}, NriSetting(True, True, "/var/run/nri/nri.sock")),
        ({"plugins": [1]}, NriSetting(False, False, "/var/run/nri/nri.sock")),
    ],
)  # fmt: skip
def test_containerd_nri(dump: Dict[str, Any], expected: NriSetting) -> None:
    assert containerd_nri(dump) == expected


def test_crio_nri() -> None:
    assert crio_nri({"crio": {"nri": {"enable_nri": True, "nri_listen": "/var/run/nri/nri.sock"}}}) == NriSetting(
        True, True, "/var/run/nri/nri.sock"
    )
    assert crio_nri({"crio": {"nri": {"enable_nri": False}}}) == NriSetting(True, False, "/var/run/nri/nri.sock")
    assert crio_nri({"crio": {"runtime": {}}}).supported is False  # before 1.26
    # `crio config` prints a value equal to CRI-O's default commented out (cri-o pkg/config/template.go)
    printed = """[crio.nri]

# Globally enable or disable NRI.
# enable_nri = true

# NRI socket to listen on.
# nri_listen = "/var/run/nri/nri.sock"
"""
    assert crio_nri(toml_loads(printed), printed) == NriSetting(True, True, "/var/run/nri/nri.sock")  # 1.30+
    older = printed.replace("# enable_nri = true", "# enable_nri = false")
    assert crio_nri(toml_loads(older), older) == NriSetting(True, False, "/var/run/nri/nri.sock")  # 1.26-1.29
    moved = printed.replace('# nri_listen = "/var/run/nri/nri.sock"', 'nri_listen = "/run/n.sock"')
    assert crio_nri(toml_loads(moved), moved).socket == "/run/n.sock"
    broken = printed.replace("# enable_nri = true", "# enable_nri = [")
    assert crio_nri(toml_loads(broken), broken).enabled is False


@pytest.mark.parametrize(
    "engine, printed, version",
    [
        ("containerd", "containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1\n", (1, 7, 24)),
        ("containerd", "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n", (2, 1, 9)),
        ("containerd", "containerd github.com/containerd/containerd v1.6.20 abc\n", (1, 6, 20)),
        ("containerd", "containerd\n", None),
        ("crio", "crio version 1.26.4\n", (1, 26, 4)),
        ("crio", "INFO[0000] Starting CRI-O\nVersion:        1.30.0\nGitCommit: abc\n", (1, 30, 0)),
        ("crio", "nothing\n", None),
    ],
)
def test_engine_version(engine: str, printed: str, version: Any) -> None:
    assert engine_version(engine, printed) == version


def test_version_problem() -> None:
    assert version_problem("containerd", (1, 7, 0)) is None
    assert version_problem("containerd", (2, 0, 0)) is None
    assert (
        version_problem("containerd", (1, 6, 20)) == "containerd 1.6.20 has no NRI (it needs containerd 1.7 or later)"
    )
    assert version_problem("crio", (1, 25, 9)) == "CRI-O 1.25.9 has no NRI (it needs CRI-O 1.26 or later)"
    assert version_problem("crio", None) == "CRI-O's version is unknown"


def test_enable_plan_writes_the_drop_in_and_marks_the_import(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    original = 'version = 2\n# mine\n[plugins."io.containerd.nri.v1.nri"]\n  plugin_path = "/srv/nri"\n'
    config.write_text(original)
    drop_in, main = enable_plan(str(config)).edits
    assert drop_in.path == str(tmp_path / "conf.d" / "99-container-hooks-nri.toml") and drop_in.old is None
    assert drop_in.new is not None and drop_in.new.decode().startswith(NRI_DROP_IN_HEADER)
    # 1.x replaces the whole plugin table from an import: the main file's NRI settings are carried along
    assert toml_loads(drop_in.new.decode())["plugins"][NRI] == {"plugin_path": "/srv/nri", "disable": False}
    assert main.path == str(config) and main.new is not None
    assert toml_loads(main.new.decode())["imports"] == [drop_in.path]
    config.write_bytes(main.new)
    (tmp_path / "conf.d").mkdir()
    Path(drop_in.path).write_bytes(drop_in.new)
    again = [edit for edit in enable_plan(str(config)).edits if edit.old != edit.new]
    assert again == []  # twice = once
    remove_import, remove_file = disable_plan(str(config)).edits
    assert remove_import.new == original.encode()
    assert (remove_file.path, remove_file.new) == (drop_in.path, None)


def test_an_imported_directory_takes_the_drop_in_and_the_main_file_stays(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\nimports = ["{tmp_path}/config.d/*.toml"]\n')
    (drop_in,) = enable_plan(str(config)).edits
    assert drop_in.path == str(tmp_path / "config.d" / "99-container-hooks-nri.toml")


def test_the_runtime_drop_ins_import_is_kept(tmp_path: Path) -> None:
    """Both modes on one node: nri-enable and nri-disable keep the marked import of `runtime configure --drop-in`."""
    config = tmp_path / "config.toml"
    runtime = f"{tmp_path}/conf.d/99-container-hooks.toml"
    config.write_text(f'version = 2\nimports = ["{runtime}"]  # container-hooks-toolkit: set by runtime configure\n')
    _, main = enable_plan(str(config)).edits
    assert main.new is not None
    assert toml_loads(main.new.decode())["imports"] == [runtime, f"{tmp_path}/conf.d/99-container-hooks-nri.toml"]
    config.write_bytes(main.new)
    (remove_import,) = disable_plan(str(config)).edits  # the drop-in file was never written here
    assert remove_import.new is not None and toml_loads(remove_import.new.decode())["imports"] == [runtime]


def test_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text("version = 3\n")
    with pytest.raises(
        ToolkitError, match=r"config version 3: containerd 1.7's NRI drop-in is written for a version 2"
    ):
        enable_plan(str(config))
    config.write_text("version = 2\n")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "99-container-hooks-nri.toml").write_text("# someone's\n")
    with pytest.raises(ToolkitError, match="exists and was not written by this tool; move it away first"):
        enable_plan(str(config))
    assert [edit.path for edit in disable_plan(str(config)).edits] == []  # not ours: left alone
    monkeypatch.setattr(containerd_config, "binary_major", lambda binary: 2)
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: "/fake/containerd")
    with pytest.raises(ToolkitError, match="containerd 2.x runs NRI unless told not to"):
        enable_plan(str(config))
    config.write_text("version = 2\n[x]\na = 1  # container-hooks-toolkit: set by runtime configure\n")
    monkeypatch.setattr(containerd_config, "binary_major", lambda binary: 1)
    (tmp_path / "conf.d" / "99-container-hooks-nri.toml").unlink()
    with pytest.raises(ToolkitError, match="holds marked edits of `runtime configure` other than an imports entry"):
        enable_plan(str(config))


def test_enablement_advice() -> None:
    assert enablement_advice("containerd", "/c.toml", (1, 7, 24)) == (
        'containerd 1.7 needs one config edit, [plugins."io.containerd.nri.v1.nri"] disable = false (in /c.toml or '
        "a file it imports), and one restart: `container-hooks-ctk node install --mode nri` does both through a drop-in"
    )
    for version in ((2, 0, 0), (2, 1, 9), None):
        assert enablement_advice("containerd", "/c.toml", version) == (
            'set [plugins."io.containerd.nri.v1.nri"] disable = false (in /c.toml or a file it imports) and restart '
            "containerd"
        )


def test_an_nri_plugin_value_that_is_no_table_gives_way_to_ours(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\n[plugins]\n"{NRI}" = "on"\n')
    drop_in, _ = enable_plan(str(config)).edits
    assert drop_in.new is not None and toml_loads(drop_in.new.decode())["plugins"][NRI] == {"disable": False}


def test_an_import_of_the_users_own_is_not_ours_to_remove(tmp_path: Path) -> None:
    """The user imports the drop-in's path themselves (no mark): nri-disable leaves the main file alone."""
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\nimports = ["{tmp_path}/conf.d/99-container-hooks-nri.toml"]\n')
    assert disable_plan(str(config)).edits == []


def test_dumped_nri_is_containerds_own_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = newer_engines.installed("containerd-1.7")
    require(tree is not None, "containerd-1.7 is not fetched (python3 tests/newer_engines.py fetch)")
    assert tree is not None
    binary = str(tree / "usr/bin/containerd")
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\n[plugins."{NRI}"]\n  socket_path = "/run/p/nri.sock"\n')
    assert dumped_nri(binary, str(config)) == NriSetting(True, False, "/run/p/nri.sock")  # 1.7: off unless told
    config.write_text(f'version = 2\n[plugins."{NRI}"]\n  disable = false\n')
    assert dumped_nri(binary, str(config)) == NriSetting(True, True, "/var/run/nri/nri.sock")
    config.write_text("version = 2\nroot = [\n")
    with pytest.raises(ToolkitError, match=f"^{config}: containerd"):
        dumped_nri(binary, str(config))


def test_nri_enable_on_a_node_without_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"  # containerd runs on its defaults
    drop_in, main = enable_plan(str(config)).edits
    assert (drop_in.path, main.path, main.old) == (
        str(tmp_path / "conf.d" / "99-container-hooks-nri.toml"),
        str(config),
        None,
    )
    assert main.new is not None and toml_loads(main.new.decode())["imports"] == [drop_in.path]


def test_nri_disable_removes_the_drop_in_after_the_main_file_moved_to_version_3(tmp_path: Path) -> None:
    """Upgraded to containerd 2 with the file migrated: our drop-in is still ours to remove."""
    config = tmp_path / "config.toml"
    config.write_text("version = 3\n")
    (tmp_path / "conf.d").mkdir()
    drop_in = tmp_path / "conf.d" / "99-container-hooks-nri.toml"
    drop_in.write_text(NRI_DROP_IN_HEADER + f'version = 2\n[plugins."{NRI}"]\n  disable = false\n')
    assert [(edit.path, edit.new) for edit in disable_plan(str(config)).edits] == [(str(drop_in), None)]
