"""File-format cases as files (tests/data/{dropin,hooks-json,config-toml}/{valid,invalid}), like tomli's tests/data.

A valid case is NAME.json (NAME.toml) beside NAME.parsed.json, what the shim plans from
it (the effective config); an invalid case is NAME.json (NAME.toml) beside NAME.err, the
exact one line a create shows (the file named as NAME.json). Adding a case is adding two
files: no Python. Files are read as bytes, so CRLF cases stay CRLF.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from chts.config.toolkit import parse_config
from chts.errors import ToolkitError
from chts.hooks.dropin import parse_dropin
from chts.hooks.model import parse_hooks_json

DATA = Path(__file__).resolve().parent.parent / "data"
PARSERS: Dict[str, Callable[[str, str], Any]] = {
    "dropin": parse_dropin,
    "hooks-json": parse_hooks_json,
    "config-toml": parse_config,
}
SUFFIX = {"dropin": ".json", "hooks-json": ".json", "config-toml": ".toml"}


def cases(validity: str) -> List[Tuple[str, Path]]:
    return [
        (kind, path)
        for kind in PARSERS
        for path in sorted((DATA / kind / validity).glob("*" + SUFFIX[kind]))
        if not path.name.endswith(".parsed.json")
    ]


def text_of(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def case_id(case: Tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].stem}"


@pytest.mark.parametrize("case", cases("valid"), ids=case_id)
def test_valid_files_parse_to_what_is_beside_them(case: Tuple[str, Path]) -> None:
    kind, path = case
    expected = json.loads(path.with_name(path.stem + ".parsed.json").read_text())
    assert PARSERS[kind](text_of(path), path.name) == expected


@pytest.mark.parametrize("case", cases("invalid"), ids=case_id)
def test_invalid_files_fail_with_the_one_line_beside_them(case: Tuple[str, Path]) -> None:
    kind, path = case
    expected = path.with_suffix(".err").read_text()
    assert expected.endswith("\n") and expected.count("\n") == 1, f"{path.stem}.err must hold one line"
    with pytest.raises(ToolkitError) as caught:
        PARSERS[kind](text_of(path), path.name)
    assert str(caught.value) == expected.rstrip("\n")


def test_every_case_has_its_expectation_and_nothing_is_orphaned() -> None:
    for kind in PARSERS:
        valid = {p.name for p in (DATA / kind / "valid").iterdir()}
        invalid = {p.name for p in (DATA / kind / "invalid").iterdir()}
        suffix = SUFFIX[kind]
        inputs = {name for name in valid if not name.endswith(".parsed.json")}
        assert all(name.endswith(suffix) for name in inputs), kind
        assert valid == inputs | {name[: -len(suffix)] + ".parsed.json" for name in inputs}, kind
        stems = {name.rsplit(".", 1)[0] for name in invalid}
        assert invalid == {f"{stem}{suffix}" for stem in stems} | {f"{stem}.err" for stem in stems}, kind
