"""Real container engines started by tests on temporary paths, and stopped by the PID they started.

Nothing here reads or writes /etc/docker, /etc/containerd or /etc/containers: every daemon gets
its config file, state directories and socket under a directory of the test's own. Networking
is off (dockerd `--bridge none --iptables=false`, `podman --network none`), so no bridge or
firewall rule is left on the host.

    with dockerd(tmp_path, {"runtimes": {...}}) as engine:
        engine.import_rootfs(busybox_rootfs)            # -> "busybox:local"
        engine.docker("run", "--rm", "busybox:local", "true")
        engine.write_config({...}); engine.reload()     # SIGHUP: runtimes and default-runtime

    with containerd(tmp_path, user_toml) as engine:     # user_toml: the [plugins...] part
        engine.ctr("run", "--rm", "--runc-binary", shim, "--rootfs", rootfs, "id", "/bin/true")
    containerd_config_dump(config_path)                 # what containerd really reads

    with cri_containerd("2", image_archive) as engine:  # containerd 2.x / "1.7", CRI and NRI, own mount namespace
        pod = engine.cri.run_pod("p"); engine.cri.create_container(pod, "c", ["sleep", "9"])  # cri.py
        NriPlugin(ctk, engine.nri_socket, tmp_path, env).start(); engine.restart()

    engine = PodmanEnv(tmp_path, containers_conf)      # no daemon: an environment
    # conmon drops the environment: give podman runtime_with_env(dir, toolkit.shim, toolkit.env())
    engine.import_rootfs(busybox_rootfs); engine.podman("run", "--rm", ...); engine.reset()
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

from conftest import CLEAN_PATH, require, require_binary, require_root

IMAGE = "busybox:local"
READY_TIMEOUT = 60.0
PRIVATE_RUN_CONTAINERD = 'mkdir -p /run/containerd && mount -t tmpfs -o mode=0711 tmpfs /run/containerd && exec "$@"'
STOP_TIMEOUT = 20.0
D = TypeVar("D", bound="Daemon")


def short_directory(prefix: str, parent: str = "/tmp") -> Path:
    """A directory under /tmp: unix socket paths must stay under 108 bytes, pytest's tmp_path may not."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Optional[Path] = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.05)


def run_tool(argv: List[str], env: Optional[Dict[str, str]] = None, check: bool = True, **kwargs: Any) -> Any:
    """Run a client command; with ``check`` a failure shows its stderr in the assertion."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon we started (never by name), wait, SIGKILL only if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def unmount_below(directory: Path) -> None:
    """Lazy-unmount anything a crashed daemon left mounted under ``directory``, deepest first."""
    prefix = str(directory.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def remove_tree(directory: Path) -> None:
    unmount_below(directory)
    shutil.rmtree(directory, ignore_errors=True)


def import_tar_of(rootfs: Path, argv: List[str], env: Optional[Dict[str, str]] = None) -> None:
    """Pipe ``tar -C rootfs -c .`` into an image-import command (docker import -, podman import -)."""
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        run_tool(argv, env=env, stdin=tar.stdout)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()


class Daemon:
    """A daemon this test started: its config, its state directory (socket, log) and its process."""

    def __init__(self, config_file: Path, state: Path, process: subprocess.Popen[bytes], socket: str, log: str) -> None:
        self.config_file = config_file
        self.state = state
        self.socket = state / socket
        self.log = state / log
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@contextmanager
def serving(daemon: D, answers: Callable[[], bool], name: str) -> Iterator[D]:
    """Wait until ``answers()`` (or the daemon died), yield it; always stop it by PID and remove its state."""
    try:
        wait_until(lambda: not daemon.alive() or answers(), READY_TIMEOUT, f"{name} to answer", daemon.log)
        if not daemon.alive():
            tail = daemon.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{name} exited {daemon.process.returncode}:\n{tail}")
        yield daemon
    finally:
        stop_process(daemon.process)
        remove_tree(daemon.state)


# --------------------------------------------------------------------------- dockerd


class Dockerd(Daemon):
    """A running dockerd: ``docker(...)`` talks to it, ``reload()`` applies daemon.json changes."""

    def __init__(self, config_file: Path, state: Path, process: subprocess.Popen[bytes]) -> None:
        super().__init__(config_file, state, process, "docker.sock", "dockerd.log")
        self.pid_file = state / "dockerd.pid"

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> Any:
        """``docker -H unix://SOCK args...`` -> CompletedProcess[str]; raises with stderr when check fails."""
        return run_tool(
            ["docker", "-H", f"unix://{self.socket}", *args], env=client_env(), check=check, timeout=timeout
        )

    def write_config(self, daemon_json: Dict[str, Any]) -> None:
        self.config_file.write_text(json.dumps(daemon_json, indent=2) + "\n")

    def runtimes(self) -> Dict[str, Any]:
        """``docker info``'s runtimes, as the daemon currently has them."""
        info = json.loads(self.docker("info", "--format", "{{json .}}").stdout)
        return {"runtimes": info.get("Runtimes", {}), "default": info.get("DefaultRuntime")}

    def reload(self) -> None:
        """SIGHUP dockerd and wait until it logged the outcome (runtimes reload without a restart)."""
        before = self.reload_count()
        os.kill(self.pid, signal.SIGHUP)
        self.wait_for_reload(before)

    def wait_for_reload(self, before: int) -> None:
        """Wait until dockerd logged a reload outcome after ``before = reload_count()`` (a SIGHUP sent by others)."""
        wait_until(lambda: self.reload_count() > before, READY_TIMEOUT, "dockerd to reload", self.log)

    def reload_count(self) -> int:
        """How many reloads dockerd has finished (successfully or not), from its log."""
        text = self.log.read_text(errors="replace")
        return text.count("Reloaded configuration") + text.count("Error reconfiguring the daemon")

    def import_rootfs(self, rootfs: Path, tag: str = IMAGE) -> str:
        """Import a directory as an image (no registry here) and return its tag."""
        import_tar_of(rootfs, ["docker", "-H", f"unix://{self.socket}", "import", "-", tag], env=client_env())
        return tag


def client_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A clean environment (the runner's DOCKER_HOST / CONTAINER_HOST must not redirect clients) plus ``extra``.

    A daemon passes its environment down to the runtime it starts (dockerd -> containerd -> shim ->
    runtime), so ``toolkit.env()`` given to a daemon points the hooks shim at a test's toolkit root.
    """
    env = {"PATH": CLEAN_PATH, "HOME": os.environ.get("HOME", "/root")}
    if "CONTAINER_HOOKS_CACHE_DIR" in os.environ:  # the session's private cache, not the host's /run
        env["CONTAINER_HOOKS_CACHE_DIR"] = os.environ["CONTAINER_HOOKS_CACHE_DIR"]
    env.update(extra or {})
    return env


@contextmanager
def dockerd(
    tmp_path: Path,
    daemon_json: Optional[Dict[str, Any]] = None,
    config_file: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
    wrapper: Sequence[str] = (),
    binary: Optional[str] = None,
) -> Iterator[Dockerd]:
    """Start dockerd with ``config_file`` (default ``tmp_path/daemon.json``, written from ``daemon_json``).

    Data, exec root and socket live in a fresh /tmp directory removed afterwards. The daemon is
    stopped by its PID and waited for, even when the test fails. ``env`` is added to the daemon's
    environment (and so reaches the runtimes it starts). ``wrapper`` is put before dockerd's argv
    (``nsenter -t PID -m --``: a dockerd in another mount namespace); it must exec, not fork.
    ``binary`` is another dockerd than the host's (tests/newer_engines.py: Docker 26).
    """
    require_root()
    binary = binary or require_binary("dockerd")
    require_binary("docker")
    if config_file is None:
        config_file = tmp_path / "daemon.json"
        config_file.write_text(json.dumps(daemon_json or {}, indent=2) + "\n")
    state = short_directory("chd-")
    log = state / "dockerd.log"
    # dockerd uses a containerd whose socket is at /run/containerd/containerd.sock when there is one (the
    # host's, or a stale file another program left) instead of starting its own: hermetic only with a
    # private, empty /run/containerd (a mount namespace of its own, a slave of the caller's so that
    # `-v SRC:DST:rslave` still works; its PID stays dockerd's: sh execs it; inside a wrapper's namespace).
    private_run = ["unshare", "--mount", "--propagation", "slave", "sh", "-c", PRIVATE_RUN_CONTAINERD, "sh"]
    argv = [
        *wrapper,
        *private_run,
        binary,
        "--config-file", str(config_file.resolve()),
        "--data-root", str(state / "data"),
        "--exec-root", str(state / "exec"),
        "--pidfile", str(state / "dockerd.pid"),
        "-H", f"unix://{state / 'docker.sock'}",
        "--bridge", "none", "--iptables=false", "--ip6tables=false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=client_env(env))
    engine = Dockerd(config_file, state, process)

    def answers() -> bool:
        try:
            return bool(engine.docker("version", check=False, timeout=10).returncode == 0)
        except subprocess.TimeoutExpired:  # a daemon still starting on a busy machine can hold the call: ask again
            return False

    with serving(engine, answers, "dockerd"):
        yield engine


# --------------------------------------------------------------------------- containerd


class Containerd(Daemon):
    """A running containerd: ``ctr(...)`` talks to it (from inside its mount namespace when it has one)."""

    def __init__(
        self, config_file: Path, state: Path, process: subprocess.Popen[bytes], ctr: str = "ctr", enter: bool = False
    ) -> None:
        super().__init__(config_file, state, process, "containerd.sock", "containerd.log")
        self.ctr_binary = ctr
        self.enter = enter

    def ctr(self, *args: str, check: bool = True, timeout: float = 60) -> Any:
        """``ctr -a SOCK args...`` -> CompletedProcess[str]."""
        inside = ["nsenter", "-t", str(self.pid), "-m"] if self.enter else []
        argv = [*inside, self.ctr_binary, "-a", str(self.socket), *args]
        return run_tool(argv, env=client_env(), check=check, timeout=timeout)


def containerd_paths_toml(state: Path, version: int = 2) -> str:
    """The top of a containerd config that keeps all its state under ``state`` (put first in the file)."""
    return (
        f"version = {version}\n"
        f'root = "{state / "root"}"\n'
        f'state = "{state / "state"}"\n'
        f"\n[grpc]\n"
        f'  address = "{state / "containerd.sock"}"\n'
        f"\n[ttrpc]\n"
        f'  address = "{state / "containerd.sock.ttrpc"}"\n'
    )


def containerd_config_dump(config_file: Path) -> str:
    """``containerd --config F config dump``: the merged config containerd reads, ``imports`` included."""
    binary = require_binary("containerd")
    done = run_tool([binary, "--config", str(config_file), "config", "dump"], env=client_env())
    return str(done.stdout)


@contextmanager
def containerd(
    tmp_path: Path, user_toml: str = "", version: int = 2, env: Optional[Dict[str, str]] = None
) -> Iterator[Containerd]:
    """Start containerd on a config made of temp paths + ``user_toml`` (tables only), in ``tmp_path/config.toml``.

    ``engine.config_file`` may be rewritten by the test; containerd reads it only at start.
    """
    require_root()
    binary = require_binary("containerd")
    require_binary("ctr")
    state = short_directory("chc-")
    config_file = tmp_path / "containerd-config.toml"
    config_file.write_text(containerd_paths_toml(state, version) + "\n" + user_toml)
    with start_containerd(binary, config_file, state, env) as engine:
        yield engine


# containerd puts its shims' sockets under /run/containerd whatever its state directory says: a containerd
# of a test's own gets a tmpfs there, in a mount namespace of its own (unshare execs: the PID is containerd's)
PRIVATE_RUN = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mkdir -p /run/containerd /run/nri && mount -t tmpfs tmpfs /run/containerd'
               ' && mount -t tmpfs tmpfs /run/nri && exec "$0" "$@"']  # fmt: skip
# containerd 2.x serves NRI on /var/run/nri/nri.sock unless its config says otherwise: a containerd the
# tests start never makes (or takes over) the host's, whatever file it runs on.
PRIVATE_NRI = ["unshare", "--mount", "--propagation", "slave", "sh", "-c",
               'mkdir -p /run/nri && mount -t tmpfs tmpfs /run/nri && exec "$0" "$@"']  # fmt: skip


@contextmanager
def start_containerd(
    binary: str,
    config_file: Path,
    state: Path,
    env: Optional[Dict[str, str]] = None,
    private_flags: bool = False,
    private_run: bool = False,
) -> Iterator[Containerd]:
    """Run containerd with a config the caller wrote (its paths under ``state``, see containerd_paths_toml).

    ``private_flags``: the config file is a host's, untouched; root, state and socket come from
    containerd's own flags instead (they win over the file's ``root``, ``state`` and ``grpc.address``).
    ``private_run``: in a mount namespace with its own /run/containerd (see PRIVATE_RUN), its shims and
    the ``ctr`` beside ``binary`` first on its PATH; ``ctr`` runs in that namespace too.
    """
    log = state / "containerd.log"
    argv = [*(PRIVATE_RUN if private_run else PRIVATE_NRI), binary, "--config", str(config_file)]
    if private_run:
        env = {**(env or {}), "PATH": f"{Path(binary).parent}:{(env or {}).get('PATH', CLEAN_PATH)}"}
    if private_flags:
        argv += [
            "--root",
            str(state / "root"),
            "--state",
            str(state / "state"),
            "--address",
            str(state / "containerd.sock"),
        ]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=client_env(env))
    ctr = str(Path(binary).parent / "ctr") if private_run else "ctr"
    engine = Containerd(config_file, state, process, ctr=ctr, enter=private_run)
    with serving(engine, lambda: engine.ctr("version", check=False, timeout=10).returncode == 0, "containerd"):
        yield engine


# --------------------------------------------------------------------------- podman


PODMAN_BASE_CONF = """\
[containers]
# this VM lacks CAP_SYS_RESOURCE: podman's default ulimits cannot be set
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{state}/tmp"
# podman's default, crun, cannot run containers on this VM
runtime = "runc"
"""


def runtime_with_env(directory: Path, runtime: Path, env: Dict[str, str]) -> Path:
    """A script that execs ``runtime`` with ``env`` set: for engines that do not pass their environment on.

    Podman starts the runtime through conmon, which passes only a few variables (CONTAINERS_CONF,
    HOME, PATH...): ``toolkit.env()`` given to podman never reaches the shim. Use this script's path
    as the runtime path instead; ``exec`` keeps the shim's name in argv[0].
    """
    script = directory / f"{runtime.name}-with-env"
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(env.items()))
    script.write_text(f'#!/bin/sh\n{exports}exec {shlex.quote(str(runtime))} "$@"\n')
    script.chmod(0o755)
    return script


class PodmanEnv:
    """Podman has no daemon: this is an environment (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF) on temp paths.

    ``containers_conf`` defaults to ``tmp_path/containers.conf`` written from PODMAN_BASE_CONF; tests
    then run ``runtime configure --runtime=podman --config`` on it. Call ``reset()`` at the end
    (the ``podman_env`` context manager does) to unmount and remove storage.
    """

    def __init__(
        self, tmp_path: Path, containers_conf: Optional[Path] = None, env: Optional[Dict[str, str]] = None
    ) -> None:
        require_root()
        self.extra_env = env
        require_binary("podman")
        self.state = short_directory("chp-")
        if containers_conf is None:
            containers_conf = tmp_path / "containers.conf"
            containers_conf.write_text(PODMAN_BASE_CONF.format(state=self.state))
        self.containers_conf = containers_conf
        self.storage_conf = self.state / "storage.conf"
        self.storage_conf.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.state}/graph"\nrunroot = "{self.state}/run"\n'
        )

    def env(self) -> Dict[str, str]:
        env = client_env(self.extra_env)
        env["CONTAINERS_CONF"] = str(self.containers_conf)
        env["CONTAINERS_STORAGE_CONF"] = str(self.storage_conf)
        return env

    def podman(self, *args: str, check: bool = True, timeout: float = 60) -> Any:
        """``podman args...`` with this environment -> CompletedProcess[str]."""
        return run_tool(["podman", *args], env=self.env(), check=check, timeout=timeout)

    def import_rootfs(self, rootfs: Path, tag: str = IMAGE) -> str:
        import_tar_of(rootfs, ["podman", "import", "-", tag], env=self.env())
        return tag

    def reset(self) -> None:
        self.podman("system", "reset", "--force", check=False)
        remove_tree(self.state)


@contextmanager
def podman_env(
    tmp_path: Path, containers_conf: Optional[Path] = None, env: Optional[Dict[str, str]] = None
) -> Iterator[PodmanEnv]:
    engine = PodmanEnv(tmp_path, containers_conf, env)
    try:
        yield engine
    finally:
        engine.reset()


# --------------------------------------------------------------------------- containerd with CRI and NRI

# containerd generations nodes run, from Debian's newer suites (tests/newer_engines.py)
CRI_GENERATIONS = {"1.7": "containerd-1.7", "2": "containerd-2"}
RUNC = "/usr/sbin/runc"  # Debian 12's: the newer suites' runc needs a newer glibc


def newer_containerd(generation: str) -> Path:
    """The bin directory of containerd ``generation`` ("1.7", "2"): skipped (failed in CI) when not fetched."""
    import newer_engines

    name = CRI_GENERATIONS[generation]
    tree = newer_engines.installed(name)
    require(tree is not None, f"containerd {generation} is not fetched (python3 tests/newer_engines.py fetch {name})")
    assert tree is not None
    return tree / Path(newer_engines.ENGINES[name].binary).parent


def cri_containerd_toml(
    generation: str, state: Path, image: str, runtime: str = RUNC, handlers: Optional[Dict[str, str]] = None
) -> str:
    """A config for containerd ``generation`` with CRI and NRI, every path under ``state``.

    The sandbox (pause) image is ``image`` (imported, never pulled); runc's entry runs ``runtime``;
    ``handlers``: more runtime handlers (name -> the runc-compatible binary), for RunPodSandbox's
    runtime_handler; ``restrict_oom_score_adj``: this VM lacks CAP_SYS_RESOURCE. NRI is on (1.7: off
    by default) with its socket, plugin directory and plugin config directory under ``state/nri``.
    """
    nri = (
        f"  disable = false\n"
        f'  socket_path = "{state / "nri" / "nri.sock"}"\n'
        f'  plugin_path = "{state / "nri" / "plugins"}"\n'
        f'  plugin_config_path = "{state / "nri" / "conf.d"}"\n'
    )
    if generation == "1.7":
        cri = '"io.containerd.grpc.v1.cri"'
        body = f'[plugins.{cri}]\n  sandbox_image = "{image}"\n  restrict_oom_score_adj = true\n'
        version = 2
    else:
        cri = '"io.containerd.cri.v1.runtime"'
        body = (
            f'[plugins."io.containerd.cri.v1.images".pinned_images]\n  sandbox = "{image}"\n'
            f"[plugins.{cri}]\n  restrict_oom_score_adj = true\n"
        )
        version = 3
    for name, binary in {"runc": runtime, **(handlers or {})}.items():
        body += (
            f'[plugins.{cri}.containerd.runtimes."{name}"]\n'
            f'  runtime_type = "io.containerd.runc.v2"\n'
            f'[plugins.{cri}.containerd.runtimes."{name}".options]\n'
            f'  BinaryName = "{binary}"\n'
        )
    return (
        containerd_paths_toml(state, version)
        + f'\n[plugins."io.containerd.internal.v1.opt"]\n  path = "{state / "opt"}"\n'
        + f'\n[plugins."io.containerd.nri.v1.nri"]\n{nri}\n{body}'
    )


# The mount namespace a CRI containerd lives in, held by a process of its own so that it outlives a
# containerd restart (its shims' sockets stay reachable): a tmpfs over /run (containerd's shim sockets,
# runc's state, and what an NRI plugin containerd starts writes to its default places), and, with $1
# set, an overlay over /etc whose upper directory is $1 (files the test writes there, e.g. the
# toolkit's default config for a plugin containerd starts with no environment, are seen by nothing else)
NAMESPACE_HOLDER = """\
set -e
mount -t tmpfs tmpfs /run && mkdir -p /run/containerd
if [ -n "$1" ]; then mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc; fi
echo ready
exec sleep 86400
"""


class CriContainerd:
    """containerd ``generation`` with CRI and NRI on private paths, in a mount namespace of its own.

        with cri_containerd(generation, image_archive) as engine:
            engine.cri.run_pod(...); engine.restart(); engine.ctr("tasks", "ls")

    ``engine.nri_socket`` is its NRI socket; ``engine.plugin_path`` its pre-registered plugins'
    directory (started by containerd at its start); with ``private_etc``, /etc in its namespace is an
    overlay whose changes stay there: write ``engine.inside("/etc/...")``.
    ``env`` is containerd's environment (it passes it on to the shims and runc, not to NRI plugins).
    """

    def __init__(
        self,
        generation: str,
        runtime: str = RUNC,
        env: Optional[Dict[str, str]] = None,
        private_etc: bool = False,
        handlers: Optional[Dict[str, str]] = None,
        parent: str = "/tmp",
    ) -> None:
        from cri import IMAGE

        require_root()
        self.generation = generation
        self.bin = newer_containerd(generation)
        self.state = short_directory("chcri-", parent)
        try:
            self.nri_socket = self.state / "nri" / "nri.sock"
            self.plugin_path = self.state / "nri" / "plugins"
            self.plugin_config_path = self.state / "nri" / "conf.d"
            for directory in (self.plugin_path, self.plugin_config_path):
                directory.mkdir(parents=True)
            self.socket = self.state / "containerd.sock"
            self.log = self.state / "containerd.log"
            self.config_file = self.state / "config.toml"
            self.config_file.write_text(cri_containerd_toml(generation, self.state, IMAGE, runtime, handlers))
            self.env = {**(env or {}), "PATH": f"{self.bin}:{(env or {}).get('PATH', CLEAN_PATH)}"}
            overlay: List[str] = []
            if private_etc:
                overlay = [str(self.state / "etc-upper"), str(self.state / "etc-work")]
                for layer in overlay:
                    Path(layer).mkdir()
            self.holder = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE_HOLDER, "holder", *overlay],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert self.holder.stdout is not None and self.holder.stderr is not None
            if self.holder.stdout.readline() != b"ready\n":
                self.holder.wait()
                raise AssertionError(f"the mount namespace for containerd failed: {self.holder.stderr.read()!r}")
        except BaseException:
            remove_tree(self.state)
            raise
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._cri: Any = None
        self.starts = 0
        self.started_at = 0.0  # time.time() of the last start

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def inside(self, path: str) -> Path:
        """``path`` as seen in containerd's mount namespace (its /run, its /etc), reached from outside."""
        return Path(f"/proc/{self.holder.pid}/root") / path.lstrip("/")

    def enter(self) -> List[str]:
        """The argv prefix that runs a command in containerd's mount namespace."""
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--"]

    def start(self) -> None:
        """Start containerd (in the namespace) and wait until its CRI answers; logs append to ``self.log``."""
        assert not self.alive()
        self.starts += 1
        self.started_at = time.time()
        with open(self.log, "ab") as out:
            out.write(f"---- start {self.starts}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [*self.enter(), str(self.bin / "containerd"), "--config", str(self.config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=client_env(self.env),
            )
        wait_until(lambda: not self.alive() or self.cri.ready(), READY_TIMEOUT, "containerd's CRI", self.log)
        if not self.alive():
            raise AssertionError(f"containerd exited {self.process.returncode}:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM containerd and wait (its shims and containers live on, as under a service manager)."""
        if self.process is not None:
            stop_process(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self, start: Optional[int] = None) -> str:
        """containerd's log; with ``start``, only what that start (1, 2...) wrote."""
        text = self.log.read_text(errors="replace")
        if start is None:
            return text
        marker = f"---- start {start}\n"
        return text.split(marker, 1)[1].split("---- start ", 1)[0] if marker in text else ""

    @property
    def cri(self) -> Any:
        """A CriClient on containerd's socket (tests/integration/cri.py)."""
        if self._cri is None:
            from cri import CriClient

            self._cri = CriClient(self.socket)
        return self._cri

    def ctr(self, *args: str, check: bool = True, timeout: float = 60) -> Any:
        """``ctr -a SOCK -n k8s.io args...`` (the CRI's namespace) in containerd's mount namespace."""
        argv = [*self.enter(), str(self.bin / "ctr"), "-a", str(self.socket), "-n", "k8s.io", *args]
        return run_tool(argv, env=client_env(), check=check, timeout=timeout)

    def bundle(self, container_id: str) -> Path:
        """The OCI bundle containerd made for a container of the CRI (its config.json is what runc ran)."""
        return self.state / "state" / "io.containerd.runtime.v2.task" / "k8s.io" / container_id

    def plugin_processes(self) -> List[int]:
        """PIDs of containerd's children other than its shims: the pre-registered NRI plugins it started."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = dict(
                    line.split(":\t", 1) for line in (entry / "status").read_text().splitlines() if ":\t" in line
                )
            except OSError:
                continue
            if status.get("PPid", "").strip() == str(self.pid) and not status["Name"].startswith("containerd-shim"):
                found.append(int(entry.name))
        return found

    def import_image(self, archive: Path) -> None:
        """``ctr images import`` an OCI archive (cri.oci_image_archive) and wait until the CRI sees it."""
        self.ctr("images", "import", str(archive))
        wait_until(self.cri.image_present, READY_TIMEOUT, "the CRI to see the imported image", self.log)

    def close(self) -> None:
        """Remove every pod (and container), stop containerd and the namespace, remove the state."""
        try:
            if self.alive():
                try:
                    self.cri.remove_all_pods()
                except Exception as exc:  # a failed start or test: stopping containerd matters more
                    print(f"CriContainerd.close: pods not removed: {exc}")
                finally:
                    self.cri.close()
                    self.stop()
        finally:
            if self.holder.poll() is None:
                self.holder.kill()
            self.holder.wait()
            for stream in (self.holder.stdout, self.holder.stderr):
                if stream is not None:
                    stream.close()
            remove_tree(self.state)


@contextmanager
def cri_containerd(
    generation: str,
    image_archive: Path,
    runtime: str = RUNC,
    env: Optional[Dict[str, str]] = None,
    private_etc: bool = False,
    handlers: Optional[Dict[str, str]] = None,
    parent: str = "/tmp",
) -> Iterator[CriContainerd]:
    """A started CriContainerd with ``image_archive`` imported (the sandbox image), its state in a new
    directory under ``parent``; closed afterwards."""
    engine = CriContainerd(generation, runtime, env, private_etc, handlers, parent)
    try:
        engine.start()
        engine.import_image(image_archive)
        yield engine
    finally:
        engine.close()


class NriPlugin:
    """``container-hooks-ctk nri run --socket S --name N --index I``, run by the test (not by containerd).

    ``tool`` is the archive or a ``container-hooks-ctk`` link to it; ``env`` its environment
    (CONTAINER_HOOKS_CONFIG...); its output goes to ``directory``/nri-NAME.log (appended across
    starts). ``state()`` is its state file, in a directory of its own on a tmpfs (/dev/shm) as the
    default /run/container-hooks/nri is: the plugin rewrites it on every create, and a rename on a
    disk can cost milliseconds. ``stop()`` removes that directory.
    """

    def __init__(
        self,
        tool: Path,
        socket: Path,
        directory: Path,
        env: Optional[Dict[str, str]] = None,
        name: str = "container-hooks",
        index: str = "10",
    ) -> None:
        self.argv = [str(tool), "nri", "run", "--socket", str(socket), "--name", name, "--index", index]
        self.state_dir = short_directory("chnri-", "/dev/shm")
        self.env = {"CONTAINER_HOOKS_NRI_STATE_DIR": str(self.state_dir), **(env or {})}
        self.state_file = Path(self.env["CONTAINER_HOOKS_NRI_STATE_DIR"]) / f"{name}.json"
        self.log = directory / f"nri-{name}.log"
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def state(self) -> Dict[str, Any]:
        """The plugin's state file ({} while there is none)."""
        try:
            loaded = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def registered_since(self, moment: float) -> bool:
        """Whether the plugin (this process) registered with the runtime after ``moment`` (time.time())."""
        state = self.state()
        return bool(state.get("registered")) and state.get("pid") == self.pid and float(state.get("since", 0)) > moment

    def start(self, wait: bool = True) -> None:
        """Start it; with ``wait``, until it registered (its state file says so)."""
        assert self.process is None or self.process.poll() is not None
        moment = time.time()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=client_env(self.env)
            )
        if wait:
            self.wait_registered(moment)

    def wait_registered(self, moment: float, timeout: float = READY_TIMEOUT) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the NRI plugin exited {self.process.returncode}:\n{self.output()[-3000:]}")
            return self.registered_since(moment)

        wait_until(ready, timeout, "the NRI plugin to register", self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def rss_kib(self) -> int:
        """VmRSS of the plugin process (/proc/PID/status), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    def kill(self) -> None:
        """SIGKILL (a crash): no goodbye to the runtime."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, wait; remove the state directory."""
        if self.process is not None:
            stop_process(self.process)
        shutil.rmtree(self.state_dir, ignore_errors=True)
