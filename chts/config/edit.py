"""Toolkit config edits: `--set SECTION.KEY=VALUE` applied to config.toml line by line.

Driven by ``toolkit_config.SCHEMA``: a key added there is printed, settable and
type-checked without touching this module. Only the lines of the keys being set
change, so the user's comments, layout and unknown sections survive; the result is
re-parsed and compared with the intended document before anything is written.
Used by `ctk config`, `ctk install` (the default file), `ctk check` (its probe config)
and runtime configure's chaining.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from chts import CTK
from chts.base.config_files import read_config_text
from chts.base.text_files import toml_decode_error, toml_loads
from chts.base.toml_edit import set_key, toml_key, toml_value
from chts.config.toolkit import (
    CHAINS_KEY,
    DEFAULT_CONFIG_PATH,
    MAX_CONFIG_BYTES,
    RUNTIME_SECTION,
    SCHEMA,
    check_value,
    default_config,
    merge_over_defaults,
)
from chts.errors import ToolkitError

if TYPE_CHECKING:
    from chts.config.toolkit import Config


Assignment = Tuple[str, str, Any]  # (section, key, value)


def render_config(config: Config, header: str) -> str:
    """A config document with each key under its schema comment."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    sections: Any = config  # indexed by SCHEMA's names
    for section, keys in SCHEMA.items():
        lines += ["", f"[{section}]"]
        for key, (_, _, comment) in keys.items():
            lines += [f"# {comment}", f"{key} = {toml_value(sections[section][key])}"]
    chains = sections[RUNTIME_SECTION].get(CHAINS_KEY)
    if chains:  # what `runtime configure` chained: the binary each container-hooks-runtime.TAG execs
        lines += ["", f"[{RUNTIME_SECTION}.{CHAINS_KEY}]"]
        lines += [f"{toml_key(tag)} = {toml_value(binary)}" for tag, binary in chains.items()]
    return "\n".join(lines) + "\n"


def default_config_text() -> str:
    return render_config(
        default_config(),
        "container-hooks-toolkit configuration (written by `container-hooks-ctk config`).\n"
        "A missing file or key means the default shown here.",
    )


def known_keys() -> str:
    return ", ".join(f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys)


def parse_toml_value(text: str, name: str) -> Any:
    try:
        return toml_loads(f"v = {text}")["v"]
    except toml_decode_error():
        raise ToolkitError(f"--set {name}: {text!r} is not a valid TOML value") from None


def value_from_text(text: str, default: Any, name: str) -> Any:
    """Turn the text of ``--set KEY=TEXT`` into a value of the key's type, judged by its default."""
    stripped = text.strip()
    if isinstance(default, list):
        if stripped.startswith("["):
            return parse_toml_value(stripped, name)
        return [item.strip() for item in stripped.split(",")] if stripped else []
    if isinstance(default, bool):
        words = {"true": True, "yes": True, "on": True, "1": True}
        words.update({"false": False, "no": False, "off": False, "0": False})
        return words.get(stripped.lower(), text)  # anything else: check_value names the problem
    if isinstance(default, int):
        return int(stripped) if stripped.lstrip("-").isdigit() else text
    if stripped[:1] in ('"', "'"):
        return parse_toml_value(stripped, name)
    return text


def parse_assignment(text: str) -> Assignment:
    name, equals, raw = text.partition("=")
    name = name.strip()
    if not equals:
        raise ToolkitError(f"--set {text!r}: expected KEY=VALUE, e.g. container-hooks-runtime.log-level=debug")
    section, _, key = name.rpartition(".")
    if section not in SCHEMA or key not in SCHEMA[section]:
        raise ToolkitError(f"--set {name}: unknown key (known: {known_keys()})")
    value = value_from_text(raw, SCHEMA[section][key][1], name)
    try:
        return section, key, check_value(section, key, value)
    except ValueError as exc:
        raise ToolkitError(f"--set {name}: {exc}") from None


def apply_assignments(text: str, path: str, assignments: List[Assignment]) -> str:
    """The document with every assignment made, verified by parsing it back."""
    try:
        expected = toml_loads(text)
    except toml_decode_error() as exc:
        raise ToolkitError(f"{path}: invalid TOML: {exc}") from None
    result = text
    for section, key, value in assignments:
        result = set_key(result, (section,), key, value, record=False, comment=SCHEMA[section][key][2])
        table = expected.setdefault(section, {})
        if not isinstance(table, dict):
            raise ToolkitError(f"{path}: {section} must be a table [{section}]")
        table[key] = copy.deepcopy(value)
    try:
        matches = toml_loads(result) == expected
    except toml_decode_error():
        matches = False
    if not matches:
        # Happens only with layouts this line editor does not rewrite (dotted keys, inline tables).
        raise ToolkitError(f"{path}: cannot change it without losing its layout; edit the file by hand")
    return result


def read_toolkit_config(path: str) -> Optional[str]:
    """config.toml's text; None when there is none (an empty one is the defaults, unlike an engine's)."""
    return read_config_text(path, "TOML", MAX_CONFIG_BYTES, empty_ok=True)


def validate_document(text: str, path: str) -> List[str]:
    """Raise on a key of the schema with a bad value; return warnings for sections and keys it does not know.

    Unknown parts are kept (they may come from a newer toolkit), but the tools refuse
    the file until they are removed, so the user has to hear about them.
    """
    data = toml_loads(text)
    known: Dict[str, Any] = {}
    unknown = []
    for section, values in data.items():
        if section not in SCHEMA:
            unknown.append(f"section [{section}]")
            continue
        if not isinstance(values, dict):
            known[section] = values  # merge_over_defaults names the problem
            continue
        known[section] = {}
        for key, value in values.items():
            if key in SCHEMA[section] or (section, key) == (RUNTIME_SECTION, CHAINS_KEY):
                known[section][key] = value
            else:
                unknown.append(f"key {key!r} in [{section}]")
    merge_over_defaults(known, path)
    return [f"{path}: unknown {what} kept; the toolkit refuses the file until it goes" for what in unknown]


def install_config_text(config_path: str, dest: str) -> str:
    """The config.toml install writes: the defaults, with the toolkit's paths beside this config file.

    A config outside /etc/container-hooks (a test root) gets its hooks file, log and
    hook directories next to it, so nothing of a test install lands in /etc; the ctk
    path follows ``dest``. uninstall removes the file only while it still reads so.
    """
    default_dir = os.path.dirname(DEFAULT_CONFIG_PATH) + "/"
    home = os.path.dirname(os.path.abspath(config_path)) + "/"

    def rebased(value: Any) -> Any:
        if isinstance(value, list):
            return [rebased(item) for item in value]
        if isinstance(value, str) and value.startswith(default_dir):
            return home + value[len(default_dir) :]
        return value

    changes = [
        (section, key, rebased(spec[1]))
        for section, keys in SCHEMA.items()
        for key, spec in keys.items()
        if rebased(spec[1]) != spec[1]
    ]
    ctk = os.path.join(dest, CTK)
    if ctk != SCHEMA["container-hooks-ctk"]["path"][1]:
        changes.append(("container-hooks-ctk", "path", ctk))
    return apply_assignments(default_config_text(), config_path, changes)
