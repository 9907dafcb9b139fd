"""The containerd corpus through the real containerd of each generation nodes run: Debian 12's 1.6, and 1.7
and 2.x from Debian's newer suites (tests/newer_engines.py).

* Every file, plain and --drop-in, with and without --set-as-default: configure, containerd's own
  `config dump` has our runtime and everything else as before, a second configure changes nothing,
  unconfigure gives back every byte and directory (no daemon: `config dump` is containerd's parser).
* A real daemon of each generation on private paths (a mount namespace with its own /run/containerd):
  Debian's packaged file, configured without and with --set-as-default, loads the CRI plugin(s), and
  `ctr run --runc-binary <shim>` runs a container whose hook fires.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import newer_engines
import pytest
from conftest import CLEAN_PATH, ToolkitRoot, record_hook, require, require_binary, require_root
from containerd_corpus import CASES, CORPUS, EXPECTED, install
from daemons import short_directory, start_containerd

from chts.ctk.main import main
from chts.engines import EffectiveRuntimes
from chts.engines.containerd import ENGINE
from chts.engines.containerd_config import RUNC_V2

pytestmark = pytest.mark.integration

NAME = "container-hooks-runtime"
SHIM = "/opt/hooks/container-hooks-runtime"
GENERATIONS = ("1.6", "1.7", "2")
NEWER = {"1.7": "containerd-1.7", "2": "containerd-2"}
# What each generation makes of the corpus, where it differs from EXPECTED (read by 1.x rules, 2.x's for version 3)
NEWER_FORMAT = "version 3 is containerd 2.x's format"
VERSION_1 = "containerd 2.x ignores the CRI settings of a version-1 file"
ON_1X: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    **EXPECTED,
    "rke2-v3": (NEWER_FORMAT, NEWER_FORMAT),
    "containerd-2-default": (NEWER_FORMAT, NEWER_FORMAT),
}
ON_2X: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    **EXPECTED,
    "gce-v1-legacy": (VERSION_1, VERSION_1),
    "nvidia-ctk": (None, None),  # 2.x merges imported plugin tables: nvidia's drop-in hides nothing
    "docker-containerd-io": (VERSION_1, VERSION_1),
}
DISABLED_SOURCE = "file (containerd config dump omits the disabled CRI plugin)"
LEGACY_DEFAULT = "the deprecated containerd.default_runtime table is set"
# Host paths a real run must not touch: rewritten under the run's private directory
HOST_STATE = re.compile(r"""(["'])/(var/lib|run)/""")
# the CRI plugins `ctr plugins ls` lists (type, id): 2.x splits CRI in three
CRI_PLUGINS = {
    "1": [("io.containerd.grpc.v1", "cri")],
    "2": [("io.containerd.cri.v1", "runtime"), ("io.containerd.cri.v1", "images"), ("io.containerd.grpc.v1", "cri")],
}


def containerd_directory(generation: str) -> Path:
    """The directory of that generation's containerd and ctr (skipped, outside CI, when it is not here)."""
    if generation == "1.6":
        binary = require_binary("containerd")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
        require(" 1.6." in version, f"the containerd on PATH is not Debian 12's 1.6: {version.strip()}")
        return Path(binary).parent
    tree = newer_engines.installed(NEWER[generation])
    fetch = f"python3 tests/newer_engines.py fetch {NEWER[generation]}"
    require(tree is not None, f"containerd {generation} is not fetched ({fetch})")
    assert tree is not None
    return tree / "usr" / "bin"


def ctk(capsys: Any, action: str, config: Path, *extra: str) -> Tuple[int, str, str]:
    """`container-hooks-ctk runtime ACTION --runtime=containerd ...` in-process (containerd is asked all the same)."""
    argv = ["runtime", action, "--runtime=containerd", f"--config={config}", f"--runtime-path={SHIM}", *extra]
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def tree(directory: Path) -> Dict[str, Optional[bytes]]:
    """Every file (its bytes) and directory (None) below ``directory``, without configure's backups."""
    found = sorted(p for p in directory.rglob("*") if not p.name.endswith(".container-hooks.bak"))
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else None for p in found}


def effective(config: Path) -> EffectiveRuntimes:
    """containerd's own view (`config dump`), checked against our reading of the files (--config-source=file)."""
    by_containerd = ENGINE.effective(str(config), "command")
    by_file = ENGINE.effective(str(config), "file")
    # a disabled CRI plugin is left out of the dump: its runtimes come from the files (once the dump said so)
    assert by_containerd.source in ("containerd config dump", DISABLED_SOURCE)
    assert (by_file.default, by_file.runtimes) == (by_containerd.default, by_containerd.runtimes)
    return by_containerd


@pytest.mark.parametrize("drop_in", [False, True], ids=["plain", "drop-in"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("generation", GENERATIONS)
def test_corpus_file_with_the_real_containerd(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, generation: str, case: str, drop_in: bool
) -> None:
    monkeypatch.setenv("PATH", f"{containerd_directory(generation)}:{CLEAN_PATH}")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    config = install(case, corpus)
    extra = ["--drop-in"] if drop_in else []
    before = tree(corpus)
    refusals = (ON_2X if generation == "2" else ON_1X)[case]
    # a version-3 file is for 2.x alone: 1.7 does not even parse it (1.6 reads no CRI runtime from it)
    view = effective(config) if refusals[drop_in] != NEWER_FORMAT else None
    for default in ([], ["--set-as-default"]):
        refusal = refusals[drop_in]
        if case == "gce-v1-legacy" and default and generation != "2":
            refusal = LEGACY_DEFAULT
        status, out, err = ctk(capsys, "configure", config, *extra, *default)
        if refusal is not None:
            assert status != 0 and err.count("\n") == 1 and refusal in err, err
            assert tree(corpus) == before and "wrote" not in out
            continue
        assert status == 0 and view is not None, err
        assert ("disables the CRI plugin" in err) is (case == "docker-containerd-io"), err  # a warning, exit 0
        after = effective(config)
        assert after.runtimes[NAME]["runtime_type"] == RUNC_V2
        assert after.runtimes[NAME]["options"]["BinaryName"] == SHIM
        assert after.default == (NAME if default else view.default)
        for name, settings in view.runtimes.items():
            assert after.runtimes[name] == settings, name  # runc (built-in or not) and every other runtime kept
        if default:  # a second configure writes nothing
            status, out, err = ctk(capsys, "configure", config, *extra, *default)
            assert status == 0 and "nothing changed" in out, err
        status, _, err = ctk(capsys, "unconfigure", config)
        assert status == 0, err
        assert tree(corpus) == before  # every byte, and no directory left behind


def cri_default(log: str) -> Optional[str]:
    """The default runtime the CRI plugin started with, from containerd's log (1.x: Go's %+v; 2.x: JSON)."""
    found = re.search(r'[Dd]efaultRuntimeName[\\":]+([\w.-]+)', log)
    return found.group(1) if found else None


@pytest.mark.parametrize("default", [False, True], ids=["added", "default"])
@pytest.mark.parametrize("generation", GENERATIONS)
def test_debian_packaged_file_runs_containers_through_the_shim(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path, generation: str, default: bool
) -> None:
    """A daemon of each generation on Debian's file configured (by the built .pyz, asking that containerd):
    the CRI plugin(s) load with the shim's runtime (the default or not), and a container run through the
    shim has its hook fired."""
    require_root()
    directory = containerd_directory(generation)
    config = tmp_path / "config.toml"
    config.write_bytes((CORPUS / "debian-12" / "config.toml").read_bytes())
    argv = [str(toolkit.ctk), "runtime", "configure", "--runtime=containerd", f"--config={config}",
            f"--runtime-path={toolkit.shim}", *(["--set-as-default"] if default else [])]  # fmt: skip
    done = subprocess.run(argv, env=toolkit.env(PATH=f"{directory}:{CLEAN_PATH}"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    state = short_directory("chc-")
    config.write_text(HOST_STATE.sub(lambda m: f"{m.group(1)}{state}/{m.group(2)}/", config.read_text()))
    log = tmp_path / "hook.log"
    toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
    binary = str(directory / "containerd")
    with start_containerd(binary, config, state, env=toolkit.env(), private_flags=True, private_run=True) as engine:
        server = engine.ctr("version").stdout.split("Server:")[-1]
        assert re.search(rf"Version:\s+v?{re.escape(generation)}\.", server), server  # the generation asked for
        plugins = [line.split() for line in engine.ctr("plugins", "ls").stdout.splitlines()]
        done = engine.ctr("run", "--rm", "--runc-binary", str(toolkit.shim), "--rootfs", str(busybox_rootfs),
                          "hooked", "/bin/echo", "hello")  # fmt: skip
        text = engine.log.read_text(errors="replace")
    status = {(line[0], line[1]): line[-1] for line in plugins if len(line) >= 4}
    for plugin in CRI_PLUGINS[generation[0]]:
        assert status.get(plugin) == "ok", f"{plugin}: {status.get(plugin)}\n{text[-3000:]}"
    assert cri_default(text) == (NAME if default else "runc"), text[-3000:]
    assert str(toolkit.shim) in text  # the shim's runtime, as the CRI plugin started with it
    assert done.stdout == "hello\n"
    assert log.read_text() == "fired\n"
