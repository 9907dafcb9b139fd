"""write_atomically: all or nothing, mode and owner kept, symlinks followed, backups on request."""

from __future__ import annotations

import os
import posix
from pathlib import Path

import pytest

from chts.atomic import read_bytes, remove_stale_temps, write_atomically
from chts.errors import ToolkitError


def test_replaces_keeping_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    os.chown(path, 1234, 4321) if os.geteuid() == 0 else None
    before = path.stat()
    write_atomically(str(path), b"new")
    after = path.stat()
    assert path.read_text() == "new"
    assert after.st_mode & 0o777 == 0o600
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # a rename, never an in-place truncate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_new_file_mode_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    write_atomically(str(path), b"{}", mode=0o640)
    assert path.stat().st_mode & 0o777 == 0o640
    backup = write_atomically(str(path), b'{"a": 1}', backup_suffix=".bak")
    assert backup == str(path) + ".bak"
    assert Path(backup).read_text() == "{}"


def test_symlink_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomically(str(link), b"new")
    assert link.is_symlink()
    assert target.read_text() == "new"


@pytest.mark.parametrize(
    ("call", "error", "raised"),
    [
        ("fsync", OSError(28, "No space left on device"), ToolkitError),
        # not an OSError: raised as it is, never reported as success
        ("write", RuntimeError("interrupted mid-write"), RuntimeError),
    ],
)
def test_failure_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, error: Exception, raised: type
) -> None:
    path = tmp_path / "config.json"
    path.write_text("old")

    def broken(*args: object) -> None:
        raise error

    monkeypatch.setattr(posix, call, broken)
    with pytest.raises(raised, match=str(error.args[-1])):
        write_atomically(str(path), b"new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="not a regular file"):
        write_atomically(str(tmp_path), b"x")


@pytest.mark.parametrize("name", ["config.json", "./config.json", "sub/../config.json", "link.json"])
def test_relative_paths_as_a_bundle_in_the_working_directory_gives_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "config.json").write_text("old")
    (tmp_path / "link.json").symlink_to("config.json")
    monkeypatch.chdir(tmp_path)
    write_atomically(name, b"new")
    assert (tmp_path / "config.json").read_text() == "new"
    assert (tmp_path / "link.json").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "link.json", "sub"]


def test_a_new_file_is_0644_by_default(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    old_umask = os.umask(0o077)  # fchmod, not the umask, decides
    try:
        write_atomically(str(path), b"{}")
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_temporary_file_of_the_same_pid_is_replaced(tmp_path: Path) -> None:
    """Left by a crashed writer whose pid number this process now has."""
    path = tmp_path / "config.json"
    path.write_text("old")
    stale = tmp_path / f".config.json.{os.getpid()}.tmp"
    stale.write_text("half")
    write_atomically(str(path), b"new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = _dead_pid()
    path = tmp_path / "config.json"
    path.write_text("{}")
    (tmp_path / f".config.json.{dead}.tmp").write_text("half written by a killed shim")
    alive = tmp_path / f".config.json.{os.getppid()}.tmp"  # a live writer: not ours to remove
    alive.write_text("being written")
    other = tmp_path / ".other.json.1.tmp"
    other.write_text("not config.json's")
    remove_stale_temps(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.json", alive.name, other.name])
    remove_stale_temps(str(tmp_path / "missing-dir" / "config.json"))  # never raises


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("failure", "message"),
    [("open", "cannot write in"), ("rename", "cannot write: Permission denied"), ("fchmod", "cannot write")],
)
def test_error_branches_name_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, message: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text("old")
    real = getattr(posix, failure)

    def broken(*args: object, **kwargs: object) -> object:
        if failure == "open" and not str(args[0]).endswith(".tmp"):
            return real(*args, **kwargs)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(posix, failure, broken)
    with pytest.raises(ToolkitError) as caught:
        write_atomically(str(path), b"new")
    assert str(caught.value).startswith(f"{path}: {message}")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_an_unreadable_target_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_stat(path: str) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(posix, "stat", broken_stat)
    with pytest.raises(ToolkitError, match="cannot read: Permission denied"):
        write_atomically(str(tmp_path / "x.json"), b"{}")


def test_read_bytes_gives_content_none_for_a_missing_file_and_one_line_otherwise(tmp_path: Path) -> None:
    target = tmp_path / "f"
    assert read_bytes(str(target)) is None
    target.write_bytes(b"\x00abc\r\n")
    assert read_bytes(str(target)) == b"\x00abc\r\n"
    with pytest.raises(ToolkitError, match=rf"^{tmp_path}: cannot read: Is a directory$"):
        read_bytes(str(tmp_path))
