"""The engine-independent verification of configure/unconfigure: each way an effective result can be wrong."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

from chts.ctk.runtime import first_difference, verification_problem
from chts.engines import EffectiveRuntimes, RuntimeRequest

SHIM = "/usr/bin/container-hooks-runtime"
NAME = "hooks"
RUNC = {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True}}
OURS = {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True, "BinaryName": SHIM}}
OTHER = {"sandbox_image": "mine"}


def view(default: Optional[str], runtimes: Dict[str, Any], other: Optional[Dict[str, Any]] = None) -> EffectiveRuntimes:
    return EffectiveRuntimes(default, runtimes, "file", OTHER if other is None else other)


def request(set_as_default: bool = False) -> RuntimeRequest:
    return RuntimeRequest("/etc/x.toml", NAME, SHIM, set_as_default)


BEFORE = view("runc", {"runc": RUNC})
CONFIGURED = view("runc", {"runc": RUNC, NAME: OURS})


def test_a_right_configure_and_unconfigure_pass() -> None:
    assert verification_problem(request(), BEFORE, CONFIGURED, True, True) is None
    as_default = view(NAME, {"runc": RUNC, NAME: OURS})
    assert verification_problem(request(True), BEFORE, as_default, True, True) is None
    assert verification_problem(request(), as_default, BEFORE, False, True) is None
    assert verification_problem(request(), CONFIGURED, BEFORE, False, True) is None


@pytest.mark.parametrize(
    ("after", "set_as_default", "says"),
    [
        (BEFORE, False, "runtime 'hooks' is missing from the effective configuration (seen by file)"),
        (view("runc", {"runc": RUNC, NAME: OURS}), True, "the effective default runtime is 'runc', not 'hooks'"),
        (view(NAME, {"runc": RUNC, NAME: OURS}), False, "the default runtime changed from 'runc' to 'hooks'"),
        (view("runc", {NAME: OURS}), False, "the default runtime 'runc' is not defined any more"),
        (view(NAME, {NAME: OURS}), True, "runtime 'runc' is gone"),
        (view("runc", {"runc": {**RUNC, "options": {}}, NAME: OURS}), False, "runtime 'runc' changed at options.Syst"),
        (view("runc", {"runc": RUNC, NAME: OURS, "x": RUNC}), False, "runtime 'x' appeared"),
        (view("runc", {"runc": RUNC, NAME: OURS}, {}), False, "sandbox_image changed"),
        (view("runc", {"runc": RUNC, NAME: {"runtime_type": "x", "options": {"BinaryName": SHIM}}}), False,
         "runtime 'hooks' does not carry the settings of 'runc'"),
        (view("runc", {"runc": RUNC, NAME: {**OURS, "options": {"SystemdCgroup": False, "BinaryName": SHIM}}}),
         False, "runtime 'hooks' does not carry the settings of 'runc'"),  # one nested value differs
    ],
)  # fmt: skip
def test_each_wrong_configure_is_named(after: EffectiveRuntimes, set_as_default: bool, says: str) -> None:
    problem = verification_problem(request(set_as_default), BEFORE, after, True, True)
    assert problem is not None and problem.startswith(says), problem


def test_an_unconfigure_that_leaves_our_runtime_is_named() -> None:
    problem = verification_problem(request(), CONFIGURED, CONFIGURED, False, True)
    assert problem == "runtime 'hooks' is still in the effective configuration (seen by file)"
    # nothing to remove (a runtime of that name the user defined): no complaint
    assert verification_problem(request(), CONFIGURED, CONFIGURED, False, False) is None


def test_our_settings_may_follow_the_previous_default_rather_than_runc() -> None:
    crun = {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": "/usr/bin/crun", "Root": "/run/crun"}}
    before = view("crun", {"runc": RUNC, "crun": crun})
    ours = {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": SHIM, "Root": "/run/crun"}}
    assert (
        verification_problem(request(), before, view("crun", {"runc": RUNC, "crun": crun, NAME: ours}), True, True)
        is None
    )


def test_with_no_default_known_our_settings_are_runc_s() -> None:
    before = view(None, {"runc": RUNC})
    assert verification_problem(request(), before, view(None, {"runc": RUNC, NAME: OURS}), True, True) is None
    bare = {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": SHIM}}
    problem = verification_problem(request(), before, view(None, {"runc": RUNC, NAME: bare}), True, True)
    assert problem == "runtime 'hooks' does not carry the settings of 'runc' (seen by file)"


def test_a_default_naming_no_runtime_leaves_runc_as_the_template() -> None:
    before = view("ghost", {"runc": RUNC})  # the engine's default is not defined (its own business)
    assert verification_problem(request(), before, view("ghost", {"runc": RUNC, NAME: OURS}), True, True) is None


def test_first_difference_names_the_key_path() -> None:
    assert first_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == "a.c"
    assert first_difference({"a": 1}, {"a": 1}) is None
    assert first_difference(1, 2) == "(top)"
