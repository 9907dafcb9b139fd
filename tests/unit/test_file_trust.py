"""chts.base.file_trust and its users: files and directories others could write are refused, naming file and mode.

Tests run as root, so temp files are root-owned: refusals are made with chmod g+w / o+w
and with chown to another uid.
"""

from __future__ import annotations

import errno
import os
import posix
import socket
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from chts.base import file_trust
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


# Run as another user (not root), the shim trusts root's files and its own, and no one else's.
NOT_ROOT = 1000


def test_a_shim_not_running_as_root_trusts_root_and_itself_only(
    hook_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_root()
    monkeypatch.setattr(posix, "geteuid", lambda: NOT_ROOT)
    assert trusted_owners() == (0, NOT_ROOT)
    assert read_trusted_file(str(hook_file), 1000, "hook file") == "{}"  # root's
    os.chown(hook_file, NOT_ROOT, -1)
    assert read_trusted_file(str(hook_file), 1000, "hook file") == "{}"  # ours
    os.chown(hook_file, OTHER_UID, -1)
    assert refusal(hook_file) == (
        f"{hook_file}: refusing hook file owned by uid {OTHER_UID} (mode 0644): hooks run as root, "
        f"so it must be owned by root or uid {NOT_ROOT} (chown root {hook_file})"
    )


def test_as_root_only_root_is_trusted_and_named(hook_file: Path) -> None:
    needs_root()
    assert trusted_owners() == (0,)
    os.chown(hook_file, OTHER_UID, -1)
    assert refusal(hook_file) == (
        f"{hook_file}: refusing hook file owned by uid {OTHER_UID} (mode 0644): hooks run as root, "
        f"so it must be owned by root (chown root {hook_file})"
    )


def test_without_the_switch_the_owner_is_checked(tmp_path: Path, hook_file: Path) -> None:
    # The switch is off unless asked for, in each entry point.
    needs_root()
    os.chown(hook_file, OTHER_UID, -1)
    with pytest.raises(ToolkitError, match=f"owned by uid {OTHER_UID}"):
        file_trust.check_owner_and_mode(str(hook_file), os.stat(hook_file), "hook file")
    hooks_d = tmp_path / "hooks.d"
    hooks_d.mkdir()
    hooks_d.chmod(0o755)
    os.chown(hooks_d, OTHER_UID, -1)
    with pytest.raises(ToolkitError, match=f"refusing hooks directory owned by uid {OTHER_UID}"):
        check_trusted_directory(str(hooks_d), "hooks directory")
    assert check_trusted_directory(str(hooks_d), "hooks directory", allow_any_owner=True) is True


def test_a_hooks_directory_that_cannot_be_looked_at_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ToolkitError, match=r"file/hooks.d: cannot read hooks directory: Not a directory"):
        check_trusted_directory(str(tmp_path / "file" / "hooks.d"), "hooks directory")


def test_a_hook_file_that_cannot_be_opened_is_an_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    assert refusal(loop) == f"{loop}: cannot read hook file: Too many levels of symbolic links"


def test_a_read_error_is_one_line_naming_the_file(hook_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_read(fd: int, size: int) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(posix, "read", failing_read)
    assert refusal(hook_file) == f"{hook_file}: cannot read hook file: Input/output error"


def test_reading_leaves_no_descriptor_open(hook_file: Path, tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        read_trusted_file(str(hook_file), 1000, "hook file")
        with pytest.raises(ToolkitError):
            read_trusted_file(str(tmp_path), 1000, "hook file")  # a directory: refused after opening
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_size_limit_is_inclusive(tmp_path: Path) -> None:
    exact = tmp_path / "exact.json"
    exact.write_text("x" * 1000)
    assert read_trusted_file(str(exact), 1000, "hook file") == "x" * 1000


def test_read_up_to_gathers_short_reads_and_stops_at_the_size() -> None:
    # A regular file is read in one go; a packet socket returns one packet per read.
    one, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with one, other:
        for packet in (b"ab", b"c", b"d"):
            other.send(packet)
        other.close()
        assert file_trust.read_up_to(one.fileno(), 3) == b"abc"
        assert file_trust.read_up_to(one.fileno(), 5) == b"d"


def test_importing_it_loads_neither_os_nor_typing() -> None:
    # The shim imports it on a cache miss: the hot-path tiers (README) keep os and typing out.
    code = "import sys, chts.base.file_trust; print(sorted({'os', 'typing'} & set(sys.modules)))"
    root = Path(__file__).resolve().parent.parent.parent
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": os.environ.get("PATH", "")},
    ).stdout
    assert out.strip() == "[]"


# check_trusted_executable: each directory from / down to the hook, as written and as resolved.


@pytest.fixture
def hook_tree(tmp_path: Path) -> Path:
    """tmp_path/bin/hook, root-owned, 0755 all the way."""
    (tmp_path / "bin").mkdir()
    hook = tmp_path / "bin" / "hook"
    hook.write_text("#!/bin/sh\n")
    for path in (tmp_path / "bin", hook):
        path.chmod(0o755)
    return tmp_path


def looked_at(path: str, allow_any_owner: bool = False) -> List[str]:
    seen: List[str] = []
    file_trust.check_trusted_executable(path, allow_any_owner, seen.append)
    return seen


def prefixes(path: Path) -> List[str]:
    parts = str(path).split("/")[1:]
    return ["/" + "/".join(parts[:depth]) for depth in range(len(parts) + 1)]


def executable_refusal(path: Path, allow_any_owner: bool = False) -> str:
    with pytest.raises(ToolkitError) as caught:
        looked_at(str(path), allow_any_owner)
    return str(caught.value)


def test_a_trusted_hook_executable_is_accepted_each_directory_from_the_root_seen(hook_tree: Path) -> None:
    hook = hook_tree / "bin" / "hook"
    assert looked_at(str(hook)) == prefixes(hook)
    assert prefixes(hook)[:2] == ["/", "/" + str(hook).split("/")[1]]


def test_a_missing_hook_executable_is_left_to_runc_after_its_first_missing_directory(hook_tree: Path) -> None:
    missing = hook_tree / "gone" / "deeper" / "hook"
    assert looked_at(str(missing)) == prefixes(hook_tree / "gone")


def test_a_path_that_cannot_be_resolved_is_checked_as_written() -> None:
    assert looked_at("/tmp/a\0b") == ["/", "/tmp", "/tmp/a\0b"]


def test_a_writable_hook_executable_or_directory_above_it_is_refused_by_name(hook_tree: Path) -> None:
    hook = hook_tree / "bin" / "hook"
    hook.chmod(0o775)
    assert executable_refusal(hook) == (
        f"{hook}: refusing hook executable writable by group (mode 0775): hooks run as root (chmod go-w {hook})"
    )
    hook.chmod(0o755)
    (hook_tree / "bin").chmod(0o757)
    assert executable_refusal(hook) == (
        f"{hook_tree}/bin: refusing directory above a hook executable writable by others (mode 0757): "
        f"hooks run as root (chmod go-w {hook_tree}/bin)"
    )


def test_a_hook_executable_of_another_owner_is_refused_unless_the_switch_is_on(hook_tree: Path) -> None:
    needs_root()
    hook = hook_tree / "bin" / "hook"
    os.chown(hook, OTHER_UID, -1)
    assert f"{hook}: refusing hook executable owned by uid {OTHER_UID}" in executable_refusal(hook)
    assert looked_at(str(hook), allow_any_owner=True) == prefixes(hook)


def test_a_hook_reached_through_a_link_is_judged_by_the_link_s_directory_and_target(hook_tree: Path) -> None:
    # A link's own mode (always 0777) means nothing; what it leads to is checked, and named.
    link = hook_tree / "link"
    link.symlink_to(hook_tree / "bin")
    hook = link / "hook"
    assert looked_at(str(hook)) == [*prefixes(hook), *prefixes(hook_tree / "bin" / "hook")]
    (hook_tree / "bin").chmod(0o775)
    assert executable_refusal(hook).startswith(
        f"{hook_tree}/bin: refusing directory above a hook executable writable by group (mode 0775)"
    )
    (hook_tree / "bin").chmod(0o755)
    (hook_tree / "bin" / "hook").chmod(0o757)
    assert executable_refusal(hook).startswith(f"{hook}: refusing hook executable writable by others")


def test_a_hook_executable_that_is_a_link_is_judged_by_its_target(hook_tree: Path) -> None:
    link = hook_tree / "bin" / "latest"
    link.symlink_to("hook")
    assert looked_at(str(link)) == [*prefixes(link), *prefixes(hook_tree / "bin" / "hook")]
    (hook_tree / "bin" / "hook").chmod(0o775)
    assert executable_refusal(link).startswith(f"{hook_tree}/bin/hook: refusing hook executable writable by group")


def test_a_root_sticky_directory_may_be_writable_by_all(hook_tree: Path) -> None:
    # As /tmp: only an entry's owner may replace it, and the entry's owner is checked.
    (hook_tree / "bin").chmod(0o1777)
    hook = hook_tree / "bin" / "hook"
    assert looked_at(str(hook)) == prefixes(hook)


def test_a_sticky_directory_of_another_owner_is_refused(hook_tree: Path) -> None:
    needs_root()
    (hook_tree / "bin").chmod(0o1777)
    os.chown(hook_tree / "bin", OTHER_UID, -1)
    assert executable_refusal(hook_tree / "bin" / "hook").startswith(
        f"{hook_tree}/bin: refusing directory above a hook executable owned by uid {OTHER_UID} (mode 1777)"
    )


def test_a_writable_directory_without_the_sticky_bit_is_refused(hook_tree: Path) -> None:
    (hook_tree / "bin").chmod(0o777)
    assert executable_refusal(hook_tree / "bin" / "hook").startswith(
        f"{hook_tree}/bin: refusing directory above a hook executable writable by group and others (mode 0777)"
    )


def test_the_sticky_bit_on_a_hook_executable_does_not_excuse_it(hook_tree: Path) -> None:
    hook = hook_tree / "bin" / "hook"
    hook.chmod(0o1777)
    assert executable_refusal(hook).startswith(f"{hook}: refusing hook executable writable by group and others")
