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
from chts.hooks.model import PRECREATE, has_precreate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

    from chts.base.logfile import LogFile
    from chts.hooks.sources import PlannedHook

MAX_OUTPUT_BYTES = 64 << 20  # the shim's limit for config.json


def run_precreate_stage(
    planned: List[PlannedHook], spec: Dict[str, Any], data: bytes, bundle: str, log: LogFile
) -> Optional[bytes]:
    """config.json's bytes after every precreate hook that matches ``spec``; None when none ran.

    Each hook reads the exact text the previous one printed (``data`` first, the config with
    the hooks already added), so numbers and layout reach runc as the hooks wrote them.
    ToolkitError on a failure.
    """
    if not has_precreate(planned):
        return None
    from chts.hooks.sources import explain_hooks

    precreate = [entry for entry in planned if entry["stage"] == PRECREATE]
    selected = [entry for entry, matched, _ in explain_hooks(precreate, spec) if matched]
    for entry in selected:
        data = run_precreate_hook(entry, data, bundle)
        log.info(f"precreate hook {entry['hook']['path']} ({entry['source']}) ran", bundle=bundle)
    return data if selected else None


def run_precreate_hook(entry: PlannedHook, data: bytes, bundle: str) -> bytes:
    """The config ``entry``'s hook prints when given ``data``, checked to be a JSON object."""
    from chts.base.jsonio import loads_strict

    hook = entry["hook"]
    path: str = hook["path"]
    name = f"precreate hook {path} ({entry['source']})"
    env = dict(item.split("=", 1) for item in hook.get("env", []))
    run = HookRun(hook.get("args") or [path], path, env, bundle, hook.get("timeout"))
    try:
        status = run.communicate(data)
    except OSError as exc:
        raise ToolkitError(f"{name}: cannot run it: {exc.strerror}") from None
    if status == TIMED_OUT:
        raise ToolkitError(f"{name} timed out after {hook['timeout']} s")
    if status == TOO_MUCH:
        raise ToolkitError(f"{name} printed more than {MAX_OUTPUT_BYTES} bytes, not a config")
    said = last_line(bytes(run.stderr))
    if status != 0:
        code = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        raise ToolkitError(f"{name} failed: {code}" + (f": {said}" if said else ""))
    if run.held_open:
        raise ToolkitError(
            f"{name} exited, but a process it started still holds its stdout open "
            f"{EXIT_GRACE} s later (redirect the background command's output)"
        )
    output = bytes(run.stdout)
    del run
    try:
        new_spec = loads_strict(output.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"{name} printed a config that is not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise ToolkitError(f"{name} printed invalid JSON on stdout: {exc}") from None
    if not isinstance(new_spec, dict):
        raise ToolkitError(f"{name} printed a JSON {type(new_spec).__name__}, not the config object")
    return output


# What HookRun.communicate returns besides the hook's wait status.
TIMED_OUT = "timed out"
TOO_MUCH = "printed too much"
EXIT_GRACE = 1.0  # how long output is still read once the hook has exited (a child may hold the pipe)
STDERR_KEPT = 8192  # the tail of stderr kept, for the last line of a failure
CHUNK = 1 << 16  # a pipe's capacity
POLL = 0.05  # how often a hook still running with its pipes open is checked for having exited


class HookRun:
    """One hook run with bounded memory: stdin written, stdout read up to the limit, stderr's tail kept.

    subprocess.run(capture_output=True) holds all the hook prints (1 GB printed is 2 GB held
    before any check) and, after the hook exits, waits for end-of-file on its pipes: a process
    the hook left behind holding stdout made the create wait for it. Here the pipes are read as
    the hook writes; stdout past MAX_OUTPUT_BYTES kills the hook, and once the hook has exited
    its output is read for at most EXIT_GRACE more seconds. As libpod's hook runner does, the
    hook stays in the shim's process group; when it made a group of its own, a kill reaches the
    whole group.
    """

    def __init__(self, args: List[str], executable: str, env: Dict[str, str], cwd: str, timeout: Any) -> None:
        self.args = args
        self.executable = executable
        self.env = env
        self.cwd = cwd
        self.timeout: Optional[float] = timeout
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.held_open = False

    def communicate(self, data: bytes) -> Any:
        """The hook's wait status (negative: killed by that signal), TIMED_OUT or TOO_MUCH."""
        import selectors
        import subprocess
        import time

        PIPE = subprocess.PIPE
        process = subprocess.Popen(
            self.args, executable=self.executable, stdin=PIPE, stdout=PIPE, stderr=PIPE, cwd=self.cwd, env=self.env
        )
        self.process = process
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        pipes = (process.stdin, process.stdout, process.stderr)
        try:
            with selectors.DefaultSelector() as selector:
                return self._pump(selector, [pipe.fileno() for pipe in pipes if pipe], data, deadline)
        finally:
            for pipe in pipes:
                if pipe:
                    try:
                        pipe.close()
                    except OSError:  # EPIPE flushing stdin
                        pass

    def _pump(self, selector: Any, fds: List[int], data: bytes, deadline: Optional[float]) -> Any:
        import os
        import selectors
        import time

        process = self.process
        stdin_fd, stdout_fd, _ = fds
        view = memoryview(data)
        written = 0
        os.set_blocking(stdin_fd, False)
        selector.register(stdin_fd, selectors.EVENT_WRITE)
        for fd in fds[1:]:
            selector.register(fd, selectors.EVENT_READ)
        open_outputs = 2
        exited_at: Optional[float] = None
        while open_outputs:
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now >= exited_at + EXIT_GRACE:
                self.held_open = True
                return process.returncode
            if deadline is not None and now >= deadline:
                self._kill()
                return TIMED_OUT
            wait = POLL if exited_at is None else exited_at + EXIT_GRACE - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            for key, _ in selector.select(max(wait, 0)):
                fd = key.fd
                if fd == stdin_fd:
                    try:
                        written += os.write(fd, view[written : written + CHUNK])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the hook does not read all its input: its business
                        written = len(data)
                    if written >= len(data):
                        selector.unregister(fd)
                        self.close_stdin()
                    continue
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    selector.unregister(fd)
                    open_outputs -= 1
                elif fd == stdout_fd:
                    self.stdout += chunk
                    if len(self.stdout) > MAX_OUTPUT_BYTES:
                        self._kill()
                        return TOO_MUCH
                else:
                    self.stderr += chunk
                    del self.stderr[:-STDERR_KEPT]
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        try:
            return process.wait(remaining)
        except Exception:  # subprocess.TimeoutExpired: it closed its output but runs on
            self._kill()
            return TIMED_OUT

    def close_stdin(self) -> None:
        """End of input for the hook (its stdin's write end closed)."""
        stdin = self.process.stdin
        if stdin:
            try:
                stdin.close()
            except OSError:
                pass

    def _kill(self) -> None:
        """SIGKILL the hook, and its process group when it leads one of its own (never the shim's)."""
        import os
        import signal

        process = self.process
        if process.poll() is None:
            try:
                group = os.getpgid(process.pid)
                if group == process.pid and group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
            process.kill()
        process.wait()


def last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
