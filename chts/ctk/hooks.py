"""`container-hooks-ctk hooks list|validate|explain`: what hooks are configured, are they valid, what a create would do.

Loading, matching and merging are the shim's own functions (chts.hooks.sources,
chts.shim.inject), so what these commands show is what the shim does.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Tuple

from chts.base.nesting import JSON_WORDS, NestedTooDeeply, check_depth
from chts.config.toolkit import load_config
from chts.ctk.toolkit_files import add_command, add_config_option, chosen_config_path
from chts.errors import ToolkitError
from chts.hooks.bundle import apply_hooks, read_spec
from chts.hooks.bundle_record import previously_added, read_record
from chts.hooks.merge import has_marker
from chts.hooks.model import PRECREATE
from chts.hooks.problems import file_errors, source_errors, split_skipped, unusable_hook_paths
from chts.hooks.sources import explain_hooks, scan_hook_sources

if TYPE_CHECKING:
    from chts.config.toolkit import Config
    from chts.hooks.sources import PlannedHook

EPILOG = """\
examples:
  container-hooks-ctk hooks list                   # every source and its hooks, by stage
  container-hooks-ctk hooks list --json
  container-hooks-ctk hooks validate               # every configured file, every error; exit 1 on any
  container-hooks-ctk hooks validate ./new-hooks.json ./hooks.d/audit.json
  container-hooks-ctk hooks explain --bundle /run/containerd/io.containerd.runtime.v2.task/k8s.io/ID
"""


def describe_hook(hook: Mapping[str, object]) -> str:
    """One hook (ours, or one already in config.json) on one line; lists as JSON, so spaces stay visible."""
    text = str(hook["path"])
    for key in ("args", "env"):
        if key in hook:
            text += f" {key}={json.dumps(hook[key])}"
    if "timeout" in hook:
        text += f" timeout={hook['timeout']}s"
    return text


def scan(args: argparse.Namespace) -> Tuple[Config, List[PlannedHook], List[str], List[str], List[str]]:
    """(config, usable planned hooks, sources read, every error of every unusable source, files skipped)."""
    config = load_config(chosen_config_path(args))
    planned, sources, problems = scan_hook_sources(config)
    errors, skipped = split_skipped(problems)
    return config, planned, sources, source_errors(config, errors), skipped


def run_list(args: argparse.Namespace) -> int:
    _, planned, sources, errors, skipped = scan(args)
    if args.json:
        document = {"sources": sources, "hooks": planned, "errors": errors, "skipped": skipped}
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 1 if errors else 0
    by_source: Dict[str, List[PlannedHook]] = {source: [] for source in sources}
    for entry in planned:
        by_source.setdefault(entry["source"], []).append(entry)
    for source, entries in by_source.items():
        if any(error.startswith(f"{source}:") for error in errors):
            note = "unusable, see the errors below"
        elif any(problem.startswith(f"{source}:") for problem in skipped):
            note = "skipped, see the warnings below"
        elif os.path.isdir(source):
            note = "directory"
        else:
            note = f"{len(entries)} hook(s)" if os.path.lexists(source) else "missing: no hooks"
        print(f"{source} ({note})")
        for entry in entries:
            when = f"  when={json.dumps(entry['when'], sort_keys=True)}" if entry.get("when") is not None else ""
            print(f"  {entry['stage']:<16} {describe_hook(entry['hook'])}{when}")
    for problem in skipped:
        print(f"warning: {problem}", file=sys.stderr)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


def run_validate(args: argparse.Namespace) -> int:
    if args.files:
        errors, warnings = split_skipped([error for path in args.files for error in file_errors(path)])
        checked = f"{len(args.files)} file(s)"
    else:
        _, planned, sources, errors, warnings = scan(args)
        warnings += unusable_hook_paths(planned)
        checked = f"{len(planned)} hook(s) from {len(sources)} source(s)"
    for error in errors:
        print(error)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"OK: {checked}")
    return 0


def origin_of_hooks(
    original: Dict[str, Any], result: Dict[str, Any], added: List[PlannedHook], reasons: Dict[int, str]
) -> Dict[str, List[Tuple[str, Any, str]]]:
    """Per stage, each hook of the resulting spec as (mark, hook, where it came from).

    merge_hooks appends, so a stage's first hooks are those config.json had and the
    rest are the added ones of that stage, in order.
    """
    before: Dict[str, Any] = original["hooks"] if isinstance(original.get("hooks"), dict) else {}
    added_by_stage: Dict[str, List[PlannedHook]] = {}
    for entry in added:
        added_by_stage.setdefault(entry["stage"], []).append(entry)
    stages: Dict[str, List[Tuple[str, Any, str]]] = {}
    for stage, hooks in (result.get("hooks") or {}).items():
        existing: List[Any] = before[stage] if isinstance(before.get(stage), list) else []
        new = added_by_stage.get(stage, [])
        rows = [(" ", hook, "already in config.json") for hook in existing]
        rows += [("+", entry["hook"], reasons[id(entry)]) for entry in new]
        if rows or hooks:
            stages[stage] = rows
    return stages


def run_explain(args: argparse.Namespace) -> int:
    spec_path = os.path.join(args.bundle, "config.json")
    spec, raw = read_spec(spec_path)
    if spec is None:
        raise ToolkitError(f"{spec_path}: no such file (is {args.bundle} an OCI bundle?)")
    try:  # copying and matching walk it; a member too deep to parse at all is kept as text (None here)
        check_depth(spec, JSON_WORDS)
    except NestedTooDeeply as exc:
        raise ToolkitError(f"{spec_path}: {exc}") from None
    config, planned, _, errors, skipped = scan(args)
    policy = config["container-hooks"]["on-error"]
    for problem in skipped:
        print(f"skipped: {problem}")
    for error in errors:
        print(f"{'error' if policy == 'fail' else 'skipped (on-error = skip)'}: {error}")
    if errors and policy == "fail":
        print("the shim would fail this create (on-error = fail) and leave config.json unchanged")
        return 1
    if has_marker(spec):
        print(f"{spec_path}: has the container-hooks marker in prestart: the shim would change nothing")
        return 0
    explained = explain_hooks(planned, spec)
    precreate = [row for row in explained if row[0]["stage"] == PRECREATE]
    explained = [row for row in explained if row[0]["stage"] != PRECREATE]
    reasons = {id(entry): reason for entry, _, reason in explained}
    result = copy.deepcopy(spec)
    previous = previously_added(read_record(spec_path), raw)
    added = apply_hooks(result, planned, spec_path, previous)
    added_ids = {id(entry) for entry in added}
    for stage, rows in origin_of_hooks(spec, result, added, reasons).items():
        print(f"{stage}:")
        for mark, hook, origin in rows:
            print(f"  {mark} {describe_hook(hook) if isinstance(hook, dict) else json.dumps(hook)}  ({origin})")
    ran = [(entry, reason) for entry, matched, reason in precreate if matched]
    if ran:
        print("precreate (run by the shim before runc, in this order; each may rewrite config.json):")
    for entry, reason in ran:
        print(f"  > {describe_hook(entry['hook'])}  ({reason})")
    left_out = [
        row for row in explained + precreate if not row[1] or (row in explained and id(row[0]) not in added_ids)
    ]
    if left_out:
        print("not injected:")
    for entry, matched, reason in left_out:
        why = "identical hook already in config.json" if matched else reason
        print(f"  - {entry['stage']} {describe_hook(entry['hook'])}  ({why})")
    print(f"{len(added)} hook(s) would be added; {spec_path} is not changed by this command")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "hooks",
        "list, validate and explain the configured hooks",
        EPILOG,
        "Show the hook sources the shim reads, check them, and explain what a create would inject.",
    )
    actions = parser.add_subparsers(dest="hooks_action", metavar="ACTION", required=True)

    def action(name: str, help_text: str, example: str, func: Any) -> argparse.ArgumentParser:
        sub = add_command(actions, name, help_text, f"example:\n  {example}\n")
        add_config_option(sub)
        sub.set_defaults(func=func)
        return sub

    listing = action(
        "list", "show every hook source and its hooks, by stage", "container-hooks-ctk hooks list --json", run_list
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    validate = action(
        "validate",
        "check every hook file and report every error (exit 1 on any)",
        "container-hooks-ctk hooks validate /tmp/candidate-hooks.json",
        run_validate,
    )
    validate.add_argument("files", nargs="*", metavar="FILE", help="check these files instead of the configured ones")
    explain = action(
        "explain",
        "show what the shim would inject into a bundle's config.json, and why (writes nothing)",
        "container-hooks-ctk hooks explain --bundle ./mybundle",
        run_explain,
    )
    explain.add_argument("-b", "--bundle", required=True, metavar="DIR", help="OCI bundle holding config.json")
