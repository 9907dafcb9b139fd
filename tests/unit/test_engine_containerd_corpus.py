"""Every file of the containerd corpus: configure and unconfigure, plain and --drop-in, with and without
--set-as-default, judged by reading the files as containerd does (the integration test asks containerd)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from containerd_corpus import CASES, EXPECTED, install
from engine_cases import NAME, SHIM, runtime_cmd, snapshot

from chts.ctk.runtime import change_runtime
from chts.engines import RuntimeRequest, containerd_config
from chts.engines.containerd import ENGINE


@pytest.fixture(autouse=True)
def no_containerd_binary(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)
    # configure may record the chained runtime in the toolkit config: never the host's
    monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(tmp_path_factory.mktemp("toolkit") / "config.toml"))


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


def test_nvidia_ctk_drop_in_is_merged_by_containerd_2(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """containerd 2.x merges imported plugin tables: the plain edit beside nvidia-ctk's drop-in works there."""
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: "/usr/bin/containerd-2")
    monkeypatch.setattr(containerd_config, "binary_major", lambda binary: 2)
    config = install("nvidia-ctk", tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config, "--config-source=file", "--set-as-default")
    assert status == 0, err
    view = ENGINE.effective(str(config), "file")
    assert set(view.runtimes) == {"runc", "nvidia", NAME} and view.default == NAME


def test_the_in_process_entry_point_takes_a_request(tmp_path: Path) -> None:
    """What a node installer calls: change_runtime(engine, RuntimeRequest(...), configure) and back."""
    config = install("eks-al2023", tmp_path)
    before = snapshot(tmp_path)
    request = RuntimeRequest(str(config), NAME, SHIM, set_as_default=True, config_source="file", drop_in=True)
    written = change_runtime(ENGINE, request, configure=True, say=lambda message: None)
    assert [edit.path for edit in written] == [str(config.parent / "config.d" / "99-container-hooks.toml")]
    assert ENGINE.effective(str(config), "file").default == NAME
    change_runtime(ENGINE, request, configure=False, say=lambda message: None)
    assert snapshot(tmp_path) == before
