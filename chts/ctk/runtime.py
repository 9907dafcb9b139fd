"""`container-hooks-ctk runtime configure|unconfigure`: written once against the Engine interface."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any, List

from chts.atomic import write_atomically
from chts.engines import (
    DEFAULT_RUNTIME_NAME,
    DEFAULT_RUNTIME_PATH,
    ENGINE_MODULES,
    FileEdit,
    RuntimeRequest,
    get_engine,
)
from chts.errors import ToolkitError

BACKUP_SUFFIX = ".container-hooks.bak"
DOCKER_PID_FILE = "/var/run/docker.pid"


def register(subparsers: Any) -> None:
    runtime = subparsers.add_parser("runtime", help="configure a container engine to use the shim")
    actions = runtime.add_subparsers(dest="action", metavar="ACTION")
    for action, summary in (
        ("configure", "add the shim as a runtime of ENGINE (and make it the default with --set-as-default)"),
        ("unconfigure", "remove exactly what configure added and restore the previous default"),
    ):
        parser = actions.add_parser(action, help=summary, description=summary)
        parser.add_argument("--runtime", required=True, choices=sorted(ENGINE_MODULES), help="the engine")
        parser.add_argument("--config", help="the engine's config file (default: the engine's usual path)")
        parser.add_argument("--runtime-name", default=DEFAULT_RUNTIME_NAME, help="default: %(default)s")
        parser.add_argument("--runtime-path", default=DEFAULT_RUNTIME_PATH, help="default: %(default)s")
        parser.add_argument("--set-as-default", action="store_true", help="make it the engine's default runtime")
        parser.add_argument("--drop-in-dir", help="crio: the drop-in directory (default: crio.conf.d beside --config)")
        parser.add_argument("--dry-run", action="store_true", help="print the change as a diff; write nothing")
        parser.add_argument("--reload", action="store_true", help="docker: SIGHUP dockerd afterwards")
        parser.add_argument("--pid-file", default=DOCKER_PID_FILE, help="docker: dockerd's pid file")
        parser.set_defaults(func=run, configure=action == "configure")


def run(args: argparse.Namespace) -> int:
    engine = get_engine(args.runtime)
    if not os.path.isabs(args.runtime_path):
        raise ToolkitError(f"--runtime-path must be an absolute path, not {args.runtime_path!r}")
    request = RuntimeRequest(
        config=args.config or engine.default_config,
        name=args.runtime_name,
        path=args.runtime_path,
        set_as_default=args.set_as_default,
        drop_in_dir=args.drop_in_dir,
    )
    plan = engine.configure(request) if args.configure else engine.unconfigure(request)
    changes = [edit for edit in plan.edits if edit.old != edit.new]
    for note in plan.notes:
        print(note, file=sys.stderr)
    if args.dry_run:
        sys.stdout.write("".join(diff(edit) for edit in changes) or "no change\n")
        return 0
    if changes and os.geteuid() != 0 and not all(writable(edit.path) for edit in changes):
        raise ToolkitError(f"{changes[0].path}: writing it needs root (run with sudo)")
    for edit in changes:
        report(args, apply_edit(edit))
    verb = "configured" if args.configure else "unconfigured"
    if not changes:
        report(args, f"{request.config}: already {verb}; nothing changed")
        return 0
    report(args, f"{verb} runtime {request.name!r} for {engine.name}; " + engine.apply_hint(request))
    if args.reload:
        report(args, engine.reload(args.pid_file))
    return 0


def apply_edit(edit: FileEdit) -> str:
    if edit.new is None:
        try:
            os.unlink(edit.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ToolkitError(f"{edit.path}: cannot remove: {exc.strerror}") from None
        return f"removed {edit.path}"
    directory = os.path.dirname(os.path.abspath(edit.path))
    if edit.old is None and not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o755)
        except OSError as exc:
            raise ToolkitError(f"{directory}: cannot create: {exc.strerror}") from None
    backup = write_atomically(edit.path, edit.new, mode=edit.mode, backup_suffix=BACKUP_SUFFIX if edit.backup else None)
    return f"wrote {edit.path}" + (f" (previous content in {backup})" if backup else "")


def diff(edit: FileEdit) -> str:
    def lines(data: Any) -> List[str]:
        return [] if data is None else data.decode("utf-8").splitlines(keepends=True)

    before = edit.path if edit.old is not None else "/dev/null"
    after = edit.path if edit.new is not None else "/dev/null"
    text = "".join(difflib.unified_diff(lines(edit.old), lines(edit.new), before, after))
    return text if text.endswith("\n") else text + "\n"


def writable(path: str) -> bool:
    target = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
    return os.access(target, os.W_OK)


def report(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message)
