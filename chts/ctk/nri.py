"""`container-hooks-ctk nri run`: the NRI plugin (docs/nri.md). Flags only; the plugin is chts/nri/."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, NoReturn, Optional

from chts import CTK

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
INDEX_PATTERN = re.compile(r"[0-9]{2}\Z")
# containerd/nri pkg/api/plugin.go: how the runtime hands a pre-registered plugin its connection.
SOCKET_ENV, NAME_ENV, INDEX_ENV = "NRI_PLUGIN_SOCKET", "NRI_PLUGIN_NAME", "NRI_PLUGIN_IDX"


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit status 2 (a daemon's log shows the first line)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message} (see --help)\n")
        sys.exit(2)


def register(subparsers: Any) -> None:
    nri = subparsers.add_parser("nri", help="NRI mode: the plugin that gives CRI containers their hooks")
    actions = nri.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser)
    summary = "connect to the runtime's NRI socket, register, and answer every container create with its hooks"
    run = actions.add_parser(
        "run",
        help=summary,
        description=f"{summary}, until SIGTERM; reconnects when the runtime restarts. Under a name NN-NAME "
        f"(a runtime's NRI plugin directory) it serves the connection the runtime passed ({SOCKET_ENV}) "
        "and exits when it ends. See docs/nri.md.",
    )
    from chts import DEFAULT_NRI_SOCKET
    from chts.nri.plugin import DEFAULT_INDEX, DEFAULT_NAME

    run.add_argument("--socket", help=f"the runtime's NRI socket (default: {DEFAULT_NRI_SOCKET})")
    run.add_argument("--name", help=f"the plugin's name (default: ${NAME_ENV} or {DEFAULT_NAME})")
    run.add_argument(
        "--index", help=f"the plugin's two-digit index, its order among plugins (default: {DEFAULT_INDEX})"
    )
    run.add_argument("-c", "--config", help="the toolkit config (default: $CONTAINER_HOOKS_CONFIG or the default path)")
    run.add_argument("--once", action="store_true", help="do not reconnect: exit when the connection ends or fails")
    run.set_defaults(func=run_plugin)
    nri.set_defaults(func=lambda args: nri.print_help() or 2)


def fail_usage(message: str) -> int:
    sys.stderr.write(f"{CTK} nri run: {message}\n")
    return 2


def run_plugin(args: argparse.Namespace) -> int:
    from chts import DEFAULT_NRI_SOCKET
    from chts.config.toolkit import config_path
    from chts.nri.plugin import DEFAULT_INDEX, DEFAULT_NAME, Options, Plugin

    fd: Optional[int] = None
    inherited = os.environ.get(SOCKET_ENV, "")
    if args.socket is None and inherited:
        if not inherited.isdigit():
            return fail_usage(f"{SOCKET_ENV}={inherited!r} is not a file descriptor number")
        fd = int(inherited)
    name = args.name if args.name is not None else os.environ.get(NAME_ENV) or DEFAULT_NAME
    index = args.index if args.index is not None else os.environ.get(INDEX_ENV) or DEFAULT_INDEX
    if not NAME_PATTERN.match(name):
        return fail_usage(f"--name {name!r}: letters, digits, '.', '_' and '-' only, starting with a letter or digit")
    if not INDEX_PATTERN.match(index):
        return fail_usage(f"--index {index!r}: two digits (00 to 99)")
    socket_path = args.socket if args.socket is not None else DEFAULT_NRI_SOCKET
    if not socket_path:
        return fail_usage("--socket: empty path")
    options = Options(socket_path, name, index, args.config or config_path(), fd, args.once)
    plugin = Plugin(options)
    plugin.install_signals()
    return plugin.run()
