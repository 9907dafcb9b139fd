"""The ctk layer's rule (CONTRIBUTING.md, layers): command modules are flags and orchestration; none imports another.

Library code a second command needs lives below them (chts/config/edit.py, chts/hooks/problems.py,
chts/ctk/toolkit_files.py, chts/ctk/chaining.py ...), so a reader who knows the CLI knows where
every line is, as in runc's one file per command.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import List, Set

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
        f"chts.ctk.{name}" for name in ("check", "config", "hooks", "install", "node", "runtime")
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
