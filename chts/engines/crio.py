"""CRI-O: one drop-in file of our own in crio.conf.d, inheriting the default runtime's settings.

CRI-O merges crio.conf.d drop-ins over crio.conf key by key, so the user's files are never
touched: unconfigure deletes the drop-in, and the previous default comes back by itself.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, Tuple

from chts.engines import FileEdit, Plan, RuntimeRequest
from chts.engines.engine_files import deep_merge, foreign_runtime, parse_toml, read_config_text, table_at, typed_value
from chts.engines.toml_edit import tables_text
from chts.errors import ToolkitError

WHAT = "CRI-O config"
RUNTIME_KEYS = ("crio", "runtime")
RUNTIMES_KEYS = (*RUNTIME_KEYS, "runtimes")
DROP_IN_HEADER = (
    "# Written by `container-hooks-ctk runtime configure --runtime=crio`; "
    "`runtime unconfigure` deletes this file.\n# Settings other than runtime_path and runtime_type are "
    "copied from the runtime that was the default.\n\n"
)


def drop_in_dir(request: RuntimeRequest) -> str:
    return request.drop_in_dir or os.path.join(os.path.dirname(os.path.abspath(request.config)), "crio.conf.d")


def drop_in_path(request: RuntimeRequest) -> str:
    # 99-: read after the user's drop-ins, which CRI-O applies in lexical order
    return os.path.join(drop_in_dir(request), f"99-{request.name}.conf")


def config_layers(request: RuntimeRequest) -> List[Tuple[str, Dict[str, Any]]]:
    """crio.conf then every other drop-in, each parsed, in the order CRI-O applies them."""
    ours = drop_in_path(request)
    paths = [request.config]
    directory = drop_in_dir(request)
    if os.path.isdir(directory):
        names = sorted(name for name in os.listdir(directory) if name.endswith(".conf") and not name.startswith("."))
        paths += [os.path.join(directory, name) for name in names if os.path.join(directory, name) != ours]
    layers = []
    for path in paths:
        text = read_config_text(path, WHAT)
        if text is not None:
            document = parse_toml(text, path)
            runtime = table_at(document, RUNTIME_KEYS, path)
            typed_value(runtime, "default_runtime", str, RUNTIME_KEYS, path)
            for name in table_at(document, RUNTIMES_KEYS, path):
                table_at(document, (*RUNTIMES_KEYS, name), path)
            layers.append((path, document))
    return layers


def merged(layers: List[Tuple[str, Dict[str, Any]]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for _, document in layers:
        result = deep_merge(result, document)
    return result


class Crio:
    name = "crio"
    default_config = "/etc/crio/crio.conf"

    def configure(self, request: RuntimeRequest) -> Plan:
        ours = drop_in_path(request)
        old = read_config_text(ours, WHAT)
        if old is not None:
            parse_toml(old, ours)
        layers = config_layers(request)
        runtime = table_at(merged(layers), RUNTIME_KEYS, request.config)
        runtimes = runtime.get("runtimes", {})
        if request.name in runtimes:
            owner = next(path for path, doc in layers if request.name in table_at(doc, RUNTIMES_KEYS, path))
            raise foreign_runtime(owner, f"runtime {request.name!r}")
        default = runtime.get("default_runtime", "runc")
        template: Dict[str, Any] = {}
        for name in (default, "runc"):
            candidate = runtimes.get(name, {})
            if candidate and candidate.get("runtime_type", "oci") == "oci":
                template = copy.deepcopy(candidate)
                break
        entry = {**template, "runtime_path": request.path, "runtime_type": "oci"}
        ours_table: Dict[str, Any] = {"runtimes": {request.name: entry}}
        if request.set_as_default:
            ours_table = {"default_runtime": request.name, **ours_table}
        text = DROP_IN_HEADER + tables_text(RUNTIME_KEYS, ours_table)
        notes = []
        if request.set_as_default:
            after_ours = [(path, doc) for path, doc in layers[1:] if os.path.basename(path) > os.path.basename(ours)]
            later = [path for path, doc in after_ours if "default_runtime" in table_at(doc, RUNTIME_KEYS, path)]
            if later:
                notes.append(f"warning: {later[-1]} is read after {ours} and sets default_runtime, which wins")
        edit = FileEdit(ours, None if old is None else old.encode(), text.encode(), backup=False)
        return Plan([edit], notes)

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        ours = drop_in_path(request)
        old = read_config_text(ours, WHAT)
        if old is None:
            return Plan([], [f"{ours}: does not exist; nothing to remove"])
        return Plan([FileEdit(ours, old.encode(), None, backup=False)], [])

    def apply_hint(self, request: RuntimeRequest) -> str:
        return "restart CRI-O to apply it (e.g. `systemctl restart crio`); running containers keep running"

    def reload(self, pid_file: str) -> str:
        raise ToolkitError("this tool does not reload CRI-O: restart it (e.g. `systemctl restart crio`)")


ENGINE = Crio()
