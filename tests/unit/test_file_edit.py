"""Writing planned edits, and taking a change back whole: files, the backups writing made, new directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from chts.base.file_edit import BACKUP_SUFFIX, EditWriter, FileEdit, apply_edit, missing_directories
from chts.errors import ToolkitError


def tree(root: Path) -> Dict[str, str]:
    """Every file's text and every directory ("/") under ``root``."""
    return {str(path.relative_to(root)): path.read_text() if path.is_file() else "/" for path in root.rglob("*")}


def test_missing_directories_are_the_deepest_first(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "file"
    assert missing_directories(str(path)) == [str(tmp_path / "a/b/c"), str(tmp_path / "a/b"), str(tmp_path / "a")]
    assert missing_directories(str(tmp_path / "file")) == []


def test_a_new_file_in_new_directories_is_taken_back_with_them(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "other").write_text("stays")
    before = tree(tmp_path)
    edit = FileEdit(str(tmp_path / "a/b/c/new.toml"), None, b"new\n")
    writer = EditWriter([edit])
    writer.write(edit)
    assert (tmp_path / "a/b/c/new.toml").read_text() == "new\n"
    assert writer.reports == [f"wrote {edit.path}"]  # nothing was there to back up
    assert (tmp_path / "a/b/c/new.toml").stat().st_mode & 0o777 == 0o644
    writer.take_back()
    assert tree(tmp_path) == before  # b and c made for it are gone, a (with a file of its own) stays


def test_an_edited_file_keeps_a_backup_and_taking_back_restores_the_backup_as_it_was(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("old\n")
    backup = tmp_path / ("config.toml" + BACKUP_SUFFIX)
    backup.write_text("an older backup\n")
    before = tree(tmp_path)
    edit = FileEdit(str(config), b"old\n", b"new\n")
    writer = EditWriter([edit])
    writer.write(edit)
    assert writer.reports == [f"wrote {config} (previous content in {backup})"]
    assert (config.read_text(), backup.read_text()) == ("new\n", "old\n")
    writer.take_back()
    assert tree(tmp_path) == before


def test_a_backup_writing_made_goes_when_the_change_is_taken_back(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("old\n")
    edit = FileEdit(str(config), b"old\n", b"new\n")
    writer = EditWriter([edit])
    writer.write(edit)
    assert (tmp_path / ("config.toml" + BACKUP_SUFFIX)).read_text() == "old\n"
    writer.take_back()
    assert tree(tmp_path) == {"config.toml": "old\n"}


@pytest.mark.parametrize(
    ("keep_backups", "backup"), [(False, True), (True, False)], ids=["writer-keeps-none", "edit-asks-none"]
)
def test_no_backup_unless_both_writer_and_edit_ask_for_it(tmp_path: Path, keep_backups: bool, backup: bool) -> None:
    config = tmp_path / "config.toml"
    config.write_text("old\n")
    edit = FileEdit(str(config), b"old\n", b"new\n", backup=backup)
    writer = EditWriter([edit], keep_backups=keep_backups)
    writer.write(edit)
    assert writer.reports == [f"wrote {config}"]
    assert tree(tmp_path) == {"config.toml": "new\n"}
    writer.take_back()
    assert tree(tmp_path) == {"config.toml": "old\n"}


def test_edits_are_taken_back_newest_first(tmp_path: Path) -> None:
    """Two edits of one file (old -> mid -> new): undone in the other order, the file is old again."""
    config = tmp_path / "config.toml"
    config.write_text("old\n")
    first, second = FileEdit(str(config), b"old\n", b"mid\n"), FileEdit(str(config), b"mid\n", b"new\n")
    writer = EditWriter([first, second], keep_backups=False)
    writer.write(first)
    writer.write(second)
    writer.take_back()
    assert config.read_text() == "old\n"


def test_only_what_was_written_is_taken_back(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("1\n")
    two.write_text("2\n")
    edits = [FileEdit(str(one), b"1\n", b"one\n"), FileEdit(str(two), b"stale\n", b"two\n")]
    writer = EditWriter(edits, keep_backups=False)
    writer.write(edits[0])  # the second was never written: its file is not the plan's `old` to put back
    writer.take_back()
    assert tree(tmp_path) == {"one": "1\n", "two": "2\n"}


def test_a_removal_takes_its_directory_when_asked_and_empty(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    drop_in = tmp_path / "conf.d" / "99-ours.toml"
    drop_in.write_text("ours\n")
    edit = FileEdit(str(drop_in), b"ours\n", None, backup=False, remove_directory=True)
    writer = EditWriter([edit])
    writer.write(edit)
    assert writer.reports == [f"removed {drop_in}"] and tree(tmp_path) == {}
    writer.take_back()
    assert tree(tmp_path) == {"conf.d": "/", "conf.d/99-ours.toml": "ours\n"}


def test_a_removal_leaves_a_directory_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-theirs.toml").write_text("theirs\n")
    drop_in = tmp_path / "conf.d" / "99-ours.toml"
    drop_in.write_text("ours\n")
    apply_edit(FileEdit(str(drop_in), b"ours\n", None, remove_directory=True))
    assert tree(tmp_path) == {"conf.d": "/", "conf.d/10-theirs.toml": "theirs\n"}


def test_an_edit_keeps_a_backup_unless_told_not_to(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("old\n")
    assert apply_edit(FileEdit(str(config), b"old\n", b"new\n")).endswith(
        f" (previous content in {config}{BACKUP_SUFFIX})"
    )
    assert apply_edit(FileEdit(str(config), b"new\n", b"newer\n"), keep_backup=False) == f"wrote {config}"
    assert tree(tmp_path) == {"config.toml": "newer\n", f"config.toml{BACKUP_SUFFIX}": "old\n"}


def test_directories_made_for_a_new_file_are_0755(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        apply_edit(FileEdit(str(tmp_path / "a/b/new"), None, b"x"))
    finally:
        os.umask(umask)
    assert [os.stat(d).st_mode & 0o777 for d in (tmp_path / "a", tmp_path / "a/b")] == [0o755, 0o755]


def test_removing_a_file_already_gone_is_no_error(tmp_path: Path) -> None:
    assert apply_edit(FileEdit(str(tmp_path / "gone"), b"x", None)) == f"removed {tmp_path / 'gone'}"


def test_a_file_that_cannot_be_removed_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()  # unlink of a directory: EISDIR (Linux)
    with pytest.raises(ToolkitError, match=rf"^{tmp_path}/dir: cannot remove: Is a directory$"):
        apply_edit(FileEdit(str(tmp_path / "dir"), b"x", None))
    assert (tmp_path / "dir").is_dir()


def test_a_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ToolkitError, match=rf"^{tmp_path}/file/sub: cannot create: Not a directory$"):
        apply_edit(FileEdit(str(tmp_path / "file/sub/new"), None, b"x"))
    assert tree(tmp_path) == {"file": ""}


def test_the_mode_asked_for_is_the_new_file_s(tmp_path: Path) -> None:
    apply_edit(FileEdit(str(tmp_path / "private"), None, b"x", mode=0o600))
    assert os.stat(tmp_path / "private").st_mode & 0o777 == 0o600
