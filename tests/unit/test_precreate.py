"""chts.shim.precreate: Podman's precreate stage as the shim runs it: order, input, output, each failure in one line."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from chts.errors import ToolkitError
from chts.shim import precreate
from chts.shim.precreate import CHUNK, EXIT_GRACE, MAX_OUTPUT_BYTES, run_precreate_stage


class Log:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def info(self, message: str, **fields: Any) -> None:
        self.lines.append(message)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def entry(path: str, when: Any = None, **hook: Any) -> Dict[str, Any]:
    return {
        "stage": "precreate",
        "hook": {"path": path, **hook},
        "source": f"/hooks.d/{Path(path).name}.json",
        "when": when or {"always": True},
    }


def stage(planned: List[Any], bundle: Path, log: Any = None) -> Tuple[Dict[str, Any], bool]:
    """(the config runc would get, whether a hook ran)."""
    log_like: Any = log or Log()  # the one method the stage calls: info()
    data = run_precreate_stage(planned, SPEC, json.dumps(SPEC).encode(), str(bundle), log_like)
    return (SPEC, False) if data is None else (json.loads(data), True)


SPEC: Dict[str, Any] = {"ociVersion": "1.0.2", "process": {"args": ["/bin/true"], "env": []}}


def test_without_precreate_hooks_nothing_runs(tmp_path: Path) -> None:
    planned = [{"stage": "poststop", "hook": {"path": "/bin/false"}, "source": "/h.json"}]
    assert stage(planned, tmp_path) == (SPEC, False)


def test_each_hook_gets_the_previous_ones_output_in_order(tmp_path: Path) -> None:
    # sed edits the JSON text: the first hook sets ociVersion, the second sees and extends it.
    first = script(tmp_path, "first", 'sed \'s/"1.0.2"/"first"/\'\n')
    second = script(tmp_path, "second", 'sed \'s/"first"/"first+second"/\'\n')
    log = Log()
    spec, ran = stage([entry(first), entry(second)], tmp_path, log)
    assert ran and spec["ociVersion"] == "first+second"
    assert log.lines == [
        f"precreate hook {first} (/hooks.d/first.json) ran",
        f"precreate hook {second} (/hooks.d/second.json) ran",
    ]


def test_only_matching_hooks_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hook = script(tmp_path, "hook", f"touch {marker}; cat\n")
    spec, ran = stage([entry(hook, {"commands": ["^nginx$"]})], tmp_path)
    assert (spec, ran) == (SPEC, False) and not marker.exists()


def test_the_hooks_output_is_kept_byte_for_byte(tmp_path: Path) -> None:
    # Numbers Python cannot hold exactly reach runc as the hook printed them.
    printed = tmp_path / "printed.json"
    printed.write_bytes(b'{"ociVersion": "1.0.2", "x": 1e400, "y": 1e2}')
    hook = script(tmp_path, "hook", f"cat >/dev/null; cat {printed}\n")
    planned: List[Any] = [entry(hook)]
    log: Any = Log()
    data = run_precreate_stage(planned, SPEC, b"{}", str(tmp_path), log)
    assert data == printed.read_bytes()


def test_input_is_the_proposed_config_and_the_hook_runs_in_the_bundle_with_its_env_only(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    hook = script(tmp_path, "hook", f"cat > {seen}; pwd >> {seen}.cwd; env >> {seen}.env; cat {seen}\n")
    stage([entry(hook, env=["ONLY=1"])], tmp_path)
    assert json.loads(seen.read_text()) == SPEC
    assert Path(f"{seen}.cwd").read_text().strip() == str(tmp_path)
    names = {line.split("=")[0] for line in Path(f"{seen}.env").read_text().split()}
    assert "ONLY" in names and "PATH" not in names and "CONTAINER_HOOKS_CONFIG" not in names


FAILURES = [
    ("exit status", "echo noise >&2; echo 'disk full' >&2; exit 4\n", {}, "failed: exit status 4: disk full"),
    ("silent failure", "exit 1\n", {}, "failed: exit status 1"),
    ("signal", "kill -9 $$\n", {}, "failed: killed by signal 9"),
    ("timeout", "sleep 30\n", {"timeout": 1}, "timed out after 1 s"),
    ("timeout, its output closed", "exec >&- 2>&-; sleep 30\n", {"timeout": 1}, "timed out after 1 s"),
    ("invalid JSON", "echo '{nope'\n", {}, "printed invalid JSON on stdout"),
    ("empty output", "true\n", {}, "printed invalid JSON on stdout"),
    ("not an object", "echo '[1]'\n", {}, "printed a JSON list, not the config object"),
    ("not UTF-8", "printf '\\377'\n", {}, "printed a config that is not UTF-8 (byte 0)"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "hook", "words"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failures_are_one_line_naming_the_hook_and_its_file(tmp_path: Path, body: str, hook: Any, words: str) -> None:
    path = script(tmp_path, "bad", body)
    with pytest.raises(ToolkitError) as caught:
        stage([entry(path, **hook)], tmp_path)
    message = str(caught.value)
    assert message.startswith(f"precreate hook {path} (/hooks.d/bad.json)") and words in message, message
    assert "\n" not in message


def test_a_missing_hook_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"precreate hook /nonexistent/hook \(.*\): cannot run it: No such file"):
        stage([entry("/nonexistent/hook")], tmp_path)


def failure(tmp_path: Path, body: str, **hook: Any) -> Tuple[str, float]:
    """(the one-line error of a hook running ``body``, the seconds the stage took)."""
    path = script(tmp_path, "bad", body)
    start = time.monotonic()
    with pytest.raises(ToolkitError) as caught:
        stage([entry(path, **hook)], tmp_path)
    message = str(caught.value)
    assert message.startswith(f"precreate hook {path} (/hooks.d/bad.json) ") and "\n" not in message, message
    return message, time.monotonic() - start


GIB = 1 << 30


def test_a_hook_printing_a_gigabyte_is_stopped_at_the_limit_holding_no_more(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        message, _ = failure(tmp_path, f"head -c {GIB} /dev/zero\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.endswith(f"printed more than {MAX_OUTPUT_BYTES} bytes, not a config")
    # The limit, one read past it, and bytearray's growth (CPython over-allocates by up to 1/8 when
    # it resizes; whether a resize falls just past the limit depends on how the pipe's reads fall):
    # bounded by the limit, not by the gigabyte.
    assert peak < (MAX_OUTPUT_BYTES + CHUNK) * 9 // 8 + (1 << 20), peak


def test_a_gigabyte_on_stderr_is_drained_keeping_only_its_tail(tmp_path: Path) -> None:
    hook = script(tmp_path, "noisy", f"head -c {GIB} /dev/zero >&2; cat\n")
    tracemalloc.start()
    try:
        spec, ran = stage([entry(hook)], tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (spec, ran) == (SPEC, True)
    assert peak < 8 << 20, peak


def test_the_last_line_of_a_long_stderr_is_the_reason_given(tmp_path: Path) -> None:
    message, _ = failure(tmp_path, "yes noise | head -c 12000000 >&2; echo 'real reason' >&2; exit 2\n")
    assert message.endswith("failed: exit status 2: real reason")


def test_the_limit_kills_the_hooks_own_process_group(tmp_path: Path) -> None:
    # A hook that leads a process group of its own (setsid) and leaves a child printing too.
    pids = tmp_path / "pids"
    message, _ = failure(tmp_path, f"exec setsid sh -c 'yes & echo $! > {pids}; yes'\n")
    assert message.endswith(f"printed more than {MAX_OUTPUT_BYTES} bytes, not a config")
    assert ends(int(pids.read_text()))


def test_the_limit_kills_a_silent_child_in_the_hooks_own_group(tmp_path: Path) -> None:
    """A child that writes nothing is not stopped by a closed pipe: only the group's SIGKILL ends it."""
    pids = tmp_path / "pids"
    message, _ = failure(tmp_path, f"exec setsid sh -c 'sleep 60 >/dev/null 2>&1 & echo $! > {pids}; yes'\n")
    assert message.endswith(f"printed more than {MAX_OUTPUT_BYTES} bytes, not a config")
    assert ends(int(pids.read_text()))


def ends(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` stops running within ``within`` seconds."""
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_timeout_does_not_wait_for_a_child_holding_stdout(tmp_path: Path) -> None:
    message, took = failure(tmp_path, "sleep 20 & sleep 20\n", timeout=1)
    assert message.endswith("timed out after 1 s") and took < 5, (message, took)


def test_a_hook_that_exits_while_its_child_holds_stdout_is_one_line_at_once(tmp_path: Path) -> None:
    # It printed a whole config, but whether more is coming only the child knows: refused, quickly.
    message, took = failure(tmp_path, "cat; sleep 4 &\n")
    assert "exited, but a process it started still holds its stdout open" in message, message
    assert took < EXIT_GRACE + 2, took


def test_output_a_child_finishes_soon_after_the_hook_exits_is_taken(tmp_path: Path) -> None:
    hook = script(tmp_path, "late", "exec 3<&0; (sleep 0.2; cat <&3) &\n")
    assert stage([entry(hook)], tmp_path) == (SPEC, True)


def test_an_input_larger_than_a_pipe_reaches_the_hook_whole(tmp_path: Path) -> None:
    big = {**SPEC, "annotations": {f"k{index}": "v" * 100 for index in range(50000)}}
    planned: List[Any] = [entry(script(tmp_path, "cat", "cat\n"))]
    log: Any = Log()
    data = json.dumps(big).encode()
    assert run_precreate_stage(planned, big, data, str(tmp_path), log) == data


def test_a_hook_that_reads_none_of_a_large_input_is_no_error(tmp_path: Path) -> None:
    big = {**SPEC, "annotations": {f"k{index}": "v" * 100 for index in range(50000)}}
    planned: List[Any] = [entry(script(tmp_path, "ignore", f"echo '{json.dumps(SPEC)}'\n"))]
    log: Any = Log()
    data = run_precreate_stage(planned, big, json.dumps(big).encode(), str(tmp_path), log)
    assert data is not None and json.loads(data) == SPEC


def test_a_silent_failure_says_only_its_status(tmp_path: Path) -> None:
    path = script(tmp_path, "bad", "exit 3\n")
    with pytest.raises(ToolkitError) as caught:
        stage([entry(path)], tmp_path)
    assert str(caught.value) == f"precreate hook {path} (/hooks.d/bad.json) failed: exit status 3"


def test_a_failure_s_last_line_that_is_not_utf8_is_still_one_line(tmp_path: Path) -> None:
    path = script(tmp_path, "bad", "printf 'first\\n\\377 broken\\n' >&2; exit 2\n")
    with pytest.raises(ToolkitError) as caught:
        stage([entry(path)], tmp_path)
    assert str(caught.value) == f"precreate hook {path} (/hooks.d/bad.json) failed: exit status 2: \ufffd broken"


def test_the_hook_gets_its_args(tmp_path: Path) -> None:
    # args[0] is the name the program sees (a script's interpreter gets the path instead)
    seen = tmp_path / "seen"
    hook = script(tmp_path, "hook", f'echo "$*" > {seen}; cat\n')
    stage([entry(hook, args=["my-hook", "--mode", "fast"])], tmp_path)
    assert seen.read_text().split() == ["--mode", "fast"]


def test_output_over_64_mib_is_refused_as_no_config(tmp_path: Path) -> None:
    path = script(tmp_path, "big", f"cat > /dev/null; head -c {(64 << 20) + 1} /dev/zero\n")
    with pytest.raises(ToolkitError) as caught:
        stage([entry(path)], tmp_path)
    assert (
        str(caught.value)
        == f"precreate hook {path} (/hooks.d/big.json) printed more than {64 << 20} bytes, not a config"
    )


LONG_GRACE = 5.0  # the exit grace these tests set: a wait it carried past the 1 s timeout would take 5 s more


def test_a_hook_that_exits_inside_its_timeout_but_leaves_stdout_held_times_out_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeout bounds the whole stage: the exit grace never carries the wait past it."""
    monkeypatch.setattr(precreate, "EXIT_GRACE", LONG_GRACE)
    message, took = failure(tmp_path, "cat >/dev/null; sleep 0.5; sleep 10 &\n", timeout=1)
    assert message.endswith("timed out after 1 s") and took < 1 + LONG_GRACE / 2, (message, took)


def test_a_hook_that_closes_its_output_near_the_deadline_is_still_stopped_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precreate, "EXIT_GRACE", LONG_GRACE)
    pid = tmp_path / "pid"
    message, took = failure(
        tmp_path, f"echo $$ > {pid}; cat >/dev/null; sleep 0.9; exec >&- 2>&-; exec sleep 30\n", timeout=1
    )
    assert message.endswith("timed out after 1 s") and took < 1 + LONG_GRACE / 2, (message, took)
    assert not alive(int(pid.read_text()))  # killed, not left running


def test_a_failed_hook_leaves_no_pipe_open(tmp_path: Path) -> None:
    """Not even while the error (and the traceback holding the run) is still referenced."""
    import os

    before = sorted(os.listdir("/proc/self/fd"))
    path = script(tmp_path, "bad", "cat >/dev/null; echo 'no config' >&2; exit 1\n")
    with pytest.raises(ToolkitError) as caught:
        stage([entry(path)], tmp_path)
    assert sorted(os.listdir("/proc/self/fd")) == before, caught.value
