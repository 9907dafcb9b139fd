"""The NRI plugin against a fake runtime (tests/nri_runtime.py, protoc's classes): registration,
the hooks each container gets and why, the gap at (re)connect, precreate refusal, dedupe,
re-reading changed files, failure policy, frames, reconnect, the state file."""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from nri_proto import compile_proto
from nri_runtime import CallFailed, Closed, FakeRuntime, hooks_of

from chts.nri import plugin as nri_plugin
from chts.nri.plugin import Options, Plugin


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return compile_proto(tmp_path_factory.mktemp("nri-proto"))


class Toolkit:
    """A toolkit root: config.toml naming hooks.json, a hooks directory and a log file."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.hooks_json = base / "hooks.json"
        self.hooks_dir = base / "hooks.d"
        self.hooks_dir.mkdir(mode=0o755)
        self.log = base / "toolkit.log"
        self.config = base / "config.toml"
        self.write_config()

    def write_config(self, on_error: str = "fail", level: str = "info") -> None:
        self.config.write_text(
            f'[container-hooks]\npath = "{self.hooks_json}"\nhooks-dirs = ["{self.hooks_dir}"]\n'
            f'on-error = "{on_error}"\n[container-hooks-runtime]\ndebug = "{self.log}"\nlog-level = "{level}"\n'
        )

    def hooks(self, hooks: Dict[str, Any]) -> None:
        self.hooks_json.write_text(json.dumps(hooks))

    def dropin(self, name: str, hook: Dict[str, Any], when: Dict[str, Any], stages: List[str]) -> Path:
        path = self.hooks_dir / name
        path.write_text(json.dumps({"version": "1.0.0", "hook": hook, "when": when, "stages": stages}))
        return path

    def lines(self) -> List[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def lines_once(self, text: str, count: int) -> List[str]:
        """The lines, once ``count`` of them hold ``text`` (a create is logged just after its reply)."""
        deadline = time.monotonic() + 10
        while sum(text in line for line in self.lines()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.lines()


@pytest.fixture
def toolkit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Toolkit:
    monkeypatch.setenv("CONTAINER_HOOKS_NRI_STATE_DIR", str(tmp_path / "state"))
    kit = Toolkit(tmp_path)
    kit.hooks({"createRuntime": [{"path": "/usr/bin/always", "args": ["always", "x"], "timeout": 5}]})
    kit.dropin(
        "10-annotated.json",
        {"path": "/usr/bin/annotated", "env": ["A=1"]},
        {"annotations": {"^example\\.com/hook$": "^on$"}},
        ["poststart"],
    )
    return kit


class Running:
    """The plugin serving a unix socket in a thread, and the fake runtime's side of each connection."""

    def __init__(self, toolkit: Toolkit, pb: Any, **options: Any) -> None:
        self.toolkit = toolkit
        self.pb = pb
        self.path = str(toolkit.base / "nri.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(4)
        self.options = Options(self.path, config_path=str(toolkit.config), **options)
        self.stderr = StringSink()
        self.plugin = Plugin(self.options, self.stderr)
        self.status: Optional[int] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.status = self.plugin.run()

    def accept(self, **kwargs: Any) -> FakeRuntime:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        return FakeRuntime(conn, self.pb, **kwargs)

    def stop(self) -> int:
        self.plugin.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.listener.close()
        assert self.status is not None
        return self.status

    def state(self, containers: Optional[int] = None) -> Dict[str, Any]:
        """The state file; with ``containers``, once it counts that many (written STATE_DELAY after a burst)."""
        path = self.toolkit.base / "state" / f"{self.options.name}.json"
        deadline = time.monotonic() + 5
        while True:
            data: Dict[str, Any] = json.loads(path.read_text())
            if containers is None or data["containers"] == containers or time.monotonic() > deadline:
                return data
            time.sleep(0.05)


class StringSink:
    def __init__(self) -> None:
        self.parts: List[str] = []
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def text(self) -> str:
        with self.lock:
            return "".join(self.parts)


@pytest.fixture
def running(toolkit: Toolkit, pb: Any) -> Iterator[Running]:
    run = Running(toolkit, pb)
    yield run
    if run.thread.is_alive():
        run.stop()


def pod(pb: Any, annotations: Optional[Dict[str, str]] = None, **fields: Any) -> Any:
    values = {"id": "pod1", "name": "web", "uid": "u-1", "namespace": "shop", **fields}
    return pb.PodSandbox(annotations=annotations or {}, **values)


def container(pb: Any, annotations: Optional[Dict[str, str]] = None, hooks: Any = None, **fields: Any) -> Any:
    mounts = [pb.Mount(destination="/etc/hosts", type="bind", source="/var/lib/x/hosts", options=["rbind", "rw"])]
    values = {"id": "c1", "pod_sandbox_id": "pod1", "name": "app", "args": ["/bin/sh", "-c", "true"], "mounts": mounts}
    return pb.Container(annotations=annotations or {}, hooks=hooks, **{**values, **fields})


ALWAYS = {"path": "/usr/bin/always", "args": ["always", "x"], "timeout": 5}
ANNOTATED = {"path": "/usr/bin/annotated", "env": ["A=1"]}


def test_registers_subscribes_to_create_only_and_answers_with_the_hooks(running: Running, pb: Any) -> None:
    runtime = running.accept()
    register, configured = runtime.handshake()
    assert (register.plugin_name, register.plugin_idx) == ("container-hooks", "10")
    assert configured.events == 1 << (4 - 1)  # CREATE_CONTAINER = 4, bit (event - 1)
    plain = runtime.create(pod(pb), container(pb))
    assert hooks_of(pb, plain.adjust.hooks) == {"createRuntime": [ALWAYS]}
    annotated = runtime.create(pod(pb), container(pb, {"example.com/hook": "on"}, id="c2"))
    assert hooks_of(pb, annotated.adjust.hooks) == {"createRuntime": [ALWAYS], "poststart": [ANNOTATED]}
    # The pod's annotations count, the container's win.
    from_pod = runtime.create(pod(pb, {"example.com/hook": "on"}), container(pb, id="c3"))
    assert "poststart" in hooks_of(pb, from_pod.adjust.hooks)
    overridden = runtime.create(
        pod(pb, {"example.com/hook": "on"}), container(pb, {"example.com/hook": "off"}, id="c4")
    )
    assert "poststart" not in hooks_of(pb, overridden.adjust.hooks)
    lines = running.toolkit.lines_once("injected", 4)
    injected = [line for line in lines if "injected" in line]
    assert len(injected) == 4
    assert "id=c2" in injected[1] and "pod=shop/web" in injected[1] and "container=app" in injected[1]
    assert f"poststart:/usr/bin/annotated ({running.toolkit.hooks_dir}/10-annotated.json: matched" in injected[1]
    assert "applies to every container), poststart:/usr/bin/annotated" in injected[1]
    assert f"createRuntime:/usr/bin/always ({running.toolkit.hooks_json}: applies to every container)" in injected[0]
    assert any("msg=registered" in line and "name=container-hooks index=10" in line for line in lines)
    assert any('runtime="fake-runtime 0.0"' in line for line in lines if "synchronized" in line)
    assert "injected 2 hook(s)" in running.stderr.text()
    state = running.state(containers=4)
    assert state["registered"] is True and state["containers"] == 4 and state["name"] == "container-hooks"
    assert state["index"] == "10" and state["socket"] == running.path and state["pid"] == os.getpid()
    assert abs(state["since"] - time.time()) < 30
    assert running.stop() == 0
    assert not (running.toolkit.base / "state" / "container-hooks.json").exists()
    assert "msg=stopping" in running.toolkit.lines()[-1]


def test_a_hook_the_container_already_has_is_not_added_again(running: Running, pb: Any) -> None:
    runtime = running.accept()
    runtime.handshake()
    timeout = pb.OptionalInt(value=5)
    existing = pb.Hooks(create_runtime=[pb.Hook(path="/usr/bin/always", args=["always", "x"], timeout=timeout)])
    reply = runtime.create(pod(pb), container(pb, {"example.com/hook": "on"}, hooks=existing))
    assert hooks_of(pb, reply.adjust.hooks) == {"poststart": [ANNOTATED]}
    # The same path with other arguments is another hook.
    other = pb.Hooks(create_runtime=[pb.Hook(path="/usr/bin/always", args=["always", "y"], timeout=timeout)])
    reply = runtime.create(pod(pb), container(pb, hooks=other))
    assert hooks_of(pb, reply.adjust.hooks) == {"createRuntime": [ALWAYS]}
    # The marker hook (the shim's sign that a spec is done) means nothing is added.
    marker = pb.Hooks(prestart=[pb.Hook(path="/usr/bin/container-hooks")])
    reply = runtime.create(pod(pb), container(pb, hooks=marker))
    assert not reply.HasField("adjust")


def test_synchronize_lists_the_containers_created_while_the_plugin_was_away(running: Running, pb: Any) -> None:
    runtime = running.accept()
    done = pb.Hooks(
        create_runtime=[pb.Hook(path="/usr/bin/always", args=["always", "x"], timeout=pb.OptionalInt(value=5))]
    )
    containers = [
        container(pb, id="bare", name="bare", state=3),
        container(pb, id="done", name="done", hooks=done, state=3),
        container(pb, {"example.com/hook": "on"}, id="half", name="half", hooks=done, state=1),
        container(pb, id="gone", name="gone", state=4),
        container(pb, id="held", name="held", state=2),
    ]
    runtime.handshake([pod(pb)], containers, chunks=2)
    lines = [line for line in running.toolkit.lines() if "while the plugin was away" in line]
    assert len(lines) == 4, running.toolkit.lines()
    assert "id=bare" in lines[0] and "createRuntime:/usr/bin/always" in lines[0] and "pod=shop/web" in lines[0]
    assert "id=half" in lines[1] and "poststart:/usr/bin/annotated" in lines[1] and "always" not in lines[1]
    assert "state=running" in lines[0] and "state=created" in lines[1]  # NRI's ContainerState numbers
    gone, held = (next(line for line in lines if f"id={name} " in line) for name in ("gone", "held"))
    assert "state=stopped" in gone and "component=nri" in gone and "state=paused" in held
    assert any("synchronized: 5 container(s), 4 missing hooks" in line for line in running.toolkit.lines())


def test_precreate_hooks_are_refused_in_one_line_and_never_delivered(toolkit: Toolkit, pb: Any) -> None:
    dropin = toolkit.dropin("20-pre.json", {"path": "/usr/bin/pre"}, {"always": True}, ["precreate"])
    run = Running(toolkit, pb)
    runtime = run.accept()
    runtime.handshake()
    reply = runtime.create(pod(pb), container(pb))
    assert hooks_of(pb, reply.adjust.hooks) == {"createRuntime": [ALWAYS]}
    run.stop()
    refusals = [line for line in toolkit.lines() if "NRI cannot run precreate hooks" in line]
    assert len(refusals) == 2, toolkit.lines()
    assert f"{dropin}: precreate hook /usr/bin/pre is not delivered: NRI cannot run precreate hooks" in refusals[0]
    assert "id=c1" in refusals[1] and str(dropin) in refusals[1] and "level=warning" in refusals[1]


def test_a_changed_file_counts_from_the_next_container_on(running: Running, pb: Any) -> None:
    runtime = running.accept()
    runtime.handshake()
    assert hooks_of(pb, runtime.create(pod(pb), container(pb)).adjust.hooks) == {"createRuntime": [ALWAYS]}
    running.toolkit.hooks({"poststop": [{"path": "/usr/bin/new"}]})
    assert hooks_of(pb, runtime.create(pod(pb), container(pb)).adjust.hooks) == {"poststop": [{"path": "/usr/bin/new"}]}
    (running.toolkit.hooks_dir / "10-annotated.json").unlink()
    reply = runtime.create(pod(pb), container(pb, {"example.com/hook": "on"}))
    assert hooks_of(pb, reply.adjust.hooks) == {"poststop": [{"path": "/usr/bin/new"}]}


def test_on_error_fail_fails_the_create_and_skip_leaves_the_source_out(running: Running, pb: Any) -> None:
    runtime = running.accept()
    runtime.handshake()
    broken = running.toolkit.hooks_dir / "30-broken.json"
    broken.write_text("{not json")
    with pytest.raises(CallFailed) as failed:
        runtime.create(pod(pb), container(pb))
    assert str(broken) in failed.value.message and "container-hooks NRI plugin" in failed.value.message
    assert any("level=error" in line and "create failed" in line for line in running.toolkit.lines())
    running.toolkit.write_config(on_error="skip")
    reply = runtime.create(pod(pb), container(pb))
    assert hooks_of(pb, reply.adjust.hooks) == {"createRuntime": [ALWAYS]}
    assert any(f"skipping unusable hook source (on-error = skip): {broken}" in line for line in running.toolkit.lines())


def test_a_broken_config_fails_every_create_until_fixed(running: Running, pb: Any) -> None:
    runtime = running.accept()
    runtime.handshake()
    running.toolkit.config.write_text("[container-hooks\n")
    with pytest.raises(CallFailed) as failed:
        runtime.create(pod(pb), container(pb))
    assert str(running.toolkit.config) in failed.value.message and "invalid TOML" in failed.value.message
    running.toolkit.write_config()
    assert runtime.create(pod(pb), container(pb)).HasField("adjust")


def test_no_frame_the_plugin_writes_is_over_4096_bytes(running: Running, pb: Any) -> None:
    many = [{"path": f"/usr/bin/hook{i}", "args": ["x" * 300], "env": [f"N={i}"]} for i in range(40)]
    running.toolkit.hooks({"poststop": many})
    runtime = running.accept(frame_limit=7)  # the runtime's own frames tiny: the plugin reassembles them
    runtime.handshake()
    reply = runtime.create(pod(pb), container(pb))
    assert hooks_of(pb, reply.adjust.hooks) == {"poststop": many}
    sizes = [size for _, size in runtime.frames]
    assert max(sizes) == 4096 and len(reply.SerializeToString()) > 12000


def test_other_calls_get_an_empty_reply(running: Running, pb: Any) -> None:
    runtime = running.accept()
    runtime.handshake()
    reply = runtime.call(
        "StopContainer", pb.StopContainerRequest(pod=pod(pb), container=container(pb)), pb.StopContainerResponse
    )
    assert reply == pb.StopContainerResponse()
    assert runtime.call("RemovePodSandbox", pb.Empty(), pb.Empty) == pb.Empty()


def test_reconnects_when_the_runtime_goes_away(running: Running, pb: Any) -> None:
    first = running.accept()
    first.handshake()
    first.sock.close()
    second = running.accept()
    second.handshake()
    assert second.create(pod(pb), container(pb)).HasField("adjust")
    assert running.state()["registered"] is True
    assert any("connection ended (closed by the runtime); reconnecting" in line for line in running.toolkit.lines())
    assert len([line for line in running.toolkit.lines() if "msg=registered" in line]) == 2


def test_shutdown_ends_the_connection_and_the_daemon_reconnects(running: Running, pb: Any) -> None:
    first = running.accept()
    first.handshake()
    first.call("Shutdown", pb.Empty(), pb.Empty)
    with pytest.raises(Closed):
        first.receive(5)
    running.accept().handshake()
    assert running.stop() == 0


def test_a_refused_registration_is_retried(running: Running, pb: Any) -> None:
    first = running.accept()
    first.await_registration()
    first.accept_registration(code=3, message="plugin with index 10 already registered")
    with pytest.raises(Closed):
        first.receive(5)
    running.accept().handshake()
    assert any("refused the registration: plugin with index 10" in line for line in running.toolkit.lines())


def test_the_socket_missing_is_one_line_then_retried(toolkit: Toolkit, pb: Any, tmp_path: Path) -> None:
    options = Options(str(tmp_path / "later.sock"), config_path=str(toolkit.config))
    sink = StringSink()
    plugin = Plugin(options, sink)
    status: List[int] = []
    thread = threading.Thread(target=lambda: status.append(plugin.run()), daemon=True)
    thread.start()
    time.sleep(1.5)  # several attempts
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(options.socket_path)
    listener.listen(1)
    listener.settimeout(10)
    conn, _ = listener.accept()
    FakeRuntime(conn, pb).handshake()
    plugin.stop()
    thread.join(10)
    assert status == [0]
    waiting = [line for line in sink.text().splitlines() if "cannot connect" in line]
    assert len(waiting) == 1 and "No such file or directory; retrying" in waiting[0]


def test_once_exits_when_the_socket_is_missing(toolkit: Toolkit, tmp_path: Path) -> None:
    plugin = Plugin(Options(str(tmp_path / "none.sock"), config_path=str(toolkit.config), once=True), StringSink())
    assert plugin.run() == 1


def test_an_inherited_connection_is_served_until_it_ends(
    toolkit: Toolkit, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = socket.socketpair()
    options = Options(config_path=str(toolkit.config), fd=theirs.detach(), name="hooks", index="42")
    plugin = Plugin(options, StringSink())
    status: List[int] = []
    thread = threading.Thread(target=lambda: status.append(plugin.run()), daemon=True)
    thread.start()
    runtime = FakeRuntime(ours, pb)
    register, _ = runtime.handshake()
    assert (register.plugin_name, register.plugin_idx) == ("hooks", "42")
    assert runtime.create(pod(pb), container(pb)).HasField("adjust")
    ours.close()
    thread.join(10)
    assert status == [0]


def test_registration_times_out(toolkit: Toolkit, pb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nri_plugin, "REGISTRATION_TIMEOUT", 0.3)
    ours, theirs = socket.socketpair()
    sink = StringSink()
    plugin = Plugin(Options(config_path=str(toolkit.config), fd=theirs.detach()), sink)
    assert plugin.run() == 1
    assert "no reply to RegisterPlugin within 0.3 s" in sink.text()
    assert "connection ended (registration timed out)" in sink.text().splitlines()[-1]
    ours.close()


def test_the_plan_is_read_once_while_no_file_changes(toolkit: Toolkit, monkeypatch: pytest.MonkeyPatch) -> None:
    """What was read is kept by the files' signatures; a file changed within the racy window (2 s, mtime or
    ctime, as the shim's cache) is read again on every create until it has settled."""
    from chts.config import toolkit as toolkit_config
    from chts.nri.selection import HookPlan

    loads: List[str] = []
    load = toolkit_config.load_config

    def counted(path: str) -> Any:
        loads.append(path)
        return load(path)

    monkeypatch.setattr(toolkit_config, "load_config", counted)

    later = HookPlan(str(toolkit.config), clock=lambda: time.time_ns() + 10**10)  # every file settled
    pod_info: Dict[str, Any] = {"annotations": {}}
    item: Dict[str, Any] = {"id": "c", "annotations": {}, "args": [], "mounts": [], "hooks": {}}
    for _ in range(3):
        assert later.decide(pod_info, item, print).pairs() == [("createRuntime", ALWAYS)]
    assert later.reads == 1 and loads == [str(toolkit.config)]
    toolkit.hooks({})
    for _ in range(2):
        assert later.decide(pod_info, item, print).pairs() == []
    assert later.reads == 2
    now = HookPlan(str(toolkit.config))  # the real clock: hooks.json changed just now
    for _ in range(2):
        assert now.decide(pod_info, item, print).pairs() == []
    assert now.reads == 2


def test_the_dispatcher_runs_the_plugin_under_a_plugin_directory_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from chts import dispatch

    calls: List[Any] = []

    def run_tool(tool: str, argv: List[str], self_path: str) -> int:
        calls.append((tool, argv))
        return 0

    monkeypatch.setattr(dispatch, "run_tool", run_tool)
    for name in ("/opt/nri/plugins/10-container-hooks", "05-x", "container-hooks-ctk", "1-x", "ab-x", "١٢-x"):
        monkeypatch.setattr(sys, "argv", [name, "--once"])
        dispatch.main()
    assert calls == [
        ("container-hooks-ctk", ["container-hooks-ctk", "nri", "run", "--once"]),
        ("container-hooks-ctk", ["container-hooks-ctk", "nri", "run", "--once"]),
        ("container-hooks-ctk", ["container-hooks-ctk", "--once"]),
    ]


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--index", "1"], {}, "--index '1': two digits (00 to 99)"),
        (["--index", "123"], {}, "--index '123': two digits"),
        (["--name", "a/b"], {}, "--name 'a/b': letters, digits"),
        (["--name", ""], {}, "--name '': letters"),
        (["--socket", ""], {}, "--socket: empty path"),
        ([], {"NRI_PLUGIN_SOCKET": "three"}, "NRI_PLUGIN_SOCKET='three' is not a file descriptor number"),
        ([], {"NRI_PLUGIN_IDX": "x"}, "--index 'x'"),
        (["--bogus"], {}, "unrecognized arguments: --bogus (see --help)"),
        (["--index"], {}, "argument --index: expected one argument (see --help)"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: List[str],
    env: Dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chts.ctk.main import main

    for name in ("NRI_PLUGIN_SOCKET", "NRI_PLUGIN_NAME", "NRI_PLUGIN_IDX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(["nri", "run", *args]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("container-hooks-ctk nri run")


def state_writes(monkeypatch: pytest.MonkeyPatch, delay: float, slow_write: float = 0.0) -> List[int]:
    """The count of each write of the state file, in order, with STATE_DELAY set to ``delay``; a write of a
    count other than 0 takes ``slow_write`` seconds more (a slow disk)."""
    events: List[int] = []
    write = nri_plugin.State.write

    def recorded(state: nri_plugin.State) -> None:
        events.append(state.containers)
        if state.containers:
            time.sleep(slow_write)
        write(state)

    monkeypatch.setattr(nri_plugin, "STATE_DELAY", delay)
    monkeypatch.setattr(nri_plugin.State, "write", recorded)
    return events


def test_the_state_file_is_written_after_the_replies_once_per_burst(
    running: Running, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of creates costs one write of the state file, after their replies (STATE_DELAY later)."""
    events = state_writes(monkeypatch, 2.0, slow_write=1.0)  # 2 s: ample for two creates on a loaded machine
    runtime = running.accept()
    runtime.handshake()
    runtime.create(pod(pb), container(pb))
    runtime.create(pod(pb), container(pb, id="c2"))  # within STATE_DELAY: no write in between
    assert events == [0]  # the registration's only: neither reply waited for a write
    assert running.state(containers=2)["containers"] == 2
    assert events == [0, 2]  # then one write for the burst
    runtime.create(pod(pb), container(pb, id="c3"))  # the slow write has ended: this one is answered at once
    assert running.state(containers=3)["containers"] == 3
    assert events == [0, 2, 3]


def test_an_idle_plugin_does_not_write_its_state_file(
    running: Running, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing changed, nothing written: the state file is written for a change of its count, not on a timer."""
    events = state_writes(monkeypatch, 0.05)
    runtime = running.accept()
    runtime.handshake()
    runtime.create(pod(pb), container(pb))
    assert running.state(containers=1)["containers"] == 1
    time.sleep(20 * 0.05)  # idle for twenty of its delays
    assert events == [0, 1]


def test_a_symlink_planted_as_the_state_file_is_replaced_not_followed(toolkit: Toolkit, pb: Any) -> None:
    """The state directory is /run's: a link there naming another file never gets the plugin's JSON."""
    elsewhere = toolkit.base / "elsewhere"
    elsewhere.write_text("not the plugin's\n")
    (toolkit.base / "state").mkdir()
    (toolkit.base / "state" / "container-hooks.json").symlink_to(elsewhere)
    running = Running(toolkit, pb)
    try:
        runtime = running.accept()  # kept: a dropped connection unregisters the plugin
        runtime.handshake()
        state = toolkit.base / "state" / "container-hooks.json"
        deadline = time.monotonic() + 10
        while (state.is_symlink() or not running.state()["registered"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not state.is_symlink() and running.state()["registered"] is True
        assert elsewhere.read_text() == "not the plugin's\n"
    finally:
        running.stop()


def test_nri_run_loads_no_other_command(tmp_path: Path) -> None:
    """A daemon's process keeps its own module only: the other commands' imports are ~8 MB of RSS."""
    import subprocess

    code = (
        "import sys\nfrom chts.ctk.main import main\n"
        "status = main(['nri', 'run', '--index', '1'])\n"
        "print(status, sorted(m for m in sys.modules if m.startswith(('chts.ctk.', 'chts.engines', 'chts.node.'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout == "2 ['chts.ctk.main', 'chts.ctk.nri', 'chts.node.kill_switch']\n"


def test_a_failing_gap_report_never_fails_the_synchronize(
    running: Running, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(nri_plugin.Session, "report_gaps", broken)
    runtime = running.accept()
    runtime.handshake([pod(pb)], [container(pb)])
    assert runtime.create(pod(pb), container(pb)).HasField("adjust")
    assert any("cannot check the existing containers" in line and "boom" in line for line in running.toolkit.lines())


def test_a_broken_config_at_synchronize_is_one_warning(running: Running, pb: Any) -> None:
    running.toolkit.config.write_text("[container-hooks\n")
    runtime = running.accept()
    runtime.handshake([pod(pb)], [container(pb), container(pb, id="c2")])
    lines = [line for line in running.stderr.text().splitlines() if "cannot check the existing containers" in line]
    assert len(lines) == 1 and "invalid TOML" in lines[0] and "level=warning" in lines[0]


def test_an_unusable_inherited_descriptor_is_one_line_and_exit_1(toolkit: Toolkit) -> None:
    sink = StringSink()
    assert Plugin(Options(config_path=str(toolkit.config), fd=999), sink).run() == 1
    assert "cannot use the inherited connection (fd 999): Bad file descriptor" in sink.text()


def test_an_unexpected_failure_fails_that_create_only_with_internal(
    running: Running, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chts.hooks.bundle import apply_hooks
    from chts.nri import selection

    def broken(*args: Any) -> Any:
        raise RuntimeError("boom  here")

    runtime = running.accept()
    runtime.handshake()
    monkeypatch.setattr(selection, "apply_hooks", broken)
    with pytest.raises(CallFailed) as failed:
        runtime.create(pod(pb), container(pb))
    expected = "CreateContainer failed inside the plugin: RuntimeError: boom here"
    assert failed.value.code == 13 and failed.value.message == f"container-hooks NRI plugin: {expected}"
    assert any("level=error" in line and expected in line for line in running.toolkit.lines())
    monkeypatch.setattr(selection, "apply_hooks", apply_hooks)
    assert hooks_of(pb, runtime.create(pod(pb), container(pb)).adjust.hooks) == {"createRuntime": [ALWAYS]}


def test_a_config_that_cannot_be_loaded_fails_each_create_naming_it(
    toolkit: Toolkit, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chts.config import toolkit as toolkit_config

    def broken(path: str) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(toolkit_config, "load_config", broken)
    run = Running(toolkit, pb)
    runtime = run.accept()
    runtime.handshake()
    with pytest.raises(CallFailed) as failed:
        runtime.create(pod(pb), container(pb))
    expected = f"{toolkit.config}: cannot use the toolkit config: RuntimeError: boom"
    assert failed.value.code == 2 and failed.value.message == f"container-hooks NRI plugin: {expected}"
    assert run.stop() == 0
    assert f"the toolkit config is unusable, every create will fail until it is fixed: {expected}" in run.stderr.text()


def test_conditions_read_the_containers_args_env_and_mounts(running: Running, pb: Any) -> None:
    running.toolkit.dropin("20-sh.json", {"path": "/usr/bin/sh-hook"}, {"commands": ["^/bin/sh$"]}, ["poststop"])
    running.toolkit.dropin(
        "21-env.json", {"path": "/usr/bin/env-hook"}, {"x-container-hooks-env": {"^AUDIT$": "^1$"}}, ["poststop"]
    )
    running.toolkit.dropin("22-bind.json", {"path": "/usr/bin/bind-hook"}, {"hasBindMounts": True}, ["poststop"])
    runtime = running.accept()
    runtime.handshake()
    shell = runtime.create(pod(pb), container(pb))  # /bin/sh, a bind mount, no env
    assert hooks_of(pb, shell.adjust.hooks)["poststop"] == [
        {"path": "/usr/bin/sh-hook"},
        {"path": "/usr/bin/bind-hook"},
    ]
    other = runtime.create(pod(pb), container(pb, id="c2", args=["/bin/app", "/bin/sh"], env=["AUDIT=1"], mounts=[]))
    assert hooks_of(pb, other.adjust.hooks)["poststop"] == [{"path": "/usr/bin/env-hook"}]


def test_stop_never_blocks_however_often_it_is_called(toolkit: Toolkit) -> None:
    """A signal handler's stop() writes to the wake-up socket: a full buffer must not hang it."""
    plugin = Plugin(Options(str(toolkit.base / "none.sock"), config_path=str(toolkit.config)), StringSink())

    def stop_often() -> None:
        for _ in range(5000):
            plugin.stop()

    thread = threading.Thread(target=stop_often, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert plugin.run() == 0  # stopped before it began


def test_the_backoff_grows_while_registration_fails_and_restarts_once_registered(
    running: Running, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: List[float] = []
    wait = Plugin.wait

    def recorded(plugin: Plugin, seconds: float) -> None:
        waits.append(seconds)
        wait(plugin, seconds)

    monkeypatch.setattr(nri_plugin, "BACKOFF", (0.01, 0.02))
    monkeypatch.setattr(Plugin, "wait", recorded)
    for _ in range(3):
        refused = running.accept()
        refused.await_registration()
        refused.accept_registration(code=3, message="no")
        with pytest.raises(Closed):
            refused.receive(5)
    registered = running.accept()
    registered.handshake()
    registered.sock.close()
    running.accept().handshake()
    assert waits == [0.01, 0.02, 0.02, 0.01]


def test_once_ends_with_the_connection(toolkit: Toolkit, pb: Any) -> None:
    run = Running(toolkit, pb, once=True)
    runtime = run.accept()
    runtime.handshake()
    runtime.sock.close()
    run.thread.join(10)
    assert run.status == 0
    assert 'msg="connection ended (closed by the runtime)"' in run.stderr.text().splitlines()[-1]
    run.listener.close()
    os.unlink(run.path)
    refused = Running(toolkit, pb, once=True)
    runtime = refused.accept()
    runtime.await_registration()
    runtime.accept_registration(code=3, message="no")
    refused.thread.join(10)
    assert refused.status == 1
    assert "connection ended (registration refused)" in refused.stderr.text().splitlines()[-1]
    refused.listener.close()


def test_a_reset_connection_is_logged_with_its_error_and_redialled(running: Running, pb: Any) -> None:
    first = running.accept()
    first.handshake()
    request = pb.Request(service="nri.pkg.api.v1alpha1.Plugin", method="RemovePodSandbox", payload=b"")
    first.send(1, 99, 1, request.SerializeToString())
    select.select([first.sock], [], [], 5)
    first.sock.close()  # with the reply unread: Linux resets the plugin's end (ECONNRESET)
    running.accept().handshake()
    ended = [line for line in running.toolkit.lines() if "connection ended" in line]
    assert len(ended) == 1 and "connection ended (connection error: Connection reset by peer)" in ended[0]


def test_a_call_for_another_service_is_unimplemented(running: Running, pb: Any) -> None:
    runtime = running.accept()
    runtime.handshake()
    request = pb.Request(service="nri.pkg.api.v1alpha1.Other", method="Configure", payload=b"")
    runtime.send(1, 101, 1, request.SerializeToString())
    conn, stream, kind, payload = runtime.receive(5)
    status = pb.Response.FromString(payload).status
    assert (conn, stream, kind) == (1, 101, 2)
    assert (status.code, status.message) == (12, "service nri.pkg.api.v1alpha1.Other not served")
    assert runtime.create(pod(pb), container(pb)).HasField("adjust")


def test_the_backoff_grows_while_the_socket_is_missing(toolkit: Toolkit, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: List[float] = []
    wait = Plugin.wait

    def recorded(plugin: Plugin, seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            plugin.stop()
        wait(plugin, seconds)

    monkeypatch.setattr(nri_plugin, "BACKOFF", (0.01, 0.02))
    monkeypatch.setattr(Plugin, "wait", recorded)
    plugin = Plugin(Options(str(toolkit.base / "none.sock"), config_path=str(toolkit.config)), StringSink())
    assert plugin.run() == 0
    assert waits == [0.01, 0.02, 0.02]


def test_a_protocol_error_is_logged_and_the_plugin_reconnects(running: Running, pb: Any) -> None:
    first = running.accept()
    first.handshake()
    first.sock.sendall(struct.pack(">II", 0, 1) + b"x")  # conn 0 is reserved
    with pytest.raises(Closed):
        first.receive(5)
    running.accept().handshake()
    errors = [line for line in running.toolkit.lines() if "protocol error" in line]
    assert "level=error" in errors[0] and "multiplexed frame for the reserved conn 0" in errors[0]
    assert f"socket={running.path}" in errors[0]


def test_a_registered_connection_outlives_the_registration_deadline(
    running: Running, pb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop wakes up to write the state file; once registered, the registration deadline is over."""
    monkeypatch.setattr(nri_plugin, "REGISTRATION_TIMEOUT", 0.3)
    monkeypatch.setattr(nri_plugin, "STATE_DELAY", 0.05)
    runtime = running.accept()
    runtime.handshake()
    time.sleep(0.5)  # past the deadline
    runtime.create(pod(pb), container(pb))  # a state write is due 0.05 s later: the loop wakes with no data
    assert running.state(containers=1)["containers"] == 1
    time.sleep(0.2)
    reply = runtime.create(pod(pb), container(pb, id="c2"))  # the same connection still answers
    assert hooks_of(pb, reply.adjust.hooks)["createRuntime"] == [ALWAYS]
    assert not any("registration timed out" in line for line in running.toolkit.lines())
