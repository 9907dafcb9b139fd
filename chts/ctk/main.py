"""container-hooks-ctk's entry: global options, the command registry, and error reporting."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import List, Optional

from chts import CTK, __version__
from chts.errors import ToolkitError
from chts.node.kill_switch import arm_from_environment

PROG = CTK

# Each module registers one command group with `register(subparsers)` and sets
# `func(args) -> int` on its parsers. Adding a command is one module and one line here.
COMMAND_MODULES = ("config", "hooks", "runtime", "install", "check", "node", "nri")


# A daemon's command: its process loads its own module only (the others' imports are ~8 MB of RSS).
ALONE = ("nri",)


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Configure container engines to run OCI hooks in every container, "
        "and manage the container-hooks-toolkit on this host.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-d", "--debug", action="store_true", help="show tracebacks and debug output")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument("-v", "--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if only is None else (only,):
        importlib.import_module(f"chts.ctk.{name}").register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    arm_from_environment()  # a crash test's kill -9 at a chosen write; nothing unless its variable is set
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in ALONE else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except ToolkitError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
