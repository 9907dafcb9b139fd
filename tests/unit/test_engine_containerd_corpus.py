"""Every file of the containerd corpus: configure and unconfigure, plain and --drop-in, with and without
--set-as-default, judged by reading the files as containerd does (the integration test asks containerd)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from containerd_corpus import CASES, EXPECTED, install
from engine_cases import NAME, SHIM, runtime_cmd, snapshot

from chts.engines import containerd_config
from chts.engines.containerd import ENGINE


@pytest.fixture(autouse=True)
def no_containerd_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)


@pytest.mark.parametrize("default", [False, True], ids=["runtime", "default"])
@pytest.mark.parametrize("drop_in", [False, True], ids=["plain", "drop-in"])
@pytest.mark.parametrize("case", CASES)
def test_corpus_file(tmp_path: Path, capsys: Any, case: str, drop_in: bool, default: bool) -> None:
    config = install(case, tmp_path)
    extra = [*(["--drop-in"] if drop_in else []), *(["--set-as-default"] if default else [])]
    expected_refusal: Optional[str] = EXPECTED[case][drop_in]
    if case == "gce-v1-legacy" and default:
        expected_refusal = "deprecated containerd.default_runtime table"
    before = snapshot(tmp_path)
    effective_before = ENGINE.effective(str(config), "file")
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config, *extra)
    if expected_refusal is not None:
        assert status != 0 and expected_refusal in err and err.count("\n") == 1, err
        assert snapshot(tmp_path) == before
        return
    assert status == 0, err
    after = ENGINE.effective(str(config), "file")
    assert after.runtimes[NAME]["options"]["BinaryName"] == SHIM
    assert after.default == (NAME if default else effective_before.default)
    for name, settings in effective_before.runtimes.items():
        assert after.runtimes[name] == settings  # runc (built-in or not) and every other runtime kept
    assert "runc" in after.runtimes
    configured = snapshot(tmp_path)
    status, out, err = runtime_cmd(capsys, "configure", "containerd", config, *extra)
    assert status == 0 and "already configured; nothing changed" in out, err
    assert snapshot(tmp_path) == configured
    status, _, err = runtime_cmd(capsys, "unconfigure", "containerd", config)
    assert status == 0, err
    left = {name: data for name, data in snapshot(tmp_path).items() if not name.endswith(".container-hooks.bak")}
    assert left == before  # every original byte back, our drop-in gone
