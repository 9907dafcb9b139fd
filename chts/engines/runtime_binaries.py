"""Finding the binaries engines run, and asking an engine's own command, for `effective` and `low_level_runtime`."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Dict, List, Optional

from chts.base.runtime_lookup import FALLBACK_PATH
from chts.errors import ToolkitError

COMMAND_TIMEOUT = 30


def search_path() -> str:
    """$PATH, then the usual system directories: daemons started by systemd have at least those."""
    return os.pathsep.join(p for p in (os.environ.get("PATH"), FALLBACK_PATH) if p)


def resolve_binary(name: str) -> Optional[str]:
    """An absolute path as it is; a bare name looked up as the engine would ($PATH); None when not found."""
    if os.path.isabs(name):
        return name
    if "/" in name:
        return None  # relative to the engine's working directory: nothing we can name
    return shutil.which(name, path=search_path())


def run_engine_command(
    argv: List[str], what: str, check: bool = False, env: Optional[Dict[str, str]] = None
) -> Optional[subprocess.CompletedProcess[str]]:
    """Run an engine's command when its binary is on this host (None when it is not).

    With ``check`` a failure is one line naming the command and the engine's own last words.
    """
    binary = shutil.which(argv[0], path=search_path())
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolkitError(f"{what}: could not run it: {exc}") from None
    if check and done.returncode != 0:
        words = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise ToolkitError(f"{what} refused it: {words[-1] if words else f'exit status {done.returncode}'}")
    return done


RUNC_SHIMS = ("io.containerd.runc.v2", "io.containerd.runc.v1")


def runc_shim_binary(runtime_type: Any, options: Any) -> Optional[str]:
    """The binary containerd's runc shim execs for a runtime: ``options.BinaryName``, else ``runc`` in $PATH.

    Other shims (kata, gVisor, wasm) run no runc-like binary the toolkit's shim could exec: None.
    """
    if runtime_type not in RUNC_SHIMS:
        return None
    binary = options.get("BinaryName") if isinstance(options, dict) else None
    return resolve_binary(binary if isinstance(binary, str) and binary else "runc")
