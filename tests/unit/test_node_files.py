"""The node installer's files on a host root: the versioned .pyz behind stable links, ConfigMap sync, state, lock."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from chts.errors import ToolkitError
from chts.node.files import (
    DEFAULT_TOOLKIT_DIR,
    NodeLock,
    NodeState,
    archive_files,
    ctk_path,
    install_archive,
    make_directory,
    make_root_file,
    shim_path,
    sync_config,
)
from chts.node.host import HostRoot

HOOKS = json.dumps({"prestart": [{"path": "/bin/true"}]})
DROP_IN = json.dumps(
    {"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": True}, "stages": ["prestart"]}
)


def configmap(directory: Path, files: dict) -> Path:  # type: ignore[type-arg]
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text) if isinstance(text, str) else (directory / name).write_bytes(text)
    return directory


def test_archive_goes_behind_one_stable_link_and_a_second_install_changes_nothing(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build one")
    first = install_archive(host, "/opt/container-hooks", str(source))
    shim = tmp_path / "host/opt/container-hooks/bin/container-hooks-runtime"
    assert os.readlink(shim) == "../current.pyz"
    assert shim.read_bytes() == b"build one"
    assert len(first) == 5  # the build, current.pyz, three links
    assert install_archive(host, "/opt/container-hooks", str(source)) == []

    # an upgrade switches current.pyz only; the links the engine names never change
    for build in (b"build two", b"build three"):
        source.write_bytes(build)
        changes = install_archive(host, "/opt/container-hooks", str(source))
        assert shim.read_bytes() == build
        assert os.readlink(shim) == "../current.pyz"
        assert not any("linked" in line for line in changes)
    versions = sorted(os.listdir(tmp_path / "host/opt/container-hooks/versions"))
    assert len(versions) == 2  # the current build and the one before it


def test_a_foreign_file_at_a_link_is_refused(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    (tmp_path / "host/opt/container-hooks/bin").mkdir(parents=True)
    (tmp_path / "host/opt/container-hooks/bin/container-hooks-ctk").write_text("someone else's")
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build")
    with pytest.raises(ToolkitError, match="exists and is not a link of this installer"):
        install_archive(host, "/opt/container-hooks", str(source))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"config.toml": "[container-hooks\n"}, "config.toml: invalid TOML"),
        ({"config.toml": '[container-hooks]\npath = "/srv/hooks.json"\n'}, "path must be /etc/container-hooks/hooks"),
        ({"hooks.json": "[]"}, "hooks.json: must be a JSON object of stages"),
        ({"hooks.json": ""}, "hooks.json: empty file"),
        ({"10-audit.json": '{"version": "1.0.0"}'}, "10-audit.json: missing required key 'hook'"),
        ({"notes.txt": "hello"}, "notes.txt: unknown key: expected config.toml, hooks.json or an oci-hooks(5) *.json"),
        ({"big.json": "{" + " " * (1 << 20) + "}"}, "big.json: larger than"),
        ({"bin.json": b"\xff\xfe{}"}, "bin.json: not UTF-8"),
    ],
)
def test_a_bad_configmap_is_one_line_and_writes_nothing(tmp_path: Path, files: dict, message: str) -> None:  # type: ignore[type-arg]
    host = HostRoot(str(tmp_path / "host"))
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS, **files})
    with pytest.raises(ToolkitError) as error:
        sync_config(host, NodeState(host, "/opt/container-hooks"), str(source))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "host" / "etc").exists()


def test_sync_writes_backs_up_removes_and_gives_back(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    etc = tmp_path / "host/etc/container-hooks"
    etc.mkdir(parents=True)
    (etc / "hooks.json").write_text("{}\n")  # the admin's own, before the installer
    (etc / "hooks.json").chmod(0o666)
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS, "10-audit.json": DROP_IN, "..data": ""})
    state = NodeState(host, "/opt/container-hooks")
    assert sync_config(host, state, str(source)) == [
        "synced /etc/container-hooks/hooks.d/10-audit.json",
        "synced /etc/container-hooks/hooks.json",
    ]
    assert (etc / "hooks.json").read_text() == HOOKS
    assert (etc / "hooks.json").stat().st_mode & 0o777 == 0o644  # the shim refuses files others can write
    assert sync_config(host, NodeState(host, "/opt/container-hooks"), str(source)) == []

    (source / "10-audit.json").unlink()
    state = NodeState(host, "/opt/container-hooks")
    assert sync_config(host, state, str(source)) == ["removed /etc/container-hooks/hooks.d/10-audit.json"]
    assert state.give_back(host, "/etc/container-hooks/hooks.json") == (
        "restored /etc/container-hooks/hooks.json as it was before the installer"
    )
    assert (etc / "hooks.json").read_text() == "{}\n"
    assert (etc / "hooks.json").stat().st_mode & 0o7777 == 0o666  # its own mode back, not the synced file's


def test_broken_state_file_is_one_line(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    (tmp_path / "opt/container-hooks").mkdir(parents=True)
    (tmp_path / "opt/container-hooks/node-state.json").write_text("{")
    with pytest.raises(ToolkitError, match="node-state.json: invalid JSON: .*; move it away to start over"):
        NodeState(host, "/opt/container-hooks")


def test_one_installer_per_node(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    held = rf"container-hooks-node.lock: another node installer holds it \(pid {os.getpid()}"
    with NodeLock(host), pytest.raises(ToolkitError, match=held), NodeLock(host):
        pass
    with NodeLock(host):
        pass


def test_sync_and_install_through_the_hosts_absolute_links_stay_in_the_host_root(tmp_path: Path) -> None:
    """The host's /etc/container-hooks and /opt/container-hooks, links to absolute paths: followed as a chroot
    into the host root follows them; nothing is written at those paths outside it."""
    root = tmp_path / "host"
    elsewhere = f"/etc/container-hooks-elsewhere-{os.urandom(6).hex()}"
    toolkit = f"/opt/container-hooks-elsewhere-{os.urandom(6).hex()}"
    (root / "etc").mkdir(parents=True)
    (root / "opt").mkdir()
    (root / "etc/container-hooks").symlink_to(elsewhere)  # dangling here: its target is the host's
    (root / "opt/container-hooks").symlink_to(toolkit)
    host = HostRoot(str(root))
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build")
    install_archive(host, "/opt/container-hooks", str(source))
    state = NodeState(host, "/opt/container-hooks")
    sync_config(host, state, str(configmap(tmp_path / "cm", {"hooks.json": HOOKS, "10-audit.json": DROP_IN})))
    for outside in (elsewhere, toolkit):
        assert not os.path.lexists(outside)
    assert (root / elsewhere.lstrip("/") / "hooks.json").read_text() == HOOKS
    assert (root / elsewhere.lstrip("/") / "hooks.d/10-audit.json").read_text() == DROP_IN
    assert (root / toolkit.lstrip("/") / "bin/container-hooks-runtime").read_bytes() == b"build"
    assert (root / toolkit.lstrip("/") / "node-state.json").exists()
    # the directories it made are recorded where they are, so uninstall removes them and keeps the host's link
    assert sorted(state.created) == [elsewhere, f"{elsewhere}/hooks.d"]
    for host_path in list(state.managed):
        state.give_back(host, host_path)
    assert state.remove_created(host) == [f"removed {elsewhere}/hooks.d", f"removed {elsewhere}"]
    assert os.readlink(root / "etc/container-hooks") == elsewhere


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    etc = tmp_path / "host/etc/container-hooks"
    home = tmp_path / "host/opt/container-hooks"
    for directory in (etc / "hooks.d", home / "bin", home / "versions"):
        directory.mkdir(parents=True)
    left = [
        *(etc / ".hooks.json.4242.tmp", etc / "hooks.d/.10-audit.json.1.tmp", home / ".node-state.json.77.tmp"),
        *(home / ".current.pyz.12.tmp", home / "bin/.container-hooks-ctk.9.tmp", home / "versions/.a.pyz.3.tmp"),
    ]
    for path in left:
        path.write_text("half")
    (etc / ".hooks.json.notapid.tmp").write_text("not ours")
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build")
    install_archive(host, "/opt/container-hooks", str(source))
    sync_config(host, NodeState(host, "/opt/container-hooks"),
                str(configmap(tmp_path / "cm", {"hooks.json": HOOKS, "10-audit.json": DROP_IN})))  # fmt: skip
    assert [path for path in left if path.exists()] == []
    assert (etc / ".hooks.json.notapid.tmp").exists()


def test_a_directory_is_recorded_before_it_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed between making /etc/container-hooks and saving the state would leave it behind for good."""
    host = HostRoot(str(tmp_path / "host"))
    state = NodeState(host, "/opt/container-hooks")

    def killed(path: str) -> None:
        if path.endswith("/etc/container-hooks"):
            raise SystemExit("killed")
        make_directory(path)

    monkeypatch.setattr("chts.node.files.make_directory", killed)
    with pytest.raises(SystemExit):
        state.make_hook_directories(host)
    assert NodeState(host, "/opt/container-hooks").created == ["/etc/container-hooks"]


def test_uninstall_removes_the_lock_file_and_a_waiting_installer_locks_the_new_one(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    lock_file = tmp_path / "run/container-hooks-node.lock"
    with NodeLock(host) as lock:
        lock.remove()
    assert not lock_file.exists()
    first = NodeLock(host).__enter__()
    os.unlink(lock_file)  # as an uninstall holding it does, while this one would lock the old file
    with NodeLock(host) as second:
        assert second.is_the_file()
        os.unlink(lock_file)  # removed after the flock: no longer the lock every installer takes
        assert not second.is_the_file()
    first.__exit__()


def test_the_stable_paths_under_the_default_toolkit_directory() -> None:
    """What the engine's BinaryName and the installer's own calls name (docs: /opt/container-hooks/bin/...)."""
    assert shim_path(DEFAULT_TOOLKIT_DIR) == "/opt/container-hooks/bin/container-hooks-runtime"
    assert ctk_path(DEFAULT_TOOLKIT_DIR) == "/opt/container-hooks/bin/container-hooks-ctk"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[container-hooks]\npath = "/etc/container-hooks/hooks.json"\nhooks-dirs = ["/srv/hooks.d"]\n',
         "config.toml: [container-hooks] hooks-dirs must include /etc/container-hooks/hooks.d"),
        ('[container-hooks]\npath = "/etc/container-hooks/hooks.json"\ninsecure-allow-non-root-files = true\n',
         "config.toml: insecure-allow-non-root-files is for test roots, not nodes"),
    ],
)  # fmt: skip
def test_a_synced_config_must_read_the_synced_files_as_root_s(tmp_path: Path, config: str, message: str) -> None:
    host = HostRoot(str(tmp_path / "host"))
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS, "config.toml": config})
    with pytest.raises(ToolkitError) as error:
        sync_config(host, NodeState(host, "/opt/container-hooks"), str(source))
    assert str(error.value) == f"{source}/{message}"
    good = (
        '[container-hooks]\npath = "/etc/container-hooks/hooks.json"\nhooks-dirs = ["/etc/container-hooks/hooks.d"]\n'
    )
    (source / "config.toml").write_text(good)
    assert sync_config(host, NodeState(host, "/opt/container-hooks"), str(source)) == [
        "synced /etc/container-hooks/config.toml", "synced /etc/container-hooks/hooks.json",
    ]  # fmt: skip


def test_a_directory_in_the_configmap_is_one_line(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS})
    (source / "10-audit.json").mkdir()
    with pytest.raises(ToolkitError) as error:
        sync_config(host, NodeState(host, "/opt/container-hooks"), str(source))
    assert str(error.value) == f"{source}/10-audit.json: is a directory, expected a ConfigMap file"


def test_a_synced_file_already_there_becomes_roots_and_the_installers(tmp_path: Path) -> None:
    """A file with the synced content but another owner (a run killed between its write and the chown, or
    the admin's copy): made root's 0644, and the installer's, so it goes when its key goes."""
    host = HostRoot(str(tmp_path / "host"))
    etc = tmp_path / "host/etc/container-hooks"
    (etc / "hooks.d").mkdir(parents=True)
    (etc / "hooks.d/10-audit.json").write_text(DROP_IN)
    os.chown(etc / "hooks.d/10-audit.json", 1000, 1000)
    (etc / "hooks.d/10-audit.json").chmod(0o644)
    source = configmap(tmp_path / "cm", {"hooks.json": HOOKS, "10-audit.json": DROP_IN})
    assert sync_config(host, NodeState(host, "/opt/container-hooks"), str(source)) == [
        "synced /etc/container-hooks/hooks.json"
    ]
    status = (etc / "hooks.d/10-audit.json").stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (0, 0, 0o644)
    (source / "10-audit.json").unlink()
    assert sync_config(host, NodeState(host, "/opt/container-hooks"), str(source)) == [
        "removed /etc/container-hooks/hooks.d/10-audit.json"
    ]


def as_nobody(path: Path) -> str:
    """make_root_file(path) in a child process running as nobody: what it raised ("" for nothing)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest from here on
        raised = b""
        try:
            os.setgid(65534)
            os.setuid(65534)
            make_root_file(str(path))
        except BaseException as exc:
            raised = str(exc).encode()
        os.write(write_end, raised)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        said = reader.read().decode()
    os.waitpid(pid, 0)
    return said


def test_a_root_file_of_the_right_mode_is_left_alone_by_a_non_root_installer(tmp_path: Path) -> None:
    """Not root (a test root): a 0644 file of any owner is as good as it gets (chmod of a file it does not own
    would fail); any other mode is changed, or a one-line error."""
    directory = Path(tempfile.mkdtemp(prefix="chts-node-files-"))  # where nobody can reach it
    try:
        directory.chmod(0o755)
        path = directory / "hooks.json"
        path.write_text("{}")
        path.chmod(0o644)
        os.chown(path, 1000, 1000)  # neither root's nor this installer's own
        assert as_nobody(path) == ""
        path.chmod(0o666)
        assert as_nobody(path) == f"{path}: cannot set owner and mode: Operation not permitted"
    finally:
        shutil.rmtree(directory)


def test_uninstall_finds_everything_install_put_there(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    source = tmp_path / "a.pyz"
    source.write_bytes(b"build")
    install_archive(host, "/opt/container-hooks", str(source))
    home = tmp_path / "host/opt/container-hooks"
    (home / "bin/.container-hooks-ctk.9.tmp").write_text("half")
    (home / ".current.pyz.12.tmp").write_text("half")
    (home / "node-state.json").write_text("{}")  # NodeState's own, not the archive's
    (build,) = os.listdir(home / "versions")
    assert [(os.path.relpath(path, home), is_dir) for path, is_dir in archive_files(host, "/opt/container-hooks")] == [
        ("bin/container-hooks-runtime", False), ("bin/container-hooks-ctk", False), ("bin/container-hooks", False),
        ("current.pyz", False), (f"versions/{build}", False), ("bin/.container-hooks-ctk.9.tmp", False),
        (".current.pyz.12.tmp", False), ("bin", True), ("versions", True), (".", True),
    ]  # fmt: skip


def test_at_most_256_configmap_keys_are_synced(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    source = configmap(tmp_path / "cm", {f"{number:03}.json": "not checked" for number in range(257)})
    with pytest.raises(ToolkitError) as error:
        sync_config(host, NodeState(host, "/opt/container-hooks"), str(source))
    assert str(error.value) == f"{source}: 257 files; at most 256 are synced"


def test_the_build_is_executable_by_all_and_writable_by_root_only_and_foreign_files_stay(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    versions = tmp_path / "host/opt/container-hooks/versions"
    versions.mkdir(parents=True)
    (versions / "NOTES").write_text("an admin's")  # not a build: never pruned
    source = tmp_path / "a.pyz"
    for build in (b"one", b"two", b"three"):
        source.write_bytes(build)
        install_archive(host, "/opt/container-hooks", str(source))
    builds = sorted(os.listdir(versions))
    assert len(builds) == 3 and "NOTES" in builds
    assert all((versions / name).stat().st_mode & 0o7777 == 0o755 for name in builds if name != "NOTES")


def test_a_backup_is_kept_under_the_toolkit_directory(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    etc = tmp_path / "host/etc/container-hooks"
    etc.mkdir(parents=True)
    (etc / "hooks.json").write_text("{}\n")
    state = NodeState(host, "/opt/container-hooks")
    sync_config(host, state, str(configmap(tmp_path / "cm", {"hooks.json": HOOKS})))
    backup = tmp_path / "host/opt/container-hooks/backup/etc/container-hooks/hooks.json"
    assert state.backups == {"/etc/container-hooks/hooks.json": str(backup)}
    assert backup.read_text() == "{}\n" and backup.stat().st_mode & 0o777 == 0o600
    saved = json.loads((tmp_path / "host/opt/container-hooks/node-state.json").read_text())
    assert list(saved) == sorted(saved)  # written the same way every time: a diff shows what changed


def test_a_directory_the_installer_made_is_kept_when_something_else_is_in_it(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path / "host"))
    state = NodeState(host, "/opt/container-hooks")
    state.make_hook_directories(host)
    for name in ("b.log", "a.log", "d.log", "c.log"):
        (tmp_path / "host/etc/container-hooks" / name).write_text("")
    assert state.remove_created(host) == [
        "removed /etc/container-hooks/hooks.d",
        "kept /etc/container-hooks: not empty (a.log, b.log, c.log)",
    ]
    assert (tmp_path / "host/etc/container-hooks/d.log").exists()


def test_a_lock_holder_that_wrote_no_pid_is_unknown(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run/container-hooks-node.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ToolkitError, match=r"another node installer holds it \(pid unknown on the host\)$"):
            NodeLock(host).__enter__()


def test_a_backup_never_lands_outside_the_backup_directory(tmp_path: Path) -> None:
    """A host path climbing out with .. is refused in one line, and nothing is written above the root."""
    host = HostRoot(str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    state = NodeState(host, "/opt/container-hooks")
    with pytest.raises(ToolkitError, match=r"^/\.\./\.\./\.\./\.\./escaped: its backup would land outside "):
        state.back_up(host, "/../../../../escaped", b"data")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "root" / "escaped").exists()
    # A sibling whose name only starts like the backup directory's is outside it too.
    with pytest.raises(ToolkitError, match=r"^/\.\./backup-2/x: its backup would land outside "):
        state.back_up(host, "/../backup-2/x", b"data")
    assert not (tmp_path / "root" / "opt" / "container-hooks" / "backup-2").exists()
    assert state.backups == {}
