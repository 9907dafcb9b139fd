"""The NRI plugin's connection: register, answer the runtime's calls, reconnect when it goes away.

One thread, event driven: the runtime answers RegisterPlugin only after it has called
Configure and Synchronize on the same connection (chts.nri.ttrpc: the plugin's ttrpc server
and its client to the runtime share one socket), so nothing here waits for one reply.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

from chts import DEFAULT_NRI_SOCKET, __version__
from chts.base.atomic import write_atomically
from chts.base.logfile import LEVELS, Levels, LogFile, render
from chts.errors import ToolkitError, unexpected
from chts.nri import api, default_state_dir, ttrpc, wire
from chts.nri.selection import HookPlan

DEFAULT_NAME = "container-hooks"
DEFAULT_INDEX = "10"
REGISTRATION_TIMEOUT = 5.0  # containerd's default plugin_registration_timeout
BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.0)  # seconds between attempts; the last repeats
REGISTER_STREAM = 1
# The state file's count is written once the connection has been idle this long, or this long after a
# burst of creates began: a write per create (a temporary file and a rename) cost a third of the
# plugin's own time per create, on the CPU the runtime's create shares.
STATE_DELAY = 0.25
STATE_NAMES = {0: "unknown", 1: "created", 2: "paused", 3: "running", 4: "stopped"}


class Stream(Protocol):
    """Where log lines go besides the log file (stderr)."""

    def write(self, text: str) -> int: ...

    def flush(self) -> None: ...


class Options:
    """What `nri run` was told: a socket path to dial, or an inherited connection's fd."""

    def __init__(
        self,
        socket_path: str = DEFAULT_NRI_SOCKET,
        name: str = DEFAULT_NAME,
        index: str = DEFAULT_INDEX,
        config_path: str = "/etc/container-hooks/config.toml",
        fd: Optional[int] = None,
        once: bool = False,
    ) -> None:
        self.socket_path = socket_path
        self.name = name
        self.index = index
        self.config_path = config_path
        self.fd = fd
        self.once = once

    @property
    def where(self) -> str:
        return f"inherited fd {self.fd}" if self.fd is not None else self.socket_path


class PluginLog(Levels):
    """Every line on stderr, and in the toolkit's log file when the config names one (the shim's
    file, [container-hooks-runtime] debug, at its log-level)."""

    def __init__(self, plan: HookPlan, stream: Optional[Stream] = None) -> None:
        self.plan = plan
        self.stream = stream

    def log(self, level: str, message: str, **fields: Any) -> None:
        fields = {"component": "nri", **fields}
        try:
            config, _ = self.plan.config()
            section = config["container-hooks-runtime"]
            threshold = LEVELS.get(section["log-level"], 20)
            LogFile(section["debug"], section["log-level"]).log(level, message, **fields)
        except Exception:  # logging never stops the plugin
            threshold = 20
        if LEVELS[level] >= threshold:
            try:
                stream = self.stream or sys.stderr
                stream.write(render(level, message, fields))
                stream.flush()
            except (OSError, ValueError):
                pass


class State:
    """The state file `ctk check` reads: ${CONTAINER_HOOKS_NRI_STATE_DIR:-/run/container-hooks/nri}/NAME.json."""

    def __init__(self, options: Options) -> None:
        self.path = os.path.join(default_state_dir(), f"{options.name}.json")
        self.options = options
        self.registered = False
        self.since = 0.0
        self.containers = 0
        self.dirty = False  # the count changed since the file was written

    def content(self) -> Dict[str, Any]:
        return {
            "pid": os.getpid(),
            "socket": self.options.where,
            "name": self.options.name,
            "index": self.options.index,
            "registered": self.registered,
            "since": self.since,
            "version": __version__,
            "containers": self.containers,
        }

    def write(self) -> None:
        """Never fails the plugin: a state file that cannot be written only leaves `ctk check` guessing."""
        self.dirty = False
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
            data = (json.dumps(self.content(), indent=2) + "\n").encode()
            write_atomically(self.path, data, mode=0o644, durable=False, follow_symlinks=False)
        except (OSError, ToolkitError, ValueError):
            pass

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Session:
    """One connection to the runtime: its multiplexed ttrpc messages in, the replies out."""

    def __init__(self, send: Callable[[bytes], None], options: Options, plan: HookPlan, log: PluginLog, state: State):
        self.send = send
        self.options = options
        self.plan = plan
        self.log = log
        self.state = state
        self.demux = ttrpc.Demux()
        self.registered = False
        self.rejected: Optional[str] = None
        self.shutdown = False
        self.runtime = ""
        self._sync: Tuple[List[Dict[str, Any]], List[Dict[str, Any]]] = ([], [])
        self.logged_after_reply: List[Callable[[], None]] = []  # a create's log lines, written once it is answered

    def start(self) -> None:
        request = ttrpc.encode_request(
            api.RUNTIME_SERVICE, "RegisterPlugin", api.encode_register_plugin(self.options.name, self.options.index)
        )
        self.send(ttrpc.frame_message(ttrpc.RUNTIME_CONN, REGISTER_STREAM, ttrpc.REQUEST, request))

    def received(self, data: bytes) -> None:
        for message in self.demux.feed(data):
            self.handle(message)

    def handle(self, message: ttrpc.Message) -> None:
        if message.conn_id == ttrpc.PLUGIN_CONN and message.kind == ttrpc.REQUEST:
            reply = self.serve(message.payload)
            self.send(ttrpc.frame_message(ttrpc.PLUGIN_CONN, message.stream_id, ttrpc.RESPONSE, reply))
            while self.logged_after_reply:  # the runtime's create goes on meanwhile
                self.logged_after_reply.pop(0)()
        elif message.conn_id == ttrpc.RUNTIME_CONN and message.kind == ttrpc.RESPONSE:
            if message.stream_id != REGISTER_STREAM:
                return
            code, text, _ = ttrpc.decode_response(message.payload)
            if code != ttrpc.OK:
                self.rejected = f"the runtime refused the registration: {text or f'status {code}'}"
                return
            self.registered = True
            self.state.registered = True
            self.state.since = time.time()
            self.state.write()
            self.log.info(
                "registered",
                name=self.options.name,
                index=self.options.index,
                socket=self.options.where,
            )
        else:
            self.log.debug(f"ignored a ttrpc {ttrpc.describe(message.kind)} on conn {message.conn_id}")

    def serve(self, payload: bytes) -> bytes:
        """The ttrpc Response to one request of the runtime."""
        try:
            service, method, body, _ = ttrpc.decode_request(payload)
        except wire.WireError as exc:
            return ttrpc.encode_response(b"", ttrpc.INTERNAL, f"bad ttrpc request: {exc}")
        if service != api.PLUGIN_SERVICE:
            return ttrpc.encode_response(b"", ttrpc.UNIMPLEMENTED, f"service {service} not served")
        try:
            if method == "Configure":
                return ttrpc.encode_response(self.configure(body))
            if method == "Synchronize":
                return ttrpc.encode_response(self.synchronize(body))
            if method == "CreateContainer":
                return ttrpc.encode_response(self.create_container(body))
            if method == "Shutdown":
                self.shutdown = True
                self.log.info("the runtime is shutting down")
            return ttrpc.encode_response(b"")  # every other call: an empty reply, nothing adjusted
        except ToolkitError as exc:
            return ttrpc.encode_response(b"", ttrpc.UNKNOWN, f"{api.PLUGIN_NAME_PREFIX}{exc}")
        except Exception as exc:
            message = f"{method} failed inside the plugin: {unexpected(exc)}"
            self.log.error(message)
            return ttrpc.encode_response(b"", ttrpc.INTERNAL, f"{api.PLUGIN_NAME_PREFIX}{message}")

    def configure(self, body: bytes) -> bytes:
        request = api.decode_configure(body)
        self.runtime = f"{request['runtime_name']} {request['runtime_version']}".strip()
        return api.encode_configure_response(api.event_mask(api.CREATE_CONTAINER))

    def synchronize(self, body: bytes) -> bytes:
        pods, containers, more = api.decode_synchronize(body)
        self._sync[0].extend(pods)
        self._sync[1].extend(containers)
        if not more:
            pods, containers = self._sync
            self._sync = ([], [])
            try:
                self.report_gaps(pods, containers)
            except Exception as exc:  # a failed Synchronize would cost the registration: the report is best effort
                self.log.error(f"cannot check the existing containers: {unexpected(exc)}")
        return api.encode_synchronize_response(more)

    def report_gaps(self, pods: List[Dict[str, Any]], containers: List[Dict[str, Any]]) -> None:
        """Log each existing container that lacks hooks it would get now: created while the plugin was away
        (or before a hook file was added)."""
        by_id = {pod["id"]: pod for pod in pods}
        missing = 0
        for container in containers:
            pod = by_id.get(container["pod_sandbox_id"], {})
            try:
                decision = self.plan.decide(pod, container, lambda line: None)
            except ToolkitError as exc:
                self.log.warning(f"cannot check the existing containers: {exc}")
                return
            if decision.added:
                missing += 1
                self.log.warning(
                    f"created while the plugin was away: missing {len(decision.added)} hook(s): {decision.described()}",
                    **self.who(pod, container),
                    state=STATE_NAMES.get(container["state"], str(container["state"])),
                )
        self.log.info(
            f"synchronized: {len(containers)} container(s), {missing} missing hooks",
            pods=len(pods),
            runtime=self.runtime or "?",
        )

    @staticmethod
    def who(pod: Dict[str, Any], container: Dict[str, Any]) -> Dict[str, str]:
        return {
            "id": container.get("id", ""),
            "container": container.get("name", ""),
            "pod": f"{pod.get('namespace', '')}/{pod.get('name', '')}",
        }

    def create_container(self, body: bytes) -> bytes:
        pod, container = api.decode_create_container(body)
        who = self.who(pod, container)
        try:
            decision = self.plan.decide(pod, container, lambda line: self.log.warning(line, **who))
        except ToolkitError as exc:
            self.log.error(f"create failed: {exc}", **who)
            raise
        self.state.containers += 1
        self.state.dirty = True  # written by Plugin.serve's loop, STATE_DELAY after the first unwritten create

        def log_decision() -> None:
            for refused in decision.refused:
                self.log.warning(f"not delivered: {refused}: NRI cannot run precreate hooks (the shim can)", **who)
            added = decision.added
            self.log.info(f"injected {len(added)} hook(s)" + (f": {decision.described()}" if added else ""), **who)

        self.logged_after_reply.append(log_decision)
        return api.encode_create_container_response(decision.pairs())


class Stop(Exception):
    """SIGTERM or SIGINT arrived."""


class Plugin:
    """`nri run`: connect (or take the inherited connection), register, serve; reconnect, or end with it."""

    def __init__(self, options: Options, stream: Optional[Stream] = None) -> None:
        self.options = options
        self.plan = HookPlan(options.config_path)
        self.log = PluginLog(self.plan, stream)
        self.state = State(options)
        self.stopping = False
        self.session_registered = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def stop(self) -> None:
        """Ask the loop to end (a signal handler's work; safe from another thread)."""
        self.stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def install_signals(self) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: self.stop())

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or until stopped; raise Stop when stopped."""
        if not self.stopping:
            select.select([self._wake_r], [], [], seconds)
        if self.stopping:
            raise Stop

    def run(self) -> int:
        """The exit status: 0 after a signal, or when an inherited connection ends; 1 when it could not be served."""
        try:
            return self._run()
        except Stop:
            self.log.info("stopping", name=self.options.name)
            return 0
        finally:
            self.state.remove()
            self._wake_r.close()
            self._wake_w.close()

    def _run(self) -> int:
        config, error = self.plan.config()
        if error is not None:
            self.log.warning(f"the toolkit config is unusable, every create will fail until it is fixed: {error}")
        self.check_precreate()
        if self.options.fd is not None:
            try:
                conn = socket.socket(fileno=self.options.fd)
            except OSError as exc:
                self.log.error(f"cannot use the inherited connection (fd {self.options.fd}): {exc.strerror}")
                return 1
            conn.set_inheritable(False)
            reason = self.serve(conn)
            self.log.info(f"connection ended ({reason}); a pre-registered plugin exits, the runtime starts it again")
            return 0 if self.state.since else 1
        attempt = 0
        waiting: Optional[str] = None
        while True:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.connect(self.options.socket_path)
            except OSError as exc:
                conn.close()
                problem = f"cannot connect to {self.options.socket_path}: {exc.strerror}"
                if self.options.once:
                    self.log.error(problem)
                    return 1
                if problem != waiting:
                    self.log.warning(f"{problem}; retrying until it can")
                    waiting = problem
                self.wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            waiting = None
            reason = self.serve(conn)
            if self.session_registered:
                attempt = 0
            if self.options.once:
                self.log.info(f"connection ended ({reason})")
                return 0 if self.state.since else 1
            self.log.warning(f"connection ended ({reason}); reconnecting to {self.options.socket_path}")
            self.wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1

    def check_precreate(self) -> None:
        """One line per precreate hook configured: NRI cannot deliver it (each container it applies to says so too)."""
        config, error = self.plan.config()
        if error is not None:
            return
        planned, _ = self.plan.planned(config)
        for entry in planned:
            if entry["stage"] == "precreate":
                self.log.warning(
                    f"{entry['source']}: precreate hook {entry['hook']['path']} is not delivered: "
                    "NRI cannot run precreate hooks (use the shim for it)"
                )

    def serve(self, conn: socket.socket) -> str:
        """Serve one connection until it ends; why it ended."""

        def send(data: bytes) -> None:
            conn.sendall(data)

        session = Session(send, self.options, self.plan, self.log, self.state)
        self.session_registered = False
        deadline = time.monotonic() + REGISTRATION_TIMEOUT
        flush_at: Optional[float] = None  # when the state file's count is written next
        try:
            session.start()
            while True:
                now = time.monotonic()
                if flush_at is not None and now >= flush_at:
                    self.state.write()
                    flush_at = None
                if self.state.dirty and flush_at is None:
                    flush_at = now + STATE_DELAY
                wake = [deadline] if not session.registered else []
                if flush_at is not None:
                    wake.append(flush_at)
                timeout = max(0.0, min(wake) - now) if wake else None
                readable, _, _ = select.select([conn, self._wake_r], [], [], timeout)
                if self.stopping:
                    raise Stop
                if conn in readable:
                    data = conn.recv(1 << 16)
                    if not data:
                        return "closed by the runtime"
                    session.received(data)
                    if session.rejected:
                        self.log.error(session.rejected, socket=self.options.where)
                        return "registration refused"
                    if session.shutdown:
                        return "shutdown"
                elif not session.registered and time.monotonic() >= deadline:
                    self.log.error(f"no reply to RegisterPlugin within {REGISTRATION_TIMEOUT:g} s")
                    return "registration timed out"
        except (ttrpc.ProtocolError, wire.WireError) as exc:
            self.log.error(f"protocol error: {exc}", socket=self.options.where)
            return "protocol error"
        except OSError as exc:
            return f"connection error: {exc.strerror or exc}"
        finally:
            conn.close()
            self.session_registered = session.registered
            if self.state.registered or self.state.dirty:
                self.state.registered = False
                self.state.write()
