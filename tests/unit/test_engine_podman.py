"""Podman containers.conf: a line under an existing [engine.runtimes], the previous runtime restored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ctk_cli import run_ctk
from engine_cases import NAME, SHIM, configured, fake_binary, runtime_cmd, unconfigured

from chts.base.text_files import toml_loads
from chts.engines import podman, runtime_binaries
from chts.engines.podman import ENGINE
from chts.errors import ToolkitError

ORIGINAL = """\
# site containers.conf
[engine]
# crun cannot run here
runtime = "runc"   # keep

[engine.runtimes]
# our runc
runc = ["/usr/sbin/runc"]
"""


def test_edits_in_place_and_restores(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "containers.conf"
    config.write_text(ORIGINAL)
    configured(capsys, "podman", config, "--set-as-default")
    text = config.read_text()
    engine = toml_loads(text)["engine"]
    assert engine["runtime"] == NAME
    assert engine["runtimes"] == {"runc": ["/usr/sbin/runc"], NAME: [SHIM]}
    lines = text.splitlines()
    # under its table, after the user's runtimes
    assert lines[lines.index('runc = ["/usr/sbin/runc"]') + 1].startswith(f'{NAME} = ["{SHIM}"]')
    unconfigured(capsys, "podman", config)
    assert config.read_text() == ORIGINAL


def test_a_missing_file_gets_a_minimal_one(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    # podman's runtime is the test's runc, which the shim finds too: no chain (a host's crun would be one)
    runc = fake_binary(tmp_path / "bin", monkeypatch, "runc", "exit 0\n")
    monkeypatch.setattr(podman, "BUILTIN_RUNTIMES", {"runc": [str(runc)]})
    config = tmp_path / "containers.conf"
    configured(capsys, "podman", config, f"--toolkit-config={tmp_path / 'config.toml'}")
    assert toml_loads(config.read_text()) == {"engine": {"runtimes": {NAME: [SHIM]}}}


def test_drop_ins_count_and_podman_conf_alone_when_set(tmp_path: Path, monkeypatch: Any) -> None:
    """containers/common: the file, then <file>.d/*.conf sorted, no subdirectories; CONTAINERS_CONF: that file alone."""
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    monkeypatch.delenv("CONTAINERS_CONF_OVERRIDE", raising=False)
    config = tmp_path / "containers.conf"
    config.write_text('[engine]\nruntime = "runc"\n')
    drop_ins = tmp_path / "containers.conf.d"
    (drop_ins / "sub").mkdir(parents=True)
    (drop_ins / "10-crun.conf").write_text('[engine]\nruntime = "crun"\n')
    (drop_ins / "20-ignored.toml").write_text('[engine]\nruntime = "not-read"\n')
    (drop_ins / "sub" / "30-ignored.conf").write_text('[engine]\nruntime = "not-read"\n')
    assert ENGINE.effective(str(config), "file").default == "crun"
    monkeypatch.setenv("CONTAINERS_CONF", str(config))
    assert ENGINE.effective(str(config), "file").default == "runc"


def test_a_drop_in_default_makes_set_as_default_refuse(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    config = tmp_path / "containers.conf"
    config.write_text(ORIGINAL)
    (tmp_path / "containers.conf.d").mkdir()
    (tmp_path / "containers.conf.d" / "50-site.conf").write_text('[engine]\nruntime = "runc"\n')
    status, _, err = runtime_cmd(capsys, "configure", "podman", config, "--set-as-default")
    assert status != 0 and "the effective default runtime is 'runc'" in err
    assert config.read_text() == ORIGINAL  # restored
    (tmp_path / "containers.conf.d" / "60-mine.conf").write_text(f'[engine.runtimes]\n{NAME} = ["/x"]\n')
    status, _, err = runtime_cmd(capsys, "configure", "podman", config)
    assert status != 0 and "60-mine.conf: already defines engine.runtimes" in err


def test_without_runtime_podman_picks_the_first_it_finds(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    runc = tmp_path / "my-runc"
    runc.write_text("")
    config = tmp_path / "containers.conf"
    config.write_text(f'[engine.runtimes]\ncrun = ["/nonexistent/crun"]\nrunc = ["/nonexistent/runc", "{runc}"]\n')
    effective = ENGINE.effective(str(config), "file")
    assert effective.default == "runc"
    assert ENGINE.low_level_runtime(effective, "runc") == str(runc)  # the first path that exists
    assert ENGINE.low_level_runtime(effective, "/opt/bin/crun") == "/opt/bin/crun"  # `runtime` may be a path


def test_podman_looks_in_its_lists_and_path_only(tmp_path: Path, monkeypatch: Any) -> None:
    """containers/common's findRuntime and libpod: the runtime lists, then exec.LookPath ($PATH) and no
    other directory (the shim's fallback directories are the shim's, not podman's)."""
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    fallback, path, lists = tmp_path / "fallback", tmp_path / "path", tmp_path / "lists"
    for directory, names in ((fallback, ["crun", "runc"]), (path, ["runc"]), (lists, ["runsc"])):
        directory.mkdir()
        for name in names:
            (directory / name).write_text("#!/bin/sh\n")
            (directory / name).chmod(0o755)
    monkeypatch.setattr(runtime_binaries, "FALLBACK_PATH", str(fallback))
    builtin = {name: [str(lists / name)] for name in ("crun", "runc", "runsc")}  # only runsc's exists
    monkeypatch.setattr(podman, "BUILTIN_RUNTIMES", builtin)
    monkeypatch.setenv("PATH", str(path))
    config = tmp_path / "containers.conf"
    config.write_text("[engine]\n")
    effective = ENGINE.effective(str(config), "file")
    assert effective.default == "runc"  # not crun, which only the fallback directories have
    assert ENGINE.low_level_runtime(effective, "runc") == str(path / "runc")
    assert ENGINE.low_level_runtime(effective, "crun") is None
    (lists / "crun").mkdir()  # a directory in the list is not the runtime's binary (libpod: regular files)
    assert ENGINE.low_level_runtime(ENGINE.effective(str(config), "file"), "crun") is None
    monkeypatch.setenv("PATH", "")
    assert ENGINE.effective(str(config), "file").default == "crun"  # the list's path exists (findRuntime)
    (lists / "crun").rmdir()
    assert ENGINE.effective(str(config), "file").default == "runsc"


def test_the_command_source_takes_podman_infos_runtime(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    bin_dir = tmp_path / "bin"
    info = '{"host": {"ociRuntime": {"name": "runc", "path": "/usr/sbin/runc", "package": "runc"}}}'
    fake_binary(bin_dir, monkeypatch, "podman", f"echo \"$CONTAINERS_CONF\" > {bin_dir}/conf\necho '{info}'\n")
    config = tmp_path / "containers.conf"
    config.write_text('[engine]\nruntime = "runc"\n')
    effective = ENGINE.effective(str(config), "command")
    assert (effective.source, effective.default) == ("podman info", "runc")
    assert (bin_dir / "conf").read_text().strip() == str(config)  # podman pointed at this file
    assert ENGINE.effective(str(config), "auto").source == "file"  # podman info sets up storage: asked for only


def test_without_config_the_file_podman_reads_is_edited(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """CONTAINERS_CONF set: podman reads that file alone, so that is the one configure edits."""
    config = tmp_path / "mine.conf"
    config.write_text(ORIGINAL)
    monkeypatch.setenv("CONTAINERS_CONF", str(config))
    status, _, err = run_ctk(capsys, "runtime", "configure", "--runtime=podman", f"--runtime-path={SHIM}")
    assert status == 0, err
    assert toml_loads(config.read_text())["engine"]["runtimes"][NAME] == [SHIM]


def test_the_command_source_adds_podman_infos_runtime_when_the_files_lack_it(tmp_path: Path, monkeypatch: Any) -> None:
    bin_dir = tmp_path / "bin"
    info = '{"host": {"ociRuntime": {"name": "youki", "path": "/opt/youki", "package": "youki"}}}'
    fake_binary(bin_dir, monkeypatch, "podman", f"echo \"$@\" > {bin_dir}/argv\necho '{info}'\n")
    config = tmp_path / "containers.conf"
    config.write_text('[engine]\nruntime = "runc"\n')
    effective = ENGINE.effective(str(config), "command")
    assert (effective.default, effective.runtimes["youki"]) == ("youki", {"paths": ["/opt/youki"]})
    assert (bin_dir / "argv").read_text().split() == ["info", "--format", "json"]


def test_podman_is_pointed_at_a_file_only_when_nothing_else_names_one(tmp_path: Path, monkeypatch: Any) -> None:
    bin_dir = tmp_path / "bin"
    info = '{"host": {"ociRuntime": {"name": "runc", "path": "/usr/sbin/runc"}}}'
    fake_binary(bin_dir, monkeypatch, "podman", f"echo \"$CONTAINERS_CONF\" > {bin_dir}/conf\necho '{info}'\n")
    monkeypatch.setenv("CONTAINERS_CONF", str(tmp_path / "set.conf"))
    ENGINE.effective(str(tmp_path / "containers.conf"), "command")
    assert (bin_dir / "conf").read_text().strip() == str(tmp_path / "set.conf")


def test_podman_info_refusing_or_answering_without_a_runtime_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    config = tmp_path / "containers.conf"
    config.write_text("")
    fake_binary(tmp_path / "bin", monkeypatch, "podman", "echo 'Error: bad config' >&2\nexit 125\n")
    with pytest.raises(ToolkitError, match="^podman info refused it: Error: bad config"):
        ENGINE.effective(str(config), "command")
    fake_binary(tmp_path / "bin", monkeypatch, "podman", "echo '{\"host\": {}}'\n")
    with pytest.raises(ToolkitError, match="^podman info: its output has no host.ociRuntime name and path$"):
        ENGINE.effective(str(config), "command")


def test_command_source_without_podman_says_so(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(runtime_binaries, "FALLBACK_PATH", str(tmp_path))  # whatever this host has installed
    with pytest.raises(
        ToolkitError, match="^podman is not installed here, so it cannot be asked: use --config-source file$"
    ):
        ENGINE.effective(str(tmp_path / "containers.conf"), "command")
