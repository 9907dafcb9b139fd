"""Docker, CRI-O and Podman against the corpus of real hosts' files (tests/fixtures/engines/*/README.md).

For every file, with and without --set-as-default: configure, the engine's effective view has
our runtime (and the default asked for) and nothing else changed (runtime.py verifies that too),
the low-level runtime is recorded when the shim would otherwise exec another binary, a second
configure writes nothing, and unconfigure gives back the original bytes of every file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple, Optional

import pytest
from engine_cases import NAME, SHIM, runtime_cmd, snapshot

from chts.engines import get_engine, podman

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "engines"


class Case(NamedTuple):
    engine: str
    fixture: str  # a file (docker) or a directory, under tests/fixtures/engines/<engine>/
    config: str  # the config file within the copy
    chained: Optional[str]  # what configure records for the shim to exec (None: nothing to record)
    refused_as_default: Optional[str] = None  # why --set-as-default cannot work on this host


CASES = [
    Case("docker", "docs-youki.json", "daemon.json", None),
    Case("docker", "docs-gvisor-shim.json", "daemon.json", None),
    Case("docker", "docs-shim-path-and-default.json", "daemon.json", None),
    Case("docker", "nvidia-ctk.json", "daemon.json", None),
    Case("docker", "nvidia-default.json", "daemon.json", "/usr/bin/nvidia-container-runtime"),
    Case("docker", "compact-crlf.json", "daemon.json", None),
    Case("docker", "tabs-no-final-newline.json", "daemon.json", None),
    Case("crio", "packaged-1.30", "crio.conf", "/usr/libexec/crio/crun"),
    Case("crio", "packaged-crio-prefix", "crio.conf", "/usr/bin/crio-crun"),
    Case("crio", "packaged-conmonrs", "crio.conf", "/usr/libexec/crio/crun"),
    Case("crio", "distro-crio-conf", "crio.conf", None),
    Case(
        "crio",
        "nvidia-ctk",
        "crio.conf",
        "/usr/bin/nvidia-container-runtime",
        "99-nvidia.toml is read after",
    ),
    # podman on a host with crun and runc in /usr/bin (HOST_BINARIES, under the test's own root): its default,
    # named (fedora) or found (containers-common, no `runtime`: crun first), runs crun
    Case("podman", "containers-common-0.50", "containers.conf", "{host}/usr/bin/crun"),
    Case("podman", "fedora-crun-dropins", "containers.conf", "{host}/usr/bin/crun"),
]
HOST_BINARIES = ("usr/bin/crun", "usr/bin/runc")


def podman_host(tmp_path: Path, etc: Path, monkeypatch: Any) -> Path:
    """A host root of the test's own for podman's candidate paths and $PATH: the binaries this machine
    has (crun or not) play no part. The copied files' paths and the built-in lists point into it."""
    host = tmp_path / "host"
    for binary in HOST_BINARIES:
        (host / binary).parent.mkdir(parents=True, exist_ok=True)
        (host / binary).write_text("#!/bin/sh\n")
        (host / binary).chmod(0o755)
    (host / "path").mkdir()
    for path in etc.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace('"/usr/', f'"{host}/usr/'))
    rooted = {name: [f"{host}{path}" for path in paths] for name, paths in podman.BUILTIN_RUNTIMES.items()}
    monkeypatch.setattr(podman, "BUILTIN_RUNTIMES", rooted)
    monkeypatch.setenv("PATH", str(host / "path"))
    return host


def host_copy(tmp_path: Path, case: Case) -> Path:
    """The fixture copied to ``tmp_path/etc``; returns the config path."""
    source = CORPUS / case.engine / case.fixture
    etc = tmp_path / "etc"
    if source.is_dir():
        shutil.copytree(source, etc)
    else:
        etc.mkdir()
        shutil.copyfile(source, etc / case.config)
    return etc / case.config


def user_files(etc: Path) -> Any:
    return {name: data for name, data in snapshot(etc).items() if not name.endswith(".container-hooks.bak")}


@pytest.mark.parametrize("set_as_default", [False, True], ids=["added", "default"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.engine}:{case.fixture}")
def test_corpus_file(tmp_path: Path, capsys: Any, monkeypatch: Any, case: Case, set_as_default: bool) -> None:
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    config = host_copy(tmp_path, case)
    etc = config.parent
    host = podman_host(tmp_path, etc, monkeypatch) if case.engine == "podman" else tmp_path
    toolkit = tmp_path / "toolkit" / "config.toml"
    original = user_files(etc)
    flags = [f"--toolkit-config={toolkit}", "--config-source=file", *(["--set-as-default"] if set_as_default else [])]

    status, out, err = runtime_cmd(capsys, "configure", case.engine, config, *flags)
    if set_as_default and case.refused_as_default:
        assert status != 0 and case.refused_as_default in err, err
        assert user_files(etc) == original and not toolkit.exists()
        return
    assert status == 0, err
    engine = get_engine(case.engine)
    effective = engine.effective(str(config), "file")
    assert SHIM in json.dumps(effective.runtimes[NAME])
    if set_as_default:
        assert effective.default == NAME
    records = Path(f"{toolkit}.chains.json")
    if case.chained is None:
        assert not records.exists()
    else:
        chained = case.chained.format(host=host)
        assert json.loads(records.read_text())[f"{case.engine}:{config}"]["runtime"] == chained

    once = {**snapshot(etc), **snapshot(toolkit.parent)}
    status, out, err = runtime_cmd(capsys, "configure", case.engine, config, *flags)
    assert status == 0 and "nothing changed" in out, err
    assert once == {**snapshot(etc), **snapshot(toolkit.parent)}

    status, out, err = runtime_cmd(capsys, "unconfigure", case.engine, config, *flags[:2])
    assert status == 0, err
    assert user_files(etc) == original  # every file, byte for byte
    assert not records.exists()
