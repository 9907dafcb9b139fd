"""chts.shim.inject's edit of config.json: exact text round-trip, replacing what an earlier create added."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chts.base.jsonio import loads_object
from chts.errors import ToolkitError
from chts.hooks import merge
from chts.hooks.bundle import SpecText, apply_hooks
from chts.hooks.bundle_record import HEADER, previously_added, render
from chts.shim.inject import edit_spec

SETKEY = {"path": "/proc/42/exe", "args": ["libnetwork-setkey", "abc"]}


def planned(stage: str, path: str, *args: str, timeout: Optional[int] = None) -> Any:
    hook: Dict[str, Any] = {"path": path}
    if args:
        hook["args"] = list(args)
    if timeout is not None:
        hook["timeout"] = timeout
    return {"stage": stage, "hook": hook, "source": "/etc/container-hooks/hooks.json"}


def edit(text: str, hooks: List[Any]) -> Optional[str]:
    """A create of a bundle the shim never wrote: its config.json afterwards (None: unchanged)."""
    return recreate(text, hooks, None)[0]


def recreate(text: str, hooks: List[Any], record: Optional[bytes]) -> Tuple[Optional[str], Optional[bytes]]:
    """A create, as chts.shim.inject runs it, of a bundle with ``record`` beside config.json:
    (config.json afterwards or None when unchanged, the record afterwards or None)."""
    raw = text.encode()
    data, pairs, _ = edit_spec(SpecText("/b/config.json", raw), hooks, previously_added(record, raw))
    return (None if data is None else data.decode()), (render(pairs, raw if data is None else data) if pairs else None)


def creates(text: str, *configurations: List[Any]) -> List[str]:
    """config.json after each of several creates of one bundle (the engine writes ``text`` once)."""
    record: Optional[bytes] = None
    result = []
    for hooks in configurations:
        data, record = recreate(text, hooks, record)
        text = text if data is None else data
        result.append(text)
    return result


def member_texts(text: str) -> Dict[str, str]:
    """Each top-level member's value as written."""
    _, members, _, _ = loads_object(text)
    return {key: text[value_start:value_end] for key, _, _, value_start, value_end, _ in members}


NUMBERS = ["1e400", "1e2", "-0", "0.30000000000000001", "12345678901234567890123", "1E-7", "-0.0", "5"]


@pytest.mark.parametrize("indent", [None, "\t", "    "])
def test_numbers_and_every_untouched_value_keep_their_text(indent: Optional[str]) -> None:
    body = {"ociVersion": "1.0.2", "process": {"args": ["/bin/true"]}, "hooks": {"prestart": [SETKEY]}}
    text = json.dumps(body, indent=indent)
    # numbers json would rewrite (1e400 -> Infinity, 1e2 -> 100.0, -0 -> 0 ...), in unknown fields
    numbers = "[" + ", ".join(NUMBERS) + "]"
    text = (
        text[: text.rindex("}")].rstrip()
        + f',{"" if indent is None else chr(10) + indent}"x-numbers": {numbers}'
        + "\n}"
    )
    text = text.replace('"/proc/42/exe"', '"/proc/42/exe", "x-vendor": 1e400')  # inside a kept hook too
    result = edit(text, [planned("prestart", "/bin/audit", "audit"), planned("poststop", "/bin/stop")])
    assert result is not None
    before, after = member_texts(text), member_texts(result)
    for key in ("ociVersion", "process", "x-numbers"):
        assert after[key] == before[key]
    assert after["x-numbers"] == numbers
    assert '"x-vendor": 1e400' in after["hooks"]  # Docker's hook: copied as text, first
    assert result.index("libnetwork-setkey") < result.index("/bin/audit")
    hooks = json.loads(result)["hooks"]
    assert [hook["path"] for hook in hooks["prestart"]] == ["/proc/42/exe", "/bin/audit"]
    assert hooks["poststop"] == [{"path": "/bin/stop"}]
    assert "Infinity" not in result and "NaN" not in result


# Documents of arbitrary members whose values are written in forms json does not reproduce.
number_text = (
    st.sampled_from(NUMBERS) | st.integers().map(str) | st.floats(allow_nan=False, allow_infinity=False).map(repr)
)
leaf = number_text | st.text(max_size=5).map(json.dumps) | st.sampled_from(["true", "null", "{}", "[ ]"])
value_text = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3).map(lambda items: "[" + " ,".join(items) + "]")
    | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(
        lambda d: "{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in d.items()) + "}"
    ),
    max_leaves=12,
)
keys = st.text(max_size=6).filter(lambda key: key not in ("hooks", "annotations"))


@settings(max_examples=200)
@given(st.dictionaries(keys, value_text, max_size=6), st.sampled_from([None, "\t", "  "]))
def test_any_document_keeps_every_member_but_hooks_and_the_record(members: Dict[str, str], indent: Any) -> None:
    if indent is None:
        text = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}"
    else:
        text = "{\n" + ",\n".join(f"{indent}{json.dumps(k)}: {v}" for k, v in members.items()) + "\n}\n"
    result = edit(text, [planned("prestart", "/bin/audit")])
    assert result is not None
    after = member_texts(result)
    assert {key: after[key] for key in members} == members
    assert list(after) == [*members, "hooks"]
    assert json.loads(result)["hooks"] == {"prestart": [{"path": "/bin/audit"}]}


def test_second_create_changes_nothing() -> None:
    hooks = [planned("prestart", "/bin/audit", "audit", timeout=5)]
    once, record = recreate('{"ociVersion": "1.0.2"}', hooks, None)
    assert once is not None and record is not None
    assert recreate(once, hooks, record) == (None, record)
    assert edit(once, hooks) is None  # without the record: the hook is there already


def test_changed_and_removed_hooks_are_replaced_not_doubled() -> None:
    text = json.dumps({"ociVersion": "1.0.2", "hooks": {"prestart": [SETKEY]}, "annotations": {"a": "b"}})
    first, second, third = creates(
        text,
        [planned("prestart", "/bin/audit", "audit", timeout=5), planned("poststop", "/bin/gone")],
        # the configuration changes: another timeout and args, the poststop hook removed, a new one
        [planned("prestart", "/bin/audit", "audit", "--v2", timeout=9), planned("poststart", "/bin/n")],
        [],  # nothing configured any more: the engine's own hook alone
    )
    spec = json.loads(second)
    assert spec["hooks"]["prestart"] == [SETKEY, {"path": "/bin/audit", "args": ["audit", "--v2"], "timeout": 9}]
    assert spec["hooks"]["poststop"] == []
    assert spec["hooks"]["poststart"] == [{"path": "/bin/n"}]
    spec = json.loads(third)
    assert spec["hooks"]["prestart"] == [SETKEY]
    for written in (first, second, third):
        assert json.loads(written)["annotations"] == {"a": "b"}  # the engine's, always


def test_a_fresh_spec_from_the_engine_never_matches_the_record() -> None:
    """Podman restarts write config.json anew into the same bundle: the record of the last create
    describes other bytes, so nothing of the fresh spec is taken out (its own hook equal to ours included)."""
    ours = planned("prestart", "/bin/audit")
    first, record = recreate("{}", [ours], None)
    assert first is not None and record is not None
    fresh = json.dumps({"hooks": {"prestart": [{"path": "/bin/audit"}]}, "annotations": {"x": "1"}})
    assert recreate(fresh, [], record) == (None, None)
    assert previously_added(record, fresh.encode()) == []
    assert previously_added(record, first.encode()) == [("prestart", {"path": "/bin/audit"})]


def test_an_engine_hook_equal_to_ours_is_never_taken_out() -> None:
    """Not added (it was there), so not recorded, so not removed when the configuration drops it."""
    text = json.dumps({"hooks": {"prestart": [{"path": "/bin/audit"}]}})
    assert edit(text, [planned("prestart", "/bin/audit")]) is None
    assert edit(text, []) is None


FORGED = [
    # what the record annotation of earlier versions looked like, naming the engine's security hook
    json.dumps([["createRuntime", {"path": "/usr/libexec/sechook"}]]),
    json.dumps([["prestart", SETKEY], ["createRuntime", {"path": "/usr/libexec/sechook"}]]),
]


@pytest.mark.parametrize("forged", FORGED)
@pytest.mark.parametrize("key", ["io.container-hooks.injected", "io.container-hooks.record"])
def test_an_annotation_naming_hooks_takes_nothing_out_and_stays_as_written(forged: str, key: str) -> None:
    """Whoever controls annotations (podman/docker run --annotation, pod annotations) controls no
    hook: the engine's hooks stay, the annotations reach runc as the engine wrote them."""
    engine = {"prestart": [SETKEY], "createRuntime": [{"path": "/usr/libexec/sechook"}]}
    text = json.dumps({"hooks": engine, "annotations": {key: forged, "other": "x"}})
    result = edit(text, [planned("poststop", "/bin/stop")])
    assert result is not None
    spec = json.loads(result)
    assert spec["hooks"] == {**engine, "poststop": [{"path": "/bin/stop"}]}
    assert member_texts(result)["annotations"] == member_texts(text)["annotations"]
    assert edit(text, []) is None  # nothing configured: config.json untouched


def test_conditions_see_the_engines_annotations_only() -> None:
    conditional = dict(planned("prestart", "/bin/annotated"), when={"annotations": [[".*", ".*"]]})
    first, second = creates("{}", [planned("poststop", "/bin/stop"), conditional], [conditional])
    assert json.loads(first)["hooks"] == {"poststop": [{"path": "/bin/stop"}]}
    assert json.loads(second)["hooks"] == {"poststop": []}


def test_a_member_too_deep_to_parse_is_copied_as_text() -> None:
    """runc (Go) reads 10,000 levels; Python's parsers stop near 1,000 before 3.12."""
    deep = "[" * 5000 + "]" * 5000
    text = '{"ociVersion": "1.0.2", "x-deep": ' + deep + "}"
    result = edit(text, [planned("prestart", "/bin/audit")])
    assert result is not None and result.startswith('{"ociVersion": "1.0.2", "x-deep": ' + deep + ",")
    with pytest.raises(ToolkitError, match='"hooks" is nested too deeply'):
        edit('{"hooks": {"prestart": [' + deep + "]}}", [planned("prestart", "/bin/audit")])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1,}', "invalid JSON"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": {"b": 1, "b": 1}}', "duplicate key 'b'"),
        ("[]", "must be a JSON object, not list"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": 1} x', "Extra data"),
        ('{"hooks": []}', '"hooks" must be an object'),
    ],
)
def test_bad_config_json_is_one_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(ToolkitError, match="^/b/config.json") as caught:
        edit(text, [planned("prestart", "/bin/audit")])
    assert message in str(caught.value)


def test_a_foreign_or_broken_record_takes_nothing_out() -> None:
    text = json.dumps({"hooks": {"prestart": [{"path": "/x"}]}})
    raw = text.encode()
    for record in (
        b"not a record\n[]\n" + raw,
        HEADER + b"not json\n" + raw,
        HEADER + json.dumps([["nostage", {"path": "/x"}]]).encode() + b"\n" + raw,
        HEADER + json.dumps({"a": 1}).encode() + b"\n" + raw,
        HEADER + json.dumps([["prestart", {"path": "/x"}]]).encode(),  # no config.json bytes
        HEADER + json.dumps([["prestart", {"path": "/x"}]]).encode() + b"\n" + raw[:-1],  # other bytes
        (HEADER + json.dumps([["prestart", {"path": "/x"}]]).encode() + b"\n" + raw)[:-1],  # cut short
    ):
        assert recreate(text, [], record) == (None, None)


def test_merging_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """4,000 hooks: each hook's identity is computed a bounded number of times (was n squared)."""
    calls = 0
    identity = merge.hook_identity

    def counted(hook: Any) -> Any:
        nonlocal calls
        calls += 1
        return identity(hook)

    monkeypatch.setattr(merge, "hook_identity", counted)
    existing = [{"path": f"/engine/{n}"} for n in range(2000)]
    wanted: List[Any] = [("prestart", {"path": f"/ours/{n}"}) for n in range(4000)]
    previous = wanted[:2000]
    spec_hooks = {"prestart": existing + [dict(hook) for _, hook in previous]}
    layout, added = merge.plan_merge(spec_hooks, wanted, previous)
    assert len(added) == 4000 and len(layout["prestart"]) == 6000
    assert calls <= 3 * (len(existing) + len(wanted) + len(previous))


def test_a_too_deep_member_that_is_also_broken_is_one_error() -> None:
    deep = "[" * 5000 + '"unterminated'
    with pytest.raises(ToolkitError, match=r"^/b/config.json: invalid JSON: "):
        edit('{"x": ' + deep, [planned("prestart", "/bin/audit")])


def test_the_edit_works_without_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    from chts.base import jsonio

    monkeypatch.setattr(jsonio, "_json", None)
    text = '{"ociVersion": "1.0.2", "x": 1e400, "hooks": {"prestart": [{"path": "/x", "timeout": 1e2}]}}'
    result = edit(text, [planned("prestart", "/bin/audit")])
    assert result is not None
    assert result.startswith(
        '{"ociVersion": "1.0.2", "x": 1e400, "hooks": {"prestart":[{"path": "/x", "timeout": 1e2},'
    )
    with pytest.raises(ToolkitError, match="invalid JSON"):
        edit('{"a": 1,}', [])


# ----------------------------------------------------------------------------- edges mutation testing found


@pytest.mark.parametrize(
    ("text", "indent"),
    [
        ("{}", None),
        ('{\n  "a": 1\n}', "  "),
        ('{\n\t"a": 1\n}', "\t"),
        ('{\n"a": 1}', None),
        ('\n  {"a": 1}', "  "),  # a newline first: the indentation is on the next line all the same
    ],
)
def test_detect_indent(text: str, indent: Optional[str]) -> None:
    from chts.shim.inject import detect_indent

    assert detect_indent(text) == indent


def test_hooks_in_an_empty_indented_object_close_it_on_a_line_of_its_own() -> None:
    result = edit("{\n  }", [planned("poststop", "/x")])
    assert result is not None and result.endswith("\n  }\n}")
    assert json.loads(result)["hooks"] == {"poststop": [{"path": "/x"}]}


def test_spec_text_keeps_its_path_and_names_it_in_errors() -> None:
    assert SpecText("/b/config.json", b"{}").path == "/b/config.json"
    with pytest.raises(ToolkitError) as caught:
        SpecText("/b/config.json", b"[1]")
    assert str(caught.value) == "/b/config.json: must be a JSON object, not list"
    with pytest.raises(ToolkitError, match=r"^/b/config.json:2:"):
        SpecText("/b/config.json", b'{\n"a": }')
    with pytest.raises(ToolkitError, match=r"^/b/config.json: not UTF-8 \(byte 7\)$"):
        SpecText("/b/config.json", b'{"a": "\xff"}')


def test_read_spec(tmp_path: Any) -> None:
    from chts.hooks.bundle import read_spec

    path = tmp_path / "config.json"
    assert read_spec(str(path)) == (None, b"")
    path.write_bytes(b'{"a": 1}')
    assert read_spec(str(path)) == ({"a": 1}, b'{"a": 1}')


def test_only_well_formed_record_pairs_are_ours() -> None:
    pairs = [["prestart", {"path": "/a"}], ["prestart"], ["nostage", {}], "x", ["poststop", {}, 1], ["poststop", 1]]
    record = HEADER + json.dumps(pairs).encode() + b"\n{}"
    assert previously_added(record, b"{}") == [("prestart", {"path": "/a"})]


def test_apply_hooks_adds_what_applies_and_names_each_added_entry_in_order() -> None:
    spec: Dict[str, Any] = {"process": {"args": ["sh"]}, "hooks": {"prestart": [dict(SETKEY)]}}
    entries = [planned("prestart", "/usr/bin/a"), planned("poststop", "/usr/bin/b", "b", "--now")]
    assert apply_hooks(spec, entries, "/run/b/config.json", ()) == entries
    assert spec["hooks"] == {
        "prestart": [SETKEY, {"path": "/usr/bin/a"}],
        "poststop": [{"path": "/usr/bin/b", "args": ["b", "--now"]}],
    }
    assert apply_hooks(spec, entries, "/run/b/config.json", ()) == []  # already there: nothing added


def test_apply_hooks_replaces_what_an_earlier_create_added() -> None:
    spec: Dict[str, Any] = {"hooks": {"prestart": [{"path": "/usr/bin/old"}]}}
    entries = [planned("prestart", "/usr/bin/new")]
    assert apply_hooks(spec, entries, "/b/config.json", [("prestart", {"path": "/usr/bin/old"})]) == entries
    assert spec["hooks"] == {"prestart": [{"path": "/usr/bin/new"}]}


def test_apply_hooks_on_a_marked_or_broken_spec() -> None:
    marked: Dict[str, Any] = {"hooks": {"prestart": [{"path": "/usr/bin/container-hooks"}]}}
    before = json.dumps(marked)
    assert apply_hooks(marked, [planned("prestart", "/usr/bin/a")], "/b/config.json", ()) == []
    assert json.dumps(marked) == before
    with pytest.raises(ToolkitError, match=r"^/b/config.json: "):
        apply_hooks({"hooks": {"prestart": 5}}, [planned("prestart", "/usr/bin/a")], "/b/config.json", ())


class Warnings:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def warning(self, message: str, **fields: Any) -> None:
        self.lines.append(message)


def test_the_plan_is_the_same_from_the_cache_and_its_problems_are_applied_each_time(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import posix
    import time

    from chts.config.toolkit import default_config
    from chts.shim import cache
    from chts.shim.inject import planned_hooks

    monkeypatch.setitem(posix.environ, b"CONTAINER_HOOKS_CACHE_DIR", str(tmp_path / "cache").encode())
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)
    hooks_json = tmp_path / "hooks.json"
    hooks_json.write_text('{"prestart": [{"path": "/usr/bin/a"}]}')
    hooks_json.chmod(0o644)
    broken = tmp_path / "hooks.d"
    broken.mkdir(mode=0o777)
    broken.chmod(0o777)  # an unusable source: skipped with a warning under on-error = skip
    for path in (hooks_json, broken, tmp_path):
        past = time.time() - 10
        os.utime(path, (past, past))
    config = default_config()
    config["container-hooks"].update({"path": str(hooks_json), "hooks-dirs": [str(broken)], "on-error": "skip"})
    first, second = Warnings(), Warnings()
    planned = planned_hooks(config, first)  # type: ignore[arg-type]
    assert [entry["hook"]["path"] for entry in planned] == ["/usr/bin/a"]
    assert planned_hooks(config, second) == planned  # type: ignore[arg-type]
    assert len(first.lines) == len(second.lines) == 1 and first.lines == second.lines
    assert any(name.startswith("hooks-") for name in os.listdir(tmp_path / "cache"))  # it was cached


@pytest.mark.parametrize("indent", [2, 4, "\t"])
def test_a_stage_the_spec_did_not_have_is_indented_like_the_rest(indent: Any) -> None:
    spec: Dict[str, Any] = {"ociVersion": "1.0.2", "hooks": {"prestart": [{"path": "/a"}]}}
    text = json.dumps(spec, indent=indent) + "\n"
    spec["hooks"]["poststop"] = [{"path": "/usr/bin/b", "args": ["b"]}]
    assert edit(text, [planned("poststop", "/usr/bin/b", "b")]) == json.dumps(spec, indent=indent) + "\n"
