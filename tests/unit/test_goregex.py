"""chts.hooks.goregex against Go's regexp itself: the same patterns accepted and refused, the same matches."""

from __future__ import annotations

import random
from typing import List, Optional, Tuple

import pytest
from go_oracle import GoOracle, go_oracle  # noqa: F401  (the fixture)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chts.hooks.goregex import (
    CATEGORIES,
    SCRIPTS,
    GiveUp,
    GoRegexError,
    LazyDFA,
    Matcher,
    UnsupportedRegex,
    compile_pattern,
    match_program,
    match_string,
    run,
)


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


def test_go_refusals_keep_gos_message() -> None:
    with pytest.raises(GoRegexError) as caught:
        compile_pattern("(?=a)")
    assert str(caught.value) == "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
    with pytest.raises(GoRegexError) as caught:
        compile_pattern("(nginx")
    assert str(caught.value) == "error parsing regexp: missing closing ): `(nginx`"


def test_category_and_script_names_are_gos(go_oracle: GoOracle) -> None:  # noqa: F811
    tables = go_oracle.tables()
    assert sorted(CATEGORIES) == tables["categories"]
    assert set(tables["scripts"]) <= SCRIPTS


def test_scripts_are_refused_as_unsupported_not_as_invalid() -> None:
    with pytest.raises(UnsupportedRegex, match=r"\\p\{Greek\} is valid in Go but not supported"):
        compile_pattern("\\p{Greek}")


def test_programs_are_plain_data_marshal_stores() -> None:
    import marshal

    for pattern in ("^([a-z]+-?)*$", "(?i)\\pL[[:^digit:]]", "^exact$"):
        program = compile_pattern(pattern)
        assert marshal.loads(marshal.dumps(program)) == program


# ----------------------------------------------------------------------------- linear time


def test_catastrophic_pattern_takes_linear_steps() -> None:
    program = compile_pattern("^([a-z]+-?)*$")
    assert program[0] == "nfa"
    size = len(program[1])
    for letters in (40, 400, 4000):
        matched, steps = run(program[1], "a" * letters + "!", program[2])
        assert not matched
        # Each position visits each instruction at most twice (start thread + transitions).
        assert steps <= 2 * size * (letters + 2)


def test_steps_grow_linearly_with_the_input() -> None:
    program = compile_pattern("(x+x+)+y|(a|aa)*c")[1]
    small = run(program, "x" * 1000)[1]
    large = run(program, "x" * 4000)[1]
    assert large <= 4.1 * small


# ----------------------------------------------------------------------------- generated differential tests

ATOMS = ["a", "b", "-", ".", "\\n", "\\.", "[ab]", "[^a]", "[a-c]", "\\d", "\\w", "\\s", "\\b", "\\B",
         "^", "$", "\\A", "\\z", "[[:alpha:]]", "[[:^space:]]", "\\pL", "\\p{Lu}", "\\PN", "é", "K",
         "\\x41", "[\\d-]", "(?i:b)", "\\Q.*\\E", "\\S", "\\W", "[^\\d\\s]", "[\\pL\\d]", "[[:word:]]",
         "\\x{212A}", "(?-i:k)", "(?s:.)", "[a-]", "[]a]", "\\p{Ll}", "[^\\n]", "\u017f", "\u03a3",
         "[k-s]"]  # fmt: skip
QUANTIFIERS = ["", "", "", "*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "{0}", "{2,}", "??", "+?"]


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            inner = draw(patterns(depth + 1))
            alternative = draw(patterns(depth + 1)) if draw(st.booleans()) else None
            atom = "(" + inner + ("|" + alternative if alternative is not None else "") + ")"
        else:
            atom = draw(st.sampled_from(ATOMS))
        pieces.append(atom + draw(st.sampled_from(QUANTIFIERS)))
    prefix = draw(st.sampled_from(["", "", "(?i)", "(?s)", "(?m)", "(?im)"]))
    return prefix + "".join(pieces)


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


def test_a_huge_program_is_unsupported_not_invalid() -> None:
    # Go compiles it (up to its own limit); matching it here would cost memory for nothing a hook needs.
    with pytest.raises(UnsupportedRegex, match=r"would compile to more than 200000 instructions"):
        compile_pattern("(?:a{1000})" * 150)


def test_named_groups_of_go_1_22_are_accepted_and_lookbehind_still_refused() -> None:
    # Podman 5 is built with Go >= 1.22, which reads (?<name>...) as (?P<name>...); the oracle's Go 1.19 does not.
    assert match_program(compile_pattern("^(?<major>\\d+)\\.(?P<minor>\\d+)$"), "1.22")
    for pattern, fragment in (("(?<=a)b", "(?<"), ("(?<!a)b", "(?<"), ("(?<>a)", "(?<>")):
        with pytest.raises(GoRegexError) as caught:
            compile_pattern(pattern)
        assert str(caught.value).endswith(f": `{fragment}`"), str(caught.value)


# ----------------------------------------------------------------------------- the lazy DFA

# Issue 18: values of 100 KB held a create for minutes in the NFA (161 s, 27.7 s, 10.5 s).
SLOW_IN_THE_NFA = [
    ("(?:[a-z]{0,1000})x", "a" * 100_000, False),
    ("(?:[a-z]{0,1000})x", "a" * 99_999 + "x", True),
    ("\\w{8,64}@corp\\.example\\.com", "a" * 100_000, False),
    ("\\w{8,64}@corp\\.example\\.com", "a" * 100_000 + "@corp.example.com", True),
    ("(?i)\\pL{1000}$", "\u00e9" * 3000, True),
    ("(?i)\\pL{1000}$", "\u00e9" * 3000 + "1", False),
]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"), SLOW_IN_THE_NFA, ids=[f"{c[0]}-{c[2]}" for c in SLOW_IN_THE_NFA]
)
def test_long_values_are_decided_by_the_dfa(pattern: str, text: str, expected: bool) -> None:
    # The DFA reads a character with one dict lookup once its states are built (about one per
    # counted repetition here), where the NFA stepped every live thread: the whole issue's cost.
    matcher = Matcher(compile_pattern(pattern))
    assert matcher.match(text) is expected
    assert matcher.decided_by == "dfa"
    assert matcher.dfa is not None and len(matcher.dfa.states) <= 1100


def test_a_state_explosion_falls_back_to_the_nfa() -> None:
    # (a|b)*a(a|b){12}c: one DFA state per 13-character window, each new on this input.
    pattern = "[ab]*a[ab]{12}c"
    rng = random.Random(18)
    text = "".join(rng.choice("ab") for _ in range(60_000))
    matcher = Matcher(compile_pattern(pattern))
    matcher.dfa = LazyDFA(matcher.program[1], matcher.program[2], max_cells=20_000)
    assert matcher.match(text) is False
    assert matcher.decided_by == "nfa"
    assert matcher.match(text + "a" * 13 + "c") is True
    assert matcher.match("aac") is False and matcher.decided_by == "dfa"  # a fresh DFA for the next value


def test_match_string_keeps_one_matcher_per_pattern() -> None:
    assert match_string("^a+$", "aaa") and not match_string("^a+$", "aab")
    assert match_string("(?i)nginx", "/usr/sbin/NGINX")


def dfa_search(pattern: str, text: str, max_cells: int) -> Optional[bool]:
    """The DFA's answer (None when it gives up); literal programs go through the NFA's compiler too."""
    program = compile_pattern(pattern)
    if program[0] != "nfa":
        return None
    try:
        return LazyDFA(program[1], program[2], max_cells=max_cells).search(text)
    except GiveUp:
        return None


# Assertions and the characters they look at (newlines, word and non-word, case-folding orbits).
DFA_ALPHABET = "ab \n_K\u212a1."


@settings(max_examples=500, deadline=None)
@given(
    pattern=patterns(),
    texts=st.lists(st.text(alphabet=DFA_ALPHABET, max_size=12), min_size=1, max_size=4),
    max_cells=st.sampled_from([150, 400, 2_000_000]),
)
def test_dfa_agrees_with_the_nfa(pattern: str, texts: List[str], max_cells: int) -> None:
    # Small caches restart mid-text (or give up): the answer must not change.
    try:
        program = compile_pattern(pattern)
    except GoRegexError:
        return
    if program[0] != "nfa":
        return
    dfa = LazyDFA(program[1], program[2], max_cells=max_cells)
    for text in texts:  # one DFA for several texts, as match_string keeps it
        expected = run(program[1], text, program[2])[0]
        try:
            assert dfa.search(text) is expected, f"{pattern!r} on {text!r}"
        except GiveUp:
            dfa = LazyDFA(program[1], program[2], max_cells=max_cells)


def test_dfa_assertions_look_at_both_neighbours() -> None:
    cases = [
        ("\\bab\\b", ["ab", "ab.", "xab", "_ab", "a ab\n"], [True, True, False, False, True]),
        ("\\Bb", ["ab", " b", "b"], [True, False, False]),
        ("(?m)^b$", ["a\nb\nc", "ab", "b\n", "\nb"], [True, False, True, True]),
        ("^b$|\\Ac", ["b", "b\n", "cx", "xc"], [True, False, True, False]),
        ("a$\\z", ["a", "ba", "a\n"], [True, True, False]),
        ("\\b", ["", " ", "a"], [False, False, True]),
        ("^a*$", ["", "\n", "aa"], [True, False, True]),
        ("(?m)^$", ["", "\n", "a"], [True, True, False]),
    ]
    for pattern, texts, expected in cases:
        assert [dfa_search(pattern, text, 2_000_000) for text in texts] == expected, pattern
