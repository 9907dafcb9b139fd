"""Minimal, marked, verified edits of a user's TOML file, so their comments and layout survive.

tomli-w can only write a whole document, which would drop every comment. Instead the edits here
touch as few lines as possible and mark each one, which also makes the file its own record:

* a block appended at the end, between ``BLOCK_BEGIN`` and ``BLOCK_END`` lines;
* a key set inside an existing table: the line carries ``SET_MARK``; when it replaced a line,
  the old line is kept just above it as a ``WAS_PREFIX`` comment (the previous default runtime,
  recorded where the user can see it, and restored from there by `remove_marks`).

Every edit is checked by re-parsing: the result must equal the parsed original with exactly the
intended change, or the command refuses (and names the file) rather than write something else.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from chts.base.config_files import nested, parse_toml, read_config_text
from chts.base.file_edit import FileEdit, Plan
from chts.base.text_files import toml_decode_error, toml_loads
from chts.errors import ToolkitError

BLOCK_BEGIN = "# >>> container-hooks-toolkit: added by `container-hooks-ctk runtime configure`; unconfigure removes it"
BLOCK_END = "# <<< container-hooks-toolkit"
SET_MARK = "# container-hooks-toolkit: set by runtime configure"
WAS_PREFIX = "# container-hooks-toolkit was: "
# the last line of an edited file that had no final newline, so unconfigure gives its exact bytes back
NO_FINAL_NEWLINE = "# container-hooks-toolkit: the file had no final newline"

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """One-line TOML for the scalar and list values engines need (JSON strings are valid TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no one-line TOML for {type(value).__name__}")


class Statement:
    """One top-level TOML statement: lines[start:end] of the document, and what it means."""

    def __init__(self, start: int, end: int, parsed: Dict[str, Any], is_header: bool) -> None:
        self.start = start
        self.end = end
        self.parsed = parsed
        self.is_header = is_header

    def table(self) -> Optional[Tuple[str, ...]]:
        """The key path of a ``[table]`` header; None for ``[[array]]`` headers and for ``key = value``."""
        if not self.is_header:
            return None
        names: List[str] = []
        node: Any = self.parsed
        while isinstance(node, dict) and len(node) == 1:
            name, node = next(iter(node.items()))
            names.append(name)
        return tuple(names) if node == {} else None


def split_statements(lines: List[str]) -> List[Statement]:
    """Cut a valid TOML document into statements: each is the shortest run of lines that parses alone.

    Comments and blank lines belong to no statement; multi-line arrays and strings stay whole,
    so a ``[`` inside them is never mistaken for a table header.
    """
    statements = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        for end in range(index + 1, len(lines) + 1):
            try:
                parsed = toml_loads("".join(lines[index:end]))
            except toml_decode_error():
                continue
            statements.append(Statement(index, end, parsed, stripped.startswith("[")))
            index = end
            break
        else:
            raise ToolkitError("cannot split the file into TOML statements (is it valid TOML?)")
    return statements


def trailing_comment(lines: List[str], statement: Statement) -> str:
    """The ``# comment`` after a statement's value on its last line, if any (kept when the value changes)."""
    head = "".join(lines[statement.start : statement.end - 1])
    last = lines[statement.end - 1].rstrip("\r\n")
    position = last.find("#")
    while position >= 0:
        try:
            if toml_loads(head + last[:position]) == statement.parsed:
                return last[position:]
        except toml_decode_error():
            pass
        position = last.find("#", position + 1)
    return ""


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def newline_of(text: str) -> str:
    """The file's own line ending: lines we add match it (CRLF files stay CRLF)."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def table_statements(statements: List[Statement], table: Tuple[str, ...]) -> Optional[Tuple[int, List[Statement]]]:
    """The line after ``[table]``'s header (0 for the root table) and its key statements; None without a header."""
    current: Optional[Tuple[str, ...]] = ()
    start: Optional[int] = 0 if table == () else None
    keys: List[Statement] = []
    for statement in statements:
        if statement.is_header:
            current = statement.table()  # None inside [[arrays]]: never the table we look for
            if current == table and start is None:
                start = statement.end
            continue
        if current == table:
            keys.append(statement)
    return None if start is None else (start, keys)


def append_block(text: str, body: str) -> str:
    """``text`` with ``body`` appended between the block marks, in the file's line ending."""
    nl = newline_of(text)
    if text and not text.endswith("\n"):
        text += nl
    separator = nl if text else ""
    block = [BLOCK_BEGIN, *body.rstrip().split("\n"), BLOCK_END]
    return text + separator + "".join(line + nl for line in block)


def set_key(
    text: str, table: Tuple[str, ...], key: str, value: Any, record: bool = True, comment: Optional[str] = None
) -> str:
    """``table.key = value`` by touching as few lines as possible; ``()`` is the root table.

    ``record`` (engine configs): the new line carries ``SET_MARK`` and a replaced line stays above
    it as a ``WAS_PREFIX`` comment, so `remove_marks` undoes the change; a table without a header
    gets a marked block. Without ``record`` (the toolkit's own config): an equal value leaves the
    text as it is, a replaced value keeps its trailing comment, and ``comment`` goes above a new key.
    """
    nl = newline_of(text)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += nl  # a last line without a newline: what follows must start on a line of its own
    assignment = f"{toml_key(key)} = {toml_value(value)}"
    found = table_statements(split_statements(lines), table)
    if found is None:
        header = "[" + ".".join(toml_key(k) for k in table) + "]"
        if record:
            return append_block(text, f"{header}\n{assignment}\n")
        separator = [nl] if lines and lines[-1].strip() else []
        above = [f"# {comment}{nl}"] if comment else []
        return "".join(lines + separator + [f"{header}{nl}", *above, f"{assignment}{nl}"])
    start, statements = found
    for statement in statements:
        if list(statement.parsed) != [key]:
            continue
        first = lines[statement.start]
        indent = indent_of(first)
        if record:
            was = [WAS_PREFIX + line.rstrip("\r\n") + nl for line in lines[statement.start : statement.end]]
            new = [*was, f"{indent}{assignment}  {SET_MARK}{nl}"]
        elif statement.parsed[key] == value:
            return text  # same value: keep the line exactly as the user wrote it
        else:
            kept = trailing_comment(lines, statement)
            new = [f"{first[: first.index('=')].rstrip()} = {toml_value(value)}" + (f"  {kept}" if kept else "") + nl]
        return "".join(lines[: statement.start] + new + lines[statement.end :])
    indent = indent_of(lines[statements[0].start]) if statements else ""  # the table's own style
    position = statements[-1].end if statements else start
    if record:
        added = [f"{indent}{assignment}  {SET_MARK}{nl}"]
    else:
        added = ([f"{indent}# {comment}{nl}"] if comment else []) + [f"{indent}{assignment}{nl}"]
    return "".join(lines[:position] + added + lines[position:])


def set_key_expecting(text: str, expected: Dict[str, Any], table: Tuple[str, ...], key: str, value: Any) -> str:
    """`set_key`, and the same change made to ``expected``, the parsed result `verified` will demand."""
    set_in(expected, (*table, key), value)
    return set_key(text, table, key, value)


def remove_marks(text: str, path: str) -> str:
    """Undo every marked edit: drop added blocks and keys, put replaced lines back.

    A block whose end line is gone is refused: removing "up to the end line" would remove every
    line the user wrote after the block.
    """
    lines = text.splitlines(keepends=True)
    open_at: Optional[int] = None
    for number, line in enumerate(lines, 1):
        stripped = line.rstrip("\r\n")
        if stripped == BLOCK_BEGIN:
            if open_at is not None:
                break
            open_at = number
        elif stripped == BLOCK_END:
            open_at = None
    if open_at is not None:
        raise ToolkitError(
            f"{path}: line {open_at}: the block configure added has lost its end line ({BLOCK_END!r}); "
            "put it back after the block's last line, or remove the block by hand; nothing written"
        )
    out: List[str] = []
    in_block = False
    for line in lines:
        stripped = line.rstrip("\r\n")
        if in_block:
            in_block = stripped != BLOCK_END
        elif stripped == BLOCK_BEGIN:
            in_block = True
            if out and out[-1].strip() == "":
                out.pop()  # the blank line append_block put before the block
        elif stripped.endswith(SET_MARK):
            back = len(out)
            while back > 0 and out[back - 1].startswith(WAS_PREFIX):
                back -= 1
            out[back:] = [was[len(WAS_PREFIX) :] for was in out[back:]]
        elif stripped != NO_FINAL_NEWLINE or line is not lines[-1]:
            out.append(line)
    result = "".join(out)
    if lines and lines[-1].rstrip("\r\n") == NO_FINAL_NEWLINE:
        result = result[: -len(newline_of(text))] if result.endswith("\n") else result
    return result


def verified(new_text: str, expected: Dict[str, Any], path: str) -> str:
    """``new_text`` if it parses to exactly ``expected``; else refuse, naming the file."""
    try:
        result = parse_toml(new_text, path)
    except ToolkitError:
        result = None
    if result != expected:
        raise ToolkitError(
            f"{path}: its layout defeats a minimal edit (the result would not be the intended change); "
            "nothing written; make this change by hand"
        )
    return new_text


def set_in(document: Dict[str, Any], keys: Tuple[str, ...], value: Any) -> None:
    """``document[k1][k2]... = value``, creating tables on the way (on an already-parsed copy)."""
    for key in keys[:-1]:
        document = document.setdefault(key, {})
    document[keys[-1]] = value


def tables_text(keys: Tuple[str, ...], table: Dict[str, Any]) -> str:
    """``table`` as TOML under the header ``[k1.k2...]`` (tomli-w writes no empty parent headers)."""
    import tomli_w  # only configure writes whole tables

    return tomli_w.dumps(nested(keys, table))


def marked_edit(path: str, what: str, minimal_text: str, edit: Callable[[str, Dict[str, Any]], str]) -> Plan:
    """Configure a TOML file in place: undo our earlier marks first (so configure twice = once), then ``edit``.

    A missing file starts from ``minimal_text``; ``edit(text, parsed)`` returns the new, verified text.
    """
    text = read_config_text(path, what)
    if text is not None:
        parse_toml(text, path)  # a broken file is reported as it is, before anything else
    base = minimal_text if text is None else remove_marks(text, path)
    new = edit(base, parse_toml(base, path))
    if base and not base.endswith("\n") and new != base:
        new = new + ("" if new.endswith("\n") else newline_of(base)) + NO_FINAL_NEWLINE + newline_of(base)
    return Plan([FileEdit(path, None if text is None else text.encode(), new.encode())], [])


def unmarked_edit(path: str, what: str, check: Callable[[Dict[str, Any]], object]) -> Plan:
    """Unconfigure a TOML file: remove every marked edit, restoring the lines they replaced.

    ``check`` validates the engine's tables, in the file as it is and as it will be.
    """
    text = read_config_text(path, what)
    if text is None:
        return Plan([], [f"{path}: does not exist; nothing to remove"])
    check(parse_toml(text, path))
    new = remove_marks(text, path)
    check(parse_toml(new, path))
    return Plan([FileEdit(path, text.encode(), new.encode())], [])
