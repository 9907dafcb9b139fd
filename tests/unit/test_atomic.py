"""write_atomically: all or nothing, mode and owner kept, symlinks followed, backups on request."""

from __future__ import annotations

import errno
import os
import posix
import stat
from pathlib import Path
from typing import Any, List

import pytest

from chts.base.atomic import copy_atomically, read_bytes, remove_stale_temps, symlink_atomically, write_atomically
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


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path, bystander: Any) -> None:
    dead = _dead_pid()
    path = tmp_path / "config.json"
    path.write_text("{}")
    (tmp_path / f".config.json.{dead}.tmp").write_text("half written by a killed shim")
    alive = tmp_path / f".config.json.{bystander.pid}.tmp"  # a live writer: not ours to remove
    alive.write_text("being written")
    other = tmp_path / f".other.json.{dead}.tmp"
    other.write_text("not config.json's")
    remove_stale_temps(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.json", alive.name, other.name])
    assert bystander.poll() is None  # asked whether it lives, never signalled
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


# ----------------------------------------------------------------------------- edges mutation testing found


@pytest.mark.parametrize(("name", "directory"), [("config.json", "."), ("sub/config.json", "sub")])
def test_the_temporary_is_beside_the_file_for_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, directory: str
) -> None:
    """rename(2) is atomic only within one file system: the temporary never goes elsewhere (/)."""
    from chts.base import atomic

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    directories = []
    real = atomic.temp_name

    def recorded(directory: str, name: str, pid: int) -> str:
        directories.append(directory)
        return real(directory, name, pid)

    monkeypatch.setattr(atomic, "temp_name", recorded)
    write_atomically(name, b"new")
    assert directories == [directory]
    assert (tmp_path / name).read_bytes() == b"new"


def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = posix.write
    monkeypatch.setattr(posix, "write", lambda fd, data: real(fd, bytes(data[:3])))
    path = tmp_path / "config.json"
    write_atomically(str(path), b"0123456789")
    assert path.read_bytes() == b"0123456789"


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_closes_and_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """ENOSPC is one error naming the file; anything else (^C) is never reported as success."""
    path = tmp_path / "config.json"
    path.write_text("old")

    def broken(fd: int, data: object) -> int:
        raise error

    monkeypatch.setattr(posix, "write", broken)
    before = open_descriptors()
    with pytest.raises(ToolkitError if isinstance(error, OSError) else KeyboardInterrupt) as caught:
        write_atomically(str(path), b"new")
    if isinstance(error, OSError):
        assert str(caught.value) == f"{path}: cannot write: No space left on device"
    assert open_descriptors() == before
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_stale_temporaries_beside_a_bare_relative_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / f".config.json.{_dead_pid()}.tmp").write_text("half")
    remove_stale_temps("config.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_a_live_writer_is_only_asked_whether_it_lives(tmp_path: Path) -> None:
    """The liveness probe is signal 0: a running writer is neither signalled nor its file taken."""
    import subprocess
    import sys

    program = (
        "import signal, sys\n"
        "got = []\n"
        "signal.signal(signal.SIGHUP, lambda *a: got.append(1))\n"
        "signal.signal(signal.SIGTERM, lambda *a: got.append(1))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"  # a signal sent before stdin closes is handled before this returns
        "print(len(got))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        keep = [f".config.json.{child.pid}.tmp", ".config.json.99999999999999999999.tmp", ".config.json.x1.tmp"]
        for name in keep:
            (tmp_path / name).write_text("being written")
        remove_stale_temps(str(tmp_path / "config.json"))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
        out, _ = child.communicate("")
        assert (child.returncode, out) == (0, "0\n")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_copy_atomically_sets_the_mode_and_names_a_failure(tmp_path: Path) -> None:
    from chts.base.atomic import copy_atomically

    source = tmp_path / "source"
    source.write_bytes(b"\x7fELF binary")
    os.chmod(source, 0o600)
    copy_atomically(str(source), str(tmp_path / "installed"), 0o755)
    assert (tmp_path / "installed").read_bytes() == b"\x7fELF binary"
    assert (tmp_path / "installed").stat().st_mode & 0o777 == 0o755
    missing = tmp_path / "missing" / "installed"
    with pytest.raises(ToolkitError, match=f"^{missing}: cannot install: No such file or directory$"):
        copy_atomically(str(source), str(missing), 0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["installed", "source"]


def test_the_data_and_the_directory_entry_are_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash right after write_atomically (or copy_atomically) returns leaves the new file, not an empty one."""
    import stat

    from chts.base.atomic import copy_atomically

    real = posix.fsync
    synced = []

    def recorded(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other")
        real(fd)

    monkeypatch.setattr(posix, "fsync", recorded)
    monkeypatch.setattr(os, "fsync", recorded)
    write_atomically(str(tmp_path / "config.json"), b"{}")
    assert synced == ["file", "dir"]
    synced.clear()
    copy_atomically(str(tmp_path / "config.json"), str(tmp_path / "copy"), 0o644)
    assert synced == ["file", "dir"]


@pytest.mark.parametrize("stale", [False, True])
def test_the_temporary_is_private_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stale: bool
) -> None:
    """config.json holds the container's environment: no one else reads the new one before it is complete."""
    path = tmp_path / "config.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    if stale:  # the temporary name is taken by a crashed writer with our pid: it is created anew
        (tmp_path / f".config.json.{os.getpid()}.tmp").write_text("half")
        os.chmod(tmp_path / f".config.json.{os.getpid()}.tmp", 0o666)
    real = posix.write
    modes = []

    def recorded(fd: int, data: object) -> int:
        modes.append(os.fstat(fd).st_mode & 0o777)
        return real(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(posix, "write", recorded)
    write_atomically(str(path), b'{"env": ["TOKEN=secret"]}')
    assert modes == [0o600]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_rename_closes_only_its_own_descriptor_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_rename(source: str, destination: str) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))  # as a racing mount or a full disk would

    target = tmp_path / "config.json"
    before = sorted(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(posix, "rename", failing_rename)
    with pytest.raises(ToolkitError, match=f"^{target}: cannot write: Invalid cross-device link$"):
        write_atomically(str(target), b"{}", mode=0o600)
    monkeypatch.undo()
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert os.listdir(tmp_path) == []


def test_a_copy_that_cannot_be_installed_leaves_no_temp(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"program")
    destination = tmp_path / "bin"
    destination.mkdir()
    (destination / "inside").write_text("")
    with pytest.raises(ToolkitError, match=f"^{destination}: cannot install: "):
        copy_atomically(str(source), str(destination), 0o755)
    assert sorted(os.listdir(tmp_path)) == ["bin", "source"]
    copy_atomically(str(source), str(tmp_path / "tool"), 0o750)
    assert (tmp_path / "tool").read_bytes() == b"program" and (tmp_path / "tool").stat().st_mode & 0o777 == 0o750


def test_a_link_is_made_and_replaced_even_over_a_temp_a_killed_run_left(tmp_path: Path) -> None:
    link = tmp_path / "current"
    symlink_atomically(str(link), "v1")
    assert os.readlink(link) == "v1"
    (tmp_path / f".current.{os.getpid()}.tmp").symlink_to("stale")
    symlink_atomically(str(link), "v2")
    assert os.readlink(link) == "v2" and sorted(os.listdir(tmp_path)) == ["current"]
    with pytest.raises(ToolkitError, match=f"^{tmp_path}/nowhere/link: cannot link to v3: "):
        symlink_atomically(str(tmp_path / "nowhere" / "link"), "v3")


def test_mtime_durable_and_links_for_files_a_crash_may_lose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shim's own files (cache entries, the runtime record, the bundle's record): dated when asked,
    not synced, and a link at the path is replaced rather than written through."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"kept")
    link = tmp_path / "record"
    link.symlink_to(target)
    synced: List[int] = []
    real_fsync = posix.fsync

    def counted_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(posix, "fsync", counted_fsync)
    write_atomically(str(link), b"new", mode=0o600, durable=False, follow_symlinks=False, mtime_ns=1_000_000_000_123)
    assert synced == []
    assert not link.is_symlink() and link.read_bytes() == b"new" and target.read_bytes() == b"kept"
    assert link.stat().st_mtime_ns == 1_000_000_000_123 and stat.S_IMODE(link.stat().st_mode) == 0o600
    write_atomically(str(tmp_path / "durable"), b"x")
    assert len(synced) == 2  # the file, then its directory


def test_stale_temporaries_of_the_files_beside_are_removed_in_the_same_pass(tmp_path: Path, bystander: Any) -> None:
    """The shim cleans config.json's and its record's leftovers with one listing of the bundle."""
    dead = _dead_pid()
    path = tmp_path / "config.json"
    path.write_text("{}")
    stale = [f".config.json.{dead}.tmp", f".record.{dead}.tmp"]
    live = [f".record.{bystander.pid}.tmp", f".unrelated.{dead}.tmp"]
    for name in stale + live:
        (tmp_path / name).write_text("half")
    remove_stale_temps(str(path), str(tmp_path / "record"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.json", *live])
    assert bystander.poll() is None


def test_importing_it_costs_the_create_path_no_typing_module() -> None:
    """The shim writes every container's config.json through this module: its import stays builtins-cheap."""
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parent.parent.parent)
    program = f"import sys; sys.path.insert(0, {root!r}); import chts.base.atomic; print('typing' in sys.modules)"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, "False\n", "")
