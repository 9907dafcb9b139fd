"""chts.base.file_trust and its users: files and directories others could write are refused, naming file and mode.

Tests run as root, so temp files are root-owned: refusals are made with chmod g+w / o+w
and with chown to another uid.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chts.base.file_trust import check_trusted_directory, read_trusted_file, trusted_owners
from chts.config.toolkit import load_config
from chts.errors import ToolkitError

OTHER_UID = 4242


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")


@pytest.fixture
def hook_file(tmp_path: Path) -> Path:
    path = tmp_path / "10-x.json"
    path.write_text("{}")
    path.chmod(0o644)
    return path


def refusal(path: Path, allow_any_owner: bool = False) -> str:
    with pytest.raises(ToolkitError) as caught:
        read_trusted_file(str(path), 1000, "hook file", allow_any_owner)
    return str(caught.value)


def test_a_file_of_ours_not_writable_by_others_is_read(hook_file: Path) -> None:
    assert os.stat(hook_file).st_uid in trusted_owners()
    assert read_trusted_file(str(hook_file), 1000, "hook file") == "{}"


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_trusted_file(str(tmp_path / "absent.json"), 1000, "hook file") is None


@pytest.mark.parametrize(
    ("mode", "who"), [(0o664, "group"), (0o646, "others"), (0o666, "group and others"), (0o777, "group and others")]
)
def test_group_or_other_writable_files_are_refused_naming_the_mode(hook_file: Path, mode: int, who: str) -> None:
    hook_file.chmod(mode)
    assert refusal(hook_file) == (
        f"{hook_file}: refusing hook file writable by {who} (mode {mode:04o}): "
        f"hooks run as root (chmod go-w {hook_file})"
    )


def test_the_insecure_switch_never_accepts_writable_files(hook_file: Path) -> None:
    hook_file.chmod(0o666)
    assert "writable by group and others (mode 0666)" in refusal(hook_file, allow_any_owner=True)


def test_a_file_owned_by_another_user_is_refused(hook_file: Path) -> None:
    needs_root()
    os.chown(hook_file, OTHER_UID, -1)
    message = refusal(hook_file)
    assert message.startswith(f"{hook_file}: refusing hook file owned by uid {OTHER_UID} (mode 0644)")
    assert "must be owned by root" in message


def test_the_insecure_switch_accepts_any_owner(hook_file: Path) -> None:
    needs_root()
    os.chown(hook_file, OTHER_UID, -1)
    assert read_trusted_file(str(hook_file), 1000, "hook file", allow_any_owner=True) == "{}"


def test_a_symlink_is_judged_by_the_file_it_reaches(tmp_path: Path, hook_file: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(hook_file)
    assert read_trusted_file(str(link), 1000, "hook file") == "{}"
    hook_file.chmod(0o666)
    assert f"{link}: refusing hook file writable by group and others" in refusal(link)


def test_dangling_symlinks_directories_and_fifos_are_errors(tmp_path: Path) -> None:
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere")
    assert "dangling symlink" in refusal(tmp_path / "dangling.json")
    (tmp_path / "dir.json").mkdir()
    assert "is a directory" in refusal(tmp_path / "dir.json")
    os.mkfifo(tmp_path / "fifo.json")
    assert "is not a regular file" in refusal(tmp_path / "fifo.json")


def test_size_limit_and_encoding(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text("x" * 1001)
    assert "larger than 1000 bytes" in refusal(big)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b"\xff")
    assert "not UTF-8" in refusal(latin)


def test_directories(tmp_path: Path) -> None:
    hooks_d = tmp_path / "hooks.d"
    assert check_trusted_directory(str(hooks_d), "hooks directory") is False  # missing: no hooks
    hooks_d.mkdir(mode=0o755)
    hooks_d.chmod(0o755)
    assert check_trusted_directory(str(hooks_d), "hooks directory") is True
    hooks_d.chmod(0o1777)  # sticky does not help: others may add a hook
    with pytest.raises(ToolkitError, match=r"refusing hooks directory writable by group and others \(mode 1777\)"):
        check_trusted_directory(str(hooks_d), "hooks directory")
    (tmp_path / "file").write_text("")
    with pytest.raises(ToolkitError, match="is not a directory"):
        check_trusted_directory(str(tmp_path / "file"), "hooks directory")


def test_config_toml_others_can_write_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[container-hooks-runtime]\nruntimes = ["/tmp/evil"]\n')
    config.chmod(0o644)
    assert load_config(str(config))["container-hooks-runtime"]["runtimes"] == ["/tmp/evil"]
    config.chmod(0o646)
    with pytest.raises(ToolkitError, match=r"config.toml: refusing toolkit config writable by others \(mode 0646\)"):
        load_config(str(config))


def test_config_toml_of_another_owner_is_refused_even_if_it_asks_for_leniency(tmp_path: Path) -> None:
    # The switch lives in the file it would vouch for: it cannot vouch for itself.
    needs_root()
    config = tmp_path / "config.toml"
    config.write_text("[container-hooks]\ninsecure-allow-non-root-files = true\n")
    os.chown(config, OTHER_UID, -1)
    with pytest.raises(ToolkitError, match=f"refusing toolkit config owned by uid {OTHER_UID}"):
        load_config(str(config))
