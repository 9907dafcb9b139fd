"""chts.dropin_hooks: the oci-hooks(5) 1.0.0 parser's rejections, and the truth tables of every condition."""

# The tables below keep one case per line, so a reader scans them as tables.
# ruff: noqa: E501

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from chts.dropin_hooks import ENV_CONDITION, evaluate_when, first_bind_mount, line_of, parse_dropin
from chts.errors import ToolkitError

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
        "stages": ["prestart", "poststop"],
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
    assert parse(dropin(stages=["prestart", "poststop", "prestart"]))["stages"] == ["prestart", "poststop"]


def test_empty_conditions_constrain_nothing_as_in_podman() -> None:
    # Go ranges over an empty map or list: no constraint. Kept beside a real condition.
    assert parse(dropin(when={"always": True, "annotations": {}, "commands": []}))["when"] == {"always": True}


def test_posix_bracket_classes_are_translated() -> None:
    when = parse(dropin(when={"commands": ["^[[:alpha:]]+[[:digit:]]$"]}))["when"]
    assert when == {"commands": ["^[A-Za-z]+[0-9]$"]}
    assert evaluate_when(when, spec(args=["abc1"]))[0]
    assert not evaluate_when(when, spec(args=["abc:"]))[0]


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
    ("missing version", dropin(version=None), None, "missing required key 'version' (write \"version\": \"1.0.0\")"),
    ("version 0.1.0", dropin(version="0.1.0"), 2, "version '0.1.0' is not supported: this toolkit reads oci-hooks(5) version '1.0.0' files"),
    ("version as a number", dropin(version=1), 2, "version 1 is not supported"),
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
    ("invalid command regex", dropin(when={"commands": ["ok", "(unclosed"]}), 17, "when.commands: invalid regular expression '(unclosed': missing ), unterminated subpattern"),
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


def test_line_of_finds_nested_keys_and_values() -> None:
    text = '{\n "a": {\n  "b": 1\n },\n "b": 2,\n "s": [\n  "x",\n  "y"\n ]\n}'
    assert line_of(text, ["a", "b"]) == 3
    assert line_of(text, ["b"]) == 3  # first "b": a search, not a parser
    assert line_of(text, ["s"], "y") == 8
    assert line_of(text, ["missing"]) is None


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
def test_truth_table(when: Dict[str, Any], container: Dict[str, Any], matched: bool, reason: str) -> None:
    got, why = evaluate_when(when, container)
    assert got is matched
    assert reason in why


@pytest.mark.parametrize("key", ["always", "hasBindMounts"])
@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("binds", [True, False])
def test_boolean_conditions_full_table(key: str, value: bool, binds: bool) -> None:
    # always: its value; hasBindMounts: true and a bind mount; false never matches either.
    container = spec(mounts=[BIND] if binds else [])
    expected = value and (binds or key == "always")
    assert evaluate_when({key: value}, container)[0] is expected


def test_parsed_when_and_matching_agree() -> None:
    # What the parser keeps is exactly what the matcher reads (the shim's cache holds the former).
    when = parse(dropin(when={"annotations": {"^a$": "1"}, "commands": ["sh$"], ENV_CONDITION: {"^X$": "."}}))["when"]
    assert evaluate_when(when, spec(annotations={"a": "1"}, env=["X=y"]))[0]
    assert not evaluate_when(when, spec(annotations={"a": "1"}))[0]


def test_malformed_specs_do_not_crash_matching() -> None:
    odd: Dict[str, Any] = {"process": "x", "annotations": ["a"], "mounts": "m"}
    assert not evaluate_when({"commands": ["."]}, odd)[0]
    assert not evaluate_when({"annotations": [[".", "."]]}, odd)[0]
    assert not evaluate_when({ENV_CONDITION: [[".", "."]]}, odd)[0]
    assert first_bind_mount(odd) is None
    assert first_bind_mount({"mounts": ["x", {"type": "bind", "destination": "/d"}]}) == "/d"
