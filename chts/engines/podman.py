"""Podman: `[engine.runtimes] <name> = [path]` and `[engine] runtime`, by a marked edit of containers.conf.

The main file rather than a containers.conf.d drop-in, because podman reads only the file named by
CONTAINERS_CONF when that is set (no drop-ins), and the edit must work for such hosts too; the
marked, minimal edit keeps the user's comments all the same.

Which files podman reads (containers/common ``pkg/config``: ``systemConfigs``, ``addConfigs``,
``defaultConfig``; v0.50 for Podman 4.3 and today's agree on this part):

* ``$CONTAINERS_CONF`` set: that file alone (then ``$CONTAINERS_CONF_OVERRIDE``, if set);
* else ``/usr/share/containers/containers.conf``, ``/etc/containers/containers.conf``, then the
  ``*.conf`` files directly in ``/etc/containers/containers.conf.d`` sorted by name (not
  subdirectories), then the user's own files for rootless podman; ``$CONTAINERS_CONF_OVERRIDE`` last.

Each file is decoded over the built-in defaults: ``[engine.runtimes]`` keeps the built-in lists
(crun, runc, kata...) and a file's entry replaces that name's list. With no ``runtime`` set, podman
runs the first of crun, runc, runj, kata, runsc with an existing path in its list, or else in $PATH
(containers/common ``findRuntime``); a runtime's binary is the first regular file of its list, or
else the name looked up in $PATH (libpod ``newConmonOCIRuntime``). $PATH is podman's own: no other
directories are searched (Go's ``exec.LookPath``).

A ``--config`` other than the default path is read as podman reads ``/etc/containers/containers.conf``
under another root: the file, then ``<file>.d/*.conf``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
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
from chts.base.file_edit import Plan
from chts.base.toml_edit import marked_edit, set_key_expecting, unmarked_edit, verified
from chts.engines import EffectiveRuntimes, Engine, RuntimeRequest
from chts.engines.runtime_binaries import run_engine_command
from chts.errors import ToolkitError

WHAT = "containers.conf"
MINIMAL_CONFIG = "# containers.conf written by `container-hooks-ctk runtime configure` (there was none).\n"
SYSTEM_CONFIG = "/etc/containers/containers.conf"
SHARE_CONFIG = "/usr/share/containers/containers.conf"
CONF_ENV = "CONTAINERS_CONF"
OVERRIDE_ENV = "CONTAINERS_CONF_OVERRIDE"
# containers/common's built-in [engine.runtimes] (abridged to the names podman picks a default from)
BUILTIN_RUNTIMES: Dict[str, List[str]] = {
    name: [
        f"{directory}/{name}"
        for directory in ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/sbin", "/bin")
    ]
    for name in ("crun", "runc", "runsc")
}
BUILTIN_RUNTIMES["runc"].append("/usr/lib/cri-o-runc/sbin/runc")
BUILTIN_RUNTIMES["kata"] = ["/usr/bin/kata-runtime", "/usr/sbin/kata-runtime", "/usr/local/bin/kata-runtime"]
BUILTIN_RUNTIMES["runj"] = ["/usr/local/bin/runj"]
DEFAULT_SEARCH = ("crun", "runc", "runj", "kata", "runsc")

Layers = List[Tuple[str, Dict[str, Any]]]


def checked_engine_table(document: Dict[str, Any], path: str) -> Dict[str, Any]:
    """``[engine]`` with its ``runtime`` and ``runtimes`` type-checked (``runtimes`` filled in when absent)."""
    engine = table_at(document, ("engine",), path)
    typed_value(engine, "runtime", str, ("engine",), path)
    runtimes = table_at(document, ("engine", "runtimes"), path)
    for name, paths in runtimes.items():
        if not isinstance(paths, list) or not all(isinstance(item, str) for item in paths):
            raise ToolkitError(f"{path}: engine.runtimes.{name} must be a list of paths")
    return {**engine, "runtimes": runtimes}


def config_files(config: str) -> List[str]:
    """The files podman reads when ``config`` is its containers.conf, in its order (missing ones included)."""
    override = [os.environ[OVERRIDE_ENV]] if os.environ.get(OVERRIDE_ENV) else []
    if os.environ.get(CONF_ENV):
        return [os.environ[CONF_ENV], *override]
    first = [SHARE_CONFIG] if os.path.abspath(config) == SYSTEM_CONFIG else []
    drop_ins = config + ".d"
    names = sorted(os.listdir(drop_ins)) if os.path.isdir(drop_ins) else []
    conf = [
        os.path.join(drop_ins, n) for n in names if n.endswith(".conf") and not os.path.isdir(os.path.join(drop_ins, n))
    ]
    return [*first, config, *conf, *override]


def config_layers(config: str) -> Layers:
    layers = []
    for path in config_files(config):
        text = read_config_text(path, WHAT)
        if text is not None:
            document = parse_toml(text, path)
            checked_engine_table(document, path)
            layers.append((path, document))
    return layers


def merged(layers: Layers) -> Tuple[Dict[str, Any], Dict[str, List[str]], Optional[str]]:
    """Settings (without runtimes and runtime), the runtimes map over the built-in one, the runtime set."""
    settings: Dict[str, Any] = {}
    runtimes = copy.deepcopy(BUILTIN_RUNTIMES)
    runtime = None
    for _, document in layers:
        document = copy.deepcopy(document)
        engine = table_at(document, ("engine",), "")
        runtimes.update(engine.pop("runtimes", {}))
        runtime = engine.pop("runtime", runtime)
        settings = deep_merge(settings, document)
    return without_empty_tables(settings), runtimes, runtime


def first_existing(paths: List[str]) -> Optional[str]:
    return next((path for path in paths if os.path.exists(path)), None)


def look_path(name: str) -> Optional[str]:
    """Go's ``exec.LookPath`` as podman runs it: $PATH alone (unset or empty: nothing is found)."""
    return shutil.which(name, path=os.environ.get("PATH", "")) if "/" not in name else None


def found_default(runtimes: Dict[str, List[str]]) -> str:
    """What podman runs with no ``runtime`` set: the first of its list that this host has."""
    for name in DEFAULT_SEARCH:
        if first_existing(runtimes.get(name, [])) or look_path(name):
            return name
    return "crun"


def file_view(config: str) -> EffectiveRuntimes:
    settings, runtimes, runtime = merged(config_layers(config))
    default = runtime or found_default(runtimes)
    return EffectiveRuntimes(default, {name: {"paths": paths} for name, paths in runtimes.items()}, "file", settings)


def command_view(config: str) -> Optional[EffectiveRuntimes]:
    """The files, with the default runtime and its binary as ``podman info`` reports them (None: no podman)."""
    env = dict(os.environ)
    if not env.get(CONF_ENV) and os.path.abspath(config) != SYSTEM_CONFIG:
        env[CONF_ENV] = config  # how podman is pointed at another file
    done = run_engine_command(["podman", "info", "--format", "json"], "podman info", check=True, env=env)
    if done is None:
        return None
    try:
        runtime = json.loads(done.stdout)["host"]["ociRuntime"]
        name, path = str(runtime["name"]), str(runtime["path"])
    except (ValueError, KeyError, TypeError):
        raise ToolkitError("podman info: its output has no host.ociRuntime name and path") from None
    view = file_view(config)
    runtimes = dict(view.runtimes)
    if name not in runtimes:
        runtimes[name] = {"paths": [path]}
    return EffectiveRuntimes(name, runtimes, "podman info", view.other)


class Podman:
    name = "podman"

    @property
    def default_config(self) -> str:
        """The file podman reads: with $CONTAINERS_CONF set, that one alone."""
        return os.environ.get(CONF_ENV) or SYSTEM_CONFIG

    def configure(self, request: RuntimeRequest) -> Plan:
        # a runtime of our name in any file podman reads (not only the one edited) is the user's
        for path, document in config_layers(request.config):
            if path != request.config and request.name in checked_engine_table(document, path)["runtimes"]:
                raise foreign_runtime(path, f"engine.runtimes.{request.name}")

        def edit(text: str, document: Dict[str, Any]) -> str:
            path = request.config
            if request.name in checked_engine_table(document, path)["runtimes"]:
                raise foreign_runtime(path, f"engine.runtimes.{request.name}")
            expected = copy.deepcopy(document)
            new = set_key_expecting(text, expected, ("engine", "runtimes"), request.name, [request.path])
            if request.set_as_default:
                new = set_key_expecting(new, expected, ("engine",), "runtime", request.name)
            return verified(new, expected, path)

        return marked_edit(request.config, WHAT, MINIMAL_CONFIG, edit)

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        return unmarked_edit(request.config, WHAT, lambda document: checked_engine_table(document, request.config))

    def effective(self, config: str, source: str) -> EffectiveRuntimes:
        """The files as podman merges them; ``command`` adds ``podman info``'s default (auto: files only,
        since `podman info` sets up storage as it runs)."""
        if source == "command":
            view = command_view(config)
            if view is None:
                raise ToolkitError("podman is not installed here, so it cannot be asked: use --config-source file")
            return view
        return file_view(config)

    def low_level_runtime(self, effective: EffectiveRuntimes, name: str) -> Optional[str]:
        """The first existing path of the runtime's list (podman's rule); a runtime given as a path is itself."""
        if os.path.isabs(name):
            return name
        entry = effective.runtimes.get(name)
        if entry is None:
            return None
        paths = [p for p in entry.get("paths", []) if isinstance(p, str)]
        return next((path for path in paths if os.path.isfile(path)), None) or look_path(name)

    def apply_hint(self, request: RuntimeRequest) -> str:
        how = (
            "new containers use it" if request.set_as_default else f"use it with `podman run --runtime {request.name}`"
        )
        return f"podman reads containers.conf at every command: {how}"

    def reload(self, pid_file: str) -> str:
        return "podman has no daemon: nothing to reload"


ENGINE: Engine = Podman()
