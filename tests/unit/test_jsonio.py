"""chts.base.jsonio: the create path's JSON, which must read and write exactly what the json package does."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chts.base import jsonio

# JSON values as loads returns them: str keys, no NaN (the strict reader refuses it).
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300)
@given(values)
def test_dumps_compact_is_json_dumps(value: Any) -> None:
    assert jsonio.dumps(value) == json.dumps(value, separators=(",", ":"))


@settings(max_examples=300)
@given(values, st.sampled_from(["\t", " ", "  ", "    "]))
def test_dumps_indented_is_json_dumps(value: Any, indent: str) -> None:
    assert jsonio.dumps(value, indent) == json.dumps(value, indent=indent)


def test_dumps_special_floats_as_json_does() -> None:
    value = {"a": [1.5e300, -0.0, 1e-7]}
    assert jsonio.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert jsonio.dumps(value, "\t") == json.dumps(value, indent="\t")


@pytest.mark.parametrize("value", [math.inf, -math.inf, [math.nan], {"a": [1.0, {"b": -math.inf}]}])
@pytest.mark.parametrize("indent", [None, "\t"])
def test_dumps_never_writes_non_finite_numbers(value: Any, indent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Go's encoding/json reads no NaN or Infinity: runc would refuse the file."""
    with pytest.raises(ValueError, match="Out of range float"):
        jsonio.dumps(value, indent)
    monkeypatch.setattr(jsonio, "_json", None)  # without the accelerator too
    with pytest.raises(ValueError, match="Out of range float"):
        jsonio.dumps(value, indent)


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        jsonio.dumps({"a": object()})
    with pytest.raises(TypeError):
        jsonio.dumps({"a": {1: "int key"}}, "\t")


@settings(max_examples=300)
@given(values, st.sampled_from([None, "\t", "  "]), st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_loads_strict_is_json_loads(value: Any, indent: Any, space: str) -> None:
    text = space + json.dumps(value, indent=indent) + space
    assert jsonio.loads_strict(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "{", '{"a": 1,}', "[1 2]", '{"a": 1} x', '{"a": 1}{}', "nul", '"\\x"', '"\x01"', "\ufeff{}", "01"],
)
def test_loads_strict_errors_are_json_errors(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonio.loads_strict(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"x": {"hooks": 1, "hooks": 2}}', "duplicate key 'hooks'"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ("[Infinity]", "Infinity is not valid JSON"),
        ("-Infinity", "-Infinity is not valid JSON"),
    ],
)
def test_loads_strict_refuses_what_go_reads_differently(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jsonio.loads_strict(text)


def test_loads_strict_keeps_key_order_and_big_numbers() -> None:
    value = jsonio.loads_strict('{"z": 1, "a": 12345678901234567890123, "m": 1.0}')
    assert list(value) == ["z", "a", "m"]
    assert value["a"] == 12345678901234567890123 and isinstance(value["m"], float)


def test_without_the_accelerator_json_does_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonio, "_json", None)
    assert jsonio.loads_strict(' {"a": [1, "é"]} ') == {"a": [1, "é"]}
    with pytest.raises(ValueError, match="duplicate key"):
        jsonio.loads_strict('{"a": 1, "a": 1}')
    assert jsonio.dumps({"a": ["é", None]}) == '{"a":["\\u00e9",null]}'
    assert jsonio.dumps({"a": []}, "  ") == '{\n  "a": []\n}'


# ----------------------------------------------------------------------------- edges mutation testing found

DEEP = "[" * 3000 + "]" * 3000  # beyond the scanner's recursion: the members around it are walked


def test_a_byte_order_mark_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(ValueError, match="Unexpected UTF-8 BOM"):
        jsonio.loads_strict('\ufeff{"a": 1}')


def test_brackets_inside_strings_of_a_too_deep_value_are_not_counted() -> None:
    deep = "[" * 3000 + '"]\\"' + '"' + "]" * 3000
    text = '{"x": ' + deep + ', "hooks": {}}'
    _, members, close, deep_keys = jsonio.loads_object(text)
    assert [member[0] for member in members] == ["x", "hooks"] and deep_keys == ["x"]
    assert text[members[0][3] : members[0][4]] == deep
    assert text[close] == "}" and close == len(text) - 1


@pytest.mark.parametrize("tail", [', x"": 1}', ', "a\tb": 1}', ', "k": 1 "z": 2}', ", 1: 2}"])
def test_what_is_walked_beside_a_deep_value_is_checked_as_json(tail: str) -> None:
    with pytest.raises(ValueError):
        jsonio.loads_object('{"x": ' + DEEP + tail)


def test_scan_items() -> None:
    assert jsonio.scan_items("[]", 0) == []
    assert jsonio.scan_items("[ ]", 0) == []
    assert jsonio.scan_items('x[ 1, [2] ,"]"]', 1) == [(3, 4), (6, 9), (11, 14)]


def test_render_array_indents_each_level() -> None:
    assert jsonio.render_array([], "  ", 1) == "[]"
    assert jsonio.render_array(["1", "2"], None, 1) == "[1,2]"
    assert jsonio.render_array(["1", "2"], "  ", 1) == "[\n    1,\n    2\n  ]"


LAYOUT = '{"a": [1,\n {"x": [2, "s"]},\n "s"], "b":\n {"k": "v",\n  "v": "k"}, "c": "a"}'


@pytest.mark.parametrize(
    ("path", "value", "line"),
    [
        (("a",), None, 1),
        (("a", 0), None, 1),
        (("a", 1), None, 2),
        (("a", 1, "x", 1), None, 2),
        (("a", 2), None, 3),
        (("b",), None, 3),
        (("b", "v"), None, 5),
        (("a",), "s", 3),  # the item, not the "s" nested deeper on line 2
        (("b",), "v", 4),  # a member value ...
        (("b",), "k", 4),  # ... or a key, whichever comes first
        (("c",), None, 5),
        (("b", "nope"), None, 3),  # a step that is not there: the last one found
        (("a", 9), None, 1),  # an index past the end: the last step found
        (("nope",), None, None),
        ((), None, None),
    ],
)
def test_line_at_finds_keys_items_and_values_where_the_text_has_them(path: Any, value: Any, line: Any) -> None:
    assert jsonio.line_at(LAYOUT, path, value) == line


def test_line_at_gives_up_quietly_on_text_that_does_not_parse() -> None:
    assert jsonio.line_at('{"a": [1,', ("a", 1)) is None
    assert jsonio.line_at("[1, 2]", ("a",)) is None
    assert jsonio.line_at('{"a"\n: 1}', ("a",)) == 1


def test_the_line_of_a_key_inside_an_array_item() -> None:
    """What an error message about hooks.json's prestart[0].args[1] points at: that line, not the item's."""
    text = '{"prestart": [\n  {\n    "path": "/x",\n    "args": ["a",\n      "b"]\n  }\n]}\n'
    assert jsonio.line_at(text, ["prestart", 0, "args", 1]) == 5
    assert jsonio.line_at(text, ["prestart", 0]) == 2


def test_members_of_what_is_not_an_object_are_refused() -> None:
    with pytest.raises(ValueError, match="^not a JSON object at char 2$"):
        jsonio.scan_members('  [1, {"a": 2}]', 2)
