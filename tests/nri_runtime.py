"""A fake NRI runtime for the tests: the runtime's side of the multiplexed ttrpc connection.

Written from the Go sources' facts (containerd/nri pkg/net/multiplex, containerd/ttrpc), with
its own framing code, and the messages of tests/nri_proto.py (protoc's classes): nothing of
chts/nri is used to talk to chts/nri. It records every frame the plugin wrote.
"""

from __future__ import annotations

import select
import socket
import struct
from typing import Any, Dict, List, Optional, Tuple

PLUGIN_CONN, RUNTIME_CONN = 1, 2  # multiplex.PluginServiceConn, multiplex.RuntimeServiceConn
REQUEST, RESPONSE = 1, 2
PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"
GO_MAX_FRAME = 10 + (4 << 20)  # what the Go multiplexer writes at most in one frame


class CallFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"status {code}: {message}")
        self.code = code
        self.message = message


class Closed(Exception):
    """The plugin closed the connection."""


class FakeRuntime:
    def __init__(self, sock: socket.socket, pb: Any, frame_limit: int = GO_MAX_FRAME) -> None:
        self.sock = sock
        self.pb = pb
        self.frame_limit = frame_limit  # how the runtime splits what it sends
        self.trunk = b""
        self.streams: Dict[int, bytes] = {}
        self.queue: List[Tuple[int, int, int, bytes]] = []
        self.frames: List[Tuple[int, int]] = []  # (conn id, payload size) of every frame the plugin wrote
        self.next_stream = 1
        self.register: Optional[Tuple[int, Any]] = None

    # ------------------------------------------------------------------ framing
    def send(self, conn: int, stream: int, kind: int, payload: bytes) -> None:
        message = struct.pack(">IIBB", len(payload), stream, kind, 0) + payload
        out = b""
        for start in range(0, len(message), self.frame_limit):
            chunk = message[start : start + self.frame_limit]
            out += struct.pack(">II", conn, len(chunk)) + chunk
        self.sock.sendall(out)

    def _messages(self) -> None:
        while len(self.trunk) >= 8:
            conn, size = struct.unpack(">II", self.trunk[:8])
            if len(self.trunk) < 8 + size:
                return
            self.frames.append((conn, size))
            buffer = self.streams.get(conn, b"") + self.trunk[8 : 8 + size]
            self.trunk = self.trunk[8 + size :]
            while len(buffer) >= 10:
                length, stream, kind, _ = struct.unpack(">IIBB", buffer[:10])
                if len(buffer) < 10 + length:
                    break
                self.queue.append((conn, stream, kind, buffer[10 : 10 + length]))
                buffer = buffer[10 + length :]
            self.streams[conn] = buffer

    def receive(self, timeout: float = 10.0) -> Tuple[int, int, int, bytes]:
        while not self.queue:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                raise TimeoutError("no message from the plugin")
            data = self.sock.recv(1 << 16)
            if not data:
                raise Closed
            self.trunk += data
            self._messages()
        return self.queue.pop(0)

    # ------------------------------------------------------------------ calls
    def call(self, method: str, request: Any, response_type: Any, timeout: float = 10.0) -> Any:
        stream = self.next_stream
        self.next_stream += 2
        wrapped = self.pb.Request(service=PLUGIN_SERVICE, method=method, payload=request.SerializeToString())
        self.send(PLUGIN_CONN, stream, REQUEST, wrapped.SerializeToString())
        held = []
        try:
            while True:
                conn, got, kind, payload = self.receive(timeout)
                if conn == PLUGIN_CONN and kind == RESPONSE and got == stream:
                    response = self.pb.Response.FromString(payload)
                    if response.status.code:
                        raise CallFailed(response.status.code, response.status.message)
                    return response_type.FromString(response.payload)
                held.append((conn, got, kind, payload))
        finally:
            self.queue[:0] = held

    def await_registration(self, timeout: float = 10.0) -> Any:
        """The plugin's RegisterPluginRequest (not answered yet)."""
        while True:
            conn, stream, kind, payload = self.receive(timeout)
            if conn == RUNTIME_CONN and kind == REQUEST:
                # containerd/ttrpc's server answers InvalidArgument, "StreamID must be odd for client
                # initiated streams", to an even stream id, and never runs the call.
                assert stream % 2 == 1, f"RegisterPlugin on the even stream {stream}"
                request = self.pb.Request.FromString(payload)
                assert (request.service, request.method) == (RUNTIME_SERVICE, "RegisterPlugin"), request
                register = self.pb.RegisterPluginRequest.FromString(request.payload)
                self.register = (stream, register)
                return register

    def accept_registration(self, code: int = 0, message: str = "") -> None:
        assert self.register is not None
        response = self.pb.Response(payload=self.pb.Empty().SerializeToString())
        if code:
            response = self.pb.Response(status=self.pb.Status(code=code, message=message))
        self.send(RUNTIME_CONN, self.register[0], RESPONSE, response.SerializeToString())

    def handshake(self, pods: Any = (), containers: Any = (), chunks: int = 1) -> Tuple[Any, Any]:
        """What containerd does with a new plugin: Configure, Synchronize (in ``chunks`` parts), then the
        reply to RegisterPlugin. (RegisterPluginRequest, ConfigureResponse)."""
        register = self.await_registration()
        configured = self.call(
            "Configure",
            self.pb.ConfigureRequest(runtime_name="fake-runtime", runtime_version="0.0", request_timeout=2000),
            self.pb.ConfigureResponse,
        )
        pods, containers = list(pods), list(containers)
        for part in range(chunks):
            request = self.pb.SynchronizeRequest(
                pods=pods[part::chunks], containers=containers[part::chunks], more=part < chunks - 1
            )
            reply = self.call("Synchronize", request, self.pb.SynchronizeResponse)
            assert reply.more == (part < chunks - 1)
        self.accept_registration()
        return register, configured

    def create(self, pod: Any, container: Any) -> Any:
        """The CreateContainerResponse; CallFailed when the plugin answers with an error."""
        request = self.pb.CreateContainerRequest(pod=pod, container=container)
        return self.call("CreateContainer", request, self.pb.CreateContainerResponse)


def hooks_of(pb: Any, adjustment_hooks: Any) -> Dict[str, List[Dict[str, Any]]]:
    """The Hooks message as an OCI hooks object."""
    result: Dict[str, List[Dict[str, Any]]] = {}
    for field, stage in (
        ("prestart", "prestart"),
        ("create_runtime", "createRuntime"),
        ("create_container", "createContainer"),
        ("start_container", "startContainer"),
        ("poststart", "poststart"),
        ("poststop", "poststop"),
    ):
        for hook in getattr(adjustment_hooks, field):
            item: Dict[str, Any] = {"path": hook.path}
            if hook.args:
                item["args"] = list(hook.args)
            if hook.env:
                item["env"] = list(hook.env)
            if hook.HasField("timeout"):
                item["timeout"] = hook.timeout.value
            result.setdefault(stage, []).append(item)
    return result
