"""Every problem of every hook source, for `ctk hooks validate` and `ctk check`.

The shim stops at a source's first problem; these list all of them, each with its file
and, where it has one, its line, plus hooks whose executable is missing on the host.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, List, Tuple

from chts.base.jsonio import line_at, loads_strict
from chts.base.text_files import read_text_file
from chts.errors import SKIPPED_FILE, ToolkitError
from chts.hooks.dropin import MAX_DROPIN_BYTES, parse_dropin
from chts.hooks.model import (
    MAX_HOOKS_BYTES,
    STAGES,
    parse_hooks_json,
    resolved_on_host,
    validate_hook,
    validate_hooks_object,
)

if TYPE_CHECKING:
    from chts.config.toolkit import Config
    from chts.hooks.sources import PlannedHook


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

    def at(*keys: Any) -> str:
        line = line_at(text, keys)
        return f"{path}:{line}" if line else path

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
        if not resolved_on_host(entry["stage"]) or (path, entry["source"]) in seen:
            continue
        seen.add((path, entry["source"]))
        if not os.path.isfile(path):
            problems.append(f"{entry['source']}: {entry['stage']} hook {path} does not exist")
        elif not os.access(path, os.X_OK):
            problems.append(f"{entry['source']}: {entry['stage']} hook {path} is not executable")
    return problems
