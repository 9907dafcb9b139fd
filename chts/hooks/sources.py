"""Every configured hook with where it came from: the planning input of each create.

Sources, in injection order: hooks.json (every container), then the drop-in files of
the `hooks-dirs` directories (oci-hooks(5), conditional) in file-name order. Every
file and directory is checked with chts.base.file_trust before it is believed.

A create normally finds the plan in the shim's cache and only selects from it, so
the modules that read and parse sources are imported by the functions that do.
"""

from __future__ import annotations

import posix

from chts.errors import ToolkitError, unexpected
from chts.hooks.model import PRECREATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Set, Tuple

    from typing_extensions import NotRequired, TypedDict

    from chts.base.signature import Signature
    from chts.config.toolkit import Config
    from chts.hooks.dropin import When
    from chts.hooks.model import Hook

    class PlannedHook(TypedDict):
        """One configured hook and where it came from. Plain dicts at run time: the shim's
        marshal cache stores lists of these."""

        stage: str
        hook: Hook
        source: str  # the file it came from
        when: NotRequired[When]  # drop-in files only; absent: every container

    Explained = Tuple[PlannedHook, bool, str]


def scan_hook_sources(
    config: Config, signed: Optional[List[Tuple[str, Signature]]] = None
) -> Tuple[List[PlannedHook], List[str], List[str]]:
    """(hooks of every usable source, every file and directory read, one "file: why" per unusable source).

    Never raises for a bad source: what to do about one is the failure policy's
    call (apply_failure_policy). The second list is what the shim's cache watches,
    directories included (their mtime changes when a file is added or removed).
    ``signed``, when given, receives (path, stat signature) of each of them, and of each
    hook executable and directory above it that was checked, taken *before* it is read:
    the cache stores what was read under the signature of what was read, never the
    signature of a file that replaced it meanwhile.
    """
    from chts.base.file_trust import check_trusted_executable, read_trusted_file
    from chts.base.signature import signature
    from chts.hooks.dropin import MAX_DROPIN_BYTES, parse_dropin
    from chts.hooks.model import MAX_HOOKS_BYTES, STAGES, parse_hooks_json, resolved_on_host

    section = config["container-hooks"]
    any_owner: bool = section["insecure-allow-non-root-files"]
    planned: List[PlannedHook] = []
    problems: List[str] = []
    hooks_json: str = section["path"]
    sources: List[str] = []

    def watching(path: str) -> None:
        if signed is not None:
            signed.append((path, signature(path)))

    def reading(path: str) -> None:
        sources.append(path)
        watching(path)

    def check_executables(source: str, entries: List[PlannedHook]) -> List[PlannedHook]:
        """``entries``, once the host executables they name are trusted; ToolkitError naming the source."""
        for entry in entries:
            hook_path = entry["hook"]["path"]
            if not resolved_on_host(entry["stage"]) or hook_path in checked:
                continue
            checked.add(hook_path)
            try:
                check_trusted_executable(hook_path, any_owner, watching)
            except ToolkitError as exc:
                raise ToolkitError(f"{source}: {entry['stage']} hook {hook_path}: {exc}") from None
        return entries

    checked: Set[str] = set()
    reading(hooks_json)
    try:
        text = read_trusted_file(hooks_json, MAX_HOOKS_BYTES, "hooks file", any_owner)
        hooks = parse_hooks_json(text, hooks_json) if text is not None else {}
        entries: List[PlannedHook] = [
            {"stage": stage, "hook": hook, "source": hooks_json} for stage in STAGES for hook in hooks.get(stage, [])
        ]
        planned.extend(check_executables(hooks_json, entries))
    except Exception as exc:
        problems.append(problem_of(exc, hooks_json, "hooks file"))
    # oci-hooks(5): a file in a later directory masks the file of the same name in an earlier one.
    chosen: Dict[str, str] = {}
    for directory in section["hooks-dirs"]:
        reading(directory)
        try:
            for name in dropin_names(directory, any_owner):
                chosen[name] = directory + name if directory.endswith("/") else directory + "/" + name
        except Exception as exc:
            problems.append(problem_of(exc, directory, "hooks directory"))
    # Podman's order: file names compared case-insensitively (the exact name breaks ties).
    for name in sorted(chosen, key=lambda name: (name.lower(), name)):
        path = chosen[name]
        reading(path)
        try:
            text = read_trusted_file(path, MAX_DROPIN_BYTES, "hook file", any_owner)
            if text is None:
                continue  # removed since the listing; the directory's changed mtime re-plans it
            dropin = parse_dropin(text, path)
            entries = [
                {"stage": stage, "hook": dropin["hook"], "source": path, "when": dropin["when"]}
                for stage in dropin["stages"]
            ]
            planned.extend(check_executables(path, entries))
        except Exception as exc:
            problems.append(problem_of(exc, path, "hook file"))
    return planned, sources, problems


def problem_of(exc: Exception, path: str, what: str) -> str:
    """The one line saying why a source is unusable; an exception no reader expected is one too,
    so that the failure policy decides about it like about any other."""
    if isinstance(exc, ToolkitError):
        return str(exc)
    return f"{path}: cannot use {what}: {unexpected(exc)}"


def dropin_names(directory: str, any_owner: bool) -> List[str]:
    """The *.json names in a trusted hooks directory; none when it does not exist."""
    from chts.base.file_trust import check_trusted_directory

    if not check_trusted_directory(directory, "hooks directory", any_owner):
        return []
    try:
        return [name for name in posix.listdir(directory) if name.endswith(".json")]
    except OSError as exc:
        raise ToolkitError(f"{directory}: cannot list hooks directory: {exc.strerror}") from None


def apply_failure_policy(problems: List[str], policy: str, warn: Callable[[str], None]) -> None:
    """on-error = "fail": raise the first problem (one line); "skip": warn about each, go on.

    A file this toolkit cannot use although Podman reads it (chts.hooks.dropin) is
    skipped with a warning either way: it must not cost every container.
    """
    # Files Podman reads but this toolkit cannot use (chts.errors.SKIPPED_FILE) are skipped whatever on-error says.
    from chts.errors import SKIPPED_FILE

    for problem in problems:
        if problem.endswith(SKIPPED_FILE):
            warn(f"skipping hook file: {problem}")
    problems = [problem for problem in problems if not problem.endswith(SKIPPED_FILE)]
    if not problems:
        return
    if policy == "skip":
        for problem in problems:
            warn(f"skipping unusable hook source (on-error = skip): {problem}")
        return
    more = len(problems) - 1
    suffix = f" (and {more} more unusable hook source(s): `container-hooks-ctk hooks validate` lists them)"
    raise ToolkitError(problems[0] + (suffix if more else ""))


def explain_hooks(planned: List[PlannedHook], spec: Dict[str, Any]) -> List[Explained]:
    """Each planned hook with whether it applies to ``spec`` and why, per source (for `ctk hooks explain`).

    A drop-in file's reason names the condition that decided: the first that
    failed, or every condition that matched.
    """
    verdicts: Dict[str, Tuple[bool, str]] = {}
    result: List[Explained] = []
    for entry in planned:
        when = entry.get("when")
        if when is None:
            result.append((entry, True, f"{entry['source']}: applies to every container"))
            continue
        source = entry["source"]
        if source not in verdicts:  # one file's stages share its conditions: evaluate once
            from chts.hooks.dropin import evaluate_when  # only drop-in files have conditions

            matched, reason = evaluate_when(when, spec)
            verdicts[source] = (matched, f"{source}: {'matched' if matched else 'not matched'}: {reason}")
        matched, reason = verdicts[source]
        result.append((entry, matched, reason))
    return result


def select_hooks(planned: List[PlannedHook], spec: Dict[str, Any]) -> List[PlannedHook]:
    """The planned hooks that apply to the container described by ``spec``, for its config.json.

    precreate hooks are never written into config.json: chts.shim.precreate runs them.
    """
    planned = [entry for entry in planned if entry["stage"] != PRECREATE]
    if all(entry.get("when") is None for entry in planned):
        return list(planned)  # hooks.json only: nothing to evaluate
    return [entry for entry, matched, _ in explain_hooks(planned, spec) if matched]
