"""The node installer and the engine: configure through the host's own ctk, read the effective config, restart, verify.

The engine is configured by the installed .pyz running as the host (chroot into the host root), so
every path it writes (the drop-in, the `imports` entry, BinaryName) is the host's own path, the
host's python3 is exercised before any container depends on it, and `containerd config dump` is the
host's containerd reading the host's files.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from chts.base.runtime_lookup import chain_tag
from chts.base.text_files import toml_loads
from chts.engines.containerd_config import dumped_view
from chts.engines.crio import printed_view
from chts.errors import ToolkitError
from chts.node.cri_status import connect_unix, served_containerd_config
from chts.node.files import HOST_HOOKS_DIR, ctk_path, make_directory, shim_path, write_root_file
from chts.node.host import EngineLayout, HostRoot, drop_in_dir_of, has_systemd, unit_of
from chts.node.probe import PROBE_ANNOTATION, PROBE_DIR, PROBE_NAMESPACE, probe_hook, probe_rootfs

RUNC_V2 = "io.containerd.runc.v2"
POLL_SECONDS = 0.5
# The containerd binary k3s and rke2 unpack (they do not put one on $PATH).
CONTAINERD_BINARY = {
    "k3s": "/var/lib/rancher/k3s/data/current/bin/containerd",
    "rke2": "/var/lib/rancher/rke2/bin/containerd",
}


def runtime_argv(
    host: HostRoot, layout: EngineLayout, toolkit_dir: str, name: str, set_as_default: bool, configure: bool
) -> List[str]:
    """`container-hooks-ctk runtime configure|unconfigure` as the host runs it, in the engine's drop-in mode."""
    argv = [ctk_path(toolkit_dir), "runtime", "configure" if configure else "unconfigure"]
    argv += [f"--runtime={layout.engine}", f"--config={layout.config}", f"--runtime-name={name}"]
    argv += [f"--runtime-path={shim_path(toolkit_dir)}"]
    if layout.engine == "crio":
        directory = drop_in_dir_of(host, layout) or os.path.join(os.path.dirname(layout.config), "crio.conf.d")
        argv.append(f"--drop-in-dir={directory}")
    else:
        argv.append("--drop-in")
    if set_as_default and configure:
        argv.append("--set-as-default")
    return argv


def configure_engine(
    host: HostRoot, layout: EngineLayout, toolkit_dir: str, name: str, set_as_default: bool, configure: bool
) -> str:
    argv = runtime_argv(host, layout, toolkit_dir, name, set_as_default, configure)
    verb = "configure" if configure else "unconfigure"
    return host.run(argv, f"{layout.engine} {verb}").strip()


# ----------------------------------------------------------------------------- the effective configuration


def effective_config(host: HostRoot, layout: EngineLayout) -> str:
    """What the engine will run with, printed by the host's engine binary from the host's files."""
    if layout.engine == "containerd":
        binary = CONTAINERD_BINARY.get(layout.layout, "containerd")
        return host.run([binary, "--config", layout.config, "config", "dump"], "containerd config dump")
    return host.run(["crio", "--config", layout.config, "config"], "crio config")


def digest(effective: str) -> str:
    """A fingerprint of an effective configuration, the same for the same settings.

    `containerd config dump` lists `imports` in a different order from one run to the next (it comes
    from a Go map), so the parsed document is compared, imports sorted, not the text.
    """
    try:
        document = toml_loads(effective)
    except ValueError:
        return hashlib.sha256(effective.encode()).hexdigest()
    if isinstance(document.get("imports"), list):
        document["imports"] = sorted(map(str, document["imports"]))
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def effective_runtimes(effective: str, layout: EngineLayout) -> Tuple[Optional[str], Dict[str, Dict[str, Any]]]:
    """(default runtime, runtimes) of what the engine printed as its effective configuration, read by
    the engine modules' own rules (chts.engines): the installer knows no table of its own."""
    if layout.engine == "crio":
        view = printed_view(effective, "crio config")
        return view.default, view.runtimes
    cri = dumped_view(effective, "containerd config dump")
    return cri.default, cri.runtimes


def effective_default(effective: str, layout: EngineLayout) -> Optional[str]:
    return effective_runtimes(effective, layout)[0]


def handler_binary(effective: str, layout: EngineLayout, name: str) -> Optional[str]:
    """The binary the engine's runtime handler ``name`` runs, in the effective config (None: no such handler)."""
    entry = effective_runtimes(effective, layout)[1].get(name)
    if not isinstance(entry, dict):
        return None
    if layout.engine == "crio":
        path = entry.get("runtime_path")
        return path if isinstance(path, str) else None
    options = entry.get("options", {})
    binary = options.get("BinaryName") if isinstance(options, dict) else None
    return binary if isinstance(binary, str) else None


def is_the_shim(binary: Optional[str], shim: str) -> bool:
    """``binary`` is ``shim``, or its container-hooks-runtime.TAG beside it: the shim for a runtime configure
    chained (chts/ctk/chaining.py)."""
    return binary == shim or (
        binary is not None and os.path.dirname(binary) == os.path.dirname(shim) and chain_tag(binary) is not None
    )


def require_handler(effective: str, layout: EngineLayout, name: str, shim: str) -> str:
    binary = handler_binary(effective, layout, name)
    if binary is None:
        raise ToolkitError(f"{layout.config}: {layout.engine}'s effective configuration has no runtime {name!r}")
    if not is_the_shim(binary, shim):
        raise ToolkitError(f"{layout.config}: runtime {name!r} runs {binary}, not {shim}")
    return f"{layout.engine}'s effective configuration has runtime handler {name!r} running {binary}"


def containers_using(host: HostRoot, layout: EngineLayout, shim: str) -> List[str]:
    """containerd tasks (namespace/id) whose runc binary is ``shim``: the engine needs it to stop them.

    containerd's runc shim records the binary in options.json of each task's bundle, under the
    engine's state directory, and the directory goes when the task is deleted.
    """
    if layout.engine != "containerd":
        return []
    state = os.path.dirname(layout.socket)
    try:
        configured = toml_loads(effective_config(host, layout)).get("state")
        state = configured if isinstance(configured, str) else state
    except (ToolkitError, ValueError):
        pass  # the engine's binary is gone or its config broken: its default state directory then
    users = []
    for options in sorted(glob.glob(host.path(f"{state}/io.containerd.runtime.v2.task/*/*/options.json"))):
        try:
            with open(options, encoding="utf-8") as handle:
                binary = json.load(handle).get("binary_name")
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if is_the_shim(binary, shim):
            task = os.path.dirname(options)
            users.append(f"{os.path.basename(os.path.dirname(task))}/{os.path.basename(task)}")
    return users


def served_handler(host: HostRoot, layout: EngineLayout, name: str, shim: str, default: Optional[str]) -> Optional[str]:
    """What is wrong with runtime handler ``name`` as the running engine serves it (None: served, running
    ``shim``, and ``default`` the default runtime when given). containerd only, through its CRI status;
    other engines are not asked (None)."""
    if layout.engine != "containerd":
        return None
    served = served_containerd_config(host.path(layout.socket))
    handlers = served.get("runtimes") or {}
    if name not in handlers:
        return f"running {layout.engine} serves no runtime handler {name!r} (CRI status: {', '.join(handlers)})"
    options = handlers[name].get("options") or {}
    binary = options.get("BinaryName") if isinstance(options, dict) else None
    if not is_the_shim(binary, shim):
        return f"running {layout.engine} serves runtime handler {name!r} with BinaryName {binary!r}, not {shim}"
    if default is not None and served.get("defaultRuntimeName") != default:
        return f"running {layout.engine}'s default runtime is {served.get('defaultRuntimeName')!r}, not {default!r}"
    return None


# ----------------------------------------------------------------------------- restart


def restart_mode(host: HostRoot, layout: EngineLayout, mode: str) -> str:
    """The restart mode ``auto`` stands for on this host; ToolkitError for a mode the engine cannot take."""
    if mode == "auto":
        if has_systemd(host):
            return "systemd"
        raise ToolkitError(
            f"{host.path('/run/systemd/system')}: the host does not run systemd: restart {layout.engine} "
            "yourself and pass --restart-mode none"
        )
    if mode == "signal":
        raise ToolkitError(
            f"--restart-mode signal: {layout.engine} has no config reload (containerd exits on SIGHUP); "
            "use systemd or none"
        )
    return mode


def restart_engine(host: HostRoot, layout: EngineLayout, mode: str) -> str:
    if mode == "none":
        return f"restart-mode none: restart {layout.engine} yourself to apply the new configuration"
    unit = unit_of(host, layout)
    before = main_pid(host, unit)
    host.run(["systemctl", "restart", unit], f"restarting {unit}")
    after = main_pid(host, unit)
    if after == 0:
        raise ToolkitError(f"`systemctl restart {unit}` returned but systemd shows no running {unit} (main PID 0)")
    if after == before:
        raise ToolkitError(f"`systemctl restart {unit}` returned but {unit} still runs as PID {before}: not restarted")
    return f"restarted {unit} through the host's systemd (main PID {before or '-'} -> {after or '-'})"


def engine_older_than_config(host: HostRoot, layout: EngineLayout, effective: str, pid: int) -> Optional[str]:
    """Why the engine running as host ``pid`` cannot have the configuration on disk: it started before a
    file of it changed (None: it may well have it, or nothing can be told).

    The fingerprint in node-state.json says what the installer last applied; this catches what it cannot
    know (its state removed, a file edited by hand, a restart that never happened).
    """
    started = process_start_time(host, pid) if pid else None
    if started is None:
        return None
    newest = max(config_files(host, layout, effective), key=lambda item: item[1], default=None)
    if newest is None or newest[1] <= started + 1.0:  # /proc/stat's btime is whole seconds
        return None
    return f"{layout.engine} (PID {pid}) started before {newest[0]} last changed"


def config_files(host: HostRoot, layout: EngineLayout, effective: str) -> List[Tuple[str, float]]:
    """(host path, mtime) of every file the engine's configuration is read from."""
    paths = [layout.config]
    if layout.engine == "containerd":
        try:
            imports = toml_loads(effective).get("imports", [])
        except ValueError:
            imports = []
        paths += [path for path in imports if isinstance(path, str)] if isinstance(imports, list) else []
    else:
        directory = drop_in_dir_of(host, layout)
        if directory:
            paths += [f"{directory}/{name}" for name in sorted(os.listdir(host.path(directory)))]
    found = []
    for path in dict.fromkeys(paths):
        try:
            found.append((path, os.stat(host.path(path)).st_mtime))
        except OSError:
            continue
    return found


def process_start_time(host: HostRoot, pid: int) -> Optional[float]:
    """When host process ``pid`` started (epoch seconds), from the host's /proc; None if it cannot be read."""
    try:
        with open(host.path(f"/proc/{pid}/stat"), encoding="ascii", errors="replace") as handle:
            ticks = int(handle.read().rpartition(")")[2].split()[19])  # field 22, after the command name
        with open(host.path("/proc/stat"), encoding="ascii", errors="replace") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def main_pid(host: HostRoot, unit: str) -> int:
    """The unit's main PID as systemd has it (0: not running): tells a real restart from an ignored one."""
    shown = host.run(["systemctl", "show", "--property=MainPID", "--value", unit], f"asking systemd about {unit}")
    return int(shown.strip()) if shown.strip().isdigit() else 0


def wait_until_serving(host: HostRoot, layout: EngineLayout, timeout: float) -> str:
    """Wait until the engine answers on its socket (containerd: with its CRI plugin loaded)."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            last = engine_answers(host, layout)
            if not last:
                return f"{layout.engine} answers on {layout.socket}"
        except ToolkitError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise ToolkitError(f"{layout.engine} did not come back within {timeout:.0f} s: {last}")
        time.sleep(POLL_SECONDS)


def engine_answers(host: HostRoot, layout: EngineLayout) -> str:
    """ "" when the engine serves, else what is still missing."""
    if not socket_accepts(host.path(layout.socket)):
        return f"{layout.socket} does not accept connections"
    if layout.engine != "containerd":
        return ""
    plugins = host.run([*layout.ctr, "-a", layout.socket, "plugins", "ls"], "ctr plugins ls", timeout=30)
    for line in plugins.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "io.containerd.grpc.v1" and fields[1] == "cri":
            return "" if fields[-1] == "ok" else f"containerd's CRI plugin is {fields[-1]}"
    return "containerd lists no CRI plugin"


def socket_accepts(path: str) -> bool:
    try:
        connect_unix(path, timeout=5).close()
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------- a container through the handler


def container_check(report: str, command: str) -> str:
    """What `ctk check --format json` said of its container, as its text line; ToolkitError naming every
    check that failed, or when no container ran."""
    try:
        document = json.loads(report)
        checks = [(c["status"], c["subject"], c["detail"]) for c in document["checks"]]
    except (ValueError, KeyError, TypeError):
        raise ToolkitError(f"`{command}` did not answer with its JSON report: {report.strip()[:200]!r}") from None
    failed = [f"{subject}: {detail}" for status, subject, detail in checks if status == "FAIL"]
    if failed:
        raise ToolkitError(f"`{command}` failed: {'; '.join(failed)}")
    container = [(status, detail) for status, subject, detail in checks if subject == "container"]
    if not container or container[-1][0] != "PASS":
        why = container[-1][1] if container else "it has no container check"
        raise ToolkitError(f"`{command}` ran no container through the shim: {why}")
    return f"PASS  container: {container[-1][1]}"


def verify_container(host: HostRoot, layout: EngineLayout, shim: str, run: Callable[[List[str]], str]) -> str:
    """Run /bin/true through the handler's binary with a probe hook; say what happened or raise."""
    if layout.engine != "containerd":
        # No CRI-O client to start a container with: `ctk check` as the host runs it, whose last check is a
        # container through the shim (runc directly) with a probe hook of its own.
        bin_dir = os.path.dirname(shim)
        argv = [f"{bin_dir}/container-hooks-ctk", "check", f"--dest={bin_dir}", f"--crio-config={layout.config}"]
        return container_check(host.run([*argv, "--format=json"], "ctk check", accept=(0, 1)), " ".join(argv))
    token = os.urandom(8).hex()
    container = f"container-hooks-probe-{token}"
    hook_file = f"{HOST_HOOKS_DIR}/zz-container-hooks-node-probe-{token}.json"
    rootfs = f"{PROBE_DIR}/rootfs-{token}"
    output = host.path(f"{PROBE_DIR}/probe-{token}.json")
    make_directory(host.path(PROBE_DIR))
    try:
        mounts = probe_rootfs(host, rootfs)
        write_root_file(host.path(hook_file), (json.dumps(probe_hook(token), indent=2) + "\n").encode())
        run(
            [*layout.ctr, "-a", layout.socket, "-n", PROBE_NAMESPACE, "run", "--rm", "--runtime", RUNC_V2,
             "--runc-binary", shim, "--annotation", f"{PROBE_ANNOTATION}={token}", *mounts,
             "--rootfs", rootfs, container, "/bin/true"]
        )  # fmt: skip
        try:
            with open(output, encoding="utf-8") as handle:
                fired = json.load(handle).get("id") == container
        except (OSError, ValueError):
            fired = False
        if not fired:
            raise ToolkitError(
                f"a container ran through {shim} but its probe hook in {HOST_HOOKS_DIR} did not fire "
                "(is that directory in the toolkit config's hooks-dirs?)"
            )
        return f"a container ran through {layout.engine} and {shim}; its probe hook fired"
    finally:
        for leftover in (host.path(hook_file, follow_last=False), host.path(f"{PROBE_DIR}/probe-{token}.json", False)):
            if os.path.lexists(leftover):
                os.unlink(leftover)
        shutil.rmtree(host.path(rootfs), ignore_errors=True)
