"""The runtime record the shim leaves for the archive's sh start: when it is written, what it says, where not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from chts.shim import runtime_record

HEADER = f"{runtime_record.HEADER} test-build"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import posix

    directory = tmp_path / "cache"
    monkeypatch.setitem(posix.environ, b"CONTAINER_HOOKS_CACHE_DIR", str(directory).encode())
    monkeypatch.setattr(runtime_record, "header", lambda: HEADER)
    return directory


def aged_config(tmp_path: Path, seconds: float = 10) -> Path:
    config = tmp_path / "config.toml"
    config.write_text("")
    old = config.stat().st_mtime_ns - int(seconds * 1e9)
    os.utime(config, ns=(old, old))
    return config


def test_the_record_names_the_config_and_its_runtimes_and_carries_its_mtime(cache: Path, tmp_path: Path) -> None:
    config = aged_config(tmp_path)
    runtime_record.renew(str(config), ["runc", "/opt/crun"], False)
    record = cache / runtime_record.RECORD_NAME
    assert record.read_text() == f"{HEADER}\n{config}\npresent\nrunc\n/opt/crun\n"
    assert record.stat().st_mtime_ns == config.stat().st_mtime_ns
    assert (record.stat().st_mode & 0o777, cache.stat().st_mode & 0o777) == (0o600, 0o700)


def test_a_missing_config_is_recorded_as_absent(cache: Path, tmp_path: Path) -> None:
    runtime_record.renew(str(tmp_path / "none.toml"), ["runc"], False)
    assert (cache / runtime_record.RECORD_NAME).read_text() == f"{HEADER}\n{tmp_path / 'none.toml'}\nabsent\nrunc\n"


def test_logged_passthrough_and_unwritable_values_leave_no_runtime_for_the_sh(cache: Path, tmp_path: Path) -> None:
    config = aged_config(tmp_path)
    record = cache / runtime_record.RECORD_NAME
    runtime_record.renew(str(config), ["runc"], True)
    assert record.read_text().splitlines()[3:] == []
    runtime_record.renew(str(config), ["run\nc"], False)
    assert record.read_text().splitlines()[3:] == []


def test_a_config_changed_just_now_or_in_the_future_is_not_recorded(cache: Path, tmp_path: Path) -> None:
    for seconds in (0, 1.5, -60):
        runtime_record.renew(str(aged_config(tmp_path, seconds)), ["runc"], False)
        assert not (cache / runtime_record.RECORD_NAME).exists()


def test_a_current_record_is_not_rewritten_and_a_stale_one_is(cache: Path, tmp_path: Path) -> None:
    config = aged_config(tmp_path)
    runtime_record.renew(str(config), ["runc"], False)
    record = cache / runtime_record.RECORD_NAME
    inode = record.stat().st_ino
    runtime_record.renew(str(config), ["runc"], False)
    assert record.stat().st_ino == inode
    runtime_record.renew(str(config), ["crun"], False)
    assert record.stat().st_ino != inode and record.read_text().endswith("\ncrun\n")
    config = aged_config(tmp_path, 5)  # rewritten, older than before: the mtime must follow it
    runtime_record.renew(str(config), ["crun"], False)
    assert record.stat().st_mtime_ns == config.stat().st_mtime_ns


def test_a_cache_directory_others_can_write_gets_no_record(cache: Path, tmp_path: Path) -> None:
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    runtime_record.renew(str(aged_config(tmp_path)), ["runc"], False)
    assert not (cache / runtime_record.RECORD_NAME).exists()


def test_outside_a_built_archive_nothing_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import posix

    monkeypatch.setitem(posix.environ, b"CONTAINER_HOOKS_CACHE_DIR", str(tmp_path / "cache").encode())
    assert runtime_record.header() is None  # no chts/_build.py in a source checkout
    runtime_record.renew(str(aged_config(tmp_path)), ["runc"], False)
    assert not (tmp_path / "cache" / runtime_record.RECORD_NAME).exists()


def test_in_a_built_archive_the_header_names_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chts._build", types.SimpleNamespace(BUILD="build-1234"))
    assert runtime_record.header() == "container-hooks-toolkit runtime record build-1234"


@pytest.mark.parametrize(("age_ns", "recorded"), [(2_000_000_000, True), (1_999_999_999, False)])
def test_two_seconds_after_its_change_a_config_is_recorded(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age_ns: int, recorded: bool
) -> None:
    config = aged_config(tmp_path)
    now = config.stat().st_mtime_ns + age_ns
    monkeypatch.setattr(time, "time_ns", lambda: now)
    runtime_record.renew(str(config), ["runc"], False)
    assert (cache / runtime_record.RECORD_NAME).exists() is recorded


def test_importing_it_loads_neither_os_nor_typing() -> None:
    # The shim renews the record before exec'ing runc: builtins only (README, hot-path tiers).
    code = "import sys, chts.shim.runtime_record; print(sorted({'os', 'typing'} & set(sys.modules)))"
    root = Path(__file__).resolve().parent.parent.parent
    env = {"PYTHONPATH": str(root), "PATH": os.environ.get("PATH", "")}
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=root, env=env)
    assert run.stdout.strip() == "[]", run.stderr


def test_a_config_path_that_is_not_utf8_is_recorded_byte_for_byte(cache: Path, tmp_path: Path) -> None:
    config = os.fsdecode(os.fsencode(str(tmp_path)) + b"/conf\xff.toml")  # as the shim gets it from argv
    runtime_record.renew(config, ["runc"], False)
    assert (cache / runtime_record.RECORD_NAME).read_bytes() == (
        f"{HEADER}\n".encode() + os.fsencode(config) + b"\nabsent\nrunc\n"
    )


def test_chains_follow_the_runtimes_after_an_empty_line(cache: Path, tmp_path: Path) -> None:
    """container-hooks-runtime.TAG's binary, for the sh (chts/start.sh chts_find_chain): "TAG BINARY" lines."""
    config = aged_config(tmp_path)
    record = cache / runtime_record.RECORD_NAME
    runtime_record.renew(str(config), ["runc"], False, {"crun": "/usr/bin/crun", "nv": "/opt/a b/nvidia"})
    assert record.read_text().splitlines()[3:] == ["runc", "", "crun /usr/bin/crun", "nv /opt/a b/nvidia"]
    runtime_record.renew(str(config), ["runc"], True, {"crun": "/usr/bin/crun"})  # logged: all to Python
    assert record.read_text().splitlines()[3:] == []
    runtime_record.renew(str(config), ["runc"], False, {"crun": "/usr/bin/\ncrun"})  # not on a line: to Python
    assert record.read_text().splitlines()[3:] == []
    runtime_record.renew(str(config), ["runc"], False, {})
    assert record.read_text().splitlines()[3:] == ["runc"]
