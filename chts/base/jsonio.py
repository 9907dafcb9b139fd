"""JSON in and out on the shim's create path without `import json`, and edits that keep the text.

`import json` pulls in re, enum and friends, more than the rest of a create costs
(bench/bench.py measures the create path). The json package is a thin layer over the
C accelerator `_json`: its scanner and encoder are driven here directly, producing
exactly what json.loads and json.dumps produce (tests compare them). Errors are
rare, so on any failure the json package is imported after all, to raise its own
exception with its own message, line and column.

Editing config.json never re-serializes what it does not change: the spans of an
object's members and an array's items are found with the same scanner, untouched
values are copied as text (numbers such as 1e400, 1e2 or -0 included) and only the
new values are written, in the file's own style (compact or indented).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

    # (key, key_start, key_end, value_start, value_end, value) of one object member in a text
    Member = Tuple[str, int, int, int, int, Any]

try:
    import _json
except ImportError:  # an interpreter built without the accelerator: json does it all
    _json = None  # type: ignore[assignment]

WHITESPACE = " \t\n\r"  # what json.loads skips around a document
# The interpreter's recursion limit bounds the depth _json and json can read (~1000 levels
# before 3.12, more after).
TOO_DEEP = "arrays and objects nested too deeply for this reader"


def _reject_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _ScannerContext:
    """The attributes _json.make_scanner reads (json.JSONDecoder's, for loads_strict)."""

    strict = True
    object_hook = None
    object_pairs_hook = staticmethod(_reject_duplicate_keys)
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)


_scanner: Optional[Callable[[str, int], Tuple[Any, int]]] = None


def _json_loads_strict(text: str) -> Any:
    import json

    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


def loads_strict(text: str) -> Any:
    """json.loads that refuses what Go's encoding/json would not read the same way.

    Duplicate keys (Go keeps the last, Python too, a reader would see another
    document than the writer) and NaN/Infinity raise ValueError, as do all
    syntax errors (json.JSONDecodeError, with line and column).
    """
    global _scanner
    if _json is None or text[:1] == "\ufeff":
        return _json_loads_strict(text)
    if _scanner is None:
        _scanner = _json.make_scanner(_ScannerContext())  # type: ignore[arg-type]
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = _scanner(text, start)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    except Exception:
        # StopIteration ("Expecting value"), our hooks' ValueErrors, and on 3.10/3.11 a
        # SystemError "returned NULL without setting an exception" for every syntax error
        # while json.decoder is not imported (_json looks its exception class up there).
        # json itself re-reads the text and raises its own error, with line and column.
        return _json_loads_strict(text)
    if text[end:].strip(WHITESPACE):
        return _json_loads_strict(text)  # raises "Extra data"
    return value


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _float_text(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    return float.__repr__(value)


def _encode_string(value: str) -> str:
    if _json is not None:
        return _json.encode_basestring_ascii(value)
    import json

    return json.dumps(value)


def _write_indented(value: Any, indent: str, level: int, out: List[str]) -> None:
    """json.dumps(value, indent=indent)'s text, appended to ``out`` (JSON values only)."""
    if isinstance(value, str):
        out.append(_encode_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float_text(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = "\n" + indent * (level + 1)
        out.append("[")
        for index, item in enumerate(value):
            out.append(inner if index == 0 else "," + inner)
            _write_indented(item, indent, level + 1, out)
        out.append("\n" + indent * level + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = "\n" + indent * (level + 1)
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            out.append((inner if index == 0 else "," + inner) + _encode_string(key) + ": ")
            _write_indented(item, indent, level + 1, out)
        out.append("\n" + indent * level + "}")
    else:
        _no_default(value)


def dumps(value: Any, indent: Optional[str] = None, level: int = 0) -> str:
    """json.dumps(value, separators=(",", ":")) when ``indent`` is None, else json.dumps(value, indent=indent).

    ``level``: the depth the text is placed at in an indented document (its inner lines
    are indented that much more).

    For JSON values with string keys (what loads_strict returns, edited); ASCII
    output. NaN and Infinity raise ValueError (json's allow_nan=False): no reader of
    the files written here (Go's encoding/json) accepts them.
    """
    if indent is not None:
        out: List[str] = []
        _write_indented(value, indent, level, out)
        return "".join(out)
    if _json is None:
        import json

        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    encode = _json.make_encoder({}, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, False)
    return "".join(encode(value, 0))


# ----------------------------------------------------------------------------- text-keeping edits


class _Syntax(Exception):
    """The walk met something that is not JSON: loads_strict then says what, where."""


def _parts() -> Tuple[Callable[[str, int], Tuple[Any, int]], Callable[[str, int, bool], Tuple[str, int]]]:
    """(scanner, scanstring): _json's, or the json package's where there is no accelerator."""
    global _scanner
    if _json is None:
        import json.decoder

        decoder = json.decoder.JSONDecoder(object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
        return decoder.scan_once, getattr(json.decoder, "scanstring")  # noqa: B009  # not in the stubs
    if _scanner is None:
        _scanner = _json.make_scanner(_ScannerContext())  # type: ignore[arg-type]
    return _scanner, _json.scanstring


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in WHITESPACE:
        index += 1
    return index


def _skip_nested(text: str, index: int) -> int:
    """The end of the array or object at ``index``, found without recursion (for values too deep to parse).

    Brackets are counted outside strings; the value itself is not checked, runc does that.
    """
    scanstring = _parts()[1]
    depth = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            try:
                index = scanstring(text, index + 1, False)[1]
            except Exception:  # unterminated; on 3.10/3.11 even a SystemError (see loads_strict)
                raise _Syntax from None
            continue
        index += 1
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index
    raise _Syntax


def _value_at(text: str, index: int) -> Tuple[Any, int, bool]:
    """(value, end, parsed): parsed is False for a value nested too deeply to parse (its value is None)."""
    scan = _parts()[0]
    try:
        value, end = scan(text, index)
    except RecursionError:
        if text[index : index + 1] not in ("[", "{"):
            raise _Syntax from None
        return None, _skip_nested(text, index), False
    except Exception:
        raise _Syntax from None
    return value, end, True


def scan_members(text: str, start: int) -> Tuple[List[Member], int, List[str]]:
    """(members, index after the closing brace, keys whose values were too deep to parse) of the object at ``start``.

    Raises ValueError (json's message, line and column) when it is not a valid object,
    or has a key twice.
    """
    try:
        return _scan_members(text, start)
    except (_Syntax, IndexError):
        pass
    loads_strict(text)  # raises with json's own message
    raise ValueError(f"not a JSON object at char {start}")


def _scan_members(text: str, start: int) -> Tuple[List[Member], int, List[str]]:
    scanstring = _parts()[1]
    if text[start] != "{":
        raise _Syntax
    members: List[Member] = []
    deep: List[str] = []
    keys = set()
    index = _skip_space(text, start + 1)
    if text[index] == "}":
        return members, index + 1, deep
    while True:
        if text[index] != '"':
            raise _Syntax
        key_start = index
        try:
            key, index = scanstring(text, index + 1, True)
        except Exception:
            raise _Syntax from None
        key_end = index
        if key in keys:
            raise ValueError(f"duplicate key {key!r}")
        keys.add(key)
        index = _skip_space(text, index)
        if text[index] != ":":
            raise _Syntax
        value_start = _skip_space(text, index + 1)
        value, value_end, parsed = _value_at(text, value_start)
        if not parsed:
            deep.append(key)
        members.append((key, key_start, key_end, value_start, value_end, value))
        index = _skip_space(text, value_end)
        if text[index] == "}":
            return members, index + 1, deep
        if text[index] != ",":
            raise _Syntax
        index = _skip_space(text, index + 1)


def scan_items(text: str, start: int) -> List[Tuple[int, int]]:
    """The (start, end) of each item of the array at ``start`` (an array the scanner has already read)."""
    items: List[Tuple[int, int]] = []
    index = _skip_space(text, start + 1)
    if text[index] == "]":
        return items
    while True:
        end = _value_at(text, index)[1]
        items.append((index, end))
        index = _skip_space(text, end)
        if text[index] == "]":
            return items
        index = _skip_space(text, index + 1)  # the comma


def loads_object(text: str) -> Tuple[Dict[str, Any], List[Member], int, List[str]]:
    """(object, its members with their spans, index of its closing brace, keys too deep to parse) of ``text``.

    What loads_strict reads, for a document that is an object, plus where each member's
    value is, so that an edit can replace one member and copy the rest as text.
    """
    start = _skip_space(text, 0)
    if text[start : start + 1] != "{":
        value = loads_strict(text)  # raises for what is not JSON at all
        raise ValueError(f"must be a JSON object, not {type(value).__name__}")
    members, end, deep = scan_members(text, start)
    if text[end:].strip(WHITESPACE):
        loads_strict(text)  # raises "Extra data" with its position
    return {member[0]: member[5] for member in members}, members, end - 1, deep


def line_at(text: str, path: Sequence[Any], value: Optional[str] = None) -> Optional[int]:
    """The line in the JSON ``text`` of ``path``: a str step is an object's key, an int an array's item.

    The one JSON line locator, for error messages (hooks.json, drop-ins): found with the
    scanner the shim reads with, so exact. A step that is not there stops the walk at the
    last one found; with ``value``, the line of the first item, key or member value within
    equal to it. None when nothing was found or the text does not parse that far.
    """
    found: Optional[int] = None
    try:
        index = _skip_space(text, 0)
        for step in path:
            if isinstance(step, int):
                if text[index] != "[":
                    break
                index = found = scan_items(text, index)[step][0]
                continue
            if text[index] != "{":
                break
            member = next((m for m in scan_members(text, index)[0] if m[0] == step), None)
            if member is None:
                break
            found, index = member[1], member[3]
        else:
            if value is not None:
                found = _first_equal(text, index, value, found)
    except (ValueError, IndexError, _Syntax):
        pass
    return None if found is None else text.count("\n", 0, found) + 1


def _first_equal(text: str, index: int, value: str, otherwise: Optional[int]) -> Optional[int]:
    """Where, in the array or object at ``index``, an item, key or member value equal to ``value`` starts."""
    if text[index] == "[":
        for start, _ in scan_items(text, index):
            if _value_at(text, start)[0] == value:
                return start
    elif text[index] == "{":
        for key, key_start, _, value_start, _, member_value in scan_members(text, index)[0]:
            if key == value:
                return key_start
            if member_value == value:
                return value_start
    return otherwise


def encode_key(key: str) -> str:
    return _encode_string(key)


def render_object(members: Sequence[Tuple[str, str]], indent: Optional[str], level: int) -> str:
    """An object of (encoded key, value text) members in the document's style, at depth ``level``."""
    if not members:
        return "{}"
    if indent is None:
        return "{" + ",".join(f"{key}:{value}" for key, value in members) + "}"
    inner = ",\n" + indent * (level + 1)
    body = inner.join(f"{key}: {value}" for key, value in members)
    return "{\n" + indent * (level + 1) + body + "\n" + indent * level + "}"


def render_array(items: Sequence[str], indent: Optional[str], level: int) -> str:
    """An array of item texts in the document's style, at depth ``level``."""
    if not items:
        return "[]"
    if indent is None:
        return "[" + ",".join(items) + "]"
    inner = ",\n" + indent * (level + 1)
    return "[\n" + indent * (level + 1) + inner.join(items) + "\n" + indent * level + "]"
