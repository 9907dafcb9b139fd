#!/usr/bin/env python3
"""Time chts.hooks.goregex on issue 18's regex cases: `python3 bench/regex.py [--only N] [--scale F]`.

Each case is a drop-in condition's pattern against a value the container's creator chooses
(an annotation, process.args[0]), matched as the shim matches it (Go's MatchString): one
compile, then one match, each timed, with what decided it (the lazy DFA, or the NFA when the
DFA outgrew its budget). `--scale` shrinks the inputs (0.01: a quick look at code that is
still slow). Go's regexp took, on the reporter's machine, 3.9 s and 0.13 s on the first two.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from chts.hooks import goregex  # the project, from this checkout

KB = 1024


def cases(scale: float) -> List[Tuple[str, str, str]]:
    """(name, pattern, text), the no-match and match variant of each reported case."""
    letters = int(100 * KB * scale)
    words = int(256 * KB * scale)
    unicode_letters = max(int(3000 * scale), 1)
    return [
        ("counted class, 100 KB, no match", "(?:[a-z]{0,1000})x", "a" * letters),
        ("counted class, 100 KB, match at end", "(?:[a-z]{0,1000})x", "a" * (letters - 1) + "x"),
        ("word run + domain, 256 KB, no match", "\\w{8,64}@corp\\.example\\.com", "a" * words),
        (
            "word run + domain, 256 KB, match at end",
            "\\w{8,64}@corp\\.example\\.com",
            "a" * words + "@corp.example.com",
        ),
        ("folded \\pL{1000}$, 3000 chars, match", "(?i)\\pL{1000}$", "\u00e9" * unicode_letters),
        ("folded \\pL{1000}$, 3000 chars, no match", "(?i)\\pL{1000}$", "\u00e9" * unicode_letters + "1"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, action="append", help="run only case N (1-based; repeatable)")
    parser.add_argument("--scale", type=float, default=1.0, help="input size factor (default 1)")
    args = parser.parse_args()
    total = 0.0
    for number, (name, pattern, text) in enumerate(cases(args.scale), 1):
        if args.only and number not in args.only:
            continue
        start = time.perf_counter()
        program = goregex.compile_pattern(pattern)
        compiled = time.perf_counter()
        matcher = goregex.Matcher(program) if hasattr(goregex, "Matcher") else None
        matched = matcher.match(text) if matcher is not None else goregex.match_program(program, text)
        done = time.perf_counter()
        total += done - start
        how = f", decided by {matcher.decided_by}" if matcher is not None else ""
        print(
            f"{number}. {name}: {pattern!r} on {len(text)} chars -> {matched}"
            f" in {done - compiled:.3f} s (compile {compiled - start:.3f} s{how})",
            flush=True,
        )
    print(f"total {total:.3f} s")


if __name__ == "__main__":
    main()
