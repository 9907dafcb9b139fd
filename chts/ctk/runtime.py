"""`container-hooks-ctk runtime configure|unconfigure`: written once against the Engine interface."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any, Callable, List, Optional, Tuple

from chts.base.file_edit import EditWriter, FileEdit
from chts.ctk.chaining import LinkEdit, apply_link, chain_edits, link_diff
from chts.engines import (
    DEFAULT_RUNTIME_NAME,
    DEFAULT_RUNTIME_PATH,
    ENGINE_MODULES,
    EffectiveRuntimes,
    Engine,
    RuntimeRequest,
    get_engine,
)
from chts.errors import ToolkitError

DOCKER_PID_FILE = "/var/run/docker.pid"


SOURCES = ("auto", "file", "command")
SAME_NAME_RULE = (
    "A runtime of that name which configure did not add is never taken over, changed or removed: "
    "configure refuses (choose another --runtime-name) and unconfigure leaves it."
)


def register(subparsers: Any) -> None:
    runtime = subparsers.add_parser("runtime", help="configure a container engine to use the shim")
    actions = runtime.add_subparsers(dest="action", metavar="ACTION")
    for action, summary in (
        ("configure", "add the shim as a runtime of ENGINE (and make it the default with --set-as-default)"),
        ("unconfigure", "remove exactly what configure added and restore the previous default"),
    ):
        parser = actions.add_parser(
            action,
            help=summary,
            description=f"{summary}. Afterwards the engine's effective configuration is checked (see "
            f"--config-source); if it lacks what was asked or lost what was there, the files are restored "
            f"and the command fails. {SAME_NAME_RULE}",
        )
        parser.add_argument("--runtime", required=True, choices=sorted(ENGINE_MODULES), help="the engine")
        parser.add_argument("--config", help="the engine's config file (default: the engine's usual path)")
        parser.add_argument("--runtime-name", default=DEFAULT_RUNTIME_NAME, help="default: %(default)s")
        parser.add_argument("--runtime-path", default=DEFAULT_RUNTIME_PATH, help="default: %(default)s")
        parser.add_argument("--set-as-default", action="store_true", help="make it the engine's default runtime")
        parser.add_argument("--drop-in-dir", help="crio: the drop-in directory (default: crio.conf.d beside --config)")
        parser.add_argument(
            "--drop-in",
            action="store_true",
            help="containerd: put the runtime in a file of its own (conf.d/99-container-hooks.toml beside --config, "
            "or the drop-in directory the config already imports) instead of editing --config, for hosts whose "
            "main file is regenerated; unconfigure removes either layout",
        )
        parser.add_argument(
            "--config-source",
            choices=SOURCES,
            default="auto",
            help="how to learn what the engine will run with, before and after the edit: `command` asks the "
            "engine (containerd config dump, crio config, dockerd --validate, podman info), `file` reads its "
            "files as it does, `auto` (default) uses the command when the engine's binary is on PATH (not "
            "podman info, which sets up storage)",
        )
        parser.add_argument(
            "--toolkit-config",
            help="the toolkit config where configure records the binary the shim must exec for this engine "
            "(default: $CONTAINER_HOOKS_CONFIG, else /etc/container-hooks/config.toml)",
        )
        parser.add_argument("--dry-run", action="store_true", help="print the change as a diff; write nothing")
        parser.add_argument("--reload", action="store_true", help="docker: SIGHUP dockerd afterwards")
        parser.add_argument("--pid-file", default=DOCKER_PID_FILE, help="docker: dockerd's pid file")
        parser.set_defaults(func=run, configure=action == "configure")


def request_of(args: argparse.Namespace, engine: Engine) -> RuntimeRequest:
    if not os.path.isabs(args.runtime_path):
        raise ToolkitError(f"--runtime-path must be an absolute path, not {args.runtime_path!r}")
    return RuntimeRequest(
        config=args.config or engine.default_config,
        name=args.runtime_name,
        path=args.runtime_path,
        set_as_default=args.set_as_default,
        drop_in_dir=args.drop_in_dir,
        config_source=args.config_source,
        toolkit_config=args.toolkit_config,
        drop_in=args.drop_in,
    )


def run(args: argparse.Namespace) -> int:
    engine = get_engine(args.runtime)
    request = request_of(args, engine)
    say = (lambda message: None) if args.quiet else print
    change_runtime(engine, request, args.configure, say, dry_run=args.dry_run)
    if args.reload and not args.dry_run:
        say(engine.reload(args.pid_file))
    return 0


def change_runtime(
    engine: Engine,
    request: RuntimeRequest,
    configure: bool,
    say: Callable[[str], None] = print,
    dry_run: bool = False,
) -> List[FileEdit]:
    """Configure or unconfigure ``engine`` as ``request`` says, verified through the engine's effective view.

    The in-process entry point (`runtime configure|unconfigure` is this plus flags). Returns the edits
    written; raises ToolkitError (files restored) when the result is not what was asked. Notes and
    warnings go to stderr, progress to ``say``.
    """
    plan = engine.configure(request) if configure else engine.unconfigure(request)
    chain = chain_edits(engine, request, configure)  # before any edit: what the default ran until now
    if chain.path is not None and chain.path != request.path:  # the entry names container-hooks-runtime.TAG
        request = request._replace(path=chain.path)
        plan = engine.configure(request)
    changes = [edit for edit in plan.edits + chain.edits if edit.old != edit.new]
    for note in plan.notes + chain.notes:
        print(note, file=sys.stderr)
    if dry_run:
        shown = "".join(diff(edit) for edit in changes) + "".join(link_diff(link) for link in chain.links)
        sys.stdout.write(shown or "no change\n")
        return []
    paths = [edit.path for edit in changes] + [link.path for link in chain.links]
    if paths and os.geteuid() != 0 and not all(writable(path) for path in paths):
        raise ToolkitError(f"{paths[0]}: writing it needs root (run with sudo)")
    before = engine.effective(request.config, request.config_source)
    writer = EditWriter(changes)
    linked: List[LinkEdit] = []
    try:
        for edit in changes:
            writer.write(edit)
        for link in chain.links:
            writer.reports.append(apply_link(link))
            linked.append(link)
        after = engine.effective(request.config, request.config_source)
        problem = verification_problem(request, before, after, configure, bool(changes))
    except ToolkitError as exc:
        problem = str(exc)
        if not writer.written:
            raise
    if problem is not None:
        for link in reversed(linked):
            apply_link(LinkEdit(link.path, link.new, link.old))
        writer.take_back()
        undone = "; the files are restored" if writer.written else ""
        raise ToolkitError(f"{request.config}: {engine.name} would not run as asked: {problem}{undone}")
    for report in writer.reports:  # said only once the change stands: a restored file was not written
        say(report)
    verb = "configured" if configure else "unconfigured"
    if not changes and not chain.links:
        say(f"{request.config}: already {verb}; nothing changed")
    else:
        say(f"{verb} runtime {request.name!r} for {engine.name}; " + engine.apply_hint(request))
    return writer.written


def without_paths(settings: Any, paths: List[Tuple[str, ...]]) -> Any:
    """``settings`` without the values at ``paths``, and without tables that leaves empty."""
    if not isinstance(settings, dict):
        return settings
    result = {}
    for key, value in settings.items():
        if (key,) in paths:
            continue
        inner = without_paths(value, [path[1:] for path in paths if len(path) > 1 and path[0] == key])
        if inner != {}:
            result[key] = inner
    return result


def paths_holding(settings: Any, value: str, prefix: Tuple[str, ...] = ()) -> List[Tuple[str, ...]]:
    """Where in ``settings`` the shim's path is: the keys that configure sets, not copies."""
    if not isinstance(settings, dict):
        return []
    found = []
    for key, item in settings.items():
        if item == value or item == [value]:
            found.append((*prefix, key))
        found += paths_holding(item, value, (*prefix, key))
    return found


def first_difference(before: Any, after: Any, where: str = "") -> Optional[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            found = first_difference(before.get(key), after.get(key), f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
        return None
    return None if before == after else where or "(top)"


def verification_problem(
    request: RuntimeRequest, before: EffectiveRuntimes, after: EffectiveRuntimes, configure: bool, changed: bool
) -> Optional[str]:
    """The first way ``after`` is not what was asked from ``before``; None when it is right."""
    name = request.name
    via = f"(seen by {after.source})"
    ours = after.runtimes.get(name)
    if configure and ours is None:
        return f"runtime {name!r} is missing from the effective configuration {via}"
    if not configure and changed and ours is not None:
        return f"runtime {name!r} is still in the effective configuration {via}"
    previous = before.default
    if configure and request.set_as_default:
        if after.default != name:
            return f"the effective default runtime is {after.default!r}, not {name!r} {via}"
    elif previous != name and previous in before.runtimes and after.default != previous:
        return f"the default runtime changed from {previous!r} to {after.default!r} {via}"
    if after.default is not None and after.default not in after.runtimes and previous in before.runtimes:
        return f"the default runtime {after.default!r} is not defined any more {via}"
    for other, settings in before.runtimes.items():
        if other == name:
            continue
        if other not in after.runtimes:
            return f"runtime {other!r} is gone {via}"
        if after.runtimes[other] != settings:
            return f"runtime {other!r} changed at {first_difference(settings, after.runtimes[other])} {via}"
    added = sorted(set(after.runtimes) - set(before.runtimes) - {name})
    if added:
        return f"runtime {added[0]!r} appeared {via}"
    changed_at = first_difference(before.other, after.other)
    if changed_at is not None:
        return f"{changed_at} changed {via}"
    if configure and isinstance(ours, dict):
        own = paths_holding(ours, request.path)
        copied = without_paths(ours, own)
        # already the default (a second configure): the runtime it copied is not known any more
        templates = (
            [n for n in (previous, "runc") if n is not None and n in before.runtimes] if previous != name else []
        )
        if templates and all(copied != without_paths(before.runtimes[n], own) for n in templates):
            return f"runtime {name!r} does not carry the settings of {templates[0]!r} {via}"
    return None


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
