"""containerd: versions 1, 2 and 3, option inheritance, the previous default recorded in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
from engine_cases import NAME, SHIM, configured, runtime_cmd, snapshot, unconfigured

from chts.engines import containerd_config
from chts.engines.toml_edit import WAS_PREFIX
from chts.toolkit_config import toml_loads

PLUGIN = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}


@pytest.fixture(autouse=True)
def no_containerd_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests read the files as containerd would, whatever containerd this host has (integration tests ask it)."""
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)


def containerd_table(config: Path, version: int) -> Dict[str, Any]:
    table: Dict[str, Any] = toml_loads(config.read_text())["plugins"][PLUGIN[version]]["containerd"]
    return table


@pytest.mark.parametrize("version", [1, 2, 3])
def test_each_config_version_uses_its_plugin(tmp_path: Path, capsys: Any, version: int) -> None:
    plugin = f'"{PLUGIN[version]}"' if "." in PLUGIN[version] else PLUGIN[version]
    header = "" if version == 1 else f"version = {version}\n"  # a file without `version` is version 1
    original = (
        f'{header}# mine\n[plugins.{plugin}.containerd]\n  default_runtime_name = "crun"\n'
        f'[plugins.{plugin}.containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n'
        f'[plugins.{plugin}.containerd.runtimes.crun.options]\n  BinaryName = "/usr/bin/crun"\n'
        f'  SystemdCgroup = true\n  Root = "/run/crun"\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(original)
    configured(capsys, "containerd", config, "--set-as-default")
    table = containerd_table(config, version)
    assert table["default_runtime_name"] == NAME
    # the options of the previous default (crun here, not runc) carry over; only BinaryName is ours
    assert table["runtimes"][NAME] == {
        "runtime_type": "io.containerd.runc.v2",
        "options": {"BinaryName": SHIM, "SystemdCgroup": True, "Root": "/run/crun"},
    }
    assert f'{WAS_PREFIX}  default_runtime_name = "crun"' in config.read_text()  # the record, in the file
    unconfigured(capsys, "containerd", config)
    assert config.read_text() == original


def test_without_set_as_default_the_default_is_untouched(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n')
    configured(capsys, "containerd", config)
    table = containerd_table(config, 2)
    assert "default_runtime_name" not in table
    assert table["runtimes"][NAME]["options"] == {"BinaryName": SHIM}


def test_a_missing_file_gets_a_minimal_config_with_runc(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "etc" / "containerd" / "config.toml"
    configured(capsys, "containerd", config, "--set-as-default")
    document = toml_loads(config.read_text())
    assert document["version"] == 2
    table = document["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert set(table["runtimes"]) == {"runc", NAME}
    assert table["default_runtime_name"] == NAME


def test_a_layout_that_defeats_a_minimal_edit_is_refused(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    # the containerd table set by dotted keys: a [..containerd] header appended would redefine it
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  containerd.snapshotter = "overlayfs"\n')
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config, "--set-as-default")
    assert status != 0 and "defeats a minimal edit" in err and err.count("\n") == 1
    assert snapshot(tmp_path) == before


def test_a_runtime_of_that_name_defined_by_the_user_is_left_alone(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{NAME}]\n')
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config)
    assert status != 0 and "already defines runtime" in err
    unconfigured(capsys, "containerd", config)
    assert NAME in config.read_text()  # unconfigure removes only what configure added
