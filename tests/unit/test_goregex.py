"""chts.hooks.goregex on its own: refusals, linear time, the lazy DFA against the NFA (Go: test_goregex_oracle)."""

from __future__ import annotations

import random
import string
from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from regex_patterns import patterns

from chts.hooks.goregex import (
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


def test_go_refusals_keep_gos_message() -> None:
    with pytest.raises(GoRegexError) as caught:
        compile_pattern("(?=a)")
    assert str(caught.value) == "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
    with pytest.raises(GoRegexError) as caught:
        compile_pattern("(nginx")
    assert str(caught.value) == "error parsing regexp: missing closing ): `(nginx`"


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
    small = run(program, "x" * 1000, False)[1]
    large = run(program, "x" * 4000, False)[1]
    assert large <= 4.1 * small


def test_a_huge_program_is_unsupported_not_invalid() -> None:
    # Go compiles it (up to its own limit); matching it here would cost memory for nothing a hook needs.
    with pytest.raises(UnsupportedRegex, match=r"would compile to more than 200000 instructions") as caught:
        compile_pattern("(?:a{1000})" * 150)
    assert f"pattern {('(?:a{1000})' * 6)[:60] + '...'!r} would" in str(caught.value)  # a long one is cut


# The ASCII classes as Go defines them (regexp/syntax: perl_groups.go, the POSIX table), stated
# from Python's own constants rather than from the engine's tables.
ASCII = "".join(map(chr, range(128)))
CLASSES = {
    "\\d": string.digits,
    "\\s": "\t\n\f\r ",  # Go's \s has no \v
    "\\w": string.ascii_letters + string.digits + "_",
    "[[:alnum:]]": string.ascii_letters + string.digits,
    "[[:alpha:]]": string.ascii_letters,
    "[[:ascii:]]": ASCII,
    "[[:blank:]]": " \t",
    "[[:cntrl:]]": "".join(map(chr, range(32))) + "\x7f",
    "[[:digit:]]": string.digits,
    "[[:graph:]]": "".join(map(chr, range(33, 127))),
    "[[:lower:]]": string.ascii_lowercase,
    "[[:print:]]": "".join(map(chr, range(32, 127))),
    "[[:punct:]]": string.punctuation,
    "[[:space:]]": " \t\n\r\x0b\x0c",
    "[[:upper:]]": string.ascii_uppercase,
    "[[:word:]]": string.ascii_letters + string.digits + "_",
    "[[:xdigit:]]": string.hexdigits,
}


@pytest.mark.parametrize("pattern", list(CLASSES))
def test_ascii_classes_hold_exactly_their_characters(pattern: str) -> None:
    program = compile_pattern(f"^{pattern}$")
    members = "".join(char for char in ASCII + "\u00e9\u212a" if match_program(program, char))
    assert members == "".join(sorted(CLASSES[pattern]))


def test_escapes_of_control_characters() -> None:
    for escape, char in (("a", "\a"), ("f", "\f"), ("n", "\n"), ("r", "\r"), ("t", "\t"), ("v", "\v")):
        program = compile_pattern(f"^\\{escape}$")
        assert match_program(program, char) and not match_program(program, escape), escape


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
