"""The node installer's steps on one node: preflight, install, verify, label, uninstall (`ctk node` wires them).

A Node is one invocation's view: its options, the host root, the engine layout, what was said.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import time
from typing import List, Optional, Set

from chts import DEFAULT_CACHE_DIR, __version__
from chts.base.archive import running_archive
from chts.base.atomic import write_atomically
from chts.config.chains import chain_tags, chained_runtimes, with_chained_first, with_chains
from chts.config.toolkit import DEFAULT_CONFIG_PATH
from chts.errors import ToolkitError
from chts.node.engine import (
    configure_engine,
    containers_using,
    digest,
    effective_config,
    effective_default,
    engine_older_than_config,
    handler_binary,
    main_pid,
    require_handler,
    restart_engine,
    restart_mode,
    served_handler,
    verify_container,
    wait_until_serving,
)
from chts.node.files import (
    HOST_CONFIG_DIR,
    NodeState,
    SourceFile,
    archive_files,
    host_view,
    install_archive,
    is_temp_file,
    shim_path,
    sync_config,
)
from chts.node.host import (
    EngineLayout,
    HostRoot,
    archive_interpreter,
    check_python,
    choose_layout,
    has_systemd,
    unit_of,
)
from chts.node.nri import describe as describe_nri
from chts.node.nri import nri_config_argv, nri_drop_in_present, nri_readiness, nri_setting
from chts.node.probe import PROBE_DIR

RUNTIME_NAME = "container-hooks-runtime"  # = the RuntimeClass handler in deploy/kubernetes
NRI_SOCKET_WAIT = 10.0  # s: containerd makes its NRI socket as it starts
MODES = ("shim", "nri")  # node install --mode: the runtime entry (default), or NRI (docs/nri.md)


class Node:
    """One invocation's view of the node: options, host root, engine layout and what was said."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host = HostRoot(args.host_root)
        if not os.path.isdir(self.host.root):
            raise ToolkitError(f"{self.host.root}: --host-root is not a directory (mount the node's / there)")
        self.toolkit_dir = args.toolkit_dir
        self.shim = shim_path(self.toolkit_dir)
        self._layout: Optional[EngineLayout] = None

    @property
    def layout(self) -> EngineLayout:
        if self._layout is None:
            self._layout = choose_layout(self.host, self.args.engine)
        return self._layout

    def say(self, message: str) -> None:
        if message and not self.args.quiet:
            print(message)
            sys.stdout.flush()

    # ------------------------------------------------------------------------- steps

    @property
    def nri_mode(self) -> bool:
        return getattr(self.args, "mode", "shim") == "nri"

    def preflight(self) -> str:
        """Facts about the node, or the one reason it cannot run the shim (NRI mode: NRI); returns the restart mode."""
        self.say(check_python(self.host, archive_interpreter(running_archive())))
        layout = self.layout
        self.say(f"engine: {layout.engine}, layout: {layout.layout}, config: {layout.config}")
        manager = "systemd" if has_systemd(self.host) else "none found"
        self.say(f"service manager: {manager} (unit {unit_of(self.host, layout)})")
        needs_restart = self.preflight_nri()
        try:
            mode = restart_mode(self.host, layout, self.args.restart_mode)
        except ToolkitError:
            if needs_restart or not self.nri_mode:
                raise
            mode = "none"  # NRI mode with NRI on: the engine is never restarted
        self.say(f"restart mode: {mode}")
        return mode

    def preflight_nri(self) -> bool:
        """Say whether NRI mode is possible here and what to do when it is not; in NRI mode, refuse a node
        where it cannot work. Whether NRI mode needs the engine restarted (containerd 1.7 with NRI off)."""
        try:
            readiness = nri_readiness(self.host, self.layout, effective_config(self.host, self.layout))
        except ToolkitError as exc:
            if self.nri_mode:
                raise
            self.say(f"NRI mode: cannot tell: {exc}")
            return False
        line = describe_nri(readiness, self.layout)
        if self.nri_mode and readiness.problem is not None and not readiness.installer_can_enable:
            raise ToolkitError(f"{self.layout.config}: {line}")
        self.say(line)
        return self.nri_mode and readiness.installer_can_enable

    def install(self, mode: str) -> None:
        for line in install_archive(self.host, self.toolkit_dir, archive_to_install()):
            self.say(line)
        state = NodeState(self.host, self.toolkit_dir)
        self.sync(state)
        before = effective_config(self.host, self.layout)
        if state.applied is None:
            state.applied = digest(before)  # what the running engine has: nothing of ours yet
        if self.nri_mode:
            self.install_nri(state, before, mode)
            return
        self.configure(state, True)
        after = effective_config(self.host, self.layout)
        self.say(require_handler(after, self.layout, RUNTIME_NAME, self.shim))
        self.apply(state, after, mode)

    def configure(self, state: NodeState, configure: bool, nri: bool = False) -> None:
        """`runtime configure|unconfigure` (``nri``: `node nri-enable|nri-disable`) on the host; what it creates
        beside the files it edits (conf.d, a backup of the engine config or of the toolkit config it chains) is
        recorded for uninstall."""
        if state.pending is None:  # else a configure was killed: what it made since its listing is ours too
            state.pending = {directory: sorted(entries(self.host.path(directory))) for directory in self.watched()}
            state.save()  # before configure writes anything (write-ahead)
        if nri:
            argv = nri_config_argv(self.toolkit_dir, self.layout, configure)
            self.say(self.host.run(argv, f"{self.layout.engine} {argv[2]}").strip())
        else:
            set_as_default = self.args.set_as_default and configure
            self.say(
                configure_engine(self.host, self.layout, self.toolkit_dir, RUNTIME_NAME, set_as_default, configure)
            )
        self.record_configured(state)

    def install_nri(self, state: NodeState, before: str, mode: str) -> None:
        """NRI mode: no runtime entry, no restart; but containerd 1.7 with NRI off gets it turned on (a verified
        drop-in) and is restarted as the shim mode would be. The effect is checked in the engine's own dump."""
        readiness = nri_readiness(self.host, self.layout, before)
        if readiness.problem is not None:
            if not readiness.installer_can_enable:
                raise ToolkitError(f"{self.layout.config}: {describe_nri(readiness, self.layout)}")
            self.configure(state, True, nri=True)
        after = effective_config(self.host, self.layout)
        setting = nri_setting(after, self.layout)
        if not setting.enabled:
            raise ToolkitError(f"{self.layout.config}: {self.layout.engine}'s effective configuration has NRI disabled")
        self.say(f"{self.layout.engine}'s effective configuration has NRI enabled (socket {setting.socket})")
        self.apply(state, after, mode)
        socket = self.host.path(setting.socket)
        if mode != "none":
            if not wait_for_socket(socket, NRI_SOCKET_WAIT):
                self.say(f"{self.layout.engine} needs a restart: it serves no NRI socket at {setting.socket}")
                self.say(restart_engine(self.host, self.layout, mode))
                self.say(wait_until_serving(self.host, self.layout, self.args.engine_timeout))
                if not wait_for_socket(socket, NRI_SOCKET_WAIT):
                    raise ToolkitError(f"{setting.socket}: {self.layout.engine} runs but serves no NRI socket there")
            self.say(f"{self.layout.engine} serves NRI on {setting.socket}")
        self.say(
            "NRI mode: the toolkit and the node's hooks are installed; `container-hooks-ctk nri run` "
            "(deploy/kubernetes/nri) adds them to every new CRI container (docs/nri.md)"
        )

    def watched(self) -> List[str]:
        """The host directories `runtime configure` may create files in: the engine config's, its drop-in
        directories (conf.d for --drop-in, k3s's config.toml.d, crio.conf.d), the toolkit config's."""
        engine_dir = os.path.dirname(self.layout.config)
        drop_ins = [f"{engine_dir}/{name}" for name in ("conf.d", "config.toml.d", "crio.conf.d")]
        return [engine_dir, *drop_ins, HOST_CONFIG_DIR]

    def record_configured(self, state: NodeState) -> None:
        """Record what appeared in the watched directories since state.pending was listed (a finished
        configure, or a killed one); a temporary file of a killed write is removed instead."""
        if state.pending is None:
            return
        for directory, listed in state.pending.items():
            for name in sorted(entries(self.host.path(directory)) - set(listed)):
                seen = self.host.path(f"{directory}/{name}", follow_last=False)
                if is_temp_file(name):  # configure is not running: no writer of it is left
                    os.unlink(seen)
                    continue
                created = host_view(self.host, seen)
                if created not in state.created:
                    state.created.append(created)
        state.pending = None
        state.save()

    def sync(self, state: NodeState) -> List[str]:
        source = self.args.source_dir
        if not os.path.isdir(source):
            self.say(f"{source}: no hooks ConfigMap mounted; /etc/container-hooks left as it is")
            return []
        changes = sync_config(self.host, state, source, self.keep_chain)
        for line in changes or ["/etc/container-hooks: in sync with the ConfigMap"]:
            self.say(line)
        return changes

    def keep_chain(self, item: SourceFile) -> SourceFile:
        """The ConfigMap's config.toml with the low-level runtime `runtime configure` chained the shim to.

        configure records in config.toml.chains.json the binary the engine's default ran (crun,
        nvidia-container-runtime ...) and its tag in ``[container-hooks-runtime.chains]`` (an earlier
        version put it first in the runtimes list instead); a ConfigMap sync must not take it away, or
        the shim would switch those containers to another runtime, or fail them.
        """
        if item.host_path != DEFAULT_CONFIG_PATH:
            return item
        chained = chained_runtimes(self.host.path(DEFAULT_CONFIG_PATH))
        tags = chain_tags(self.host.path(DEFAULT_CONFIG_PATH))
        if not chained and not tags:
            return item
        text = item.data.decode()
        if chained:
            text = with_chained_first(text, DEFAULT_CONFIG_PATH, chained)
        if tags:
            text = with_chains(text, DEFAULT_CONFIG_PATH, tags)
        return item._replace(data=text.encode())

    def apply(self, state: NodeState, effective: str, mode: str) -> None:
        """Restart the engine when what it runs with differs from ``effective``, and wait for it to serve."""
        reason = self.restart_reason(state, effective, mode)
        if reason is None:
            self.say(f"{self.layout.engine} runs its effective configuration: no restart")
            state.save()
            return
        self.say(f"{self.layout.engine} needs a restart: {reason}")
        self.say(restart_engine(self.host, self.layout, mode))
        if mode != "none":
            self.say(wait_until_serving(self.host, self.layout, self.args.engine_timeout))
            if handler_binary(effective, self.layout, RUNTIME_NAME) is not None:
                self.require_served(effective)
            state.applied = digest(effective)
        state.save()

    def restart_reason(self, state: NodeState, effective: str, mode: str) -> Optional[str]:
        """Why the running engine may not run ``effective`` (None: it does, as far as can be told).

        containerd is asked what it serves (CRI status); CRI-O cannot be, so a process older than a file
        of its configuration counts instead.
        """
        if state.applied != digest(effective):
            return "its effective configuration changed"
        if mode == "none" or handler_binary(effective, self.layout, RUNTIME_NAME) is None:
            return None
        if self.layout.engine == "containerd":
            try:
                return self.served_problem(effective)
            except ToolkitError as exc:
                return f"it cannot be asked what it serves ({exc})"
        pid = main_pid(self.host, unit_of(self.host, self.layout))
        return engine_older_than_config(self.host, self.layout, effective, pid)

    def served_problem(self, effective: str) -> Optional[str]:
        default = RUNTIME_NAME if effective_default(effective, self.layout) == RUNTIME_NAME else None
        return served_handler(self.host, self.layout, RUNTIME_NAME, self.shim, default)

    def require_served(self, effective: str) -> None:
        problem = self.served_problem(effective)
        if problem:
            raise ToolkitError(problem)
        if self.layout.engine == "containerd":
            self.say(f"containerd serves runtime handler {RUNTIME_NAME!r} running {self.shim} (CRI status)")

    def verify(self) -> None:
        effective = effective_config(self.host, self.layout)
        require_handler(effective, self.layout, RUNTIME_NAME, self.shim)
        self.require_served(effective)
        NodeState(self.host, self.toolkit_dir).make_hook_directories(self.host)  # the probe hook goes in hooks.d
        self.say(verify_container(self.host, self.layout, self.shim, self.run_on_host))
        write_ready_file(self.args.ready_file, f"{__version__} {self.shim}\n")
        self.say(f"wrote {self.args.ready_file}")
        self.label("true")

    def run_on_host(self, argv: List[str]) -> str:
        return self.host.run(argv, "probe container", timeout=self.args.engine_timeout)

    def label(self, value: Optional[str]) -> None:
        # here, not at the top: every other ctk command would pay for importing ssl and urllib at start
        from chts.node.kube_api import READY_LABEL, in_cluster, set_node_label

        api = in_cluster(self.args.api_server, self.args.token_file, self.args.ca_file)
        if api is None:
            self.say(f"not in a cluster (no KUBERNETES_SERVICE_HOST): node label {READY_LABEL} not changed")
            return
        node = self.args.node_name or os.environ.get("NODE_NAME")
        if not node:
            raise ToolkitError("no node name: set NODE_NAME (the downward API's spec.nodeName) or --node-name")
        set_node_label(api, node, READY_LABEL, value)
        self.say(f"node {node}: label {READY_LABEL}={value}" if value else f"node {node}: label {READY_LABEL} removed")

    def uninstall(self, mode: str) -> None:
        remove_ready_file(self.args.ready_file)
        self.label(None)
        state = NodeState(self.host, self.toolkit_dir)
        if os.path.exists(self.host.path(self.shim)) and nri_drop_in_present(self.host, self.layout):
            # --mode nri's drop-in first: `runtime unconfigure` removes every marked import, ours included
            before = effective_config(self.host, self.layout)
            if state.applied is None:
                state.applied = digest(before)
            self.configure(state, False, nri=True)
            after = effective_config(self.host, self.layout)
            if digest(after) != digest(before):
                self.apply(state, after, mode)
        if os.path.exists(self.host.path(self.shim)):
            before = effective_config(self.host, self.layout)
            if handler_binary(before, self.layout, RUNTIME_NAME) is not None:
                if state.applied is None:
                    state.applied = digest(before)
                self.configure(state, False)
                self.apply(state, effective_config(self.host, self.layout), mode)
        self.record_configured(state)  # an install killed in its configure, and no unconfigure to run
        for host_path in list(state.managed):
            self.say(state.give_back(self.host, host_path))
        for line in state.remove_created(self.host):
            self.say(line)
        state.remove()
        try:
            os.rmdir(self.host.path(PROBE_DIR))  # verify's, empty unless a probe is running
        except OSError:
            pass
        users = containers_using(self.host, self.layout, self.shim)
        if users:
            self.say(
                f"kept {self.toolkit_dir}: {len(users)} container(s) started through it still exist "
                f"({', '.join(users[:3])}{', ...' if len(users) > 3 else ''}) and {self.layout.engine} needs it "
                "to stop them; run uninstall again once they are gone"
            )
            return
        for path, is_dir in archive_files(self.host, self.toolkit_dir):
            if is_dir:
                try:
                    os.rmdir(path)
                except OSError:
                    continue
            elif os.path.lexists(path):
                os.unlink(path)
            else:
                continue
            self.say(f"removed {host_view(self.host, path)}")
        # what the shim compiled and parsed on this host (its code and parse caches): nothing runs it any more
        caches = self.host.path(DEFAULT_CACHE_DIR, follow_last=False)
        if os.path.isdir(caches) and not os.path.islink(caches):
            shutil.rmtree(caches, ignore_errors=True)
            self.say(f"removed {DEFAULT_CACHE_DIR} (the shim's caches)")


def wait_for_socket(path: str, timeout: float) -> bool:
    """Whether a socket is at ``path`` within ``timeout`` s (never connected to: the runtime would take a
    connection for a plugin)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def archive_to_install() -> str:
    archive = running_archive()
    if archive is None:
        raise ToolkitError("node install copies the .pyz it runs from: run it as container-hooks-toolkit.pyz")
    return archive


def entries(directory: str) -> Set[str]:
    try:
        return set(os.listdir(directory))
    except OSError:
        return set()


def write_ready_file(path: str, text: str) -> None:
    """The readiness probe's file (in the pod, not the host), written whole or not at all."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, text.encode(), mode=0o644)


def remove_ready_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ----------------------------------------------------------------------------- commands
