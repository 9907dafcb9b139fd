"""CRI-O against fixtures in its documented format: inheritance, default, drop-in, unconfigure."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

import pytest
from engine_cases import NAME, SHIM, configured, runtime_cmd, snapshot, unconfigured

from chts.toolkit_config import toml_loads

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "crio"


@pytest.fixture
def crio_etc(tmp_path: Path) -> Path:
    """A copy of the fixture /etc/crio: crio.conf (runc default) and crio.conf.d/10-crun.conf (crun default)."""
    shutil.copytree(FIXTURES, tmp_path / "crio")
    return tmp_path / "crio"


def drop_in(etc: Path) -> Dict[str, Any]:
    return toml_loads((etc / "crio.conf.d" / f"99-{NAME}.conf").read_text())


def test_inherits_the_effective_default_and_becomes_it(crio_etc: Path, capsys: Any) -> None:
    user_files = snapshot(crio_etc)
    configured(capsys, "crio", crio_etc / "crio.conf", "--set-as-default")
    runtime = drop_in(crio_etc)["crio"]["runtime"]
    assert runtime["default_runtime"] == NAME
    entry = runtime["runtimes"][NAME]
    # crun is the default once 10-crun.conf is applied: its settings carry over
    assert entry == {
        "runtime_path": SHIM,
        "runtime_type": "oci",
        "runtime_root": "/run/crun",
        "monitor_path": "/usr/libexec/crio/conmon",
        "monitor_env": ["PATH=/usr/bin:/bin"],
    }
    after = snapshot(crio_etc)
    assert {k: v for k, v in after.items() if k in user_files} == user_files  # the user's files untouched
    unconfigured(capsys, "crio", crio_etc / "crio.conf")
    assert snapshot(crio_etc) == user_files  # the previous default (crun) is back by itself


def test_without_drop_ins_runc_settings_carry_over_and_the_default_stays(crio_etc: Path, capsys: Any) -> None:
    (crio_etc / "crio.conf.d" / "10-crun.conf").unlink()
    configured(capsys, "crio", crio_etc / "crio.conf")
    runtime = drop_in(crio_etc)["crio"]["runtime"]
    assert "default_runtime" not in runtime
    entry = runtime["runtimes"][NAME]
    assert entry["runtime_root"] == "/run/runc"
    assert entry["monitor_cgroup"] == "system.slice"
    assert entry["allowed_annotations"] == ["io.containers.trace-syscall"]
    assert entry["runtime_path"] == SHIM and entry["runtime_type"] == "oci"


def test_a_vm_default_is_not_inherited(crio_etc: Path, capsys: Any) -> None:
    (crio_etc / "crio.conf.d" / "10-crun.conf").write_text('[crio.runtime]\ndefault_runtime = "kata"\n')
    configured(capsys, "crio", crio_etc / "crio.conf")
    entry = drop_in(crio_etc)["crio"]["runtime"]["runtimes"][NAME]
    assert entry["runtime_root"] == "/run/runc"  # runc's, not kata's /run/vc
    assert entry["runtime_type"] == "oci"


def test_drop_in_dir_option_and_a_later_default_is_reported(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "crio.conf"
    shutil.copy(FIXTURES / "crio.conf", config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "999-site.conf").write_text('[crio.runtime]\ndefault_runtime = "runc"\n')
    status, out, err = runtime_cmd(
        capsys, "configure", "crio", config, f"--drop-in-dir={elsewhere}", "--set-as-default"
    )
    assert status == 0, err
    assert (elsewhere / f"99-{NAME}.conf").exists()
    assert "999-site.conf is read after" in err


def test_a_runtime_of_that_name_defined_by_the_user_is_refused(crio_etc: Path, capsys: Any) -> None:
    (crio_etc / "crio.conf.d" / "20-mine.conf").write_text(f'[crio.runtime.runtimes.{NAME}]\nruntime_path = "/x"\n')
    before = snapshot(crio_etc)
    status, _, err = runtime_cmd(capsys, "configure", "crio", crio_etc / "crio.conf")
    assert status != 0 and "20-mine.conf: already defines runtime" in err
    assert snapshot(crio_etc) == before


def test_a_missing_crio_conf_still_gets_a_drop_in(tmp_path: Path, capsys: Any) -> None:
    configured(capsys, "crio", tmp_path / "crio.conf")
    entry = drop_in(tmp_path)["crio"]["runtime"]["runtimes"][NAME]
    assert entry == {"runtime_path": SHIM, "runtime_type": "oci"}
