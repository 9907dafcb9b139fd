"""The archive's sh start (chts/start.sh) under dash and busybox sh: it passes a runc call on by itself
exactly when Python would only pass it on, to the runtime Python would choose, and starts Python otherwise.

The sh text is build.py's, with a stand-in Python that prints "python" and stand-in runtimes that
print "runtime <their path>", so each run shows which way the sh went.
"""

from __future__ import annotations

import os
import posix
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import pytest
from conftest import CLEAN_PATH, ROOT, ToolkitRoot, posix_shells, require, require_binary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import build
from chts.base.runtime_lookup import FALLBACK_PATH, find_runtime
from chts.shim import runtime_record
from chts.shim.argv import INJECTING_COMMANDS, parse_runc_argv

sys.path.insert(0, str(ROOT / "tests" / "unit"))  # the runc argv table lives with the shim's unit tests
from test_shim import ENGINE_CASES

pytestmark = pytest.mark.integration

BUILD = "0123456789abcdef"
PYTHON_SAYS = "python\n"
Arg = Union[str, bytes]


SHELLS = posix_shells()


@pytest.fixture(autouse=True)
def _needs_both_shells() -> None:
    require(len(SHELLS) == 2, "dash and busybox-static are needed")


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


class Start:
    """A directory with the sh start under the tools' names, its record, and stand-ins to exec."""

    def __init__(self, base: Path, python: str = "") -> None:
        self.base = base
        self.bin = base / "bin"
        self.bin.mkdir(parents=True)
        self.python = python or str(executable(base / "python", f'#!/bin/sh\nprintf "{PYTHON_SAYS}"\n'))
        self.rt = base / "rt"
        self.rt.mkdir()
        self.runc = self.stand_in(self.rt / "runc")
        self.cache = base / "cache"
        self.cache.mkdir(mode=0o700)
        self.config = base / "config.toml"
        self.record = self.cache / runtime_record.RECORD_NAME
        text = build.start_program(self.python, BUILD, 0)
        for name in ("container-hooks-runtime", "container-hooks", "container-hooks-ctk", "other"):
            executable(self.bin / name, text)
        self.shim = self.bin / "container-hooks-runtime"
        self.write_record(["runc"])

    def stand_in(self, path: Path) -> Path:
        return executable(path, '#!/bin/sh\necho "runtime $0"\n')

    def write_record(
        self,
        runtimes: List[str],
        header: str = f"{runtime_record.HEADER} {BUILD}",
        chains: Optional[Dict[str, str]] = None,
    ) -> None:
        mtime = self.config.stat().st_mtime_ns if self.config.exists() else None
        self.record.write_bytes(runtime_record.content(header, str(self.config), mtime, runtimes, chains))
        if mtime is not None:
            os.utime(self.record, ns=(mtime, mtime))

    def env(self, **extra: str) -> Dict[str, str]:
        return {
            "PATH": f"{self.rt}:{CLEAN_PATH}",
            "CONTAINER_HOOKS_CACHE_DIR": str(self.cache),
            "CONTAINER_HOOKS_CONFIG": str(self.config),
            **extra,
        }

    def run(
        self, shell: List[str], args: Sequence[Arg], tool: str = "container-hooks-runtime", **env: str
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*shell, str(self.bin / tool), *args],
            env=self.env(**env),
            capture_output=True,
            timeout=30,
            check=False,
            cwd=self.base,
        )

    def decision(self, shell: List[str], args: Sequence[Arg], **env: str) -> str:
        result = self.run(shell, args, **env)
        assert result.returncode == 0 and not result.stderr, result
        return result.stdout.decode()


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Start:
    return Start(tmp_path_factory.mktemp("sh-start"))


def python_passes_on(args: Sequence[Arg]) -> bool:
    """What the sh start decides: Python passes on a call that injects nothing and is not logged.

    The sh hands every create/run/restore to Python, which also passes on those that would
    create nothing (--help, a missing id): Python decides those, the sh never guesses."""
    call = parse_runc_argv([a if isinstance(a, str) else a.decode("utf-8", "surrogateescape") for a in args])
    passes = call.command not in INJECTING_COMMANDS and not call.debug
    assert not (passes and call.creates)
    return passes


def expected(start: Start, args: Sequence[Arg]) -> str:
    return f"runtime {start.runc}\n" if python_passes_on(args) else PYTHON_SAYS


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
@pytest.mark.parametrize("argv", [case[0] for case in ENGINE_CASES])
def test_the_engine_table_goes_the_same_way(start: Start, shell: List[str], argv: List[str]) -> None:
    assert start.decision(shell, argv) == expected(start, argv)


# Every spelling of runc's global flags, their values, "--", debug values, subcommands, and raw bytes.
SPELLINGS = [
    *(f"{dashes}{name}{value}" for dashes in ("-", "--", "---") for name in ("root", "log", "debug", "criu")
      for value in ("", "=", "=x", "=true", "=T", "=1", "=false", "=0", "=TrUe", "=t=x", "=True", "=TRUE", "=F")),
    *(f"{flag}{value}" for flag in ("--version", "-v", "--help", "-h", "--systemd-cgroup", "-b", "--nope")
      for value in ("", "=false", "=1", "=0", "=t", "=F", "=bogus")),
    *("--log-format", "--rootless", "--systemd-cgroup", "--", "-", "--=", "-=x", "=", ""),
    *("create", "run", "restore", "start", "state", "delete", "kill", "exec", "Create", "run ", " run"),
]  # fmt: skip
argument = st.one_of(
    st.sampled_from(SPELLINGS),
    st.binary(max_size=6).filter(lambda b: b"\0" not in b),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=4),
)


SHORT = ["--debug", "--debug=T", "-debug=t", "--debug=1", "--debug=TrUe", "--debug=false", "--debug=", "--root"]
SHORT += ["--root=x", "-log", "--", "-", "---debug", "create", "state", "--version=false", "-h=false", "--debug=True"]
SHORT += ["--debug=bogus", "--nope"]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_every_short_argv_goes_the_same_way(start: Start, shell: List[str]) -> None:
    """All argvs of up to two of these words, then nothing, a passthrough or an injecting command."""
    for first in ["", *SHORT]:
        for second in ["", *SHORT]:
            for last in ("", "kill", "run"):
                argv = [word for word in (first, second, last) if word]
                assert start.decision(shell, argv) == expected(start, argv), argv


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(argument, max_size=7))
def test_a_generated_argv_goes_the_same_way_under_dash_and_busybox(start: Start, argv: List[Arg]) -> None:
    want = expected(start, argv)
    for shell in SHELLS:
        assert start.decision(shell, argv) == want, (shell, argv)


# The runtime lookup: PATH spellings (empty elements, a trailing ":", the standard directories
# again) over directories holding a runtime, a non-executable file, a directory, the shim itself.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(["good", "plain", "dir", "self", "", ".", "/usr/sbin", "missing"]), max_size=5),
    st.booleans(),
    st.lists(
        st.sampled_from(["rt-x", "rt-y", "chts-none", "good/rt-x", "./good/rt-y", "true"]), min_size=1, max_size=3
    ),
)
def test_the_runtime_is_the_one_python_finds(
    tmp_path_factory: pytest.TempPathFactory, path: List[str], trailing: bool, runtimes: List[str]
) -> None:
    base = tmp_path_factory.mktemp("lookup")
    start = Start(base)
    for name in ("good", "plain", "dir", "self"):
        (base / name).mkdir()
    for name in ("rt-x", "rt-y"):
        start.stand_in(base / "good" / name)
        (base / "plain" / name).write_text("not executable")
        (base / "dir" / name).mkdir()
        (base / "self" / name).symlink_to(start.shim)
    start.stand_in(base / "rt-y")  # what "" and "." in PATH find
    search = ":".join(str(base / d) if d in ("good", "plain", "dir", "self", "missing") else d for d in path)
    search += ":" if trailing and search else ""
    start.write_record(runtimes)
    old_cwd = os.getcwd()
    os.chdir(base)  # "" and "." in PATH are the working directory, for Python and for the sh alike
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(posix.environ, b"PATH", search.encode())
            found = find_runtime(runtimes, str(start.shim))
    finally:
        os.chdir(old_cwd)
    # "true" is found in the standard directories, and prints its version
    want = (
        PYTHON_SAYS
        if found is None
        else subprocess.run([found, "--version"], capture_output=True, cwd=base).stdout.decode()
    )
    for shell in SHELLS:
        assert start.decision(shell, ["--version"], PATH=search) == want, (shell, search, runtimes)


def test_the_standard_directories_are_those_of_python() -> None:
    assert build.start_program("/p", BUILD, 0).count(f"chts_standard='{FALLBACK_PATH}'\n") == 1


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_the_marker_answers_without_python(start: Start, shell: List[str]) -> None:
    for args, out in (([], ""), (["--version"], "container-hooks 0.1.0\n"), (["-v", "x"], "container-hooks 0.1.0\n")):
        result = start.run(shell, args, tool="container-hooks")
        assert (result.returncode, result.stdout.decode(), result.stderr) == (0, out, b"")
    assert start.run(shell, ["x", "--version"], tool="container-hooks").stdout == b""


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_every_other_name_starts_python(start: Start, shell: List[str]) -> None:
    for tool in ("container-hooks-ctk", "other"):
        for args in ([], ["runtime", "state", "x"], ["marker"], ["--version"]):
            assert start.run(shell, args, tool=tool).stdout.decode() == PYTHON_SAYS


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_the_record_is_used_only_while_it_fits(tmp_path: Path, shell: List[str]) -> None:
    start = Start(tmp_path)
    passes = f"runtime {start.runc}\n"
    assert start.decision(shell, ["state", "x"]) == passes
    start.write_record([])  # passthrough calls are logged: Python runs them
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    start.write_record(["runc"], header=f"{runtime_record.HEADER} another-build")
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    start.write_record(["runc"])
    assert start.decision(shell, ["state", "x"], CONTAINER_HOOKS_CONFIG=str(tmp_path / "other.toml")) == PYTHON_SAYS
    start.config.write_text("")  # a config appears after an "absent" record
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    start.write_record(["runc"])
    assert start.decision(shell, ["state", "x"]) == passes
    stat = start.config.stat()
    os.utime(start.config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # changed since
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    start.write_record(["runc"])
    start.config.unlink()
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_a_tagged_name_passes_on_to_exactly_its_chained_binary(tmp_path: Path, shell: List[str]) -> None:
    """container-hooks-runtime.TAG (chts/ctk/chaining.py): the record's "TAG BINARY" line, never the
    runtimes list; a tag the record lacks, or a binary that is not there, is Python's to report."""
    start = Start(tmp_path)
    (tmp_path / "opt dir").mkdir()
    crun = start.stand_in(tmp_path / "opt dir" / "crun")
    tagged = start.bin / "container-hooks-runtime.crun"
    tagged.symlink_to("container-hooks-runtime")
    start.write_record(["runc"], chains={"crun-2": str(start.runc), "crun": str(crun)})
    assert start.decision(shell, ["state", "x"]) == f"runtime {start.runc}\n"  # the plain name: the list
    for args in (["state", "x"], ["--root", "/r", "kill", "x", "KILL"], ["delete", "x"]):
        result = start.run(shell, args, tool="container-hooks-runtime.crun")
        assert result.stdout.decode() == f"runtime {crun}\n", result
    assert start.run(shell, ["create", "x"], tool="container-hooks-runtime.crun").stdout.decode() == PYTHON_SAYS
    (start.bin / "container-hooks-runtime.youki").symlink_to("container-hooks-runtime")
    assert start.run(shell, ["state", "x"], tool="container-hooks-runtime.youki").stdout.decode() == PYTHON_SAYS
    (start.bin / "container-hooks-runtime.cru").symlink_to("container-hooks-runtime")  # a prefix of a tag
    assert start.run(shell, ["state", "x"], tool="container-hooks-runtime.cru").stdout.decode() == PYTHON_SAYS
    start.write_record(["runc"], chains={"crun": str(tmp_path / "gone")})
    assert start.run(shell, ["state", "x"], tool="container-hooks-runtime.crun").stdout.decode() == PYTHON_SAYS
    start.write_record(["runc"])  # no chains at all
    assert start.run(shell, ["state", "x"], tool="container-hooks-runtime.crun").stdout.decode() == PYTHON_SAYS
    result = start.run(shell, ["state", "x"], tool="container-hooks-runtime.crun", chts_tag="crun")
    assert result.stdout.decode() == PYTHON_SAYS  # a caller's chts_* variable: Python


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_a_record_not_ours_alone_is_never_used(tmp_path: Path, shell: List[str]) -> None:
    start = Start(tmp_path)
    assert start.decision(shell, ["state", "x"]) == f"runtime {start.runc}\n"
    os.chown(start.record, 65534, 65534)
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    os.chown(start.record, 0, 0)
    os.chown(start.cache, 65534, 65534)
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    os.chown(start.cache, 0, 0)
    start.record.rename(tmp_path / "elsewhere")
    start.record.symlink_to(tmp_path / "elsewhere")
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    start.record.unlink()
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS
    start.record.mkdir()
    assert start.decision(shell, ["state", "x"]) == PYTHON_SAYS


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_passthrough_keeps_every_variable_of_the_environment(tmp_path: Path, shell: List[str]) -> None:
    """What the sh cannot keep: dash and busybox export PWD, busybox also SHLVL (docs/startup.md, "The environment")."""
    start = Start(tmp_path)
    executable(start.runc, "#!/bin/sh\nexec /usr/bin/env -0\n")
    extra = {"NOTIFY_SOCKET": "/run/x", "XDG_RUNTIME_DIR": "/run/user/0", "WEIRD": " a\tb\nc '\" $x"}
    result = start.run(shell, ["state", "x"], **extra)
    assert result.returncode == 0, result.stderr
    seen = dict(entry.split(b"=", 1) for entry in result.stdout.split(b"\0")[:-1])
    sent = {k.encode(): v.encode() for k, v in start.env(**extra).items()}
    assert {k: seen.get(k) for k in sent} == sent
    assert set(seen) - set(sent) <= {b"PWD", b"SHLVL"}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_python_is_the_builds_else_the_first_python3_that_is_new_enough(tmp_path: Path, shell: List[str]) -> None:
    start = Start(tmp_path, python=str(tmp_path / "no-such-python"))
    probe = 'case "$2" in *version_info*) exit {status};; esac\necho "{label} $0"\n'
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "empty").mkdir()
    executable(tmp_path / "old" / "python3", "#!/bin/sh\n" + probe.format(status=1, label="old"))
    executable(tmp_path / "new" / "python3", "#!/bin/sh\n" + probe.format(status=0, label="new"))
    search = f"{tmp_path / 'empty'}:{tmp_path / 'old'}:{tmp_path / 'new'}"
    result = start.run(shell, ["create", "x"], PATH=search)
    assert result.stdout.decode() == f"new {tmp_path / 'new' / 'python3'}\n", result.stderr
    search = f"{tmp_path / 'old'}:{tmp_path / 'empty'}"
    result = start.run(shell, ["create", "x"], PATH=search)
    assert result.returncode == 127 and result.stdout == b""
    assert result.stderr.decode() == (
        f"container-hooks-runtime: no Python 3.8 or newer: tried {tmp_path / 'no-such-python'} (missing), "
        f"{tmp_path / 'old' / 'python3'} (older than 3.8), python3 in PATH={search}\n"
    )


def aged(path: Path) -> None:
    """Date ``path`` back 10 s: the shim does not record a config changed in the last two seconds."""
    old = path.stat().st_mtime_ns - 10_000_000_000
    os.utime(path, ns=(old, old))


def test_the_shim_renews_the_record_and_the_sh_start_uses_it(toolkit: ToolkitRoot, tmp_path: Path) -> None:
    require_binary("runc")
    state = ["--root", str(tmp_path / "runc")]
    record = toolkit.cache / runtime_record.RECORD_NAME
    aged(toolkit.config)
    assert toolkit.run_shim([*state, "list"]).returncode == 0  # Python: no record yet
    lines = record.read_text().splitlines()
    assert lines[0].startswith(runtime_record.HEADER + " ") and lines[1:] == [
        str(toolkit.config),
        "present",
        "runc",
        "docker-runc",
    ]
    assert record.stat().st_mtime_ns == toolkit.config.stat().st_mtime_ns
    assert record.stat().st_mode & 0o777 == 0o600
    # A record naming a stand-in shows who ran: the sh start follows it, Python would take runc.
    stand_in = executable(tmp_path / "stand-in", '#!/bin/sh\necho "stand-in $*"\n')
    mtime = record.stat().st_mtime_ns

    def forge() -> None:
        record.write_text("\n".join([*lines[:3], str(stand_in)]) + "\n")
        os.utime(record, ns=(mtime, mtime))

    forge()
    assert toolkit.run_shim([*state, "list"]).stdout == f"stand-in {' '.join(state)} list\n"
    assert toolkit.run_shim(["--debug", *state, "list"]).stdout.startswith("ID ")  # Python: runc
    assert record.read_text().splitlines() == lines  # and Python renewed the record
    forge()
    toolkit.write_config(extra_runtime='log-level = "debug"')  # changed: Python, which cannot record it yet
    assert toolkit.run_shim([*state, "list"]).stdout.startswith("ID ")
    aged(toolkit.config)
    assert toolkit.run_shim([*state, "list"]).returncode == 0
    assert record.read_text().splitlines() == [*lines[:3]]  # passthrough is logged: no runtimes for the sh
    assert toolkit.run_shim([*state, "list"]).stdout.startswith("ID ")
    assert f"passthrough: {' '.join(state)} list" in toolkit.log.read_text()


def test_the_shim_records_the_chains_and_a_tagged_name_runs_its_binary(toolkit: ToolkitRoot, tmp_path: Path) -> None:
    crun = executable(tmp_path / "crun", '#!/bin/sh\necho "crun $*"\n')
    toolkit.write_config(extra_runtime=f'[container-hooks-runtime.chains]\ncrun = "{crun}"\n')
    aged(toolkit.config)
    tagged = toolkit.bin / "container-hooks-runtime.crun"
    tagged.symlink_to("container-hooks-runtime")
    for _ in range(2):  # Python, which records the chains; then the sh start
        result = subprocess.run(
            [str(tagged), "--root", "/r", "state", "x"], env=toolkit.env(), capture_output=True, text=True, check=False
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, "crun --root /r state x\n", "")
    lines = (toolkit.cache / runtime_record.RECORD_NAME).read_text().splitlines()
    assert lines[3:] == ["runc", "docker-runc", "", f"crun {crun}"]


def test_a_broken_config_never_blocks_passthrough(toolkit: ToolkitRoot, tmp_path: Path) -> None:
    require_binary("runc")
    toolkit.config.write_text("[container-hooks-runtime\nruntimes = ")
    aged(toolkit.config)
    for _ in range(2):  # Python, which records the default runtimes; then the sh start
        result = toolkit.run_shim(["--root", str(tmp_path / "runc"), "list"])
        assert result.returncode == 0 and result.stdout.startswith("ID "), result.stderr
    assert (toolkit.cache / runtime_record.RECORD_NAME).read_text().splitlines()[3:] == ["runc", "docker-runc"]


# ----------------------------------------------------------------------------- the caller's environment

# Run a program with an environment given entry by entry, as the kernel takes it: duplicates,
# names no shell can hold, bytes that are no UTF-8 (os.execve takes only a mapping).
RAW_EXEC = """
import ctypes, sys
entries = open(sys.argv[1], "rb").read().split(b"\\0")[:-1]
argv = [arg.encode("utf-8", "surrogateescape") for arg in sys.argv[2:]]
libc = ctypes.CDLL(None, use_errno=True)
def strings(words): return (ctypes.c_char_p * (len(words) + 1))(*words, None)
libc.execve(argv[0], strings(argv), strings(entries))
sys.exit(f"execve: errno {ctypes.get_errno()}")
"""
SHELL_RESETS = {b"IFS": b" \t\n", b"OPTIND": b"1"}  # and PPID: the shell's parent, exported when the caller had one


def run_raw(tmp_path: Path, command: Sequence[str], entries: List[bytes]) -> bytes:
    (tmp_path / "environ").write_bytes(b"".join(entry + b"\0" for entry in entries))
    result = subprocess.run(
        [sys.executable, "-Ic", RAW_EXEC, str(tmp_path / "environ"), *command],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def what_a_shell_keeps(entries: List[bytes], shell: List[str], cwd: Path) -> Dict[bytes, bytes]:
    """The caller's environment less the exceptions README ("How it starts") lists, as the runtime gets it."""
    kept: Dict[bytes, bytes] = {}
    for entry in entries:
        name, equals, value = entry.partition(b"=")
        identifier = name.isascii() and name.replace(b"_", b"a").isalnum() and not name[:1].isdigit()
        if equals and identifier:
            kept.pop(name, None)
            kept[name] = value  # of duplicates, the last
    for name, value in SHELL_RESETS.items():
        if name in kept:
            kept[name] = value
    if not (os.path.isdir(kept.get(b"PWD", b"")) and os.path.samefile(kept[b"PWD"], cwd)):
        kept[b"PWD"] = os.fsencode(os.path.realpath(cwd))
    if shell[-1] == "sh":  # busybox
        kept[b"SHLVL"] = str(int(kept.get(b"SHLVL", b"0")) + 1).encode()
    return kept


CALLERS = {
    "plain": [b"NOTIFY_SOCKET=/run/x", b"WEIRD= a\tb\nc '\" $x \\", b"BYTES=\xff\xfe"],
    "what-sh-drops": [b"a-b=1", b"=x", b"\xff\xfe=bin", b"\xc3\xa9=utf8", b"1A=x", b"noequals", b"DUP=1", b"DUP=2"],
    "what-sh-resets": [b"IFS=abc", b"OPTIND=5", b"SHLVL=7", b"PWD=/nonexistent"],
    "names-of-ours": [b"chts_ctype=mine", b"chts_entry=mine", b"chts_python=f", b"chts_tried=t"],
    "a-clash": [b"chts_dir=mine", b"chts_runtime=/bin/false", b"chts_ifs=x"],  # Python passes these on
    "no-path": [b"LANG=C"],
}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_passthrough_gives_the_runtime_the_callers_environment(
    toolkit: ToolkitRoot, tmp_path: Path, shell: List[str], caller: str
) -> None:
    """The built archive's sh start (and Python, where it hands over) under dash and busybox sh:
    the runtime gets exactly the caller's environment but for the exceptions README lists."""
    toolkit.write_config(extra_runtime='runtimes = ["/usr/bin/env"]')
    aged(toolkit.config)
    assert toolkit.run_shim(["--version"]).returncode == 0  # Python writes the runtime record
    assert (toolkit.cache / runtime_record.RECORD_NAME).exists()
    base = [f"{name}={value}".encode() for name, value in toolkit.env().items()]
    entries = base[1:] if caller == "no-path" else base  # PATH comes first
    entries += CALLERS[caller]
    received = run_raw(tmp_path, [*shell, str(toolkit.shim), "-0"], entries)  # env -0: NUL after each
    got = [entry.partition(b"=")[::2] for entry in received.split(b"\0")[:-1]]
    got_ppid = [value for name, value in got if name == b"PPID"]
    want = what_a_shell_keeps(entries, shell, tmp_path)
    assert {name: value for name, value in got if name != b"PPID"} == {k: v for k, v in want.items() if k != b"PPID"}
    assert len(got) == len(want) + len(got_ppid)  # no name twice
    assert not got_ppid  # no caller here passes PPID; the shell exports it only when one did


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[-1])
def test_without_path_the_runtime_is_the_one_python_finds(tmp_path: Path, shell: List[str]) -> None:
    """Busybox sh exports PATH=/sbin:/usr/sbin:/bin:/usr/bin when there is none; the sh start takes
    it back, so "sh" is found where Python finds it without PATH (/usr/bin/sh, not /bin/sh)."""
    start = Start(tmp_path)
    start.write_record(["sh"])
    env = {k: v for k, v in start.env().items() if k != "PATH"}
    with pytest.MonkeyPatch.context() as patch:
        patch.delitem(posix.environ, b"PATH", raising=False)
        found = find_runtime(["sh"], str(start.shim))
    for path in (None, "/sbin:/usr/sbin:/bin:/usr/bin"):  # busybox's, unless the caller gave it
        given = env if path is None else {**env, "PATH": path}
        command = [*shell, str(start.shim), "-c", 'echo "$0"; exec /usr/bin/env']  # "-c": no subcommand
        result = subprocess.run(command, env=given, capture_output=True, check=False)
        lines = result.stdout.decode().splitlines()
        assert lines[0] == (found if path is None else "/bin/sh"), result
        assert [line for line in lines if line.startswith("PATH=")] == ([] if path is None else [f"PATH={path}"])
