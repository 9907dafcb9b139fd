"""`container-hooks-ctk install|uninstall`: put the one .pyz and its three names on a host, and take them away.

The .pyz is copied once; the three tool names are relative symlinks beside it
(they stay right when the host's root is mounted elsewhere, as in a DaemonSet).
Every file is replaced atomically, so a host running containers never sees a
half-written runtime; everything is checked before the first change, so a
refusal leaves the host as it was. uninstall removes only files it can tell are
ours: our archive, links to it, and config files still as install wrote them.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from functools import partial
from typing import Any, Callable, List, Optional, Tuple

from chts import TOOL_NAMES
from chts.base.archive import running_archive
from chts.base.atomic import copy_atomically, symlink_atomically, write_atomically
from chts.config.edit import install_config_text
from chts.config.toolkit import load_config, parse_config
from chts.ctk.toolkit_files import (
    add_command,
    add_config_option,
    chosen_config_path,
    ensure_writable,
    make_parent_directory,
)
from chts.errors import ToolkitError

PYZ_NAME = "container-hooks-toolkit.pyz"
DEFAULT_DEST = "/usr/bin"
# A file inside every build of the toolkit: what tells our archive from any other file.
ARCHIVE_MEMBER = "site-packages/chts/dispatch.py"
EMPTY_HOOKS = "{}\n"

EPILOG = f"""\
examples:
  sudo ./{PYZ_NAME} ctk install                  # from the .pyz being run, into {DEFAULT_DEST}
  sudo container-hooks-ctk install --toolkit-root /opt/container-hooks
  container-hooks-ctk install --dest /tmp/t/bin --config /tmp/t/config.toml   # a test root
  sudo container-hooks-ctk uninstall

install copies DIR/{PYZ_NAME} (default: the .pyz this command runs from) to
DEST/{PYZ_NAME}, links {", ".join(TOOL_NAMES)} to it, and writes the
default config and an empty hooks.json where none exist. Running it again changes
nothing; running it from DEST itself is safe.
"""

Step = Tuple[str, Callable[[], None]]  # (what to tell the user, the change)


def is_our_archive(path: str) -> bool:
    """A regular file that is a build of this toolkit (any version)."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return ARCHIVE_MEMBER in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def source_archive(toolkit_root: Optional[str]) -> str:
    if toolkit_root:
        source = os.path.join(toolkit_root, PYZ_NAME)
        if not os.path.isfile(source):
            raise ToolkitError(f"{toolkit_root}: holds no {PYZ_NAME} to install")
    else:
        running = running_archive()
        if running is None:
            raise ToolkitError(f"not running from the .pyz: give --toolkit-root DIR, the directory holding {PYZ_NAME}")
        source = running
    if not is_our_archive(source):
        raise ToolkitError(f"{source}: not a container-hooks-toolkit archive")
    return source


def same_bytes(first: str, second: str) -> bool:
    if os.path.getsize(first) != os.path.getsize(second):
        return False
    with open(first, "rb") as one, open(second, "rb") as other:
        while True:
            block = one.read(1 << 20)
            if block != other.read(1 << 20):
                return False
            if not block:
                return True


def links_to_archive(path: str, archive: str) -> bool:
    return os.path.islink(path) and os.path.realpath(path) == os.path.realpath(archive)


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot remove: {exc.strerror}") from None


def hooks_file_of(config_path: str, dest: str) -> str:
    """The hooks.json the config names (the one install would write, when there is no config)."""
    if os.path.lexists(config_path):
        config = load_config(config_path)
    else:
        config = parse_config(install_config_text(config_path, dest), config_path)
    path: str = config["container-hooks"]["path"]
    return path


def nothing() -> None:
    """The change of a step that only reports (already in place, kept)."""


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def write_new_file(path: str, text: str) -> None:
    make_parent_directory(path)
    write_atomically(path, text.encode("utf-8"), mode=0o644)


# ----------------------------------------------------------------------------- install


def plan_binaries(source: str, dest: str) -> List[Step]:
    """The changes that put the archive and its names in ``dest``; refuse anything not ours first."""
    archive = os.path.join(dest, PYZ_NAME)
    steps: List[Step] = []
    if os.path.lexists(archive) and os.path.exists(archive) and os.path.samefile(source, archive):
        steps.append((f"{archive}: already in place (it is the source)", nothing))
    elif os.path.lexists(archive) and not is_our_archive(archive):
        raise ToolkitError(f"{archive}: exists and is not a container-hooks-toolkit archive; move it away first")
    elif os.path.lexists(archive) and same_bytes(source, archive):
        steps.append((f"{archive}: up to date", nothing))
    else:
        verb = "upgraded" if os.path.lexists(archive) else "installed"
        steps.append((f"{verb} {archive}", partial(copy_atomically, source, archive, 0o755)))
    for name in TOOL_NAMES:
        link = os.path.join(dest, name)
        if links_to_archive(link, archive) and os.readlink(link) == PYZ_NAME:
            steps.append((f"{link}: up to date", nothing))
            continue
        if os.path.lexists(link) and not (os.path.islink(link) or is_our_archive(link)):
            raise ToolkitError(f"{link}: exists and is not container-hooks-toolkit's; move it away first")
        if os.path.islink(link) and not is_our_archive(os.path.realpath(link)):
            raise ToolkitError(f"{link}: links to {os.readlink(link)}, not to this toolkit; move it away first")
        steps.append((f"linked {link} -> {PYZ_NAME}", partial(symlink_atomically, link, PYZ_NAME)))
    return steps


def plan_toolkit_files(config_path: str, dest: str) -> List[Step]:
    """Default config and empty hooks.json, only where none exist: a user's files are never touched."""
    steps: List[Step] = []
    if os.path.lexists(config_path):
        steps.append((f"{config_path}: exists, kept", nothing))
    else:
        text = install_config_text(config_path, dest)
        steps.append((f"wrote {config_path}", partial(write_new_file, config_path, text)))
    hooks = hooks_file_of(config_path, dest)
    if os.path.lexists(hooks):
        steps.append((f"{hooks}: exists, kept", nothing))
    else:
        steps.append((f"wrote {hooks} (no hooks yet)", partial(write_new_file, hooks, EMPTY_HOOKS)))
    return steps


def run_steps(steps: List[Step], quiet: bool) -> None:
    for message, change in steps:
        change()
        if not quiet:
            print(message)


def run_install(args: argparse.Namespace) -> int:
    dest = os.path.abspath(args.dest)
    config_path = chosen_config_path(args)
    for path in (dest, config_path):
        ensure_writable(path, "install")
    source = source_archive(args.toolkit_root)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise ToolkitError(f"{dest}: not a directory")
    steps = plan_binaries(source, dest) + plan_toolkit_files(config_path, dest)
    os.makedirs(dest, mode=0o755, exist_ok=True)
    run_steps(steps, args.quiet)
    return 0


# ----------------------------------------------------------------------------- uninstall


def plan_uninstall(dest: str, config_path: str) -> List[Step]:
    archive = os.path.join(dest, PYZ_NAME)
    steps: List[Step] = []
    for name in TOOL_NAMES:
        link = os.path.join(dest, name)
        if links_to_archive(link, archive) or is_our_archive(link):
            steps.append((f"removed {link}", partial(remove, link)))
        elif os.path.lexists(link):
            steps.append((f"{link}: not ours, kept", nothing))
    try:
        hooks: Optional[str] = hooks_file_of(config_path, dest)
    except ToolkitError as exc:
        hooks = None
        steps.append((f"{exc}: so its hooks file is kept", nothing))
    if os.path.isfile(config_path) and not os.path.islink(config_path):
        if read_text(config_path) == install_config_text(config_path, dest):
            steps.append((f"removed {config_path}", partial(remove, config_path)))
        else:
            steps.append((f"{config_path}: changed since install, kept", nothing))
    if hooks and os.path.isfile(hooks) and not os.path.islink(hooks):
        if read_text(hooks) == EMPTY_HOOKS:
            steps.append((f"removed {hooks}", partial(remove, hooks)))
        else:
            steps.append((f"{hooks}: has hooks, kept", nothing))
    # Last: this command may be running from the archive, and nothing is imported after it goes.
    if is_our_archive(archive):
        steps.append((f"removed {archive}", partial(remove, archive)))
    elif os.path.lexists(archive):
        steps.append((f"{archive}: not ours, kept", nothing))
    return steps


def run_uninstall(args: argparse.Namespace) -> int:
    dest = os.path.abspath(args.dest)
    config_path = chosen_config_path(args)
    for path in (dest, config_path):
        ensure_writable(path, "uninstall")
    steps = plan_uninstall(dest, config_path)
    if not steps and not args.quiet:
        print(f"nothing of container-hooks-toolkit in {dest}")
    run_steps(steps, args.quiet)
    sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    for name, summary, func in (
        ("install", "install the .pyz and its three names, the default config and an empty hooks.json", run_install),
        ("uninstall", "remove what install put there, and nothing else", run_uninstall),
    ):
        parser = add_command(subparsers, name, summary, EPILOG)
        parser.add_argument(
            "--dest", default=DEFAULT_DEST, metavar="DIR", help="where the tools go (default: %(default)s)"
        )
        add_config_option(parser)
        if name == "install":
            parser.add_argument(
                "--toolkit-root",
                metavar="DIR",
                help=f"directory holding the {PYZ_NAME} to install (default: the .pyz running this command)",
            )
        parser.set_defaults(func=func)
