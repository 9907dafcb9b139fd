"""CRI-O: one drop-in file of our own in crio.conf.d, inheriting the default runtime's settings.

How CRI-O reads its configuration (cri-o ``pkg/config/config.go``, ``UpdateFromFile`` and
``UpdateFromPath``): crio.conf first, then **every** file below the drop-in directory — any
name, not only ``*.conf`` (NVIDIA writes ``99-nvidia.toml``), subdirectories too — in
``filepath.Walk`` order (lexical by byte, depth first). Each file is decoded over the result so
far: tables merge key by key, but an entry of a map such as ``crio.runtime.runtimes.<name>``
is replaced whole by a later file that names it. With no ``default_runtime`` anywhere CRI-O runs
its built-in default, ``crun`` since 1.31 (``runc`` before), found in $PATH.

The user's files are never touched: unconfigure deletes our drop-in (only if it is ours), and
the previous default comes back by itself.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, Optional, Tuple

from chts.base.config_files import (
    deep_merge,
    foreign_runtime,
    parse_toml,
    read_config_text,
    table_at,
    typed_value,
    without_empty_tables,
)
from chts.base.file_edit import FileEdit, Plan
from chts.base.text_files import toml_decode_error, toml_loads
from chts.base.toml_edit import tables_text
from chts.engines import EffectiveRuntimes, Engine, RuntimeRequest
from chts.engines.runtime_binaries import resolve_binary, run_engine_command
from chts.errors import ToolkitError

WHAT = "CRI-O config"
RUNTIME_KEYS = ("crio", "runtime")
RUNTIMES_KEYS = (*RUNTIME_KEYS, "runtimes")
BUILTIN_DEFAULT = "crun"  # CRI-O >= 1.31; the default runtime entry CRI-O adds when no file names one
BUILTIN_NAMES = ("crun", "runc")  # the built-in entry is runc before 1.31: a default of either name needs no table
# what CRI-O copies from the default runtime into one with `inherit_default_runtime = true`
INHERITED_KEYS = ("runtime_path", "runtime_type", "runtime_config_path", "runtime_root")
DROP_IN_MARK = "# Written by `container-hooks-ctk runtime configure --runtime=crio`"
DROP_IN_HEADER = (
    f"{DROP_IN_MARK}; `runtime unconfigure` deletes this file.\n"
    "# Settings other than runtime_path are copied from the runtime that was the default.\n\n"
)

Layers = List[Tuple[str, Dict[str, Any]]]


def default_drop_in_dir(config: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(config)), "crio.conf.d")


def drop_in_dir(request: RuntimeRequest) -> str:
    return request.drop_in_dir or default_drop_in_dir(request.config)


def drop_in_path(request: RuntimeRequest) -> str:
    # 99-: read after the user's usual drop-ins (10-crio.conf, 10-crun.conf); a later one is reported
    return os.path.join(drop_in_dir(request), f"99-{request.name}.conf")


def drop_in_files(directory: str) -> List[str]:
    """Every file CRI-O reads below ``directory``, in its order (Go's filepath.Walk: sorted, depth first).

    Walk does not follow a symlink to a directory: CRI-O reads it as a file and fails, and so do we.
    """
    if not os.path.lexists(directory):
        return []
    if not os.path.isdir(directory) or os.path.islink(directory):
        return [directory]
    files: List[str] = []
    for name in sorted(os.listdir(directory), key=os.fsencode):
        path = os.path.join(directory, name)
        files += drop_in_files(path) if os.path.isdir(path) and not os.path.islink(path) else [path]
    return files


def config_layers(config: str, directory: str, leave_out: Optional[str] = None) -> Layers:
    """crio.conf then every drop-in (but ``leave_out``), each parsed and checked, in CRI-O's order."""
    layers = []
    for path in [config, *drop_in_files(directory)]:
        if path == leave_out:
            continue
        text = read_config_text(path, WHAT)
        if text is not None:
            document = parse_toml(text, path)
            runtime = table_at(document, RUNTIME_KEYS, path)
            typed_value(runtime, "default_runtime", str, RUNTIME_KEYS, path)
            for name in table_at(document, RUNTIMES_KEYS, path):
                table_at(document, (*RUNTIMES_KEYS, name), path)
            layers.append((path, document))
    return layers


def merged(layers: Layers) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """The settings CRI-O ends up with, and its runtimes (each entry as the last file naming it wrote it)."""
    result: Dict[str, Any] = {}
    runtimes: Dict[str, Dict[str, Any]] = {}
    for _, document in layers:
        document = copy.deepcopy(document)
        runtimes.update(table_at(document, RUNTIME_KEYS, "").pop("runtimes", {}))
        result = deep_merge(result, document)
    return result, runtimes


def with_inheritance(runtimes: Dict[str, Dict[str, Any]], default: str) -> Dict[str, Dict[str, Any]]:
    """Runtimes with ``inherit_default_runtime = true`` as CRI-O runs them: the default's binary, type and root."""
    resolved = {}
    source = runtimes.get(default, {})
    for name, entry in runtimes.items():
        if entry.get("inherit_default_runtime") is True and name != default:
            entry = {k: v for k, v in entry.items() if k != "inherit_default_runtime"}
            entry.update({key: source[key] for key in INHERITED_KEYS if key in source})
        resolved[name] = entry
    return resolved


def file_view(config: str, directory: str, leave_out: Optional[str] = None) -> Tuple[Layers, EffectiveRuntimes]:
    layers = config_layers(config, directory, leave_out)
    settings, runtimes = merged(layers)
    runtime = table_at(settings, RUNTIME_KEYS, config)
    default = runtime.pop("default_runtime", None) or BUILTIN_DEFAULT
    # CRI-O's built-in entry (everything default, the binary from $PATH) is in the map whatever the
    # default: crun, or runc on CRI-O < 1.31, which a file naming runc as default without a table implies
    named = {table_at(doc, RUNTIME_KEYS, path).get("default_runtime") for path, doc in layers}
    for builtin in (name for name in BUILTIN_NAMES if name == BUILTIN_DEFAULT or name in named):
        runtimes.setdefault(builtin, {})
    return layers, EffectiveRuntimes(
        default, with_inheritance(runtimes, default), "file", without_empty_tables(settings)
    )


def command_view(config: str, directory: str) -> Optional[EffectiveRuntimes]:
    """``crio --config F --config-dir D config``: CRI-O's own reading, printed as TOML (None: no crio here).

    Values equal to CRI-O's defaults are printed commented out, so a missing ``default_runtime``
    is read from its commented line and missing runtimes mean the built-in one.
    """
    what = "crio config"
    done = run_engine_command(["crio", "--config", config, "--config-dir", directory, "config"], what, check=True)
    return None if done is None else printed_view(done.stdout, what)


def printed_view(text: str, what: str) -> EffectiveRuntimes:
    """What `crio config` printed (``text``), as CRI-O runs it: its default, its runtimes, the rest."""
    try:
        document = toml_loads(text)
    except toml_decode_error() as exc:
        raise ToolkitError(f"{what}: printed what is not TOML ({exc})") from None
    settings, runtimes = merged([(what, document)])
    runtime = table_at(settings, RUNTIME_KEYS, what)
    default = runtime.pop("default_runtime", None) or commented_value(text, "default_runtime")
    default = default or BUILTIN_DEFAULT
    if not runtimes:
        runtimes[default] = {}
    return EffectiveRuntimes(default, with_inheritance(runtimes, default), what, without_empty_tables(settings))


def commented_value(text: str, key: str) -> Optional[str]:
    for line in text.splitlines():
        stripped = line.lstrip("# \t")
        if line.startswith("#") and stripped.startswith(f"{key} ="):
            try:
                value = toml_loads(stripped).get(key)
            except toml_decode_error():
                return None
            return value if isinstance(value, str) else None
    return None


def template_for(runtimes: Dict[str, Dict[str, Any]], default: str) -> Dict[str, Any]:
    """The settings our runtime copies: the default's, else runc's, unless it is a VM runtime (kata...)."""
    for name in (default, "runc"):
        candidate = runtimes.get(name)
        if candidate is not None and candidate.get("runtime_type", "oci") != "vm":
            return copy.deepcopy(candidate)
    return {}


def read_after(path: str, ours: str) -> bool:
    """Whether CRI-O reads drop-in ``path`` after ``ours`` (a file directly in the drop-in directory)."""
    first = os.path.relpath(path, os.path.dirname(ours)).split(os.sep)[0]
    return os.fsencode(first) > os.fsencode(os.path.basename(ours))


def is_ours(text: str) -> bool:
    return text.startswith(DROP_IN_MARK)


class Crio:
    name = "crio"
    default_config = "/etc/crio/crio.conf"

    def __init__(self) -> None:
        # effective(config) has no --drop-in-dir; configure/unconfigure tell it where this command's is
        self.drop_in_dirs: Dict[str, str] = {}

    def remember(self, request: RuntimeRequest) -> None:
        self.drop_in_dirs[os.path.abspath(request.config)] = drop_in_dir(request)

    def configure(self, request: RuntimeRequest) -> Plan:
        self.remember(request)
        ours = drop_in_path(request)
        old = read_config_text(ours, WHAT)
        if old is not None and not is_ours(old):
            raise ToolkitError(f"{ours}: exists and was not written by this tool; choose another --runtime-name")
        layers, view = file_view(request.config, drop_in_dir(request), leave_out=ours)
        if request.name in view.runtimes:
            owner = next(path for path, doc in layers if request.name in table_at(doc, RUNTIMES_KEYS, path))
            raise foreign_runtime(owner, f"runtime {request.name!r}")
        assert view.default is not None
        entry = {**template_for(view.runtimes, view.default), "runtime_path": request.path}
        table: Dict[str, Any] = {"runtimes": {request.name: entry}}
        if request.set_as_default:
            table = {"default_runtime": request.name, **table}
        text = DROP_IN_HEADER + tables_text(RUNTIME_KEYS, table)
        notes = []
        if request.set_as_default:
            later = [
                p
                for p, doc in layers[1:]
                if read_after(p, ours) and "default_runtime" in table_at(doc, RUNTIME_KEYS, p)
            ]
            if later:
                notes.append(f"warning: {later[-1]} is read after {ours} and sets default_runtime, which wins")
        edit = FileEdit(ours, None if old is None else old.encode(), text.encode(), backup=False)
        return Plan([edit], notes)

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        self.remember(request)
        ours = drop_in_path(request)
        old = read_config_text(ours, WHAT)
        if old is None:
            return Plan([], [f"{ours}: does not exist; nothing to remove"])
        if not is_ours(old):
            return Plan([], [f"{ours}: was not written by this tool; left as it is"])
        return Plan([FileEdit(ours, old.encode(), None, backup=False)], [])

    def effective(self, config: str, source: str) -> EffectiveRuntimes:
        directory = self.drop_in_dirs.get(os.path.abspath(config)) or default_drop_in_dir(config)
        if source != "file":
            view = command_view(config, directory)
            if view is not None:
                return view
            if source == "command":
                raise ToolkitError("crio is not installed here, so it cannot be asked: use --config-source file")
        return file_view(config, directory)[1]

    def low_level_runtime(self, effective: EffectiveRuntimes, name: str) -> Optional[str]:
        """``runtime_path``, else the runtime's name in $PATH (CRI-O's rule); None for VM runtimes."""
        entry = effective.runtimes.get(name)
        if entry is None or entry.get("runtime_type") == "vm":
            return None
        path = entry.get("runtime_path")
        return resolve_binary(path if isinstance(path, str) and path else name)

    def apply_hint(self, request: RuntimeRequest) -> str:
        return "restart CRI-O to apply it (e.g. `systemctl restart crio`); running containers keep running"

    def reload(self, pid_file: str) -> str:
        raise ToolkitError("this tool does not reload CRI-O: restart it (e.g. `systemctl restart crio`)")


ENGINE: Engine = Crio()
