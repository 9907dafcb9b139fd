"""Mutation testing of the unit suite: how many small deliberate bugs in a module do its tests catch?

For each module named, every point where a small bug can be planted is listed from the
module's AST (a comparison flipped, `and`/`or` swapped, a constant changed, a returned value
replaced by None, a condition negated, a statement deleted, an arithmetic operator swapped, a
slice bound moved, a `not` dropped). A fixed-seed sample of them is run: each mutant is written
into a private copy of the tree (the worktree is never written) and the module's unit tests
run against it in a subprocess with a time limit. A mutant the tests fail on (or time out on)
is killed; one they pass is a survivor, listed with its file:line and change so a test can be
written for it. Score = killed / (killed + survived).

    python3 tests/mutation/run.py chts/hooks/merge.py chts/base/atomic.py --sample 60 --seed 1
    python3 tests/mutation/run.py 'chts/ctk/config.py:set_value,unset_value'   # only these functions
    python3 tests/mutation/run.py --sample 2 --seed commit --fail-under-total 0.75  # CI: the listed set

Standard library only; needs Python 3.9+ (ast.unparse). `tox -e mutation` runs the project's set.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent.parent
# No mutant's tests run longer than this: a mutant that loops forever (seen: chts/shim/argv.py under
# test_shim.py) held CI's sampled run for the whole share of a shared baseline it was given (10 minutes),
# where the slowest listed module's own tests take under a minute.
MUTANT_SECONDS_CAP = 150.0
# The sandbox is the whole tree but for what git ignores (build output, caches, virtualenvs) and
# git's own files: whatever the tests import (build.py for conftest.py, today) comes along, so a
# new top-level import cannot break the baseline unseen again (issue 22).
LEFT_BEHIND_AT_TOP = (".git", ".tox", "dist", "build")
LEFT_BEHIND = ("__pycache__", "*.pyc", "*.pyz", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis")

# The listed set, run when no module is named (`tox -e mutation`, and a few of each in CI): every
# module that decides which hook runs where, what the shim execs, or what is written into a user's
# or an engine's file. goregex's mutants run test_goregex.py and the Go-oracle differential
# (test_goregex_oracle.py: the oracle program is built once into Go's build cache, then seconds).
LISTED: Tuple[str, ...] = (
    # the shim's create path, and what it execs
    "chts/shim/main.py",
    "chts/shim/argv.py",
    "chts/base/runtime_lookup.py",
    "chts/config/chains.py",
    "chts/shim/inject.py",
    "chts/base/jsonio.py",
    "chts/hooks/merge.py",
    "chts/shim/cache.py",
    "chts/base/atomic.py",
    "chts/shim/precreate.py",
    "chts/shim/runtime_record.py",
    "chts/shim/log.py",
    "chts/base/logfile.py",
    "chts/hooks/bundle.py",
    "chts/hooks/bundle_record.py",
    # which hooks run where
    "chts/hooks/model.py",
    "chts/hooks/dropin.py",
    "chts/hooks/sources.py",
    "chts/hooks/goregex.py",
    "chts/base/file_trust.py",
    # what is written into a user's or an engine's file, and the engines' effective readers
    "chts/base/toml_edit.py",
    "chts/base/json_edit.py",
    "chts/base/file_edit.py",
    "chts/ctk/runtime.py:change_runtime,verification_problem,first_difference,paths_holding,without_paths",
    "chts/config/edit.py:apply_assignments,validate_document,read_toolkit_config",
    "chts/ctk/config.py:write_output,run_config,run_default",
    "chts/engines/containerd_config.py",
    "chts/engines/containerd.py:Containerd.effective,Containerd.low_level_runtime",
    "chts/engines/crio.py:file_view,command_view,read_after,Crio.effective,Crio.low_level_runtime",
    "chts/engines/docker.py:load,Docker.effective,Docker.low_level_runtime",
    "chts/engines/podman.py:file_view,command_view,Podman.effective,Podman.low_level_runtime",
    # the node installer
    "chts/node/engine.py",
    "chts/node/files.py",
    "chts/node/host.py",
    "chts/node/nri.py",
    "chts/engines/nri.py",
    "chts/ctk/chaining.py",
    # the NRI plugin: which hooks a CRI container gets, and what is said to the runtime
    "chts/nri/selection.py",
    "chts/nri/plugin.py",
    "chts/nri/api.py",
    "chts/nri/ttrpc.py",
    "chts/nri/wire.py",
)

# Test files beyond tests/unit/test_<name>.py (or test_<package>_<name>.py) that exercise a
# module directly: the suite's score counts a kill by any test that calls the module.
CORPUS = "tests/unit/test_engine_corpus.py"
EXTRA_TESTS: Dict[str, Tuple[str, ...]] = {
    "chts/hooks/goregex.py": ("tests/unit/test_goregex_oracle.py",),
    "chts/nri/selection.py": ("tests/unit/test_nri_plugin.py",),
    "chts/nri/api.py": ("tests/unit/test_nri_plugin.py",),
    "chts/shim/main.py": ("tests/unit/test_shim.py",),
    "chts/shim/argv.py": ("tests/unit/test_shim.py",),
    "chts/base/runtime_lookup.py": ("tests/unit/test_shim.py", "tests/unit/test_ctk_check.py"),
    "chts/config/chains.py": ("tests/unit/test_ctk_chaining.py",),
    "chts/hooks/bundle.py": ("tests/unit/test_inject.py", "tests/unit/test_ctk_hooks.py"),
    "chts/hooks/bundle_record.py": ("tests/unit/test_inject.py",),
    "chts/shim/inject.py": ("tests/unit/test_inject_paths.py", "tests/unit/test_shim.py"),
    "chts/base/jsonio.py": ("tests/unit/test_file_cases.py", "tests/unit/test_inject.py"),
    "chts/hooks/merge.py": ("tests/unit/test_inject.py",),
    "chts/shim/cache.py": ("tests/unit/test_shim.py",),
    "chts/shim/runtime_record.py": ("tests/unit/test_precreate.py",),
    "chts/shim/log.py": ("tests/unit/test_shim.py", "tests/unit/test_inject.py"),
    "chts/base/logfile.py": ("tests/unit/test_shim.py", "tests/unit/test_inject.py", "tests/unit/test_nri_plugin.py"),
    "chts/engines/nri.py": ("tests/unit/test_engine_nri.py",),
    "chts/nri/plugin.py": ("tests/unit/test_nri_plugin.py",),
    "chts/hooks/model.py": ("tests/unit/test_file_cases.py",),
    "chts/hooks/dropin.py": ("tests/unit/test_file_cases.py",),
    "chts/base/toml_edit.py": ("tests/unit/test_ctk_config.py", "tests/unit/test_engine_containerd.py"),
    "chts/base/json_edit.py": ("tests/unit/test_engine_docker.py",),
    "chts/base/file_edit.py": ("tests/unit/test_node_nri.py", "tests/unit/test_engine_inputs.py"),
    "chts/ctk/runtime.py": (
        "tests/unit/test_runtime_verification.py",
        "tests/unit/test_engine_inputs.py",
        "tests/unit/test_engine_containerd.py",
        "tests/unit/test_ctk_chaining.py",
    ),
    "chts/config/edit.py": ("tests/unit/test_ctk_config.py",),
    "chts/engines/containerd_config.py": (
        "tests/unit/test_engine_containerd.py",
        "tests/unit/test_engine_containerd_corpus.py",
    ),
    "chts/engines/containerd.py": (
        "tests/unit/test_engine_containerd.py",
        "tests/unit/test_engine_containerd_corpus.py",
    ),
    "chts/engines/crio.py": ("tests/unit/test_engine_crio.py", CORPUS),
    "chts/engines/docker.py": ("tests/unit/test_engine_docker.py", CORPUS),
    "chts/engines/podman.py": ("tests/unit/test_engine_podman.py", CORPUS),
}

COMPARE_FLIPS: Dict[type, Tuple[type, ...]] = {
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Lt: (ast.GtE, ast.LtE),
    ast.LtE: (ast.Gt, ast.Lt),
    ast.Gt: (ast.LtE, ast.GtE),
    ast.GtE: (ast.Lt, ast.Gt),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
ARITHMETIC_SWAPS: Dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.BitXor: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
# Statements whose deletion is a plausible bug; defs, imports and `global` would only fail on load.
DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Delete, ast.Continue, ast.Break)


@dataclass(frozen=True)
class Mutation:
    """One planted bug: which node (its index in a depth-first walk) and what is done to it."""

    index: int
    kind: str
    arg: int
    line: int
    text: str


@dataclass
class ModuleResult:
    path: str
    candidates: int = 0
    killed: int = 0
    timeouts: int = 0
    survivors: List[Mutation] = field(default_factory=list)
    error: str = ""

    @property
    def score(self) -> Optional[float]:
        total = self.killed + len(self.survivors)
        return self.killed / total if total else None


def walk(tree: ast.AST) -> Iterator[Tuple[ast.AST, Optional[ast.AST], str, int]]:
    """Depth-first (node, parent, field, list index) in a fixed order, skipping what never runs as code.

    Skipped: annotations (strings at run time here), docstrings, `if TYPE_CHECKING:` blocks and
    the literal parts of f-strings.
    """
    stack: List[Tuple[ast.AST, Optional[ast.AST], str, int]] = [(tree, None, "", -1)]
    while stack:
        node, parent, name, position = stack.pop()
        yield node, parent, name, position
        children: List[Tuple[ast.AST, Optional[ast.AST], str, int]] = []
        for child_field, value in ast.iter_fields(node):
            if child_field in ("annotation", "returns", "type_comment"):
                continue
            if isinstance(node, ast.JoinedStr):
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST) and not _skipped(item, i):
                        children.append((item, node, child_field, i))
            elif isinstance(value, ast.AST):
                children.append((value, node, child_field, -1))
        stack.extend(reversed(children))


def _skipped(node: ast.AST, position: int) -> bool:
    if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
        return True
    is_string = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    return position == 0 and is_string and isinstance(node.value.value, str)  # type: ignore[attr-defined]


def candidates(tree: ast.AST, lines: Optional[List[Tuple[int, int]]] = None) -> List[Mutation]:
    """Every mutation the operators offer on ``tree``, in walk order, optionally only within ``lines``."""
    found: List[Mutation] = []
    for index, (node, parent, name, _) in enumerate(walk(tree)):
        line = getattr(node, "lineno", 0)
        if lines is not None and not any(start <= line <= end for start, end in lines):
            continue

        def add(kind: str, arg: int, text: str, line: int = line, index: int = index) -> None:
            found.append(Mutation(index, kind, arg, line, text))

        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for replacement in COMPARE_FLIPS.get(type(op), ()):
                    add("compare", i * 10 + COMPARE_FLIPS[type(op)].index(replacement), _swap_text(op, replacement))
        elif isinstance(node, ast.BoolOp):
            add("boolop", 0, "and -> or" if isinstance(node.op, ast.And) else "or -> and")
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in ARITHMETIC_SWAPS:
            add("arith", 0, _swap_text(node.op, ARITHMETIC_SWAPS[type(node.op)]))
        elif isinstance(node, ast.Constant) and not (isinstance(parent, ast.Expr) and name == "value"):
            text = _constant_text(node.value)
            if text:
                add("constant", 0, text)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add("not", 0, "`not` dropped")
        elif isinstance(node, ast.Slice):
            for bound in ("lower", "upper"):
                if getattr(node, bound) is not None:
                    add("slice", 0 if bound == "lower" else 1, f"slice {bound} bound + 1")
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            add("negate", 0, "condition negated")
        if isinstance(node, ast.Return) and node.value is not None and not _is_constant(node.value, None):
            add("return", 0, "returns None")
        in_body = name in ("body", "orelse", "finalbody", "handlers")
        # a docstring and a bare annotation (`value: Value`) do nothing at run time: no mutant of theirs can be killed
        inert = (isinstance(node, ast.Expr) and _is_constant(node.value)) or (
            isinstance(node, ast.AnnAssign) and node.value is None
        )
        if isinstance(node, DELETABLE) and in_body and not inert:
            add("delete", 0, f"statement deleted ({type(node).__name__.lower()})")
    return found


def _is_constant(node: ast.AST, *values: object) -> bool:
    """Is ``node`` a constant (one of ``values``, when given)?"""
    return isinstance(node, ast.Constant) and (not values or node.value in values)


def _swap_text(old: ast.AST, new: type) -> str:
    return f"{_op_symbol(type(old))} -> {_op_symbol(new)}"


def _op_symbol(op: type) -> str:
    symbols: Dict[type, str] = {
        ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
        ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
        ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    }  # fmt: skip
    return symbols[op]


def _constant_text(value: object) -> str:
    if isinstance(value, bool):
        return f"{value} -> {not value}"
    if isinstance(value, int):
        return f"{value} -> {_changed_int(value)}"
    if isinstance(value, (str, bytes)):
        return f"{_short(value)} -> {_short(value[:0] if value else _filler(value))}"
    return ""


def _changed_int(value: int) -> int:
    return {0: 1, 1: 0}.get(value, value + 1)


def _filler(value: object) -> object:
    return b"x" if isinstance(value, bytes) else "x"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def apply(tree: ast.AST, mutation: Mutation) -> ast.AST:
    """A copy of ``tree`` with ``mutation`` planted."""
    mutant = copy.deepcopy(tree)
    for index, (node, parent, name, position) in enumerate(walk(mutant)):
        if index == mutation.index:
            _plant(node, parent, name, position, mutation)
            return ast.fix_missing_locations(mutant)
    raise ValueError(f"no node {mutation.index}")


def _plant(node: ast.AST, parent: Optional[ast.AST], name: str, position: int, mutation: Mutation) -> None:
    kind = mutation.kind
    if kind == "compare":
        assert isinstance(node, ast.Compare)
        i, choice = divmod(mutation.arg, 10)
        node.ops[i] = COMPARE_FLIPS[type(node.ops[i])][choice]()
    elif kind == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "arith":
        assert isinstance(node, (ast.BinOp, ast.AugAssign))
        node.op = ARITHMETIC_SWAPS[type(node.op)]()
    elif kind == "constant":
        assert isinstance(node, ast.Constant)
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, int):
            node.value = _changed_int(value)
        else:
            node.value = value[:0] if value else _filler(value)
    elif kind == "not":
        assert isinstance(node, ast.UnaryOp) and parent is not None
        _replace(parent, name, position, node.operand)
    elif kind == "slice":
        assert isinstance(node, ast.Slice)
        bound = "lower" if mutation.arg == 0 else "upper"
        setattr(node, bound, ast.BinOp(left=getattr(node, bound), op=ast.Add(), right=ast.Constant(1)))
    elif kind == "negate":
        assert isinstance(node, (ast.If, ast.While, ast.IfExp))
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "return":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(None)
    elif kind == "delete":
        assert parent is not None
        _replace(parent, name, position, ast.Pass())
    else:
        raise ValueError(kind)


def _replace(parent: ast.AST, name: str, position: int, new: ast.AST) -> None:
    if position >= 0:
        getattr(parent, name)[position] = new
    else:
        setattr(parent, name, new)


def function_lines(tree: ast.AST, names: Sequence[str]) -> List[Tuple[int, int]]:
    """The line ranges of the named functions (methods included: `Class.method` or `method`)."""
    ranges: List[Tuple[int, int]] = []
    wanted = set(names)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and f"{node.name}.{item.name}" in wanted:
                    ranges.append((item.lineno, item.end_lineno or item.lineno))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in wanted:
            ranges.append((node.lineno, node.end_lineno or node.lineno))
    if not ranges:
        raise SystemExit(f"none of the functions {', '.join(names)} found")
    return ranges


def tests_for(module: str) -> List[str]:
    stem = Path(module).stem
    parent = Path(module).parent.name
    names = [f"tests/unit/test_{stem}.py", f"tests/unit/test_{parent}_{stem}.py"]
    found = [name for name in names if (ROOT / name).is_file()]
    found += [name for name in EXTRA_TESTS.get(module, ()) if name not in found]
    # In the suite's own (sorted) order, the baseline's too, so a run repeats what the suite does. (The
    # SIGPIPE once seen in test_precreate.py run after test_shim.py was the shim leaving SIGPIPE at its
    # default after an exec that did not happen: fixed in chts/shim/main.py, tested in test_shim.py.)
    return sorted(found)


def choose(items: List[Tuple[str, Mutation]], spec: str, sample: int, seed: int) -> List[Tuple[str, Mutation]]:
    """``sample`` of ``items`` (all with 0), the same for the same seed and module, in line order."""
    if sample and len(items) > sample:
        items = random.Random(seed ^ zlib.crc32(spec.encode())).sample(items, sample)
    return sorted(items, key=lambda item: (item[1].line, item[1].index, item[1].arg))


class BaselineFailure(Exception):
    """The tests fail on the unmutated module: every mutant would "die", and no score means anything."""


def _left_behind(directory: str, names: List[str]) -> List[str]:
    ignored = set(shutil.ignore_patterns(*LEFT_BEHIND)(directory, names))
    if Path(directory) == ROOT:
        ignored.update(name for name in names if name in LEFT_BEHIND_AT_TOP)
    return sorted(ignored)


class Sandbox:
    """A private copy of the tree that one mutant at a time is written into."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chts-mutation-"))
        shutil.copytree(ROOT, self.root, ignore=_left_behind, symlinks=True, dirs_exist_ok=True)
        self.output = ""

    def run(
        self, module: str, source: str, tests: Sequence[str], timeout: float, keep_output: bool = False
    ) -> Tuple[str, float]:
        """'passed', 'failed' or 'timeout' for the tests with ``source`` in place of ``module``.

        With ``keep_output``, pytest's output is kept in ``self.output`` (for the baseline's report).
        """
        return self.run_with({module: source}, tests, timeout, keep_output)

    def run_with(
        self,
        sources: Dict[str, str],
        tests: Sequence[str],
        timeout: float,
        keep_output: bool = False,
        junit: Optional[Path] = None,
    ) -> Tuple[str, float]:
        """As run(), with each module of ``sources`` replaced by its text (``junit``: pytest's report there)."""
        originals = {module: (self.root / module).read_bytes() for module in sources}
        for module, source in sources.items():
            (self.root / module).write_text(source)
        env = dict(os.environ, PYTHONPATH=str(self.root), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        command += [f"--junitxml={junit}"] if junit else []
        started = time.monotonic()
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                [*command, *tests],
                cwd=self.root,
                env=env,
                stdout=output if keep_output else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if keep_output else subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=timeout)
                outcome = "passed" if code == 0 else "failed"
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                outcome = "timeout"
            finally:
                for module, original in originals.items():
                    (self.root / module).write_bytes(original)
            output.seek(0)
            self.output = output.read().decode("utf-8", "replace") if keep_output else ""
        return outcome, time.monotonic() - started

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Plan:
    """One module's work: its tests, its unmutated text (the baseline) and the chosen mutants."""

    result: ModuleResult
    module: str
    tests: List[str]
    original: str
    chosen: List[Tuple[str, Mutation]]
    baseline: Optional[float] = None  # seconds, once the unmutated module has passed
    left: int = 0  # mutants (and the baseline) not yet run


def plan_module(spec: str, sample: int, seed: int) -> Plan:
    module, _, functions = spec.partition(":")
    result = ModuleResult(spec)
    tests = tests_for(module)
    tree = ast.parse((ROOT / module).read_text(), module)
    lines = function_lines(tree, functions.split(",")) if functions else None
    original = ast.unparse(tree)
    unique = distinct_mutants(tree, candidates(tree, lines))
    if not unique:  # nothing to plant (a package's docstring-only __init__.py): nothing to run, no score
        tests = []
    elif not tests:
        result.error = "no unit tests found"
        unique = {}
    result.candidates = len(unique)
    chosen = [(ast.unparse(apply(tree, m)), m) for _, m in choose(list(unique.items()), spec, sample, seed)]
    return Plan(result, module, tests, original, chosen, left=len(chosen) + 1 if tests else 0)


def distinct_mutants(tree: ast.Module, found: Sequence[Mutation]) -> Dict[str, Mutation]:
    """The mutations that change the module's text, the first of each text only (a no-op or a repeat tells
    nothing new), keyed by the text of the statement they change.

    The same set, in the same order, as unparsing each whole mutant (what the sample's seed picks from), at a
    fraction of its cost (goregex: 27 s, was minutes): a mutant differs from the module only in the statement
    it is in (a top-level one, or a class's member), and two mutants are the same text only when they change
    the same statement the same way. So only that statement is copied and written out, alone.
    """
    units: List[Tuple[int, int, ast.stmt]] = []  # (first, last + 1) walk index of each statement, the statement
    for index, (node, parent, _, _) in enumerate(walk(tree)):
        in_class = isinstance(parent, ast.ClassDef) and parent in tree.body
        if isinstance(node, ast.stmt) and (parent is tree or in_class):
            units.append((index, index + sum(1 for _ in walk(node)), node))
    unique: Dict[str, Mutation] = {}
    originals: Dict[int, str] = {}
    whole = ast.unparse(tree)
    for mutation in found:
        inside = [unit for unit in units if unit[0] <= mutation.index < unit[1]]
        if not inside:  # in no statement (none today): the whole module
            text = ast.unparse(apply(tree, mutation))
            if text != whole and text not in unique:
                unique[text] = mutation
            continue
        start, _, statement = max(inside, key=lambda unit: unit[0])  # the innermost
        alone = ast.Module(body=[statement], type_ignores=[])
        if start not in originals:
            originals[start] = ast.unparse(alone)
        local = Mutation(mutation.index - start + 1, mutation.kind, mutation.arg, mutation.line, mutation.text)
        text = ast.unparse(apply(alone, local))
        if text != originals[start] and f"{start}\n{text}" not in unique:
            unique[f"{start}\n{text}"] = mutation
    return unique


def run_plans(
    plans: Sequence[Plan], jobs: int, log: bool, done: Callable[[Plan], None], shared_baseline: bool = False
) -> None:
    """Run every plan's baseline and mutants on ``jobs`` sandboxes at once, modules interleaved.

    Baselines are queued first, so a module's mutants usually start after its baseline has set
    their time limit (until then: 600 s). The unmutated module, as ast.unparse writes it, must
    pass, else every mutant "dies": a failing baseline stops the run (BaselineFailure).
    With ``shared_baseline`` (small samples, where baselines would cost most of the run), the
    modules are split into ``jobs`` groups and each group's unmutated modules are written together
    and its tests run once. ``done`` hears of each module as its last run ends.
    """
    work: queue.Queue[Tuple[List[Plan], Optional[Tuple[str, Mutation]]]] = queue.Queue()
    tested = [plan for plan in plans if plan.tests]
    groups = [tested[i :: max(1, jobs)] for i in range(max(1, jobs))] if shared_baseline else [[p] for p in tested]
    for group in groups:
        if group:
            work.put((group, None))
    for plan in plans:
        for item in plan.chosen:
            work.put(([plan], item))
    lock = threading.Lock()
    failures: List[str] = []

    def finish(plan: Plan) -> None:
        plan.left -= 1
        if plan.left == 0 and not failures:
            plan.result.survivors.sort(key=lambda mutation: (mutation.line, mutation.index, mutation.arg))
            done(plan)

    def worker(sandbox: Sandbox) -> None:
        while not failures:
            try:
                group, item = work.get_nowait()
            except queue.Empty:
                return
            if item is None:
                sources = {plan.module: plan.original for plan in group}
                tests = sorted({test for plan in group for test in plan.tests})  # as tests_for: sorted
                report = sandbox.root.parent / f"{sandbox.root.name}-baseline.xml"
                outcome, seconds = sandbox.run_with(sources, tests, 600, keep_output=True, junit=report)
                per_file = seconds_per_file(report, seconds)
                report.unlink(missing_ok=True)
                with lock:
                    if log:
                        print(f"  baseline of {len(group)} modules: {outcome} ({seconds:.1f} s)", file=sys.stderr)
                    if outcome != "passed":
                        modules = ", ".join(sources)
                        failures.append(baseline_message(modules, tests, outcome, sandbox.output))
                        return
                    for plan in group:  # each module's own tests' time (a shared run's is many modules')
                        plan.baseline = sum(per_file.get(test, seconds) for test in plan.tests) if per_file else seconds
                        finish(plan)
                continue
            (plan,) = group
            text, mutation = item
            timeout = min(MUTANT_SECONDS_CAP, 600.0 if plan.baseline is None else 3 * plan.baseline + 10)
            outcome, seconds = sandbox.run(plan.module, text, plan.tests, timeout)
            with lock:
                if outcome == "passed":
                    plan.result.survivors.append(mutation)
                else:
                    plan.result.killed += 1
                    plan.result.timeouts += outcome == "timeout"
                if log:
                    said = f"{outcome} ({seconds:.1f} s)"
                    print(f"  {plan.module}:{mutation.line} {mutation.text}: {said}", file=sys.stderr)
                finish(plan)

    sandboxes = [Sandbox() for _ in range(max(1, jobs))]
    try:
        threads = [threading.Thread(target=worker, args=(sandbox,)) for sandbox in sandboxes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for sandbox in sandboxes:
            sandbox.remove()
    if failures:
        raise BaselineFailure(failures[0])


def seconds_per_file(report: Path, seconds: float) -> Dict[str, float]:
    """How long each test file of a run took, from pytest's JUnit XML ``report`` (empty if unreadable), the
    run's start-up and collection (``seconds`` less the tests' times) added to each: what a run of that
    file alone would take, for the time limit of a module's mutants."""
    import xml.etree.ElementTree as ElementTree

    try:
        cases = ElementTree.parse(report).getroot().iter("testcase")
        times: Dict[str, float] = {}
        for case in cases:
            parts = case.get("classname", "").split(".")
            for end in range(len(parts), 0, -1):  # tests.unit.test_x[.Class]: the longest that is a file
                name = "/".join(parts[:end]) + ".py"
                if (ROOT / name).is_file():
                    times[name] = times.get(name, 0.0) + float(case.get("time", "0"))
                    break
    except (OSError, ValueError, ElementTree.ParseError):
        return {}
    overhead = max(seconds - sum(times.values()), 0.0)
    return {name: spent + overhead for name, spent in times.items()}


def mutate_module(spec: str, sample: int, seed: int, jobs: int, log: bool) -> ModuleResult:
    """One module's result (BaselineFailure when its tests fail unmutated)."""
    plan = plan_module(spec, sample, seed)
    run_plans([plan], jobs, log, lambda plan: None)
    return plan.result


def baseline_message(module: str, tests: Sequence[str], outcome: str, output: str) -> str:
    """Why no mutant of ``module`` can be judged, with the end of pytest's output (the cause)."""
    what = "time out" if outcome == "timeout" else "fail"
    tail = [line for line in output.splitlines() if line.strip()][-30:]
    lines = [
        f"mutation: the tests {what} on the unmutated {module}, so no mutant can be judged: "
        f"fix this first (tests: {' '.join(tests)}; the tree is copied from {ROOT} but for what git ignores)",
        "pytest said:",
        *(f"  {line}" for line in tail),
    ]
    causes = [line.strip() for line in tail if line.startswith(("E ", "ERROR")) or "Error:" in line]
    if causes:
        lines.append(f"mutation: cause: {causes[0]}")
    return "\n".join(lines)


def report(results: Sequence[ModuleResult], sample: int, seed: int) -> str:
    lines = [f"mutation testing, {time.strftime('%Y-%m-%d')}, seed {seed}, up to {sample} mutants per module", ""]
    lines.append(f"{'module':44} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>6}")
    for result in results:
        if result.error:
            lines.append(f"{result.path:44} {result.error}")
            continue
        module, _, functions = result.path.partition(":")
        name = f"{module} ({functions.count(',') + 1} functions)" if functions else module
        run = result.killed + len(result.survivors)
        score = f"{result.score:.2f}" if result.score is not None else "-"
        sampled = f"{run}/{result.candidates}"
        lines.append(f"{name:44} {sampled:>8} {result.killed:>7} {len(result.survivors):>9} {score:>6}")
    for result in results:
        if result.survivors:
            lines += ["", f"survivors in {result.path}:"]
            module = result.path.partition(":")[0]
            lines += [f"  {module}:{mutation.line}: {mutation.text}" for mutation in result.survivors]
    return "\n".join(lines)


STRAY_SIGNAL = (
    "mutation: the runner itself received SIGHUP while mutants ran: a test hands code that signals "
    "(kill(pid, 0) mutated to kill(pid, 1)) a pid it did not start, such as its parent's or PID 1; "
    "give it a process of its own (the `bystander` fixture in tests/conftest.py). The scores are not trusted."
)


@contextlib.contextmanager
def stray_hangups() -> Iterator[List[int]]:
    """SIGHUP to this runner means a mutant's tests signalled a process outside their sandbox.

    The runner says so and fails (exit 2) at the end, instead of dying mid-run with no word of why
    (tox reports only "exit -1"). The list fills with the signals seen.
    """
    seen: List[int] = []

    def hangup(number: int, frame: object) -> None:
        seen.append(number)
        print("mutation: SIGHUP received from a mutant's tests; the run goes on and will fail", file=sys.stderr)

    previous = signal.signal(signal.SIGHUP, hangup)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGHUP, previous)


def seed_of(text: str) -> int:
    """``--seed``: a number, or ``commit`` for one taken from the checked-out commit (so each
    submission samples other mutants), or the time when there is no git to ask."""
    if text != "commit":
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: a number or 'commit'") from None
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        return int(head[:8], 16)
    except (OSError, subprocess.SubprocessError, ValueError):
        seed = int(time.time())
        print(f"mutation: no git commit to seed from, seed {seed} from the time", file=sys.stderr)
        return seed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "modules",
        nargs="*",
        help="chts/x.py, or chts/x.py:func,Class.method to mutate only those; default: the listed set (LISTED)",
    )
    parser.add_argument("--sample", type=int, default=60, help="mutants per module (0: all); default 60")
    parser.add_argument(
        "--seed", type=seed_of, default=1, help="the sample's seed, or 'commit' for one from git's HEAD; default 1"
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, help="mutants run at once; default 1")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 when a module scores below this")
    parser.add_argument(
        "--fail-under-total",
        type=float,
        default=0.0,
        help="exit 1 when all modules' mutants together score below this (for small samples)",
    )
    parser.add_argument(
        "--shared-baseline",
        action="store_true",
        help="run the unmutated modules' tests once per job, not once per module (small samples)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="print each mutant's outcome to stderr")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 9):
        parser.error("needs Python 3.9+ (ast.unparse)")
    args.modules = args.modules or list(LISTED)
    for spec in args.modules:
        if not (ROOT / spec.partition(":")[0]).is_file():
            parser.error(f"{spec}: no such module under {ROOT}")
    print(f"mutation: seed {args.seed}, up to {args.sample or 'all'} mutants per module", file=sys.stderr)

    started = time.monotonic()

    def done(plan: Plan) -> None:  # as each module ends: a long run is useful before it finishes
        result = plan.result
        score = f"{result.score:.2f}" if result.score is not None else result.error
        print(f"{result.path}: {score} ({time.monotonic() - started:.0f} s into the run)", file=sys.stderr)
        for mutation in result.survivors:
            print(f"  survived: {plan.module}:{mutation.line}: {mutation.text}", file=sys.stderr)
        sys.stderr.flush()

    plans = [plan_module(spec, args.sample, args.seed) for spec in args.modules]
    try:
        with stray_hangups() as stray:
            run_plans(plans, args.jobs, args.verbose, done, args.shared_baseline)
    except BaselineFailure as failure:
        print(failure, file=sys.stderr)
        return 2
    if stray:
        print(STRAY_SIGNAL, file=sys.stderr)
        return 2
    results = [plan.result for plan in plans]
    print(report(results, args.sample, args.seed))
    if args.json:
        data = [
            {
                "module": result.path,
                "candidates": result.candidates,
                "killed": result.killed,
                "timeouts": result.timeouts,
                "score": result.score,
                "error": result.error,
                "survivors": [{"line": m.line, "mutation": m.text} for m in result.survivors],
            }
            for result in results
        ]
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n")
    low = [r for r in results if r.error or (r.score is not None and r.score < args.fail_under)]
    killed = sum(r.killed for r in results)
    total = killed + sum(len(r.survivors) for r in results)
    if total:
        print(f"\nall modules: {killed}/{total} killed, score {killed / total:.2f}")
    if total and killed / total < args.fail_under_total:
        print(f"mutation: total score {killed / total:.2f} is below {args.fail_under_total}", file=sys.stderr)
        return 1
    for r in low:
        print(f"mutation: {r.path}: {r.error or f'score {r.score:.2f} is below {args.fail_under}'}", file=sys.stderr)
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
