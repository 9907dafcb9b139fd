"""The shim's argv parsing and runtime lookup: every argv the engines pass, and runc's edge cases."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chts.shim import INJECTING_COMMANDS, find_runtime, parse_runc_argv

B = "/run/containerd/io.containerd.runtime.v2.task/moby/abc"
DOCKER_ROOT = ["--root", "/var/run/docker/runtime-runc/moby", "--log", f"{B}/log.json", "--log-format", "json"]

# (argv after argv[0], command, bundle, container id) — the first rows are recorded from real engines.
ENGINE_CASES = [
    ([*DOCKER_ROOT, "create", "--bundle", B, "--pid-file", f"{B}/init.pid", "abc"], "create", B, "abc"),
    (
        [*DOCKER_ROOT, "create", "--bundle", B, "--pid-file", f"{B}/init.pid", "--console-socket", "/tmp/s", "abc"],
        "create",
        B,
        "abc",
    ),
    ([*DOCKER_ROOT, "start", "abc"], "start", ".", ""),
    ([*DOCKER_ROOT, "delete", "abc"], "delete", ".", ""),
    ([*DOCKER_ROOT, "delete", "--force", "abc"], "delete", ".", ""),
    (
        ["--root", "/r", "exec", "--process", "/tmp/runc-process1", "--detach", "--pid-file", "/p", "abc"],
        "exec",
        ".",
        "",
    ),
    (["--root", "/r", "ps", "--format", "json", "abc"], "ps", ".", ""),
    (["--root", "/r", "update", "--resources", "-", "abc"], "update", ".", ""),
    (["--root", "/r", "kill", "abc", "15"], "kill", ".", ""),
    (["--root", "/r", "kill", "--all", "abc", "9"], "kill", ".", ""),
    (["--version"], "", ".", ""),
    (["--systemd-cgroup", "--root", "/r", "create", "--bundle", B, "abc"], "create", B, "abc"),
    # podman via conmon: no global flags, cwd is not the bundle
    (["create", "--bundle", B, "--pid-file", "/p", "--console-socket", "/s", "abc"], "create", B, "abc"),
    # every spelling of a global value flag
    (["--root=/r", "create", "x"], "create", ".", "x"),
    (["-root", "/r", "create", "x"], "create", ".", "x"),
    (["-root=/r", "create", "x"], "create", ".", "x"),
    (["--log", "create", "run", "x"], "run", ".", "x"),  # "create" is --log's value
    (["--criu", "/c", "--rootless", "auto", "restore", "-b", B, "x"], "restore", B, "x"),
    (["--debug", "run", "x"], "run", ".", "x"),
    (["--debug=false", "run", "x"], "run", ".", "x"),
    # every spelling of --bundle; the last wins; flags may follow the id (urfave/cli reorders)
    (["create", "-b", B, "x"], "create", B, "x"),
    (["create", "-b=" + B, "x"], "create", B, "x"),
    (["create", "--bundle=" + B, "x"], "create", B, "x"),
    (["create", "-bundle", B, "x"], "create", B, "x"),
    (["create", "--b", B, "x"], "create", B, "x"),
    (["create", "--bundle", "/first", "--bundle", B, "x"], "create", B, "x"),
    (["create", "x", "--bundle", B], "create", B, "x"),
    (["create", "--pid-file", "--bundle", "x"], "create", ".", "x"),  # "--bundle" is --pid-file's value
    (["create", "--", "--bundle"], "create", ".", "--bundle"),
    (["create", "--detach", "--bundle", B, "x"], "create", B, "x"),
    (["create", "x"], "create", ".", "x"),
    (["create", "--bundle=", "x"], "create", ".", "x"),
    # a container named like a subcommand is an argument
    (["delete", "create"], "delete", ".", ""),
    (["--root", "/r", "start", "run"], "start", ".", ""),
    (["kill", "restore", "9"], "kill", ".", ""),
    # "--" ends the global flags
    (["--", "create", "x"], "create", ".", "x"),
    ([], "", ".", ""),
    (["--root"], "", ".", ""),
    (["-"], "-", ".", ""),
]


@pytest.mark.parametrize(("argv", "command", "bundle", "container_id"), ENGINE_CASES)
def test_parse_runc_argv(argv: List[str], command: str, bundle: str, container_id: str) -> None:
    call = parse_runc_argv(argv)
    assert call.command == command
    if command in INJECTING_COMMANDS:
        assert call.bundle == bundle
        assert call.container_id == container_id


def test_log_and_format_are_read_from_global_flags() -> None:
    call = parse_runc_argv([*DOCKER_ROOT, "create", "abc"])
    assert call.log == f"{B}/log.json"
    assert call.log_format == "json"
    assert not call.debug
    assert parse_runc_argv(["-log=/l", "--log-format=text", "--debug", "state", "x"]).log == "/l"
    assert parse_runc_argv(["--debug", "state", "x"]).debug


# Any argv whose first non-option word is not create/run/restore is passed through untouched.
words = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=12)
flags = st.sampled_from(["--root", "--log", "--log-format", "--criu", "--rootless", "--debug", "--systemd-cgroup"])


@given(
    st.lists(st.one_of(words, flags, st.sampled_from(["-b", "--bundle", "--", "="])), max_size=12),
)
def test_non_injecting_argv_is_never_injected(argv: List[str]) -> None:
    call = parse_runc_argv(argv)
    if call.command not in INJECTING_COMMANDS:
        # the shim execs runc with exactly these arguments
        assert call.bundle == "."
    else:
        index = call.command_index
        assert argv[index] == call.command
        # the word is a real subcommand: not the value of a global flag
        if index > 0:
            previous = argv[index - 1]
            name = previous.lstrip("-")
            assert not (previous.startswith("-") and "=" not in previous and name in {"root", "log", "log-format"})


@given(st.lists(words, max_size=8), st.sampled_from(sorted(INJECTING_COMMANDS)))
def test_a_command_after_a_container_word_is_an_argument(prefix: List[str], command: str) -> None:
    """`runc delete create`: the first non-option word decides, later words are arguments."""
    argv = ["delete", *prefix, command]
    assert parse_runc_argv(argv).command == "delete"


def make_executable(path: Path, content: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(content)
    path.chmod(0o755)
    return path


def test_find_runtime_skips_itself_and_non_executables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shim = make_executable(tmp_path / "shim")
    # Names no host has: the standard directories are searched too.
    (first / "chts-test-runc").symlink_to(shim)  # the shim installed as "runc": must not exec itself
    (first / "chts-test-crun").write_text("not executable")
    real = make_executable(second / "chts-test-runc")
    import posix

    monkeypatch.setitem(posix.environ, b"PATH", f"{first}:{second}".encode())
    assert find_runtime(["chts-test-crun", "chts-test-runc"], str(shim)) == str(real)
    assert find_runtime([str(first / "chts-test-runc")], str(shim)) is None
    assert find_runtime([str(real)], str(shim)) == str(real)
    assert find_runtime(["no-such-runtime-anywhere"], str(shim)) is None


def test_find_runtime_falls_back_to_standard_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import posix

    monkeypatch.setitem(posix.environ, b"PATH", str(tmp_path).encode())
    found: Optional[str] = find_runtime(["sh"], str(tmp_path / "shim"))
    assert found is not None and found.endswith("/sh")
