"""Hypothesis strategies of Go regular expressions, shared by the regex engine's tests."""

from __future__ import annotations

from hypothesis import strategies as st

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
