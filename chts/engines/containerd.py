"""containerd: add the shim as a CRI runtime by a marked, minimal edit of config.toml itself.

Why not a drop-in under ``imports``: containerd 1.x replaces a whole plugin table from an imported
file instead of merging it (containerd#5837, seen here on 1.6), so a drop-in touching the CRI
plugin would silently drop the user's ``sandbox_image``, their runc runtime and everything else
in that plugin. Editing the main file in place, with marked lines, works on every version.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Tuple

from chts.engines import Plan, RuntimeRequest
from chts.engines.engine_files import foreign_runtime, table_at, typed_value
from chts.engines.toml_edit import (
    append_block,
    marked_edit,
    set_in,
    set_key_expecting,
    tables_text,
    unmarked_edit,
    verified,
)
from chts.errors import ToolkitError

RUNC_V2 = "io.containerd.runc.v2"

# config `version` -> the plugin holding `containerd.runtimes` and `containerd.default_runtime_name`
CRI_RUNTIME_PLUGIN = {
    1: ("plugins", "cri"),
    2: ("plugins", "io.containerd.grpc.v1.cri"),
    3: ("plugins", "io.containerd.cri.v1.runtime"),  # containerd 2.x
}

MINIMAL_CONFIG = """\
# containerd config written by `container-hooks-ctk runtime configure` (there was none).
version = 2

# containerd's own default runtime, spelled out: with any runtime configured, define runc too.
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
"""

WHAT = "containerd config"


def cri_table_keys(document: Dict[str, Any], path: str) -> Tuple[str, ...]:
    version = document.get("version", 1)  # containerd reads a file without `version` as version 1
    if isinstance(version, bool) or not isinstance(version, int):
        raise ToolkitError(f"{path}: version must be an integer (1, 2 or 3), found {version!r}")
    if version not in CRI_RUNTIME_PLUGIN:
        raise ToolkitError(f"{path}: config version {version} is not one this tool knows (1, 2 or 3)")
    return (*CRI_RUNTIME_PLUGIN[version], "containerd")


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
    runtimes = containerd.get("runtimes", {})
    default = containerd.get("default_runtime_name") or "runc"
    for name in (default, "runc"):
        candidate = runtimes.get(name, {})
        if candidate.get("runtime_type", RUNC_V2) == RUNC_V2 and candidate:
            return copy.deepcopy(candidate)
    return {}


class Containerd:
    name = "containerd"
    default_config = "/etc/containerd/config.toml"

    def configure(self, request: RuntimeRequest) -> Plan:
        def edit(text: str, document: Dict[str, Any]) -> str:
            path = request.config
            keys, containerd = checked_tables(document, path)
            if request.name in containerd.get("runtimes", {}):
                raise foreign_runtime(path, f"runtime {request.name!r}")
            entry = runtime_template(containerd)
            entry["runtime_type"] = RUNC_V2
            entry["options"] = {**entry.get("options", {}), "BinaryName": request.path}
            runtime_keys = (*keys, "runtimes", request.name)
            expected = copy.deepcopy(document)
            set_in(expected, runtime_keys, entry)
            new = append_block(text, tables_text(runtime_keys, entry))
            if request.set_as_default:
                new = set_key_expecting(new, expected, keys, "default_runtime_name", request.name)
            return verified(new, expected, path)

        return marked_edit(request.config, WHAT, MINIMAL_CONFIG, edit)

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        return unmarked_edit(request.config, WHAT, lambda document: checked_tables(document, request.config))

    def apply_hint(self, request: RuntimeRequest) -> str:
        return "restart containerd to apply it (e.g. `systemctl restart containerd`); running containers keep running"

    def reload(self, pid_file: str) -> str:
        raise ToolkitError("containerd cannot reload its config: restart it (e.g. `systemctl restart containerd`)")


ENGINE = Containerd()
