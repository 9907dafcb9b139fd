"""Go's regexp for hook conditions: RE2 syntax with Perl flags, matched as MatchString, in time linear in the input.

Podman reads oci-hooks(5) patterns with Go's `regexp.Compile` and tests them with
`MatchString`; Python's `re` reads another dialect (`$` before a final newline,
`[[:^digit:]]`, `(?=...)`, no `\\pL`, `\\z`) and backtracks, so a value the container's
creator controls can hold a create for hours. This module accepts exactly what Go
accepts (and refuses the rest with Go's message), compiles to a Thompson NFA, and
answers MatchString with a DFA built lazily from it while reading the input once, as RE2
does: a character costs a dict lookup once its transition is known, and at most one NFA
step (program size) when it is new. When the DFA outgrows its cache (~16 MB) faster than it
reads, the NFA simulation answers instead, still linear but (program size) steps per character.

Compiled programs are plain tuples (marshal stores them). Known differences from Go:
Unicode general categories and case folding come from this Python's `unicodedata`
and `str` (Go 1.19 uses Unicode 13, Python 3.8-3.13 use 12.1-15.1), so characters
assigned in between may be classified differently; Unicode scripts (`\\p{Greek}`)
are refused as unsupported (UnsupportedRegex), never matched approximately.
Imports nothing when loaded (the shim's create path loads it for drop-ins with
patterns); `sys` to compile, `unicodedata` to match Unicode classes.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

    Node = Tuple[Any, ...]
    Program = Tuple[Any, ...]

MAX_REPEAT = 1000  # Go's limit for {n,m}, also on the product of nested counted repeats
MAX_HEIGHT = 1000  # Go: "expression nests too deeply"
MAX_PROGRAM = 200_000  # ours: larger programs are refused as unsupported (Go's limit is ~3.3M)
MAX_RUNE = 0x10FFFF

# Instructions: (op, ...) tuples.
CHAR, ANY, ANY_NOT_NL, SPLIT, JMP, ASSERT, MATCH = range(7)
# Empty-width assertions.
BEGIN_TEXT, END_TEXT, BEGIN_LINE, END_LINE, WORD_BOUNDARY, NO_WORD_BOUNDARY = range(6)

# Go's error codes (regexp/syntax ErrorCode strings).
ERR_INVALID_CHAR_RANGE = "invalid character class range"
ERR_INVALID_ESCAPE = "invalid escape sequence"
ERR_INVALID_NAMED_CAPTURE = "invalid named capture"
ERR_INVALID_PERL_OP = "invalid or unsupported Perl syntax"
ERR_INVALID_REPEAT_OP = "invalid nested repetition operator"
ERR_INVALID_REPEAT_SIZE = "invalid repeat count"
ERR_MISSING_BRACKET = "missing closing ]"
ERR_MISSING_PAREN = "missing closing )"
ERR_MISSING_REPEAT_ARGUMENT = "missing argument to repetition operator"
ERR_TRAILING_BACKSLASH = "trailing backslash at end of expression"
ERR_UNEXPECTED_PAREN = "unexpected )"
ERR_NESTING_DEPTH = "expression nests too deeply"

WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
PERL_GROUPS = {
    "d": ((0x30, 0x39),),
    "s": ((0x9, 0xA), (0xC, 0xD), (0x20, 0x20)),
    "w": WORD,
}
POSIX_GROUPS = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x0, 0x7F),),
    "blank": ((0x9, 0x9), (0x20, 0x20)),
    "cntrl": ((0x0, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x9, 0xD), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
# Go's unicode.Categories: the major classes are unions of these (Go's C has no Cn).
CATEGORIES = {
    "C": ("Cc", "Cf", "Co", "Cs"),
    "L": ("Lu", "Ll", "Lt", "Lm", "Lo"),
    "M": ("Mn", "Mc", "Me"),
    "N": ("Nd", "Nl", "No"),
    "P": ("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"),
    "S": ("Sm", "Sc", "Sk", "So"),
    "Z": ("Zs", "Zl", "Zp"),
}
for _major, _minors in list(CATEGORIES.items()):
    for _minor in _minors:
        CATEGORIES[_minor] = (_minor,)
# Go's unicode.Scripts (Go 1.19's Unicode 13 list and the scripts of Unicode 14-15 newer Go
# versions know): valid in Go, refused here as unsupported rather than as invalid.
SCRIPTS = frozenset(
    """Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak Bengali
    Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian Caucasian_Albanian Chakma
    Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot Cypro_Minoan Cyrillic Deseret Devanagari
    Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs Elbasan Elymaic Ethiopic Georgian Glagolitic Gothic
    Grantha Greek Gujarati Gunjala_Gondi Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana
    Imperial_Aramaic Inherited Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada
    Katakana Kawi Kayah_Li Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi Lao Latin Lepcha Limbu
    Linear_A Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic Manichaean Marchen
    Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi
    Mongolian Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari New_Tai_Lue Newa Nko Nushu
    Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic Old_North_Arabian Old_Permic Old_Persian
    Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage Osmanya Pahawh_Hmong Palmyrene
    Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic Samaritan Saurashtra Sharada Shavian
    Siddham SignWriting Sinhala Sogdian Sora_Sompeng Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa
    Tai_Le Tai_Tham Tai_Viet Takri Tamil Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Toto
    Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square""".split()
)


class GoRegexError(ValueError):
    """A pattern Go's regexp.Compile refuses; the message is Go's."""

    def __init__(self, code: str, fragment: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{fragment}`")
        self.code = code


class UnsupportedRegex(ValueError):
    """A pattern Go accepts that this module cannot match (a Unicode script, a huge program)."""


# ----------------------------------------------------------------------------- case folding


def fold_key(char: str) -> str:
    """One representative per simple case-folding orbit (k, K and the Kelvin sign share 'k')."""
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()
    return lower if len(lower) == 1 else char


_ORBITS: Dict[str, List[int]] = {}


def fold_orbit(code: int) -> List[int]:
    """Every code point that case-folds together with ``code`` (itself included)."""
    char = chr(code)
    if code < 0x80:
        if not char.isalpha():
            return [code]
        # The only non-ASCII code points that fold to ASCII letters: the Kelvin sign and long s.
        extra = {"k": [0x212A], "s": [0x17F]}.get(char.lower(), [])
        return sorted([ord(char.lower()), ord(char.upper()), *extra])
    if not _ORBITS:  # one pass over the code points that have case, once per process
        for other in range(0x41, 0x1E944):
            key = fold_key(chr(other))
            if key != chr(other) or chr(other).upper() != chr(other):
                _ORBITS.setdefault(key, []).append(other)
    key = fold_key(char)
    members = set(_ORBITS.get(key, []))
    if len(key) == 1:
        members.add(ord(key))
    members.add(code)
    return sorted(members)


# ----------------------------------------------------------------------------- character classes


def normalize(ranges: Sequence[Tuple[int, int]]) -> Tuple[Tuple[int, int], ...]:
    merged: List[List[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


def negate(ranges: Sequence[Tuple[int, int]]) -> Tuple[Tuple[int, int], ...]:
    result = []
    next_lo = 0
    for lo, hi in normalize(ranges):
        if lo > next_lo:
            result.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= MAX_RUNE:
        result.append((next_lo, MAX_RUNE))
    return tuple(result)


def folded(ranges: Sequence[Tuple[int, int]]) -> Tuple[Tuple[int, int], ...]:
    """``ranges`` plus the case-folding orbit of each of their code points, as Go's appendFoldedRange."""
    result = list(ranges)
    for lo, hi in ranges:
        if lo <= 0x41 and hi >= 0x1E943:
            continue  # holds every code point that folds
        for code in range(max(lo, 0x41), min(hi, 0x1E943) + 1):
            result.extend((member, member) for member in fold_orbit(code) if not lo <= member <= hi)
    return normalize(result)


class ClassBuilder:
    """A bracketed (or escaped) class being parsed: plain ranges, plus Unicode category items."""

    def __init__(self, fold: bool) -> None:
        self.fold = fold
        self.ranges: List[Tuple[int, int]] = []
        # ("u", general categories, negated, fold): matched with unicodedata, never expanded to ranges
        self.items: List[Tuple[Any, ...]] = []

    def add_range(self, lo: int, hi: int) -> None:
        self.ranges.extend(folded([(lo, hi)]) if self.fold else [(lo, hi)])

    def add_group(self, ranges: Sequence[Tuple[int, int]], negated: bool) -> None:
        group = folded(ranges) if self.fold else tuple(ranges)
        if negated:
            self.ranges.extend(negate(group))
        else:
            self.ranges.extend(group)

    def add_categories(self, categories: Tuple[str, ...], negated: bool) -> None:
        self.items.append(("u", categories, negated, self.fold))

    def node(self, negated: bool) -> Node:
        return ("class", normalize(self.ranges), tuple(self.items), negated)


# ----------------------------------------------------------------------------- parser

LEFT_PAREN, VERTICAL_BAR = "(", "|"


class Parser:
    """Go's regexp/syntax parser with the Perl flags regexp.Compile uses, on a stack of nodes and markers."""

    def __init__(self, pattern: str) -> None:
        self.whole = pattern
        self.fold = False
        self.dot_nl = False
        self.multi_line = False
        self.stack: List[Any] = []

    def push(self, node: Node) -> None:
        self.stack.append(node)

    def literal(self, code: int) -> None:
        if self.fold and fold_orbit(code) != [code]:
            builder = ClassBuilder(True)
            builder.add_range(code, code)
            self.push(builder.node(False))
        else:
            self.push(("lit", code))

    def parse(self) -> Node:
        text = self.whole
        i, n = 0, len(text)
        last_repeat: Optional[int] = None  # where the previous token, a repetition, started
        while i < n:
            repeat: Optional[int] = None
            char = text[i]
            if char == "(":
                if text.startswith("(?", i):
                    i = self.parse_perl_flags(i)
                else:
                    self.stack.append((LEFT_PAREN, self.fold, self.dot_nl, self.multi_line, True))
                    i += 1
            elif char == "|":
                self.concat()
                self.stack.append(VERTICAL_BAR)
                i += 1
            elif char == ")":
                self.parse_right_paren()
                i += 1
            elif char == "^":
                self.push(("assert", BEGIN_LINE if self.multi_line else BEGIN_TEXT))
                i += 1
            elif char == "$":
                self.push(("assert", END_LINE if self.multi_line else END_TEXT))
                i += 1
            elif char == ".":
                self.push(("any",) if self.dot_nl else ("anynl",))
                i += 1
            elif char == "[":
                i = self.parse_class(i)
            elif char in "*+?":
                repeat = i
                low, high = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[char]
                i = self.repeat(low, high, i, i + 1, last_repeat, counted=False)
            elif char == "{":
                parsed = parse_repeat(text, i)
                if parsed is None:
                    self.literal(ord("{"))  # not a valid {n,m}: a literal brace, as in Go
                    i += 1
                else:
                    low, high, after = parsed
                    if low < 0 or low > MAX_REPEAT or high > MAX_REPEAT or (high >= 0 and low > high):
                        raise GoRegexError(ERR_INVALID_REPEAT_SIZE, text[i:after])
                    repeat = i
                    i = self.repeat(low, high, i, after, last_repeat, counted=True)
            elif char == "\\":
                i = self.parse_backslash(i)
            else:
                self.literal(ord(char))
                i += 1
            last_repeat = repeat
        self.concat()
        self.alternate()
        if len(self.stack) != 1 or not isinstance(self.stack[0], tuple) or self.stack[0][0] == LEFT_PAREN:
            raise GoRegexError(ERR_MISSING_PAREN, text)
        node: Node = self.stack[0]
        if height(node) > MAX_HEIGHT:
            raise GoRegexError(ERR_NESTING_DEPTH, text)
        return node

    def is_marker(self, item: Any) -> bool:
        return bool(item == VERTICAL_BAR or item[0] == LEFT_PAREN)

    def concat(self) -> None:
        """Replace the nodes above the topmost marker by their concatenation."""
        start = len(self.stack)
        while start > 0 and not self.is_marker(self.stack[start - 1]):
            start -= 1
        parts = flatten("cat", self.stack[start:])
        del self.stack[start:]
        self.stack.append(parts[0] if len(parts) == 1 else ("cat", tuple(parts)))

    def alternate(self) -> None:
        """Replace "x | y | z" (each already concatenated) above the topmost "(" by one alternation."""
        start = len(self.stack)
        while start > 0 and (self.stack[start - 1] == VERTICAL_BAR or self.stack[start - 1][0] != LEFT_PAREN):
            start -= 1
        parts = flatten("alt", [item for item in self.stack[start:] if item != VERTICAL_BAR])
        del self.stack[start:]
        self.stack.append(parts[0] if len(parts) == 1 else ("alt", tuple(parts)))

    def parse_right_paren(self) -> None:
        self.concat()
        self.alternate()
        if len(self.stack) < 2 or self.stack[-2] == VERTICAL_BAR or self.stack[-2][0] != LEFT_PAREN:
            raise GoRegexError(ERR_UNEXPECTED_PAREN, self.whole)
        node = self.stack.pop()
        _, self.fold, self.dot_nl, self.multi_line, capture = self.stack.pop()
        self.push(("group", node) if capture else node)  # (?:...) is no node of its own, as in Go

    def repeat(self, low: int, high: int, start: int, after: int, last_repeat: Optional[int], counted: bool) -> int:
        text = self.whole
        if after < len(text) and text[after] == "?":
            after += 1  # non-greedy: the same language, so the same boolean match
        if last_repeat is not None:
            raise GoRegexError(ERR_INVALID_REPEAT_OP, text[last_repeat:after])
        if not self.stack or self.is_marker(self.stack[-1]):
            raise GoRegexError(ERR_MISSING_REPEAT_ARGUMENT, text[start:after])
        node = ("rep", self.stack.pop(), low, high, counted)
        self.push(node)
        if counted and (low >= 2 or high >= 2) and not repeat_is_valid(node, MAX_REPEAT):
            raise GoRegexError(ERR_INVALID_REPEAT_SIZE, text[start:after])
        return after

    def parse_perl_flags(self, i: int) -> int:
        text = self.whole
        rest = text[i:]
        named = rest.startswith("(?P<") and len(rest) > 4
        if not named and rest.startswith("(?<") and len(rest) > 3 and rest[3] not in "=!":
            named = True  # Go 1.22's (?<name>...), which Podman 5 is built with
        if named:
            name_start = i + (4 if rest.startswith("(?P<") else 3)
            end = text.find(">", i)
            if end < 0:
                raise GoRegexError(ERR_INVALID_NAMED_CAPTURE, rest)
            name = text[name_start:end]
            if not name or not all(c == "_" or (c.isascii() and c.isalnum()) for c in name):
                raise GoRegexError(ERR_INVALID_NAMED_CAPTURE, text[i : end + 1])
            self.stack.append((LEFT_PAREN, self.fold, self.dot_nl, self.multi_line, True))
            return end + 1
        j = i + 2
        flags = {"i": self.fold, "s": self.dot_nl, "m": self.multi_line}
        sign, saw_flag = True, False
        while j < len(text):
            char = text[j]
            j += 1
            if char in "imsU":
                if char != "U":  # U (ungreedy) changes which match, never whether
                    flags[char] = sign
                saw_flag = True
            elif char == "-" and sign:
                sign, saw_flag = False, False
            elif char in ":)" and (sign or saw_flag):
                if char == ":":
                    self.stack.append((LEFT_PAREN, self.fold, self.dot_nl, self.multi_line, False))
                self.fold, self.dot_nl, self.multi_line = flags["i"], flags["s"], flags["m"]
                return j
            else:
                break
        raise GoRegexError(ERR_INVALID_PERL_OP, text[i:j])

    def parse_backslash(self, i: int) -> int:
        text = self.whole
        following = text[i + 1] if i + 1 < len(text) else ""
        if following in ("A", "z"):
            self.push(("assert", BEGIN_TEXT if following == "A" else END_TEXT))
            return i + 2
        if following in ("b", "B"):
            self.push(("assert", WORD_BOUNDARY if following == "b" else NO_WORD_BOUNDARY))
            return i + 2
        if following == "C":
            raise GoRegexError(ERR_INVALID_ESCAPE, text[i : i + 2])
        if following == "Q":
            end = text.find("\\E", i + 2)
            literal = text[i + 2 :] if end < 0 else text[i + 2 : end]
            for char in literal:
                self.literal(ord(char))
            return len(text) if end < 0 else end + 2
        builder = ClassBuilder(self.fold)
        after = self.parse_unicode_class(i, builder)
        if after is None:
            after = self.parse_perl_class(i, builder)
        if after is not None:
            self.push(builder.node(False))
            return after
        code, after = self.parse_escape(i)
        self.literal(code)
        return after

    def parse_unicode_class(self, i: int, builder: ClassBuilder) -> Optional[int]:
        """\\pL, \\p{Lu}, \\PL, \\p{^L}, \\pN...: add to ``builder``; None when not at one."""
        text = self.whole
        if not text.startswith(("\\p", "\\P"), i):
            return None
        negated = text[i + 1] == "P"
        if i + 2 < len(text) and text[i + 2] == "{":
            end = text.find("}", i)
            if end < 0:
                raise GoRegexError(ERR_INVALID_CHAR_RANGE, text[i:])
            name, after = text[i + 3 : end], end + 1
        else:
            name, after = text[i + 2 : i + 3], i + 3
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        if name == "Any":
            builder.add_group(((0, MAX_RUNE),), negated)
        elif name in CATEGORIES:
            builder.add_categories(CATEGORIES[name], negated)
        elif name in SCRIPTS:
            raise UnsupportedRegex(
                f"Unicode script {text[i:after]} is valid in Go but not supported by this toolkit "
                "(it supports general categories such as \\pL and \\p{Lu})"
            )
        else:
            raise GoRegexError(ERR_INVALID_CHAR_RANGE, text[i:after])
        return after

    def parse_perl_class(self, i: int, builder: ClassBuilder) -> Optional[int]:
        """\\d \\s \\w and their negations; None when not at one."""
        letter = self.whole[i + 1 : i + 2]
        if not self.whole.startswith("\\", i) or letter.lower() not in PERL_GROUPS:
            return None
        builder.add_group(PERL_GROUPS[letter.lower()], letter.isupper())
        return i + 2

    def parse_escape(self, i: int) -> Tuple[int, int]:
        """(code point, index after) of the escape at ``i``, as Go's parseEscape."""
        text = self.whole
        j = i + 1
        if j >= len(text):
            raise GoRegexError(ERR_TRAILING_BACKSLASH, "")
        char = text[j]
        j += 1
        if "1" <= char <= "7" and not (j < len(text) and "0" <= text[j] <= "7"):
            raise GoRegexError(ERR_INVALID_ESCAPE, text[i:j])  # a backreference: Go has none
        if "0" <= char <= "7":
            value = ord(char) - 48
            for _ in range(2):
                if j < len(text) and "0" <= text[j] <= "7":
                    value = value * 8 + ord(text[j]) - 48
                    j += 1
            return value, j
        if char == "x":
            return self.parse_hex(i, j)
        simple = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if char in simple:
            return simple[char], j
        if ord(char) < 0x80 and not char.isalnum():
            return ord(char), j
        raise GoRegexError(ERR_INVALID_ESCAPE, text[i:j])

    def parse_hex(self, i: int, j: int) -> Tuple[int, int]:
        text = self.whole
        hex_digits = "0123456789abcdefABCDEF"
        if j < len(text) and text[j] == "{":
            end = j + 1
            value = 0
            while end < len(text) and text[end] in hex_digits:
                value = value * 16 + int(text[end], 16)
                if value > MAX_RUNE:
                    raise GoRegexError(ERR_INVALID_ESCAPE, text[i : end + 1])
                end += 1
            if end >= len(text) or text[end] != "}" or end == j + 1:
                raise GoRegexError(ERR_INVALID_ESCAPE, text[i : min(end + 1, len(text))])
            return value, end + 1
        digits = text[j : j + 2]
        if len(digits) < 2 or not all(d in hex_digits for d in digits):
            raise GoRegexError(ERR_INVALID_ESCAPE, text[i : j + 2])
        return int(digits, 16), j + 2

    def parse_class(self, i: int) -> int:
        text = self.whole
        j = i + 1
        negated = j < len(text) and text[j] == "^"
        if negated:
            j += 1
        builder = ClassBuilder(self.fold)
        first = True
        while j >= len(text) or text[j] != "]" or first:
            first = False
            if text.startswith("[:", j) and len(text) - j > 2:
                end = text.find(":]", j + 2)
                if end >= 0:
                    name = text[j + 2 : end]
                    group = POSIX_GROUPS.get(name[1:] if name.startswith("^") else name)
                    if group is None:
                        raise GoRegexError(ERR_INVALID_CHAR_RANGE, text[j : end + 2])
                    builder.add_group(group, name.startswith("^"))
                    j = end + 2
                    continue
            if j + 1 < len(text):
                after = self.parse_unicode_class(j, builder)
                if after is None:
                    after = self.parse_perl_class(j, builder)
                if after is not None:
                    j = after
                    continue
            start = j
            low, j = self.parse_class_char(j, i)
            high = low
            if j + 1 < len(text) and text[j] == "-" and text[j + 1] != "]":
                high, j = self.parse_class_char(j + 1, i)
                if high < low:
                    raise GoRegexError(ERR_INVALID_CHAR_RANGE, text[start:j])
            builder.add_range(low, high)
        self.push(builder.node(negated))
        return j + 1

    def parse_class_char(self, j: int, class_start: int) -> Tuple[int, int]:
        text = self.whole
        if j >= len(text):
            raise GoRegexError(ERR_MISSING_BRACKET, text[class_start:])
        if text[j] == "\\":
            return self.parse_escape(j)
        return ord(text[j]), j + 1


def flatten(kind: str, parts: Sequence[Node]) -> List[Node]:
    """``parts`` with nested nodes of the same ``kind`` spliced in: Go's parser collapses them too,
    which is what its nesting limit counts."""
    result: List[Node] = []
    for part in parts:
        result.extend(part[1] if part[0] == kind else (part,))
    return result


def parse_repeat(text: str, i: int) -> Optional[Tuple[int, int, int]]:
    """(min, max (-1: none), index after) of a {n}, {n,} or {n,m} at ``i``; None when it is not one."""

    def number(j: int) -> Optional[Tuple[int, int]]:
        end = j
        while end < len(text) and "0" <= text[end] <= "9":
            end += 1
        if end == j or (end - j >= 2 and text[j] == "0"):
            return None  # no digits, or a leading zero: Go reads the brace as a literal
        digits = text[j:end]
        return (int(digits) if len(digits) <= 8 else -1), end

    first = number(i + 1)
    if first is None:
        return None
    low, j = first
    high = low
    if j < len(text) and text[j] == ",":
        j += 1
        if j < len(text) and text[j] == "}":
            high = -1
        else:
            second = number(j)
            if second is None:
                return None
            high, j = second
    if j >= len(text) or text[j] != "}":
        return None
    return low, high, j + 1


def repeat_is_valid(node: Node, limit: int) -> bool:
    """Go's repeatIsValid: nested counted repetitions multiply, and the product may not pass 1000."""
    if node[0] == "rep" and node[4]:
        most = node[3] if node[3] >= 0 else node[2]
        if most == 0:
            return True
        if most > limit:
            return False
        limit //= most
    return all(repeat_is_valid(child, limit) for child in children(node))


def children(node: Node) -> Sequence[Node]:
    kind = node[0]
    if kind in ("cat", "alt"):
        parts: Sequence[Node] = node[1]
        return parts
    if kind in ("group", "rep"):
        return (node[1],)
    return ()


def height(node: Node) -> int:
    """The depth of the tree, without recursion (a deep pattern must not exhaust Python's stack)."""
    best = 0
    pending = [(node, 1)]
    while pending:
        current, depth = pending.pop()
        best = max(best, depth)
        pending.extend((child, depth + 1) for child in children(current))
    return best


# ----------------------------------------------------------------------------- compiler


def size(node: Node) -> int:
    kind = node[0]
    if kind in ("cat", "alt"):
        return sum(size(child) for child in node[1]) + len(node[1])
    if kind == "group":
        return size(node[1])
    if kind == "rep":
        low: int = node[2]
        high: int = node[3]
        return (size(node[1]) + 1) * (max(low, high) + 1)
    return 1


class Compiler:
    def __init__(self) -> None:
        self.program: List[List[Any]] = []

    def emit(self, *instruction: Any) -> int:
        self.program.append(list(instruction))
        return len(self.program) - 1

    def compile(self, node: Node) -> List[int]:
        """Emit ``node``; return the indexes of the instructions whose 'next' is still to be patched."""
        kind = node[0]
        if kind == "lit":
            return [self.emit(CHAR, None, ((node[1], node[1]),), (), False)]
        if kind == "class":
            return [self.emit(CHAR, None, node[1], node[2], node[3])]
        if kind in ("any", "anynl"):
            return [self.emit(ANY if kind == "any" else ANY_NOT_NL, None)]
        if kind == "assert":
            return [self.emit(ASSERT, None, node[1])]
        if kind == "group":
            return self.compile(node[1])
        if kind == "cat" and not node[1]:
            return [self.emit(JMP, None)]  # the empty string: one instruction, so it has an entry point
        if kind == "cat":
            holes: List[int] = []
            for index, child in enumerate(node[1]):
                start = len(self.program)
                if index:
                    self.patch(holes, start)
                holes = self.compile(child)
            return holes
        if kind == "alt":
            return self.alternation(node[1])
        return self.repetition(node[1], node[2], node[3])

    def alternation(self, options: Sequence[Node]) -> List[int]:
        holes: List[int] = []
        for option in options[:-1]:
            split = self.emit(SPLIT, len(self.program) + 1, None)
            holes += self.compile(option)
            self.program[split][2] = len(self.program)
        return holes + self.compile(options[-1])

    def repetition(self, child: Node, low: int, high: int) -> List[int]:
        holes: List[int] = []
        copies = low if low > 0 else 0
        for _ in range(copies):
            self.patch(holes, len(self.program))
            holes = self.compile(child)
        if high == -1:  # x* after the copies: a loop
            self.patch(holes, len(self.program))
            split = self.emit(SPLIT, len(self.program) + 1, None)
            self.patch(self.compile(child), split)
            return [split]
        optional_holes: List[int] = []
        for _ in range(high - copies):  # x{n,m}: m-n optional copies, (x(x(x)?)?)?
            self.patch(holes, len(self.program))
            split = self.emit(SPLIT, len(self.program) + 1, None)
            optional_holes.append(split)
            holes = self.compile(child)
        if not copies and high == 0:
            return [self.emit(JMP, None)]
        return holes + optional_holes

    def patch(self, holes: List[int], target: int) -> None:
        for index in holes:
            instruction = self.program[index]
            if instruction[0] == SPLIT:
                instruction[2] = target
            else:
                instruction[1] = target


def compile_pattern(pattern: str) -> Program:
    """The program of ``pattern``; GoRegexError when Go refuses it, UnsupportedRegex when we cannot match it."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * MAX_HEIGHT + 200))  # the compiler recurses once per level
    try:
        return compile_tree(pattern, Parser(pattern).parse())
    finally:
        sys.setrecursionlimit(limit)


def compile_tree(pattern: str, tree: Node) -> Program:
    literal = as_literal(tree)
    if literal is not None:
        return ("lit", *literal)
    if size(tree) > MAX_PROGRAM:
        shown = pattern if len(pattern) <= 60 else pattern[:60] + "..."
        raise UnsupportedRegex(f"pattern {shown!r} would compile to more than {MAX_PROGRAM} instructions")
    compiler = Compiler()
    holes = compiler.compile(tree)
    compiler.patch(holes, compiler.emit(MATCH))
    anchored, prefix = literal_prefix(tree)
    return ("nfa", tuple(tuple(instruction) for instruction in compiler.program), anchored, prefix)


def literal_prefix(tree: Node) -> Tuple[bool, str]:
    """(anchored at the start of the text, the literal every match begins with): cheap tests before the NFA."""
    parts = list(tree[1]) if tree[0] == "cat" else [tree]
    anchored = bool(parts) and parts[0] == ("assert", BEGIN_TEXT)
    prefix = ""
    for part in parts[int(anchored) :]:
        if part[0] != "lit":
            break
        prefix += chr(part[1])
    return anchored, prefix


def as_literal(tree: Node) -> Optional[Tuple[str, bool, bool]]:
    """(text, anchored at start, anchored at end) when ``tree`` is a plain string between optional ^ and $."""
    parts = list(tree[1]) if tree[0] == "cat" else [tree]
    begin = bool(parts) and parts[0] == ("assert", BEGIN_TEXT)
    end = len(parts) > int(begin) and parts[-1] == ("assert", END_TEXT)
    middle = parts[int(begin) : len(parts) - int(end)]
    if not all(part[0] == "lit" for part in middle):
        return None
    return "".join(chr(part[1]) for part in middle), begin, end


# ----------------------------------------------------------------------------- matching


def in_class(code: int, ranges: Sequence[Tuple[int, int]], items: Sequence[Tuple[Any, ...]]) -> bool:
    for lo, hi in ranges:
        if lo <= code <= hi:
            return True
        if code < lo:
            break
    for _, categories, negated, fold in items:
        import unicodedata

        candidates = fold_orbit(code) if fold else [code]
        inside = any(unicodedata.category(chr(candidate)) in categories for candidate in candidates)
        if inside != negated:
            return True
    return False


def is_word(text: str, index: int) -> bool:
    return 0 <= index < len(text) and (text[index].isascii() and (text[index].isalnum() or text[index] == "_"))


def holds(kind: int, text: str, index: int) -> bool:
    if kind == BEGIN_TEXT:
        return index == 0
    if kind == END_TEXT:
        return index == len(text)
    if kind == BEGIN_LINE:
        return index == 0 or text[index - 1] == "\n"
    if kind == END_LINE:
        return index == len(text) or text[index] == "\n"
    boundary = is_word(text, index - 1) != is_word(text, index)
    return boundary if kind == WORD_BOUNDARY else not boundary


def follow(
    program: Sequence[Tuple[Any, ...]], start: int, text: str, index: int, seen: Set[int], threads: List[int]
) -> Tuple[bool, int]:
    """Add to ``threads`` what ``start`` reaches at ``index`` without reading a character: (MATCH reached, steps).

    ``seen`` holds the instructions already visited at this position: each is visited
    once per position, which is what makes the simulation linear.
    """
    steps = 0
    pending = [start]
    while pending:
        pc = pending.pop()
        steps += 1
        if pc in seen:
            continue
        seen.add(pc)
        instruction = program[pc]
        op = instruction[0]
        if op == MATCH:
            return True, steps
        if op == JMP:
            pending.append(instruction[1])
        elif op == SPLIT:
            pending.append(instruction[2])
            pending.append(instruction[1])
        elif op == ASSERT:
            if holds(instruction[2], text, index):
                pending.append(instruction[1])
        else:
            threads.append(pc)
    return False, steps


def run(program: Sequence[Tuple[Any, ...]], text: str, anchored: bool) -> Tuple[bool, int]:
    """(does the NFA match somewhere in ``text``, steps taken): Thompson's simulation, one pass.

    ``anchored``: every match starts at the beginning of the text, so no thread starts
    later and the search ends when no thread is left.
    """
    steps = 0
    current: List[int] = []
    for index in range(len(text) + 1):
        if anchored and index and not current:
            return False, steps
        if not anchored or not index:  # unanchored search: a new thread starts at every position
            matched, taken = follow(program, 0, text, index, set(current), current)
            steps += taken
            if matched:
                return True, steps
        if index == len(text):
            break
        char = text[index]
        code = 0xFFFD if "\ud800" <= char <= "\udfff" else ord(char)  # Go sees U+FFFD for invalid UTF-8
        following: List[int] = []
        seen: Set[int] = set()
        for pc in current:
            instruction = program[pc]
            op = instruction[0]
            if op == CHAR:
                hit = in_class(code, instruction[2], instruction[3]) != instruction[4]
            else:
                hit = op == ANY or char != "\n"
            if hit:
                matched, taken = follow(program, instruction[1], text, index + 1, seen, following)
                steps += taken
                if matched:
                    return True, steps
        current = following
    return False, steps


# ----------------------------------------------------------------------------- lazy DFA

MAX_DFA_CELLS = 2_000_000  # the DFA's cache, in 8-byte cells (~16 MB), before it restarts
STATE_CELLS = 96  # what one state costs beside its positions (its object, dicts and key: ~700 bytes)
TRANSITION_CELLS = 4  # one cached transition (a dict entry)
MAX_CLASSIFIED = 1 << 16  # distinct characters whose class is remembered (then forgotten and recomputed)
# Contexts: what the character before (or after) a position is, as far as ^ $ \A \z \b \B care.
BOT, NEWLINE, WORD_CHAR, OTHER, EOT = range(5)

if TYPE_CHECKING:  # noqa: SIM108  (a variable a ternary assigns is no type alias for mypy)
    StateBase = Dict[str, "State"]
else:
    StateBase = dict  # typing is not imported when running


class State(StateBase):
    """A DFA state: the NFA positions still to expand, after a character of context ``ctx``.

    As a dict it maps the characters already read in this state to the next state (the
    search's inner loop is one lookup per character); ``by_class`` does the same for
    character classes, so a character new to the state but of a known class costs no step.
    """

    __slots__ = ("by_class", "ctx", "kernel")

    def __init__(self, kernel: Tuple[int, ...], ctx: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.ctx = ctx
        self.by_class: Dict[int, State] = {}


MATCHED = State((), OTHER)  # a match ends before the character just read
DEAD = State((), OTHER)  # anchored search and no thread left: no match can follow


class GiveUp(Exception):
    """The DFA keeps outgrowing its cache: the NFA decides instead."""


class LazyDFA:
    """MatchString's question (is there a match anywhere?) as a DFA built while reading, as RE2 does.

    A state is the set of NFA positions reached (before their epsilon closure) plus the
    context of the previous character; the closure is taken when the next character is
    known, so ^ $ \\A \\z \\b \\B are decided on both neighbours of the position. Characters
    fall into classes (context, and which of the program's character tests accept them),
    computed once per distinct character. Each new state or transition costs one NFA step,
    each cached one a dict lookup; when the cache passes ``max_cells`` it is emptied and
    rebuilt from the current state, and if that happens more often than one state per
    10 characters, GiveUp (then the NFA runs, as fast as the DFA would in that case).
    """

    def __init__(self, instructions: Sequence[Tuple[Any, ...]], anchored: bool, max_cells: int = MAX_DFA_CELLS) -> None:
        self.program = instructions
        self.unanchored = not anchored
        self.max_cells = max_cells
        kinds = {instruction[2] for instruction in instructions if instruction[0] == ASSERT}
        self.lines = bool(kinds & {BEGIN_LINE, END_LINE})  # is "\n" a context of its own
        self.words = bool(kinds & {WORD_BOUNDARY, NO_WORD_BOUNDARY})  # are word characters
        # The distinct character tests, and which one each consuming instruction makes.
        self.tests: List[Tuple[Any, ...]] = []
        self.test_of: Dict[int, int] = {}
        index_of: Dict[Tuple[Any, ...], int] = {}
        for pc, instruction in enumerate(instructions):
            if instruction[0] in (CHAR, ANY, ANY_NOT_NL):
                test = (instruction[0], *instruction[2:])
                if test not in index_of:
                    index_of[test] = len(self.tests)
                    self.tests.append(test)
                self.test_of[pc] = index_of[test]
        self.class_of: Dict[str, int] = {}
        self.classes: List[Tuple[int, Tuple[bool, ...]]] = []
        self.class_ids: Dict[Tuple[int, Tuple[bool, ...]], int] = {}
        self.reset(0)
        self.resets = 0

    def reset(self, position: int) -> None:
        self.states: Dict[Tuple[Tuple[int, ...], int], State] = {}
        self.cells = 0
        self.reset_at = position
        self.start = self.intern((0,), BOT, position)

    def intern(self, kernel: Tuple[int, ...], ctx: int, position: int) -> State:
        state = self.states.get((kernel, ctx))
        if state is None:
            self.cells += len(kernel) + STATE_CELLS
            if self.cells > self.max_cells:
                if position - self.reset_at < 10 * len(self.states):
                    raise GiveUp
                self.resets += 1
                self.reset(position)
                self.cells += len(kernel) + STATE_CELLS
            state = self.states[(kernel, ctx)] = State(kernel, ctx)
        return state

    def classify(self, char: str) -> int:
        """The class of ``char``: its context, and the answer of each character test."""
        code = 0xFFFD if "\ud800" <= char <= "\udfff" else ord(char)  # Go sees U+FFFD for invalid UTF-8
        if char == "\n" and self.lines:
            ctx = NEWLINE
        elif self.words and char.isascii() and (char.isalnum() or char == "_"):
            ctx = WORD_CHAR
        else:
            ctx = OTHER
        answers = []
        for test in self.tests:
            if test[0] == CHAR:
                answers.append(in_class(code, test[1], test[2]) != test[3])
            else:
                answers.append(test[0] == ANY or char != "\n")
        signature = (ctx, tuple(answers))
        number = self.class_ids.get(signature)
        if number is None:
            number = self.class_ids[signature] = len(self.classes)
            self.classes.append(signature)
        if len(self.class_of) >= MAX_CLASSIFIED:
            self.class_of.clear()
        self.class_of[char] = number
        return number

    def step(self, state: State, ctx: int, answers: Optional[Tuple[bool, ...]]) -> Optional[Tuple[int, ...]]:
        """The positions after reading a character of context ``ctx`` whose tests answer
        ``answers`` (None: the end of the text) in ``state``; None when a match ends here."""
        program = self.program
        before = state.ctx
        pending = list(state.kernel)
        if self.unanchored:
            pending.append(0)  # a match may start at every position
        seen: Set[int] = set()
        following: Set[int] = set()
        while pending:
            pc = pending.pop()
            if pc in seen:
                continue
            seen.add(pc)
            instruction = program[pc]
            op = instruction[0]
            if op == MATCH:
                return None
            if op == JMP:
                pending.append(instruction[1])
            elif op == SPLIT:
                pending.append(instruction[2])
                pending.append(instruction[1])
            elif op == ASSERT:
                kind = instruction[2]
                if kind == BEGIN_TEXT:
                    hold = before == BOT
                elif kind == END_TEXT:
                    hold = ctx == EOT
                elif kind == BEGIN_LINE:
                    hold = before in (BOT, NEWLINE)
                elif kind == END_LINE:
                    hold = ctx in (EOT, NEWLINE)
                else:
                    hold = ((before == WORD_CHAR) != (ctx == WORD_CHAR)) == (kind == WORD_BOUNDARY)
                if hold:
                    pending.append(instruction[1])
            elif answers is not None and answers[self.test_of[pc]]:
                following.add(instruction[1])
        return tuple(sorted(following))

    def transition(self, state: State, char: str, position: int) -> State:
        """The state after ``char`` (the character at ``position``), computed and cached."""
        number = self.class_of.get(char)
        if number is None:
            number = self.classify(char)
        target = state.by_class.get(number)
        if target is None:
            ctx, answers = self.classes[number]
            kernel = self.step(state, ctx, answers)
            if kernel is None:
                target = MATCHED
            elif not kernel and not self.unanchored:
                target = DEAD
            else:
                target = self.intern(kernel, ctx, position)
            state.by_class[number] = target
        state[char] = target
        self.cells += TRANSITION_CELLS
        return target

    def search(self, text: str) -> bool:
        """Does the program match somewhere in ``text``; GiveUp when the cache thrashes."""
        state = self.start
        for position, char in enumerate(text):
            following = state.get(char)
            if following is None:
                following = self.transition(state, char, position)
            if following is MATCHED:
                return True
            if following is DEAD:
                return False
            state = following
        return self.step(state, EOT, None) is None


class Matcher:
    """Go's MatchString for one compiled program, by literal tests, the lazy DFA, or the NFA.

    ``decided_by`` says which answered the last ``match``: "literal" (the pattern is a
    plain string, or its literal prefix is absent), "dfa" or "nfa" (the DFA gave up).
    """

    def __init__(self, program: Program) -> None:
        self.program = program
        self.dfa: Optional[LazyDFA] = None  # built at the first match that needs it
        self.decided_by = ""

    def match(self, text: str) -> bool:
        program = self.program
        self.decided_by = "literal"
        if program[0] == "lit":
            literal: str = program[1]
            begin, end = program[2], program[3]
            if begin and end:
                return text == literal
            if begin:
                return text.startswith(literal)
            if end:
                return text.endswith(literal)
            return literal in text
        _, instructions, anchored, prefix = program
        if prefix and not (text.startswith(prefix) if anchored else prefix in text):
            return False  # every match begins with the prefix
        if self.dfa is None:
            self.dfa = LazyDFA(instructions, anchored)
        try:
            matched = self.dfa.search(text)
        except GiveUp:
            self.dfa = LazyDFA(instructions, anchored)  # start afresh for the next text
            self.decided_by = "nfa"
            return run(instructions, text, anchored)[0]
        self.decided_by = "dfa"
        return matched


def match_program(program: Program, text: str) -> bool:
    """Go's MatchString: does the pattern match anywhere in ``text``."""
    return Matcher(program).match(text)


_MATCHERS: Dict[str, Matcher] = {}


def match_string(pattern: str, text: str) -> bool:
    """regexp.MatchString(pattern, text) for a pattern already validated; each pattern compiles once per process."""
    matcher = _MATCHERS.get(pattern)
    if matcher is None:
        matcher = _MATCHERS[pattern] = Matcher(compile_pattern(pattern))
    return matcher.match(text)
