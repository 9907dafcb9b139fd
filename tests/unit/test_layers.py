"""The ctk layer's rule (CONTRIBUTING.md, layers): command modules are flags and orchestration; none imports another.

Library code a second command needs lives below them (chts/config/edit.py, chts/hooks/problems.py,
chts/ctk/toolkit_files.py, chts/ctk/chaining.py ...), so a reader who knows the CLI knows where
every line is, as in runc's one file per command.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

CTK = Path(__file__).resolve().parents[2] / "chts" / "ctk"


def command_modules() -> Set[str]:
    """Modules under chts/ctk that register a command (define ``register``)."""
    found = set()
    for path in CTK.glob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.FunctionDef) and node.name == "register" for node in tree.body):
            found.add(f"chts.ctk.{path.stem}")
    return found


def imported_modules(path: Path) -> List[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_the_command_modules_are_the_ones_the_cli_lists() -> None:
    assert command_modules() == {
        f"chts.ctk.{name}" for name in ("check", "config", "hooks", "install", "node", "nri", "runtime")
    }


def test_no_command_module_imports_another() -> None:
    commands = command_modules()
    offenders = [
        f"{path.name} imports {name}"
        for path in sorted(CTK.glob("*.py"))
        if f"chts.ctk.{path.stem}" in commands
        for name in imported_modules(path)
        if name in commands and name != f"chts.ctk.{path.stem}"
    ]
    assert offenders == []


def test_nothing_below_the_ctk_layer_imports_a_command_module() -> None:
    commands = command_modules()
    library = [p for p in (CTK.parent).rglob("*.py") if p.parent != CTK or f"chts.ctk.{p.stem}" not in commands]
    offenders = [
        f"{p.relative_to(CTK.parent)} imports {n}" for p in library for n in imported_modules(p) if n in commands
    ]
    # ctk/main.py wires the CLI: it alone loads every command module (by name, through importlib).
    assert offenders == []


# --------------------------------------------------------------------------- the packages by layer
CHTS = CTK.parent
# What each layer may import besides itself (CONTRIBUTING.md, "The layers"). Every layer may import
# the root package (the tools' names and version) and chts.errors. Nothing but the dispatcher
# imports the shim: a runc call loads the shim and what is below it, never the CLI.
ALLOWED = {
    "errors": set(),
    "code_cache": {"base"},  # runs before any other module: builtins only, but the one writer when it stores
    "base": set(),
    "config": {"base"},
    "hooks": {"config", "base"},
    "engines": {"config", "base"},
    "node": {"engines", "hooks", "config", "base"},
    "ctk": {"node", "engines", "nri", "hooks", "config", "base"},
    # The NRI plugin: a long-running process started by `ctk nri run` (or the dispatcher through it),
    # never by the shim, so a runc call never loads it; it shares the hook model with the shim.
    "nri": {"hooks", "config", "base"},
    "shim": {"hooks", "config", "base", "_build"},
    "dispatch": {"shim", "ctk"},
    "boot": {"code_cache", "dispatch"},
    "__main__": {"boot", "dispatch"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(CHTS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def every_import(path: Path) -> List[str]:
    """Every chts module ``path`` imports, anywhere in the file (top level, in functions, under
    TYPE_CHECKING), `from a import b` counted as a.b when that is a module."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: List[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
    return [name for name in found if name == "chts" or name.startswith("chts.")]


def modules() -> Set[str]:
    return {module_name(path) for path in CHTS.rglob("*.py")}


def resolve(name: str, known: Set[str]) -> str:
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else "root"


def import_graph() -> Dict[str, Set[str]]:
    known = modules() | {"chts._build"}  # written by build.py into the archive
    graph: Dict[str, Set[str]] = {}
    for path in CHTS.rglob("*.py"):
        module = module_name(path)
        graph[module] = {resolve(name, known) for name in every_import(path)} - {module}
    return graph


def test_every_import_points_down_the_layers() -> None:
    offenders = []
    for module, imported in sorted(import_graph().items()):
        for target in sorted(imported):
            here, there = layer(module), layer(target)
            if there in ("root", "errors", here) or there in ALLOWED.get(here, set()):
                continue
            offenders.append(f"{module} imports {target} ({here} may import {sorted(ALLOWED.get(here, set()))})")
    assert offenders == []


def test_no_import_circle_among_modules() -> None:
    graph = import_graph()
    circles = []
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, set()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_top_level_holds_the_entry_points_only() -> None:
    top = sorted(path.name for path in CHTS.glob("*.py"))
    assert len(top) <= 10, top
    assert {"dispatch.py", "boot.py", "errors.py", "__init__.py", "__main__.py"} <= set(top)


def test_the_rule_checks_what_it_should() -> None:
    """The checker itself: a function-local and a TYPE_CHECKING import are counted, relative ones resolved."""
    graph = import_graph()
    assert "chts.hooks.dropin" in graph["chts.hooks.sources"]  # function-local
    assert "chts.config.toolkit" in graph["chts.hooks.sources"]  # under TYPE_CHECKING
    assert layer("chts.shim.inject") == "shim" and layer("chts") == "root"
