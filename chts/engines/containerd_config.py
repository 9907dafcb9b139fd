"""What containerd really runs with: its built-in CRI defaults, the file, ``imports``, config versions 1-3.

Two ways to know it. ``file``: read the files as containerd does (sources: containerd 1.6
``services/server/config`` and ``pkg/cri/config``, 2.x ``cmd/containerd/server/config`` and
``internal/cri/config``). ``command``: ``containerd --config F config dump``, containerd's own
parser, which prints the merged configuration with every default filled in. Either way the
result is reduced to what `runtime configure` must keep right: the CRI runtimes, the default
runtime, and everything else (which must not change).

Facts the reading follows:
* containerd 1.x merges an imported file by replacing each plugin table it names (containerd#5837);
  2.x merges plugin tables key by key (since 2.0). Other top-level keys: later non-zero values win,
  lists are appended.
* A relative import is relative to the importing file; a glob is matched as written on 1.x (from
  containerd's working directory) and relative to the importing file on 2.x. A missing, non-glob
  import stops containerd.
* The CRI plugin's key follows ``version``: 1 ``cri``, 2 ``io.containerd.grpc.v1.cri``, 3
  ``io.containerd.cri.v1.runtime``; 2.x migrates version-2 files to version 3 as it reads them, but
  of a version-1 file it only renames the plugin: its CRI runtimes are ignored ("Ignoring unknown
  key"), so on 2.x a version-1 file has the built-in runtimes only.
* ``config dump`` leaves out the settings of a disabled plugin: with the CRI plugin in
  ``disabled_plugins`` the runtimes are read from the files (what containerd runs once it is enabled).
* A ``runtimes`` table replaces the built-in one (runc) on 1.x, where the CRI plugin then refuses
  to load unless the default runtime is in it; 2.x decodes into the built-in map, so runc stays.
* 1.x only: a ``default_runtime`` table with a ``runtime_type`` becomes runtime ``default`` and the
  default (``untrusted_workload_runtime`` likewise becomes ``untrusted``).
* Go reads an absent key as its zero value: ``""``, ``0``, ``false`` and empty tables mean "unset",
  so they are dropped before comparing (the dump spells them all out; a file rarely does).
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import glob
import os
import shutil
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from chts.base.config_files import deep_merge, parse_toml, read_config_text
from chts.engines.runtime_binaries import run_engine_command, search_path
from chts.errors import ToolkitError

WHAT = "containerd config"
RUNC_V2 = "io.containerd.runc.v2"
V2_CRI = "io.containerd.grpc.v1.cri"
CRI_PLUGIN = {1: "cri", 2: V2_CRI, 3: "io.containerd.cri.v1.runtime"}
# names under which `disabled_plugins` turns the CRI plugin (and so every CRI runtime) off
CRI_PLUGIN_NAMES = {"cri", V2_CRI, "io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri.runtime"}
BUILTIN_RUNTIMES = {"runc": {"runtime_type": RUNC_V2}}  # its built-in options are all zero values
DEFAULT_RUNTIME = "runc"
# 1.x deprecated tables that become runtimes: table -> runtime name
LEGACY_RUNTIMES = {"default_runtime": "default", "untrusted_workload_runtime": "untrusted"}
# runc shim options: containerd matches their names without regard to case (kubespray wrote
# `binaryName`, `systemdCgroup`), so the view spells them one way
RUNC_OPTIONS = {
    name.lower(): name
    for name in (
        "BinaryName", "CriuImagePath", "CriuPath", "CriuWorkPath", "IoGid", "IoUid", "NoNewKeyring",
        "NoPivotRoot", "Root", "ShimCgroup", "SystemdCgroup", "TaskApiAddress", "TaskApiVersion",
    )
}  # fmt: skip
# what an empty sandbox mode means: 1.7 fills it into every runtime as it starts (``sandbox_mode``,
# so the dump shows it only for the built-in runc), 2.x likewise (``sandboxer``)
DEFAULT_SANDBOXER = "podsandbox"
SANDBOX_KEYS = ("sandbox_mode", "sandboxer")


class CriView(NamedTuple):
    """The CRI plugin as containerd will run it."""

    default: Optional[str]
    runtimes: Dict[str, Dict[str, Any]]
    other: Dict[str, Any]  # the rest of the configuration, zero values dropped
    disabled: bool


def containerd_binary() -> Optional[str]:
    return shutil.which("containerd", path=search_path())


@functools.lru_cache(maxsize=None)
def binary_major(binary: str) -> Optional[int]:
    """containerd's major version from ``containerd --version`` (``... 1.6.20~ds1 ...``, ``... v2.0.0 ...``)."""
    try:
        done = run_engine_command([binary, "--version"], f"{binary} --version")
    except ToolkitError:
        return None
    fields = done.stdout.split() if done is not None else []
    if len(fields) < 3 or not fields[2].lstrip("v")[:1].isdigit():
        return None
    return int(fields[2].lstrip("v").split(".")[0])


def config_version(document: Dict[str, Any], path: str) -> int:
    version: Any = document.get("version", 1)  # containerd reads a file without `version` as version 1
    if isinstance(version, bool) or not isinstance(version, int):
        raise ToolkitError(f"{path}: version must be an integer (1, 2 or 3), found {version!r}")
    if version not in CRI_PLUGIN:
        raise ToolkitError(f"{path}: config version {version} is not one this tool knows (1, 2 or 3)")
    return int(version)


def reader_major(document: Dict[str, Any], path: str) -> int:
    """The containerd major version whose rules apply: the installed binary's, else what the file is written for."""
    binary = containerd_binary()
    major = binary_major(binary) if binary else None
    if major is not None:
        return int(major)
    return 2 if config_version(document, path) >= 3 else 1


def imported_paths(parent: str, imports: Any, major: int, planned: Sequence[str] = ()) -> List[str]:
    """The files ``imports`` names, globs expanded as containerd does; ``planned`` files count as existing."""
    if not isinstance(imports, list) or not all(isinstance(item, str) for item in imports):
        raise ToolkitError(f"{parent}: imports must be a list of strings")
    paths = []
    for item in imports:
        path = os.path.normpath(item)
        if "*" in item:
            if major >= 2 and not os.path.isabs(path):
                path = os.path.join(os.path.dirname(parent), path)
            pattern = item if major < 2 else path
            matches = set(glob.glob(pattern)) | {p for p in planned if fnmatch.fnmatch(p, pattern)}
            paths += sorted(matches)  # Go's filepath.Glob sorts too
            continue
        paths.append(path if os.path.isabs(path) else os.path.join(os.path.dirname(parent), path))
    return paths


def migrated(document: Dict[str, Any], path: str) -> Dict[str, Any]:
    """A file as containerd 2.x reads it: the CRI plugin's runtime settings moved to the version-3 key."""
    version = config_version(document, path)
    if version >= 3:
        return document
    document = copy.deepcopy(document)
    plugins = document.setdefault("plugins", {})
    cri = plugins.pop(CRI_PLUGIN[version], None)
    if version == 1 and isinstance(cri, dict):
        plugins[V2_CRI] = cri  # renamed only: 2.x ignores its runtime, image and cni settings (measured, 2.1.9)
    elif isinstance(cri, dict):
        runtime = plugins.setdefault(CRI_PLUGIN[3], {})
        for key in ("containerd", "cni"):
            if key in cri:
                runtime[key] = deep_merge(runtime.get(key, {}), cri.pop(key))
        if cri:
            plugins[V2_CRI] = cri  # the image and grpc settings stay with the service plugin
    document["version"] = 3
    return document


def merge_import(into: Dict[str, Any], imported: Dict[str, Any], major: int) -> Dict[str, Any]:
    result = dict(into)
    for key, value in imported.items():
        current = result.get(key)
        if key == "plugins" and isinstance(value, dict) and isinstance(current, dict):
            result[key] = deep_merge(current, value) if major >= 2 else {**current, **value}
        elif isinstance(value, dict) and isinstance(current, dict):
            result[key] = deep_merge(current, value)
        elif isinstance(value, list) and isinstance(current, list):
            result[key] = current + [item for item in value if major < 2 or item not in current]
        elif value not in ("", 0, False, None) or key not in result:
            result[key] = value
    return result


def load_file(path: str, required: bool) -> Optional[Dict[str, Any]]:
    text = read_config_text(path, WHAT)
    if text is None:
        if required:
            raise ToolkitError(f"{path}: imported but missing: containerd would refuse to start")
        return None
    return parse_toml(text, path)


def read_files(
    config: str, replaced: Optional[Dict[str, Optional[Dict[str, Any]]]] = None
) -> Tuple[Dict[str, Any], int, List[str]]:
    """The main file and every import merged as containerd does, the major version applied, and the load order.

    ``replaced`` maps a path to the document to use instead of the file (None: as if it did not
    exist), so a planned drop-in can be judged before it is written.
    """
    replaced = replaced or {}

    def load(path: str, required: bool) -> Optional[Dict[str, Any]]:
        return replaced[path] if path in replaced else load_file(path, required)

    main = load(config, required=False) or {}
    major = reader_major(main, config)
    merged: Dict[str, Any] = {}
    order: List[str] = []
    pending = [config]
    while pending:
        path, pending = pending[0], pending[1:]
        if path in order:
            continue
        document = main if path == config else load(path, required=True)
        if document is None:
            continue
        if major >= 2:
            document = migrated(document, path)
        merged = merge_import(merged, document, major) if order else copy.deepcopy(document)
        planned = [p for p, planned_document in replaced.items() if planned_document is not None]
        pending += imported_paths(path, document.get("imports", []), major, planned)
        order.append(path)
    if major >= 2:
        merged["version"] = 3
    return merged, major, order


def dump(config: str) -> Dict[str, Any]:
    """``containerd --config F config dump``, parsed; a file containerd rejects is an error naming it."""
    binary = containerd_binary()
    if binary is None:
        raise ToolkitError("containerd is not on PATH: --config-source=command needs it (or use --config-source=file)")
    source = config if os.path.lexists(config) else os.devnull  # containerd's defaults, as with no file
    done = run_engine_command([binary, "--config", source, "config", "dump"], f"{config}: containerd", check=True)
    assert done is not None  # the binary was found above
    return parse_toml(done.stdout, f"{binary} config dump")


def without_zero_values(value: Any) -> Any:
    """``value`` with Go's zero values (unset, to containerd) left out, recursively."""
    if isinstance(value, dict):
        kept = {key: without_zero_values(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ("", 0, False, None, [], {})}
    return value


def runtime_settings(runtime: Any, version: int) -> Dict[str, Any]:
    settings: Dict[str, Any] = without_zero_values(runtime) if isinstance(runtime, dict) else {}
    settings.setdefault("runtime_type", RUNC_V2)  # an empty runtime_type runs containerd's default, runc.v2
    options = settings.get("options")
    if isinstance(options, dict):
        settings["options"] = {RUNC_OPTIONS.get(key.lower(), key): value for key, value in options.items()}
    for key in SANDBOX_KEYS:
        if settings.get(key) == DEFAULT_SANDBOXER:
            del settings[key]
    return settings


def cri_view(document: Dict[str, Any], source: str, major: int) -> CriView:
    """The CRI runtimes, default and everything else from a merged (or dumped) configuration."""
    version = config_version(document, source)
    if major >= 2 and version < 3:
        document = migrated(document, source)
        version = 3
    plugin_key = CRI_PLUGIN[version] if major >= 2 or version < 3 else V2_CRI  # 1.x reads a v3 file as v2
    disabled_list = document.get("disabled_plugins", [])
    disabled = isinstance(disabled_list, list) and bool(CRI_PLUGIN_NAMES & set(map(str, disabled_list)))
    plugins = document.get("plugins", {})
    cri = plugins.get(plugin_key, {}) if isinstance(plugins, dict) else {}
    containerd = cri.get("containerd", {}) if isinstance(cri, dict) else {}
    containerd = containerd if isinstance(containerd, dict) else {}
    listed = containerd.get("runtimes")
    if isinstance(listed, dict):
        # 1.x: the file's table replaces the built-in one; 2.x decodes into it
        base = copy.deepcopy(BUILTIN_RUNTIMES) if major >= 2 else {}
        runtimes_raw = deep_merge(base, listed)
    else:
        runtimes_raw = copy.deepcopy(BUILTIN_RUNTIMES)
    default = containerd.get("default_runtime_name", DEFAULT_RUNTIME)
    if version < 3 and major < 2:
        for table, name in LEGACY_RUNTIMES.items():
            legacy = containerd.get(table)
            if isinstance(legacy, dict) and legacy.get("runtime_type"):
                runtimes_raw[name] = legacy
                if name == "default":
                    default = "default"
    runtimes = {name: runtime_settings(runtime, version) for name, runtime in runtimes_raw.items()}
    other = copy.deepcopy(document)
    other.pop("imports", None)
    other.pop("version", None)
    other_containerd = other.get("plugins", {}).get(plugin_key, {}).get("containerd", {})
    for key in ("runtimes", "default_runtime_name"):
        other_containerd.pop(key, None)
    return CriView(default if isinstance(default, str) else None, runtimes, without_zero_values(other), disabled)


def dumped_view(text: str, what: str) -> CriView:
    """The CRI view of what a containerd printed as `config dump` (``text``): 2.x dumps version 3, 1.x version 2."""
    document = parse_toml(text, what)
    return cri_view(document, what, 2 if document.get("version") == 3 else 1)


def effective_view(config: str, source: str) -> Tuple[CriView, str]:
    """The CRI view of ``config`` and where it came from (``file`` or the command), per ``--config-source``."""
    if source not in ("auto", "file", "command"):
        raise ToolkitError(f"--config-source must be auto, file or command, not {source!r}")
    if source == "command" or (source == "auto" and containerd_binary() is not None):
        document = dump(config)
        binary = containerd_binary()
        major = (binary_major(binary) if binary else None) or (2 if document.get("version") == 3 else 1)
        view = cri_view(document, "containerd config dump", major)
        if not view.disabled:
            return view, "containerd config dump"
        files, major, _ = read_files(config)  # the dump has no CRI settings at all: the files say what they will be
        return cri_view(files, config, major), "file (containerd config dump omits the disabled CRI plugin)"
    document, major, _ = read_files(config)
    return cri_view(document, config, major), "file"
