"""Drop-in hook files as Podman and CRI-O read them (oci-hooks(5) 1.0.0 and 0.1.0): strict parsing, and matching.

Parsing turns a file into plain data (dicts, lists, strings, bools) that the shim's
marshal cache can hold; matching evaluates that data against a container's spec.
Patterns are Go regular expressions, compiled and matched by chts.hooks.goregex (imported
only when a file has a pattern), as containers/common's `pkg/hooks` reads them.
"""

from __future__ import annotations

from chts.base.jsonio import line_at
from chts.errors import SKIPPED_FILE, ToolkitError
from chts.hooks.model import EXTENSION_STAGES, STAGES, parse_json_document, validate_hook

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

    from typing_extensions import TypedDict

    Pairs = Sequence[Tuple[str, str]]

    # A drop-in's conditions as chts.hooks.dropin.validate_when keeps them: only those that
    # constrain; pattern maps as [name regex, value regex] pairs (marshal keeps the order).
    When = TypedDict(
        "When",
        {
            "always": bool,
            "hasBindMounts": bool,
            "annotations": List[List[str]],
            "commands": List[str],  # regexes, any of which may match process.args[0]
            "x-container-hooks-env": List[List[str]],
            "anyOf": bool,  # 0.1.0 files: the conditions are ORed, as containers/common converts them
        },
        total=False,
    )


SCHEMA_VERSION = "1.0.0"
LEGACY_VERSION = "0.1.0"  # what Podman reads a file without "version" (or with "") as
FILE_KEYS = ("version", "hook", "when", "stages")
LEGACY_KEYS = (
    "version",
    "hook",
    "arguments",
    "stages",
    "stage",
    "cmds",
    "cmd",
    "annotations",
    "annotation",
    "hasbindmounts",
)
# A drop-in may name Podman's extension stage too (chts.hooks.model, the stage model).
DROPIN_STAGES = (*STAGES, *EXTENSION_STAGES)
# containers/common since 2024 (Podman 5) injects a drop-in's "prestart" into createRuntime:
# runc runs both at the same moment, and one stage keeps the order of the files.
STAGE_ALIASES = {"prestart": "createRuntime"}
# when of a 0.1.0 file: any condition matching is enough (containers/common's When.Or).
ANY_OF = "anyOf"
# Our extension, named so that no one mistakes it for part of oci-hooks(5): a map of
# name-regex -> value-regex matched against process.env, because Docker passes no
# labels as annotations and `docker run -e AUDIT=1` is how its users opt a container in.
# Podman ignores keys it does not know, so a file using it never fires there by accident
# unless it also says "always": true.
ENV_CONDITION = "x-container-hooks-env"
WHEN_KEYS = ("always", "annotations", "commands", "hasBindMounts", ENV_CONDITION)
MAX_DROPIN_BYTES = 1 << 20


class DropinError(ValueError):
    """A problem in a drop-in file, with the keys (and value) that lead to it, to find its line.

    ``skipped``: the file is one Podman reads, but this toolkit cannot use it (or Podman
    would never inject it either): it costs that file, with a warning, under any on-error.
    """

    def __init__(
        self, message: str, keys: Sequence[str] = (), value: Optional[str] = None, skipped: bool = False
    ) -> None:
        super().__init__(message)
        self.keys = list(keys)
        self.value = value
        self.skipped = skipped


# ----------------------------------------------------------------------------- parsing


def parse_dropin(text: str, path: str) -> Dict[str, Any]:
    """{"hook", "when", "stages"} of one drop-in file; ToolkitError naming the file and line."""
    data = parse_json_document(text, path, "a drop-in hook needs version, hook, when and stages")
    try:
        return validate_dropin(data)
    except DropinError as exc:
        line = line_at(text, exc.keys, exc.value)
        message = f"{path}:{line}: {exc}" if line else f"{path}: {exc}"
        raise ToolkitError(message + (SKIPPED_FILE if exc.skipped else "")) from None


def validate_dropin(data: Any) -> Dict[str, Any]:
    if not isinstance(data, dict):
        raise DropinError(f"must be a JSON object with {', '.join(FILE_KEYS)}, not {type(data).__name__}")
    if data.get("version", "") in ("", LEGACY_VERSION):
        return validate_legacy(data)
    reject_unknown_keys(data, FILE_KEYS, [])
    for key in FILE_KEYS:
        if key not in data:
            raise DropinError(f"missing required key {key!r}" + MISSING_HINTS.get(key, ""))
    version = data["version"]
    if version != SCHEMA_VERSION:
        raise DropinError(
            f"version {version!r} is not supported: oci-hooks(5) files are version {SCHEMA_VERSION!r}, "
            f"or {LEGACY_VERSION!r} (or no version)",
            ["version"],
        )
    try:
        hook = validate_hook(data["hook"], "hook")
    except ValueError as exc:
        raise DropinError(str(exc), ["hook", *hook_key_in(str(exc), data["hook"])]) from None
    return {"hook": hook, "when": validate_when(data["when"]), "stages": validate_stages(data["stages"])}


MISSING_HINTS = {
    "version": ' (write "version": "1.0.0")',
    "when": ' (write "when": {"always": true} for every container)',
    "stages": ' (e.g. "stages": ["prestart"])',
}
LEGACY_HINT = (
    '; a file without "version" is read in the 0.1.0 format, as Podman does: write "version": "1.0.0" for 1.0.0'
)


def validate_legacy(data: Dict[str, Any]) -> Dict[str, Any]:
    """A 0.1.0 file converted as containers/common converts it: path and arguments, any-of conditions.

    Go's JSON decoder reads null as absent; "stage", "cmd" and "annotation" are synonyms
    that may not be set together with "stages", "cmds" and "annotations".
    """
    reject_unknown_keys(data, LEGACY_KEYS, [], LEGACY_HINT)
    data = {key: value for key, value in data.items() if value is not None}
    spelled = {key: key for key in LEGACY_KEYS}  # how the file names each key, for messages and lines
    for plural, singular in (("stages", "stage"), ("cmds", "cmd"), ("annotations", "annotation")):
        if singular in data:
            if plural in data:
                raise DropinError(f"cannot set both {singular!r} and {plural!r}", [singular])
            data[plural] = data.pop(singular)
            spelled[plural] = singular
    if "hook" not in data:
        raise DropinError("missing required key 'hook' (the hook's path)" + LEGACY_HINT)
    path = data["hook"]
    if not isinstance(path, str):
        shape = "an object" if isinstance(path, dict) else type(path).__name__
        raise DropinError(f"hook: must be a string, the hook's path, not {shape}" + LEGACY_HINT, ["hook"])
    raw_hook: Dict[str, Any] = {"path": path}
    if "arguments" in data:
        raw_hook["args"] = [path, *string_list(data, "arguments", "strings")]
    try:
        hook = validate_hook(raw_hook, "hook")
    except ValueError as exc:
        message = str(exc).replace("hook.path", "hook").replace('hook: "path" is', "hook: is")
        raise DropinError(message, ["hook"]) from None
    if "stages" not in data:
        raise DropinError("missing required key 'stages'" + MISSING_HINTS["stages"])
    when: Any = {ANY_OF: True}  # a When, built key by key
    if "hasbindmounts" in data:
        if not isinstance(data["hasbindmounts"], bool):
            raise DropinError("hasbindmounts: must be true or false", ["hasbindmounts"])
        when["hasBindMounts"] = data["hasbindmounts"]
    if "annotations" in data:
        patterns = string_list(data, "annotations", "regular expressions (strings)", spelled["annotations"])
        # Any annotation (".*") whose value matches any of the patterns.
        when["annotations"] = [[".*", compile_check("|".join(patterns), [spelled["annotations"]])]]
    commands = string_list(data, "cmds", "regular expressions (strings)", spelled["cmds"]) if "cmds" in data else []
    if commands:
        when["commands"] = [compile_check(item, [spelled["cmds"]]) for item in commands]
    try:
        stages = validate_stages(data["stages"])
    except DropinError as exc:
        message = str(exc).replace("stages:", spelled["stages"] + ":", 1)
        raise DropinError(message, [spelled["stages"]], exc.value) from None
    if not any(when.get(key) for key in ("hasBindMounts", "annotations", "commands")):
        raise DropinError(
            "no cmds, annotations or hasbindmounts: Podman never injects such a 0.1.0 hook, nor does this toolkit",
            skipped=True,
        )
    return {"hook": hook, "when": when, "stages": stages}


def string_list(data: Dict[str, Any], key: str, what: str, spelled: str = "") -> List[str]:
    """``data[key]``, a list of strings; DropinError naming the key as the file spells it."""
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DropinError(f"{spelled or key}: must be a list of {what}", [spelled or key])
    return value


def reject_unknown_keys(data: Dict[str, Any], known: Sequence[str], where: List[str], hint: str = "") -> None:
    for key in data:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            suggestion = f"; did you mean {close[0]!r}?" if close else hint
            prefix = ".".join(where) + ": " if where else ""
            raise DropinError(f"{prefix}unknown key {key!r} (known: {', '.join(known)}){suggestion}", [*where, key])


def hook_key_in(message: str, hook: Any) -> List[str]:
    """The hook's key a validate_hook message is about ('hook.timeout: ...', "unknown key 'x'")."""
    if isinstance(hook, dict):
        for key in hook:
            if message.startswith(f"hook.{key}") or f"key {key!r}" in message:
                return [key]
    return []


def validate_when(when: Any) -> When:
    """Check the conditions; keep those that constrain anything (empty maps and lists do not, as in Podman)."""
    if not isinstance(when, dict):
        raise DropinError(f"when: must be an object of conditions ({', '.join(WHEN_KEYS)})", ["when"])
    reject_unknown_keys(when, WHEN_KEYS, ["when"])
    result: Any = {}  # a When, built key by key from WHEN_KEYS
    for key in ("always", "hasBindMounts"):
        if key in when:
            value = when[key]
            if not isinstance(value, bool):
                import json

                shown = f"the string {json.dumps(value)}" if isinstance(value, str) else json.dumps(value)
                raise DropinError(f"when.{key}: must be true or false, not {shown}", ["when", key])
            result[key] = value
    for key in ("annotations", ENV_CONDITION):
        if key in when:
            pairs = validate_pattern_map(when[key], key)
            if pairs:
                result[key] = pairs
    if "commands" in when:
        commands = when["commands"]
        if not isinstance(commands, list) or not all(isinstance(item, str) for item in commands):
            raise DropinError("when.commands: must be a list of regular expressions (strings)", ["when", "commands"])
        if commands:
            result["commands"] = [compile_check(item, ["when", "commands"]) for item in commands]
    if not result:
        raise DropinError(
            "when: has no condition, so the hook would never run (nor would Podman run it); "
            'write {"always": true} for every container, or a non-empty condition',
            ["when"],
            skipped=True,
        )
    checked: When = result
    return checked


def validate_pattern_map(value: Any, key: str) -> List[List[str]]:
    """A map of key-regex -> value-regex, as [key, value] pairs (marshal-able, order kept)."""
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise DropinError(f"when.{key}: must be an object of key regex -> value regex (strings)", ["when", key])
    keys = ["when", key]
    return [[compile_check(name, keys), compile_check(pattern, keys)] for name, pattern in value.items()]


def compile_check(pattern: str, keys: List[str]) -> str:
    """``pattern``, once Go's regexp would compile it and chts.hooks.goregex can match it; DropinError otherwise."""
    from chts.hooks.goregex import GoRegexError, UnsupportedRegex, compile_pattern

    where = ".".join(keys)
    try:
        compile_pattern(pattern)
    except GoRegexError as exc:
        raise DropinError(f"{where}: invalid regular expression {pattern!r}: {exc}", keys, pattern) from None
    except UnsupportedRegex as exc:
        raise DropinError(f"{where}: {exc}", keys, pattern, skipped=True) from None
    return pattern


def validate_stages(stages: Any) -> List[str]:
    """The stages to inject into, prestart read as createRuntime (Podman 5), each once."""
    if not isinstance(stages, list) or not stages or not all(isinstance(item, str) for item in stages):
        raise DropinError(f"stages: must be a non-empty list of stage names ({', '.join(DROPIN_STAGES)})", ["stages"])
    result: List[str] = []
    for stage in stages:
        if stage not in DROPIN_STAGES:
            raise DropinError(
                f"stages: unknown stage {stage!r} (stages: {', '.join(DROPIN_STAGES)})", ["stages"], stage
            )
        stage = STAGE_ALIASES.get(stage, stage)
        if stage not in result:  # a stage listed twice still gets the hook once
            result.append(stage)
    return result


# ----------------------------------------------------------------------------- matching


def evaluate_when(when: When, spec: Dict[str, Any]) -> Tuple[bool, str]:
    """(matched, reason): every condition must match (a 0.1.0 file: any); the reason names what decided.

    Conditions are tried in the order of containers/common, so the first one that
    fails (for 0.1.0: matches) is the one named; otherwise each says what it found.
    """
    conditions: Mapping[str, object] = when  # looked up by CONDITIONS' names
    any_of = conditions.get(ANY_OF, False)
    reasons: List[str] = []
    for key, condition in CONDITIONS.items():
        if key in conditions:
            matched, reason = condition(conditions[key], spec)
            if matched == any_of:
                return matched, f"{key}: {reason}" + (" (0.1.0 file: any condition)" if any_of else "")
            reasons.append(f"{key}: {reason}")
    return not any_of, "; ".join(reasons)


def match_always(always: bool, spec: Dict[str, Any]) -> Tuple[bool, str]:
    return (True, "true") if always else (False, "false, which never matches")


def match_bind_mounts(wanted: bool, spec: Dict[str, Any]) -> Tuple[bool, str]:
    if not wanted:
        return False, "false, which never matches"
    destination = first_bind_mount(spec)
    if destination is None:
        return False, "the container has no bind mount"
    return True, f"bind mount on {destination}"


def match_annotations(patterns: List[List[str]], spec: Dict[str, Any]) -> Tuple[bool, str]:
    return match_pairs(patterns, annotations_of(spec))


def match_env(patterns: List[List[str]], spec: Dict[str, Any]) -> Tuple[bool, str]:
    return match_pairs(patterns, env_of(spec))


# A container's values go into the reasons the shim logs for every create: a 100 KB annotation
# would make a 100 KB log line. Longer ones are cut, saying how long they were.
SHOWN_CHARS = 120


def shown(value: str, quoted: bool = True) -> str:
    """``value`` as a reason shows it (repr when ``quoted``), cut after SHOWN_CHARS characters."""
    text = value[:SHOWN_CHARS]
    text = repr(text) if quoted else text
    return text if len(value) <= SHOWN_CHARS else f"{text}... ({len(value)} characters)"


def match_pairs(patterns: List[List[str]], actual: Pairs) -> Tuple[bool, str]:
    """Every [name-regex, value-regex] must be matched by some (name, value) of ``actual``."""
    from chts.hooks.goregex import match_string

    matches: List[str] = []
    for name_pattern, value_pattern in patterns:
        named = [(name, value) for name, value in actual if match_string(name_pattern, name)]
        hit = next(((name, value) for name, value in named if match_string(value_pattern, value)), None)
        if hit is None:
            if not named:
                return False, f"no name matches {name_pattern!r}"
            name, value = named[0]
            return (
                False,
                f"{shown(name, False)}={shown(value)} matches {name_pattern!r} but not the value {value_pattern!r}",
            )
        matches.append(f"{shown(hit[0], False)}={shown(hit[1])} matches {name_pattern!r}={value_pattern!r}")
    return True, ", ".join(matches)


def match_command(patterns: List[str], spec: Dict[str, Any]) -> Tuple[bool, str]:
    """Any pattern may match process.args[0]."""
    from chts.hooks.goregex import match_string

    process = spec.get("process")
    args = process.get("args") if isinstance(process, dict) else None
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        return False, "the container has no process.args[0]"
    command = args[0]
    for pattern in patterns:
        if match_string(pattern, command):
            return True, f"{shown(command)} matches {pattern!r}"
    return False, f"{shown(command)} matches none of {', '.join(repr(p) for p in patterns)}"


# In containers/common's order: the first condition that fails is the one a reason names.
CONDITIONS: Dict[str, Callable[[Any, Dict[str, Any]], Tuple[bool, str]]] = {
    "always": match_always,
    "hasBindMounts": match_bind_mounts,
    "annotations": match_annotations,
    "commands": match_command,
    ENV_CONDITION: match_env,
}


def annotations_of(spec: Dict[str, Any]) -> Pairs:
    annotations = spec.get("annotations")
    if not isinstance(annotations, dict):
        return []
    return [(key, value) for key, value in annotations.items() if isinstance(value, str)]


def env_of(spec: Dict[str, Any]) -> Pairs:
    process = spec.get("process")
    env = process.get("env") if isinstance(process, dict) else None
    pairs: List[Tuple[str, str]] = []
    for item in env if isinstance(env, list) else []:
        if isinstance(item, str) and "=" in item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


def first_bind_mount(spec: Dict[str, Any]) -> Optional[str]:
    """The destination of the spec's first bind mount (type "bind" or option bind/rbind), or None."""
    mounts = spec.get("mounts")
    if not isinstance(mounts, list):
        return None
    for mount in mounts:
        if not isinstance(mount, dict):
            continue
        options = mount.get("options")
        options = options if isinstance(options, list) else []
        if mount.get("type") == "bind" or "bind" in options or "rbind" in options:
            return str(mount.get("destination", "?"))
    return None
