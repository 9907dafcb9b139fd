"""JSON in and out on the shim's create path without `import json`.

`import json` costs ~8 ms (it pulls in re, enum and friends), more than the rest of
a create. The json package is a thin layer over the C accelerator `_json`, which
loads in ~0.3 ms: its scanner and encoder are driven here directly, producing
exactly what json.loads and json.dumps produce (tests compare them). Errors are
rare, so on any failure the json package is imported after all, to raise its own
exception with its own message, line and column.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

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
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
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


def dumps(value: Any, indent: Optional[str] = None) -> str:
    """json.dumps(value, separators=(",", ":")) when ``indent`` is None, else json.dumps(value, indent=indent).

    For JSON values with string keys (what loads_strict returns, edited); ASCII
    output, NaN and Infinity written as json writes them.
    """
    if indent is not None:
        out: List[str] = []
        _write_indented(value, indent, 0, out)
        return "".join(out)
    if _json is None:
        import json

        return json.dumps(value, separators=(",", ":"))
    encode = _json.make_encoder({}, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
    return "".join(encode(value, 0))
