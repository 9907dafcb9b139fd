"""Protocol buffers' wire format, by hand: what the NRI plugin needs of it and no more.

A message decodes to {field number: [values]} (a varint or fixed field as an int, a
length-delimited one as bytes); fields of any wire type the caller does not know are
skipped, groups included. Every read is bounded: truncated input, a varint longer than
ten bytes or a message past MAX_MESSAGE is a WireError naming what was wrong and where.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple, Union

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
MAX_MESSAGE = 16 << 20  # ttrpc's own limit is 4 MiB; nothing larger is ever read
MAX_FIELD_NUMBER = (1 << 29) - 1
MAX_GROUP_DEPTH = 64

Value = Union[int, bytes]
Fields = Dict[int, List[Value]]


class WireError(ValueError):
    """Input that is not a protobuf message (truncated, oversized, malformed)."""


def encode_varint(value: int) -> bytes:
    """``value`` as a varint; a negative int64 as its 64-bit two's complement (ten bytes)."""
    if value < 0:
        value += 1 << 64
    if not 0 <= value < 1 << 64:
        raise WireError(f"varint out of range: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int) -> Tuple[int, int]:
    """(value, position after it) of the varint at ``pos``."""
    if pos < len(data) and data[pos] < 0x80:  # one byte: most tags, lengths and small numbers
        return data[pos], pos + 1
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise WireError(f"truncated varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >= 1 << 64:
                raise WireError(f"varint over 64 bits ending at byte {pos}")
            return result, pos
    raise WireError(f"varint longer than 10 bytes ending at byte {pos}")


def signed64(value: int) -> int:
    """An int64 field's value from its varint (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def key(number: int, wire_type: int) -> bytes:
    if not 1 <= number <= MAX_FIELD_NUMBER:
        raise WireError(f"field number out of range: {number}")
    return encode_varint(number << 3 | wire_type)


def field_varint(number: int, value: int) -> bytes:
    """A varint field; proto3 leaves a zero out."""
    return key(number, VARINT) + encode_varint(value) if value else b""


def field_bool(number: int, value: bool) -> bytes:
    return field_varint(number, 1 if value else 0)


def field_bytes(number: int, value: bytes, keep_empty: bool = False) -> bytes:
    """A length-delimited field (bytes, string, embedded message); empty ones left out unless kept
    (a present-but-empty embedded message, or an item of a repeated field)."""
    if not value and not keep_empty:
        return b""
    return key(number, LENGTH) + encode_varint(len(value)) + value


def field_string(number: int, value: str) -> bytes:
    return field_bytes(number, value.encode("utf-8"))


def repeated_string(number: int, values: Iterable[str]) -> bytes:
    return b"".join(field_bytes(number, value.encode("utf-8"), keep_empty=True) for value in values)


def field_map(number: int, values: Dict[str, str]) -> bytes:
    """A map<string, string>: one entry message {key = 1, value = 2} per item."""
    return b"".join(
        field_bytes(number, field_string(1, name) + field_string(2, value), keep_empty=True)
        for name, value in values.items()
    )


def decode(data: bytes) -> Fields:
    """Every field of the message ``data``, by number, in order; unknown wire types refused.

    Runs for every message of every CreateContainer (a container's maps and mounts are messages
    too): tags and lengths of one byte, nearly all of them, are read inline.
    """
    end = len(data)
    if end > MAX_MESSAGE:
        raise WireError(f"message of {end} bytes is over the limit of {MAX_MESSAGE}")
    fields: Fields = {}
    pos = 0
    groups: List[int] = []
    while pos < end:
        start = pos
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = decode_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} out of range at byte {start}")
        value: Value
        if wire_type == LENGTH:
            size, pos = (data[pos], pos + 1) if pos < end and data[pos] < 0x80 else decode_varint(data, pos)
            if pos + size > end:
                raise WireError(f"field {number} at byte {start} claims {size} bytes, {end - pos} left")
            value = data[pos : pos + size]
            pos += size
        elif wire_type == VARINT:
            value, pos = decode_varint(data, pos)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if pos + size > end:
                raise WireError(f"truncated fixed{size * 8} field {number} at byte {start}")
            value = int.from_bytes(data[pos : pos + size], "little")
            pos += size
        elif wire_type == START_GROUP:  # proto2 groups: skipped with everything inside
            if len(groups) >= MAX_GROUP_DEPTH:
                raise WireError(f"groups nested deeper than {MAX_GROUP_DEPTH} at byte {start}")
            groups.append(number)
            continue
        elif wire_type == END_GROUP:
            if not groups or groups.pop() != number:
                raise WireError(f"unmatched end of group {number} at byte {start}")
            continue
        else:
            raise WireError(f"unknown wire type {wire_type} at byte {start}")
        if not groups:
            values = fields.get(number)
            if values is None:
                fields[number] = [value]
            else:
                values.append(value)
    if groups:
        raise WireError(f"truncated group {groups[-1]}")
    return fields


def last_int(fields: Fields, number: int) -> int:
    """A scalar varint field (the last one wins, as in protobuf); 0 when absent."""
    values = fields.get(number)
    if not values:
        return 0
    value = values[-1]
    if not isinstance(value, int):
        raise WireError(f"field {number} is length-delimited where a number belongs")
    return value


def all_bytes(fields: Fields, number: int) -> List[bytes]:
    """The values of a repeated length-delimited field (strings, messages)."""
    result = []
    for value in fields.get(number, ()):
        if not isinstance(value, bytes):
            raise WireError(f"field {number} is a number where bytes belong")
        result.append(value)
    return result


def last_bytes(fields: Fields, number: int) -> bytes:
    values = fields.get(number)
    if not values:
        return b""
    if not all(isinstance(value, bytes) for value in values):
        raise WireError(f"field {number} is a number where bytes belong")
    value = values[-1]
    assert isinstance(value, bytes)
    return value


def text(value: bytes, number: int) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"field {number} is not UTF-8 (byte {exc.start})") from None


def last_string(fields: Fields, number: int) -> str:
    return text(last_bytes(fields, number), number)


def all_strings(fields: Fields, number: int) -> List[str]:
    return [text(value, number) for value in all_bytes(fields, number)]


def string_map(fields: Fields, number: int) -> Dict[str, str]:
    """A map<string, string> field; a later entry for a key wins, as in protobuf."""
    result: Dict[str, str] = {}
    for entry in all_bytes(fields, number):
        # The usual entry, {1: key, 2: value} each shorter than 128 bytes, read in place; any other
        # (a longer string, fields in another order or repeated, unknown ones) by decode.
        size = len(entry)
        if size >= 4 and entry[0] == 0x0A and entry[1] < 0x80:
            split = 2 + entry[1]
            if (
                split + 2 <= size
                and entry[split] == 0x12
                and entry[split + 1] < 0x80
                and split + 2 + entry[split + 1] == size
            ):
                result[text(entry[2:split], 1)] = text(entry[split + 2 :], 2)
                continue
        inner = decode(entry)
        result[last_string(inner, 1)] = last_string(inner, 2)
    return result
