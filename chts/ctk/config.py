"""`container-hooks-ctk config`: print the default or effective toolkit config, and change keys in it.

Flags and orchestration only: the edits themselves are chts.config.edit's, driven by
``toolkit_config.SCHEMA``, so a key added there is printed, settable and type-checked
without touching this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from chts.base.atomic import write_atomically
from chts.config.edit import (
    apply_assignments,
    default_config_text,
    parse_assignment,
    read_toolkit_config,
    render_config,
    validate_document,
)
from chts.config.toolkit import load_config
from chts.ctk.toolkit_files import (
    add_command,
    add_config_option,
    chosen_config_path,
    ensure_writable,
    make_parent_directory,
)

EPILOG = """\
examples:
  container-hooks-ctk config default                 # the commented default file
  container-hooks-ctk config show                    # what the tools use: file merged over defaults
  container-hooks-ctk config --set container-hooks-runtime.log-level=debug
                                                     # print the changed file, write nothing
  sudo container-hooks-ctk config -i --set container-hooks-runtime.runtimes=crun,runc
  container-hooks-ctk config --set 'container-hooks-runtime.runtimes=["runc"]' -o /tmp/config.toml

KEY is SECTION.NAME. Lists take comma-separated items or a TOML array; strings are
taken as written (or as a quoted TOML string). Without -i or -o the result goes to
stdout. A missing file starts from the commented default file.
"""


def write_output(path: str, text: str, command: str) -> None:
    ensure_writable(path, command)
    make_parent_directory(path)
    write_atomically(path, text.encode("utf-8"), mode=0o644)


def run_config(args: argparse.Namespace) -> int:
    path = chosen_config_path(args)
    assignments = [parse_assignment(item) for item in args.set]
    original = read_toolkit_config(path)
    text = apply_assignments(default_config_text() if original is None else original, path, assignments)
    for warning in validate_document(text, path):
        print(f"warning: {warning}", file=sys.stderr)
    target = path if args.in_place else output_of(args)
    if target is None or target == "-":
        sys.stdout.write(text)
        return 0
    if target == path and text == original:
        if not args.quiet:
            print(f"{path}: unchanged", file=sys.stderr)
        return 0
    write_output(target, text, "config")
    if not args.quiet:
        print(f"wrote {target}", file=sys.stderr)
    return 0


def run_default(args: argparse.Namespace) -> int:
    output = output_of(args)
    if output is None or output == "-":
        sys.stdout.write(default_config_text())
    else:
        write_output(output, default_config_text(), "config default")
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = chosen_config_path(args)
    source = path if os.path.lexists(path) else f"{path} (missing)"
    sys.stdout.write(render_config(load_config(path), f"effective configuration: {source} over the defaults"))
    return 0


def add_output_option(container: Any) -> None:
    """-o on `config` and on `config default`; suppressed default so one does not reset the other."""
    container.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="write the result to PATH (atomically); '-' = stdout",
    )


def output_of(args: argparse.Namespace) -> Optional[str]:
    output: Optional[str] = getattr(args, "output", None)
    return output


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "config",
        "print or change the toolkit config (config.toml)",
        EPILOG,
        "Print the default or effective toolkit config, or change keys in it keeping comments and layout.",
    )
    add_config_option(parser)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set a key (repeatable); see below"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-i", "--in-place", action="store_true", help="write the result back to the config file")
    add_output_option(where)
    parser.set_defaults(func=run_config)
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    default = add_command(
        actions,
        "default",
        "print the commented default config",
        "example:\n  container-hooks-ctk config default -o /etc/container-hooks/config.toml\n",
    )
    add_output_option(default)
    default.set_defaults(func=run_default)
    show = add_command(
        actions,
        "show",
        "print the effective config (the file merged over the defaults)",
        "example:\n  CONTAINER_HOOKS_CONFIG=/tmp/config.toml container-hooks-ctk config show\n",
    )
    add_config_option(show)
    show.set_defaults(func=run_show)
