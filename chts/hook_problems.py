"""Every problem of every hook source, for `ctk hooks validate` and `ctk check`.

The shim stops at a source's first problem; these list all of them, each with its file
and, where it has one, its line, plus hooks whose executable is missing on the host.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from chts.dropin_hooks import MAX_DROPIN_BYTES, parse_dropin
from chts.errors import SKIPPED_FILE, ToolkitError
from chts.hooks_file import MAX_HOOKS_BYTES, STAGES, parse_hooks_json, validate_hook, validate_hooks_object
from chts.jsonio import loads_strict
from chts.toolkit_config import read_text_file

if TYPE_CHECKING:
    from chts.hook_sources import PlannedHook
    from chts.toolkit_config import Config


# createContainer's path resolves in the runtime's namespace, startContainer's inside the
# container (runtime-spec config.md): only the latter cannot be checked from the host.
STAGES_RESOLVED_IN_CONTAINER = ("startContainer",)


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
