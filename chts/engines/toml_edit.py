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

from chts.engines import FileEdit, Plan
from chts.engines.engine_files import nested, parse_toml, read_config_text
from chts.errors import ToolkitError
from chts.toolkit_config import toml_decode_error, toml_loads

BLOCK_BEGIN = "# >>> container-hooks-toolkit: added by `container-hooks-ctk runtime configure`; unconfigure removes it"
BLOCK_END = "# <<< container-hooks-toolkit"
SET_MARK = "# container-hooks-toolkit: set by runtime configure"
WAS_PREFIX = "# container-hooks-toolkit was: "

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
KEY_LINE = re.compile(r"([ \t]*)[A-Za-z0-9_\"'-][^=]*=")  # an assignment: its indent is the table's style


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


def header_keys(line: str) -> Optional[Tuple[str, ...]]:
    """The key path of a ``[table]`` header line; ``()`` for ``[[array]]`` headers; None otherwise."""
    stripped = line.strip()
    if not stripped.startswith("["):
        return None
    try:
        parsed: Any = toml_loads(stripped)
    except toml_decode_error():
        return None  # e.g. a line inside a multi-line array
    keys: List[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        key, parsed = next(iter(parsed.items()))
        keys.append(key)
    return tuple(keys) if isinstance(parsed, dict) and not parsed and keys else ()


def append_block(text: str, body: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    separator = "\n" if text else ""
    return f"{text}{separator}{BLOCK_BEGIN}\n{body.rstrip()}\n{BLOCK_END}\n"


def set_key(text: str, table: Tuple[str, ...], key: str, value: Any) -> str:
    """Set ``table.key = value`` touching one line (or appending a marked block when the table has no header)."""
    lines = text.splitlines(keepends=True)
    assignment = f"{toml_key(key)} = {toml_value(value)}"
    start = next((i for i, line in enumerate(lines) if header_keys(line) == table), None)
    if start is None:
        header = "[" + ".".join(toml_key(k) for k in table) + "]"
        return append_block(text, f"{header}\n{assignment}\n")
    end = next((i for i in range(start + 1, len(lines)) if header_keys(lines[i]) is not None), len(lines))
    pattern = re.compile(r"(\s*)(" + re.escape(key) + "|" + re.escape(json.dumps(key)) + r")\s*=")
    for i in range(start + 1, end):
        match = pattern.match(lines[i])
        if match:
            old = lines[i].rstrip("\r\n")
            lines[i] = f"{WAS_PREFIX}{old}\n{match.group(1)}{assignment}  {SET_MARK}\n"
            return "".join(lines)
    indent = next((m.group(1) for m in map(KEY_LINE.match, lines[start + 1 : end]) if m), "")
    if not lines[start].endswith("\n"):
        lines[start] += "\n"
    lines.insert(start + 1, f"{indent}{assignment}  {SET_MARK}\n")
    return "".join(lines)


def set_key_expecting(text: str, expected: Dict[str, Any], table: Tuple[str, ...], key: str, value: Any) -> str:
    """`set_key`, and the same change made to ``expected``, the parsed result `verified` will demand."""
    set_in(expected, (*table, key), value)
    return set_key(text, table, key, value)


def remove_marks(text: str) -> str:
    """Undo every marked edit: drop added blocks and keys, put replaced lines back."""
    out: List[str] = []
    in_block = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if in_block:
            in_block = stripped != BLOCK_END
        elif stripped == BLOCK_BEGIN:
            in_block = True
            if out and out[-1].strip() == "":
                out.pop()  # the blank line append_block put before the block
        elif stripped.endswith(SET_MARK):
            if out and out[-1].startswith(WAS_PREFIX):
                out[-1] = out[-1][len(WAS_PREFIX) :]
        else:
            out.append(line)
    return "".join(out)


def has_marks(text: str) -> bool:
    return BLOCK_BEGIN in text or SET_MARK in text


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
    base = minimal_text if text is None else remove_marks(text)
    new = edit(base, parse_toml(base, path))
    return Plan([FileEdit(path, None if text is None else text.encode(), new.encode())], [])


def unmarked_edit(path: str, what: str, check: Callable[[Dict[str, Any]], object]) -> Plan:
    """Unconfigure a TOML file: remove every marked edit, restoring the lines they replaced.

    ``check`` validates the engine's tables, in the file as it is and as it will be.
    """
    text = read_config_text(path, what)
    if text is None:
        return Plan([], [f"{path}: does not exist; nothing to remove"])
    check(parse_toml(text, path))
    new = remove_marks(text)
    check(parse_toml(new, path))
    return Plan([FileEdit(path, text.encode(), new.encode())], [])
