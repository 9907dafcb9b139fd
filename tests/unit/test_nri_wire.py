"""chts.nri.wire: varints, fields, maps, unknown fields of every wire type, bounded decoding."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chts.nri import wire
from chts.nri.wire import WireError


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_a_varint_round_trips(value: int) -> None:
    data = wire.encode_varint(value)
    assert wire.decode_varint(data, 0) == (value, len(data))
    assert len(data) <= 10


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_an_int64_round_trips_as_twos_complement(value: int) -> None:
    data = wire.encode_varint(value)
    assert wire.signed64(wire.decode_varint(data, 0)[0]) == value
    assert (len(data) == 10) == (value < 0)


def test_known_encodings() -> None:
    assert wire.encode_varint(0) == b"\x00"
    assert wire.encode_varint(300) == b"\xac\x02"
    assert wire.encode_varint(-1) == b"\xff" * 9 + b"\x01"
    assert wire.field_string(1, "hi") == b"\x0a\x02hi"
    assert wire.field_varint(2, 8) == b"\x10\x08"
    assert wire.field_varint(2, 0) == b"" and wire.field_string(1, "") == b""
    assert wire.field_bytes(1, b"", keep_empty=True) == b"\x0a\x00"
    assert wire.field_map(5, {"a": "b"}) == b"\x2a\x06\x0a\x01a\x12\x01b"


@given(
    st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=5),
    st.lists(st.text(max_size=30), max_size=5),
    st.integers(min_value=0, max_value=2**64 - 1),
)
def test_fields_round_trip(labels: Dict[str, str], items: List[str], number: int) -> None:
    data = wire.field_map(5, labels) + wire.repeated_string(7, items) + wire.field_varint(4, number)
    fields = wire.decode(data)
    assert wire.string_map(fields, 5) == labels
    assert wire.all_strings(fields, 7) == items
    assert wire.last_int(fields, 4) == number


UNKNOWN_OF_EVERY_TYPE = (
    wire.key(9, wire.VARINT)
    + wire.encode_varint(2**63)
    + wire.key(10, wire.FIXED64)
    + b"12345678"
    + wire.key(11, wire.LENGTH)
    + b"\x03abc"
    + wire.key(12, wire.START_GROUP)
    + wire.key(1, wire.VARINT)
    + b"\x01"
    + wire.key(13, wire.START_GROUP)  # a group in a group
    + wire.key(2, wire.LENGTH)
    + b"\x01z"
    + wire.key(13, wire.END_GROUP)
    + wire.key(12, wire.END_GROUP)
    + wire.key(14, wire.FIXED32)
    + b"1234"
)


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    data = wire.field_string(1, "id") + UNKNOWN_OF_EVERY_TYPE + wire.field_string(2, "name")
    fields = wire.decode(data)
    assert wire.last_string(fields, 1) == "id" and wire.last_string(fields, 2) == "name"
    assert 1 not in fields or fields[1] == [b"id"]  # nothing inside the groups leaks out
    assert fields[10] == [int.from_bytes(b"12345678", "little")] and fields[14] == [int.from_bytes(b"1234", "little")]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x0a\x05abc", "field 1 at byte 0 claims 5 bytes, 3 left"),
        (b"\x08", "truncated varint at byte 1"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes"),
        (b"\x08" + b"\xff" * 9 + b"\x7f", "varint over 64 bits"),
        (b"\x09abc", "truncated fixed64 field 1 at byte 0"),
        (b"\x0dab", "truncated fixed32 field 1 at byte 0"),
        (b"\x0e", "unknown wire type 6 at byte 0"),
        (b"\x0f", "unknown wire type 7 at byte 0"),
        (b"\x00", "field number 0 out of range at byte 0"),
        (b"\x0b", "truncated group 1"),
        (b"\x0c", "unmatched end of group 1 at byte 0"),
        (b"\x0b\x14", "unmatched end of group 2 at byte 1"),
        (b"\x0a", "truncated varint at byte 1"),  # a length-delimited field's size missing
        (b"\x0a\x80", "truncated varint at byte 2"),
        (b"\x0a\xc8\x01" + b"x" * 199, "field 1 at byte 0 claims 200 bytes, 199 left"),
    ],
)
def test_malformed_input_is_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message.replace("(", r"\(")):
        wire.decode(data)


def test_deeply_nested_groups_and_oversized_messages_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WireError, match="groups nested deeper than 64"):
        wire.decode(b"\x0b" * 65)
    monkeypatch.setattr(wire, "MAX_MESSAGE", 10)
    with pytest.raises(WireError, match="message of 11 bytes is over the limit of 10"):
        wire.decode(b"\x0a\x09" + b"x" * 9)


def test_a_field_of_the_wrong_kind_is_an_error() -> None:
    fields = wire.decode(wire.field_varint(1, 5) + wire.field_string(2, "x"))
    with pytest.raises(WireError, match="field 1 is a number where bytes belong"):
        wire.last_string(fields, 1)
    with pytest.raises(WireError, match="field 2 is length-delimited where a number belongs"):
        wire.last_int(fields, 2)
    with pytest.raises(WireError, match="field 3 is not UTF-8"):
        wire.last_string(wire.decode(wire.field_bytes(3, b"\xff")), 3)


def test_the_last_value_of_a_scalar_and_of_a_map_key_wins() -> None:
    data = (
        wire.field_varint(1, 1)
        + wire.field_varint(1, 2)
        + wire.field_map(5, {"k": "a"})
        + wire.field_map(5, {"k": "b"})
    )
    fields = wire.decode(data)
    assert wire.last_int(fields, 1) == 2 and wire.string_map(fields, 5) == {"k": "b"}
    assert wire.last_int(fields, 9) == 0 and wire.last_string(fields, 9) == ""


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(WireError):
        wire.encode_varint(2**64)
    with pytest.raises(WireError):
        wire.key(0, wire.VARINT)
    with pytest.raises(WireError):
        wire.key(2**29, wire.VARINT)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_fail_with_wire_error(data: bytes) -> None:
    try:
        wire.decode(data)
    except WireError:
        pass


def test_boundaries() -> None:
    assert wire.signed64(2**63 - 1) == 2**63 - 1 and wire.signed64(2**63) == -(2**63) and wire.signed64(2**64 - 1) == -1
    # A fixed field that ends exactly at the end of the message.
    assert wire.decode(wire.key(3, wire.FIXED64) + b"\x01" + b"\x00" * 7) == {3: [1]}
    assert wire.decode(wire.key(3, wire.FIXED32) + b"\x02\x00\x00\x00") == {3: [2]}
    # Repeated where one value is expected: the last one counts, for strings and bytes as for numbers.
    fields = wire.decode(wire.field_string(1, "first") + wire.field_string(1, "last"))
    assert wire.last_string(fields, 1) == "last" and wire.last_bytes(fields, 1) == b"last"
    # The limit itself: 16 MiB.
    limit = 16 << 20
    assert limit == wire.MAX_MESSAGE
    with pytest.raises(WireError, match=f"message of {limit + 1} bytes"):
        wire.decode(bytes(limit + 1))


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from([1, 2, 3]), max_size=4),  # the fields of one entry, in any order
            st.text(max_size=150),
            st.text(max_size=150),
        ),
        max_size=5,
    )
)
def test_a_map_entry_reads_the_same_in_place_and_by_decode(entries: List[Any]) -> None:
    """string_map's in-place reading of the usual entry agrees with decoding it, for every layout."""
    data = b""
    for order, key, value in entries:
        parts = {1: wire.field_string(1, key), 2: wire.field_string(2, value), 3: wire.field_varint(3, 7)}
        data += wire.field_bytes(5, b"".join(parts[number] for number in order), keep_empty=True)
    fields = wire.decode(data)
    expected: Dict[str, str] = {}
    for entry in wire.all_bytes(fields, 5):
        inner = wire.decode(entry)
        expected[wire.last_string(inner, 1)] = wire.last_string(inner, 2)
    assert wire.string_map(fields, 5) == expected


def test_a_field_of_128_bytes_or_more_has_a_two_byte_size_and_decodes() -> None:
    """Sizes from 128 up take the varint path, not the one-byte fast path (a mount list, a long env)."""
    for size in (127, 128, 200, 16383, 16384):
        data = wire.field_string(1, "x" * size) + wire.field_varint(2, 7)
        fields = wire.decode(data)
        assert (wire.last_string(fields, 1), wire.last_int(fields, 2)) == ("x" * size, 7)


def test_a_field_number_over_15_has_a_two_byte_tag_and_decodes() -> None:
    """Tags of fields 16 and up take two bytes: read as one varint, not as the first byte alone."""
    data = wire.field_string(16, "sixteen") + wire.field_varint(2047, 5) + wire.field_string(1, "one")
    assert data[:2] == b"\x82\x01"
    fields = wire.decode(data)
    assert wire.last_string(fields, 16) == "sixteen" and wire.last_int(fields, 2047) == 5
    assert wire.last_string(fields, 1) == "one"
