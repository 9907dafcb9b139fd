"""What the ctk commands share about the toolkit's own files: which config, what install writes, privileges."""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

from chts.config.toolkit import CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH, config_path
from chts.errors import ToolkitError


def add_command(
    subparsers: Any, name: str, summary: str, epilog: str, description: Optional[str] = None
) -> argparse.ArgumentParser:
    """A (sub)command parser whose --help ends with its examples, laid out as written."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,  # a subcommand's own --config must not reset its parent's
        help=f"toolkit config file (default: ${CONFIG_PATH_ENV}, else {DEFAULT_CONFIG_PATH})",
    )


def chosen_config_path(args: argparse.Namespace) -> str:
    path: str = getattr(args, "config", None) or config_path()
    return path


def ensure_writable(path: str, command: str) -> None:
    """Stop before writing ``path`` when only root could: say so instead of a bare EACCES later.

    The check is on the nearest existing ancestor, because commands create missing
    directories (/etc/container-hooks) on the way.
    """
    if os.geteuid() == 0:
        return
    probe = path if os.path.lexists(path) else os.path.dirname(os.path.abspath(path))
    while not os.path.exists(probe) and probe != "/":
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK):
        raise ToolkitError(f"{command} needs root to write {path} (run it with sudo)")


def make_parent_directory(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except FileExistsError:
        raise ToolkitError(f"{directory}: exists and is not a directory") from None
    except OSError as exc:
        raise ToolkitError(f"{directory}: cannot create: {exc.strerror}") from None
