"""Ask a running engine which runtime handlers it serves: one CRI `RuntimeService/Status` call, stdlib only.

The call is what kubelet makes: gRPC over HTTP/2 cleartext on the engine's unix socket, here written
out by hand (the connection preface, one HEADERS frame with literal HPACK fields, one DATA frame) since
the installer image holds nothing but Python. With ``verbose`` set, containerd answers with its CRI
config as JSON under the info key "config"; its ``containerd.runtimes`` are the handlers a
RuntimeClass can name. Only the parts of HTTP/2 this one call needs are here: response headers and
trailers are not decoded (an answer without a message is an error), and no frame beyond the answer
is awaited.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, Dict, List, Tuple

from chts.errors import ToolkitError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY, RST_STREAM = 0x0, 0x1, 0x4, 0x6, 0x7, 0x3
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
STATUS_PATH = "/runtime.v1.RuntimeService/Status"
MAX_ANSWER = 16 << 20
TIMEOUT = 30.0


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name: str, value: str) -> bytes:
    """A header field as an HPACK literal without indexing, new name, no Huffman (RFC 7541, 6.2.2)."""
    out = b"\x00"
    for text in (name.encode(), value.encode()):
        if len(text) >= 127:
            raise ValueError("header too long for this client")
        out += bytes([len(text)]) + text
    return out


def status_request() -> bytes:
    """The client's bytes: preface, settings, a large window, the request headers and one gRPC message."""
    headers = b"".join(
        hpack_literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", STATUS_PATH),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        )
    )
    message = b"\x08\x01"  # StatusRequest{verbose: true}
    grpc = b"\x00" + struct.pack(">I", len(message)) + message
    window = struct.pack(">I", 1 << 24)
    return (
        PREFACE
        + frame(SETTINGS, 0, 0, b"")
        + frame(0x8, 0, 0, window)  # WINDOW_UPDATE for the connection: the verbose answer can be large
        + frame(HEADERS, END_HEADERS, 1, headers)
        + frame(0x8, 0, 1, window)
        + frame(DATA, END_STREAM, 1, grpc)
    )


def read_exactly(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        if not chunk:
            raise ToolkitError("the engine closed the connection in the middle of its answer")
        data += chunk
    return data


def connect_unix(path: str, timeout: float = TIMEOUT) -> socket.socket:
    """A connection to the unix socket ``path``, however long (a socket address holds 107 bytes: the
    connection goes through /proc/self/fd of its directory); OSError when nothing accepts."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    directory, name = os.path.split(path)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            client.connect(f"/proc/self/fd/{fd}/{name}")
        finally:
            os.close(fd)
    except OSError:
        client.close()
        raise
    return client


def exchange(path: str) -> bytes:
    """The gRPC message bytes of one Status call on the unix socket ``path``."""
    client = connect_unix(path)
    try:
        client.sendall(status_request())
        body = b""
        while True:
            head = read_exactly(client, 9)
            length = int.from_bytes(head[:3], "big")
            kind, flags, stream = head[3], head[4], struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
            payload = read_exactly(client, length)
            if kind == SETTINGS and not flags & ACK:
                client.sendall(frame(SETTINGS, ACK, 0, b""))
            elif kind == PING and not flags & ACK:
                client.sendall(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                raise ToolkitError(f"the engine refused the CRI call (GOAWAY, error {payload[4:8].hex()})")
            elif kind == RST_STREAM and stream == 1:
                raise ToolkitError(f"the engine reset the CRI call (error {payload.hex()})")
            elif kind == DATA and stream == 1:
                body += payload
                if len(body) > MAX_ANSWER:
                    raise ToolkitError("the engine's CRI status answer is implausibly large")
            if stream == 1 and flags & END_STREAM and kind in (DATA, HEADERS):
                return body
    finally:
        client.close()


def varint(data: bytes, at: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> List[Tuple[int, bytes]]:
    """The length-delimited fields of a protobuf message (others skipped): what StatusResponse holds."""
    found, at = [], 0
    while at < len(data):
        key, at = varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == 0:
            _, at = varint(data, at)
        elif kind == 2:
            size, at = varint(data, at)
            found.append((number, data[at : at + size]))
            at += size
        elif kind in (1, 5):
            at += 8 if kind == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {kind}")
    return found


def status_info(path: str) -> Dict[str, str]:
    """The ``info`` map of a verbose CRI Status call on the engine's socket ``path``."""
    try:
        body = exchange(path)
    except OSError as exc:
        raise ToolkitError(f"{path}: CRI status call failed: {exc.strerror or exc}") from None
    if len(body) < 5:  # a gRPC error comes as trailers alone (HPACK-coded: not read here)
        raise ToolkitError(f"{path}: the engine answered the CRI status call with an error, not a status")
    info = {}
    try:
        for number, value in fields(body[5:]):
            if number == 2:  # map<string, string> info: entries of key (1), value (2)
                entry = dict(fields(value))
                info[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ToolkitError(f"{path}: CRI status answer unreadable: {exc}") from None
    return info


def served_containerd_config(path: str) -> Dict[str, Any]:
    """The ``containerd`` part of the CRI config the running engine reports: its ``runtimes`` (handler name
    -> settings) and ``defaultRuntimeName``."""
    config = status_info(path).get("config")
    if config is None:
        raise ToolkitError(f"{path}: the engine's CRI status has no config to read runtime handlers from")
    try:
        containerd = json.loads(config).get("containerd", {})
    except (ValueError, AttributeError):
        raise ToolkitError(f"{path}: the engine's CRI config is not the JSON expected") from None
    return containerd if isinstance(containerd, dict) else {}
