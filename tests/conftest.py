"""Shared fixtures: the built .pyz, busybox bundles, temporary toolkit roots, CI-aware skips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

import build

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "container-hooks-toolkit.pyz"
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(condition: bool, reason: str) -> None:
    """Skip a test whose tool is missing, except in CI, where a missing tool is a failure."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    path = shutil.which(name, path=CLEAN_PATH)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def posix_shells() -> List[List[str]]:
    """The sh starts are run under: dash (Debian's /bin/sh) and busybox sh, those of them installed."""
    found = [[path] for path in [shutil.which("dash", path=CLEAN_PATH)] if path]
    busybox = shutil.which("busybox", path=CLEAN_PATH)
    if busybox:
        found.append([busybox, "sh"])
    return found


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every .pyz a test runs (daemons' shims included) caches under a temporary directory, never /run."""
    directory = tmp_path_factory.mktemp("shim-cache")
    previous = os.environ.get("CONTAINER_HOOKS_CACHE_DIR")
    os.environ["CONTAINER_HOOKS_CACHE_DIR"] = str(directory / "cache")
    yield
    if previous is None:
        del os.environ["CONTAINER_HOOKS_CACHE_DIR"]
    else:
        os.environ["CONTAINER_HOOKS_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def private_toolkit_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process ctk calls (`runtime configure` records the shim's runtime there) never reach /etc/container-hooks."""
    if "CONTAINER_HOOKS_CONFIG" not in os.environ:
        monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(tmp_path_factory.mktemp("toolkit-config") / "config.toml"))


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process of the test's own, for code that must leave live processes alone.

    Never a pid the test did not start (its parent, PID 1): a bug, or a mutant turning
    ``kill(pid, 0)`` into ``kill(pid, 1)``, would signal it — under the mutation runner, the
    runner itself. Assert ``bystander.poll() is None`` afterwards: the code left it alone.
    """
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def pyz() -> Path:
    """The built zipapp (tox builds it first; a bare pytest run builds it here)."""
    sources = [*(ROOT / "chts").rglob("*.py"), *(ROOT / "chts").rglob("*.sh"), ROOT / "build.py"]
    if not PYZ.exists() or PYZ.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        subprocess.run([sys.executable, str(ROOT / "build.py")], check=True, stdout=subprocess.DEVNULL)
    return PYZ


def python_start(pyz: Path) -> List[str]:
    """The options chts/start.sh runs Python with, ["-ISc", PROGRAM]: `python3 -ISc PROGRAM pyz TOOL ...`."""
    opening = build.PROGRAM.split(";", 1)[0].encode()
    found = re.search(rb"-ISc '(" + re.escape(opening) + rb"[^']*)'", pyz.read_bytes())
    assert found is not None, "no Python start in the archive's sh text"
    return ["-ISc", found.group(1).decode()]


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root file system of busybox-static and one symlink per applet."""
    busybox = shutil.which("busybox", path=CLEAN_PATH)
    require(busybox is not None, "busybox-static is not installed")
    assert busybox is not None
    rootfs = tmp_path_factory.mktemp("busybox") / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for directory in ("proc", "sys", "dev", "tmp", "etc", "root"):
        (rootfs / directory).mkdir()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return rootfs


def runc_spec(args: List[str], rootfs: Path, env: Optional[List[str]] = None) -> Dict[str, Any]:
    """A minimal rootless-friendly runtime spec like `runc spec` writes, running ``args``."""
    runc = require_binary("runc")
    with_spec = Path(str(rootfs) + "-spec")
    with_spec.mkdir(exist_ok=True)
    if not (with_spec / "config.json").exists():
        subprocess.run([runc, "spec"], cwd=with_spec, check=True)
    spec: Dict[str, Any] = json.loads((with_spec / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    if env is not None:
        spec["process"]["env"] = env
    spec["root"] = {"path": str(rootfs), "readonly": True}
    return spec


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Any]:
    """make_bundle(args, name=..., hooks=...) -> bundle dir with a config.json running ``args``."""

    def make(
        args: List[str],
        name: str = "bundle",
        hooks: Optional[Dict[str, Any]] = None,
        env: Optional[List[str]] = None,
        indent: Optional[str] = "\t",
    ) -> Path:
        bundle = tmp_path / name
        bundle.mkdir()
        spec = runc_spec(args, busybox_rootfs, env)
        if hooks is not None:
            spec["hooks"] = hooks
        (bundle / "config.json").write_text(json.dumps(spec, indent=indent))
        return bundle

    yield make


class ToolkitRoot:
    """A temporary /etc/container-hooks plus the three tool names, used through env()."""

    def __init__(self, base: Path, pyz: Path) -> None:
        self.base = base
        self.bin = base / "bin"
        self.bin.mkdir()
        for name in ("container-hooks-runtime", "container-hooks-ctk", "container-hooks"):
            (self.bin / name).symlink_to(pyz)
        self.shim = self.bin / "container-hooks-runtime"
        self.ctk = self.bin / "container-hooks-ctk"
        self.config = base / "config.toml"
        self.hooks = base / "hooks.json"
        self.log = base / "container-hooks-runtime.log"
        self.cache = base / "cache"
        self.write_config()

    def write_config(self, extra_runtime: str = "", extra: str = "") -> None:
        self.config.write_text(
            f'[container-hooks]\npath = "{self.hooks}"\n{extra}\n'
            f'[container-hooks-runtime]\ndebug = "{self.log}"\n{extra_runtime}\n'
        )

    def write_hooks(self, hooks: Any) -> None:
        self.hooks.write_text(hooks if isinstance(hooks, str) else json.dumps(hooks))

    def env(self, **extra: str) -> Dict[str, str]:
        env = {
            "PATH": CLEAN_PATH,
            "CONTAINER_HOOKS_CONFIG": str(self.config),
            "CONTAINER_HOOKS_CACHE_DIR": str(self.cache),
        }
        env.update(extra)
        return env

    def run_shim(self, args: List[str], wrapper: Sequence[str] = (), **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run the shim with its output in files: a created container keeps its stdio open
        until it starts, so pipes would never reach end-of-file. ``wrapper``: a command the shim's
        command line is appended to."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            status = subprocess.run(
                [*wrapper, str(self.shim), *args],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                check=False,
                **{"timeout": 120, **kwargs},
            ).returncode
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, status, out.read().decode(), err.read().decode())

    def run_ctk(self, args: List[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.ctk), *args], env=self.env(), capture_output=True, text=True, check=False, **kwargs
        )


@pytest.fixture
def toolkit(tmp_path: Path, pyz: Path) -> ToolkitRoot:
    base = tmp_path / "toolkit"
    base.mkdir()
    return ToolkitRoot(base, pyz)


def record_hook(log: Path, label: str) -> Dict[str, Any]:
    """A hook that appends ``label`` to ``log`` on the host (runs with the host's /bin/sh)."""
    return {"path": "/bin/sh", "args": ["sh", "-c", f'echo {label} >> "{log}"']}


def write_small_toolkit(base: Path, runtime: str) -> Dict[str, str]:
    """hooks.json (one poststop hook), a config.toml naming it and ``runtime``, bundle/config.json,
    under ``base``; the environment that makes the shim use them."""
    (base / "hooks.json").write_text('{"poststop": [{"path": "/bin/true"}]}')
    (base / "config.toml").write_text(
        f'[container-hooks]\npath = "{base}/hooks.json"\nhooks-dirs = []\n'
        f'[container-hooks-runtime]\ndebug = "{base}/shim.log"\nruntimes = ["{runtime}"]\n'
    )
    (base / "bundle").mkdir()
    (base / "bundle" / "config.json").write_text('{"ociVersion": "1.0.2"}')
    return {"CONTAINER_HOOKS_CONFIG": str(base / "config.toml"), "CONTAINER_HOOKS_CACHE_DIR": str(base / "cache")}
