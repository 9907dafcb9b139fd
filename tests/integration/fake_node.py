"""A fake Kubernetes node for the node installer: a host root in /tmp with a real containerd, and a fake systemd.

The node's root is a temporary directory that looks like a host to everything run in it with
chroot: the real /usr (read-only) and the usual top-level links, its own /etc, /opt, /run and /var,
and /proc, /sys, /dev from the machine. All mounts live in a private mount namespace held open by
one `unshare` process, so nothing is mounted on the machine itself and everything goes with it.
containerd runs chrooted in it on the node's default paths, which are therefore private
(/run/containerd/containerd.sock is ROOT/run/containerd/containerd.sock).

systemd is played by the test: `systemctl` in the node is a script that records its arguments and
waits while `FakeNode.serve_systemctl()` (a thread of the test) restarts containerd by the PID it
started.

    with fake_node(tmp_path, CONTAINERD_TOML) as node:
        node.installer("install", ...)            # the .pyz as the DaemonSet runs it, --host-root ROOT
        node.ctr("run", ...)                       # the node's ctr against the node's containerd
        node.restarts                              # how many times systemctl restart ran
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from conftest import CLEAN_PATH, require_binary, require_root
from daemons import READY_TIMEOUT, remove_tree, run_tool, short_directory, stop_process, wait_until

SYSTEMCTL = """\
#!/bin/sh
# systemctl as the test plays it: record the call, wait until the test restarted the unit.
if [ "$SYSTEMD_IGNORE_CHROOT" != 1 ] || [ -e /run/fake-systemd/ignore ]; then
  echo "Running in chroot, ignoring request." >&2  # what systemctl says in a chroot (exit 0 before v227)
  exit 0
fi
echo "$*" >> /run/fake-systemd/calls
case "$1" in
restart)
  : > /run/fake-systemd/request
  while [ -e /run/fake-systemd/request ]; do sleep 0.05; done
  exit "$(cat /run/fake-systemd/status)";;
show)  # show --property=MainPID --value UNIT
  cat /run/fake-systemd/main-pid;;
esac
"""

# k3s's client as the installer calls it (`k3s ctr ...`); the node's containerd stands in for k3s's own.
K3S = """\
#!/bin/sh
[ "$1" = ctr ] && shift && exec ctr "$@"
echo "k3s stand-in: only ctr" >&2; exit 1
"""


class FakeNode:
    def __init__(self, root: Path, holder: subprocess.Popen[bytes], config: str, socket: str) -> None:
        self.root = root
        self.holder = holder
        self.config = config  # the node's containerd config and socket (host paths)
        self.socket = socket
        self.containerd: Optional[subprocess.Popen[bytes]] = None
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ running things in the node

    def in_namespace(self, argv: List[str]) -> List[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", *argv]

    def in_node(self, argv: List[str]) -> List[str]:
        return self.in_namespace(["chroot", str(self.root), *argv])

    def run(self, argv: List[str], check: bool = True, **kwargs: Any) -> Any:
        return run_tool(self.in_node(argv), env={"PATH": CLEAN_PATH}, check=check, **kwargs)

    def ctr(self, *args: str, check: bool = True) -> Any:
        return self.run(["ctr", "-a", self.socket, *args], check=check, timeout=120)

    def installer(
        self, pyz: Path, *args: str, check: bool = True, env: Optional[Dict[str, str]] = None, **kwargs: Any
    ) -> Any:
        """``ctk node ARGS --host-root ROOT``: the .pyz in the pod's place (the node's root mounted elsewhere)."""
        argv = [str(pyz), "ctk", "node", *args, "--host-root", str(self.root)]
        environment = {"PATH": CLEAN_PATH, **(env or {})}
        return run_tool(self.in_namespace(argv), env=environment, check=check, timeout=600, **kwargs)

    def popen_installer(self, pyz: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
        argv = [str(pyz), "ctk", "node", *args, "--host-root", str(self.root)]
        with open(log, "wb") as out:
            return subprocess.Popen(
                self.in_namespace(argv), stdout=out, stderr=subprocess.STDOUT, env={"PATH": CLEAN_PATH}
            )

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    # ------------------------------------------------------------------ containerd and its service manager

    def start_containerd(self) -> None:
        log = open(self.path("/var/log/containerd.log"), "ab")  # noqa: SIM115 - kept open by the daemon
        with log:
            self.containerd = subprocess.Popen(
                self.in_node(["containerd", "--config", self.config]),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": CLEAN_PATH},
            )
        wait_until(self.answers, READY_TIMEOUT, "the node's containerd", self.path("/var/log/containerd.log"))
        self.path("/run/fake-systemd/main-pid").write_text(f"{self.containerd.pid}\n")

    def answers(self) -> bool:
        assert self.containerd is not None
        if self.containerd.poll() is not None:
            raise AssertionError(f"the node's containerd exited {self.containerd.returncode}")
        return bool(self.ctr("version", check=False).returncode == 0)

    def stop_containerd(self) -> None:
        if self.containerd is not None:
            stop_process(self.containerd)
            self.containerd = None

    @property
    def calls(self) -> List[str]:
        path = self.path("/run/fake-systemd/calls")
        return path.read_text().splitlines() if path.exists() else []

    @property
    def restarts(self) -> int:
        return sum(1 for call in self.calls if call.startswith("restart"))

    def serve_systemctl(self) -> None:
        """Play systemd: a `systemctl restart` in the node restarts the containerd this test started."""
        request = self.path("/run/fake-systemd/request")
        status = self.path("/run/fake-systemd/status")
        while not self.stopping.wait(0.05):
            if request.exists():
                self.stop_containerd()
                try:
                    self.start_containerd()
                    status.write_text("0\n")
                except AssertionError:
                    status.write_text("1\n")
                request.unlink()


def build_root(root: Path, containerd_toml: str, config: str) -> None:
    """The node's own directories and files; /usr and friends are mounted later, in the namespace."""
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        if os.path.islink(f"/{link}"):
            (root / link).symlink_to(os.readlink(f"/{link}"))
    for directory in ("usr", "proc", "sys", "dev", "tmp", "etc", "run/fake-systemd", "run/systemd/system",
                      "var/log", "var/tmp", "opt", "root", os.path.dirname(config).lstrip("/")):  # fmt: skip
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy("/etc/os-release", root / "etc" / "os-release")
    (root / config.lstrip("/")).write_text(containerd_toml)
    for name, script in (("systemctl", SYSTEMCTL), ("k3s", K3S)):
        (root / "run" / "fake-systemd" / name).write_text(script)
        (root / "run" / "fake-systemd" / name).chmod(0o755)


MOUNTS = """\
set -e
R="$1"
# the node's / must be a mount point: runc makes it a slave mount and pivots below it
mount --bind "$R" "$R"
mount --rbind /usr "$R/usr"
mount -o remount,bind,ro "$R/usr"
mount -t tmpfs -o mode=755 tmpfs "$R/usr/local/sbin"
ln -s /run/fake-systemd/systemctl /run/fake-systemd/k3s "$R/usr/local/sbin/"
mount --rbind /proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
# shared within this namespace only: a pod's hostPath "/" with HostToContainer propagation needs it
mount --make-rshared "$R"
"""


@contextmanager
def fake_node(
    containerd_toml: str,
    config: str = "/etc/containerd/config.toml",
    socket: str = "/run/containerd/containerd.sock",
    engine_bin: Optional[Path] = None,
) -> Iterator[FakeNode]:
    """A fake node with its containerd running and the test playing systemd; everything stopped afterwards.

    ``config`` and ``socket`` are where the node keeps them (k3s: under /var/lib/rancher and /run/k3s).
    ``engine_bin``: a directory of another containerd's binaries (tests/newer_engines.py) the node runs
    instead of the machine's: copied to the node's /opt/engine-bin, linked first on its PATH.
    """
    require_root()
    for tool in ("containerd", "ctr", "runc", "unshare", "nsenter", "chroot"):
        require_binary(tool)
    root = short_directory("chn-")
    build_root(root, containerd_toml, config)
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "infinity"])
    node = FakeNode(root, holder, config, socket)
    try:
        wait_until(lambda: os.readlink(f"/proc/{holder.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"),
                   READY_TIMEOUT, "the node's mount namespace")  # fmt: skip
        run_tool(node.in_namespace(["sh", "-c", MOUNTS, "sh", str(root)]))
        if engine_bin is not None:
            shutil.copytree(engine_bin, root / "opt" / "engine-bin")
            links = [f"/opt/engine-bin/{name}" for name in sorted(os.listdir(engine_bin))]
            run_tool(node.in_namespace(["ln", "-s", *links, f"{root}/usr/local/sbin/"]))
        node.start_containerd()
        node.thread = threading.Thread(target=node.serve_systemctl, daemon=True)
        node.thread.start()
        yield node
    finally:
        node.stopping.set()
        if node.thread is not None:
            node.thread.join()
        node.stop_containerd()
        # containers the probe or the test left: their shims hold mounts in the namespace
        stop_process(holder)
        remove_tree(root)
