"""ttrpc messages inside NRI's connection multiplexer, as bytes: no sockets here.

Facts from the Go sources (containerd/ttrpc channel.go, request.proto; containerd/nri
pkg/net/multiplex mux.go, ttrpc.go):
- a multiplexed frame is a header of conn id (u32, big endian) and payload length (u32, big
  endian), then the payload; conn 1 carries the plugin's ttrpc server (the runtime calls it),
  conn 2 the runtime's (the plugin calls RegisterPlugin there); conn 0 is reserved;
- a ttrpc message is a 10-byte header: length (u32 BE), stream id (u32 BE), type (u8: 1
  request, 2 response, 3 data), flags (u8), then that many bytes (at most 4 MiB); a client's
  stream ids are odd, counting up by two;
- Request{service = 1, method = 2, payload = 3, timeout_nano = 4, metadata = 5},
  Response{status = 1 (google.rpc.Status{code = 1, message = 2}), payload = 2}.
The runtime's side of the multiplexer hands each frame to a bufio.Reader of 4096 bytes as one
read: a bigger frame fails the read and the runtime drops the plugin. So no frame written here
carries more than MAX_FRAME_PAYLOAD bytes, and each ttrpc message starts a new frame.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

from chts.nri import wire

PLUGIN_CONN = 1  # multiplex.PluginServiceConn: the runtime's requests to the plugin
RUNTIME_CONN = 2  # multiplex.RuntimeServiceConn: the plugin's requests to the runtime
MUX_HEADER = 8
MAX_FRAME_PAYLOAD = 4096
MAX_MUX_PAYLOAD = 10 + (4 << 20)  # what the Go multiplexer itself writes at most

TTRPC_HEADER = 10
MAX_TTRPC_MESSAGE = 4 << 20
REQUEST, RESPONSE, DATA = 1, 2, 3

# google.golang.org/grpc/codes
OK, UNKNOWN, UNIMPLEMENTED, INTERNAL = 0, 2, 12, 13


class ProtocolError(ValueError):
    """The peer sent something that is not NRI's ttrpc over the multiplexer."""


def mux_frames(conn_id: int, data: bytes, limit: int = MAX_FRAME_PAYLOAD) -> bytes:
    """``data`` for connection ``conn_id``, in frames of at most ``limit`` payload bytes."""
    out = bytearray()
    for start in range(0, max(len(data), 1), limit):
        chunk = data[start : start + limit]
        out += conn_id.to_bytes(4, "big") + len(chunk).to_bytes(4, "big") + chunk
    return bytes(out)


def ttrpc_message(stream_id: int, kind: int, payload: bytes, flags: int = 0) -> bytes:
    if len(payload) > MAX_TTRPC_MESSAGE:
        raise ProtocolError(f"ttrpc message of {len(payload)} bytes is over the limit of {MAX_TTRPC_MESSAGE}")
    return len(payload).to_bytes(4, "big") + stream_id.to_bytes(4, "big") + bytes((kind, flags)) + payload


def frame_message(conn_id: int, stream_id: int, kind: int, payload: bytes) -> bytes:
    """One ttrpc message on connection ``conn_id``, split into frames the runtime can read."""
    return mux_frames(conn_id, ttrpc_message(stream_id, kind, payload))


class Message:
    """One ttrpc message received on one multiplexed connection."""

    __slots__ = ("conn_id", "kind", "payload", "stream_id")

    def __init__(self, conn_id: int, stream_id: int, kind: int, payload: bytes) -> None:
        self.conn_id = conn_id
        self.stream_id = stream_id
        self.kind = kind
        self.payload = payload

    def __repr__(self) -> str:
        return f"Message(conn={self.conn_id}, stream={self.stream_id}, kind={self.kind}, {len(self.payload)} bytes)"


class Demux:
    """Bytes from the socket in, complete ttrpc messages out, per multiplexed connection.

    A ttrpc message may span frames, and frames of different connections interleave.
    """

    def __init__(self) -> None:
        self._trunk = bytearray()
        self._streams: Dict[int, bytearray] = {}

    def feed(self, data: bytes) -> List[Message]:
        self._trunk += data
        messages: List[Message] = []
        while len(self._trunk) >= MUX_HEADER:
            conn_id = int.from_bytes(self._trunk[0:4], "big")
            size = int.from_bytes(self._trunk[4:8], "big")
            if size > MAX_MUX_PAYLOAD:
                raise ProtocolError(f"multiplexed frame of {size} bytes for conn {conn_id} is over {MAX_MUX_PAYLOAD}")
            if conn_id == 0:
                raise ProtocolError("multiplexed frame for the reserved conn 0")
            if len(self._trunk) < MUX_HEADER + size:
                break
            chunk = bytes(self._trunk[MUX_HEADER : MUX_HEADER + size])
            del self._trunk[: MUX_HEADER + size]
            buffer = self._streams.setdefault(conn_id, bytearray())
            buffer += chunk
            messages.extend(self._messages(conn_id, buffer))
        return messages

    @staticmethod
    def _messages(conn_id: int, buffer: bytearray) -> Iterator[Message]:
        while len(buffer) >= TTRPC_HEADER:
            length = int.from_bytes(buffer[0:4], "big")
            if length > MAX_TTRPC_MESSAGE:
                raise ProtocolError(f"ttrpc message of {length} bytes on conn {conn_id} is over {MAX_TTRPC_MESSAGE}")
            if len(buffer) < TTRPC_HEADER + length:
                return
            stream_id = int.from_bytes(buffer[4:8], "big")
            kind = buffer[8]
            payload = bytes(buffer[TTRPC_HEADER : TTRPC_HEADER + length])
            del buffer[: TTRPC_HEADER + length]
            yield Message(conn_id, stream_id, kind, payload)

    def pending(self) -> int:
        """Bytes received that are not a complete message yet."""
        return len(self._trunk) + sum(len(buffer) for buffer in self._streams.values())


def encode_request(service: str, method: str, payload: bytes, timeout_nano: int = 0) -> bytes:
    return (
        wire.field_string(1, service)
        + wire.field_string(2, method)
        + wire.field_bytes(3, payload)
        + wire.field_varint(4, timeout_nano)
    )


def decode_request(data: bytes) -> Tuple[str, str, bytes, int]:
    """(service, method, payload, timeout_nano); metadata is not needed."""
    fields = wire.decode(data)
    return (
        wire.last_string(fields, 1),
        wire.last_string(fields, 2),
        wire.last_bytes(fields, 3),
        wire.signed64(wire.last_int(fields, 4)),
    )


def encode_response(payload: bytes, code: int = OK, message: str = "") -> bytes:
    status = wire.field_varint(1, code) + wire.field_string(2, message)
    return wire.field_bytes(1, status, keep_empty=code != OK) + wire.field_bytes(2, payload)


def decode_response(data: bytes) -> Tuple[int, str, bytes]:
    """(status code, status message, payload)."""
    fields = wire.decode(data)
    status = wire.decode(wire.last_bytes(fields, 1))
    code = wire.last_int(status, 1)
    return wire.signed64(code), wire.last_string(status, 2), wire.last_bytes(fields, 2)


def stream_ids(first: int = 1) -> Iterator[int]:
    """A ttrpc client's stream ids: odd, counting up by two."""
    current = first
    while True:
        yield current
        current += 2


def describe(kind: Optional[int]) -> str:
    return {REQUEST: "request", RESPONSE: "response", DATA: "data"}.get(kind or 0, f"type {kind}")
