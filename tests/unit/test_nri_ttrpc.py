"""chts.nri.ttrpc: NRI's multiplexer frames and ttrpc messages, checked against protoc's classes
for Request/Response and against the framing facts of the Go sources."""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nri_proto import compile_proto

from chts.nri import ttrpc
from chts.nri.ttrpc import Demux, ProtocolError


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return compile_proto(tmp_path_factory.mktemp("nri-proto"))


def frames(data: bytes) -> List[Tuple[int, bytes]]:
    """(conn id, payload) of each frame in ``data``, read by the Go layout: u32 BE conn id, u32 BE length."""
    result = []
    while data:
        conn, size = struct.unpack(">II", data[:8])
        result.append((conn, data[8 : 8 + size]))
        data = data[8 + size :]
    return result


def test_a_message_is_split_into_frames_of_at_most_4096_bytes() -> None:
    payload = bytes(range(256)) * 40  # 10240 bytes
    data = ttrpc.frame_message(ttrpc.PLUGIN_CONN, 7, ttrpc.RESPONSE, payload)
    split = frames(data)
    assert [len(chunk) for _, chunk in split] == [4096, 4096, 2058]
    assert {conn for conn, _ in split} == {1}
    whole = b"".join(chunk for _, chunk in split)
    assert struct.unpack(">IIBB", whole[:10]) == (10240, 7, 2, 0) and whole[10:] == payload


def test_an_empty_message_is_one_frame_of_its_header() -> None:
    assert frames(ttrpc.frame_message(2, 1, ttrpc.REQUEST, b"")) == [(2, b"\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00")]


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=9000)), max_size=6), st.integers(1, 5000))
def test_interleaved_connections_and_any_chunking_reassemble(messages: List[Tuple[int, bytes]], cut: int) -> None:
    """Frames of both connections interleaved, the byte stream fed in pieces of any size."""
    per_conn: Dict[int, List[bytes]] = {1: [], 2: []}
    stream = b""
    pending: List[Tuple[int, bytes]] = []
    for index, (conn, payload) in enumerate(messages):
        per_conn[conn].append(payload)
        pending.append((conn, ttrpc.ttrpc_message(index * 2 + 1, ttrpc.REQUEST, payload)))
    while pending:  # one frame of each message in turn (at most 100 bytes each)
        stream += b"".join(ttrpc.mux_frames(conn, data[:100]) for conn, data in pending)
        pending = [(conn, data[100:]) for conn, data in pending if data[100:]]
    demux = Demux()
    got = []
    for start in range(0, len(stream), cut):
        got.extend(demux.feed(stream[start : start + cut]))
    assert {conn: [m.payload for m in got if m.conn_id == conn] for conn in (1, 2)} == per_conn
    assert demux.pending() == 0


def test_oversized_and_reserved_frames_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="over"):
        Demux().feed(struct.pack(">II", 1, ttrpc.MAX_MUX_PAYLOAD + 1))
    with pytest.raises(ProtocolError, match="reserved conn 0"):
        Demux().feed(struct.pack(">II", 0, 1) + b"x")
    with pytest.raises(ProtocolError, match="ttrpc message of 4194305 bytes on conn 1"):
        Demux().feed(ttrpc.mux_frames(1, struct.pack(">IIBB", (4 << 20) + 1, 1, 1, 0)))
    with pytest.raises(ProtocolError):
        ttrpc.ttrpc_message(1, 1, b"x" * ((4 << 20) + 1))


def test_a_partial_frame_waits_for_the_rest() -> None:
    data = ttrpc.frame_message(1, 3, ttrpc.REQUEST, b"abc")
    demux = Demux()
    assert demux.feed(data[:5]) == [] and demux.feed(data[5:12]) == []
    (message,) = demux.feed(data[12:])
    assert (message.conn_id, message.stream_id, message.kind, message.payload) == (1, 3, 1, b"abc")


def test_request_and_response_match_protoc(pb: Any) -> None:
    ours = ttrpc.encode_request("svc", "Method", b"\x01\x02", timeout_nano=2_000_000_000)
    theirs = pb.Request.FromString(ours)
    assert (theirs.service, theirs.method, theirs.payload, theirs.timeout_nano) == (
        "svc",
        "Method",
        b"\x01\x02",
        2 * 10**9,
    )
    request = pb.Request(
        service="s", method="m", payload=b"p", timeout_nano=-5, metadata=[pb.KeyValue(key="k", value="v")]
    )
    assert ttrpc.decode_request(request.SerializeToString()) == ("s", "m", b"p", -5)
    failed = pb.Response.FromString(ttrpc.encode_response(b"", ttrpc.UNKNOWN, "it broke"))
    assert (failed.status.code, failed.status.message) == (2, "it broke")
    ok = pb.Response.FromString(ttrpc.encode_response(b"data"))
    assert not ok.HasField("status") and ok.payload == b"data"
    status = pb.Status(code=13, message="x")
    assert ttrpc.decode_response(pb.Response(status=status, payload=b"y").SerializeToString()) == (13, "x", b"y")
    assert ttrpc.decode_response(b"") == (0, "", b"")


def test_stream_ids_are_odd() -> None:
    ids = ttrpc.stream_ids()
    assert [next(ids) for _ in range(4)] == [1, 3, 5, 7]


def test_every_byte_of_the_conn_id_and_the_status_code_counts(pb: Any) -> None:
    (message,) = Demux().feed(ttrpc.mux_frames(0x01020304, ttrpc.ttrpc_message(0x05060708, ttrpc.DATA, b"")))
    assert (message.conn_id, message.stream_id, message.kind) == (0x01020304, 0x05060708, 3)
    assert ttrpc.describe(message.kind) == "data" and ttrpc.describe(9) == "type 9"
    negative = pb.Response(status=pb.Status(code=-2, message="m")).SerializeToString()
    assert ttrpc.decode_response(negative) == (-2, "m", b"")


def test_a_message_spread_over_frames_comes_out_whole_and_alone() -> None:
    """The runtime may cut a ttrpc message anywhere (its frames are at most 4096 bytes): nothing comes out
    until the last byte, then exactly that message; and two messages in one frame stay two."""
    payload = bytes(range(256)) + b"tail"
    message = ttrpc.ttrpc_message(5, ttrpc.REQUEST, payload)
    demux = Demux()
    got = []
    for start in range(0, len(message), 100):
        got.append(demux.feed(ttrpc.mux_frames(1, message[start : start + 100])))
    assert got[:-1] == [[], []] and [m.payload for m in got[-1]] == [payload]
    both = ttrpc.ttrpc_message(1, ttrpc.REQUEST, b"first") + ttrpc.ttrpc_message(3, ttrpc.REQUEST, b"second")
    assert [(m.stream_id, m.payload) for m in Demux().feed(ttrpc.mux_frames(2, both))] == [
        (1, b"first"),
        (3, b"second"),
    ]


def test_pending_counts_partial_frames_and_partial_messages() -> None:
    demux = Demux()
    partial_message = ttrpc.mux_frames(1, ttrpc.ttrpc_message(1, ttrpc.REQUEST, b"abcdef")[:7])
    partial_frame = ttrpc.mux_frames(2, b"xyz")[:10]
    assert demux.feed(partial_message + partial_frame) == []
    assert demux.pending() == 7 + 10


def test_the_length_limit_is_ttrpcs_4_mib_read_from_all_four_bytes() -> None:
    """containerd/ttrpc refuses a message over messageLengthMax (4 MiB) and takes one of exactly that."""
    demux = Demux()
    assert demux.feed(ttrpc.mux_frames(1, struct.pack(">IIBB", 4 << 20, 1, 1, 0))) == []
    assert demux.pending() == 10  # waiting for the payload
    with pytest.raises(ProtocolError, match="ttrpc message of 16777221 bytes"):
        Demux().feed(ttrpc.mux_frames(1, struct.pack(">IIBB", (1 << 24) + 5, 1, 1, 0) + b"12345"))


def test_status_codes_are_grpcs() -> None:
    """What Go's side reads in Status.code: google.golang.org/grpc/codes."""
    assert (ttrpc.OK, ttrpc.UNKNOWN, ttrpc.UNIMPLEMENTED, ttrpc.INTERNAL) == (0, 2, 12, 13)


def test_a_frame_of_the_go_multiplexers_largest_size_is_taken() -> None:
    demux = Demux()
    assert demux.feed(struct.pack(">II", 1, ttrpc.MAX_MUX_PAYLOAD)) == [] and demux.pending() == 8
