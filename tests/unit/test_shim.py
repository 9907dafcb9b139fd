"""The shim's argv parsing and runtime lookup: every argv the engines pass, and runc's edge cases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple, Union

import pytest
from conftest import ROOT, write_small_toolkit
from hypothesis import given
from hypothesis import strategies as st

from chts.base.runtime_lookup import find_runtime
from chts.errors import ToolkitError
from chts.shim.argv import COMMAND_VALUE_FLAGS, GO_TRUE, INJECTING_COMMANDS, parse_runc_argv

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
    # "--" among a command's options: what follows is an argument, never an option
    (["create", "--bundle", B, "--", "x"], "create", B, "x"),
    (["create", "x", "--", "--bundle", "/other"], "create", ".", "x"),
    (["run", "--detach", "--bundle", B, "x"], "run", B, "x"),  # a boolean option never takes "--bundle"
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


def test_find_runtime_reads_path_as_execvp_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty PATH entry is the current directory; a directory name that is not UTF-8 is still searched."""
    import posix

    odd = tmp_path / os.fsdecode(b"dir-\xff")
    odd.mkdir()
    real = make_executable(odd / "chts-test-runc")
    monkeypatch.setitem(posix.environ, b"PATH", b":" + os.fsencode(odd))
    assert find_runtime(["chts-test-runc"], str(tmp_path / "shim")) == str(real)
    make_executable(tmp_path / "chts-test-here")
    monkeypatch.chdir(tmp_path)
    assert find_runtime(["chts-test-here"], str(tmp_path / "shim")) == "./chts-test-here"


# ----------------------------------------------------------------------------- main() and fail()


class Execd(BaseException):
    """posix.execv replaced: main() reached the runtime (a BaseException, as nothing may catch it)."""


@pytest.fixture
def shim_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A toolkit config, hooks.json and bundle under tmp_path; execv records instead of exec'ing."""
    import posix

    runtime = make_executable(tmp_path / "runc")
    for name, value in write_small_toolkit(tmp_path, str(runtime)).items():
        monkeypatch.setitem(posix.environ, name.encode(), value.encode())

    def execv(path: str, argv: List[str]) -> None:
        raise Execd(path, argv)

    monkeypatch.setattr(posix, "execv", execv)
    return tmp_path


def run_main(root: Path, args: List[str]) -> Union[int, Execd]:
    from chts.shim import main as shim

    try:
        return shim.main(["container-hooks-runtime", *args], str(root / "shim"))
    except Execd as execd:
        return execd


def test_main_injects_on_create_then_execs_the_runtime_with_the_same_argv(shim_root: Path) -> None:
    args = ["--root", "/r", "create", "--bundle", str(shim_root / "bundle"), "c1"]
    execd = run_main(shim_root, args)
    assert isinstance(execd, Execd)
    assert execd.args == (str(shim_root / "runc"), [str(shim_root / "runc"), *args])
    spec = (shim_root / "bundle" / "config.json").read_text()
    assert '"poststop":[{"path":"/bin/true"}]' in spec


def test_main_passthrough_does_not_touch_the_bundle(shim_root: Path) -> None:
    execd = run_main(shim_root, ["delete", "c1"])
    assert isinstance(execd, Execd)
    assert (shim_root / "bundle" / "config.json").read_text() == '{"ociVersion": "1.0.2"}'


def test_main_fails_a_create_in_one_line_everywhere(shim_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (shim_root / "hooks.json").write_text('{"poststop": [{"path": "/bin/true",}]}')
    log = shim_root / "runc.log"
    status = run_main(shim_root, ["--log", str(log), "create", "-b", str(shim_root / "bundle"), "c1"])
    assert status == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"container-hooks-runtime: {shim_root}/hooks.json:1:")
    assert "level=error" in log.read_text() and "hooks.json:1:" in log.read_text()
    assert "level=error" in (shim_root / "shim.log").read_text()
    assert (shim_root / "bundle" / "config.json").read_text() == '{"ociVersion": "1.0.2"}'


def test_an_unexpected_exception_fails_a_create_in_one_line(
    shim_root: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from chts.shim import inject

    def broken(*args: object) -> None:
        raise KeyError("line one\nline two")

    monkeypatch.setattr(inject, "inject", broken)
    status = run_main(shim_root, ["create", "-b", str(shim_root / "bundle"), "c1"])
    assert status == 1
    err = capfd.readouterr().err
    assert err == "container-hooks-runtime: create failed inside the shim: KeyError: 'line one\\nline two'\n"


def test_an_unexpected_exception_never_stops_passthrough(shim_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chts.shim import cache

    def broken(path: str) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(cache, "load_config", broken)
    execd = run_main(shim_root, ["state", "c1"])
    assert isinstance(execd, Execd)
    assert execd.args[1][1:] == ["state", "c1"]  # the default runtimes: runc from PATH


def test_fail_writes_one_line_to_stderr_and_to_runc_log_in_its_format(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import json

    from chts.shim.main import fail

    for log_format in ("json", "text"):
        log = tmp_path / f"log.{log_format}"
        call = parse_runc_argv(["--log", str(log), "--log-format", log_format, "create", "c1"])
        assert fail("two\nlines", call) == 1
        assert capfd.readouterr().err == "container-hooks-runtime: two\\nlines\n"
        (line,) = log.read_text().splitlines()
        if log_format == "json":
            assert json.loads(line)["msg"] == "container-hooks-runtime: two\\nlines"
            assert json.loads(line)["level"] == "error"
        else:
            assert line.startswith('time="') and 'level=error msg="container-hooks-runtime: two\\\\nlines"' in line


@pytest.mark.parametrize(
    ("flag", "debug"),
    [("--debug", True), ("--debug=true", True), ("--debug=1", True), ("--debug=false", False), ("-debug=0", False)],
)
def test_debug_flag_value(flag: str, debug: bool) -> None:
    assert parse_runc_argv([flag, "state", "x"]).debug is debug


# ----------------------------------------------------------------------------- will runc really create?

CREATES = [
    [*DOCKER_ROOT, "create", "--bundle", B, "--pid-file", f"{B}/init.pid", "abc"],
    ["create", "--bundle", B, "--pid-file", "/p", "--console-socket", "/s", "abc"],
    ["create", "x"],
    ["create", "x", "--bundle", B],  # options after the id: urfave/cli reorders them
    ["run", "-d", "--keep", "--no-subreaper", "x"],
    ["create", "--no-pivot=true", "--no-new-keyring", "--preserve-fds", "2", "x"],
    ["--debug=false", "--systemd-cgroup", "run", "x"],
    ["create", "--", "-x"],  # after "--", "-x" is the id
    ["create", "--config", "/etc/spec.json", "x"],
    ["restore", "--tcp-established", "--some-criu-option", "-b", B, "x"],  # restore is not second-guessed
    # urfave/cli's --help and --version act only when true (issue 18 item 8)
    ["--version=false", "create", "--bundle", B, "x"],
    ["--help=false", "run", "x"],
    ["-h=false", "restore", "x"],
    ["-v=0", "-v=F", "create", "x"],  # one form twice: the last value counts
    ["--version", "--version=false", "create", "x"],
    ["create", "-h=false", "x"],
    ["create", "--help=0", "x"],
    # urfave/cli 1.22 puts "--" first among the words it does not know: "--nope" is the id
    ["run", "-b", B, "--nope", "--"],
    ["create", "--no-pivot=false", "-b", B, "x"],
    ["create", "x", "--no-pivot", "--pid-file", "/p"],  # two known options in a row
    ["create", "--pid-file", "--", "x"],  # "--" is --pid-file's value
    ["create", "x", "--"],
    ["create", "-b", B, "-b", B, "x"],  # one form twice
    ["create", "--preserve-fds", "0x1_0", "x"],  # Go's integer syntax
    ["create", "--preserve-fds", "9_1", "x"],  # an underscore between decimal digits
    ["create", "--preserve-fds", "017", "x"],  # a leading 0: octal
    ["create", "-b", "-x", "c"],  # "-x" is the bundle
]
DOES_NOT_CREATE = [
    ["create", "--help"],
    ["create", "-h", "x"],
    ["run", "x", "--help"],
    ["--help", "create", "x"],
    ["-h", "create", "x"],
    ["-v", "create", "x"],
    ["--version", "run", "x"],
    ["--no-such-global", "create", "x"],
    ["create", "c1", "-b"],  # the value is missing: runc refuses (and "." would be edited)
    ["create", "x", "--bundle"],
    ["create", "--pid-file"],
    ["create"],  # no id
    ["create", "x", "y"],  # two ids
    ["create", "--", "a", "b"],
    ["create", "x", "--", "--bundle", "/other"],  # three ids after "--"
    ["create", "--no-such-flag", "x"],
    ["run", "-x", "c"],
    ["--root"],
    ["state", "x"],
    ["--version=true", "create", "x"],
    ["--version=bogus", "create", "x"],  # "invalid boolean value"
    ["--debug=TrUe", "create", "x"],  # Go's strconv.ParseBool takes true, TRUE, True only
    ["--systemd-cgroup=", "create", "x"],
    ["-v=false", "--version=false", "create", "x"],  # "Cannot use two forms of the same flag"
    ["--help=false", "-h", "create", "x"],
    ["create", "-h=0", "-help=0", "x"],
    ["create", "-b", B, "--bundle", B, "x"],
    ["run", "-d=false", "-detach", "x"],
    ["create", "--detach", "x"],  # run's option, not create's
    ["create", "--no-pivot", "x", "--pid-file", "/p"],  # "x" goes with --no-pivot, which ends the options
    ["create", "-b=" + B, "x", "-d"],
    ["create", "--no-pivot=bogus", "x"],
    ["run", "--detach=yes", "x"],
    ["create", "--preserve-fds=zz", "x"],
    ["create", "--preserve-fds=09", "x"],  # a leading 0 is octal: no 9 (Go's ParseInt(s, 0, 64))
    ["create", "--preserve-fds=", "x"],
    ["create", "--preserve-fds=\u0661", "x"],  # ARABIC-INDIC DIGIT ONE: Python's int() takes it, Go's ParseInt not
    ["create", "--preserve-fds=1\u00e9", "x"],  # a letter int() cannot read in any base
    ["create", "---no-pivot", "x"],  # bad flag syntax
    ["create", "-=x", "x"],
    ["restore", "--help=T", "x"],
]


@pytest.mark.parametrize("argv", CREATES)
def test_calls_that_create(argv: List[str]) -> None:
    assert parse_runc_argv(argv).creates


@pytest.mark.parametrize("argv", DOES_NOT_CREATE)
def test_calls_that_create_nothing_leave_config_json_alone(argv: List[str]) -> None:
    assert not parse_runc_argv(argv).creates


def test_a_container_named_as_an_option_is_the_container() -> None:
    """Only a word with a dash is an option (urfave/cli's argIsFlag): `bundle` here is the container's id."""
    call = parse_runc_argv(["create", "--bundle", B, "bundle"])
    assert (call.container_id, call.bundle) == ("bundle", B)
    call = parse_runc_argv(["create", "bundle", "--bundle", B])  # reordered: the option first, as runc does
    assert (call.container_id, call.bundle) == ("bundle", B)


def test_spec_path_follows_bundle_and_config() -> None:
    assert parse_runc_argv(["create", "-b", "/b/", "x"]).spec_path() == "/b/config.json"
    assert parse_runc_argv(["create", "-b", "/b", "x"]).spec_path() == "/b/config.json"
    assert parse_runc_argv(["create", "x"]).spec_path() == "./config.json"
    assert parse_runc_argv(["create", "--config", "s.json", "-b", "/b", "x"]).spec_path() == "/b/s.json"
    assert parse_runc_argv(["create", "--config=/s.json", "-b", "/b", "x"]).spec_path() == "/s.json"


@pytest.mark.parametrize("argv", [["create", "--help"], ["create", "c1", "-b"], ["create", "-h", "c1"]])
def test_main_leaves_config_json_alone_when_runc_creates_nothing(
    shim_root: Path, monkeypatch: pytest.MonkeyPatch, argv: List[str]
) -> None:
    monkeypatch.chdir(shim_root / "bundle")
    execd = run_main(shim_root, argv)
    assert isinstance(execd, Execd) and execd.args[1][1:] == argv  # runc says what is wrong
    assert (shim_root / "bundle" / "config.json").read_text() == '{"ociVersion": "1.0.2"}'


def test_a_non_executable_runtime_early_in_path_does_not_hide_a_later_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posix

    early, late = tmp_path / "early", tmp_path / "late"
    early.mkdir()
    late.mkdir()
    (early / "runc").write_text("#!/bin/sh\n")  # mode 0644: not executable
    (early / "runc").chmod(0o644)
    real = make_executable(late / "runc")
    monkeypatch.setitem(posix.environ, b"PATH", f"{early}:{late}".encode())
    assert find_runtime(["runc"], str(tmp_path / "shim")) == str(real)
    (early / "runc").chmod(0o755)
    assert find_runtime(["runc"], str(tmp_path / "shim")) == str(early / "runc")


# ----------------------------------------------------------------------------- edges mutation testing found


@pytest.mark.parametrize("flag", sorted(COMMAND_VALUE_FLAGS))
def test_every_value_option_takes_the_next_word(flag: str) -> None:
    """restore tolerates unknown options, so only the value's being taken decides the one id."""
    dash = "-" if len(flag) == 1 else "--"
    call = parse_runc_argv(["restore", dash + flag, "7", "c1"])  # 7: --preserve-fds takes an integer
    assert (call.container_id, call.creates) == ("c1", True)


# ----------------------------------------------------------------------------- boolean flags with a value

# Go's flag package: a boolean flag takes a value only as -x=VALUE, one strconv.ParseBool reads;
# any other value makes runc refuse the call. --help/-h and --version/-v act only when true.
BOOL_VALUES = {"": True, "=true": True, "=false": False, "=1": True, "=0": False, "=t": True, "=F": False}
BOOL_VALUES.update({"=TRUE": True, "=True": True, "=FALSE": False, "=False": False, "=f": False, "=T": True})
BAD_BOOL_VALUES = ["=bogus", "=", "=TrUe", "=yes", "=2", "= true", "=true=1"]
GLOBAL_BOOLS = ["debug", "systemd-cgroup", "help", "h", "version", "v"]
COMMAND_BOOLS = {
    "create": ["no-pivot", "no-new-keyring", "help", "h"],
    "run": ["detach", "d", "keep", "no-subreaper", "no-pivot", "no-new-keyring", "help", "h"],
    "restore": [
        *("tcp-established", "ext-unix-sk", "shell-job", "file-locks", "detach", "d", "no-subreaper"),
        *("no-pivot", "auto-dedup", "lazy-pages", "help", "h"),
    ],
}


def global_bool_cases(flag: str) -> List[Tuple[List[str], bool]]:
    """(argv, whether runc creates) for a global boolean flag with each value, before each command."""
    cases = []
    name = flag.lstrip("-")
    for value, on in [*BOOL_VALUES.items(), *((bad, None) for bad in BAD_BOOL_VALUES)]:
        creates = on is not None and not (on and name in ("help", "h", "version", "v"))
        for command in INJECTING_COMMANDS:
            cases.append(([flag + value, command, "--bundle", B, "x"], creates))
    return cases


def command_bool_cases(command: str, name: str) -> List[Tuple[List[str], bool]]:
    """(argv, whether runc creates) for a boolean option of ``command``, each value, before and after the id."""
    cases = []
    dash = "-" if len(name) == 1 else "--"
    for value, on in [*BOOL_VALUES.items(), *((bad, None) for bad in BAD_BOOL_VALUES)]:
        creates = on is not None and not (on and name in ("help", "h"))
        flag = dash + name + value
        cases.append(([command, flag, "-b", B, "x"], creates))
        cases.append(([command, "-b", B, "x", flag], creates))
        cases.append(([command, flag, "--bundle=" + B, "--", "x"], creates))
    return cases


@pytest.mark.parametrize("flag", [dashes + name for name in GLOBAL_BOOLS for dashes in ("-", "--")])
def test_a_global_boolean_flag_with_a_value(flag: str) -> None:
    for argv, creates in global_bool_cases(flag):
        call = parse_runc_argv(argv)
        assert (call.command, call.creates, call.bundle, call.container_id) == (argv[1], creates, B, "x"), argv
        name, equals, value = argv[0].lstrip("-").partition("=")
        assert call.debug == (name == "debug" and (value in GO_TRUE if equals else True)), argv


@pytest.mark.parametrize(("command", "name"), [(c, n) for c, names in COMMAND_BOOLS.items() for n in names])
def test_a_command_boolean_option_with_a_value_never_swallows_the_bundle(command: str, name: str) -> None:
    for argv, creates in command_bool_cases(command, name):
        call = parse_runc_argv(argv)
        assert call.creates == creates, argv
        if creates:
            assert (call.bundle, call.container_id) == (B, "x"), argv


def test_a_boolean_option_without_a_value_ends_the_options_at_the_next_word() -> None:
    """urfave/cli moves the word after an option without "=" next to it; Go's flag package then
    stops at that word when the option is a boolean, so the options after it are arguments."""
    assert parse_runc_argv(["run", "-d", "x"]).creates
    assert not parse_runc_argv(["run", "-d", "x", "-b", B]).creates
    assert parse_runc_argv(["run", "-d=true", "x", "-b", B]).creates
    assert parse_runc_argv(["run", "-b", B, "x", "-d"]).creates
    assert parse_runc_argv(["run", "-d", "-b", B, "x"]).creates


def test_defaults_of_a_call_without_options() -> None:
    call = parse_runc_argv(["create"])
    assert (call.command, call.command_index, call.container_id, call.log, call.log_format, call.debug) == (
        "create",
        0,
        "",
        "",
        "text",
        False,
    )
    assert parse_runc_argv(["--root", "/r", "--debug", "create", "c1"]).command_index == 3


def test_double_dash_ends_the_global_options() -> None:
    call = parse_runc_argv(["--root", "/r", "--", "create", "c1"])
    assert (call.command, call.command_index, call.creates) == ("create", 3, True)


def test_a_two_character_flag_is_a_flag_not_the_command() -> None:
    call = parse_runc_argv(["-h", "create", "c1"])
    assert (call.command, call.creates) == ("create", False)  # runc prints its help


def test_silence_warnings_silences_every_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    program = (
        "from chts.shim.main import silence_warnings\n"
        "import warnings\n"
        "silence_warnings()\n"
        "warnings.warn_explicit('nested set', FutureWarning, 'm.py', 5)\n"
        "warnings.warn('later', UserWarning)\n"
    )
    import chts

    root = Path(chts.__file__).resolve().parent.parent  # `-c` imports from the working directory
    done = subprocess.run([sys.executable, "-c", program], cwd=root, capture_output=True, text=True, check=True)
    assert done.stderr == ""


@pytest.mark.parametrize(("args", "log_level", "logged"), [
    (["--debug", "state", "c1"], "info", True),
    (["state", "c1"], "debug", True),
    (["state", "c1"], "info", False),
])  # fmt: skip
def test_passthrough_is_logged_with_debug_or_log_level_debug(
    shim_root: Path, args: List[str], log_level: str, logged: bool
) -> None:
    config = shim_root / "config.toml"
    config.write_text(config.read_text() + f'log-level = "{log_level}"\n')
    assert isinstance(run_main(shim_root, args), Execd)
    log = shim_root / "shim.log"
    assert (log.exists() and f"passthrough: {' '.join(args)}" in log.read_text()) is logged


def test_exec_runtime_without_a_config_loads_it(shim_root: Path) -> None:
    from chts.shim import main as shim

    with pytest.raises(Execd) as execd:
        shim.exec_runtime(["state", "c1"], str(shim_root / "shim"), parse_runc_argv(["state", "c1"]), None)
    assert execd.value.args == (str(shim_root / "runc"), [str(shim_root / "runc"), "state", "c1"])


def test_no_runtime_found_fails_in_one_line(shim_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = shim_root / "config.toml"
    config.write_text(config.read_text().replace(str(shim_root / "runc"), str(shim_root / "missing")))
    assert run_main(shim_root, ["state", "c1"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"container-hooks-runtime: no low-level runtime found: tried {shim_root}/missing in $PATH")
    assert f"runtimes in {config}" in err


def test_a_runtime_that_cannot_be_executed_fails_in_one_line(
    shim_root: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import posix

    def execv(path: str, argv: List[str]) -> None:
        raise OSError(8, "Exec format error")

    monkeypatch.setattr(posix, "execv", execv)
    assert run_main(shim_root, ["state", "c1"]) == 1
    assert capfd.readouterr().err == f"container-hooks-runtime: cannot execute {shim_root}/runc: Exec format error\n"


def test_a_failed_exec_is_reported_in_runcs_log_even_when_nobody_reads_stderr(tmp_path: Path) -> None:
    """SIGPIPE is at its default only for the runtime exec'd: when the exec fails, the shim's report of it
    (stderr first, then runc's --log) must not die of SIGPIPE on a stderr whose reader is gone."""
    runtime = make_executable(tmp_path / "runc", "not a program\n")  # no #!: execv fails, Exec format error
    env = {**os.environ, **write_small_toolkit(tmp_path, str(runtime)), "PYTHONPATH": str(ROOT)}
    read_end, write_end = os.pipe()
    os.close(read_end)
    program = "import sys; from chts.shim.main import main; sys.exit(main(sys.argv, sys.argv[0]))"
    log = tmp_path / "runc.log"
    try:
        done = subprocess.run(
            [sys.executable, "-c", program, "--log", str(log), "state", "c1"], env=env, stderr=write_end, check=False
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1  # not -SIGPIPE
    assert f"cannot execute {runtime}: Exec format error" in log.read_text()


def test_signals_are_ignored_again_after_the_exec_returns(shim_root: Path) -> None:
    """In a process that goes on after exec_runtime (a failed exec; the tests, with execv replaced), SIGPIPE is
    ignored as Python has it: at its default, a later write to a closed pipe would kill the process
    (seen: test_precreate.py's hook that reads none of its input, run after this file)."""
    assert isinstance(run_main(shim_root, ["state", "c1"]), Execd)
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN


def test_a_broken_toolkit_config_fails_a_create_naming_it(shim_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (shim_root / "config.toml").write_text("[container-hooks\n")
    assert run_main(shim_root, ["create", "-b", str(shim_root / "bundle"), "c1"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"container-hooks-runtime: {shim_root}/config.toml")
    assert (shim_root / "bundle" / "config.json").read_text() == '{"ociVersion": "1.0.2"}'


def test_trusting_files_of_any_owner_is_warned_about_on_create(shim_root: Path) -> None:
    config = shim_root / "config.toml"
    config.write_text(
        config.read_text().replace("hooks-dirs = []\n", "hooks-dirs = []\ninsecure-allow-non-root-files = true\n")
    )
    assert isinstance(run_main(shim_root, ["create", "-b", str(shim_root / "bundle"), "c1"]), Execd)
    assert "insecure-allow-non-root-files is on" in (shim_root / "shim.log").read_text()


def test_a_precreate_hook_rewrites_the_config_runc_reads(shim_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chts.shim import inject

    hook = make_executable(shim_root / "precreate", "#!/bin/sh\nsed 's/1.0.2/1.0.2-rewritten/'\n")
    entry = {"stage": "precreate", "hook": {"path": str(hook)}, "source": "/d/p.json", "when": {"always": True}}
    monkeypatch.setattr(inject, "planned_hooks", lambda config, log: [entry])
    assert isinstance(run_main(shim_root, ["create", "-b", str(shim_root / "bundle"), "c1"]), Execd)
    assert json.loads((shim_root / "bundle" / "config.json").read_text())["ociVersion"] == "1.0.2-rewritten"


# ----------------------------------------------------------------------------- container-hooks-runtime.TAG


def run_tagged(root: Path, name: str, args: List[str]) -> Union[int, Execd]:
    from chts.shim import main as shim

    try:
        return shim.main([name, *args], str(root / name))
    except Execd as execd:
        return execd


def with_chains(root: Path, table: str) -> None:
    config = root / "config.toml"
    config.write_text(config.read_text() + f"\n[container-hooks-runtime.chains]\n{table}")


def test_a_tagged_name_execs_exactly_its_chained_binary(shim_root: Path) -> None:
    crun = make_executable(shim_root / "crun")
    with_chains(shim_root, f'crun = "{crun}"\n')
    args = ["--root", "/r", "create", "--bundle", str(shim_root / "bundle"), "c1"]
    execd = run_tagged(shim_root, "container-hooks-runtime.crun", args)
    assert isinstance(execd, Execd) and execd.args == (str(crun), [str(crun), *args])
    assert '"poststop":[{"path":"/bin/true"}]' in (shim_root / "bundle" / "config.json").read_text()  # hooks too
    execd = run_tagged(shim_root, "container-hooks-runtime", ["state", "c1"])  # the plain name: the list
    assert isinstance(execd, Execd) and execd.args[0] == str(shim_root / "runc")


@pytest.mark.parametrize("command", [["state", "c1"], ["create", "--bundle", "B", "c1"]])
def test_an_unknown_tag_fails_in_one_line_in_runcs_log(
    shim_root: Path, capfd: pytest.CaptureFixture[str], command: List[str]
) -> None:
    """Never a fallback to the runtimes list: that would run the container under another binary."""
    with_chains(shim_root, f'crun = "{shim_root / "runc"}"\n')
    command = [c.replace("B", str(shim_root / "bundle")) for c in command]
    log = shim_root / "runc.log"
    status = run_tagged(
        shim_root, "container-hooks-runtime.youki", ["--log", str(log), "--log-format", "json", *command]
    )
    assert status == 1
    err = capfd.readouterr().err
    expected = (
        f"container-hooks-runtime: no [container-hooks-runtime.chains] youki in {shim_root / 'config.toml'}, "
        "the runtime container-hooks-runtime.youki execs (container-hooks-ctk runtime configure writes it)"
    )
    assert err == expected + "\n"
    entry = json.loads(log.read_text())  # runc's own --log-format json: what the engine shows
    assert entry["level"] == "error" and entry["msg"] == expected


def test_a_chained_binary_that_is_gone_fails_in_one_line(shim_root: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with_chains(shim_root, f'crun = "{shim_root / "gone"}"\n')
    assert run_tagged(shim_root, "container-hooks-runtime.crun", ["state", "c1"]) == 1
    assert capfd.readouterr().err == (
        f"container-hooks-runtime: {shim_root / 'gone'}, the runtime container-hooks-runtime.crun execs, "
        "is not an executable file\n"
    )


@pytest.mark.parametrize(
    "table, says",
    [
        ('"a b" = "/usr/bin/crun"\n', "tag 'a b' must be letters, digits, '-' or '_'"),
        ('crun = "crun"\n', "crun must be an absolute path on one line, not 'crun'"),
        ('crun = "/usr/bin/\\ncrun"\n', "crun must be an absolute path on one line"),
        ("crun = 1\n", "crun must be an absolute path on one line, not 1"),
    ],
)
def test_a_bad_chains_table_is_one_line_naming_the_file(tmp_path: Path, table: str, says: str) -> None:
    from chts.config.toolkit import parse_config

    with pytest.raises(ToolkitError) as raised:
        parse_config(f"[container-hooks-runtime.chains]\n{table}", "/etc/x.toml")
    assert str(raised.value).startswith("/etc/x.toml: [container-hooks-runtime.chains] ") and says in str(raised.value)


def test_the_tag_is_what_follows_the_shims_name_and_a_dot() -> None:
    from chts import SHIM
    from chts.base.runtime_lookup import CHAINED_PREFIX, chain_tag

    assert CHAINED_PREFIX == SHIM + "."
    assert chain_tag("/usr/bin/container-hooks-runtime.crun") == "crun"
    assert chain_tag("container-hooks-runtime.crun-2") == "crun-2"
    assert chain_tag("/usr/bin/container-hooks-runtime") is None
    assert chain_tag("/x/container-hooks-runtime.crun/container-hooks-ctk") is None


def test_the_toolkit_config_is_etc_container_hooks_config_toml_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import posix

    from chts.shim.main import config_path

    monkeypatch.delitem(posix.environ, b"CONTAINER_HOOKS_CONFIG", raising=False)
    assert config_path() == "/etc/container-hooks/config.toml"
    monkeypatch.setitem(posix.environ, b"CONTAINER_HOOKS_CONFIG", b"/srv/\xff/config.toml")  # any bytes a path has
    assert os.fsencode(config_path()) == b"/srv/\xff/config.toml"


def test_a_bug_reading_runcs_argv_still_passes_the_call_to_runc(
    shim_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passthrough reaches the runtime whatever happened before it (a bug in the parser included)."""
    from chts.shim import main as shim

    def broken(args: List[str]) -> None:
        raise IndexError("a bug")

    monkeypatch.setattr(shim, "parse_runc_argv", broken)
    execd = run_main(shim_root, ["state", "c1"])
    assert isinstance(execd, Execd) and execd.args == (
        str(shim_root / "runc"),
        [str(shim_root / "runc"), "state", "c1"],
    )


def test_a_failure_naming_a_path_that_is_not_utf8_is_still_reported_everywhere(
    shim_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Paths come in as bytes (surrogate escapes): stderr, runc's --log and the shim's log still get the line,
    with the shim's log's fields."""
    bundle = shim_root / "bundle-\udcff"  # b"bundle-\xff"
    bundle.mkdir()
    (bundle / "config.json").write_text("{")
    log = shim_root / "runc.log"
    assert run_main(shim_root, ["--log", str(log), "create", "-b", str(bundle), "c1"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "bundle-\\udcff" in err
    assert "bundle-\\udcff" in log.read_text()
    (line,) = (shim_root / "shim.log").read_text().splitlines()
    assert "level=error" in line and " id=c1 " in line and 'bundle-\\udcff"' in line


@pytest.mark.parametrize(("level", "logged"), [("info", True), ("warning", False)])
def test_a_create_is_logged_at_level_info(shim_root: Path, level: str, logged: bool) -> None:
    config = shim_root / "config.toml"
    config.write_text(config.read_text() + f'log-level = "{level}"\n')
    assert isinstance(run_main(shim_root, ["create", "-b", str(shim_root / "bundle"), "c1"]), Execd)
    log = shim_root / "shim.log"
    lines = log.read_text().splitlines() if log.exists() else []
    assert any(" level=info " in line and " id=c1 " in line for line in lines) is logged, lines


def test_no_python_warning_reaches_the_engine(tmp_path: Path) -> None:
    """Engines show the shim's stderr as why a container failed: a warning from any line of any module is
    never printed there once the shim has started."""
    program = (
        "from chts.shim.main import silence_warnings\n"
        "silence_warnings()\n"
        "import warnings\n"
        "warnings.warn('Possible nested set', FutureWarning)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONWARNINGS", None)
    argv = [sys.executable, "-W", "always", "-c", program]  # the interpreter's own settings say "show them all"
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
