"""Every file of the containerd corpus against the real containerd: its own `config dump` of the result,
and a short real run on private paths showing the CRI plugin loaded with runc and our runtime."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest
from conftest import ToolkitRoot, require, require_binary
from containerd_corpus import CASES, EXPECTED, install
from daemons import containerd_config_dump, short_directory, start_containerd

from chts.engines.containerd import ENGINE
from chts.engines.containerd_config import without_zero_values
from chts.toolkit_config import toml_loads

pytestmark = pytest.mark.integration

NAME = "container-hooks-runtime"
CRI = "io.containerd.grpc.v1.cri"
# What containerd 1.x (this host's) makes of the corpus, where it differs from EXPECTED (read by 1.x rules)
NEWER_FORMAT = "version 3 is containerd 2.x's format"
ON_1X: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    **EXPECTED,
    "rke2-v3": (NEWER_FORMAT, NEWER_FORMAT),
    "containerd-2-default": (NEWER_FORMAT, NEWER_FORMAT),
}
# Host paths a real run must not touch: rewritten under the run's private directory
HOST_STATE = re.compile(r"""(["'])/(var/lib|run)/""")


def ctk(toolkit: ToolkitRoot, action: str, config: Path, *extra: str) -> Tuple[int, str, str]:
    argv = ["runtime", action, "--runtime=containerd", f"--config={config}", f"--runtime-path={toolkit.shim}"]
    done = toolkit.run_ctk([*argv, *extra])
    return done.returncode, done.stdout, done.stderr


def files(directory: Path, backups: bool = True) -> Dict[Path, bytes]:
    """Every file below ``directory`` and its bytes (without configure's ``.container-hooks.bak`` copies)."""
    found = sorted(p for p in directory.rglob("*") if p.is_file())
    return {p: p.read_bytes() for p in found if backups or not p.name.endswith(".container-hooks.bak")}


def cri_runtimes(config: Path) -> Dict[str, Dict[str, object]]:
    """The CRI runtimes as containerd's own `config dump` has them."""
    dumped = toml_loads(containerd_config_dump(config))
    runtimes: Dict[str, Dict[str, object]] = dumped["plugins"][CRI]["containerd"]["runtimes"]
    return runtimes


def assert_file_reading_agrees(config: Path) -> None:
    """Our reading of the files (--config-source=file) gives what containerd's own parser gives."""
    by_file = ENGINE.effective(str(config), "file")
    by_containerd = ENGINE.effective(str(config), "command")
    assert (by_file.default, by_file.runtimes) == (by_containerd.default, by_containerd.runtimes)


def test_this_hosts_packaged_config(tmp_path: Path, toolkit: ToolkitRoot) -> None:
    """The node-killing case: Debian's /etc/containerd/config.toml (copied) configured, the CRI plugin still loads."""
    binary = require_binary("containerd")
    packaged = Path("/etc/containerd/config.toml")
    require(packaged.is_file(), "no packaged /etc/containerd/config.toml on this host")
    config = tmp_path / "config.toml"
    config.write_bytes(packaged.read_bytes())
    status, _, err = ctk(toolkit, "configure", config, "--set-as-default")
    assert status == 0, err
    runtimes = cri_runtimes(config)
    assert set(runtimes) == {"runc", NAME}
    state = short_directory("chc-")
    config.write_text(HOST_STATE.sub(lambda m: f"{m.group(1)}{state}/{m.group(2)}/", config.read_text()))
    with start_containerd(binary, config, state, env=toolkit.env(), private_flags=True) as engine:
        plugins = engine.ctr("plugins", "ls").stdout
        log = engine.log.read_text(errors="replace")
    assert any(
        line.split()[:2] == ["io.containerd.grpc.v1", "cri"] and line.split()[-1] == "ok"
        for line in plugins.splitlines()
    ), log[-2000:]
    assert f"DefaultRuntimeName:{NAME}" in log


@pytest.mark.parametrize("drop_in", [False, True], ids=["plain", "drop-in"])
@pytest.mark.parametrize("case", CASES)
def test_corpus_file_with_the_real_containerd(tmp_path: Path, toolkit: ToolkitRoot, case: str, drop_in: bool) -> None:
    binary = require_binary("containerd")
    require_binary("ctr")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    config = install(case, corpus)
    extra = ["--drop-in"] if drop_in else []
    refusal = ON_1X[case][drop_in]
    before = files(corpus)
    runtimes_before = cri_runtimes(config)
    assert_file_reading_agrees(config)
    for default in ([], ["--set-as-default"]):
        status, _, err = ctk(toolkit, "configure", config, *extra, *default)
        if refusal is not None or (case == "gce-v1-legacy" and default):
            assert status != 0 and err.count("\n") == 1, err
            assert refusal is None or refusal in err, err
            continue
        assert status == 0, err
        runtimes = cri_runtimes(config)
        assert runtimes[NAME]["runtime_type"] == "io.containerd.runc.v2"
        assert runtimes[NAME]["options"]["BinaryName"] == str(toolkit.shim)  # type: ignore[index]
        assert "runc" in runtimes
        for name, settings in runtimes_before.items():  # Go's zero values are "unset": the built-in runc
            assert without_zero_values(runtimes[name]) == without_zero_values(settings), name  # spells them out
        assert_file_reading_agrees(config)
        status, out, err = ctk(toolkit, "configure", config, *extra, *default)
        assert status == 0 and "nothing changed" in out, err
        status, _, err = ctk(toolkit, "unconfigure", config)
        assert status == 0, err
        after = {
            p: p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file() and ".container-hooks" not in p.name
        }
        assert after == before
    if refusal is not None:
        assert files(corpus) == before
        return

    # a real containerd on the configured files: the CRI plugin loads, with runc and our runtime
    assert ctk(toolkit, "configure", config, *extra)[0] == 0
    state = short_directory("chc-")
    for path in corpus.rglob("*.toml"):
        path.write_text(HOST_STATE.sub(lambda m: f"{m.group(1)}{state}/{m.group(2)}/", path.read_text()))
    with start_containerd(binary, config, state, env=toolkit.env(), private_flags=True) as engine:
        plugins = engine.ctr("plugins", "ls").stdout
        log = engine.log.read_text(errors="replace")
    cri = [line.split() for line in plugins.splitlines() if line.split()[:2] == ["io.containerd.grpc.v1", "cri"]]
    assert cri and cri[0][-1] == "ok", log[-2000:]
    started = next(line for line in log.splitlines() if "Start cri plugin with config" in line)
    assert f"{NAME}:{{Type:io.containerd.runc.v2" in started
    assert re.search(r"[\[ ]runc:\{Type:", started)  # runc kept (gke's has no runtime_type: containerd's default)
