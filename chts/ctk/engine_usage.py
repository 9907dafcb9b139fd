"""Which container engines on this host run the shim: read-only looks at their config files, for `ctk check`.

Each reader returns the engine's runtimes (name -> binary) and its default runtime,
from the files the engine itself reads (main file plus drop-ins); nothing is written.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from chts import SHIM
from chts.engines.engine_files import parse_json_object, parse_toml, read_config_text

Runtimes = Dict[str, str]  # runtime name -> the binary the engine runs


class EngineUsage(NamedTuple):
    engine: str
    files: List[str]  # the files read (empty: the engine has no config here)
    runtimes: Runtimes  # only those that run the shim
    default: Optional[str]


def toml_files(main: str, drop_in_dir: str, pattern: str = "*.conf") -> List[Tuple[str, Dict[str, Any]]]:
    """The main file and its drop-ins (sorted, as the engines read them), parsed; missing ones left out."""
    paths = [main, *sorted(glob.glob(os.path.join(drop_in_dir, pattern)))]
    parsed = []
    for path in paths:
        text = read_config_text(path, "TOML")
        if text is not None:
            parsed.append((path, parse_toml(text, path)))
    return parsed


def table(document: Any, *keys: str) -> Dict[str, Any]:
    """``document[k1][k2]...`` when every step is a table, else an empty one (a looser file is not ours to judge)."""
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document if isinstance(document, dict) else {}


def docker(path: str) -> Tuple[List[str], Runtimes, Optional[str]]:
    text = read_config_text(path, "JSON")
    if text is None:
        return [], {}, None
    data = parse_json_object(text, path)
    runtimes = {name: spec.get("path", "") for name, spec in table(data, "runtimes").items() if isinstance(spec, dict)}
    default = data.get("default-runtime")
    return [path], runtimes, default if isinstance(default, str) else None


def containerd(path: str) -> Tuple[List[str], Runtimes, Optional[str]]:
    text = read_config_text(path, "TOML")
    if text is None:
        return [], {}, None
    layers = [(path, parse_toml(text, path))]
    imports = layers[0][1].get("imports", [])
    for pattern in imports if isinstance(imports, list) else []:
        pattern = pattern if os.path.isabs(str(pattern)) else os.path.join(os.path.dirname(path), str(pattern))
        for imported in sorted(glob.glob(pattern)):
            imported_text = read_config_text(imported, "TOML")
            if imported_text is not None:
                layers.append((imported, parse_toml(imported_text, imported)))
    runtimes: Runtimes = {}
    default: Optional[str] = None

    # The CRI plugin's table moved between config versions 1, 2 and 3: look wherever `runtimes` is.
    def walk(node: Dict[str, Any]) -> None:
        nonlocal default
        for key, value in node.items():
            if key == "default_runtime_name" and isinstance(value, str):
                default = value
            if not isinstance(value, dict):
                continue
            if key == "runtimes":
                for name, spec in value.items():
                    binary = table(spec, "options").get("BinaryName")
                    if isinstance(binary, str):
                        runtimes[name] = binary
            walk(value)

    for _, document in layers:
        walk(document)
    return [name for name, _ in layers], runtimes, default


def layered(
    main: str, drop_ins: str, section: Tuple[str, ...], binary_of: Callable[[Any], Any], default_key: str
) -> Tuple[List[str], Runtimes, Optional[str]]:
    """Podman and CRI-O: a main file plus `*.conf` drop-ins, later files overriding earlier ones."""
    runtimes: Runtimes = {}
    default: Optional[str] = None
    files = toml_files(main, drop_ins)
    for _, document in files:
        for name, spec in table(document, *section, "runtimes").items():
            binary = binary_of(spec)
            if isinstance(binary, str):
                runtimes[name] = binary
        value = table(document, *section).get(default_key)
        default = value if isinstance(value, str) else default
    return [name for name, _ in files], runtimes, default


def podman(path: str) -> Tuple[List[str], Runtimes, Optional[str]]:
    # [engine.runtimes] name = ["/candidate/path", ...]: the first existing path is used.
    def binary(spec: Any) -> Optional[str]:
        paths = [p for p in spec if isinstance(p, str)] if isinstance(spec, list) else []
        return next((p for p in paths if os.path.exists(p)), paths[0] if paths else None)

    return layered(path, os.path.join(os.path.dirname(path), "containers.conf.d"), ("engine",), binary, "runtime")


def crio(path: str) -> Tuple[List[str], Runtimes, Optional[str]]:
    drop_ins = os.path.join(os.path.dirname(path), "crio.conf.d")
    return layered(path, drop_ins, ("crio", "runtime"), lambda spec: table(spec).get("runtime_path"), "default_runtime")


READERS: Dict[str, Callable[[str], Tuple[List[str], Runtimes, Optional[str]]]] = {
    "docker": docker,
    "containerd": containerd,
    "crio": crio,
    "podman": podman,
}


def runs_shim(binary: str, shims: List[str]) -> bool:
    """A runtime binary that is the shim: by its name, or the same file as a shim we know of."""
    if os.path.basename(binary) == SHIM:
        return True
    real = os.path.realpath(binary)
    return any(os.path.exists(shim) and real == os.path.realpath(shim) for shim in shims)


def engine_usage(engine: str, path: str, shims: List[str]) -> EngineUsage:
    """Raises ToolkitError naming the file when an engine's config cannot be read."""
    files, runtimes, default = READERS[engine](path)
    shim_runtimes = {name: binary for name, binary in runtimes.items() if runs_shim(binary, shims)}
    return EngineUsage(engine, files, shim_runtimes, default)
