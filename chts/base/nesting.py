"""How deeply a document nests, found without recursion, so every reader of a user's file can refuse past a bound.

Python's parsers and everything that walks what they return (merging drop-ins, comparing,
copying, re-serialising) recurse once or more per level: a file nested a few hundred levels
deep ended in a RecursionError traceback somewhere past the parse, a few thousand deep in the
parser itself. The readers of engine and toolkit files (chts.config.toolkit.toml_loads,
chts.base.config_files.parse_json_object, ...) refuse a document deeper than MAX_DEPTH, and
turn a parser's RecursionError into the same one line, the depth counted here from the text.
No imports: the shim loads this with its config on a cache miss.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Tuple

# Real configs nest fewer than ten levels. Every walker behind the readers handles this many
# (tests/unit/test_nesting.py runs each ctk command on files this deep) on Python 3.8-3.13,
# whose recursion limit is 1000 frames.
MAX_DEPTH = 400
JSON_WORDS = "arrays and objects"
TOML_WORDS = "tables or arrays"


class NestedTooDeeply(ValueError):
    """A document nested deeper than the tools read: one line, ``depth`` levels counting the top one."""

    def __init__(self, words: str, depth: int) -> None:
        super().__init__(f"{words} nested too deeply for this reader ({depth} levels)")
        self.depth = depth


def value_depth(value: Any) -> int:
    """Levels of dicts and lists in ``value``: 0 for a scalar, 1 for a flat object."""
    deepest = 0
    pending: List[Tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def check_depth(value: Any, words: str) -> Any:
    """``value``, or NestedTooDeeply when it nests deeper than MAX_DEPTH."""
    depth = value_depth(value)
    if depth > MAX_DEPTH:
        raise NestedTooDeeply(words, depth)
    return value


def json_text_depth(text: str) -> int:
    """The deepest nesting of brackets and braces in JSON text, strings skipped (for a text too deep to parse)."""
    deepest = depth = 0
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        if char == '"':
            index += 1
            while index < end and text[index] != '"':
                index += 2 if text[index] == "\\" else 1
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
        index += 1
    return deepest


def toml_text_depth(text: str) -> int:
    """The deepest nesting of inline arrays and tables in TOML text, plus the document's own table.

    Strings (basic, literal, multi-line) and comments are skipped; a [table] header counts while open.
    """
    deepest = depth = 0
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        if char == "#":
            newline = text.find("\n", index)
            index = end if newline < 0 else newline
        elif char in "\"'":
            quote = text[index : index + 3] if text[index : index + 3] in ('"""', "'''") else char
            index += len(quote)
            while index < end and not text.startswith(quote, index):
                index += 2 if char == '"' and text[index] == "\\" else 1
            index += len(quote) - 1
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
        index += 1
    return deepest + 1
