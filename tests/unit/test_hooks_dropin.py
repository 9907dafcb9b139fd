"""chts.hooks.dropin: the oci-hooks(5) 1.0.0 parser's rejections, and the truth tables of every condition."""

# The tables below keep one case per line, so a reader scans them as tables.
# ruff: noqa: E501

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from chts.base.jsonio import line_at
from chts.errors import SKIPPED_FILE, ToolkitError
from chts.hooks.dropin import ENV_CONDITION, evaluate_when, first_bind_mount, parse_dropin
from chts.hooks.sources import apply_failure_policy

PATH = "/etc/container-hooks/hooks.d/10-x.json"


def dropin(**changes: Any) -> Dict[str, Any]:
    """A valid drop-in file's data with ``changes`` applied (a value of None deletes the key)."""
    data: Dict[str, Any] = {
        "version": "1.0.0",
        "hook": {"path": "/usr/bin/hook", "args": ["hook", "prestart"], "env": ["A=1"], "timeout": 5},
        "when": {"always": True},
        "stages": ["prestart"],
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def parse(data: Any) -> Dict[str, Any]:
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    return parse_dropin(text, PATH)


def rejection(data: Any) -> str:
    with pytest.raises(ToolkitError) as caught:
        parse(data)
    message = str(caught.value)
    assert message.startswith(PATH + ":")
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- accepted files


def test_a_valid_file_becomes_plain_data() -> None:
    parsed = parse(dropin(when={"always": True, "commands": ["nginx"]}, stages=["prestart", "poststop"]))
    assert parsed == {
        "hook": {"path": "/usr/bin/hook", "args": ["hook", "prestart"], "env": ["A=1"], "timeout": 5},
        "when": {"always": True, "commands": ["nginx"]},
        "stages": ["createRuntime", "poststop"],  # prestart is read as createRuntime, as Podman 5 does
    }


def test_podmans_documented_examples_parse() -> None:
    systemd = {
        "version": "1.0.0",
        "hook": {"path": "/usr/libexec/oci/hooks.d/oci-systemd-hook"},
        "when": {"commands": [".*/init$", ".*/systemd$"]},
        "stages": ["prestart", "poststop"],
    }
    nvidia = {
        "version": "1.0.0",
        "hook": {"path": "/usr/sbin/nvidia-container-runtime-hook", "args": ["nvidia-container-runtime-hook"]},
        "when": {"annotations": {"^com\\.example\\.department$": ".*fluid-dynamics$"}},
        "stages": ["prestart"],
    }
    assert parse(systemd)["when"] == {"commands": [".*/init$", ".*/systemd$"]}
    assert parse(nvidia)["when"] == {"annotations": [["^com\\.example\\.department$", ".*fluid-dynamics$"]]}


def test_a_stage_listed_twice_is_injected_once() -> None:
    assert parse(dropin(stages=["prestart", "poststop", "prestart"]))["stages"] == ["createRuntime", "poststop"]
    # prestart is createRuntime (Podman 5): listing both still injects the hook once.
    assert parse(dropin(stages=["createRuntime", "prestart"]))["stages"] == ["createRuntime"]


def test_precreate_is_a_stage_as_in_podman() -> None:
    assert parse(dropin(stages=["precreate", "poststop"]))["stages"] == ["precreate", "poststop"]


def test_empty_conditions_constrain_nothing_as_in_podman() -> None:
    # Go ranges over an empty map or list: no constraint. Kept beside a real condition.
    assert parse(dropin(when={"always": True, "annotations": {}, "commands": []}))["when"] == {"always": True}


def test_patterns_are_kept_as_written_and_matched_as_go() -> None:
    when = parse(dropin(when={"commands": ["^[[:alpha:]]+[[:^alpha:]]$"]}))["when"]
    assert when == {"commands": ["^[[:alpha:]]+[[:^alpha:]]$"]}
    assert evaluate_when(when, spec(args=["abc1"]))[0]
    assert not evaluate_when(when, spec(args=["abcd"]))[0]
    # $ is the end of the text (Python's re would also match before a final newline).
    yes = parse(dropin(when={"annotations": {"^a$": "^yes$"}}))["when"]
    assert evaluate_when(yes, spec(annotations={"a": "yes"}))[0]
    assert not evaluate_when(yes, spec(annotations={"a": "yes\n"}))[0]


def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    # Python's re takes hours on 40 letters and "!"; the NFA visits each state once per character.
    when = parse(dropin(when={"annotations": {"^a$": "^([a-z]+-?)*$"}}))["when"]
    assert not evaluate_when(when, spec(annotations={"a": "a" * 40 + "!"}))[0]


# ----------------------------------------------------------------------------- rejections

REJECTIONS = [
    # (what, file data, line or None, words the message must contain)
    ("hooks for hook", dropin(hook=None, hooks={"path": "/bin/true"}), 9, "unknown key 'hooks' (known: version, hook, when, stages); did you mean 'hook'?"),
    ("unknown top-level key", dropin(priority=1), 20, "unknown key 'priority'"),
    ("unknown when key", dropin(when={"alwyas": True}), 15, "when: unknown key 'alwyas' (known: always, annotations, commands, hasBindMounts, x-container-hooks-env); did you mean 'always'?"),
    ("unknown hook key", dropin(hook={"path": "/bin/true", "argv": ["x"]}), 5, "hook: unknown key 'argv'"),
    ('"always": "true"', dropin(when={"always": "true"}), 15, 'when.always: must be true or false, not the string "true"'),
    ("hasBindMounts as a number", dropin(when={"hasBindMounts": 1}), 15, "when.hasBindMounts: must be true or false, not 1"),
    ("when with no condition", dropin(when={}), 14, "when: has no condition, so the hook would never run"),
    ("when with only empty conditions", dropin(when={"commands": [], "annotations": {}}), 14, "when: has no condition"),
    ("when not an object", dropin(when=True), 14, "when: must be an object of conditions"),
    ("missing when", dropin(when=None), None, "missing required key 'when' (write \"when\": {\"always\": true} for every container)"),
    ("missing hook", dropin(hook=None), None, "missing required key 'hook'"),
    ("missing stages", dropin(stages=None), None, "missing required key 'stages'"),
    ("missing version: read as 0.1.0", dropin(version=None), 13, "unknown key 'when' (known: version, hook, arguments, stages, stage, cmds, cmd, annotations, annotation, hasbindmounts); a file without \"version\" is read in the 0.1.0 format, as Podman does: write \"version\": \"1.0.0\" for 1.0.0"),
    ("version 0.1.0 with a 1.0.0 body", dropin(version="0.1.0"), 14, "unknown key 'when'"),
    ("version as a number", dropin(version=1), 2, "version 1 is not supported: oci-hooks(5) files are version '1.0.0', or '0.1.0' (or no version)"),
    ("unknown version", dropin(version="2.0.0"), 2, "version '2.0.0' is not supported"),
    ("relative path", dropin(hook={"path": "bin/hook"}), 4, "hook.path: must be absolute, not 'bin/hook'"),
    ("no path", dropin(hook={"args": ["x"]}), 3, "hook: \"path\" is required"),
    ("timeout 0", dropin(hook={"path": "/bin/true", "timeout": 0}), 5, "hook.timeout: must be an integer from 1 to 9223372036 (seconds), not 0"),
    ("timeout negative", dropin(hook={"path": "/bin/true", "timeout": -3}), 5, "hook.timeout: must be an integer from 1 to 9223372036"),
    ("timeout as a string", dropin(hook={"path": "/bin/true", "timeout": "5"}), 5, "hook.timeout: must be an integer from 1 to 9223372036"),
    ("env without =", dropin(hook={"path": "/bin/true", "env": ["NOEQUALS"]}), 5, "hook.env: 'NOEQUALS' is not KEY=VALUE"),
    ("args not strings", dropin(hook={"path": "/bin/true", "args": ["a", 1]}), 5, "hook.args: must be a list of strings"),
    ("unknown stage", dropin(stages=["prestart", "prestrat"]), 19, "stages: unknown stage 'prestrat' (stages: prestart, createRuntime"),
    ("empty stages", dropin(stages=[]), 17, "stages: must be a non-empty list"),
    ("stages as a string", dropin(stages="prestart"), 17, "stages: must be a non-empty list"),
    ("invalid command regex", dropin(when={"commands": ["ok", "(unclosed"]}), 17, "when.commands: invalid regular expression '(unclosed': error parsing regexp: missing closing ): `(unclosed`"),
    ("lookahead, which Go refuses", dropin(when={"commands": ["(?=x)"]}), 16, "when.commands: invalid regular expression '(?=x)': error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
    ("backreference, which Go refuses", dropin(when={"commands": ["(a)\\1"]}), 16, "error parsing regexp: invalid escape sequence: `\\1`"),
    ("invalid annotation key regex", dropin(when={"annotations": {"[": "x"}}), 16, "when.annotations: invalid regular expression '['"),
    ("invalid annotation value regex", dropin(when={"annotations": {"k": "*x"}}), 16, "when.annotations: invalid regular expression '*x'"),
    ("invalid env regex", dropin(when={ENV_CONDITION: {"A": "+"}}), 16, f"when.{ENV_CONDITION}: invalid regular expression '+'"),
    ("annotations as a list", dropin(when={"annotations": ["k"]}), 15, "when.annotations: must be an object of key regex -> value regex"),
    ("annotation value not a string", dropin(when={"annotations": {"k": True}}), 15, "when.annotations: must be an object"),
    ("commands as a string", dropin(when={"commands": "nginx"}), 15, "when.commands: must be a list of regular expressions"),
    ("not an object", ["prestart"], None, "must be a JSON object with version, hook, when, stages, not list"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "line", "words"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_rejections_name_the_file_the_line_and_the_problem(data: Any, line: Optional[int], words: str) -> None:
    message = rejection(data)
    assert words in message
    if line is None:
        assert message.startswith(PATH + ": ")
    else:
        assert message.startswith(f"{PATH}:{line}: "), message


def test_the_line_points_at_the_offending_key_in_a_hand_written_file() -> None:
    text = '{\n  "version": "1.0.0",\n  "hook": {"path": "/bin/true"},\n  "when": {\n    "always": "true"\n  },\n  "stages": ["prestart"]\n}\n'
    assert rejection(text) == f'{PATH}:5: when.always: must be true or false, not the string "true"'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ('{"version": "1.0.0",}', ":1:21: invalid JSON"),
        ('{"version": "1.0.0", "version": "1.0.0"}', "duplicate key 'version'"),
        ('{"version": NaN}', "NaN is not valid JSON"),
    ],
)
def test_broken_json_is_one_line_naming_the_file(text: str, words: str) -> None:
    assert words in rejection(text)


def test_lines_are_found_by_the_scanner_not_by_a_search() -> None:
    text = '{\n "a": {\n  "b": 1\n },\n "b": 2,\n "s": [\n  "x",\n  "y"\n ]\n}'
    assert line_at(text, ["a", "b"]) == 3
    assert line_at(text, ["b"]) == 5  # the top-level "b", not the first "b" in the text
    assert line_at(text, ["s"], "y") == 8
    assert line_at(text, ["missing"]) is None


def test_a_rejection_points_at_the_member_even_when_its_name_appears_earlier() -> None:
    text = '{\n "version": "1.0.0",\n "hook": {"path": "/bin/x", "args": ["when"]},\n "stages": ["prestart"],\n "when": {"always": "yes"}\n}'
    assert rejection(text).startswith(f"{PATH}:5: when.always: must be true or false")


# ----------------------------------------------------------------------------- truth tables


def spec(
    args: Optional[List[str]] = None,
    annotations: Optional[Dict[str, str]] = None,
    env: Optional[List[str]] = None,
    mounts: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    result: Dict[str, Any] = {"process": {"args": args if args is not None else ["/bin/sh"], "env": env or []}}
    if annotations is not None:
        result["annotations"] = annotations
    if mounts is not None:
        result["mounts"] = mounts
    return result


BIND = {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rw"]}
RBIND_OPTION = {"destination": "/data", "type": "none", "source": "/srv", "options": ["rbind", "ro"]}
BIND_OPTION = {"destination": "/data", "source": "/srv", "options": ["bind"]}
TMPFS = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
PROC = {"destination": "/proc", "type": "proc", "source": "proc"}

TRUTH_TABLE = [
    # (case, when, spec, matched, reason fragment)
    ("always true", {"always": True}, spec(), True, "always: true"),
    ("always false never matches", {"always": False}, spec(), False, "always: false, which never matches"),
    ("always false beats a matching command", {"always": False, "commands": ["sh"]}, spec(), False, "always: false"),
    ("hasBindMounts, type bind", {"hasBindMounts": True}, spec(mounts=[PROC, BIND]), True, "hasBindMounts: bind mount on /data"),
    ("hasBindMounts, rbind option", {"hasBindMounts": True}, spec(mounts=[RBIND_OPTION]), True, "bind mount on /data"),
    ("hasBindMounts, bind option, no type", {"hasBindMounts": True}, spec(mounts=[BIND_OPTION]), True, "bind mount on /data"),
    ("hasBindMounts, none", {"hasBindMounts": True}, spec(mounts=[PROC, TMPFS]), False, "hasBindMounts: the container has no bind mount"),
    ("hasBindMounts, no mounts key", {"hasBindMounts": True}, spec(), False, "no bind mount"),
    ("hasBindMounts false never matches", {"hasBindMounts": False}, spec(mounts=[BIND]), False, "hasBindMounts: false, which never matches"),
    ("hasBindMounts false, without binds", {"hasBindMounts": False}, spec(), False, "false, which never matches"),
    ("command matches", {"commands": ["nginx"]}, spec(args=["/usr/sbin/nginx", "-g"]), True, "commands: '/usr/sbin/nginx' matches 'nginx'"),
    ("any command may match", {"commands": ["^redis", "nginx$"]}, spec(args=["nginx"]), True, "'nginx' matches 'nginx$'"),
    ("no command matches", {"commands": ["^nginx$"]}, spec(args=["/usr/sbin/nginx"]), False, "commands: '/usr/sbin/nginx' matches none of '^nginx$'"),
    ("only args[0] counts", {"commands": ["nginx"]}, spec(args=["/bin/sh", "-c", "nginx"]), False, "'/bin/sh' matches none of 'nginx'"),
    ("unanchored command regex", {"commands": ["gin"]}, spec(args=["nginx"]), True, "matches 'gin'"),
    ("no process.args", {"commands": ["."]}, {"process": {"args": []}}, False, "commands: the container has no process.args[0]"),
    ("no process", {"commands": ["."]}, {}, False, "no process.args[0]"),
    ("annotation matches", {"annotations": [["^com\\.example\\.dept$", "fluid"]]}, spec(annotations={"com.example.dept": "cfd-fluid-dynamics"}), True, "annotations: com.example.dept='cfd-fluid-dynamics' matches"),
    ("annotation value differs", {"annotations": [["^dept$", "^fluid$"]]}, spec(annotations={"dept": "solid"}), False, "annotations: dept='solid' matches '^dept$' but not the value '^fluid$'"),
    ("annotation name absent", {"annotations": [["^dept$", "."]]}, spec(annotations={"team": "x"}), False, "annotations: no name matches '^dept$'"),
    ("no annotations at all", {"annotations": [["^dept$", "."]]}, spec(), False, "no name matches"),
    ("every annotation pair must match", {"annotations": [["^a$", "1"], ["^b$", "2"]]}, spec(annotations={"a": "1", "b": "3"}), False, "b='3' matches '^b$' but not the value '2'"),
    ("every pair matched", {"annotations": [["^a$", "1"], ["^b$", "2"]]}, spec(annotations={"a": "1", "b": "2"}), True, "a='1' matches '^a$'='1', b='2' matches '^b$'='2'"),
    ("pair matched by a second key", {"annotations": [["^io\\.", "yes"]]}, spec(annotations={"io.a": "no", "io.b": "yes"}), True, "io.b='yes'"),
    ("unanchored annotation regexes", {"annotations": [["dept", "uid"]]}, spec(annotations={"com.dept.x": "fluid"}), True, "matches"),
    ("env matches", {ENV_CONDITION: [["^AUDIT$", "^1$"]]}, spec(env=["PATH=/bin", "AUDIT=1"]), True, f"{ENV_CONDITION}: AUDIT='1' matches '^AUDIT$'='^1$'"),
    ("env value differs", {ENV_CONDITION: [["^AUDIT$", "^1$"]]}, spec(env=["AUDIT=0"]), False, f"{ENV_CONDITION}: AUDIT='0' matches '^AUDIT$' but not the value '^1$'"),
    ("env absent", {ENV_CONDITION: [["^AUDIT$", "^1$"]]}, spec(env=["PATH=/bin"]), False, f"{ENV_CONDITION}: no name matches '^AUDIT$'"),
    ("env value with =", {ENV_CONDITION: [["^OPTS$", "^a=b$"]]}, spec(env=["OPTS=a=b"]), True, "OPTS='a=b'"),
    ("env empty value", {ENV_CONDITION: [["^AUDIT$", "^$"]]}, spec(env=["AUDIT="]), True, "AUDIT=''"),
    # combinations: kinds are ANDed, the first failing one decides
    ("always and command", {"always": True, "commands": ["sh"]}, spec(), True, "always: true; commands: '/bin/sh' matches 'sh'"),
    ("always and failing command", {"always": True, "commands": ["nginx"]}, spec(), False, "commands:"),
    ("binds and annotation, both", {"hasBindMounts": True, "annotations": [["a", "1"]]}, spec(mounts=[BIND], annotations={"a": "1"}), True, "hasBindMounts: bind mount on /data; annotations: a='1'"),
    ("binds and annotation, no binds", {"hasBindMounts": True, "annotations": [["a", "1"]]}, spec(annotations={"a": "1"}), False, "hasBindMounts:"),
    ("binds and annotation, no annotation", {"hasBindMounts": True, "annotations": [["a", "1"]]}, spec(mounts=[BIND]), False, "annotations:"),
    ("annotation and command, command fails", {"annotations": [["a", "1"]], "commands": ["nginx"]}, spec(annotations={"a": "1"}), False, "commands:"),
    ("command and env, env fails", {"commands": ["sh"], ENV_CONDITION: [["X", "1"]]}, spec(), False, f"{ENV_CONDITION}:"),
    ("command and env, both", {"commands": ["sh"], ENV_CONDITION: [["X", "1"]]}, spec(env=["X=1"]), True, f"commands: '/bin/sh' matches 'sh'; {ENV_CONDITION}: X='1'"),
    ("all five kinds", {"always": True, "hasBindMounts": True, "annotations": [["a", "1"]], "commands": ["sh"], ENV_CONDITION: [["X", "1"]]}, spec(mounts=[BIND], annotations={"a": "1"}, env=["X=1"]), True, "always: true; hasBindMounts"),
    ("all five kinds, env fails", {"always": True, "hasBindMounts": True, "annotations": [["a", "1"]], "commands": ["sh"], ENV_CONDITION: [["X", "1"]]}, spec(mounts=[BIND], annotations={"a": "1"}), False, f"{ENV_CONDITION}:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("when", "container", "matched", "reason"), [row[1:] for row in TRUTH_TABLE], ids=[row[0] for row in TRUTH_TABLE]
)
def test_truth_table(when: Any, container: Dict[str, Any], matched: bool, reason: str) -> None:
    got, why = evaluate_when(when, container)
    assert got is matched
    assert reason in why


def test_a_long_value_is_cut_in_the_reason_the_shim_logs() -> None:
    """A container's 100 KB annotation or argument must not become a 100 KB line in the shim's log."""
    long = "v" * 100_000
    when: Any = {"annotations": [["^team$", "^x$"]], "commands": ["^/bin/"]}
    for container in (spec(annotations={"team": long}), spec(annotations={"team": "x"}, args=["/bin/" + long])):
        matched, why = evaluate_when(when, container)
        assert len(why) < 600, why[:100]
        assert "... (100000 characters)" in why or "... (100005 characters)" in why
    assert evaluate_when({"annotations": [["^team$", "v"]]}, spec(annotations={"team": long}))[1].startswith(
        f"annotations: team={'v' * 120!r}... (100000 characters) matches"
    )


@pytest.mark.parametrize("key", ["always", "hasBindMounts"])
@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("binds", [True, False])
def test_boolean_conditions_full_table(key: str, value: bool, binds: bool) -> None:
    # always: its value; hasBindMounts: true and a bind mount; false never matches either.
    container = spec(mounts=[BIND] if binds else [])
    expected = value and (binds or key == "always")
    when: Any = {key: value}
    assert evaluate_when(when, container)[0] is expected


def test_parsed_when_and_matching_agree() -> None:
    # What the parser keeps is exactly what the matcher reads (the shim's cache holds the former).
    when = parse(dropin(when={"annotations": {"^a$": "1"}, "commands": ["sh$"], ENV_CONDITION: {"^X$": "."}}))["when"]
    assert evaluate_when(when, spec(annotations={"a": "1"}, env=["X=y"]))[0]
    assert not evaluate_when(when, spec(annotations={"a": "1"}))[0]


def test_malformed_specs_do_not_crash_matching() -> None:
    odd: Dict[str, Any] = {"process": "x", "annotations": ["a"], "mounts": "m"}
    assert not evaluate_when({"commands": ["."]}, odd)[0]
    assert not evaluate_when({"annotations": [[".", "."]]}, odd)[0]
    env_only: Any = {ENV_CONDITION: [[".", "."]]}
    assert not evaluate_when(env_only, odd)[0]
    assert first_bind_mount(odd) is None
    assert first_bind_mount({"mounts": ["x", {"type": "bind", "destination": "/d"}]}) == "/d"


# ----------------------------------------------------------------------------- 0.1.0 files

LEGACY_CONVERSIONS = [
    # (case, file data, parsed) — containers/common's 0.1.0 reader: path, args = [hook, *arguments], any-of
    ("cmds", {"hook": "/a/b/c", "stages": ["prestart"], "cmds": ["sh"]}, {"hook": {"path": "/a/b/c"}, "when": {"anyOf": True, "commands": ["sh"]}, "stages": ["createRuntime"]}),
    ("arguments", {"hook": "/a/b/c", "arguments": ["d", "e"], "stages": ["poststop"], "cmds": ["sh"]}, {"hook": {"path": "/a/b/c", "args": ["/a/b/c", "d", "e"]}, "when": {"anyOf": True, "commands": ["sh"]}, "stages": ["poststop"]}),
    ("stage and cmd synonyms", {"hook": "/a/b/c", "stage": ["prestart"], "cmd": ["sh"]}, {"hook": {"path": "/a/b/c"}, "when": {"anyOf": True, "commands": ["sh"]}, "stages": ["createRuntime"]}),
    ("annotations: any key, values joined", {"hook": "/a", "stages": ["prestart"], "annotations": ["^a$", "b"]}, {"hook": {"path": "/a"}, "when": {"anyOf": True, "annotations": [[".*", "^a$|b"]]}, "stages": ["createRuntime"]}),
    ("annotation synonym", {"hook": "/a", "stages": ["prestart"], "annotation": ["x"]}, {"hook": {"path": "/a"}, "when": {"anyOf": True, "annotations": [[".*", "x"]]}, "stages": ["createRuntime"]}),
    ("hasbindmounts", {"hook": "/a", "stages": ["prestart"], "hasbindmounts": True}, {"hook": {"path": "/a"}, "when": {"anyOf": True, "hasBindMounts": True}, "stages": ["createRuntime"]}),
    ("explicit version 0.1.0", {"version": "0.1.0", "hook": "/a", "stages": ["prestart"], "cmds": ["."]}, {"hook": {"path": "/a"}, "when": {"anyOf": True, "commands": ["."]}, "stages": ["createRuntime"]}),
    ("empty version", {"version": "", "hook": "/a", "stages": ["precreate"], "cmds": ["."]}, {"hook": {"path": "/a"}, "when": {"anyOf": True, "commands": ["."]}, "stages": ["precreate"]}),
    ("null is absent, as in Go", {"hook": "/a", "stages": ["prestart"], "cmds": ["."], "stage": None, "arguments": None}, {"hook": {"path": "/a"}, "when": {"anyOf": True, "commands": ["."]}, "stages": ["createRuntime"]}),
    ("empty arguments still set args", {"hook": "/a", "arguments": [], "stages": ["prestart"], "cmds": ["."]}, {"hook": {"path": "/a", "args": ["/a"]}, "when": {"anyOf": True, "commands": ["."]}, "stages": ["createRuntime"]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "parsed"), [c[1:] for c in LEGACY_CONVERSIONS], ids=[c[0] for c in LEGACY_CONVERSIONS]
)
def test_0_1_0_files_convert_as_podman_converts_them(data: Dict[str, Any], parsed: Dict[str, Any]) -> None:
    assert parse(data) == parsed


LEGACY_REJECTIONS = [
    ("stage and stages", {"hook": "/a", "stage": ["prestart"], "stages": ["prestart"], "cmds": ["."]}, "cannot set both 'stage' and 'stages'"),
    ("cmd and cmds", {"hook": "/a", "stages": ["prestart"], "cmd": ["."], "cmds": ["."]}, "cannot set both 'cmd' and 'cmds'"),
    ("annotation and annotations", {"hook": "/a", "stages": ["prestart"], "annotation": ["."], "annotations": ["."]}, "cannot set both 'annotation' and 'annotations'"),
    ("no hook", {"stages": ["prestart"], "cmds": ["."]}, "missing required key 'hook' (the hook's path); a file without \"version\""),
    ("hook object without version", {"hook": {"path": "/a"}, "stages": ["prestart"], "cmds": ["."]}, "hook: must be a string, the hook's path, not an object; a file without \"version\" is read in the 0.1.0 format"),
    ("relative hook", {"hook": "bin/a", "stages": ["prestart"], "cmds": ["."]}, "hook: must be absolute, not 'bin/a'"),
    ("empty hook", {"hook": "", "stages": ["prestart"], "cmds": ["."]}, "hook: is required and must be a string"),
    ("arguments not strings", {"hook": "/a", "arguments": [1], "stages": ["prestart"], "cmds": ["."]}, "arguments: must be a list of strings"),
    ("no stages", {"hook": "/a", "cmds": ["."]}, "missing required key 'stages'"),
    ("unknown stage, spelled stage", {"hook": "/a", "stage": ["prestrat"], "cmds": ["."]}, "stage: unknown stage 'prestrat'"),
    ("cmd not a list", {"hook": "/a", "stages": ["prestart"], "cmd": "sh"}, "cmd: must be a list of regular expressions"),
    ("invalid cmd regex", {"hook": "/a", "stages": ["prestart"], "cmds": ["(x"]}, "cmds: invalid regular expression '(x': error parsing regexp: missing closing ): `(x`"),
    ("invalid joined annotations", {"hook": "/a", "stages": ["prestart"], "annotations": ["a", "*"]}, "annotations: invalid regular expression 'a|*': error parsing regexp: missing argument to repetition operator: `*`"),
    ("hasbindmounts a string", {"hook": "/a", "stages": ["prestart"], "hasbindmounts": "true"}, "hasbindmounts: must be true or false"),
    ("typo", {"hook": "/a", "stages": ["prestart"], "cmdss": ["."]}, "unknown key 'cmdss' (known: version, hook, arguments, stages, stage, cmds, cmd, annotations, annotation, hasbindmounts); did you mean 'cmds'?"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "words"), [r[1:] for r in LEGACY_REJECTIONS], ids=[r[0] for r in LEGACY_REJECTIONS])
def test_0_1_0_rejections(data: Any, words: str) -> None:
    message = rejection(data)
    assert words in message, message
    assert not message.endswith(SKIPPED_FILE)  # a broken file the user meant: the failure policy decides


SKIPPED = [
    ("0.1.0 without a condition", {"hook": "/a", "stages": ["prestart"]}, "no cmds, annotations or hasbindmounts: Podman never injects such a 0.1.0 hook"),
    ("0.1.0 with empty cmds and no binds", {"hook": "/a", "stages": ["prestart"], "cmds": [], "hasbindmounts": False}, "no cmds, annotations or hasbindmounts"),
    ("1.0.0 without a condition", dropin(when={}), "when: has no condition, so the hook would never run (nor would Podman run it)"),
    ("a Unicode script", dropin(when={"commands": ["\\p{Greek}"]}), "when.commands: Unicode script \\p{Greek} is valid in Go but not supported by this toolkit"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "words"), [r[1:] for r in SKIPPED], ids=[r[0] for r in SKIPPED])
def test_files_podman_reads_but_never_uses_or_we_cannot_are_skipped_not_failed(data: Any, words: str) -> None:
    message = rejection(data)
    assert words in message and message.endswith(SKIPPED_FILE), message


def test_skipped_files_are_warnings_under_either_policy() -> None:
    skipped = f"{PATH}: when: has no condition{SKIPPED_FILE}"
    broken = f"{PATH}:3: hook.path: must be absolute"
    for policy in ("fail", "skip"):
        warnings: List[str] = []
        apply_failure_policy([skipped], policy, warnings.append)
        assert warnings == [f"skipping hook file: {skipped}"]
    warnings = []
    with pytest.raises(ToolkitError) as caught:
        apply_failure_policy([skipped, broken], "fail", warnings.append)
    assert str(caught.value) == broken and warnings == [f"skipping hook file: {skipped}"]


LEGACY_TRUTH_TABLE = [
    # 0.1.0: any condition is enough (containers/common's When.Or)
    ("cmds match", {"anyOf": True, "commands": ["sh$"]}, spec(), True, "commands: '/bin/sh' matches 'sh$' (0.1.0 file: any condition)"),
    ("cmds do not match", {"anyOf": True, "commands": ["nginx"]}, spec(), False, "commands: '/bin/sh' matches none of 'nginx'"),
    ("binds match, cmds do not", {"anyOf": True, "hasBindMounts": True, "commands": ["nginx"]}, spec(mounts=[BIND]), True, "hasBindMounts: bind mount on /data"),
    ("annotation value matches", {"anyOf": True, "annotations": [[".*", "^a$|b"]]}, spec(annotations={"x": "b"}), True, "annotations: x='b'"),
    ("no annotation value matches", {"anyOf": True, "annotations": [[".*", "^a$"]], "hasBindMounts": True}, spec(annotations={"x": "b"}), False, "hasBindMounts: the container has no bind mount; annotations: x='b' matches '.*' but not the value '^a$'"),
    ("hasbindmounts false counts for nothing", {"anyOf": True, "hasBindMounts": False, "commands": ["sh"]}, spec(mounts=[BIND]), True, "commands:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("when", "container", "matched", "reason"),
    [row[1:] for row in LEGACY_TRUTH_TABLE],
    ids=[row[0] for row in LEGACY_TRUTH_TABLE],
)
def test_0_1_0_truth_table(when: Any, container: Dict[str, Any], matched: bool, reason: str) -> None:
    got, why = evaluate_when(when, container)
    assert got is matched
    assert reason in why, why


def test_only_name_value_items_of_the_environment_are_matched() -> None:
    from chts.hooks.dropin import env_of

    spec = {"process": {"env": ["A=1", "B", "C=x=y", 3, "D="]}}
    assert env_of(spec) == [("A", "1"), ("C", "x=y"), ("D", "")]
    assert env_of({"process": {"env": "A=1"}}) == [] and env_of({"process": []}) == [] and env_of({}) == []
