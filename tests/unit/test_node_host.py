"""What the node installer reads of a host root: its python3, its engine layout, its service manager; refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ctk_cli import run_ctk
from host_programs import program_host, script

from chts import __version__
from chts.errors import ToolkitError
from chts.node.host import (
    HostRoot,
    archive_interpreter,
    check_python,
    choose_layout,
    detect_layouts,
    has_systemd,
    python_version_of,
    resolve_in_root,
    unit_of,
)


def fake_host(root: Path, os_id: str = "debian", python: str = "python3.11") -> HostRoot:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(f'ID={os_id}\nPRETTY_NAME="{os_id} node"\n')
    if python:
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / python).write_text("")
        if python != "python3":
            (root / "usr" / "bin" / "python3").symlink_to(python)
    return HostRoot(str(root))


def test_python_version_from_the_hosts_link(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    assert python_version_of(host, "/usr/bin/python3") == (3, 11)
    assert check_python(host) == "/usr/bin/python3 is Python 3.11 (debian node)"


def test_python_version_from_its_standard_library_when_python3_is_the_file(tmp_path: Path) -> None:
    host = fake_host(tmp_path, python="python3")
    (tmp_path / "usr" / "lib" / "python3.9").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "python3.9" / "os.py").write_text("")
    assert python_version_of(host, "/usr/bin/python3") == (3, 9)


def test_links_resolve_inside_the_host_root_not_here(tmp_path: Path) -> None:
    """An absolute link on the host (/usr/bin/python3 -> /usr/local/bin/python3.12) means the host's path."""
    host = fake_host(tmp_path, python="")
    (tmp_path / "usr" / "local" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "local" / "bin" / "python3.12").write_text("")
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "python3").symlink_to("/usr/local/bin/python3.12")
    assert python_version_of(host, "/usr/bin/python3") == (3, 12)


@pytest.mark.parametrize(
    ("os_id", "named"),
    [("flatcar", "Flatcar Container Linux ships no Python"), ("bottlerocket", "Bottlerocket ships no Python"),
     ("talos", "Talos Linux ships no Python"), ("debian", "no /usr/bin/python3")],
)  # fmt: skip
def test_hosts_without_python_are_refused_in_one_line(tmp_path: Path, os_id: str, named: str) -> None:
    host = fake_host(tmp_path, os_id=os_id, python="")
    with pytest.raises(ToolkitError) as error:
        check_python(host)
    message = str(error.value)
    assert named in message and "3.8 or later" in message and "\n" not in message


def test_old_python_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="Python 3.6 is too old"):
        check_python(fake_host(tmp_path, python="python3.6"))


def test_layouts(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "etc" / "containerd").mkdir()
    assert choose_layout(host, "auto").layout == "plain"
    (tmp_path / "etc" / "containerd" / "conf.d").mkdir()
    assert choose_layout(host, "auto").layout == "plain"  # a directory nothing imports is not read
    config = tmp_path / "etc" / "containerd" / "config.toml"
    config.write_text('version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n')
    assert choose_layout(host, "auto").layout == "drop-in directory"
    k3s = tmp_path / "var/lib/rancher/k3s/agent/etc/containerd"
    k3s.mkdir(parents=True)
    (found,) = detect_layouts(host)  # k3s's own containerd wins over a packaged one beside it
    assert (found.layout, found.socket, found.ctr) == ("k3s", "/run/k3s/containerd/containerd.sock", ("k3s", "ctr"))


def test_no_engine_and_two_engines_are_one_line_each(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    with pytest.raises(ToolkitError, match="no containerd or CRI-O found on the host"):
        choose_layout(host, "auto")
    (tmp_path / "etc" / "containerd").mkdir()
    (tmp_path / "etc" / "crio").mkdir()
    with pytest.raises(ToolkitError, match="both containerd and crio are on this host: choose one with --engine"):
        choose_layout(host, "auto")
    crio = choose_layout(host, "crio")
    assert (crio.engine, crio.config, crio.socket) == ("crio", "/etc/crio/crio.conf", "/run/crio/crio.sock")
    assert unit_of(host, crio) == "crio"


def test_systemd_is_seen_by_its_run_directory(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    assert not has_systemd(host)
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    assert has_systemd(host)


def test_preflight_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_host(tmp_path)
    (tmp_path / "etc" / "containerd").mkdir()
    status, out, err = run_ctk(capsys, "node", "preflight", "--host-root", str(tmp_path), "--restart-mode", "none")
    assert status == 0, err
    assert out.splitlines() == [
        "/usr/bin/python3 is Python 3.11 (debian node)",
        "engine: containerd, layout: plain, config: /etc/containerd/config.toml",
        "service manager: none found (unit containerd)",
        # no containerd in this host root to print its config: NRI mode's line says so, shim mode goes on
        "NRI mode: cannot tell: containerd config dump: cannot run `containerd --config /etc/containerd/config.toml "
        f"config dump` in {tmp_path}: No such file or directory",
        "restart mode: none",
    ]
    status, out, err = run_ctk(capsys, "node", "preflight", "--host-root", str(tmp_path), "--mode", "nri")
    assert (status, out.splitlines()[-1:], err) == (1, ["service manager: none found (unit containerd)"],
        f"container-hooks-ctk: containerd config dump: cannot run `containerd --config /etc/containerd/config.toml "
        f"config dump` in {tmp_path}: No such file or directory\n")  # fmt: skip
    for action in ("preflight", "install"):
        status, out, err = run_ctk(capsys, "node", action, "--host-root", str(tmp_path), "--mode", "crio")
        assert (status, out, err) == (2, "", f"container-hooks-ctk: node {action}: --mode must be shim or nri, "
                                             "not 'crio'\n")  # fmt: skip
    status, out, err = run_ctk(capsys, "node", "preflight", "--host-root", str(tmp_path))
    assert status == 1
    assert err.count("\n") == 1 and "does not run systemd" in err and "--restart-mode none" in err
    status, out, err = run_ctk(capsys, "node", "install", "--host-root", str(tmp_path / "nope"))
    assert (status, err) == (1, f"container-hooks-ctk: {tmp_path}/nope: --host-root is not a directory "
                                "(mount the node's / there)\n")  # fmt: skip
    status, out, err = run_ctk(capsys, "node", "install", "--host-root", str(tmp_path), "--restart-mode", "signal")
    assert status == 1 and "containerd exits on SIGHUP" in err


def test_ready_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_host(tmp_path / "host")
    ready = tmp_path / "ready"
    options = ["--host-root", str(tmp_path / "host"), "--ready-file", str(ready)]
    status, _, err = run_ctk(capsys, "node", "ready", *options)
    assert (status, err) == (1, f"{ready}: not verified yet\n")
    ready.write_text(f"{__version__} /opt/container-hooks/bin/container-hooks-runtime\n")
    status, _, err = run_ctk(capsys, "node", "ready", *options)
    assert status == 1 and "stale" in err  # the host's shim is gone
    shim = tmp_path / "host/opt/container-hooks/bin/container-hooks-runtime"
    shim.parent.mkdir(parents=True)
    shim.write_text("")
    assert run_ctk(capsys, "node", "ready", *options)[0] == 0
    ready.write_text("0.0.1 /opt/container-hooks/bin/container-hooks-runtime\n")  # an older installer's verdict
    assert run_ctk(capsys, "node", "ready", *options)[0] == 1


def test_a_file_where_the_toolkit_directory_goes_is_one_line(tmp_path: Path, pyz: Path) -> None:
    fake_host(tmp_path)
    (tmp_path / "etc" / "containerd").mkdir()
    (tmp_path / "opt").write_text("not a directory")
    argv = [str(pyz), "ctk", "node", "install", "--host-root", str(tmp_path), "--restart-mode", "none"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr == f"container-hooks-ctk: {tmp_path}/opt/container-hooks: cannot create: Not a directory\n"


def test_outside_the_pyz_install_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_host(tmp_path)
    (tmp_path / "etc" / "containerd").mkdir()
    status, _, err = run_ctk(capsys, "node", "install", "--host-root", str(tmp_path), "--restart-mode", "none")
    assert (status, err) == (1, "container-hooks-ctk: node install copies the .pyz it runs from: "
                                "run it as container-hooks-toolkit.pyz\n")  # fmt: skip


def test_the_archives_interpreter_is_read_from_its_sh_start(tmp_path: Path) -> None:
    """What preflight checks the node for: the Python the archive's sh start execs (build.py --python)."""
    import build

    archive = tmp_path / "container-hooks-toolkit.pyz"
    archive.write_text(build.start_program("/opt/python/bin/python3.12", "0123456789abcdef", 9000, 5000))
    assert archive_interpreter(str(archive)) == "/opt/python/bin/python3.12"
    archive.write_text("#!/bin/sh\nexit 0\n")
    assert archive_interpreter(str(archive)) == "/usr/bin/python3"
    assert archive_interpreter(str(tmp_path / "missing")) == "/usr/bin/python3"
    assert archive_interpreter(None) == "/usr/bin/python3"


def test_host_paths_resolve_inside_the_host_root_as_a_chroot_would(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc/real").mkdir(parents=True)
    (root / "etc/absolute").symlink_to("/etc/real")
    (root / "etc/climbing").symlink_to("../../../../../../etc/real")
    (root / "etc/chain").symlink_to("absolute/../absolute")
    (root / "etc/dangling").symlink_to("/srv/not-yet")
    (root / "etc/file-link").symlink_to("/etc/real/file")
    host = HostRoot(str(root))
    for link in ("absolute", "climbing", "chain"):
        assert host.path(f"/etc/{link}/hooks.json") == str(root / "etc/real/hooks.json")
    assert host.path("/../../etc/../../etc/real") == str(root / "etc/real")
    assert host.path("/etc/dangling/x") == str(root / "srv/not-yet/x")  # made there, as the host would
    assert host.path("/etc/file-link") == str(root / "etc/real/file")
    assert host.path("/etc/file-link", follow_last=False) == str(root / "etc/file-link")
    assert host.path("/") == str(root)
    assert host.resolve("/etc/absolute") == "/etc/real"
    assert host.resolve("/etc/dangling") is None


def test_a_link_loop_in_the_host_root_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    (root / "etc/a").symlink_to("/etc/b")
    (root / "etc/b").symlink_to("a")
    with pytest.raises(ToolkitError) as error:
        HostRoot(str(root)).path("/etc/a/config.toml")
    loop = f"{root}/etc/a/config.toml: more than 40 symbolic links on the way (a loop?) in the host root {root}"
    assert str(error.value) == loop


def test_python_3_8_is_the_oldest_taken(tmp_path: Path) -> None:
    assert check_python(fake_host(tmp_path / "a", python="python3.8")) == "/usr/bin/python3 is Python 3.8 (debian node)"
    with pytest.raises(ToolkitError, match="Python 3.7 is too old: the shim needs 3.8 or later"):
        check_python(fake_host(tmp_path / "b", python="python3.7"))


def test_os_release_in_usr_lib_when_etc_has_none(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "etc/os-release").unlink()
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text(
        '# a comment\nID=flatcar\nPRETTY_NAME="Flatcar Container Linux 3975"\n'
    )
    assert check_python(host) == "/usr/bin/python3 is Python 3.11 (Flatcar Container Linux 3975)"


def test_forty_links_are_followed_and_the_forty_first_is_a_loop(tmp_path: Path) -> None:
    """The kernel's limit (MAX_SYMLINKS): as many as a chroot into the host root would follow."""
    root = tmp_path / "host"
    (root / "etc/real").mkdir(parents=True)
    for number in range(40):
        (root / f"etc/link{number}").symlink_to(f"link{number + 1}" if number < 39 else "/etc/real")
    assert resolve_in_root(str(root), "/etc/link0/x") == str(root / "etc/real/x")
    assert resolve_in_root(str(root), "/etc/link39") == str(root / "etc/real")  # the last one followed by default
    (root / "etc/one-more").symlink_to("link0")
    with pytest.raises(ToolkitError, match="more than 40 symbolic links on the way"):
        resolve_in_root(str(root), "/etc/one-more/x")


def test_host_programs_run_in_the_host_root_by_the_hosts_path(tmp_path: Path) -> None:
    """`HostRoot.run`: a program found on the host's PATH, started in the host's / (chroot); its stdout, or its
    last words in one line when it fails."""
    host = program_host(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("node-1\n")
    assert host.run(["cat", "etc/hostname"], "reading") == "node-1\n"  # relative to the host's /
    script(
        tmp_path, "/usr/local/bin/tell", 'echo "out $1"\n[ -n "$2" ] && printf "first\\n%s\\n" "$2" >&2\nexit "$3"\n'
    )
    assert host.run(["tell", "a", "", "0"], "telling") == "out a\n"
    with pytest.raises(ToolkitError) as error:
        host.run(["tell", "b", "last words", "3"], "telling")
    assert str(error.value) == "telling: `tell b last words 3` exited 3: last words"  # stderr's last line
    with pytest.raises(ToolkitError) as error:
        host.run(["tell", "c", "", "4"], "telling")
    assert str(error.value) == "telling: `tell c  4` exited 4: out c"  # nothing on stderr: stdout's last line
    script(tmp_path, "/usr/local/bin/mute", "exit 5\n")
    with pytest.raises(ToolkitError) as error:
        host.run(["mute"], "muting")
    assert str(error.value) == "muting: `mute` exited 5: (it printed nothing)"
    assert host.run(["tell", "d", "", "1"], "telling", accept=(0, 1)) == "out d\n"
    with pytest.raises(ToolkitError, match="^telling: cannot run `no-such-program` in .*: No such file or directory$"):
        host.run(["no-such-program"], "telling")


def test_rke2_nodes(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "var/lib/rancher/rke2/agent/etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd").mkdir()  # a packaged containerd beside it is not the node's
    layout = choose_layout(host, "containerd")
    assert (layout.layout, layout.ctr) == ("rke2", ("/var/lib/rancher/rke2/bin/ctr",))
    assert unit_of(host, layout) == "rke2-server"  # no unit file: the first named
    (tmp_path / "usr/lib/systemd/system").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/system/rke2-agent.service").write_text("")
    assert unit_of(host, layout) == "rke2-agent"


def test_a_config_that_is_not_utf8_is_read_for_its_imports(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "etc/containerd").mkdir()
    (tmp_path / "etc/containerd/config.toml").write_bytes(
        b'# \xff\xfe written elsewhere\nversion = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n'
    )
    assert choose_layout(host, "auto").layout == "drop-in directory"


def test_systemctl_run_as_the_host_acts_though_it_runs_in_a_chroot(tmp_path: Path) -> None:
    """systemctl in a chroot answers "Running in chroot, ignoring request" and restarts nothing unless
    SYSTEMD_IGNORE_CHROOT=1 (the host root is the host's own /, its /run/systemd the host's)."""
    host = program_host(tmp_path)
    script(
        tmp_path,
        "/usr/bin/systemctl",
        '[ "$SYSTEMD_IGNORE_CHROOT" = 1 ] || { echo "Running in chroot, ignoring request." >&2; exit 0; }\n'
        'echo "$*" > /requested\n',
    )
    host.run(["systemctl", "restart", "containerd"], "restarting containerd")
    assert (tmp_path / "requested").read_text() == "restart containerd\n"


def test_a_host_without_os_release_is_this_host(tmp_path: Path) -> None:
    host = fake_host(tmp_path)
    (tmp_path / "etc/os-release").unlink()
    assert check_python(host) == "/usr/bin/python3 is Python 3.11 (this host)"
