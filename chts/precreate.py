"""Podman's precreate stage in the shim: drop-in hooks that may rewrite config.json before runc reads it.

As libpod runs them (containers/common `exec.RuntimeConfigFilterWithOptions`): each
matching hook, in file order, gets the proposed config as JSON on stdin, in the
bundle directory, with the hook's env only (no inherited environment) and its
timeout; what it prints on stdout is the config the next hook, and runc, get. Any
failure fails the create, in one line naming the hook and its file. Imported by the
create path only when a configured drop-in has the precreate stage.
"""

from __future__ import annotations

from chts.errors import ToolkitError
from chts.hooks_file import PRECREATE, has_precreate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

    from chts.hook_sources import PlannedHook
    from chts.shim_log import ShimLog

MAX_OUTPUT_BYTES = 64 << 20  # the shim's limit for config.json


def run_precreate_stage(
    planned: List[PlannedHook], spec: Dict[str, Any], data: bytes, bundle: str, log: ShimLog
) -> Optional[bytes]:
    """config.json's bytes after every precreate hook that matches ``spec``; None when none ran.

    Each hook reads the exact text the previous one printed (``data`` first, the config with
    the hooks already added), so numbers and layout reach runc as the hooks wrote them.
    ToolkitError on a failure.
    """
    if not has_precreate(planned):
        return None
    from chts.hook_sources import explain_hooks

    precreate = [entry for entry in planned if entry["stage"] == PRECREATE]
    selected = [entry for entry, matched, _ in explain_hooks(precreate, spec) if matched]
    for entry in selected:
        data = run_precreate_hook(entry, data, bundle)
        log.info(f"precreate hook {entry['hook']['path']} ({entry['source']}) ran", bundle=bundle)
    return data if selected else None


def run_precreate_hook(entry: PlannedHook, data: bytes, bundle: str) -> bytes:
    """The config ``entry``'s hook prints when given ``data``, checked to be a JSON object."""
    import subprocess

    from chts.jsonio import loads_strict

    hook = entry["hook"]
    path: str = hook["path"]
    name = f"precreate hook {path} ({entry['source']})"
    env = dict(item.split("=", 1) for item in hook.get("env", []))
    try:
        result = subprocess.run(
            hook.get("args") or [path],
            executable=path,
            input=data,
            capture_output=True,
            cwd=bundle,
            env=env,
            timeout=hook.get("timeout"),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"{name} timed out after {hook['timeout']} s") from None
    except OSError as exc:
        raise ToolkitError(f"{name}: cannot run it: {exc.strerror}") from None
    if result.returncode != 0:
        status = (
            f"killed by signal {-result.returncode}" if result.returncode < 0 else f"exit status {result.returncode}"
        )
        said = last_line(result.stderr)
        raise ToolkitError(f"{name} failed: {status}" + (f": {said}" if said else ""))
    if len(result.stdout) > MAX_OUTPUT_BYTES:
        raise ToolkitError(f"{name} printed more than {MAX_OUTPUT_BYTES} bytes, not a config")
    try:
        new_spec = loads_strict(result.stdout.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"{name} printed a config that is not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise ToolkitError(f"{name} printed invalid JSON on stdout: {exc}") from None
    if not isinstance(new_spec, dict):
        raise ToolkitError(f"{name} printed a JSON {type(new_spec).__name__}, not the config object")
    return result.stdout


def last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
