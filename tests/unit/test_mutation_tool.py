"""tests/mutation/run.py, the mutation tester: each operator plants what it says, never in the worktree."""

from __future__ import annotations

import ast
import importlib.util
import signal
import sys
from pathlib import Path
from typing import Any, List

import pytest

RUN = Path(__file__).resolve().parent.parent / "mutation" / "run.py"


@pytest.fixture(scope="module")
def tool() -> Any:
    spec = importlib.util.spec_from_file_location("mutation_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_run"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


SOURCE = '''"""Docstring: never mutated."""
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List


def f(items: "List[int]", flag: bool) -> int:
    """Nor this one."""
    total = 0
    for item in items[1:]:
        if item > 2 and flag:
            total += item
    return total if not flag else -1
'''


def mutants(tool: Any, source: str) -> List[str]:
    """Each candidate as "line: what -> the changed line of the mutant"."""
    tree = ast.parse(source)
    original = ast.unparse(tree).splitlines()
    found = []
    for mutation in tool.candidates(tree):
        mutant = ast.unparse(tool.apply(tree, mutation)).splitlines()
        (changed,) = [new.strip() for old, new in zip(original, mutant) if old != new]
        found.append(f"{mutation.line}: {mutation.text} -> {changed}")
    return found


def test_each_operator_plants_one_change(tool: Any) -> None:
    found = mutants(tool, SOURCE)
    expected = [
        "2: statement deleted (assign) -> pass",
        "2: False -> True -> TYPE_CHECKING = True",
        "9: statement deleted (assign) -> pass",
        "9: 0 -> 1 -> total = 1",
        "10: slice lower bound + 1 -> for item in items[1 + 1:]:",
        "10: 1 -> 0 -> for item in items[0:]:",
        "11: condition negated -> if not (item > 2 and flag):",
        "11: and -> or -> if item > 2 or flag:",
        "11: > -> <= -> if item <= 2 and flag:",
        "11: > -> >= -> if item >= 2 and flag:",
        "11: 2 -> 3 -> if item > 3 and flag:",
        "12: + -> - -> total -= item",
        "12: statement deleted (augassign) -> pass",
        "13: returns None -> return None",
        "13: condition negated -> return total if not not flag else -1",
        "13: `not` dropped -> return total if flag else -1",
        "13: 1 -> 0 -> return total if not flag else -0",
    ]
    assert found == expected


def test_annotations_docstrings_and_type_checking_blocks_are_left_alone(tool: Any) -> None:
    texts = " ".join(mutants(tool, SOURCE))
    assert "Docstring" not in texts and "Nor this" not in texts and "List" not in texts


def test_a_bare_annotation_is_no_statement_to_delete(tool: Any) -> None:
    source = "def f(flag: bool) -> int:\n    value: int\n    count: int = 2\n    value = count\n    return value\n"
    deleted = [text for text in mutants(tool, source) if "statement deleted" in text]
    assert deleted == ["3: statement deleted (annassign) -> pass", "4: statement deleted (assign) -> pass"]


def test_only_the_named_functions(tool: Any) -> None:
    tree = ast.parse(SOURCE + "\n\ndef g() -> int:\n    return 5\n")
    lines = tool.function_lines(tree, ["g"])
    assert [m.text for m in tool.candidates(tree, lines)] == ["returns None", "5 -> 6"]


def test_a_mutant_runs_in_a_copy_and_the_worktree_is_untouched(tool: Any) -> None:
    module = "chts/errors.py"
    original = (tool.ROOT / module).read_bytes()
    sandbox = tool.Sandbox()
    try:
        assert sandbox.root != tool.ROOT and (sandbox.root / module).read_bytes() == original
        broken = "raise SystemExit('planted')\n"
        outcome, _ = sandbox.run(module, broken, ["tests/unit/test_merge.py"], timeout=120)
        assert outcome == "failed"
        assert (sandbox.root / module).read_bytes() == original  # put back for the next mutant
    finally:
        sandbox.remove()
    assert (tool.ROOT / module).read_bytes() == original
    assert not sandbox.root.exists()


def test_the_sample_depends_on_the_seed_only(tool: Any) -> None:
    tree = ast.parse(SOURCE)
    items = [(ast.unparse(tool.apply(tree, m)), m) for m in tool.candidates(tree)]
    first = tool.choose(items, "chts/x.py", 5, seed=1)
    assert len(first) == 5
    assert first == tool.choose(items, "chts/x.py", 5, seed=1)
    assert first != tool.choose(items, "chts/x.py", 5, seed=2)
    assert [m for _, m in first] == sorted((m for _, m in first), key=lambda m: (m.line, m.index, m.arg))
    assert len(tool.choose(items, "chts/x.py", 0, seed=1)) == len(items)


def small_tree(root: Path, with_helper: bool) -> None:
    """A tree whose tests import a top-level module (as tests/conftest.py imports build.py)."""
    (root / "chts").mkdir()
    (root / "chts" / "__init__.py").write_text("")
    (root / "chts" / "x.py").write_text("def f(a: int) -> int:\n    return a + 1 if a > 0 else 0\n")
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "conftest.py").write_text("import helper  # noqa: F401\n")
    (root / "tests" / "unit" / "test_x.py").write_text(
        "from chts.x import f\n\n\ndef test_f() -> None:\n"
        "    assert f(2) == 3 and f(1) == 2 and f(-1) == 0 and f(0) == 0\n"
    )
    if with_helper:
        (root / "helper.py").write_text("VALUE = 1\n")
    for junk in (".git", ".tox", "dist"):
        (root / junk).mkdir()
        (root / junk / "big").write_text("not copied")


def test_the_sandbox_holds_whatever_the_tests_import_but_not_build_output(
    tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small_tree(tmp_path, with_helper=True)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    sandbox = tool.Sandbox()
    try:
        assert (sandbox.root / "helper.py").is_file() and (sandbox.root / "tests" / "conftest.py").is_file()
        assert not any((sandbox.root / junk).exists() for junk in (".git", ".tox", "dist"))
    finally:
        sandbox.remove()
    for shared in ([], ["--shared-baseline", "-j", "2"]):
        assert tool.main(["chts/x.py", "--sample", "0", "--seed", "3", *shared]) == 0
        out = capsys.readouterr().out
        assert "chts/x.py" in out and "8/8" in out and "1.00" in out


def test_the_real_tree_s_sandbox_has_what_conftest_imports(tool: Any) -> None:
    sandbox = tool.Sandbox()
    try:
        assert (sandbox.root / "build.py").is_file() and (sandbox.root / "tests" / "conftest.py").is_file()
        assert not (sandbox.root / ".git").exists() and not (sandbox.root / "dist").exists()
    finally:
        sandbox.remove()


@pytest.mark.parametrize("shared", [[], ["--shared-baseline"]])
def test_a_failing_baseline_stops_the_run_naming_the_cause(
    tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], shared: List[str]
) -> None:
    small_tree(tmp_path, with_helper=False)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert tool.main(["chts/x.py", "--sample", "0", *shared]) == 2
    err = capsys.readouterr().err
    assert "mutation: the tests fail on the unmutated chts/x.py, so no mutant can be judged" in err
    assert "mutation: cause: " in err and "No module named 'helper'" in err


def test_a_mutant_that_signals_the_runner_fails_the_run_naming_the_cause(
    tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill(pid, 0) mutated to kill(pid, 1) with the tests' parent as pid: SIGHUP reaches the runner."""
    small_tree(tmp_path, with_helper=True)
    (tmp_path / "chts" / "x.py").write_text(
        "import os\n\n\ndef alive(pid: int) -> bool:\n    os.kill(pid, 0)\n    return True\n"
    )
    (tmp_path / "tests" / "unit" / "test_x.py").write_text(
        "import os\n\nfrom chts.x import alive\n\n\ndef test_alive() -> None:\n    assert alive(os.getppid())\n"
    )
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    before = signal.getsignal(signal.SIGHUP)
    assert tool.main(["chts/x.py", "--sample", "0"]) == 2
    err = capsys.readouterr().err
    assert "mutation: SIGHUP received from a mutant's tests" in err and tool.STRAY_SIGNAL in err
    assert signal.getsignal(signal.SIGHUP) == before


def test_the_seed_can_come_from_the_commit(tool: Any) -> None:
    assert tool.seed_of("7") == 7
    seed = tool.seed_of("commit")
    assert isinstance(seed, int) and seed == tool.seed_of("commit")
    with pytest.raises(Exception, match="a number or 'commit'"):
        tool.seed_of("seven")


def test_every_create_path_module_can_be_named_and_has_tests(tool: Any) -> None:
    """What a check of the create path names (chts/shim/*, the hooks and base modules it runs): each one has
    unit tests to run, or nothing to mutate (a package's docstring), never "no unit tests found"."""
    root = RUN.parent.parent.parent
    modules = sorted(str(path.relative_to(root)) for path in (root / "chts" / "shim").glob("*.py"))
    modules += [f"chts/hooks/{name}.py" for name in ("bundle", "bundle_record", "merge", "sources", "model", "dropin")]
    modules += [f"chts/base/{name}.py" for name in ("atomic", "file_trust", "json_edit", "jsonio")]
    for module in modules:
        assert tool.tests_for(module) or not tool.candidates(ast.parse((root / module).read_text())), module
    assert all(tool.tests_for(spec.partition(":")[0]) for spec in tool.LISTED)


def test_a_module_with_nothing_to_mutate_is_no_error(
    tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small_tree(tmp_path, with_helper=True)
    (tmp_path / "chts" / "__init__.py").write_text('"""A package: a docstring, no code."""\n')
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert tool.main(["chts/__init__.py", "chts/x.py", "--sample", "2", "--fail-under", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "chts/__init__.py" in out and "0/0" in out


CLASSY = """import functools


@functools.lru_cache(maxsize=2)
def g(a: int) -> int:
    return a + 1 if a > 0 else 0


@dataclasses.dataclass(frozen=True)
class C:
    size: int = 3

    @property
    def big(self) -> bool:
        return self.size > 2 and not self.size == 10

    def same(self, b: int) -> bool:
        return b > 2 and not b == 10


X = g(2) + 1
Y = not not X
"""


@pytest.mark.parametrize("source", [SOURCE, CLASSY])
def test_the_distinct_mutants_are_those_of_whole_module_texts(tool: Any, source: str) -> None:
    """distinct_mutants writes out one statement per mutant: the set and order are those of unparsing each
    whole mutant (what a seed's sample is drawn from), repeats and no-ops dropped alike."""
    tree = ast.parse(source)
    found = tool.candidates(tree)
    whole, expected = ast.unparse(tree), {}
    for mutation in found:
        text = ast.unparse(tool.apply(tree, mutation))
        if text != whole and text not in expected:
            expected[text] = mutation
    assert list(tool.distinct_mutants(tree, found).values()) == list(expected.values())
    assert source == SOURCE or len(expected) < len(found)  # `not not X`: either `not` dropped is `not X`


def test_a_shared_baselines_time_is_split_by_test_file(tool: Any, tmp_path: Path) -> None:
    """With --shared-baseline one run times many modules' tests: each module's mutants get a time limit from
    its own test files' share (a mutant that hangs then costs 3x its own tests' time, not the group's)."""
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.unit.test_shim" name="a" time="2.5"/>'
        '<testcase classname="tests.unit.test_shim" name="b" time="0.5"/>'
        '<testcase classname="tests.unit.test_mutation_tool" name="c" time="6.0"/>'
        "</testsuite></testsuites>"
    )
    assert tool.seconds_per_file(report, 10.0) == {
        "tests/unit/test_shim.py": 4.0,
        "tests/unit/test_mutation_tool.py": 7.0,
    }
    assert tool.seconds_per_file(tmp_path / "missing.xml", 10.0) == {}
