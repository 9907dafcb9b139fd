"""Minimal edits of a JSON document's text: add, replace or remove one object member, every other byte kept.

daemon.json is the user's file: re-serialising it would reflow inline arrays, respell numbers
(``1e3``), expand unicode escapes and change line endings. Here the text is scanned once for
where each member's key and value lie, and only the bytes of the member being changed are
written; a new member copies the separator, colon spacing and indentation of its neighbours.
The caller checks the result by parsing it (`json.loads` decides what is valid JSON; the
scanner assumes it).
"""

from __future__ import annotations

import json
import re
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from chts.errors import ToolkitError

WHITESPACE = " \t\r\n"
SCALAR_END = re.compile(r"[\s,\]}]")


class Member(NamedTuple):
    key: str
    key_start: int
    value: Span


class Span(NamedTuple):
    """Where a value lies in the text; for an object also its members (in the order written)."""

    start: int
    end: int
    members: Optional[List[Member]]


def skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in WHITESPACE:
        position += 1
    return position


def string_end(text: str, position: int) -> int:
    """The offset just past the string starting at ``position`` (its opening quote)."""
    position += 1
    while text[position] != '"':
        position += 2 if text[position] == "\\" else 1
    return position + 1


def scan_value(text: str, position: int) -> Span:
    position = skip_space(text, position)
    first = text[position]
    if first == '"':
        return Span(position, string_end(text, position), None)
    if first == "[":
        cursor = skip_space(text, position + 1)
        while text[cursor] != "]":
            cursor = skip_space(text, scan_value(text, cursor).end)
            if text[cursor] == ",":
                cursor += 1
            cursor = skip_space(text, cursor)
        return Span(position, cursor + 1, None)
    if first == "{":
        members: List[Member] = []
        cursor = skip_space(text, position + 1)
        while text[cursor] != "}":
            key_end = string_end(text, cursor)
            colon = skip_space(text, key_end)
            value = scan_value(text, colon + 1)
            members.append(Member(json.loads(text[cursor:key_end]), cursor, value))
            cursor = skip_space(text, value.end)
            if text[cursor] == ",":
                cursor = skip_space(text, cursor + 1)
        return Span(position, cursor + 1, members)
    match = SCALAR_END.search(text, position)
    return Span(position, match.start() if match else len(text), None)


def document_span(text: str) -> Span:
    """The top-level value of a document json.loads accepted (a UTF-8 BOM before it is kept as it is)."""
    return scan_value(text, 1 if text.startswith("\ufeff") else 0)


def member_at(text: str, keys: Sequence[str], path: str) -> Tuple[Span, Optional[Member]]:
    """The object holding ``keys[-1]`` and that member (None when absent); every object on the way must exist."""
    node = document_span(text)
    member: Optional[Member] = None
    for depth, key in enumerate(keys):
        if node.members is None:
            raise ToolkitError(f"{path}: {'.'.join(keys[:depth])} must be an object")
        found = [m for m in node.members if m.key == key]
        if len(found) > 1:
            raise ToolkitError(f"{path}: {'.'.join(keys[: depth + 1])} appears {len(found)} times; fix it by hand")
        member = found[0] if found else None
        if depth < len(keys) - 1:
            if member is None:
                raise ToolkitError(f"{path}: no {'.'.join(keys[: depth + 1])}")
            node = member.value
    return node, member


class Layout(NamedTuple):
    """How the user writes an object's members: what separates them, the colon, one level of indent, newline."""

    separator: str  # after the comma (or the opening brace), before a key: "\n    ", " " or ""
    colon: str  # from the end of a key to the start of its value: ": " or ":"
    indent_unit: str
    newline: str


def layout_of(text: str, node: Span) -> Layout:
    """The layout of ``node``'s members, else of the document's first object with members, else two spaces."""
    first_break = text.find("\n")
    newline = "\r\n" if first_break > 0 and text[first_break - 1] == "\r" else "\n"
    candidates = [node] if node.members else []
    candidates.append(document_span(text))
    for candidate in candidates:
        if not candidate.members:
            continue
        first = candidate.members[0]
        separator = text[candidate.start + 1 : first.key_start]
        colon = text[string_end(text, first.key_start) : first.value.start]
        closing = text[text.rfind("\n", 0, candidate.end - 1) + 1 : candidate.end - 1]
        inner = separator[separator.rfind("\n") + 1 :]
        unit = inner[len(closing) :] if "\n" in separator and inner.startswith(closing) else "  "
        if "\n" in separator:
            newline = "\r\n" if "\r\n" in separator else "\n"
        if candidate is not node:  # only the style is borrowed: the indent must be this node's
            separator = newline + line_indent(text, node.start) + unit if "\n" in separator else separator
        return Layout(separator, colon, unit or "  ", newline)
    if "\n" in text[node.start + 1 : node.end - 1]:  # "{\n}": the user wants members on lines of their own
        return Layout(newline + line_indent(text, node.start) + "  ", ": ", "  ", newline)
    return Layout("", ": ", "  ", newline)


def line_indent(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    match = re.match(r"[ \t]*", text[line_start:])
    return match.group(0) if match else ""


def render(value: Any, layout: Layout, indent: str) -> str:
    """``value`` as JSON in the user's layout: objects across lines when their file is indented, arrays inline."""
    if isinstance(value, dict) and value and "\n" in layout.separator:
        inner = indent + layout.indent_unit
        items = [f"{json.dumps(k)}{layout.colon}{render(v, layout, inner)}" for k, v in value.items()]
        return "{" + "".join(f"{layout.newline}{inner}{item}," for item in items)[:-1] + f"{layout.newline}{indent}}}"
    if isinstance(value, dict):
        comma = ", " if " " in layout.colon else ","
        return (
            "{"
            + comma.join(f"{json.dumps(k)}{layout.colon}{render(v, layout, indent)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        comma = ", " if " " in layout.colon else ","
        return "[" + comma.join(render(item, layout, indent) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def add_member(text: str, keys: Sequence[str], value: Any, path: str) -> Tuple[str, Optional[str]]:
    """Add ``keys[-1]: value`` as the last member of its object; returns the new text and, when that
    object was empty, its original inside (so `remove_member` can give back exactly those bytes)."""
    node, member = member_at(text, keys, path)
    if member is not None:
        raise ToolkitError(f"{path}: {'.'.join(keys)} is already there")
    assert node.members is not None
    layout = layout_of(text, node)
    if node.members:
        last = node.members[-1]
        indent = line_indent(text, last.key_start) if "\n" in layout.separator else ""
        new = f",{layout.separator}{json.dumps(keys[-1])}{layout.colon}{render(value, layout, indent)}"
        return text[: last.value.end] + new + text[last.value.end :], None
    inside = text[node.start + 1 : node.end - 1]
    indent = line_indent(text, node.start)
    if "\n" in layout.separator:
        member_indent = indent + layout.indent_unit
        rendered = render(value, layout, member_indent)
        new = f"{layout.newline}{member_indent}{json.dumps(keys[-1])}{layout.colon}{rendered}{layout.newline}{indent}"
    else:
        new = f"{layout.separator}{json.dumps(keys[-1])}{layout.colon}{render(value, layout, indent)}{layout.separator}"
    return text[: node.start + 1] + new + text[node.end - 1 :], inside


def replace_value(text: str, keys: Sequence[str], raw: str, path: str) -> Tuple[str, str]:
    """Replace the value of ``keys`` with the JSON text ``raw``; returns the new text and the old value's text."""
    _, member = member_at(text, keys, path)
    if member is None:
        raise ToolkitError(f"{path}: no {'.'.join(keys)}")
    old = text[member.value.start : member.value.end]
    return text[: member.value.start] + raw + text[member.value.end :], old


def remove_member(text: str, keys: Sequence[str], path: str, inside: Optional[str] = None) -> str:
    """Remove ``keys`` and the separator before it; a last member leaves ``inside`` (default: nothing) in its braces."""
    node, member = member_at(text, keys, path)
    if member is None:
        return text
    assert node.members is not None
    index = node.members.index(member)
    if len(node.members) == 1:
        return text[: node.start + 1] + (inside or "") + text[node.end - 1 :]
    if index > 0:
        return text[: node.members[index - 1].value.end] + text[member.value.end :]
    return text[: member.key_start] + text[node.members[1].key_start :]


def value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
