"""`container-hooks-ctk config`: print the default or effective toolkit config, and change keys in it.

Everything here is driven by ``toolkit_config.SCHEMA``: a key added there is
printed, settable and type-checked without touching this module. Changing a
file edits only the lines of the keys being set, so the user's comments,
layout and unknown sections survive; the result is re-parsed and compared with
the intended document before anything is written.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from chts.atomic import write_atomically
from chts.ctk.toolkit_files import (
    add_command,
    add_config_option,
    chosen_config_path,
    ensure_writable,
    make_parent_directory,
)
from chts.engines.toml_edit import set_key, toml_value
from chts.errors import ToolkitError
from chts.toolkit_config import (
    MAX_CONFIG_BYTES,
    SCHEMA,
    check_value,
    default_config,
    load_config,
    merge_over_defaults,
    read_text_file,
    toml_decode_error,
    toml_loads,
)

if TYPE_CHECKING:
    from chts.toolkit_config import Config

EPILOG = """\
examples:
  container-hooks-ctk config default                 # the commented default file
  container-hooks-ctk config show                    # what the tools use: file merged over defaults
  container-hooks-ctk config --set container-hooks-runtime.log-level=debug
                                                     # print the changed file, write nothing
  sudo container-hooks-ctk config -i --set container-hooks-runtime.runtimes=crun,runc
  container-hooks-ctk config --set 'container-hooks-runtime.runtimes=["runc"]' -o /tmp/config.toml

KEY is SECTION.NAME. Lists take comma-separated items or a TOML array; strings are
taken as written (or as a quoted TOML string). Without -i or -o the result goes to
stdout. A missing file starts from the commented default file.
"""

Assignment = Tuple[str, str, Any]  # (section, key, value)


def render_config(config: Config, header: str) -> str:
    """A config document with each key under its schema comment."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for section, keys in SCHEMA.items():
        lines += ["", f"[{section}]"]
        for key, (_, _, comment) in keys.items():
            lines += [f"# {comment}", f"{key} = {toml_value(config[section][key])}"]
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
            if key in SCHEMA[section]:
                known[section][key] = value
            else:
                unknown.append(f"key {key!r} in [{section}]")
    merge_over_defaults(known, path)
    return [f"{path}: unknown {what} kept; the toolkit refuses the file until it goes" for what in unknown]


def write_output(path: str, text: str, command: str) -> None:
    ensure_writable(path, command)
    make_parent_directory(path)
    write_atomically(path, text.encode("utf-8"), mode=0o644)


def read_config_text(path: str) -> Optional[str]:
    """The text of the config file, None when there is none."""
    if not os.path.lexists(path):
        return None
    return read_text_file(path, MAX_CONFIG_BYTES, "TOML")


def run_config(args: argparse.Namespace) -> int:
    path = chosen_config_path(args)
    assignments = [parse_assignment(item) for item in args.set]
    original = read_config_text(path)
    text = apply_assignments(default_config_text() if original is None else original, path, assignments)
    for warning in validate_document(text, path):
        print(f"warning: {warning}", file=sys.stderr)
    target = path if args.in_place else output_of(args)
    if target is None or target == "-":
        sys.stdout.write(text)
        return 0
    if target == path and text == original:
        if not args.quiet:
            print(f"{path}: unchanged", file=sys.stderr)
        return 0
    write_output(target, text, "config")
    if not args.quiet:
        print(f"wrote {target}", file=sys.stderr)
    return 0


def run_default(args: argparse.Namespace) -> int:
    output = output_of(args)
    if output is None or output == "-":
        sys.stdout.write(default_config_text())
    else:
        write_output(output, default_config_text(), "config default")
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = chosen_config_path(args)
    source = path if os.path.lexists(path) else f"{path} (missing)"
    sys.stdout.write(render_config(load_config(path), f"effective configuration: {source} over the defaults"))
    return 0


def add_output_option(container: Any) -> None:
    """-o on `config` and on `config default`; suppressed default so one does not reset the other."""
    container.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="write the result to PATH (atomically); '-' = stdout",
    )


def output_of(args: argparse.Namespace) -> Optional[str]:
    output: Optional[str] = getattr(args, "output", None)
    return output


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "config",
        "print or change the toolkit config (config.toml)",
        EPILOG,
        "Print the default or effective toolkit config, or change keys in it keeping comments and layout.",
    )
    add_config_option(parser)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set a key (repeatable); see below"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-i", "--in-place", action="store_true", help="write the result back to the config file")
    add_output_option(where)
    parser.set_defaults(func=run_config)
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    default = add_command(
        actions,
        "default",
        "print the commented default config",
        "example:\n  container-hooks-ctk config default -o /etc/container-hooks/config.toml\n",
    )
    add_output_option(default)
    default.set_defaults(func=run_default)
    show = add_command(
        actions,
        "show",
        "print the effective config (the file merged over the defaults)",
        "example:\n  CONTAINER_HOOKS_CONFIG=/tmp/config.toml container-hooks-ctk config show\n",
    )
    add_config_option(show)
    show.set_defaults(func=run_show)
