"""chts.base.json_edit: members added in the file's own layout, removed with their separator, errors named."""

from __future__ import annotations

import json
from typing import Any, List

import pytest

from chts.base.json_edit import add_member, remove_member
from chts.errors import ToolkitError

SHIM = {"path": "/x", "args": ["a", "b"]}


@pytest.mark.parametrize(
    ("text", "keys", "expected"),
    [
        # an empty object in an indented file borrows the file's indent unit (4 spaces)
        (
            '{\n    "a": 1,\n    "runtimes": {}\n}',
            ["runtimes", "shim"],
            '{\n    "a": 1,\n    "runtimes": {\n        "shim": {\n            "path": "/x",\n'
            '            "args": ["a", "b"]\n        }\n    }\n}',
        ),
        ('{"a":1,"runtimes":{}}', ["runtimes", "shim"], '{"a":1,"runtimes":{"shim":{"path":"/x","args":["a","b"]}}}'),
        (
            '{"a": 1, "runtimes": {}}',
            ["runtimes", "shim"],
            '{"a": 1, "runtimes": {"shim": {"path": "/x", "args": ["a", "b"]}}}',
        ),
        (
            '{\r\n  "a": 1,\r\n  "runtimes": {}\r\n}',
            ["runtimes", "shim"],
            '{\r\n  "a": 1,\r\n  "runtimes": {\r\n    "shim": {\r\n      "path": "/x",\r\n'
            '      "args": ["a", "b"]\r\n    }\r\n  }\r\n}',
        ),
        # tabs, and the node's own members: the unit is what the inner lines add to the closing brace's indent
        (
            '{\n\t"runtimes": {\n\t\t"runc": {"path": "runc"}\n\t}\n}',
            ["runtimes", "shim"],
            '{\n\t"runtimes": {\n\t\t"runc": {"path": "runc"},\n\t\t"shim": {\n\t\t\t"path": "/x",\n'
            '\t\t\t"args": ["a", "b"]\n\t\t}\n\t}\n}',
        ),
        # a deeper empty object: indented from its own line, with the file's unit
        (
            '{\n  "x": {\n      "runtimes": {}\n  }\n}',
            ["x", "runtimes", "shim"],
            '{\n  "x": {\n      "runtimes": {\n        "shim": {\n          "path": "/x",\n'
            '          "args": ["a", "b"]\n        }\n      }\n  }\n}',
        ),
    ],
)
def test_added_members_follow_the_file_layout(text: str, keys: List[str], expected: str) -> None:
    new, inside = add_member(text, keys, SHIM, "f")
    assert new == expected
    assert json.loads(new) == json.loads(expected)
    assert inside == ("" if keys[-2:] == ["runtimes", "shim"] and "{}" in text else None)


def test_an_empty_object_on_lines_of_its_own_keeps_its_line_ending() -> None:
    assert add_member("{\r\n}", ["a"], 1, "f") == ('{\r\n  "a": 1\r\n}', "\r\n")


@pytest.mark.parametrize(
    ("text", "keys", "message"),
    [
        ('{"runtimes": 1}', ["runtimes", "shim"], "f: runtimes must be an object"),
        ("[]", ["runtimes"], "f:  must be an object"),
        ('{"a": {}}', ["runtimes", "shim"], "f: no runtimes"),
        ('{"runtimes": {}, "runtimes": {}}', ["runtimes", "shim"], "f: runtimes appears 2 times; fix it by hand"),
        ('{"runtimes": {"shim": {}}}', ["runtimes", "shim"], "f: runtimes.shim is already there"),
    ],
)
def test_what_cannot_be_added_to_is_named(text: str, keys: List[str], message: str) -> None:
    with pytest.raises(ToolkitError) as caught:
        add_member(text, keys, {}, "f")
    assert str(caught.value) == message


TEXT = '{"a": 1, "b": {"c": 2}, "d": 3}'


@pytest.mark.parametrize(
    ("text", "keys", "inside", "expected"),
    [
        ('{"a": 1, "d": 3, "b": {"c": 2}}', ["b"], None, '{"a": 1, "d": 3}'),  # the last: the comma before it
        (TEXT, ["a"], None, '{"b": {"c": 2}, "d": 3}'),  # the first: the separator after it
        (TEXT, ["b", "c"], None, '{"a": 1, "b": {}, "d": 3}'),  # the only one: what was inside comes back
        (TEXT, ["b", "c"], "\n  ", '{"a": 1, "b": {\n  }, "d": 3}'),
        (TEXT, ["b", "x"], None, TEXT),
    ],
)
def test_removed_members_take_their_separator(text: str, keys: List[str], inside: Any, expected: str) -> None:
    assert remove_member(text, keys, "f", inside) == expected


def test_in_a_file_of_mixed_line_endings_the_object_added_to_sets_them() -> None:
    text = '{\n  "runtimes": {\r\n    "runc": {"path": "runc"}\r\n  }\n}'
    new, _ = add_member(text, ["runtimes", "shim"], {"path": "/x"}, "f")
    shim = '    "shim": {\r\n      "path": "/x"\r\n    }\r\n'
    assert new == '{\n  "runtimes": {\r\n    "runc": {"path": "runc"},\r\n' + shim + "  }\n}"


def test_text_outside_ascii_is_written_as_itself_like_the_rest_of_the_file() -> None:
    text, _ = add_member('{"data-root": "/srv/dockér"}\n', ["runtimes"], {"crun": {"path": "/opt/crün"}}, "d.json")
    assert text == '{"data-root": "/srv/dockér","runtimes": {"crun": {"path": "/opt/crün"}}}\n'
