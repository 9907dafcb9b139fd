"""Podman containers.conf: a line under an existing [engine.runtimes], the previous runtime restored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine_cases import NAME, SHIM, configured, unconfigured

from chts.toolkit_config import toml_loads

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
    assert lines[lines.index("[engine.runtimes]") + 1].startswith(f'{NAME} = ["{SHIM}"]')  # under its table
    unconfigured(capsys, "podman", config)
    assert config.read_text() == ORIGINAL


def test_a_missing_file_gets_a_minimal_one(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "containers.conf"
    configured(capsys, "podman", config)
    assert toml_loads(config.read_text()) == {"engine": {"runtimes": {NAME: [SHIM]}}}
