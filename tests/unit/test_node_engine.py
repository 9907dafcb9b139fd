"""The node installer's reading of engine output: the runtime handler in an effective config, its fingerprint."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from host_programs import program_host, put, script
from test_cri_status import serve, status_response

from chts.base.text_files import toml_loads
from chts.errors import ToolkitError
from chts.node.cri_status import DATA, END_HEADERS, END_STREAM, HEADERS, frame, hpack_literal
from chts.node.engine import (
    configure_engine,
    container_check,
    containers_using,
    digest,
    effective_config,
    effective_default,
    engine_answers,
    engine_older_than_config,
    handler_binary,
    require_handler,
    restart_engine,
    restart_mode,
    runtime_argv,
    served_handler,
    verify_container,
    wait_until_serving,
)
from chts.node.host import LAYOUTS, HostRoot
from chts.node.probe import probe_hook

CONTAINERD = next(layout for layout in LAYOUTS if layout.engine == "containerd" and layout.layout == "plain")
CRIO = next(layout for layout in LAYOUTS if layout.engine == "crio")

DUMP = """\
version = 2
imports = ["{first}", "{second}"]
[plugins]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.container-hooks-runtime]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.container-hooks-runtime.options]
      BinaryName = "/opt/container-hooks/bin/container-hooks-runtime"
"""


def test_handler_in_a_containerd_dump() -> None:
    dump = DUMP.format(first="/etc/containerd/config.toml", second="/etc/containerd/conf.d/99-container-hooks.toml")
    shim = "/opt/container-hooks/bin/container-hooks-runtime"
    assert handler_binary(dump, CONTAINERD, "container-hooks-runtime") == shim
    assert handler_binary(dump, CONTAINERD, "runc") is None  # no BinaryName: containerd's own runc
    assert handler_binary(dump, CONTAINERD, "kata") is None
    with pytest.raises(ToolkitError, match="effective configuration has no runtime 'kata'"):
        require_handler(dump, CONTAINERD, "kata", shim)
    with pytest.raises(ToolkitError, match="runtime 'container-hooks-runtime' runs /opt/container-hooks/bin/cont"):
        require_handler(dump, CONTAINERD, "container-hooks-runtime", "/usr/bin/container-hooks-runtime")


def test_handler_in_crio_config() -> None:
    config = '[crio.runtime.runtimes.container-hooks-runtime]\nruntime_path = "/opt/x"\n'
    assert handler_binary(config, CRIO, "container-hooks-runtime") == "/opt/x"


def test_fingerprint_ignores_the_order_containerd_prints_imports_in() -> None:
    """`containerd config dump` (1.6) prints imports in a varying order: that must not look like a change."""
    one = DUMP.format(first="/etc/containerd/config.toml", second="/etc/containerd/conf.d/a.toml")
    other = DUMP.format(first="/etc/containerd/conf.d/a.toml", second="/etc/containerd/config.toml")
    assert digest(one) == digest(other)
    assert digest(one) != digest(one.replace("/opt/container-hooks", "/usr"))
    garbled = "version = 2\n[plugins\n"  # not TOML: its text is fingerprinted
    assert digest(garbled) == digest(garbled) != digest(garbled + "\n")


def test_probe_hook_fires_only_for_its_own_token() -> None:
    hook = probe_hook("abc123")
    assert hook["when"] == {"annotations": {"^io[.]container-hooks[.]probe$": "^abc123$"}}
    assert hook["stages"] == ["prestart"]


def fake_proc(root: Path, pid: int, started_ticks: int, boot: int) -> None:
    """/proc/PID/stat (field 22: start time in clock ticks since boot; a command name with a space) and btime."""
    (root / "proc" / str(pid)).mkdir(parents=True)
    fields = ["S"] + ["0"] * 18 + [str(started_ticks)] + ["0"] * 30
    (root / "proc" / str(pid) / "stat").write_text(f"{pid} (containerd x) " + " ".join(fields) + "\n")
    (root / "proc" / "stat").write_text(f"cpu 1 2 3\nbtime {boot}\nprocesses 9\n")


def test_an_engine_older_than_its_config_files_is_told(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    boot, tick = 1_700_000_000, os.sysconf("SC_CLK_TCK")
    fake_proc(tmp_path, 4242, started_ticks=100 * tick, boot=boot)  # started at boot + 100 s
    config = tmp_path / "etc/containerd/config.toml"
    drop_in = tmp_path / "etc/containerd/conf.d/99-container-hooks.toml"
    drop_in.parent.mkdir(parents=True)
    config.write_text("version = 2\n")
    drop_in.write_text("version = 2\n")
    for path in (config, drop_in):
        os.utime(path, (boot + 50, boot + 50))
    dump = f'version = 2\nimports = ["/etc/containerd/config.toml", "/etc/containerd/conf.d/{drop_in.name}"]\n'
    assert engine_older_than_config(host, CONTAINERD, dump, 4242) is None
    os.utime(drop_in, (boot + 100.5, boot + 100.5))  # within the second /proc's boot time leaves uncertain
    assert engine_older_than_config(host, CONTAINERD, dump, 4242) is None
    os.utime(drop_in, (boot + 160, boot + 160))
    assert engine_older_than_config(host, CONTAINERD, dump, 4242) == (
        f"containerd (PID 4242) started before /etc/containerd/conf.d/{drop_in.name} last changed"
    )
    assert engine_older_than_config(host, CONTAINERD, dump, 0) is None  # systemd knows no main PID
    assert engine_older_than_config(host, CONTAINERD, dump, 4243) is None  # no such process


def test_a_crio_older_than_a_file_of_its_drop_in_directory_is_told(tmp_path: Path) -> None:
    """CRI-O has no imports to dump: every file of crio.conf.d counts, and a node without the directory has none."""
    host = HostRoot(str(tmp_path))
    boot, tick = 1_700_000_000, os.sysconf("SC_CLK_TCK")
    fake_proc(tmp_path, 4242, started_ticks=100 * tick, boot=boot)
    config = tmp_path / "etc/crio/crio.conf"
    config.parent.mkdir(parents=True)
    config.write_text("[crio.runtime]\n")
    os.utime(config, (boot + 50, boot + 50))
    assert engine_older_than_config(host, CRIO, "", 4242) is None
    drop_in = tmp_path / "etc/crio/crio.conf.d/10-site.conf"
    drop_in.parent.mkdir()
    drop_in.write_text("[crio.runtime]\n")
    os.utime(drop_in, (boot + 160, boot + 160))
    assert engine_older_than_config(host, CRIO, "", 4242) == (
        "crio (PID 4242) started before /etc/crio/crio.conf.d/10-site.conf last changed"
    )


def test_the_engine_is_configured_through_its_drop_in_by_the_installed_ctk(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    (tmp_path / "etc/crio/crio.conf.d").mkdir(parents=True)
    assert runtime_argv(host, CRIO, "/opt/container-hooks", "container-hooks-runtime", True, True) == [
        "/opt/container-hooks/bin/container-hooks-ctk", "runtime", "configure", "--runtime=crio",
        "--config=/etc/crio/crio.conf", "--runtime-name=container-hooks-runtime",
        "--runtime-path=/opt/container-hooks/bin/container-hooks-runtime", "--drop-in-dir=/etc/crio/crio.conf.d",
        "--set-as-default",
    ]  # fmt: skip
    (tmp_path / "etc/crio/crio.conf.d").rmdir()  # none yet: CRI-O's own, beside its config, is made
    assert runtime_argv(host, CRIO, "/opt/x", "x", False, True)[-1] == "--drop-in-dir=/etc/crio/crio.conf.d"
    unconfigure = runtime_argv(host, CONTAINERD, "/opt/container-hooks", "container-hooks-runtime", True, False)
    assert unconfigure[2:4] == ["unconfigure", "--runtime=containerd"]
    assert unconfigure[-1] == "--drop-in" and "--set-as-default" not in unconfigure


def check_report(*checks: tuple[str, str, str]) -> str:
    return json.dumps({"passed": all(c[0] != "FAIL" for c in checks), "checks": [
        {"status": status, "subject": subject, "detail": detail} for status, subject, detail in checks
    ]})  # fmt: skip


def test_the_container_check_of_ctk_checks_json_report() -> None:
    """CRI-O nodes verify through `ctk check` as the host runs it: its JSON report, not a line of its text."""
    ran = ("PASS", "container", "a container ran through /opt/x/bin/container-hooks-runtime; its probe fired")
    report = check_report(("PASS", "config", "/etc/container-hooks/config.toml"), ran, ("PASS", "engines", "ok"))
    assert container_check(report, "ctk check") == f"PASS  container: {ran[2]}"
    with pytest.raises(ToolkitError, match=r"^`ctk check` failed: hooks: bad; engines: worse$"):
        container_check(check_report(ran, ("FAIL", "hooks", "bad"), ("FAIL", "engines", "worse")), "ctk check")
    with pytest.raises(ToolkitError, match="ran no container through the shim: no low-level runtime"):
        container_check(check_report(("SKIP", "container", "no low-level runtime")), "ctk check")
    skipped_then_ran = check_report(("SKIP", "container", "runc: not yet"), ran)  # the last container check counts
    assert container_check(skipped_then_ran, "ctk check") == f"PASS  container: {ran[2]}"
    with pytest.raises(ToolkitError, match="ran no container through the shim: runc: not yet$"):
        container_check(check_report(ran, ("SKIP", "container", "runc: not yet")), "ctk check")
    with pytest.raises(ToolkitError, match="ran no container through the shim: it has no container check"):
        container_check(check_report(("PASS", "config", "x")), "ctk check")
    for garbage in ("PASS  container: text, not JSON", "{}", '{"checks": [{"status": "PASS"}]}'):
        with pytest.raises(ToolkitError, match="did not answer with its JSON report"):
            container_check(garbage, "ctk check")


# ----------------------------------------------------------------------------- as the host runs its programs

SHIM = "/opt/container-hooks/bin/container-hooks-runtime"
HANDLER_CONFIG = f"""\
version = 2
state = "/run/elsewhere"
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "container-hooks-runtime"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.container-hooks-runtime]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.container-hooks-runtime.options]
      BinaryName = "{SHIM}"
"""


def test_the_effective_config_is_the_hosts_containerd_reading_the_hosts_files(tmp_path: Path) -> None:
    host = program_host(tmp_path, containerd=True)
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text(HANDLER_CONFIG)
    effective = effective_config(host, CONTAINERD)
    assert toml_loads(effective)["state"] == "/run/elsewhere"  # containerd's dump, every default filled in
    assert effective_default(effective, CONTAINERD) == "container-hooks-runtime"
    assert require_handler(effective, CONTAINERD, "container-hooks-runtime", SHIM) == (
        f"containerd's effective configuration has runtime handler 'container-hooks-runtime' running {SHIM}"
    )
    # k3s unpacks its containerd where no $PATH leads: that one is asked, with k3s's config
    k3s = next(layout for layout in LAYOUTS if layout.layout == "k3s")
    unpacked = "/var/lib/rancher/k3s/data/current/bin/containerd"
    with pytest.raises(ToolkitError, match=f"^containerd config dump: cannot run `{unpacked} "):
        effective_config(host, k3s)
    put(tmp_path, str(tmp_path / "usr/bin/containerd"), "/var/lib/rancher/k3s/data/current/bin/containerd")
    (tmp_path / "usr/bin/containerd").unlink()
    (tmp_path / k3s.config.lstrip("/")).parent.mkdir(parents=True)
    (tmp_path / k3s.config.lstrip("/")).write_text(HANDLER_CONFIG.replace(SHIM, "/k3s/shim"))
    assert handler_binary(effective_config(host, k3s), k3s, "container-hooks-runtime") == "/k3s/shim"


def task_options(root: Path, state: str, task: str, binary: str, text: Optional[str] = None) -> None:
    """options.json of a task, as containerd's runc shim writes it in the task's bundle (or ``text``)."""
    directory = root / state.lstrip("/") / "io.containerd.runtime.v2.task" / task
    directory.mkdir(parents=True)
    (directory / "options.json").write_text(json.dumps({"binary_name": binary}) if text is None else text)


def test_the_containers_using_the_shim_are_found_in_the_state_directory_containerd_reads(tmp_path: Path) -> None:
    host = program_host(tmp_path, containerd=True)
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text(HANDLER_CONFIG)
    task_options(tmp_path, "/run/elsewhere", "k8s.io/a-broken", SHIM, "{")  # first in order: skipped
    task_options(tmp_path, "/run/elsewhere", "k8s.io/b-ours", SHIM)
    task_options(tmp_path, "/run/elsewhere", "k8s.io/c-runc", "/usr/sbin/runc")
    task_options(tmp_path, "/run/elsewhere", "moby/d-ours", SHIM)
    task_options(tmp_path, "/run/containerd", "k8s.io/e-default-state", SHIM)  # not where containerd looks
    assert containers_using(host, CONTAINERD, SHIM) == ["k8s.io/b-ours", "moby/d-ours"]
    assert containers_using(host, CRIO, SHIM) == []
    # the engine's binary gone: its default state directory, beside its socket
    (tmp_path / "usr/bin/containerd").unlink()
    assert containers_using(host, CONTAINERD, SHIM) == ["k8s.io/e-default-state"]


def cri_answer(config: Dict[str, Any]) -> List[bytes]:
    return [
        frame(HEADERS, END_HEADERS, 1, b"\x88"),
        frame(DATA, 0, 1, status_response({"config": json.dumps({"containerd": config})})),
        frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_literal("grpc-status", "0")),
    ]


@pytest.mark.parametrize(
    ("served", "default", "wrong"),
    [
        ({"runtimes": {"runc": {}, "x": {"options": {"BinaryName": SHIM}}}, "defaultRuntimeName": "x"}, "x", None),
        ({"runtimes": {"runc": {}, "x": {"options": {"BinaryName": SHIM}}}, "defaultRuntimeName": "runc"}, None, None),
        ({"runtimes": {"runc": {}, "x": {"options": {"BinaryName": SHIM}}}, "defaultRuntimeName": "runc"}, "x",
         "running containerd's default runtime is 'runc', not 'x'"),
        ({"runtimes": {"runc": {}, "kata": {}}}, None,
         "running containerd serves no runtime handler 'x' (CRI status: runc, kata)"),
        ({"runtimes": {"x": {"options": {"BinaryName": "/usr/bin/runc"}}}}, None,
         f"running containerd serves runtime handler 'x' with BinaryName '/usr/bin/runc', not {SHIM}"),
        ({"runtimes": {"x": {}}}, None,
         f"running containerd serves runtime handler 'x' with BinaryName None, not {SHIM}"),
    ],
)  # fmt: skip
def test_the_handler_the_running_containerd_serves(
    tmp_path: Path, served: Dict[str, Any], default: Optional[str], wrong: Optional[str]
) -> None:
    host = HostRoot(str(tmp_path))
    (tmp_path / "run/containerd").mkdir(parents=True)
    with serve(tmp_path / "run/containerd/containerd.sock", cri_answer(served)):
        assert served_handler(host, CONTAINERD, "x", SHIM, default) == wrong
    assert served_handler(host, CRIO, "x", SHIM, "x") is None  # CRI-O is not asked


def test_restart_modes(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    with pytest.raises(ToolkitError, match=f"^{tmp_path}/run/systemd/system: the host does not run systemd: restart "
                                           "containerd yourself and pass --restart-mode none$"):  # fmt: skip
        restart_mode(host, CONTAINERD, "auto")
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    assert restart_mode(host, CONTAINERD, "auto") == "systemd"
    assert restart_mode(host, CONTAINERD, "none") == "none"
    with pytest.raises(ToolkitError, match="^--restart-mode signal: crio has no config reload"):
        restart_mode(host, CRIO, "signal")


# systemctl as the host's: `show` prints the main PID, `restart` moves it to what the test put in ``next``.
SYSTEMCTL = """\
echo "$*" >> /systemctl-calls
case "$1" in
restart) cat /next > /main-pid;;
show) cat /main-pid;;
esac
"""


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        ("100", "200", "restarted k3s-agent through the host's systemd (main PID 100 -> 200)"),
        ("", "200", "restarted k3s-agent through the host's systemd (main PID - -> 200)"),
        ("100", "100", "`systemctl restart k3s-agent` returned but k3s-agent still runs as PID 100: not restarted"),
        ("100", "0", "`systemctl restart k3s-agent` returned but systemd shows no running k3s-agent (main PID 0)"),
    ],
)
def test_a_restart_is_a_new_main_pid(tmp_path: Path, before: str, after: str, said: str) -> None:
    host = program_host(tmp_path)
    script(tmp_path, "/usr/bin/systemctl", SYSTEMCTL)
    (tmp_path / "main-pid").write_text(before + "\n")
    (tmp_path / "next").write_text(after + "\n")
    k3s = next(layout for layout in LAYOUTS if layout.layout == "k3s")
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/systemd/system/k3s-agent.service").write_text("")  # an agent node: the second unit named
    if said.startswith("restarted"):
        assert restart_engine(host, k3s, "systemd") == said
    else:
        with pytest.raises(ToolkitError) as error:
            restart_engine(host, k3s, "systemd")
        assert str(error.value) == said
    calls = (tmp_path / "systemctl-calls").read_text().splitlines()
    assert calls == ["show --property=MainPID --value k3s-agent", "restart k3s-agent"] + calls[2:]
    assert restart_engine(host, CONTAINERD, "none") == (
        "restart-mode none: restart containerd yourself to apply the new configuration"
    )
    assert len((tmp_path / "systemctl-calls").read_text().splitlines()) == len(calls)  # none: nothing run


PLUGINS = """\
TYPE                                   ID                    PLATFORMS      STATUS
io.containerd.snapshotter.v1           overlayfs             linux/amd64    ok
io.containerd.grpc.v1                  cri                   linux/amd64    {status}
"""


def test_the_engine_serves_once_its_socket_answers_and_containerds_cri_plugin_is_ok(tmp_path: Path) -> None:
    host = program_host(tmp_path)
    script(tmp_path, "/usr/bin/ctr", '[ "$*" = "-a /run/containerd/containerd.sock plugins ls" ] && cat /plugins\n')
    assert engine_answers(host, CONTAINERD) == "/run/containerd/containerd.sock does not accept connections"
    with pytest.raises(ToolkitError, match="^containerd did not come back within 0 s: /run/containerd/containerd.s"):
        wait_until_serving(host, CONTAINERD, 0)
    (tmp_path / "run/containerd").mkdir(parents=True)
    (tmp_path / "run/crio").mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        for path in ("run/containerd/containerd.sock", "run/crio/crio.sock"):
            listening = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            listening.bind(str(tmp_path / path))
            listening.listen(8)
        assert engine_answers(host, CRIO) == ""  # CRI-O: its socket is enough
        assert wait_until_serving(host, CRIO, 0) == "crio answers on /run/crio/crio.sock"
        (tmp_path / "plugins").write_text(PLUGINS.format(status="ok"))
        assert engine_answers(host, CONTAINERD) == ""
        assert wait_until_serving(host, CONTAINERD, 0) == "containerd answers on /run/containerd/containerd.sock"
        (tmp_path / "plugins").write_text(PLUGINS.format(status="error"))
        assert engine_answers(host, CONTAINERD) == "containerd's CRI plugin is error"
        with pytest.raises(ToolkitError, match="^containerd did not come back within 0 s: containerd's CRI plugin i"):
            wait_until_serving(host, CONTAINERD, 0)
        (tmp_path / "plugins").write_text(PLUGINS.splitlines()[1] + "\nio.containerd.grpc.v1 cri\n")
        assert engine_answers(host, CONTAINERD) == "containerd lists no CRI plugin"
        (tmp_path / "plugins").unlink()  # ctr fails: what it said is what is missing
        with pytest.raises(ToolkitError, match="^ctr plugins ls: `ctr -a /run/containerd/containerd.sock plugins ls"):
            engine_answers(host, CONTAINERD)


def test_crio_nodes_are_verified_by_the_hosts_ctk_check(tmp_path: Path) -> None:
    host = program_host(tmp_path)
    ran = ("PASS", "container", f"a container ran through {SHIM}; its probe fired")
    ctk = "/opt/container-hooks/bin/container-hooks-ctk"
    expected = "check --dest=/opt/container-hooks/bin --crio-config=/etc/crio/crio.conf --format=json"
    script(tmp_path, ctk, f'[ "$*" = "{expected}" ] || exit 2\ncat /report\nexit "$(cat /status)"\n')
    (tmp_path / "report").write_text(check_report(("PASS", "config", "ok"), ran))
    (tmp_path / "status").write_text("0")
    assert verify_container(host, CRIO, SHIM, run=lambda argv: "") == f"PASS  container: {ran[2]}"
    (tmp_path / "report").write_text(check_report(ran, ("FAIL", "hooks", "not root's")))
    (tmp_path / "status").write_text("1")  # ctk check's status when a check fails: its report says which
    with pytest.raises(ToolkitError, match=r"^`/opt/container-hooks/bin/container-hooks-ctk check .*` failed: hooks"):
        verify_container(host, CRIO, SHIM, run=lambda argv: "")
    (tmp_path / "status").write_text("2")  # usage error: no report to read
    with pytest.raises(
        ToolkitError, match=r"^ctk check: `/opt/container-hooks/bin/container-hooks-ctk check .*` exited 2"
    ):
        verify_container(host, CRIO, SHIM, run=lambda argv: "")


def test_the_engine_is_configured_by_the_hosts_installed_ctk(tmp_path: Path) -> None:
    host = program_host(tmp_path)
    script(tmp_path, "/opt/x/bin/container-hooks-ctk", 'echo "  ran: $*  "\n[ "$2" = configure ] || echo refused >&2\n')
    (tmp_path / "etc/containerd").mkdir(parents=True)
    assert configure_engine(host, CONTAINERD, "/opt/x", "x", False, True) == (
        "ran: runtime configure --runtime=containerd --config=/etc/containerd/config.toml --runtime-name=x "
        "--runtime-path=/opt/x/bin/container-hooks-runtime --drop-in"
    )
    script(tmp_path, "/opt/x/bin/container-hooks-ctk", "echo refused >&2\nexit 1\n")
    with pytest.raises(
        ToolkitError, match="^containerd unconfigure: `/opt/x/bin/container-hooks-ctk runtime unconf.*: refused$"
    ):
        configure_engine(host, CONTAINERD, "/opt/x", "x", False, False)


def test_containerd_nodes_run_a_probe_container_whose_hook_fires(tmp_path: Path) -> None:
    """What `ctr run` is asked for, and the hook file it finds: run as the shim would (its command, in the host
    root, the container's state on stdin) when it matches the container's annotation."""
    host = program_host(tmp_path)
    (tmp_path / "usr").mkdir(exist_ok=True)
    (tmp_path / "etc/container-hooks/hooks.d").mkdir(parents=True)
    ran: List[List[str]] = []

    def ctr_run(argv: List[str]) -> str:
        ran.append(argv)
        assert argv[:8] == ["ctr", "-a", CONTAINERD.socket, "-n", "container-hooks-probe", "run", "--rm", "--runtime"]
        assert argv[argv.index("--runc-binary") + 1] == SHIM and argv[-1] == "/bin/true"
        annotation = argv[argv.index("--annotation") + 1].partition("=")
        assert annotation[0] == "io.container-hooks.probe"
        rootfs = argv[argv.index("--rootfs") + 1]
        assert (tmp_path / rootfs.lstrip("/")).is_dir() and argv[-2].startswith("container-hooks-probe-")
        for path in (tmp_path / "etc/container-hooks/hooks.d").iterdir():
            hook = json.loads(path.read_text())
            ((key, value),) = hook["when"]["annotations"].items()
            if re.search(key, annotation[0]) and re.search(value, annotation[2]):
                subprocess.run(
                    hook["hook"]["args"], executable=hook["hook"]["path"], input=json.dumps({"id": argv[-2]}).encode(),
                    preexec_fn=host.enter, check=True,
                )  # fmt: skip
        return ""

    said = verify_container(host, CONTAINERD, SHIM, ctr_run)
    assert said == f"a container ran through containerd and {SHIM}; its probe hook fired"
    assert os.listdir(tmp_path / "etc/container-hooks/hooks.d") == []  # the probe hook, its output, its rootfs
    assert os.listdir(tmp_path / "run/container-hooks-node") == []  # gone again
    with pytest.raises(ToolkitError, match=f"^a container ran through {SHIM} but its probe hook in /etc/container-ho"):
        verify_container(host, CONTAINERD, SHIM, lambda argv: "")  # nothing fired
    assert os.listdir(tmp_path / "etc/container-hooks/hooks.d") == []
    assert os.listdir(tmp_path / "run/container-hooks-node") == []
