"""containerd: add the shim as a CRI runtime by a marked, minimal edit of config.toml (or a drop-in of our own).

The main file is edited in place by default: containerd 1.x replaces a whole plugin table from an
imported file instead of merging it (containerd#5837, seen here on 1.6), so a drop-in touching the
CRI plugin would drop the user's ``sandbox_image``, their runc runtime and everything else in that
plugin unless it copies them; ``--drop-in`` does exactly that copy, for hosts whose main file is
regenerated (chts/engines/containerd_dropin.py).

Any ``runtimes`` table in the file replaces containerd's built-in one on 1.x, so when the file has
none, configure writes ``runc`` too, as containerd defines it: otherwise the CRI plugin no longer
finds its default runtime and does not load (on a Kubernetes node: the node is down).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, Optional, Tuple

from chts.base.config_files import foreign_runtime, parse_toml, read_config_text, table_at, typed_value
from chts.base.file_edit import Plan
from chts.base.toml_edit import (
    append_block,
    marked_edit,
    set_in,
    set_key_expecting,
    tables_text,
    unmarked_edit,
    verified,
)
from chts.engines import EffectiveRuntimes, Engine, RuntimeRequest
from chts.engines.containerd_config import (
    BUILTIN_RUNTIMES,
    CRI_PLUGIN,
    CRI_PLUGIN_NAMES,
    RUNC_V2,
    WHAT,
    config_version,
    effective_view,
    imported_paths,
    load_file,
    reader_major,
)
from chts.engines.containerd_dropin import (
    DROP_IN_NAME,
    advice,
    configure_drop_in,
    imported_directories,
    our_drop_ins,
    refuse_legacy_default,
    refuse_unread_format,
    regenerated_by,
    remove_drop_ins,
)
from chts.engines.runtime_binaries import runc_shim_binary
from chts.errors import ToolkitError

MINIMAL_CONFIG = """\
# containerd config written by `container-hooks-ctk runtime configure` (there was none).
version = 2
"""


def cri_table_keys(document: Dict[str, Any], path: str) -> Tuple[str, ...]:
    return ("plugins", CRI_PLUGIN[config_version(document, path)], "containerd")


def checked_tables(document: Dict[str, Any], path: str) -> Tuple[Tuple[str, ...], Dict[str, Any]]:
    """The keys of the CRI plugin's ``containerd`` table and the table, its runtime settings type-checked."""
    keys = cri_table_keys(document, path)
    containerd = table_at(document, keys, path)
    for name in table_at(document, (*keys, "runtimes"), path):
        table_at(document, (*keys, "runtimes", name, "options"), path)
    typed_value(containerd, "default_runtime_name", str, keys, path)
    return keys, containerd


def runtime_template(containerd: Dict[str, Any]) -> Dict[str, Any]:
    """The runtime whose settings the shim's entry copies: the current default if it is runc.v2, else runc."""
    runtimes = containerd.get("runtimes", BUILTIN_RUNTIMES)
    default = containerd.get("default_runtime_name") or "runc"
    for name in (default, "runc"):
        candidate = runtimes.get(name, {})
        if (candidate.get("runtime_type") or RUNC_V2) == RUNC_V2 and candidate:  # "": containerd's default, runc.v2
            return copy.deepcopy(candidate)
    return {}


def shim_entry(containerd: Dict[str, Any], request: RuntimeRequest) -> Dict[str, Any]:
    entry = runtime_template(containerd)
    entry["runtime_type"] = RUNC_V2
    # any spelling of BinaryName goes: containerd matches option names without regard to case
    options = {key: value for key, value in entry.get("options", {}).items() if key.lower() != "binaryname"}
    entry["options"] = {**options, "BinaryName": request.path}
    return entry


def runtime_tables(containerd: Dict[str, Any], request: RuntimeRequest) -> Dict[str, Dict[str, Any]]:
    """The runtime tables configure adds: the shim's, and runc's when the file has no ``runtimes`` table yet."""
    if request.name in containerd.get("runtimes", {}):
        raise foreign_runtime_error(request)
    tables = {} if "runtimes" in containerd else copy.deepcopy(BUILTIN_RUNTIMES)
    tables[request.name] = shim_entry(containerd, request)
    return tables


def foreign_runtime_error(request: RuntimeRequest) -> ToolkitError:
    return foreign_runtime(request.config, f"runtime {request.name!r}")


def drop_in_advice(config: str, document: Dict[str, Any], owner: str) -> str:
    directories = imported_directories(config, document, reader_major(document, config))
    if directories:
        return (
            f"use --drop-in (it writes {os.path.join(directories[0], DROP_IN_NAME)}, which the generated file imports)"
        )
    return advice(owner)


def hiding_import(request: RuntimeRequest, document: Dict[str, Any]) -> Optional[str]:
    """An imported file whose CRI plugin table would replace the main file's on containerd 1.x, if any."""
    if reader_major(document, request.config) >= 2:
        return None
    key = CRI_PLUGIN[config_version(document, request.config)]
    ours = set(our_drop_ins(request.config, document, 1))
    for path in imported_paths(request.config, document.get("imports", []), 1):
        if path in ours:
            continue
        imported = load_file(path, required=False) or {}
        plugins = imported.get("plugins")
        if isinstance(plugins, dict) and key in plugins:
            return path
    return None


def disabled_warning(document: Dict[str, Any], path: str) -> List[str]:
    disabled = document.get("disabled_plugins", [])
    if isinstance(disabled, list) and CRI_PLUGIN_NAMES & set(map(str, disabled)):
        return [
            f"warning: {path} disables the CRI plugin (disabled_plugins): this edit has no effect until it is enabled"
        ]
    return []


class Containerd:
    name = "containerd"
    default_config = "/etc/containerd/config.toml"

    def configure(self, request: RuntimeRequest) -> Plan:
        def edit(text: str, document: Dict[str, Any]) -> str:
            path = request.config
            keys, containerd = checked_tables(document, path)
            major = reader_major(document, path)
            refuse_unread_format(path, config_version(document, path), major)
            owner = regenerated_by(path, text)
            if owner is not None:
                lost = f"{owner} rewrites it at every start, so this edit would be lost"
                raise ToolkitError(f"{path}: {lost}; {drop_in_advice(path, document, owner)}")
            refuse_legacy_default(path, containerd, request, major)
            hidden_by = hiding_import(request, document)
            if hidden_by is not None:
                raise ToolkitError(
                    f"{path}: imports {hidden_by}, whose CRI plugin table replaces this file's on containerd 1.x "
                    "and would hide the edit; merge that file's runtimes into this one, then configure again"
                )
            expected = copy.deepcopy(document)
            blocks = []
            for name, entry in runtime_tables(containerd, request).items():
                set_in(expected, (*keys, "runtimes", name), entry)
                blocks.append(tables_text((*keys, "runtimes", name), entry))
            new = append_block(text, "\n".join(blocks))
            if request.set_as_default:
                new = set_key_expecting(new, expected, keys, "default_runtime_name", request.name)
            return verified(new, expected, path)

        if request.drop_in:
            plan = configure_drop_in(request, shim_entry)
        else:
            plan = marked_edit(request.config, WHAT, MINIMAL_CONFIG, edit)
            plan = Plan(plan.edits + remove_drop_ins(request.config), plan.notes)  # switching from --drop-in
        text = read_config_text(request.config, WHAT)
        document = parse_toml(text, request.config) if text else {}
        notes = disabled_warning(document, request.config)
        directories = imported_directories(request.config, document, reader_major(document, request.config))
        if directories and not request.drop_in:
            notes.append(
                f"note: {request.config} imports {directories[0]}/: if the file is generated (EKS nodeadm, "
                "k3s, rke2 ...) this edit will be lost; --drop-in puts the runtime there instead"
            )
        return Plan(plan.edits, plan.notes + notes)

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        """Both layouts at once: marks in the main file and our drop-in, whichever configure left."""
        plan = unmarked_edit(request.config, WHAT, lambda document: checked_tables(document, request.config))
        return Plan(plan.edits + remove_drop_ins(request.config), plan.notes)

    def apply_hint(self, request: RuntimeRequest) -> str:
        return "restart containerd to apply it (e.g. `systemctl restart containerd`); running containers keep running"

    def reload(self, pid_file: str) -> str:
        raise ToolkitError("containerd cannot reload its config: restart it (e.g. `systemctl restart containerd`)")

    def effective(self, config: str, source: str) -> EffectiveRuntimes:
        view, origin = effective_view(config, source)
        return EffectiveRuntimes(view.default, view.runtimes, origin, view.other)

    def low_level_runtime(self, effective: EffectiveRuntimes, name: str) -> Optional[str]:
        """The runc shim's ``options.BinaryName``, else ``runc`` in $PATH; None for other shims (kata...)."""
        entry = effective.runtimes.get(name)
        return None if entry is None else runc_shim_binary(entry.get("runtime_type"), entry.get("options"))


ENGINE: Engine = Containerd()
