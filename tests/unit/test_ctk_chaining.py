"""`runtime configure` records what the engine's default ran, for the shim to exec; unconfigure takes it back."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Tuple

import pytest
from ctk_cli import run_ctk
from engine_cases import NAME, SHIM, SHIM_DIR, configured, fake_binary, runtime_cmd, snapshot, unconfigured

from chts.base.text_files import toml_loads
from chts.config.toolkit import chains_of, parse_config, runtimes_of
from chts.ctk.chaining import chained_binary, new_tag
from chts.engines import get_engine

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "engines"


def shim_runtimes(toolkit: Path) -> Any:
    return runtimes_of(parse_config(toolkit.read_text(), str(toolkit))) if toolkit.exists() else None


def crio_etc(tmp_path: Path, name: str) -> Path:
    shutil.copytree(CORPUS / "crio" / name, tmp_path / "etc-crio")
    return tmp_path / "etc-crio" / "crio.conf"


@pytest.fixture(autouse=True)
def _no_links_of_other_tests() -> None:
    """The links other engine tests' configures left beside the shared SHIM (these tests assert on them)."""
    for entry in Path(SHIM_DIR).iterdir():
        entry.unlink()


def files(directory: Path) -> Any:
    """``snapshot`` without the backups writing makes (FILE.container-hooks.bak, by design)."""
    return {name: data for name, data in snapshot(directory).items() if not name.endswith(".bak")}


def chains(toolkit: Path) -> Any:
    return chains_of(parse_config(toolkit.read_text(), str(toolkit))) if toolkit.exists() else None


def test_crio_packaged_runtimes_in_libexec_are_chained_and_given_back(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-1.30")
    toolkit = tmp_path / "toolkit" / "config.toml"
    status, out, err = runtime_cmd(
        capsys, "configure", "crio", config, "--set-as-default", f"--toolkit-config={toolkit}"
    )
    assert status == 0 and "wrote" in out and f"linked {SHIM}.crun -> {NAME}" in out
    assert f"{toolkit}: crio's containers run /usr/libexec/crio/crun, as its default runtime did: its runtime " \
        f"entry names {SHIM}.crun ([container-hooks-runtime.chains] crun)" in err.splitlines()  # fmt: skip
    assert chains(toolkit) == {"crun": "/usr/libexec/crio/crun"}
    assert shim_runtimes(toolkit) == ["runc", "docker-runc"]  # the plain name's pick is nobody else's business
    assert os.readlink(f"{SHIM}.crun") == NAME
    record = json.loads(Path(f"{toolkit}.chains.json").read_text())[f"crio:{config}"]
    assert record["runtime"] == "/usr/libexec/crio/crun" and record["tag"] == "crun"
    assert record["before"] is None  # there was no toolkit config
    assert chained_binary("crio", str(config), str(toolkit)) == "/usr/libexec/crio/crun"  # what check reports
    assert chained_binary("docker", str(config), str(toolkit)) is None  # no record of that engine
    entry = toml_loads((config.parent / "crio.conf.d" / f"99-{NAME}.conf").read_text())
    assert entry["crio"]["runtime"]["runtimes"][NAME]["runtime_path"] == f"{SHIM}.crun"
    once = snapshot(tmp_path)
    assert "nothing changed" in configured(capsys, "crio", config, "--set-as-default", f"--toolkit-config={toolkit}")
    assert snapshot(tmp_path) == once
    os.unlink(f"{SHIM}.crun")  # removed by hand: configure makes it again
    again = configured(capsys, "crio", config, "--set-as-default", f"--toolkit-config={toolkit}")
    assert f"linked {SHIM}.crun -> {NAME}" in again
    assert os.readlink(f"{SHIM}.crun") == NAME and snapshot(tmp_path) == once
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert not toolkit.exists() and not Path(f"{toolkit}.chains.json").exists()  # configure had created it
    assert not os.path.lexists(f"{SHIM}.crun")


def test_a_users_toolkit_config_keeps_everything_else(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "nvidia-ctk")
    toolkit = tmp_path / "config.toml"
    original = '# mine\n[container-hooks-runtime]\nlog-level = "debug"  # keep\nruntimes = ["runc"]\n'
    toolkit.write_text(original)
    configured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert chains(toolkit) == {"nvidia-container-runtime": "/usr/bin/nvidia-container-runtime"}  # nvidia's drop-in
    assert shim_runtimes(toolkit) == ["runc"]
    assert toolkit.read_text().startswith(original)  # only the chains table added
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert toolkit.read_text() == original
    assert not os.path.lexists(f"{SHIM}.nvidia-container-runtime")


def test_a_toolkit_config_changed_since_loses_only_the_chained_binary(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-1.30")
    toolkit = tmp_path / "config.toml"
    toolkit.write_text('[container-hooks-runtime]\nruntimes = ["runc"]\n')
    configured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    toolkit.write_text(toolkit.read_text() + '\n[container-hooks]\non-error = "skip"\n')  # the admin's change since
    unconfigured(capsys, "crio", config, f"--toolkit-config={toolkit}")
    assert (
        toolkit.read_text()
        == '[container-hooks-runtime]\nruntimes = ["runc"]\n\n[container-hooks]\non-error = "skip"\n'
    )


def fake_runtimes(tmp_path: Path, monkeypatch: Any) -> Tuple[Path, Path]:
    """A runc first on $PATH (Docker's built-in runtime, and the shim's plain pick) and a crun elsewhere."""
    runc = fake_binary(tmp_path / "bin", monkeypatch, "runc", "exit 0\n")
    crun = tmp_path / "crun-bin" / "crun"
    crun.parent.mkdir()
    crun.write_text("#!/bin/sh\n")
    crun.chmod(0o755)
    return runc, crun


@pytest.mark.parametrize("order", [("docker", "podman"), ("podman", "docker")])
@pytest.mark.parametrize("undo", ["same", "reverse"])
def test_docker_on_runc_and_podman_on_crun_each_keep_their_own(
    tmp_path: Path, capsys: Any, monkeypatch: Any, order: Tuple[str, str], undo: str
) -> None:
    """Issue 21: configuring Podman (crun) never moves Docker's containers off runc, in either order, and
    unconfigure gives every file back whatever the order."""
    _, crun = fake_runtimes(tmp_path, monkeypatch)
    configs = {"docker": tmp_path / "daemon.json", "podman": tmp_path / "containers.conf"}
    configs["docker"].write_text('{\n  "log-level": "info"\n}\n')
    configs["podman"].write_text(f'[engine]\nruntime = "crun"\n[engine.runtimes]\ncrun = ["{crun}"]\n')
    toolkit = tmp_path / "config.toml"
    toolkit.write_text("# the admin's\n")
    before = files(tmp_path)
    common = ("--set-as-default", "--config-source=file", f"--toolkit-config={toolkit}")
    dry = configured(capsys, "podman", configs["podman"], *common, "--dry-run")
    assert f"link {SHIM}.crun -> {NAME}\n" in dry and f'crun = "{crun}"' in dry  # shown, not made
    assert files(tmp_path) == before and not os.path.lexists(f"{SHIM}.crun")
    for engine in order:
        configured(capsys, engine, configs[engine], *common)
    assert json.loads(configs["docker"].read_text())["runtimes"][NAME] == {"path": SHIM}  # the plain name: runc
    assert toml_loads(configs["podman"].read_text())["engine"]["runtimes"][NAME] == [f"{SHIM}.crun"]
    assert chains(toolkit) == {"crun": str(crun)}
    assert shim_runtimes(toolkit) == ["runc", "docker-runc"]
    assert os.readlink(f"{SHIM}.crun") == NAME
    for engine in order if undo == "same" else order[::-1]:
        unconfigured(capsys, engine, configs[engine], f"--toolkit-config={toolkit}")
    assert files(tmp_path) == before
    assert not os.path.lexists(f"{SHIM}.crun")


def test_two_engines_on_one_binary_share_its_name_until_the_last_goes(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    _, crun = fake_runtimes(tmp_path, monkeypatch)
    docker = tmp_path / "daemon.json"
    docker.write_text(json.dumps({"runtimes": {"crun": {"path": str(crun)}}, "default-runtime": "crun"}))
    podman = tmp_path / "containers.conf"
    podman.write_text(f'[engine]\nruntime = "crun"\n[engine.runtimes]\ncrun = ["{crun}"]\n')
    toolkit = tmp_path / "config.toml"
    toolkit.write_text('[container-hooks]\non-error = "skip"\n')
    before = files(tmp_path)
    common = ("--config-source=file", f"--toolkit-config={toolkit}")
    configured(capsys, "docker", docker, *common)
    configured(capsys, "podman", podman, *common)
    assert chains(toolkit) == {"crun": str(crun)}  # one tag, one line
    unconfigured(capsys, "docker", docker, *common)  # the one that added the line goes first
    assert chains(toolkit) == {"crun": str(crun)} and os.readlink(f"{SHIM}.crun") == NAME  # podman still uses it
    unconfigured(capsys, "podman", podman, *common)
    assert files(tmp_path) == before  # the line's bytes went with the last user
    assert not os.path.lexists(f"{SHIM}.crun")


def test_two_binaries_of_one_name_get_two_tags(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    _, crun = fake_runtimes(tmp_path, monkeypatch)
    docker = tmp_path / "daemon.json"
    docker.write_text(json.dumps({"runtimes": {"crun": {"path": "/opt/crun"}}, "default-runtime": "crun"}))
    podman = tmp_path / "containers.conf"
    podman.write_text(f'[engine]\nruntime = "crun"\n[engine.runtimes]\ncrun = ["{crun}"]\n')
    toolkit = tmp_path / "config.toml"
    common = ("--config-source=file", f"--toolkit-config={toolkit}")
    configured(capsys, "docker", docker, *common)
    configured(capsys, "podman", podman, *common)
    assert chains(toolkit) == {"crun": "/opt/crun", "crun-2": str(crun)}
    assert toml_loads(podman.read_text())["engine"]["runtimes"][NAME] == [f"{SHIM}.crun-2"]
    unconfigured(capsys, "docker", docker, *common)  # not the last line added: taken out by itself
    assert chains(toolkit) == {"crun-2": str(crun)}
    assert not os.path.lexists(f"{SHIM}.crun") and os.path.lexists(f"{SHIM}.crun-2")
    unconfigured(capsys, "podman", podman, *common)
    assert chains(toolkit) is None or chains(toolkit) == {}
    assert not os.path.lexists(f"{SHIM}.crun-2")


def test_a_tag_is_the_binary_s_file_name_made_safe_and_unique() -> None:
    assert new_tag("/usr/bin/crun", {}) == "crun"
    assert new_tag("/opt/my runc", {}) == "my-runc"  # the tag is part of a file name the engine's config holds
    assert new_tag("/opt/runtimes/", {}) == "runtime"  # no file name to take one from
    assert new_tag("/a/crun", {"crun": "/a/crun"}) == "crun"  # its own tag again
    assert new_tag("/b/crun", {"crun": "/a/crun", "crun-2": "/c/crun"}) == "crun-3"


def test_a_name_taken_by_something_else_is_refused(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-1.30")
    toolkit = tmp_path / "config.toml"
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    (shim_dir / f"{NAME}.crun").write_text("not ours\n")
    before = snapshot(tmp_path)
    status, _, err = run_ctk(
        capsys, "runtime", "configure", "--runtime=crio", f"--config={config}",
        f"--runtime-path={shim_dir / NAME}", f"--toolkit-config={toolkit}",
    )  # fmt: skip
    assert status == 1 and err.count("\n") == 1, err
    assert f"{shim_dir / NAME}.crun: not a symbolic link" in err
    assert snapshot(tmp_path) == before


def test_a_shim_under_another_name_cannot_be_chained(tmp_path: Path, capsys: Any) -> None:
    config = crio_etc(tmp_path, "packaged-1.30")
    before = snapshot(tmp_path)
    status, _, err = run_ctk(
        capsys, "runtime", "configure", "--runtime=crio", f"--config={config}",
        f"--runtime-path={tmp_path / 'my-shim'}", f"--toolkit-config={tmp_path / 'config.toml'}",
    )  # fmt: skip
    assert status == 1 and err.count("\n") == 1 and "give the path of container-hooks-runtime itself" in err, err
    assert snapshot(tmp_path) == before


def test_a_record_of_the_runtimes_first_era_is_still_taken_back(tmp_path: Path, capsys: Any) -> None:
    """Before tags, configure put the binary first in runtimes: unconfigure of such a record still works."""
    config = tmp_path / "daemon.json"
    config.write_text("{}\n")
    toolkit = tmp_path / "config.toml"
    original = '[container-hooks-runtime]\nruntimes = ["runc"]\n'
    toolkit.write_text('[container-hooks-runtime]\nruntimes = ["/opt/crun", "runc"]\n')
    record = {"runtime": "/opt/crun", "before": original, "after": toolkit.read_text()}
    Path(f"{toolkit}.chains.json").write_text(json.dumps({f"docker:{config}": record}))
    unconfigured(capsys, "docker", config, f"--toolkit-config={toolkit}")
    assert toolkit.read_text() == original and not Path(f"{toolkit}.chains.json").exists()


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
    assert chains(toolkit) == {"runc-custom": "/opt/runc-custom"}
    engine = get_engine("containerd")
    effective = engine.effective(str(config), "file")
    assert engine.low_level_runtime(effective, "kata") is None  # its own shim: nothing runc-like
    assert engine.low_level_runtime(effective, NAME) == f"{SHIM}.runc-custom"


def test_one_tag_through_two_shim_directories_leaves_neither_link(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    _, crun = fake_runtimes(tmp_path, monkeypatch)
    podman = tmp_path / "containers.conf"
    podman.write_text(f'[engine]\nruntime = "crun"\n[engine.runtimes]\ncrun = ["{crun}"]\n')
    docker = tmp_path / "daemon.json"
    docker.write_text(json.dumps({"runtimes": {"crun": {"path": str(crun)}}, "default-runtime": "crun"}))
    toolkit = tmp_path / "config.toml"
    shims = {"podman": tmp_path / "a" / NAME, "docker": tmp_path / "b" / NAME}
    configs = {"podman": podman, "docker": docker}
    for engine, shim in shims.items():
        shim.parent.mkdir()
        status, _, err = run_ctk(
            capsys, "runtime", "configure", f"--runtime={engine}", f"--config={configs[engine]}",
            f"--runtime-path={shim}", "--config-source=file", f"--toolkit-config={toolkit}",
        )  # fmt: skip
        assert status == 0, err
    assert chains(toolkit) == {"crun": str(crun)}
    assert all(os.readlink(f"{shim}.crun") == NAME for shim in shims.values())
    for engine in shims:
        status, _, err = run_ctk(
            capsys, "runtime", "unconfigure", f"--runtime={engine}", f"--config={configs[engine]}",
            f"--toolkit-config={toolkit}",
        )  # fmt: skip
        assert status == 0, err
        assert not os.path.lexists(f"{shims[engine]}.crun")  # its own link goes with it
    assert not toolkit.exists()
