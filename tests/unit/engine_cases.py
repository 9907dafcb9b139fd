"""Shared by the engine unit tests: run `runtime configure|unconfigure` in-process, snapshot a directory."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Tuple

from ctk_cli import run_ctk

NAME = "container-hooks-runtime"
# A directory of the tests' own: configure links container-hooks-runtime.TAG beside the shim for an
# engine it chains to another binary (chts/ctk/chaining.py); the shim itself need not be there.
SHIM_DIR = tempfile.mkdtemp(prefix="chts-unit-shim-")
atexit.register(shutil.rmtree, SHIM_DIR, True)
SHIM = f"{SHIM_DIR}/{NAME}"

# engine -> the config file name its tests use
CONFIG_NAMES = {
    "docker": "daemon.json",
    "containerd": "config.toml",
    "podman": "containers.conf",
    "crio": "crio.conf",
}


def runtime_cmd(capsys: Any, action: str, engine: str, config: Path, *extra: str) -> Tuple[int, str, str]:
    """``container-hooks-ctk runtime ACTION --runtime=ENGINE --config=CONFIG --runtime-path=SHIM EXTRA...``."""
    return run_ctk(
        capsys, "runtime", action, f"--runtime={engine}", f"--config={config}", f"--runtime-path={SHIM}", *extra
    )


def configured(capsys: Any, engine: str, config: Path, *extra: str) -> str:
    """Configure and return stdout; fail the test with stderr when it does not succeed."""
    status, out, err = runtime_cmd(capsys, "configure", engine, config, *extra)
    assert status == 0, err
    said_what_it_did(out, "configured", config, extra)
    return out


def unconfigured(capsys: Any, engine: str, config: Path, *extra: str) -> str:
    status, out, err = runtime_cmd(capsys, "unconfigure", engine, config, *extra)
    assert status == 0, err
    said_what_it_did(out, "unconfigured", config, extra)
    return out


def said_what_it_did(out: str, verb: str, config: Path, extra: Tuple[str, ...]) -> None:
    """The last line says whether anything changed, and only what did: a line per file written, then the
    summary; or, with nothing to do, that one line alone."""
    if "--dry-run" in extra or "--quiet" in extra or "-q" in extra:
        return
    lines = out.splitlines()
    if lines == [f"{config}: already {verb}; nothing changed"]:
        return
    assert len(lines) >= 2 and lines[-1].startswith(f"{verb} runtime '"), out
    assert all(not line.startswith(f"{config}: already") for line in lines), out


def snapshot(directory: Path) -> Dict[str, bytes]:
    """Every file below ``directory`` and its bytes: equal snapshots mean nothing was written."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def fake_binary(directory: Path, monkeypatch: Any, name: str, script: str) -> Path:
    """An executable ``name`` running ``script`` (sh), first on $PATH: for engines not installable here."""
    directory.mkdir(exist_ok=True)
    binary = directory / name
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:/usr/bin:/bin")
    return binary
