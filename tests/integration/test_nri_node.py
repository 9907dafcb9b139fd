"""NRI mode on a node, judged by real containerd 1.7.24 and 2.1.9 (tests/newer_engines.py): their `config dump`
says whether NRI is on, `node nri-enable` is checked against it, and `node install --mode nri` runs on a fake node
whose containerd is the real 1.7 (turned on, restarted once, NRI socket served) or 2.x (nothing touched)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import newer_engines
import pytest
from conftest import CLEAN_PATH, require
from fake_node import FakeNode, fake_node

from chts.base.text_files import toml_loads

pytestmark = pytest.mark.integration

NRI = "io.containerd.nri.v1.nri"
SHIM = "/opt/container-hooks/bin/container-hooks-runtime"
CONFIG_TOML = '[container-hooks-runtime]\nruntimes = ["runc"]\n'
# a kubeadm-like node's containerd: version 2, CRI settings of its own, this VM's oom_score_adj limit
NODE_TOML = """version = 2
# the operator's settings
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.example.internal/pause:3.9"
  restrict_oom_score_adj = true
"""
NODE_TOML_V3 = """version = 3
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
"""


def engine_bin(generation: str) -> Path:
    name = {"1.7": "containerd-1.7", "2": "containerd-2"}[generation]
    tree = newer_engines.installed(name)
    require(tree is not None, f"{name} is not fetched (python3 tests/newer_engines.py fetch {name})")
    assert tree is not None
    return tree / "usr" / "bin"


def env_with(directory: Path) -> Dict[str, str]:
    return {"PATH": f"{directory}:{CLEAN_PATH}"}


def run_pyz(pyz: Path, *args: str, env: Dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(pyz), "ctk", *args], capture_output=True, text=True, env=env, timeout=120, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def nri_dump(binary: Path, config: Path) -> Dict[str, Any]:
    out = subprocess.run([str(binary), "--config", str(config), "config", "dump"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return dict(toml_loads(out)["plugins"][NRI])


def nri_checks(pyz: Path, config: Path, env: Dict[str, str], tmp_path: Path) -> Dict[str, Any]:
    """`ctk check --format json` as it sees NRI with containerd's own dump."""
    done = run_pyz(pyz, "check", "--no-container", "--config-source=command", f"--containerd-config={config}",
                   f"--nri-state-dir={tmp_path / 'no-state'}", f"--nri-socket={tmp_path / 'no.sock'}",
                   f"--config={tmp_path / 'toolkit.toml'}", f"--dest={tmp_path}", "--format=json", env=env,
                   check=False)  # fmt: skip
    document = json.loads(done.stdout)
    assert not [c for c in document["checks"] if c["subject"].startswith("nri") and c["status"] == "FAIL"]
    return dict(document["nri"]["runtimes"]["containerd"])


def test_nri_enable_on_containerd_17_is_judged_by_its_dump(pyz: Path, tmp_path: Path) -> None:
    directory = engine_bin("1.7")
    env = env_with(directory)
    config = tmp_path / "config.toml"
    config.write_text(NODE_TOML)
    assert nri_dump(directory / "containerd", config)["disable"] is True  # 1.7's default
    assert nri_checks(pyz, config, env, tmp_path)["enabled"] is False

    done = run_pyz(pyz, "node", "nri-enable", f"--config={config}", env=env)
    drop_in = tmp_path / "conf.d" / "99-container-hooks-nri.toml"
    assert done.stdout.splitlines() == [
        f"wrote {drop_in}",
        f"wrote {config}",
        f'{config}: NRI enabled ([plugins."io.containerd.nri.v1.nri"] disable = false, socket /var/run/nri/nri.sock); '
        "restart containerd to apply it",
    ]
    dumped = nri_dump(directory / "containerd", config)
    assert dumped["disable"] is False
    assert dumped["socket_path"] == "/var/run/nri/nri.sock" and dumped["plugin_path"] == "/opt/nri/plugins"
    assert toml_loads(subprocess.run([str(directory / "containerd"), "--config", str(config), "config", "dump"],
                                     capture_output=True, text=True, check=True).stdout)["plugins"][
        "io.containerd.grpc.v1.cri"]["sandbox_image"] == "registry.example.internal/pause:3.9"  # fmt: skip
    assert nri_checks(pyz, config, env, tmp_path) == {
        "config": str(config), "source": "containerd config dump", "supported": True, "enabled": True,
        "socket": "/var/run/nri/nri.sock",
    }  # fmt: skip
    again = run_pyz(pyz, "node", "nri-enable", f"--config={config}", env=env)
    assert again.stdout == f"{config}: NRI already enabled\n"

    run_pyz(pyz, "node", "nri-disable", f"--config={config}", env=env)
    assert config.read_text() == NODE_TOML and not (tmp_path / "conf.d").exists()
    assert nri_dump(directory / "containerd", config)["disable"] is True


def test_a_later_import_that_turns_nri_off_again_is_caught_and_the_files_restored(pyz: Path, tmp_path: Path) -> None:
    """containerd 1.x replaces a plugin table from each import: a file after ours wins, and its dump says so."""
    directory = engine_bin("1.7")
    config = tmp_path / "config.toml"
    main = NODE_TOML.replace("version = 2\n", f'version = 2\nimports = ["{tmp_path}/conf.d/*.toml"]\n')
    config.write_text(main)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "zz-vendor.toml").write_text(f'version = 2\n[plugins."{NRI}"]\n  disable = true\n')
    done = run_pyz(pyz, "node", "nri-enable", f"--config={config}", env=env_with(directory), check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"container-hooks-ctk: {config}: containerd would not run as asked: NRI is still disabled "
        "in its effective configuration (a file imported later sets it?); the files are restored\n"
    )
    assert config.read_text() == main
    assert sorted(os.listdir(tmp_path / "conf.d")) == ["zz-vendor.toml"]


def test_containerd_2_runs_nri_by_default_and_is_not_edited(pyz: Path, tmp_path: Path) -> None:
    directory = engine_bin("2")
    env = env_with(directory)
    config = tmp_path / "config.toml"
    config.write_text(NODE_TOML_V3)
    assert nri_dump(directory / "containerd", config)["disable"] is False
    assert nri_checks(pyz, config, env, tmp_path)["enabled"] is True
    done = run_pyz(pyz, "node", "nri-enable", f"--config={config}", env=env, check=False)
    assert (done.returncode, done.stderr) == (
        1, f"container-hooks-ctk: {config}: config version 3: containerd 1.7's NRI drop-in is written for a version 2 "
           'file; set [plugins."io.containerd.nri.v1.nri"] disable = false there yourself\n')  # fmt: skip
    config.write_text(NODE_TOML_V3 + f'[plugins."{NRI}"]\n  disable = true\n')  # turned off on purpose
    assert nri_checks(pyz, config, env, tmp_path)["enabled"] is False
    done = run_pyz(pyz, "check", "--no-container", "--config-source=command", f"--containerd-config={config}",
                   f"--config={tmp_path / 'toolkit.toml'}", f"--dest={tmp_path}", env=env, check=False)  # fmt: skip
    assert (
        f"SKIP  nri (containerd): NRI disabled ({config}, seen by containerd config dump): NRI mode needs it on: set "
        f'[plugins."io.containerd.nri.v1.nri"] disable = false (in {config} or a file it imports) and restart '
        "containerd\n" in done.stdout
    )


# ----------------------------------------------------------------------------- node install --mode nri


def is_served_socket(node: FakeNode, host_path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(node.path(host_path)).st_mode)
    except OSError:
        return False


def node_lines(done: Any) -> List[str]:
    return [line for line in str(done.stdout).splitlines() if "NRI" in line or "restart" in line]


def test_install_mode_nri_on_containerd_17_enables_nri_restarts_once_and_uninstall_gives_it_back(
    pyz: Path, tmp_path: Path
) -> None:
    source = tmp_path / "configmap"
    source.mkdir()
    (source / "config.toml").write_text(CONFIG_TOML)
    (source / "hooks.json").write_text('{"prestart": [{"path": "/bin/true"}]}')
    options = [f"--source-dir={source}", "--restart-mode=systemd", "--mode=nri"]
    with fake_node(NODE_TOML, engine_bin=engine_bin("1.7")) as node:
        original = node.path("/etc/containerd/config.toml").read_text()
        assert not is_served_socket(node, "/var/run/nri/nri.sock")
        preflight = node.installer(pyz, "preflight", *options)
        assert (
            "NRI mode: possible after one change (containerd 1.7.24): NRI is disabled in containerd's configuration; "
            'containerd 1.7 needs one config edit, [plugins."io.containerd.nri.v1.nri"] disable = false (in '
            "/etc/containerd/config.toml or a file it imports), and one restart: `container-hooks-ctk node install "
            "--mode nri` does both through a drop-in" in preflight.stdout
        )

        done = node.installer(pyz, "install", *options)
        assert node.restarts == 1, done.stdout
        dumped = toml_loads(
            node.run(["containerd", "--config", "/etc/containerd/config.toml", "config", "dump"]).stdout
        )
        assert dumped["plugins"][NRI]["disable"] is False
        runtimes = dumped["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
        assert "container-hooks-runtime" not in runtimes  # no runtime entry in NRI mode
        assert is_served_socket(node, "/var/run/nri/nri.sock")
        assert "containerd serves NRI on /var/run/nri/nri.sock" in done.stdout
        assert os.readlink(node.path(SHIM)) == "../current.pyz"  # the .pyz the hooks and `nri run` use
        assert node.path("/etc/container-hooks/hooks.json").exists()
        drop_in = node.path("/etc/containerd/conf.d/99-container-hooks-nri.toml")
        assert drop_in.exists()

        again = node.installer(pyz, "install", *options)
        assert node.restarts == 1, again.stdout  # twice = once: nothing changed, nothing restarted
        assert "containerd runs its effective configuration: no restart" in again.stdout

        done = node.installer(pyz, "uninstall", "--restart-mode=systemd")
        assert node.restarts == 2, done.stdout
        assert node.path("/etc/containerd/config.toml").read_text() == original
        assert not drop_in.exists() and not node.path("/etc/containerd/conf.d").exists()
        assert not node.path("/opt/container-hooks").exists()
        dumped = toml_loads(
            node.run(["containerd", "--config", "/etc/containerd/config.toml", "config", "dump"]).stdout
        )
        assert dumped["plugins"][NRI]["disable"] is True


def test_install_mode_nri_on_containerd_2_touches_no_engine_config_and_restarts_nothing(
    pyz: Path, tmp_path: Path
) -> None:
    source = tmp_path / "configmap"
    source.mkdir()
    (source / "config.toml").write_text(CONFIG_TOML)
    with fake_node(NODE_TOML_V3, engine_bin=engine_bin("2")) as node:
        before = sorted(os.listdir(node.path("/etc/containerd")))
        original = node.path("/etc/containerd/config.toml").read_bytes()
        options = [f"--source-dir={source}", "--mode=nri"]
        done = node.installer(pyz, "install", *options)  # --restart-mode auto: this node has systemd; not needed
        assert node.restarts == 0, done.stdout
        assert node.path("/etc/containerd/config.toml").read_bytes() == original
        assert sorted(os.listdir(node.path("/etc/containerd"))) == before
        assert "NRI mode: possible (containerd 2.1.9, NRI enabled, socket /var/run/nri/nri.sock)" in done.stdout
        assert "containerd serves NRI on /var/run/nri/nri.sock" in done.stdout
        done = node.installer(pyz, "uninstall", "--restart-mode=systemd")
        assert node.restarts == 0, done.stdout
        assert node.path("/etc/containerd/config.toml").read_bytes() == original
        assert not node.path("/opt/container-hooks").exists()


def test_install_mode_nri_refuses_a_containerd_without_nri(pyz: Path, tmp_path: Path) -> None:
    """Debian 12's containerd 1.6: one line saying why, nothing installed."""
    with fake_node(NODE_TOML) as node:
        version = node.run(["containerd", "--version"]).stdout.split()[2].split("~")[0]
        done = node.installer(pyz, "install", f"--source-dir={tmp_path}", "--mode=nri", check=False)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr == (f"container-hooks-ctk: /etc/containerd/config.toml: NRI mode: not possible now "
                               f"(containerd {version}): containerd {version} has no NRI (it needs containerd 1.7 or "
                               "later); upgrade the engine, or keep the shim (node install)\n")  # fmt: skip
        assert not node.path("/opt/container-hooks").exists()
