"""Reading engine config files: every way a file can be unusable becomes one line naming it."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple

from chts.base.nesting import JSON_WORDS, NestedTooDeeply, check_depth, json_text_depth
from chts.base.text_files import read_text_file, toml_decode_error, toml_loads
from chts.errors import ToolkitError

# Engine configs are a few KiB; anything this large is not one, and reading it whole would be unwise.
CONFIG_LIMIT = 4 * 1024 * 1024


def read_config_text(path: str, what: str, limit: int = CONFIG_LIMIT, empty_ok: bool = False) -> Optional[str]:
    """A config file's text, or None when it does not exist (the caller then starts from a default).

    The one reader of the config files the tools edit, engines' and the toolkit's own: a
    dangling symlink, a directory, non-UTF-8 or more than ``limit`` bytes is one line naming
    the file; so is an empty file, unless ``empty_ok`` (an empty config.toml means the defaults).
    """
    if not os.path.lexists(path):
        return None
    if os.path.islink(path) and not os.path.exists(path):
        raise ToolkitError(f"{path}: dangling symlink to {os.readlink(path)}")
    text = read_text_file(path, limit, what)
    if not empty_ok and not text.strip():
        raise ToolkitError(f"{path}: empty file, expected a {what} file (delete it to have a minimal one written)")
    return text


def parse_toml(text: str, path: str) -> Dict[str, Any]:
    try:
        return toml_loads(text)
    except toml_decode_error() as exc:
        raise ToolkitError(f"{path}: invalid TOML: {exc}") from None


def parse_json_object(text: str, path: str) -> Dict[str, Any]:
    """The object a JSON file holds; one line naming ``path`` for anything else, or one nested too deeply."""
    try:
        data = check_depth(json.loads(text), JSON_WORDS)
    except RecursionError:
        raise ToolkitError(f"{path}: invalid JSON: {NestedTooDeeply(JSON_WORDS, json_text_depth(text))}") from None
    except ValueError as exc:
        raise ToolkitError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ToolkitError(f"{path}: expected a JSON object at the top, found {type_name(data)}")
    return data


def type_name(value: Any) -> str:
    names = {dict: "a table/object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def dotted(keys: Sequence[str]) -> str:
    return ".".join(json.dumps(k) if not k.replace("-", "").replace("_", "").isalnum() else k for k in keys)


def table_at(document: Dict[str, Any], keys: Sequence[str], path: str) -> Dict[str, Any]:
    """The table at ``keys`` (empty when absent); a non-table on the way is a clear error."""
    table = document
    for depth, key in enumerate(keys):
        value = table.get(key, {})
        if not isinstance(value, dict):
            where = dotted(keys[: depth + 1])
            raise ToolkitError(f"{path}: {where} must be a table, found {type_name(value)}")
        table = value
    return table


def typed_value(table: Dict[str, Any], key: str, kind: type, keys: Sequence[str], path: str) -> Any:
    """``table[key]`` when it has the expected type (or is absent -> None), else a clear error."""
    value = table.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool)):
        raise ToolkitError(f"{path}: {dotted([*keys, key])} must be {type_name(kind())}, found {type_name(value)}")
    return value


def nested(keys: Tuple[str, ...], leaf: Dict[str, Any]) -> Dict[str, Any]:
    """``{"a": {"b": leaf}}`` for keys ("a", "b")."""
    for key in reversed(keys):
        leaf = {key: leaf}
    return leaf


def deep_merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    """Tables merge key by key, anything else in ``over`` replaces: how drop-in directories combine."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def without_empty_tables(settings: Dict[str, Any]) -> Dict[str, Any]:
    """``settings`` without empty tables: a file naming a table only for what we own changes nothing else."""
    result = {}
    for key, value in settings.items():
        value = without_empty_tables(value) if isinstance(value, dict) else value
        if value != {}:
            result[key] = value
    return result


def foreign_runtime(path: str, where: str) -> ToolkitError:
    """A runtime of the requested name that configure did not add: never overwritten, never removed."""
    return ToolkitError(f"{path}: already defines {where} (not added by this tool); choose another --runtime-name")
