"""chts.hooks.goregex against Go's regexp itself (the oracle, tests/goregex_oracle): the same patterns
accepted and refused, the same matches. Apart from test_goregex.py, whose tests mutation testing runs:
every one of these builds or asks the Go program, seconds each."""

from __future__ import annotations

from typing import List, Optional, Tuple

import pytest
from go_oracle import GoOracle, go_oracle  # noqa: F401  (the fixture)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from regex_patterns import patterns

from chts.hooks.goregex import CATEGORIES, SCRIPTS, GoRegexError, compile_pattern, match_program


def ours(pattern: str, inputs: List[str]) -> Tuple[Optional[str], List[bool]]:
    try:
        program = compile_pattern(pattern)
    except GoRegexError as exc:
        return str(exc), [False] * len(inputs)
    return None, [match_program(program, text) for text in inputs]


def assert_same(oracle: GoOracle, pattern: str, inputs: List[str]) -> None:
    expected = oracle.ask(pattern, inputs)
    assert ours(pattern, inputs) == expected, f"pattern {pattern!r} on {inputs!r}"


# The issue's cases: where Python's re and Go differ, Go is right.
ISSUE_CASES = [
    ("^yes$", ["yes", "yes\n", "yes\r"]),  # $ is the end of the text, not before a final newline
    ("[[:^digit:]]", ["1", "a", "^", ":"]),  # a negated POSIX class, not a set of characters
    ("[[:digit:]]+", ["abc", "x9"]),
    ("\\pL", ["é", "1", "Ω", "_"]),
    ("\\PL", ["é", "1"]),
    ("\\p{Lu}\\p{Ll}", ["Ab", "ab", "ÉÉ"]),
    ("\\p{^N}", ["1", "x"]),
    ("a\\z", ["a", "a\n", "ba"]),
    ("\\Aab", ["ab", "cab"]),
    ("(?i)nginx", ["NGINX", "/usr/sbin/Nginx", "ngin"]),
    ("(?i)k", ["\u212a", "K", "x"]),  # Kelvin sign folds to k in Go
    ("(?s)a.b", ["a\nb"]),
    ("a.b", ["a\nb", "axb"]),
    ("(?m)^b$", ["a\nb\nc", "ab"]),
    ("\\Qa.b\\E+", ["a.bbb", "axb"]),
    ("(?P<name>x+)y", ["xxy", "y"]),
    ("x{2,3}$", ["xx", "x"]),
    ("x{2}{3}", []),
    ("a{1001}", []),
    ("(a{100}){100}", []),
    ("(?=a)", []),
    ("(?!a)", []),
    ("(?<=a)b", []),
    ("(a)\\1", []),
    ("\\Z", []),
    ("a**", []),
    ("(nginx", []),
    ("nginx)", []),
    ("[a", []),
    ("[z-a]", []),
    ("\\p{Foo}", []),
    ("[[:foo:]]", []),
    ("a{,5}", ["a{,5}", "a"]),  # not a repetition: literal braces
    ("a{01}", ["a{01}"]),
    ("\\bfoo\\b", ["a foo.", "afoo"]),
    ("[^a]", ["\n", "a"]),
    ("\\x{263a}|\\x41", ["\u263a", "A"]),
    ("\\101\\0", ["A\x00"]),
    ("(?i)[^k]", ["K", "\u212a", "x"]),
    ("(?i)\\W", ["\u212a", "!"]),
    ("(|a)+b", ["b", "aab"]),
    ("(?i:A)a", ["aa", "aA"]),
    ("(?U)a+?", ["aa"]),
    ("(?)", [""]),
    ("(?-)", []),
    ("(?i-)", []),
    ("\\C", []),
    ("\\", []),
    ("*a", []),
    ("a|*", []),
    ("^*", ["x"]),
    ("\\8", []),
    ("\\_\\-", ["_-"]),
]


@pytest.mark.parametrize(("pattern", "inputs"), ISSUE_CASES, ids=[case[0] for case in ISSUE_CASES])
def test_issue_cases_as_go(go_oracle: GoOracle, pattern: str, inputs: List[str]) -> None:  # noqa: F811
    assert_same(go_oracle, pattern, inputs)


def test_category_and_script_names_are_gos(go_oracle: GoOracle) -> None:  # noqa: F811
    tables = go_oracle.tables()
    assert sorted(CATEGORIES) == tables["categories"]
    assert set(tables["scripts"]) <= SCRIPTS


# ----------------------------------------------------------------------------- generated differential tests

# Case-folding orbits: Kelvin sign with k, long s with s, the three sigmas.
INPUT_ALPHABET = "ab-.\nAKé1 _\u212a\u017fsS\u03a3\u03c3\u03c2k]"
INPUTS = st.lists(st.text(alphabet=INPUT_ALPHABET, max_size=8), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=patterns(), inputs=INPUTS)
def test_generated_patterns_match_as_go(go_oracle: GoOracle, pattern: str, inputs: List[str]) -> None:  # noqa: F811
    assert_same(go_oracle, pattern, inputs)


# Raw strings over regex syntax: mostly invalid, which is the point (accept and refuse as Go does).
SYNTAX = "ab()[]{}*+?|^$\\.-:,0123PpdwQEx<>=!imsU_"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=st.text(alphabet=SYNTAX, max_size=10), inputs=INPUTS)
def test_arbitrary_syntax_is_accepted_and_refused_as_go(go_oracle: GoOracle, pattern: str, inputs: List[str]) -> None:  # noqa: F811
    if "(?<" in pattern and "(?<=" not in pattern and "(?<!" not in pattern:
        return  # (?<name>...): Go 1.22 (Podman 5) accepts it, the oracle's Go 1.19 does not
    expected_error, expected = go_oracle.ask(pattern, inputs)
    error, matched = ours(pattern, inputs)
    assert error == expected_error, pattern  # Go's message, fragment included
    if error is None:
        assert matched == expected, f"{pattern!r} on {inputs!r}"


NESTINGS = [
    ("capturing groups", "(", ")", [999, 1000]),
    ("non-capturing alternations", "(?:a|", ")", [999, 1000, 2000]),
    ("non-capturing groups", "(?:", ")", [999, 1000]),
    ("stars", "(?:a*", ")", [499, 500]),
    ("capturing stars", "(a*", ")", [333, 334]),
]


@pytest.mark.parametrize(("opening", "closing", "depths"), [n[1:] for n in NESTINGS], ids=[n[0] for n in NESTINGS])
def test_nesting_limits_as_go(go_oracle: GoOracle, opening: str, closing: str, depths: List[int]) -> None:  # noqa: F811
    # Go refuses expressions nesting over 1000 levels, counting as its parser builds them.
    for depth in depths:
        assert_same(go_oracle, opening * depth + "b" + closing * depth, ["b", "a"])
