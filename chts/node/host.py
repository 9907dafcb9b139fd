"""What a node installer learns about the host whose root is mounted at --host-root: OS, Python, engine, services.

Everything here reads files under the host root (a pod sees the node's / at /host); commands that
must run as the host (the engine's own tools, systemctl, the installed ctk) go through
`HostRoot.run`, which chroots into the host root, so their paths are the host's own paths.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from chts.base.text_files import toml_loads
from chts.errors import ToolkitError
from chts.node.kill_switch import host_environment

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The shim starts as `#!/usr/bin/python3` (build.py's default --python): that file on the host must work.
HOST_PYTHON = "/usr/bin/python3"
MIN_PYTHON = (3, 8)
COMMAND_TIMEOUT = 120
# Every program run as the host gets this environment. SYSTEMD_IGNORE_CHROOT: systemctl in a chroot
# otherwise may answer "Running in chroot, ignoring request" and restart nothing; the host root is the
# host's own /, with its /run/systemd, so systemctl reaches the host's PID 1 like any host program.
HOST_ENV = {"PATH": CLEAN_PATH, "HOME": "/root", "SYSTEMD_IGNORE_CHROOT": "1"}

# Hosts built without a Python interpreter on purpose: no package adds one, so say so plainly.
NO_PYTHON_DISTRIBUTIONS = {
    "bottlerocket": "Bottlerocket",
    "flatcar": "Flatcar Container Linux",
    "talos": "Talos Linux",
    "cos": "Container-Optimized OS",
    "fedora-coreos": "Fedora CoreOS",
}


MAX_SYMLINKS = 40  # what the kernel follows in one lookup before ELOOP


def resolve_in_root(root: str, host_path: str, follow_last: bool = True) -> str:
    """Where the host's ``host_path`` is, seen from here: the host's symlinks followed as the host (a
    chroot into ``root``) follows them, the result a path under ``root`` with no symlink in it.

    An absolute link target starts again at ``root``; ``..`` stops at ``root`` (openat2's RESOLVE_IN_ROOT).
    Components that do not exist yet are taken as they are (a file or directory to be created). With
    ``follow_last`` false the last component is not followed (a link to replace or remove, as lstat).
    More than MAX_SYMLINKS links is a one-line ToolkitError (a loop).
    """
    pending = [part for part in reversed(host_path.split("/")) if part not in ("", ".")]
    done: List[str] = []
    links = 0
    while pending:
        name = pending.pop()
        if name == "..":
            if done:
                done.pop()
            continue
        seen = os.path.join(root, *done, name)
        if (pending or follow_last) and os.path.islink(seen):
            links += 1
            if links > MAX_SYMLINKS:
                raise ToolkitError(
                    f"{os.path.join(root, host_path.lstrip('/'))}: more than {MAX_SYMLINKS} symbolic links "
                    f"on the way (a loop?) in the host root {root}"
                )
            target = os.readlink(seen)
            if target.startswith("/"):
                done = []
            pending.extend(part for part in reversed(target.split("/")) if part not in ("", "."))
            continue
        done.append(name)
    return os.path.join(root, *done)


class HostRoot:
    """The host's root as this process sees it, and a way to run the host's own programs."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def path(self, host_path: str, follow_last: bool = True) -> str:
        """Where the host's absolute ``host_path`` is seen from here, resolved inside the host root
        (resolve_in_root): whatever links the host has, nothing outside the host root is ever named."""
        return resolve_in_root(self.root, host_path, follow_last)

    def exists(self, host_path: str) -> bool:
        return os.path.lexists(self.path(host_path, follow_last=False))

    def resolve(self, host_path: str) -> Optional[str]:
        """``host_path`` with the host's symlinks followed inside the host root (None if it dangles)."""
        seen = self.path(host_path)
        if not os.path.exists(seen):
            return None
        relative = os.path.relpath(seen, self.root)
        return "/" if relative == "." else "/" + relative

    def enter(self) -> None:
        """Become a process of the host's file system (run in the child, before exec).

        os.chroot rather than chroot(1): the installer's image holds Python and the .pyz, nothing else.
        """
        if self.root != "/":
            os.chroot(self.root)
            os.chdir("/")

    def run(
        self, argv: Sequence[str], what: str, timeout: float = COMMAND_TIMEOUT, accept: Sequence[int] = (0,)
    ) -> str:
        """Run a host program (host paths, the host's PATH); its stdout, or ToolkitError with its last words
        when it exits with a status not in ``accept``."""
        shown = " ".join(argv)
        try:
            done = subprocess.run(
                list(argv),
                env={**HOST_ENV, **host_environment()},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                preexec_fn=self.enter,  # safe: no other thread runs while the installer runs host programs
            )
        except subprocess.TimeoutExpired:
            raise ToolkitError(f"{what}: `{shown}` did not finish in {timeout:.0f} s") from None
        except OSError as exc:
            raise ToolkitError(f"{what}: cannot run `{shown}` in {self.root}: {exc.strerror}") from None
        if done.returncode not in accept:
            words = done.stderr.strip().splitlines() or done.stdout.strip().splitlines()
            last = words[-1] if words else "(it printed nothing)"
            raise ToolkitError(f"{what}: `{shown}` exited {done.returncode}: {last}")
        return done.stdout


# ----------------------------------------------------------------------------- the OS and its Python


def os_release(host: HostRoot) -> Dict[str, str]:
    """The host's os-release(5) fields (empty when it has none)."""
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        path = host.path(candidate)
        if os.path.isfile(path):
            fields = {}
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    key, sep, value = line.strip().partition("=")
                    if sep and key and not key.startswith("#"):
                        fields[key] = value.strip().strip("\"'")
            return fields
    return {}


def python_version_of(host: HostRoot, interpreter: str) -> Optional[Tuple[int, int]]:
    """The version of the host's ``interpreter``, read from its file names (nothing of the host is run).

    /usr/bin/python3 is a link to python3.N on every distribution that ships one; when it is not,
    the one python3.N standard library beside it (lib/python3.N/os.py) tells.
    """
    resolved = host.resolve(interpreter)
    if resolved is None:
        return None
    match = re.fullmatch(r"python(\d+)\.(\d+)", os.path.basename(resolved))
    if match:
        return int(match.group(1)), int(match.group(2))
    prefix = os.path.dirname(os.path.dirname(resolved))
    versions = set()
    for lib in ("lib", "lib64"):
        directory = host.path(os.path.join(prefix, lib))
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                found = re.fullmatch(r"python(\d+)\.(\d+)", name)
                if found and os.path.isfile(os.path.join(directory, name, "os.py")):
                    versions.add((int(found.group(1)), int(found.group(2))))
    return versions.pop() if len(versions) == 1 else None


def archive_interpreter(archive: Optional[str]) -> str:
    """The interpreter the archive's sh start runs (build.py --python), which the node must have."""
    if archive is None:
        return HOST_PYTHON
    try:
        with open(archive, "rb") as handle:
            first = handle.read(16384)
    except OSError:
        return HOST_PYTHON
    match = re.search(rb"exec '(/[^']+)' -ISc '", first)
    return match.group(1).decode("utf-8", "replace") if match else HOST_PYTHON


def check_python(host: HostRoot, interpreter: str = HOST_PYTHON) -> str:
    """One line about the host's ``interpreter``; ToolkitError when the shim could not run on this host."""
    release = os_release(host)
    distribution = release.get("PRETTY_NAME") or release.get("ID") or "this host"
    known = NO_PYTHON_DISTRIBUTIONS.get(release.get("ID", ""))
    version = python_version_of(host, interpreter)
    if version is None:
        why = f"{known} ships no Python" if known else f"no {interpreter}"
        raise ToolkitError(
            f"{host.path(interpreter)}: {why}: the shim runs on the node as {interpreter} "
            f"(3.8 or later); {distribution} is not supported"
        )
    if version < MIN_PYTHON:
        raise ToolkitError(
            f"{host.path(interpreter)}: Python {version[0]}.{version[1]} is too old: the shim needs 3.8 or later"
        )
    return f"{interpreter} is Python {version[0]}.{version[1]} ({distribution})"


# ----------------------------------------------------------------------------- engine and layout


class EngineLayout(NamedTuple):
    """Where an engine keeps its config on this kind of node, and how to reach and restart it."""

    engine: str  # "containerd" or "crio": the `runtime configure --runtime` value
    layout: str  # "plain", "drop-in directory", "k3s", "rke2"
    config: str  # host path of the main config file
    socket: str  # host path of the engine's API socket
    units: Sequence[str]  # systemd units that run it, the first present wins
    ctr: Sequence[str]  # the containerd client on this layout (empty for CRI-O)


LAYOUTS = (
    EngineLayout(
        "containerd",
        "k3s",
        "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
        "/run/k3s/containerd/containerd.sock",
        ("k3s", "k3s-agent"),
        ("k3s", "ctr"),
    ),
    EngineLayout(
        "containerd",
        "rke2",
        "/var/lib/rancher/rke2/agent/etc/containerd/config.toml",
        "/run/k3s/containerd/containerd.sock",
        ("rke2-server", "rke2-agent"),
        ("/var/lib/rancher/rke2/bin/ctr",),
    ),
    EngineLayout(
        "containerd",
        "plain",
        "/etc/containerd/config.toml",
        "/run/containerd/containerd.sock",
        ("containerd",),
        ("ctr",),
    ),
    # /run, not /var/run: on hosts /var/run is a link to the absolute /run, which from the pod is the pod's own
    EngineLayout("crio", "plain", "/etc/crio/crio.conf", "/run/crio/crio.sock", ("crio",), ()),
)


def detect_layouts(host: HostRoot) -> List[EngineLayout]:
    """Every engine layout whose config or socket is on the host, k3s/rke2 before a plain containerd."""
    found: List[EngineLayout] = []
    for layout in LAYOUTS:
        config_dir = os.path.dirname(layout.config)
        if host.exists(layout.socket) or host.exists(layout.config) or host.exists(config_dir):
            if (
                layout.engine == "containerd"
                and layout.layout == "plain"
                and any(f.engine == "containerd" for f in found)
            ):
                continue  # k3s/rke2 bring their own containerd; a packaged one beside it is not the node's
            if layout.layout == "plain" and uses_drop_ins(host, layout):
                layout = layout._replace(layout="drop-in directory")
            found.append(layout)
    return found


def uses_drop_ins(host: HostRoot, layout: EngineLayout) -> bool:
    """CRI-O reads crio.conf.d whenever it exists; containerd reads what its config's ``imports`` names."""
    if layout.engine == "crio":
        return drop_in_dir_of(host, layout) is not None
    try:
        with open(host.path(layout.config), encoding="utf-8", errors="replace") as handle:
            imports = toml_loads(handle.read(1 << 20)).get("imports")
    except (OSError, ValueError):
        return False  # absent or unreadable: `runtime configure` says what is wrong with it
    return isinstance(imports, list) and bool(imports)


def drop_in_dir_of(host: HostRoot, layout: EngineLayout) -> Optional[str]:
    """The engine's drop-in directory when the host has one (containerd conf.d, crio.conf.d)."""
    name = "crio.conf.d" if layout.engine == "crio" else "conf.d"
    directory = os.path.join(os.path.dirname(layout.config), name)
    return directory if os.path.isdir(host.path(directory)) else None


def choose_layout(host: HostRoot, engine: str) -> EngineLayout:
    """The one engine this node runs (``engine`` "auto" or a name); ToolkitError when it cannot be told."""
    found = [layout for layout in detect_layouts(host) if engine in ("auto", layout.engine)]
    if not found:
        wanted = "containerd or CRI-O" if engine == "auto" else engine
        places = ", ".join(sorted({host.path(layout.config) for layout in LAYOUTS}))
        raise ToolkitError(f"{host.root}: no {wanted} found on the host (looked for {places})")
    engines = sorted({layout.engine for layout in found})
    if len(engines) > 1:
        raise ToolkitError(f"{host.root}: both {' and '.join(engines)} are on this host: choose one with --engine")
    return found[0]


# ----------------------------------------------------------------------------- service manager


def has_systemd(host: HostRoot) -> bool:
    """sd_booted(3): the host runs systemd when /run/systemd/system is a directory."""
    return os.path.isdir(host.path("/run/systemd/system"))


def unit_of(host: HostRoot, layout: EngineLayout) -> str:
    """The first of the layout's units with a unit file on the host (else the first name)."""
    for unit in layout.units:
        for directory in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"):
            if host.exists(f"{directory}/{unit}.service"):
                return unit
    return layout.units[0]
