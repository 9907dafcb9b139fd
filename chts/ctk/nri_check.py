"""NRI mode in `ctk check`: the runtime's NRI socket, NRI in each runtime's effective config, the plugin's state.

NRI mode is optional: what is absent is said (SKIP) and never fails the check; only what contradicts
itself is a WARN: a plugin whose state file says it runs (or is registered) while its process is gone,
a plugin running while the runtime has NRI off, a plugin waiting beside a socket it does not register
on, a plugin connected to a socket other than the one the runtime serves.

The plugin (`container-hooks-ctk nri run`, docs/nri.md) keeps a state file while it runs:
``$CONTAINER_HOOKS_NRI_STATE_DIR/<name>.json`` (default /run/container-hooks/nri) =
{"pid", "socket", "name", "index", "registered", "since", "version", "containers"}, removed on a clean exit.
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from chts import DEFAULT_NRI_SOCKET
from chts.base.config_files import parse_toml
from chts.engines.containerd_config import containerd_binary, read_files
from chts.engines.crio import default_drop_in_dir
from chts.engines.nri import (
    NRI_PLUGIN,
    NriSetting,
    containerd_nri,
    crio_nri,
    dumped_nri,
    enablement_advice,
    engine_version,
)
from chts.engines.runtime_binaries import run_engine_command
from chts.errors import ToolkitError

MAX_STATE_BYTES = 1 << 16
STATE_FIELDS = {"pid": int, "socket": str, "name": str, "index": str, "registered": bool}
PID_MAX = 1 << 22  # the kernel's PID_MAX_LIMIT: no process id is larger


class PluginState(NamedTuple):
    path: str
    pid: int
    socket: str
    name: str
    number: str  # the state's "index": the plugin's NRI index (NN of NN-name)
    registered: bool
    since: Optional[float]
    version: str
    containers: Optional[int]
    alive: bool


def read_state(path: str) -> PluginState:
    """One plugin state file; ToolkitError naming the file and what is wrong with it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read the NRI plugin's state: {exc.strerror}") from None
    if len(data) > MAX_STATE_BYTES:
        raise ToolkitError(f"{path}: not an NRI plugin state file: larger than {MAX_STATE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ToolkitError(f"{path}: not an NRI plugin state file: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ToolkitError(f"{path}: not an NRI plugin state file: a JSON object was expected")
    for field, kind in STATE_FIELDS.items():
        value = document.get(field)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ToolkitError(f"{path}: not an NRI plugin state file: {field!r} must be a {kind.__name__}")
    if not 0 < document["pid"] <= PID_MAX:
        raise ToolkitError(f"{path}: not an NRI plugin state file: 'pid' must be a process id (1 to {PID_MAX})")
    containers = document.get("containers")
    version = document.get("version")
    return PluginState(
        path,
        document["pid"],
        document["socket"],
        document["name"],
        document["index"],
        document["registered"],
        timestamp(document.get("since")),
        version if isinstance(version, str) else "unknown",
        containers if isinstance(containers, int) and not isinstance(containers, bool) else None,
        pid_alive(document["pid"]),
    )


def timestamp(value: Any) -> Optional[float]:
    """``since`` as a time this host can show, or None (optional: a missing or impossible one is unknown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        time.gmtime(value)
        return float(value)
    except (OverflowError, OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` (1 to PID_MAX: read_state checked) exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return False
    return True


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


Seen = Tuple[NriSetting, str, Optional[Tuple[int, int, int]]]  # the setting, where it was seen, the version


def containerd_view(config: str, source: str) -> Optional[Seen]:
    """NRI as containerd will run it with ``config`` (None: no such file): (setting, where from, version)."""
    if not os.path.lexists(config):
        return None
    binary = containerd_binary()
    if source == "command" or (source == "auto" and binary is not None):
        if binary is None:
            raise ToolkitError("containerd is not on PATH: --config-source=command needs it")
        done = run_engine_command([binary, "--version"], f"{binary} --version")
        version = engine_version("containerd", done.stdout) if done is not None else None
        return dumped_nri(binary, config), "containerd config dump", version
    merged, major, _ = read_files(config)
    plugins = merged.get("plugins", {})
    table = plugins.get(NRI_PLUGIN) if isinstance(plugins, dict) else None
    if not isinstance(table, dict):  # the built-in default: off in 1.7, on from 2.0
        merged = {**merged, "plugins": {**(plugins if isinstance(plugins, dict) else {}), NRI_PLUGIN: {}}}
        merged["plugins"][NRI_PLUGIN]["disable"] = major < 2
    return containerd_nri(merged), "file", None


def crio_view(config: str, source: str) -> Optional[Seen]:
    """NRI as CRI-O prints it (`crio config`); None when there is no such file or no crio to ask."""
    if not os.path.lexists(config) or source == "file":
        return None
    argv = ["crio", "--config", config, "--config-dir", default_drop_in_dir(config), "config"]
    done = run_engine_command(argv, f"{config}: crio config", check=True)  # as the engine line asks it
    if done is None:
        if source == "command":
            raise ToolkitError("crio is not on PATH: --config-source=command needs it")
        return None
    return crio_nri(parse_toml(done.stdout, "crio config"), done.stdout), "crio config", None


def check_nri(
    line: Any, configs: Dict[str, str], source: str, socket_option: Optional[str], state_dir: str
) -> Dict[str, Any]:
    """Report NRI mode through ``line(status, subject, detail)``; the facts, for the JSON report."""
    facts: Dict[str, Any] = {"runtimes": {}, "plugins": []}
    enabled_sockets: Dict[str, str] = {}
    disabled: List[str] = []
    for engine, view in (("containerd", containerd_view), ("crio", crio_view)):
        subject = f"nri ({engine})"
        config = configs.get(engine)
        if config is None:
            continue
        try:
            seen = view(config, source)
        except ToolkitError as exc:
            line("WARN", subject, f"cannot tell: {exc}")
            facts["runtimes"][engine] = {"config": config, "error": str(exc)}
            continue
        if seen is None:
            continue
        setting, origin, version = seen
        facts["runtimes"][engine] = {"config": config, "source": origin, "supported": setting.supported,
                                     "enabled": setting.enabled, "socket": setting.socket}  # fmt: skip
        where = f"{config}, seen by {origin}"
        if not setting.supported:
            named = f"{engine} {'.'.join(map(str, version))}" if version else engine
            line("SKIP", subject, f"{named} has no NRI ({where}): NRI mode needs containerd 1.7 or CRI-O 1.26")
        elif setting.enabled:
            enabled_sockets[engine] = setting.socket
            line("PASS", subject, f"NRI enabled, socket {setting.socket} ({where})")
        else:
            disabled.append(engine)
            advice = enablement_advice(engine, config, version)
            line("SKIP", subject, f"NRI disabled ({where}): NRI mode needs it on: {advice}")

    served = sorted(set(enabled_sockets.values()))
    socket = socket_option if socket_option else served[0] if served else DEFAULT_NRI_SOCKET
    present = is_socket(socket)
    facts["socket"] = {"path": socket, "present": present}
    if present:
        line("PASS", "nri socket", f"{socket} is there (a runtime serves NRI)")
    elif os.path.lexists(socket):
        line("SKIP", "nri socket", f"{socket} exists but is not a socket")
    else:
        line("SKIP", "nri socket", f"no {socket}: no runtime serves NRI there (NRI mode is optional)")

    plugins = plugin_states(line, state_dir, facts)
    for plugin in plugins:
        report_plugin(line, plugin, disabled, enabled_sockets, socket_option is not None, socket)
    return facts


def plugin_states(line: Any, state_dir: str, facts: Dict[str, Any]) -> List[PluginState]:
    try:
        names = sorted(name for name in os.listdir(state_dir) if name.endswith(".json"))
    except FileNotFoundError:
        names = []
    except OSError as exc:
        line("WARN", "nri plugin", f"{state_dir}: cannot list the NRI plugin's state: {exc.strerror}")
        return []
    plugins = []
    for name in names:
        try:
            plugins.append(read_state(os.path.join(state_dir, name)))
        except ToolkitError as exc:
            line("WARN", "nri plugin", str(exc))
    if not names:
        line("SKIP", "nri plugin", f"not running here (no state file in {state_dir})")
    for plugin in plugins:
        fields = plugin._asdict()
        fields["index"] = fields.pop("number")  # as the state file names it
        facts["plugins"].append(fields)
    return plugins


def report_plugin(
    line: Any,
    plugin: PluginState,
    disabled: List[str],
    enabled_sockets: Dict[str, str],
    socket_given: bool,
    socket: str,
) -> None:
    who = f"{plugin.number}-{plugin.name} (pid {plugin.pid}, version {plugin.version})"
    if not plugin.alive:
        said = "registered" if plugin.registered else "running"
        line("WARN", "nri plugin", f"{plugin.path} says {who} is {said}, but pid {plugin.pid} is gone: it died "
                                   "without cleaning up; containers created since get no hooks")  # fmt: skip
        return
    if disabled:
        line("WARN", "nri plugin", f"{who} runs, but NRI is disabled in {' and '.join(disabled)}'s configuration: "
                                   "no container gets its hooks through it")  # fmt: skip
    served = set(enabled_sockets.values()) | ({socket} if socket_given else set())
    if served and plugin.socket not in served:
        line(
            "WARN",
            "nri plugin",
            f"{who} uses {plugin.socket}, but the runtime serves NRI on {', '.join(sorted(served))}",
        )
    if not plugin.registered:
        status = "WARN" if is_socket(plugin.socket) else "SKIP"  # a runtime serves it: the plugin should be on it
        line(status, "nri plugin", f"{who} runs but is not registered on {plugin.socket}: containers created now get "
                                   "no hooks from it")  # fmt: skip
        return
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(plugin.since)) if plugin.since else "an unknown time"
    seen = f", {plugin.containers} container(s) seen" if plugin.containers is not None else ""
    line("PASS", "nri plugin", f"{who} registered on {plugin.socket} since {since}{seen}")
