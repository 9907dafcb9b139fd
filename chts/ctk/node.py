"""`container-hooks-ctk node`: the installer a Kubernetes DaemonSet runs, with the node's root at --host-root.

preflight -> install (files, hooks, engine drop-in, restart only when the effective engine config
changed) -> verify (a container through the handler with a probe hook, ready file, node label);
`run` does all three and stays up; `uninstall` gives the node back. Every step is idempotent and
runs under a lock on the host, so two installers on one node never interleave.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from chts import CTK, __version__
from chts.ctk.toolkit_files import add_command
from chts.errors import ToolkitError
from chts.node.engine import (
    effective_config,
    handler_binary,
)
from chts.node.files import (
    DEFAULT_TOOLKIT_DIR,
    NodeLock,
    NodeState,
    read_source_dir,
)
from chts.node.installer import MODES, RUNTIME_NAME, Node
from chts.node.nri import change_nri

DEFAULT_SOURCE_DIR = "/etc/container-hooks-config"
DEFAULT_READY_FILE = "/run/container-hooks-node/ready"

EPILOG = f"""\
examples (in the DaemonSet's pod, the node's / mounted at /host):
  container-hooks-ctk node preflight
  container-hooks-ctk node run                      # install, verify, label, then watch the ConfigMap
  container-hooks-ctk node ready                    # the readiness probe: exit 0 once verified
  container-hooks-ctk node uninstall                # the cleanup Job
  container-hooks-ctk node install --host-root /tmp/fake-node --restart-mode none
  container-hooks-ctk node install --mode nri       # no runtime entry; containerd 1.7: NRI turned on

install puts the .pyz at {DEFAULT_TOOLKIT_DIR}/versions/ behind {DEFAULT_TOOLKIT_DIR}/bin/container-hooks-runtime
(switched by one atomic rename), syncs --source-dir (a ConfigMap: config.toml, hooks.json, other
*.json go to hooks.d) into /etc/container-hooks, and configures the engine through its drop-in,
running the installed container-hooks-ctk as the host (chroot). The engine is restarted only
when its effective configuration changed: `systemctl restart` run in the host's root, which talks
to the host's PID 1 over /run/systemd.

--mode nri (docs/nri.md): the same .pyz and hooks, but no runtime entry and no restart; the hooks reach
containers through `container-hooks-ctk nri run` on the runtime's NRI socket. Only containerd 1.7
with NRI off is changed: `node nri-enable` (run as the host) writes a drop-in with
[plugins."io.containerd.nri.v1.nri"] disable = false, checked in `containerd config dump`, then one
restart. uninstall removes that drop-in too.
"""

NRI_EPILOG = """examples (what `node install --mode nri` and `node uninstall` run as the host):
  container-hooks-ctk node nri-enable --config /etc/containerd/config.toml
  container-hooks-ctk node nri-disable --config /etc/containerd/config.toml

containerd 1.7 only (2.x runs NRI unless told not to). The drop-in goes where `runtime configure
--drop-in` puts its own (a directory the config imports, else conf.d beside it plus a marked imports
entry); the result is checked in `CONTAINERD config dump` and the files are restored when containerd
would not run NRI. Restart containerd afterwards.
"""


def locked(args: argparse.Namespace, body: Callable[[Node], None], remove_lock: bool = False) -> int:
    node = Node(args)
    with NodeLock(node.host) as lock, one_line_os_errors():
        body(node)
        if remove_lock:
            lock.remove()
    return 0


@contextmanager
def one_line_os_errors() -> Iterator[None]:
    """A file the installer could not handle (full disk, read-only /opt ...) is one line, not a traceback."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or "node installer"
        raise ToolkitError(f"{where}: {exc.strerror or exc}") from None


def bad_mode(args: argparse.Namespace) -> bool:
    """A --mode that is not one: one line and exit status 2 (argparse's own refusal is a usage block)."""
    if args.mode in MODES:
        return False
    print(f"{CTK}: node {args.action}: --mode must be {' or '.join(MODES)}, not {args.mode!r}", file=sys.stderr)
    return True


def run_preflight(args: argparse.Namespace) -> int:
    if bad_mode(args):
        return 2
    Node(args).preflight()
    return 0


def run_install(args: argparse.Namespace) -> int:
    if bad_mode(args):
        return 2
    return locked(args, lambda node: node.install(node.preflight()))


def run_verify(args: argparse.Namespace) -> int:
    return locked(args, lambda node: node.verify())


def run_uninstall(args: argparse.Namespace) -> int:
    return locked(args, lambda node: node.uninstall(node.preflight()), remove_lock=True)


def run_nri_config(args: argparse.Namespace) -> int:
    """`node nri-enable|nri-disable`: containerd 1.7's NRI drop-in, written and checked in containerd's own dump."""
    for line in change_nri(args.config, args.containerd, args.enable):
        if not args.quiet:
            print(line)
    return 0


def run_ready(args: argparse.Namespace) -> int:
    """Readiness: the ready file of this version exists and the host's shim path resolves."""
    node = Node(args)
    try:
        with open(args.ready_file, encoding="utf-8") as handle:
            version = handle.read().split()[0]
    except (OSError, IndexError):
        print(f"{args.ready_file}: not verified yet", file=sys.stderr)
        return 1
    if version != __version__ or not os.path.exists(node.host.path(node.shim)):
        print(f"{args.ready_file}: stale (version {version}, {node.shim} present: no)", file=sys.stderr)
        return 1
    return 0


def run_run(args: argparse.Namespace) -> int:
    """install + verify, then keep the node as configured until SIGTERM (which leaves it working)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node = Node(args)
    seen = source_signature(args.source_dir)  # before the sync: an edit made while verifying is seen next pass
    with NodeLock(node.host), one_line_os_errors():
        mode = node.preflight()
        node.install(mode)
        node.verify()
    while not stop.wait(args.interval):
        with NodeLock(node.host), one_line_os_errors():
            seen = watch_once(node, mode, seen)
    if args.cleanup_on_exit:
        with NodeLock(node.host) as lock, one_line_os_errors():
            node.uninstall(mode)
            lock.remove()
    else:
        node.say("stopping; the node keeps its configuration and the engine keeps running")
    return 0


def watch_once(node: Node, mode: str, seen: str) -> str:
    """One pass of `run`: sync a changed ConfigMap (no restart), re-assert the engine drop-in if it went."""
    current = source_signature(node.args.source_dir)
    if current != seen:
        try:
            node.sync(NodeState(node.host, node.toolkit_dir))
        except ToolkitError as exc:  # a bad edit of the ConfigMap: keep the last good hooks, say why
            print(f"container-hooks-ctk: {exc}; the node keeps its previous hooks", file=sys.stderr)
    effective = effective_config(node.host, node.layout)
    if handler_binary(effective, node.layout, RUNTIME_NAME) != node.shim:
        node.say(f"{node.layout.config}: runtime {RUNTIME_NAME!r} is gone (config regenerated?): configuring again")
        node.install(mode)  # restarted if the running engine lacks the handler (see restart_reason)
        node.verify()
    elif still_serving(node, effective) is False:
        node.install(mode)
        node.verify()
    return current


def still_serving(node: Node, effective: str) -> Optional[bool]:
    """Whether the running engine still serves the handler (None: cannot tell now, ask next pass)."""
    try:
        problem = node.served_problem(effective)
    except ToolkitError:
        return None  # the engine is being restarted by someone else, say
    if problem:
        node.say(f"{problem}: configuring again")
    return problem is None


def source_signature(source_dir: str) -> str:
    """What the ConfigMap holds now (kubelet swaps its ..data link atomically on an update)."""
    try:
        return repr([(item.host_path, item.data) for item in read_source_dir(source_dir)])
    except ToolkitError as exc:
        return f"error: {exc}"


def register(subparsers: Any) -> None:
    node = add_command(subparsers, "node", "install, verify and keep the toolkit on a Kubernetes node", EPILOG)
    actions = node.add_subparsers(dest="action", metavar="ACTION")
    for action, summary, func in (
        (
            "preflight",
            "check that the node can run the shim: python3, engine and layout, service manager",
            run_preflight,
        ),
        ("install", "install the .pyz, sync hooks, configure the engine's drop-in, restart it if needed", run_install),
        ("verify", "run a container through the handler with a probe hook; write the ready file; label", run_verify),
        ("run", "preflight, install and verify, then re-sync hooks and re-assert the drop-in until SIGTERM", run_run),
        ("uninstall", "remove the label, the drop-in and every file of the installer; restart once", run_uninstall),
        ("ready", "exit 0 when this node was verified by this version (a readiness probe)", run_ready),
    ):
        parser = add_command(actions, action, summary, EPILOG)
        parser.set_defaults(func=func)
        parser.add_argument("--host-root", default="/host", metavar="DIR", help="the node's / (default: %(default)s)")
        parser.add_argument(
            "--toolkit-dir", default=DEFAULT_TOOLKIT_DIR, metavar="DIR", help="host path (default: %(default)s)"
        )
        parser.add_argument("--ready-file", default=DEFAULT_READY_FILE, metavar="PATH", help="default: %(default)s")
        if action == "ready":
            continue
        parser.add_argument("--engine", default="auto", choices=("auto", "containerd", "crio"), help="default: auto")
        if action in ("preflight", "install"):
            parser.add_argument(
                "--mode",
                default="shim",
                metavar="{" + ",".join(MODES) + "}",
                help="shim: a runtime entry for the shim (default); nri: hooks through `nri run` on the runtime's "
                "NRI socket, no runtime entry, no restart (containerd 1.7: NRI turned on, one restart)",
            )
        parser.add_argument(
            "--restart-mode",
            default="auto",
            choices=("auto", "systemd", "signal", "none"),
            help="auto: systemd when the host runs it (default: %(default)s)",
        )
        parser.add_argument("--engine-timeout", type=float, default=120.0, metavar="S", help="default: %(default)s")
        parser.add_argument(
            "--source-dir",
            default=DEFAULT_SOURCE_DIR,
            metavar="DIR",
            help="the mounted ConfigMap (default: %(default)s)",
        )
        parser.add_argument("--set-as-default", action="store_true", help="make the shim the engine's default runtime")
        parser.add_argument("--node-name", help="this node (default: $NODE_NAME)")
        parser.add_argument("--api-server", metavar="URL", help="default: the in-cluster API server")
        parser.add_argument("--token-file", metavar="PATH", help="default: the pod's service account token")
        parser.add_argument("--ca-file", metavar="PATH", help="default: the pod's service account CA")
        if action == "run":
            parser.add_argument(
                "--interval", type=float, default=10.0, metavar="S", help="watch period (default: %(default)s)"
            )
            parser.add_argument("--cleanup-on-exit", action="store_true", help="uninstall on SIGTERM")
    for action, summary in (
        ("nri-enable", "containerd 1.7: turn NRI on through a drop-in, checked in `containerd config dump`"),
        ("nri-disable", "remove the NRI drop-in nri-enable wrote (and its imports entry)"),
    ):
        parser = add_command(actions, action, summary, NRI_EPILOG)
        parser.set_defaults(func=run_nri_config, enable=action == "nri-enable")
        parser.add_argument(
            "--config", default="/etc/containerd/config.toml", metavar="PATH", help="default: %(default)s"
        )
        parser.add_argument(
            "--containerd", default="containerd", metavar="BINARY", help="the containerd whose dump judges"
        )
