"""The one TOML line editor (engines and `ctk config`): tables found by statements, marks undone exactly."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from chts.base.text_files import toml_decode_error, toml_loads
from chts.base.toml_edit import (
    BLOCK_BEGIN,
    BLOCK_END,
    SET_MARK,
    WAS_PREFIX,
    append_block,
    remove_marks,
    set_key,
    split_statements,
)
from chts.errors import ToolkitError


def parsed(text: str) -> Dict[str, Any]:
    result: Dict[str, Any] = toml_loads(text)
    return result


def test_an_array_of_tables_header_is_not_the_table_of_that_name() -> None:
    text = '[[engine]]\nruntime = "a"\n[engine2]\nx = 1\n'
    new = set_key(text, ("engine",), "runtime", "b", record=False)
    # [[engine]] is an array: setting [engine].runtime must not touch its element
    assert new.startswith('[[engine]]\nruntime = "a"\n')
    with pytest.raises(toml_decode_error()):
        parsed(new)  # an [engine] table after [[engine]] is invalid TOML: the verifying callers refuse it


def test_keys_under_an_array_header_are_not_the_table_keys() -> None:
    text = '[engine]\nx = 1\n[[engine.hooks]]\nruntime = "a"\n'
    new = set_key(text, ("engine",), "runtime", "b")
    assert parsed(new) == {"engine": {"x": 1, "runtime": "b", "hooks": [{"runtime": "a"}]}}
    assert remove_marks(new, "f") == text


def test_a_header_on_the_last_line_without_a_newline() -> None:
    text = "a = 1\n[engine]"
    new = set_key(text, ("engine",), "runtime", "x")
    assert parsed(new) == {"a": 1, "engine": {"runtime": "x"}}
    assert new.endswith(f'[engine]\nruntime = "x"  {SET_MARK}\n')


def test_the_root_table_takes_keys_before_the_first_header() -> None:
    text = "version = 2\n\n[plugins]\n  x = 1\n"
    new = set_key(text, (), "imports", ["/a/*.toml"])
    assert new.startswith(f'version = 2\nimports = ["/a/*.toml"]  {SET_MARK}\n\n[plugins]')
    assert remove_marks(new, "f") == text


def test_a_multi_line_value_is_replaced_and_given_back_whole() -> None:
    text = 'imports = [\n  "/a.toml",\n  "/b.toml",\n]\n[x]\n'
    new = set_key(text, (), "imports", ["/a.toml", "/b.toml", "/c.toml"])
    assert parsed(new)["imports"] == ["/a.toml", "/b.toml", "/c.toml"]
    assert new.count(WAS_PREFIX) == 4
    assert remove_marks(new, "f") == text


def test_a_bracket_inside_a_multi_line_string_is_no_header() -> None:
    text = '[a]\ns = """\n[b]\n"""\n[b]\nk = 1\n'
    new = set_key(text, ("b",), "k", 2, record=False)
    assert parsed(new) == {"a": {"s": "[b]\n"}, "b": {"k": 2}}


def test_crlf_files_stay_crlf_and_come_back_byte_for_byte() -> None:
    text = '[engine]\r\nruntime = "runc"\r\n'
    new = append_block(set_key(text, ("engine",), "runtime", "x"), "[t]\nk = 1\n")
    assert "\n" not in new.replace("\r\n", "")
    assert remove_marks(new, "f") == text


def test_a_block_without_its_end_line_is_refused_not_cut_to_the_end() -> None:
    text = append_block("a = 1\n", "[t]\nk = 1\n") + "# the user's own lines after the block\nb = 2\n"
    broken = text.replace(BLOCK_END + "\n", "")
    with pytest.raises(ToolkitError) as caught:
        remove_marks(broken, "/etc/x.toml")
    message = str(caught.value)
    assert message.startswith("/etc/x.toml: line 3: the block configure added has lost its end line")
    assert "\n" not in message


def test_a_block_followed_by_user_lines_is_removed_alone() -> None:
    text = append_block("a = 1\n", "[t]\nk = 1\n") + "[u]\nb = 2\n"
    assert remove_marks(text, "f") == "a = 1\n[u]\nb = 2\n"


def test_statements_split_multi_line_arrays_whole() -> None:
    lines = "a = [\n 1,\n 2,\n]\n# c\n[t]\n".splitlines(keepends=True)
    assert [(s.start, s.end, s.is_header) for s in split_statements(lines)] == [(0, 4, False), (5, 6, True)]


# ----------------------------------------------------------------------------- edges mutation testing found


def test_a_block_after_a_last_line_without_newline_starts_on_a_line_of_its_own() -> None:
    assert append_block("a = 1", "b = 2\n") == f"a = 1\n\n{BLOCK_BEGIN}\nb = 2\n{BLOCK_END}\n"
    assert append_block("", "b = 2\n") == f"{BLOCK_BEGIN}\nb = 2\n{BLOCK_END}\n"


def test_a_second_block_start_before_the_first_ends_is_refused_naming_the_first() -> None:
    """Two begin lines and one end: removing "from the first begin to the end" would take the user's line."""
    text = f"{BLOCK_BEGIN}\nx = 1\n{BLOCK_BEGIN}\ny = 2\n{BLOCK_END}\n"
    with pytest.raises(ToolkitError, match=r"^f: line 1: the block configure added has lost its end line"):
        remove_marks(text, "f")


def test_text_that_splits_into_no_statements_is_refused() -> None:
    with pytest.raises(ToolkitError) as caught:
        split_statements(["a = [\n", "1,\n"])
    assert str(caught.value) == "cannot split the file into TOML statements (is it valid TOML?)"


@pytest.mark.parametrize("text", ["[engine]\nruntime = 1", "[engine]\r\nruntime = 1", "a = 1\n", "# a comment"])
def test_configure_then_unconfigure_gives_the_exact_bytes_back(tmp_path: Any, text: str) -> None:
    from chts.base.toml_edit import marked_edit, unmarked_edit

    path = tmp_path / "config.toml"
    path.write_bytes(text.encode())

    def edit(base: str, parsed: Dict[str, Any]) -> str:
        return set_key(base, ("engine",), "runtime", "shim")

    (configured,) = marked_edit(str(path), "TOML", "", edit).edits
    assert configured.new is not None and toml_loads(configured.new.decode())["engine"]["runtime"] == "shim"
    path.write_bytes(configured.new)
    (unconfigured,) = unmarked_edit(str(path), "TOML", lambda parsed: None).edits
    assert unconfigured.new == text.encode()


@pytest.mark.parametrize(
    ("text", "table", "key", "value", "expected"),
    [
        # a replaced value keeps its trailing comment, also after a value over several lines
        ("a = [\n  1,\n  2,\n]  # two\n", (), "a", [3], "a = [3]  # two\n"),
        ("a = 1  # one\n", (), "a", 2, "a = 2  # one\n"),
        # a new table starts after one blank line, never two
        ("a = 1\n", ("t",), "k", 1, "a = 1\n\n[t]\nk = 1\n"),
        ("a = 1\n\n", ("t",), "k", 1, "a = 1\n\n[t]\nk = 1\n"),
        # a new key goes after the table's last key; in the root table, before everything
        ("[t]\na = 1\nb = 2\n", ("t",), "c", 3, "[t]\na = 1\nb = 2\nc = 3\n"),
        ("# top\n[t]\nx = 1\n", (), "k", 1, "k = 1\n# top\n[t]\nx = 1\n"),
    ],
)
def test_the_toolkit_config_is_edited_where_a_person_would(
    text: str, table: Any, key: str, value: Any, expected: str
) -> None:
    assert set_key(text, table, key, value, record=False) == expected
