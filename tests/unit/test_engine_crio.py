"""CRI-O against fixtures in its documented format: inheritance, default, drop-in, unconfigure."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

import pytest
from engine_cases import NAME, SHIM, configured, fake_binary, runtime_cmd, snapshot, unconfigured

from chts.base.text_files import toml_loads
from chts.engines import runtime_binaries
from chts.engines.crio import ENGINE, read_after
from chts.errors import ToolkitError

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
        "runtime_path": f"{SHIM}.crun",  # the shim's name for the crun CRI-O ran (chts/ctk/chaining.py)
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


def test_drop_in_dir_option_and_a_later_default_makes_configure_refuse(tmp_path: Path, capsys: Any) -> None:
    """A drop-in read after ours that sets default_runtime wins in CRI-O: --set-as-default cannot be had."""
    config = tmp_path / "crio.conf"
    shutil.copy(FIXTURES / "crio.conf", config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "999-site.conf").write_text('[crio.runtime]\ndefault_runtime = "runc"\n')
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "crio", config, f"--drop-in-dir={elsewhere}", "--set-as-default")
    assert status != 0
    assert "999-site.conf is read after" in err and "the effective default runtime is 'runc'" in err
    assert snapshot(tmp_path) == before  # our drop-in removed again
    configured(capsys, "crio", config, f"--drop-in-dir={elsewhere}")  # without --set-as-default it works
    assert (elsewhere / f"99-{NAME}.conf").exists()


def test_a_runtime_of_that_name_defined_by_the_user_is_refused(crio_etc: Path, capsys: Any) -> None:
    (crio_etc / "crio.conf.d" / "20-mine.conf").write_text(f'[crio.runtime.runtimes.{NAME}]\nruntime_path = "/x"\n')
    before = snapshot(crio_etc)
    status, _, err = runtime_cmd(capsys, "configure", "crio", crio_etc / "crio.conf")
    assert status != 0 and "20-mine.conf: already defines runtime" in err
    assert snapshot(crio_etc) == before


def test_a_missing_crio_conf_still_gets_a_drop_in(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no crun to be found: nothing to chain (a host's crun would be)
    monkeypatch.setattr(runtime_binaries, "FALLBACK_PATH", "")
    configured(capsys, "crio", tmp_path / "crio.conf", f"--toolkit-config={tmp_path / 'config.toml'}")
    entry = drop_in(tmp_path)["crio"]["runtime"]["runtimes"][NAME]
    assert entry == {"runtime_path": SHIM}  # CRI-O's built-in crun: nothing to copy


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_file_below_the_drop_in_directory_counts_in_walk_order(tmp_path: Path) -> None:
    """CRI-O reads any file name (NVIDIA's 99-nvidia.toml), subdirectories too, sorted, depth first."""
    config = write(tmp_path / "crio.conf", '[crio.runtime]\ndefault_runtime = "runc"\n')
    drop_ins = tmp_path / "crio.conf.d"
    write(drop_ins / "10-a" / "x", '[crio.runtime]\ndefault_runtime = "from-subdir"\n')
    write(drop_ins / "10-a-b", '[crio.runtime]\ndefault_runtime = "after-subdir"\n')  # "10-a" < "10-a-b"
    assert ENGINE.effective(str(config), "file").default == "after-subdir"
    write(drop_ins / "99-nvidia.toml", '[crio.runtime]\ndefault_runtime = "nvidia"\n')
    assert ENGINE.effective(str(config), "file").default == "nvidia"
    write(drop_ins / "README", "not toml [")  # CRI-O would fail on it, and so do we
    with pytest.raises(ToolkitError, match="README: invalid TOML"):
        ENGINE.effective(str(config), "file")


def test_a_later_file_replaces_a_runtime_entry_whole(tmp_path: Path, capsys: Any) -> None:
    """Go's TOML decoder gives each map entry a fresh value: runc's root from crio.conf is gone."""
    config = write(
        tmp_path / "crio.conf", '[crio.runtime.runtimes.runc]\nruntime_root = "/run/runc"\nmonitor_cgroup = "pod"\n'
    )
    write(
        tmp_path / "crio.conf.d" / "10-path.conf",
        '[crio.runtime.runtimes.runc]\nruntime_path = "/usr/libexec/crio/runc"\n',
    )
    effective = ENGINE.effective(str(config), "file")
    assert effective.runtimes["runc"] == {"runtime_path": "/usr/libexec/crio/runc"}
    assert ENGINE.low_level_runtime(effective, "runc") == "/usr/libexec/crio/runc"


def test_pod_runtimes_are_copied_with_their_settings(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "crio.conf"
    write(
        tmp_path / "crio.conf.d" / "10-crio.conf",
        '[crio.runtime]\ndefault_runtime = "crun"\n'
        '[crio.runtime.runtimes.crun]\nruntime_path = "/usr/libexec/crio/crun"\n'
        'runtime_type = "pod"\nmonitor_path = "/usr/libexec/crio/conmonrs"\n',
    )
    configured(capsys, "crio", config, "--set-as-default")
    entry = drop_in(tmp_path)["crio"]["runtime"]["runtimes"][NAME]
    assert entry == {
        "runtime_path": f"{SHIM}.crun",
        "runtime_type": "pod",
        "monitor_path": "/usr/libexec/crio/conmonrs",
    }


def test_a_drop_in_of_our_name_not_written_by_us_is_left_alone(tmp_path: Path, capsys: Any) -> None:
    config = write(tmp_path / "crio.conf", "[crio]\n")
    mine = write(tmp_path / "crio.conf.d" / f"99-{NAME}.conf", '[crio.runtime]\nlog_level = "debug"\n')
    status, _, err = runtime_cmd(capsys, "configure", "crio", config)
    assert status != 0 and "was not written by this tool" in err
    status, _, err = runtime_cmd(capsys, "unconfigure", "crio", config)
    assert status == 0 and "left as it is" in err
    assert mine.read_text() == '[crio.runtime]\nlog_level = "debug"\n'


def test_inherit_default_runtime_takes_the_defaults_binary(tmp_path: Path) -> None:
    config = write(
        tmp_path / "crio.conf",
        '[crio.runtime]\ndefault_runtime = "crun"\n'
        '[crio.runtime.runtimes.crun]\nruntime_path = "/usr/libexec/crio/crun"\n'
        '[crio.runtime.runtimes.high-perf]\ninherit_default_runtime = true\nmonitor_cgroup = "pod"\n',
    )
    effective = ENGINE.effective(str(config), "file")
    assert ENGINE.low_level_runtime(effective, "high-perf") == "/usr/libexec/crio/crun"


def test_vm_runtimes_run_nothing_the_shim_could_exec(crio_etc: Path) -> None:
    effective = ENGINE.effective(str(crio_etc / "crio.conf"), "file")
    assert ENGINE.low_level_runtime(effective, "kata") is None
    assert ENGINE.low_level_runtime(effective, "crun") == "/usr/bin/crun"


CRIO_CONFIG_OUTPUT = """\
# The CRI-O configuration file specifies all of the available configuration
[crio]
root = "/var/lib/containers/storage"

[crio.runtime]
# default_runtime is the _name_ of the OCI runtime to be used as the default.
# The name is matched against the runtimes map below.
# default_runtime = "crun"

# [crio.runtime.runtimes.runtime-handler]
# runtime_path = "/path/to/the/executable"

[crio.runtime.runtimes.crun]
runtime_path = "/usr/libexec/crio/crun"
runtime_type = "oci"
runtime_root = "/run/crun"
monitor_path = "/usr/libexec/crio/conmon"
"""


def fake_crio(tmp_path: Path, monkeypatch: Any, output: str, status: int = 0) -> Path:
    """A `crio` on $PATH that records its argv and prints ``output`` (CRI-O is not installable here)."""
    bin_dir = tmp_path / "fake-bin"
    script = f'echo "$@" > {bin_dir}/argv\ncat {bin_dir}/output\nexit {status}\n'
    fake_binary(bin_dir, monkeypatch, "crio", script)
    (bin_dir / "output").write_text(output)
    return bin_dir


def test_the_command_source_is_crios_own_config_output(tmp_path: Path, monkeypatch: Any) -> None:
    bin_dir = fake_crio(tmp_path, monkeypatch, CRIO_CONFIG_OUTPUT)
    config = tmp_path / "crio.conf"
    for source in ("auto", "command"):
        effective = ENGINE.effective(str(config), source)
        assert effective.source == "crio config"
        assert effective.default == "crun"  # printed commented out: the default value
        assert set(effective.runtimes) == {"crun"}  # the commented example is not a runtime
        assert ENGINE.low_level_runtime(effective, "crun") == "/usr/libexec/crio/crun"
    assert (bin_dir / "argv").read_text().split() == [
        "--config",
        str(config),
        "--config-dir",
        str(tmp_path / "crio.conf.d"),
        "config",
    ]
    assert ENGINE.effective(str(config), "file").source == "file"


def test_crio_refusing_its_config_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    fake_binary(
        tmp_path, monkeypatch, "crio", 'echo "level=fatal msg=\\"validating runtime config: bad\\"" >&2\nexit 1\n'
    )
    with pytest.raises(ToolkitError, match="^crio config refused it: level=fatal"):
        ENGINE.effective(str(tmp_path / "crio.conf"), "auto")


def test_command_source_without_crio_says_so(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(runtime_binaries, "FALLBACK_PATH", str(tmp_path))  # whatever this host has installed
    with pytest.raises(ToolkitError, match="crio is not installed here"):
        ENGINE.effective(str(tmp_path / "crio.conf"), "command")


def test_crios_built_in_entry_is_there_for_a_default_of_either_name(tmp_path: Path) -> None:
    # CRI-O >= 1.31 adds crun; before, runc: a file naming runc as default needs no runc table.
    assert set(ENGINE.effective(str(tmp_path / "crio.conf"), "file").runtimes) == {"crun"}
    config = write(tmp_path / "crio.conf", '[crio.runtime]\ndefault_runtime = "runc"\n')
    effective = ENGINE.effective(str(config), "file")
    assert (effective.default, set(effective.runtimes)) == ("runc", {"crun", "runc"})
    config = write(tmp_path / "crio.conf", '[crio.runtime]\ndefault_runtime = "kata"\n')
    assert set(ENGINE.effective(str(config), "file").runtimes) == {"crun"}


def test_the_command_source_takes_a_default_crio_printed_as_set(tmp_path: Path, monkeypatch: Any) -> None:
    output = CRIO_CONFIG_OUTPUT.replace('# default_runtime = "crun"', 'default_runtime = "runc"')
    output += '\n[crio.runtime.runtimes.runc]\nruntime_path = "/usr/bin/runc"\n'
    fake_crio(tmp_path, monkeypatch, output)
    effective = ENGINE.effective(str(tmp_path / "crio.conf"), "command")
    assert (effective.default, set(effective.runtimes)) == ("runc", {"crun", "runc"})


def test_drop_ins_named_after_ours_or_in_a_subdirectory_are_read_after_it() -> None:
    ours = "/etc/crio/crio.conf.d/99-container-hooks.conf"
    assert read_after("/etc/crio/crio.conf.d/999-site.conf", ours) is True
    assert read_after("/etc/crio/crio.conf.d/sub/00-a.conf", ours) is True  # "sub" > "99-..."
    assert read_after("/etc/crio/crio.conf.d/10-crun.conf", ours) is False
    assert read_after(ours, ours) is False


def test_an_unknown_runtime_has_no_low_level_runtime(crio_etc: Path) -> None:
    effective = ENGINE.effective(str(crio_etc / "crio.conf"), "file")
    assert ENGINE.low_level_runtime(effective, "no-such-runtime") is None


def test_an_empty_runtime_path_means_the_name_in_path(tmp_path: Path) -> None:
    config = write(tmp_path / "crio.conf", '[crio.runtime.runtimes.sh]\nruntime_path = ""\n')
    effective = ENGINE.effective(str(config), "file")
    assert (ENGINE.low_level_runtime(effective, "sh") or "").endswith("/sh")
