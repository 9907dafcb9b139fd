"""write_atomically: all or nothing, mode and owner kept, symlinks followed, backups on request."""

from __future__ import annotations

import os
import posix
from pathlib import Path

import pytest

from chts.atomic import write_atomically
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


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    path.write_text("old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(posix, "fsync", broken_fsync)
    with pytest.raises(ToolkitError, match="No space left"):
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
