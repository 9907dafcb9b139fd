"""The stdlib CRI status client against a scripted HTTP/2 peer on a unix socket (real containerd: integration)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

import pytest

from chts.errors import ToolkitError
from chts.node.cri_status import (
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    fields,
    frame,
    hpack_literal,
    served_containerd_config,
    status_info,
)


def proto_string(number: int, value: bytes) -> bytes:
    assert len(value) < 128 * 128
    size = bytes([len(value)]) if len(value) < 128 else bytes([(len(value) & 0x7F) | 0x80, len(value) >> 7])
    return bytes([number << 3 | 2]) + size + value


def status_response(info: dict) -> bytes:  # type: ignore[type-arg]
    """StatusResponse{status: {}, info: info} as a gRPC message."""
    message = proto_string(1, b"")
    for key, value in info.items():
        message += proto_string(2, proto_string(1, key.encode()) + proto_string(2, value.encode()))
    return b"\x00" + struct.pack(">I", len(message)) + message


@contextmanager
def serve(path: Path, answer: List[bytes]) -> Iterator[List[bytes]]:
    """A peer that reads the client's preface and frames until its END_STREAM, then sends ``answer``."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    received: List[bytes] = []

    def run() -> None:
        connection, _ = server.accept()
        with connection:
            data = b""
            while not data.startswith(PREFACE) or not ended(data[len(PREFACE) :]):
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            received.append(data)
            connection.sendall(frame(SETTINGS, 0, 0, b"") + b"".join(answer))
            connection.recv(65536)  # the client's SETTINGS ack, or its close

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield received
    thread.join(10)
    server.close()


def ended(frames: bytes) -> bool:
    while len(frames) >= 9:
        length, kind, flags = int.from_bytes(frames[:3], "big"), frames[3], frames[4]
        if kind == DATA and flags & END_STREAM:
            return True
        frames = frames[9 + length :]
    return False


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "cri.sock"


def test_handlers_from_a_verbose_status(sock: Path) -> None:
    config = {"containerd": {"runtimes": {"runc": {}, "container-hooks-runtime": {"options": {"BinaryName": "/x"}}}}}
    answer = [
        frame(HEADERS, END_HEADERS, 1, b"\x88"),  # :status 200, from the static table
        frame(DATA, 0, 1, status_response({"config": json.dumps(config), "golang": "go1.20"})),
        frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_literal("grpc-status", "0")),
    ]
    with serve(sock, answer) as received:
        assert served_containerd_config(str(sock))["runtimes"] == config["containerd"]["runtimes"]
    request = received[0]
    assert hpack_literal(":path", "/runtime.v1.RuntimeService/Status") in request
    assert request.endswith(frame(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x02\x08\x01"))  # verbose: true


def test_an_error_answer_is_one_line(sock: Path) -> None:
    trailers_only = [frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_literal("grpc-status", "12"))]
    with serve(sock, trailers_only), pytest.raises(ToolkitError, match="answered the CRI status call with an error"):
        status_info(str(sock))


def test_a_reset_stream_is_one_line(sock: Path) -> None:
    reset = [frame(RST_STREAM, 0, 1, b"\x00\x00\x00\x07")]
    with serve(sock, reset), pytest.raises(ToolkitError, match="reset the CRI call"):
        status_info(str(sock))


def test_no_engine_on_the_socket_is_one_line(sock: Path) -> None:
    with pytest.raises(ToolkitError, match="CRI status call failed"):
        status_info(str(sock))


def test_a_status_without_config_is_one_line(sock: Path) -> None:
    answer = [frame(DATA, END_STREAM, 1, status_response({"golang": "go1.20"}))]
    with serve(sock, answer), pytest.raises(ToolkitError, match="has no config to read runtime handlers from"):
        served_containerd_config(str(sock))


def test_protobuf_fields_skip_what_they_do_not_need() -> None:
    message = b"\x08\x96\x01" + proto_string(2, b"ab") + b"\x1d\x00\x00\x00\x00" + proto_string(4, b"c")
    assert fields(message) == [(2, b"ab"), (4, b"c")]
