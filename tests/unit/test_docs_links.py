"""The documentation's relative links resolve: every file and every #anchor (issue 19 item 4).

The README is the front door (at most 250 lines) and the reference lives in docs/,
CONTRIBUTING.md and deploy/kubernetes/README.md. Pages that point at each other rot when a
heading is renamed or a page moves; this reads every relative markdown link in them and checks
that its file exists in the repository and that its anchor is a heading of that file, with
GitHub's anchor rules: the heading's text lowercased, every character that is not a letter,
digit, '_', '-' or space dropped, each space turned into '-', and "-1", "-2"... appended to
repeats. Code blocks and code spans are not markdown, so a `[x](y)` or a `# comment` inside one
is neither a link nor a heading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def documentation_files() -> List[Path]:
    """The pages the issue names: README.md, CONTRIBUTING.md, docs/*.md, deploy/kubernetes/README.md."""
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "deploy" / "kubernetes" / "README.md"]
    return pages + sorted((ROOT / "docs").glob("*.md"))


def prose_lines(text: str) -> List[Tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with code spans blanked out."""
    lines: List[Tuple[int, str]] = []
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            continue
        lines.append((number, line))
    return lines


def blank_code_spans(line: str) -> str:
    """A code span's text keeps its place but can hold no link: `[a](b)` is not one."""
    return CODE_SPAN.sub(lambda match: "`" + "x" * len(match.group(2)) + "`", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before duplicates are numbered)."""
    text = INLINE_LINK.sub(lambda match: match.group(1), heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """Every anchor GitHub gives the headings of a markdown file."""
    seen: Dict[str, int] = {}
    found: Set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> List[Tuple[int, str]]:
    """(line number, target) of every inline and reference-style link in a markdown file."""
    found: List[Tuple[int, str]] = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        reference = REFERENCE_LINK.match(line)
        if reference:
            found.append((number, reference.group(1)))
            continue
        found.extend((number, match.group(2)) for match in INLINE_LINK.finditer(blank_code_spans(line)))
    return found


def broken_links(path: Path, root: Path = ROOT) -> List[str]:
    """One line per relative link of ``path`` whose file or anchor does not exist."""
    problems: List[str] = []
    for number, target in links(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not this test's business
        where = f"{path.relative_to(root)}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not file_part and not anchor:
            problems.append(f"{where}: empty link")
            continue
        if root not in (resolved, *resolved.parents):
            problems.append(f"{where}: leaves the repository")
            continue
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if not anchor:
            continue
        if resolved.suffix != ".md" or not resolved.is_file():
            problems.append(f"{where}: an anchor into something that is not a markdown file")
        elif anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with the anchor #{anchor} in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", documentation_files(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
    assert broken_links(page) == []


def test_the_pages_link_to_each_other() -> None:
    """The checker sees the links (a regex that finds none would pass every page)."""
    readme_targets = {target for _, target in links(ROOT / "README.md")}
    for page in documentation_files():
        if page.parent == ROOT / "docs":
            assert f"docs/{page.name}" in readme_targets, f"README.md does not link {page.name}"
    assert "CONTRIBUTING.md" in readme_targets
    assert "deploy/kubernetes/README.md" in readme_targets
    assert any("#" in target for _, target in links(ROOT / "docs" / "shim.md"))


def test_the_readme_is_the_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    for page in ("shim", "hooks", "config", "ctk", "engines", "startup", "errors", "benchmarks"):
        assert (ROOT / "docs" / f"{page}.md").is_file()


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("hooks.json", "hooksjson"),
        (
            "Drop-in hooks: conditional, per container (oci-hooks(5))",
            "drop-in-hooks-conditional-per-container-oci-hooks5",
        ),
        ("`install` / `uninstall`", "install--uninstall"),
        ("What is verified, and how (`--config-source`)", "what-is-verified-and-how---config-source"),
        ("The shim's hot-path tiers", "the-shims-hot-path-tiers"),
        ("snake_case and UPPER", "snake_case-and-upper"),
        ("[A link](x.md) in a heading", "a-link-in-a-heading"),
        ("Über café", "über-café"),
    ],
)
def test_slug_follows_githubs_rules(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_and_code_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Usage\n\n## Usage\n\n```toml\n# not a heading\n```\n\n### `--set` #\n",
        encoding="utf-8",
    )
    assert anchors(page) == {"usage", "usage-1", "--set"}


def test_broken_links_are_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "See [other](docs/other.md#a-section), [top](#top) and [web](https://example.com/x#y).\n"
        "\n# Top\n\n"
        "[gone](docs/gone.md) [bad anchor](docs/other.md#no-such) [self](#nowhere)\n"
        "`[in code](docs/gone.md)` and\n```\n[in a block](docs/gone.md)\n```\n"
        "[ref]: docs/missing.md\n"
        "[out](../../etc/passwd)\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "README.md:5: docs/gone.md: no such file",
        "README.md:5: docs/other.md#no-such: no heading with the anchor #no-such in docs/other.md",
        "README.md:5: #nowhere: no heading with the anchor #nowhere in README.md",
        "README.md:10: docs/missing.md: no such file",
        "README.md:11: ../../etc/passwd: leaves the repository",
    ]
