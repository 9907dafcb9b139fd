"""Docker daemon.json: runtimeArgs kept, layout kept, the previous default recorded and restored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine_cases import NAME, SHIM, configured, runtime_cmd, unconfigured

STATE = ".container-hooks-state.json"


def test_an_existing_entry_keeps_its_runtime_args_and_comes_back(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    original = {
        "runtimes": {NAME: {"path": "/old/shim", "runtimeArgs": ["--debug"]}},
        "default-runtime": "crun-wrapper",
        "features": {"buildkit": True},
    }
    text = json.dumps(original, indent="\t") + "\n"
    config.write_text(text)
    configured(capsys, "docker", config, "--set-as-default")
    written = json.loads(config.read_text())
    assert written["runtimes"][NAME] == {"path": SHIM, "runtimeArgs": ["--debug"]}
    assert written["default-runtime"] == NAME
    assert config.read_text().startswith('{\n\t"runtimes"')  # tabs kept
    record = json.loads(Path(f"{config}{STATE}").read_text())
    assert record["default-runtime"] == "crun-wrapper"
    unconfigured(capsys, "docker", config)
    assert config.read_text() == text  # the old entry and the old default, byte for byte
    assert not Path(f"{config}{STATE}").exists()


def test_a_missing_file_gets_a_minimal_one(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "docker" / "daemon.json"
    configured(capsys, "docker", config)
    assert json.loads(config.read_text()) == {"runtimes": {NAME: {"path": SHIM}}}
    unconfigured(capsys, "docker", config)
    assert json.loads(config.read_text()) == {}


def test_runc_is_reserved(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    status, _, err = runtime_cmd(capsys, "configure", "docker", config, "--runtime-name=runc")
    assert status != 0 and "reserved" in err
    assert not config.exists()


def test_without_a_record_unconfigure_does_not_guess_a_default(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"runtimes": {NAME: {"path": SHIM}}, "default-runtime": NAME}))
    status, _, err = runtime_cmd(capsys, "unconfigure", "docker", config)
    assert status == 0, err
    assert "no record of the previous default" in err
    assert json.loads(config.read_text()) == {}  # docker's own default, not a guessed name


def test_reload_refuses_a_pid_that_is_not_dockerd(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    pid_file = tmp_path / "docker.pid"
    pid_file.write_text("1\n")
    status, _, err = runtime_cmd(capsys, "configure", "docker", config, "--reload", f"--pid-file={pid_file}")
    assert status != 0 and "not dockerd" in err
