"""`container-hooks-ctk hooks list|validate|explain`: what hooks are configured, are they valid, what a create would do.

Loading, matching and merging are the shim's own functions (chts.hook_sources,
chts.inject), so what these commands show is what the shim does.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from chts.ctk.toolkit_files import add_command, add_config_option, chosen_config_path
from chts.dropin_hooks import MAX_DROPIN_BYTES, parse_dropin
from chts.errors import SKIPPED_FILE, ToolkitError
from chts.hook_sources import explain_hooks, scan_hook_sources
from chts.hooks_file import MAX_HOOKS_BYTES, STAGES, parse_hooks_json, validate_hook, validate_hooks_object
from chts.inject import apply_hooks, read_spec
from chts.jsonio import loads_strict
from chts.merge import has_marker
from chts.precreate import PRECREATE
from chts.toolkit_config import load_config, read_text_file

if TYPE_CHECKING:
    from chts.hook_sources import PlannedHook
    from chts.hooks_file import Hook
    from chts.toolkit_config import Config

EPILOG = """\
examples:
  container-hooks-ctk hooks list                   # every source and its hooks, by stage
  container-hooks-ctk hooks list --json
  container-hooks-ctk hooks validate               # every configured file, every error; exit 1 on any
  container-hooks-ctk hooks validate ./new-hooks.json ./hooks.d/audit.json
  container-hooks-ctk hooks explain --bundle /run/containerd/io.containerd.runtime.v2.task/k8s.io/ID
"""

# createContainer's path resolves in the runtime's namespace, startContainer's inside the
# container (runtime-spec config.md): only the latter cannot be checked from the host.
STAGES_RESOLVED_IN_CONTAINER = ("startContainer",)


def describe_hook(hook: Hook) -> str:
    """One hook on one line; lists as JSON so spaces inside arguments stay visible."""
    text: str = hook["path"]
    for key in ("args", "env"):
        if key in hook:
            text += f" {key}={json.dumps(hook[key])}"
    if "timeout" in hook:
        text += f" timeout={hook['timeout']}s"
    return text


# ----------------------------------------------------------------------------- validation


def json_element_lines(text: str) -> Dict[Tuple[Any, ...], int]:
    """Line numbers in a JSON object document: (key,) for each top-level key, (key, i) for its array items.

    Walks the text with the json module's own decoder, so the positions are exact;
    only called on text that parsed, and gives up quietly on anything unexpected.
    """
    decoder = json.JSONDecoder()
    lines: Dict[Tuple[Any, ...], int] = {}

    def skip(position: int) -> int:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        return position

    def line(position: int) -> int:
        return text.count("\n", 0, position) + 1

    try:
        position = skip(0)
        if text[position] != "{":
            return lines
        position = skip(position + 1)
        while text[position] == '"':
            key, position = json.decoder.scanstring(text, position + 1)  # type: ignore[attr-defined]
            lines[(key,)] = line(position)
            position = skip(skip(position) + 1)  # past the colon
            if text[position] == "[":
                item, index = skip(position + 1), 0
                while text[item] != "]":
                    lines[(key, index)] = line(item)
                    item = skip(decoder.raw_decode(text, item)[1])
                    item, index = skip(item + 1) if text[item] == "," else item, index + 1
            position = skip(decoder.raw_decode(text, position)[1])
            if text[position] != ",":
                break
            position = skip(position + 1)
    except (ValueError, IndexError):
        pass
    return lines


def hooks_json_errors(text: str, path: str) -> List[str]:
    """Every error of a hooks.json text, each with its line where it has one (not only the first)."""
    try:
        parse_hooks_json(text, path)
        return []
    except ToolkitError as exc:
        first = str(exc)
    try:
        data = loads_strict(text)
    except ValueError:
        return [first]  # a syntax error: the parser stopped there, nothing after it is known
    if not isinstance(data, dict):
        return [first]
    lines = json_element_lines(text)

    def at(*keys: Any) -> str:
        return f"{path}:{lines[keys]}" if keys in lines else path

    errors = []
    for stage, entries in data.items():
        if stage not in STAGES or not isinstance(entries, list):
            try:
                validate_hooks_object({stage: entries})
            except ValueError as exc:
                errors.append(f"{at(stage)}: {exc}")
            continue
        for index, entry in enumerate(entries):
            try:
                validate_hook(entry, f"{stage}[{index}]")
            except ValueError as exc:
                errors.append(f"{at(stage, index)}: {exc}")
    return errors or [first]


def file_errors(path: str) -> List[str]:
    """Errors of a hook file named on the command line: a drop-in if it has "version", else hooks.json."""
    try:
        text = read_text_file(path, max(MAX_HOOKS_BYTES, MAX_DROPIN_BYTES), "hooks JSON")
        try:
            data = loads_strict(text)
        except ValueError:
            data = None  # either parser reports the syntax error the same way
        if isinstance(data, dict) and ("version" in data or "hook" in data):  # hooks.json has only stages
            parse_dropin(text, path)
            return []
    except ToolkitError as exc:
        return [str(exc)]
    return hooks_json_errors(text, path)


def split_skipped(problems: List[str]) -> Tuple[List[str], List[str]]:
    """(errors, files skipped whatever on-error says): the shim fails a create only for the former."""
    skipped = [problem for problem in problems if problem.endswith(SKIPPED_FILE)]
    return [problem for problem in problems if problem not in skipped], skipped


def source_errors(config: Config, problems: List[str]) -> List[str]:
    """The scan's problems, with hooks.json's one-line problem widened to all of its errors."""
    hooks_json = config["container-hooks"]["path"]
    errors = []
    for problem in problems:
        if problem.startswith(f"{hooks_json}:") and os.path.isfile(hooks_json):
            try:
                # The scan already checked owner and mode; a refusal there is kept as it is.
                detailed = hooks_json_errors(read_text_file(hooks_json, MAX_HOOKS_BYTES, "hooks JSON"), hooks_json)
            except ToolkitError:
                detailed = []
            if detailed and "refusing" not in problem:
                errors.extend(detailed)
                continue
        errors.append(problem)
    return errors


def unusable_hook_paths(planned: List[PlannedHook]) -> List[str]:
    """Hooks whose executable is missing on the host: runc would fail every container they apply to."""
    problems = []
    seen = set()
    for entry in planned:
        path = entry["hook"]["path"]
        if entry["stage"] in STAGES_RESOLVED_IN_CONTAINER or (path, entry["source"]) in seen:
            continue
        seen.add((path, entry["source"]))
        if not os.path.isfile(path):
            problems.append(f"{entry['source']}: {entry['stage']} hook {path} does not exist")
        elif not os.access(path, os.X_OK):
            problems.append(f"{entry['source']}: {entry['stage']} hook {path} is not executable")
    return problems


def scan(args: argparse.Namespace) -> Tuple[Config, List[PlannedHook], List[str], List[str], List[str]]:
    """(config, usable planned hooks, sources read, every error of every unusable source, files skipped)."""
    config = load_config(chosen_config_path(args))
    planned, sources, problems = scan_hook_sources(config)
    errors, skipped = split_skipped(problems)
    return config, planned, sources, source_errors(config, errors), skipped


# ----------------------------------------------------------------------------- commands


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
    spec, _ = read_spec(spec_path)
    if spec is None:
        raise ToolkitError(f"{spec_path}: no such file (is {args.bundle} an OCI bundle?)")
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
    added = apply_hooks(result, planned, spec_path)
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
