"""merge_hooks: append after existing hooks, idempotent without a marker, the original marker honoured."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Tuple

import pytest

from chts.hooks.merge import SpecError, has_marker, hook_identity, merge_hooks

SETKEY = {"path": "/proc/42/exe", "args": ["libnetwork-setkey", "-exec-root=/var/run/docker", "abc", "def"]}
AUDIT = {"path": "/usr/bin/audit", "args": ["audit", "--start"], "env": ["A=1"], "timeout": 5}
STOP = {"path": "/usr/bin/cleanup"}


def wanted(*pairs: Tuple[str, Dict[str, Any]]) -> List[Any]:
    return list(pairs)


def test_appends_after_dockers_own_prestart_hook() -> None:
    spec: Dict[str, Any] = {"ociVersion": "1.0.2", "hooks": {"prestart": [copy.deepcopy(SETKEY)]}}
    added = merge_hooks(spec, wanted(("prestart", AUDIT), ("poststop", STOP)))
    assert added == [("prestart", AUDIT), ("poststop", STOP)]
    assert spec["hooks"]["prestart"] == [SETKEY, AUDIT]
    assert spec["hooks"]["poststop"] == [STOP]


def test_second_merge_changes_nothing() -> None:
    spec: Dict[str, Any] = {"hooks": {"prestart": [SETKEY]}}
    merge_hooks(spec, wanted(("prestart", AUDIT)))
    before = copy.deepcopy(spec)
    assert merge_hooks(spec, wanted(("prestart", AUDIT))) == []
    assert spec == before


def test_hook_identity_is_path_args_env_timeout() -> None:
    spec: Dict[str, Any] = {"hooks": {"prestart": [dict(AUDIT)]}}
    other_timeout = dict(AUDIT, timeout=6)
    other_env = dict(AUDIT, env=["A=2"])
    no_args = {"path": AUDIT["path"]}
    added = merge_hooks(spec, wanted(("prestart", other_timeout), ("prestart", other_env), ("prestart", no_args)))
    assert len(added) == 3
    assert merge_hooks(spec, wanted(("poststart", AUDIT))) == [("poststart", AUDIT)]  # per stage


def test_spec_without_hooks_gets_them_at_the_end_and_keeps_key_order() -> None:
    spec: Dict[str, Any] = {"ociVersion": "1.0.2", "process": {}, "root": {}, "x-unknown": {"kept": True}}
    merge_hooks(spec, wanted(("createRuntime", STOP)))
    assert list(spec) == ["ociVersion", "process", "root", "x-unknown", "hooks"]
    assert spec["x-unknown"] == {"kept": True}


def test_null_hooks_are_replaced_in_place() -> None:
    spec: Dict[str, Any] = {"hooks": None, "root": {}}
    merge_hooks(spec, wanted(("poststop", STOP)))
    assert list(spec) == ["hooks", "root"]
    assert spec["hooks"] == {"poststop": [STOP]}


def test_marker_means_already_done() -> None:
    spec: Dict[str, Any] = {"hooks": {"prestart": [{"path": "/usr/bin/container-hooks"}]}}
    assert has_marker(spec)
    assert merge_hooks(spec, wanted(("prestart", AUDIT))) == []
    assert spec == {"hooks": {"prestart": [{"path": "/usr/bin/container-hooks"}]}}
    assert not has_marker({"hooks": {"poststop": [{"path": "/usr/bin/container-hooks"}]}})
    assert not has_marker({"hooks": {"prestart": [{"path": "/usr/bin/container-hooks-ctk"}]}})


def test_unknown_fields_of_existing_hooks_are_kept() -> None:
    existing = {"path": "/bin/x", "x-vendor": {"a": 1}}
    spec: Dict[str, Any] = {"hooks": {"prestart": [existing]}}
    merge_hooks(spec, wanted(("prestart", STOP)))
    assert spec["hooks"]["prestart"][0] is existing


@pytest.mark.parametrize(
    "hooks",
    [[], "x", {"prestart": {"path": "/x"}}, {"prestart": "x"}],
)
def test_wrongly_typed_hooks_are_an_error(hooks: Any) -> None:
    with pytest.raises(SpecError):
        merge_hooks({"hooks": hooks}, wanted(("prestart", STOP)))


def test_all_six_stages() -> None:
    stages = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    spec: Dict[str, Any] = {}
    merge_hooks(spec, [(stage, {"path": f"/hooks/{stage}"}) for stage in stages])
    assert list(spec["hooks"]) == stages


# ----------------------------------------------------------------------------- edges mutation testing found


def test_identity_of_what_is_not_a_hook() -> None:
    assert hook_identity("x") == ("not a hook", "'x'")
    assert hook_identity(1) != hook_identity("1")
    assert hook_identity(None) != hook_identity({})


def test_hooks_with_unhashable_fields_are_compared_by_text() -> None:
    odd = {"path": "/a", "args": [["nested"]], "timeout": {"s": 1}}
    assert isinstance(hook_identity(odd), str)
    assert hook_identity(odd) == hook_identity(json.loads(json.dumps(odd)))
    spec: Dict[str, Any] = {"hooks": {"prestart": [odd]}}
    assert merge_hooks(spec, wanted(("prestart", dict(odd)), ("prestart", {"path": "/b"}))) == [
        ("prestart", {"path": "/b"})
    ]


def test_has_marker_is_a_bool() -> None:
    assert has_marker({}) is False
    assert has_marker({"hooks": {"prestart": [{"path": "/usr/bin/container-hooks"}]}}) is True


def test_one_previous_hook_takes_out_one_equal_hook_only() -> None:
    """An engine's hook equal to ours stays: previous removes as many copies as it lists, no more."""
    a, b = {"path": "/a"}, {"path": "/b"}
    spec: Dict[str, Any] = {"hooks": {"prestart": [dict(b), dict(a), dict(a)]}}
    assert merge_hooks(spec, [], wanted(("prestart", a))) == []
    assert spec["hooks"]["prestart"] == [b, a]


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(SpecError, match="^unknown hook stage 'nope'$"):
        merge_hooks({}, [("nope", {"path": "/a"})])


def test_hooks_differing_only_in_args_are_two_hooks_and_one_wanted_twice_is_added_once() -> None:
    spec: Dict[str, Any] = {"hooks": {"prestart": [dict(AUDIT)]}}
    other_args = dict(AUDIT, args=["audit", "--stop"])
    added = merge_hooks(spec, wanted(("prestart", other_args), ("prestart", STOP), ("prestart", STOP)))
    assert added == [("prestart", other_args), ("prestart", STOP)]
    assert spec["hooks"]["prestart"] == [AUDIT, other_args, STOP]
