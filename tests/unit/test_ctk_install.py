"""container-hooks-ctk install|uninstall into temporary roots, run from the .pyz and through the installed names."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import pytest
from ctk_cli import run_ctk

from chts.base.text_files import toml_loads
from chts.config.toolkit import parse_config
from chts.ctk.install import ARCHIVE_MEMBER, PYZ_NAME

NAMES = ("container-hooks-runtime", "container-hooks-ctk", "container-hooks")
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


class Host:
    """A temporary host: bin/ for the tools, etc/ for the toolkit's files."""

    def __init__(self, base: Path, pyz: Path) -> None:
        self.pyz = pyz
        self.bin = base / "bin"
        self.etc = base / "etc"
        self.config = self.etc / "config.toml"
        self.hooks = self.etc / "hooks.json"
        self.env = {
            **CLEAN_ENV,
            "CONTAINER_HOOKS_CONFIG": str(self.config),
            "CONTAINER_HOOKS_CACHE_DIR": str(base) + "-cache",
        }

    def options(self) -> List[str]:
        return ["--dest", str(self.bin), "--config", str(self.config)]

    def run(self, program: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(program), *args], env=self.env, capture_output=True, text=True, check=False)

    def install(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.pyz, "ctk", "install", *self.options(), *extra)

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin / "container-hooks-ctk", "uninstall", *self.options())

    def snapshot(self) -> Dict[str, Any]:
        """Every path below the host with its link target or content: to prove what changed."""
        result: Dict[str, Any] = {}
        for path in sorted(self.bin.parent.rglob("*")):
            if path.is_symlink():
                result[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                result[str(path)] = ("file", path.read_bytes(), path.stat().st_ino)
        return result


@pytest.fixture
def host(tmp_path: Path, pyz: Path) -> Host:
    return Host(tmp_path / "host", pyz)


def test_install_then_run_the_installed_names(host: Host) -> None:
    result = host.install()
    assert result.returncode == 0, result.stderr
    archive = host.bin / PYZ_NAME
    assert archive.read_bytes() == host.pyz.read_bytes()
    assert archive.stat().st_mode & 0o777 == 0o755
    for name in NAMES:
        assert os.readlink(host.bin / name) == PYZ_NAME  # relative: right wherever the host root is mounted
    config = parse_config(host.config.read_text(), str(host.config))
    # A config outside /etc/container-hooks keeps the toolkit's files beside it.
    assert config["container-hooks"]["path"] == str(host.hooks)
    assert config["container-hooks"]["hooks-dirs"] == [str(host.etc / "hooks.d")]
    assert config["container-hooks-runtime"]["debug"] == str(host.etc / "container-hooks-runtime.log")
    assert config["container-hooks-ctk"]["path"] == str(host.bin / "container-hooks-ctk")
    assert host.hooks.read_text() == "{}\n"
    assert not [p for p in host.bin.parent.rglob(".*")]  # no temporary files left

    ctk = host.bin / "container-hooks-ctk"
    assert host.run(ctk, "--version").stdout.startswith("container-hooks-ctk ")
    assert host.run(host.bin / "container-hooks").returncode == 0
    fake_runc = host.etc / "fake-runc"
    fake_runc.write_text('#!/bin/sh\necho "fake runc: $*"\n')
    fake_runc.chmod(0o755)
    assert host.run(ctk, "config", "-i", "--set", f"container-hooks-runtime.runtimes={fake_runc}").returncode == 0
    shim = host.run(host.bin / "container-hooks-runtime", "--version")
    assert (shim.returncode, shim.stdout) == (0, "fake runc: --version\n")  # exec'd the configured runtime
    assert host.run(ctk, "hooks", "validate").stdout == "OK: 0 hook(s) from 2 source(s)\n"
    fake_runc.unlink()


def test_install_twice_changes_nothing(host: Host) -> None:
    assert host.install().returncode == 0
    before = host.snapshot()
    result = host.install()
    assert result.returncode == 0
    assert host.snapshot() == before
    assert result.stdout.count("up to date") == 4 and result.stdout.count("exists, kept") == 2


def test_install_from_the_destination_itself(host: Host) -> None:
    assert host.install().returncode == 0
    before = host.snapshot()
    result = host.run(host.bin / "container-hooks-ctk", "install", *host.options(), "--toolkit-root", str(host.bin))
    assert result.returncode == 0, result.stderr
    assert "already in place (it is the source)" in result.stdout
    assert host.snapshot() == before


def test_upgrade_replaces_an_older_build(host: Host, tmp_path: Path) -> None:
    host.bin.mkdir(parents=True)
    with zipfile.ZipFile(host.bin / PYZ_NAME, "w") as old:
        old.writestr(ARCHIVE_MEMBER, "# an older build\n")
    (host.bin / "container-hooks-ctk").symlink_to(host.bin / PYZ_NAME)  # absolute link of a hand install
    result = host.install()
    assert result.returncode == 0, result.stderr
    assert "upgraded" in result.stdout
    assert (host.bin / PYZ_NAME).read_bytes() == host.pyz.read_bytes()
    assert os.readlink(host.bin / "container-hooks-ctk") == PYZ_NAME


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        (PYZ_NAME, lambda p: p.write_text("#!/bin/sh\n"), "is not a container-hooks-toolkit archive"),
        ("container-hooks-runtime", lambda p: p.write_text("#!/bin/sh\n"), "is not container-hooks-toolkit's"),
        ("container-hooks", lambda p: p.symlink_to("/bin/true"), "links to /bin/true, not to this toolkit"),
    ],
)
def test_install_refuses_to_replace_files_not_ours(host: Host, name: str, make: Any, message: str) -> None:
    host.bin.mkdir(parents=True)
    make(host.bin / name)
    before = host.snapshot()
    result = host.install()
    assert result.returncode == 1
    assert result.stderr == f"container-hooks-ctk: {host.bin / name}: {result.stderr.split(': ', 2)[2]}"
    assert message in result.stderr and "move it away first" in result.stderr
    assert host.snapshot() == before  # checked before the first change: nothing half-installed
    assert not host.config.exists()


def test_install_keeps_existing_config_and_hooks(host: Host) -> None:
    host.etc.mkdir(parents=True)
    host.config.write_text(f'# mine\n[container-hooks]\npath = "{host.hooks}"\n')
    host.hooks.write_text('{"prestart": [{"path": "/bin/true"}]}')
    before = host.snapshot()
    assert host.install().returncode == 0
    assert {k: v for k, v in host.snapshot().items() if k.startswith(str(host.etc))} == before


def test_install_bad_inputs(host: Host, tmp_path: Path) -> None:
    result = host.install("--toolkit-root", str(tmp_path))
    assert (
        result.returncode == 1 and result.stderr == f"container-hooks-ctk: {tmp_path}: holds no {PYZ_NAME} to install\n"
    )
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / PYZ_NAME).write_text("not a zip")
    result = host.install("--toolkit-root", str(fake))
    assert result.returncode == 1 and "not a container-hooks-toolkit archive" in result.stderr
    host.bin.parent.mkdir()
    host.bin.write_text("a file where the directory should be")
    result = host.install()
    assert result.returncode == 1 and result.stderr == f"container-hooks-ctk: {host.bin}: not a directory\n"
    assert not host.config.exists()


def test_install_from_a_checkout_needs_a_toolkit_root(capsys: Any, tmp_path: Path) -> None:
    status, _, err = run_ctk(capsys, "install", "--dest", str(tmp_path / "bin"), "--config", str(tmp_path / "c.toml"))
    assert status == 1 and "not running from the .pyz: give --toolkit-root DIR" in err


def test_install_without_root_says_so(capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    for command in ("install", "uninstall"):
        status, _, err = run_ctk(capsys, command, "--dest", str(tmp_path), "--config", str(tmp_path / "c.toml"))
        assert status == 1 and f"{command} needs root to write {tmp_path}" in err


def test_uninstall_removes_what_install_made_and_nothing_else(host: Host) -> None:
    assert host.install().returncode == 0
    (host.bin / "other-tool").write_text("#!/bin/sh\n")
    result = host.uninstall()
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in host.bin.iterdir()) == ["other-tool"]
    assert list(host.etc.iterdir()) == []
    assert result.stdout.count("removed ") == 6


def test_uninstall_keeps_changed_files_and_foreign_names(host: Host) -> None:
    assert host.install().returncode == 0
    ctk = host.bin / "container-hooks-ctk"
    assert host.run(ctk, "config", "-i", "--set", "container-hooks-runtime.log-level=debug").returncode == 0
    host.hooks.write_text('{"prestart": [{"path": "/bin/true"}]}')
    (host.bin / "container-hooks").unlink()
    (host.bin / "container-hooks").write_text("#!/bin/sh\n# someone else's\n")
    shutil.copy(host.bin / PYZ_NAME, host.bin.parent / "ctk.pyz")  # the installed ctk removes its own archive
    result = host.run(host.bin.parent / "ctk.pyz", "ctk", "uninstall", *host.options())
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in host.bin.iterdir()) == ["container-hooks"]
    assert toml_loads(host.config.read_text())["container-hooks-runtime"]["log-level"] == "debug"
    assert host.hooks.exists()
    assert "changed since install, kept" in result.stdout and "has hooks, kept" in result.stdout
    assert f"{host.bin / 'container-hooks'}: not ours, kept" in result.stdout


def test_uninstall_of_nothing(host: Host) -> None:
    host.bin.mkdir(parents=True)
    result = host.run(host.pyz, "ctk", "uninstall", *host.options())
    assert result.returncode == 0 and result.stdout == f"nothing of container-hooks-toolkit in {host.bin}\n"


def test_help_has_examples(capsys: Any) -> None:
    for command in ("install", "uninstall"):
        status, out, _ = run_ctk(capsys, command, "--help")
        assert status == 0 and "examples:" in out and "--toolkit-root" in out
