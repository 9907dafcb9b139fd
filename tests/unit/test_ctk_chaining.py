"""`runtime configure` records what the engine's default ran, for the shim to exec; unconfigure takes it back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from engine_cases import NAME, SHIM, configured, runtime_cmd, snapshot, unconfigured

from chts.config.toolkit import parse_config, runtimes_of
from chts.engines import get_engine

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "engines"


def shim_runtimes(toolkit: Path) -> Any:
    return runtimes_of(parse_config(toolkit.read_text(), str(toolkit))) if toolkit.exists() else None


def crio_etc(tmp_path: Path, name: str) -> Path:
    shutil.copytree(CORPUS / "crio" / name, tmp_path / "etc-crio")
    return tmp_path / "etc-crio" / "crio.conf"


def test_crio_packaged_runtimes_in_libexec_are_chained_and_given_back(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-1.30")
    toolkit = tmp_path / "toolkit" / "config.toml"
    out = configured(capsys, "crio", config, "--set-as-default", f"--toolkit-config={toolkit}")
    assert "wrote" in out
    assert shim_runtimes(toolkit) == ["/usr/libexec/crio/crun", "runc", "docker-runc"]
    record = json.loads(Path(f"{toolkit}.chains.json").read_text())
    assert record[f"crio:{config}"]["runtime"] == "/usr/libexec/crio/crun"
    assert record[f"crio:{config}"]["before"] is None  # there was no toolkit config
    once = snapshot(tmp_path)
    assert "nothing changed" in configured(capsys, "crio", config, "--set-as-default", f"--toolkit-config={toolkit}")
    assert snapshot(tmp_path) == once
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert not toolkit.exists() and not Path(f"{toolkit}.chains.json").exists()  # configure had created it


def test_a_users_toolkit_config_keeps_everything_else(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "nvidia-ctk")
    toolkit = tmp_path / "config.toml"
    original = '# mine\n[container-hooks-runtime]\nlog-level = "debug"  # keep\nruntimes = ["runc"]\n'
    toolkit.write_text(original)
    configured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert shim_runtimes(toolkit) == ["/usr/bin/nvidia-container-runtime", "runc"]  # nvidia's drop-in is the default
    assert "# mine" in toolkit.read_text() and 'log-level = "debug"  # keep' in toolkit.read_text()
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert toolkit.read_text() == original


def test_a_toolkit_config_changed_since_loses_only_the_chained_binary(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-1.30")
    toolkit = tmp_path / "config.toml"
    toolkit.write_text('[container-hooks-runtime]\nruntimes = ["runc"]\n')
    configured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    toolkit.write_text(toolkit.read_text() + 'log-level = "debug"\n')  # the admin's change after configure
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert toolkit.read_text() == '[container-hooks-runtime]\nruntimes = ["runc"]\nlog-level = "debug"\n'


def test_docker_with_runc_needs_no_record(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    config.write_text("{}\n")
    toolkit = tmp_path / "toolkit.toml"
    configured(capsys, "docker", config, "--set-as-default", f"--toolkit-config={toolkit}")
    assert not toolkit.exists() and not Path(f"{toolkit}.chains.json").exists()  # the shim finds runc itself


def test_never_chains_to_itself(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"runtimes": {"hooks": {"path": SHIM}}, "default-runtime": "hooks"}))
    toolkit = tmp_path / "toolkit.toml"
    configured(capsys, "docker", config, f"--toolkit-config={toolkit}")
    assert not toolkit.exists()


def test_two_engines_needing_two_binaries_is_refused(tmp_path: Path, capsys: Any) -> None:
    toolkit = tmp_path / "toolkit.toml"
    docker = tmp_path / "daemon.json"
    docker.write_text(json.dumps({"runtimes": {"crun": {"path": "/opt/crun"}}, "default-runtime": "crun"}))
    configured(capsys, "docker", docker, f"--toolkit-config={toolkit}")
    assert shim_runtimes(toolkit) == ["/opt/crun", "runc", "docker-runc"]
    crio = crio_etc(tmp_path, "packaged-1.30")
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "crio", crio, f"--toolkit-config={toolkit}")
    assert status != 0 and "the shim already execs /opt/crun for docker:" in err
    assert snapshot(tmp_path) == before


def test_a_binary_the_user_listed_first_is_left_to_them(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-crio-prefix")
    crio_crun = tmp_path / "crio-crun"
    crio_crun.write_text("#!/bin/sh\n")
    crio_crun.chmod(0o755)
    dropin = config.parent / "crio.conf.d" / "10-crio.conf"
    dropin.write_text(dropin.read_text().replace("/usr/bin/crio-crun", str(crio_crun)))
    toolkit = tmp_path / "toolkit.toml"
    toolkit.write_text(f'[container-hooks-runtime]\nruntimes = ["{crio_crun}"]\n')
    configured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert not Path(f"{toolkit}.chains.json").exists()
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert shim_runtimes(toolkit) == [str(crio_crun)]


def test_containerd_binary_name_is_chained(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = "custom"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.custom]\nruntime_type = "io.containerd.runc.v2"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.custom.options]\nBinaryName = "/opt/runc-custom"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]\nruntime_type = "io.containerd.kata.v2"\n'
    )
    toolkit = tmp_path / "toolkit.toml"
    configured(capsys, "containerd", config, "--config-source=file", f"--toolkit-config={toolkit}")
    assert shim_runtimes(toolkit) == ["/opt/runc-custom", "runc", "docker-runc"]
    engine = get_engine("containerd")
    effective = engine.effective(str(config), "file")
    assert engine.low_level_runtime(effective, "kata") is None  # its own shim: nothing runc-like
    assert engine.low_level_runtime(effective, NAME) == SHIM
