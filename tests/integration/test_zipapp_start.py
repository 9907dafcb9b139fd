"""How the .pyz starts: its sh start's Python program, the bytecode cache it serves modules from, and the ways
either can be wrong (stale, corrupt, not ours, a hostile working directory) without changing what runs."""

from __future__ import annotations

import importlib.util
import marshal
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import CLEAN_PATH, ROOT, in_ci, python_start, require, require_binary, write_small_toolkit

from chts import code_cache

MARKER_CODE = "import sys\nsys.stdout.write('served from the cache\\n')\ndef main():\n    return 0\n"


def run(argv: List[str], cache: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": CLEAN_PATH, "CONTAINER_HOOKS_CACHE_DIR": str(cache)}
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def tool(tmp_path: Path, pyz: Path) -> Path:
    """The .pyz as the admin CLI (the marker no longer starts Python), in a directory of its own
    (the cache is keyed by path)."""
    (tmp_path / "bin").mkdir()
    link = tmp_path / "bin" / "container-hooks-ctk"
    link.symlink_to(pyz)
    return link


def cache_files(cache: Path) -> List[Path]:
    return sorted(cache.glob("code-*")) if cache.exists() else []


def forge(cache: Path, module: str, source: str) -> None:
    """Rewrite the cached code of ``module``, keeping the entry's archive signature."""
    (entry,) = cache_files(cache)
    data = entry.read_bytes()
    head = 4 + int.from_bytes(data[:4], "little")
    signature, index, _ = marshal.loads(data[4:head])
    area = data[head:]
    blobs = {name: (is_package, area[start:end]) for name, (is_package, start, end) in index.items()}
    blobs[module] = (False, marshal.dumps(compile(source, module, "exec")))
    entry.write_bytes(code_cache.layout(signature, blobs))


def test_the_archive_starts_in_sh_and_python_execs_exactly_the_text_before_the_zip(pyz: Path) -> None:
    data = pyz.read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    length, code, _ = (int(n) for n in re.findall(r"read\((\d+)\)", python_start(pyz)[1]))
    assert data.index(b"PK\x03\x04") == length + 4 + code
    boot = (ROOT / "chts" / "boot.py").read_bytes()
    assert data[:length].endswith(b"\n'''\n" + boot)  # the sh text is one string literal to Python
    assert b"\\" not in data[: length - len(boot)]
    # then boot.py compiled by the build's Python, which the same Python runs instead of compiling it
    magic, compiled = data[length : length + 4], data[length + 4 : length + 4 + code]
    assert magic == importlib.util.MAGIC_NUMBER  # tox's Python is a 3.11, as /usr/bin/python3
    assert marshal.loads(compiled).co_code == compile(boot, "chts/boot.py", "exec", dont_inherit=True).co_code


def test_the_builds_python_runs_boot_compiled_and_others_compile_its_source(tmp_path: Path, pyz: Path) -> None:
    """Proof of which start ran: a copy whose boot.py source no longer compiles still starts
    under the build's Python (it runs the compiled code) and fails under any other."""
    length, _, _ = (int(n) for n in re.findall(r"read\((\d+)\)", python_start(pyz)[1]))
    data = bytearray(pyz.read_bytes())
    broken = b"run(sys.argv[0])"
    at = data.rindex(broken, 0, length)
    data[at : at + len(broken)] = b"run(sys.argv[0]("  # a syntax error of the same length
    copy = tmp_path / "container-hooks-ctk"
    copy.write_bytes(bytes(data))
    copy.chmod(0o755)
    built = run([str(copy), "--version"], tmp_path / "cache")
    assert built.returncode == 0 and built.stdout.startswith("container-hooks-ctk "), built.stderr
    others = sorted(Path("/root/.pyenv/versions").glob("3.1[02]*/bin/python3"))
    require(bool(others) or not in_ci(), "no other Python (pyenv 3.10 or 3.12) to start the archive with")
    for python in others:
        result = run([str(python), *python_start(pyz), str(copy), "--version"], tmp_path / "cache")
        assert result.returncode == 1 and "SyntaxError" in result.stderr, (python, result)


def test_the_kernel_runs_the_sh_start(tool: Path, tmp_path: Path) -> None:
    result = run([str(tool), "--version"], tmp_path / "cache")
    assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stderr


def test_first_start_fills_the_cache_and_later_starts_are_served_from_it(tool: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert run([str(tool), "--version"], cache).returncode == 0
    (entry,) = cache_files(cache)
    assert entry.name.startswith(f"code-{sys.implementation.cache_tag}-")
    assert (entry.stat().st_mode & 0o777, cache.stat().st_mode & 0o777) == (0o600, 0o700)
    forge(cache, "chts.dispatch", MARKER_CODE)
    result = run([str(tool), "--version"], cache)
    assert (result.returncode, result.stdout) == (0, "served from the cache\n")


def test_a_replaced_archive_ignores_and_rewrites_the_cache(tool: Path, tmp_path: Path, pyz: Path) -> None:
    cache = tmp_path / "cache"
    copy = tmp_path / "bin" / "container-hooks-ctk"
    copy.unlink()
    copy.write_bytes(pyz.read_bytes())
    copy.chmod(0o755)
    assert run([str(copy), "--version"], cache).returncode == 0
    forge(cache, "chts.dispatch", MARKER_CODE)
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # an upgrade in place
    result = run([str(copy), "--version"], cache)
    assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stdout
    assert "served from the cache" not in run([str(copy), "--version"], cache).stdout  # rewritten for the new archive


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xe3\x00\x00", "truncated"])
def test_a_corrupt_cache_is_ignored_and_rewritten(tool: Path, tmp_path: Path, content: object) -> None:
    cache = tmp_path / "cache"
    assert run([str(tool), "--version"], cache).returncode == 0
    (entry,) = cache_files(cache)
    entry.write_bytes(entry.read_bytes()[:1000] if content == "truncated" else content)  # type: ignore[arg-type]
    result = run([str(tool), "--version"], cache)
    assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stderr
    assert len(entry.read_bytes()) > 1000  # whole again


@pytest.mark.parametrize("where", ["directory", "file"])
def test_a_cache_others_can_write_is_never_used(tool: Path, tmp_path: Path, where: str) -> None:
    cache = tmp_path / "cache"
    assert run([str(tool), "--version"], cache).returncode == 0
    forge(cache, "chts.dispatch", MARKER_CODE)
    (entry,) = cache_files(cache)
    (cache if where == "directory" else entry).chmod(0o777 if where == "directory" else 0o666)
    result = run([str(tool), "--version"], cache)
    assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stdout


def test_an_unusable_cache_directory_only_costs_speed(tool: Path, tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    result = run([str(tool), "--version"], not_a_directory / "cache")
    assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stderr
    assert not_a_directory.read_text() == "x"


def test_a_hostile_working_directory_cannot_shadow_our_modules(tool: Path, tmp_path: Path) -> None:
    """Engines run the runtime inside the bundle directory, which a container image's author may shape."""
    hostile = tmp_path / "bundle"
    (hostile / "chts").mkdir(parents=True)
    canary = tmp_path / "canary"
    payload = f"open({str(canary)!r}, 'w').write('pwned')\n"
    for name in ("chts/__init__.py", "chts/dispatch.py", "chts/boot.py", "marshal.py", "zipfile.py", "json.py"):
        (hostile / name).write_text(payload + "def main():\n    return 0\n")
    for cache in (tmp_path / "cold", tmp_path / "cold"):  # a miss, then a hit
        result = run([str(tool), "--version"], cache, cwd=hostile)
        assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stderr
    assert not canary.exists()


def test_python_pyz_still_works_through_main(pyz: Path, tmp_path: Path) -> None:
    for _ in range(2):  # a miss, then a hit
        result = run([sys.executable, "-IS", str(pyz), "ctk", "--version"], tmp_path / "cache")
        assert result.returncode == 0 and result.stdout.startswith("container-hooks-ctk "), result.stderr


def test_build_refuses_an_interpreter_path_the_sh_start_cannot_hold(tmp_path: Path) -> None:
    output = tmp_path / "out.pyz"
    output.write_bytes(b"previous build")
    for python in ("python3", "/usr/bin/it's", "/usr/bin/back\\slash", "/usr/bin/new\nline"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "build.py"), "--output", str(output), "--python", python],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0
        assert result.stderr.strip().startswith(f"build.py: --python {python!r}:"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert output.read_bytes() == b"previous build"


def test_every_tool_reaches_its_code_from_the_cache(tmp_path: Path, pyz: Path) -> None:
    """The runtime and ctk start through the same cache; ctk's own modules load from the archive."""
    require_binary("runc")  # the runtime passes --version on to it
    (tmp_path / "bin").mkdir()
    names: Dict[str, str] = {"container-hooks-ctk": "--help", "container-hooks-runtime": "--version"}
    for name, flag in names.items():
        (tmp_path / "bin" / name).symlink_to(pyz)
        for _ in range(2):
            result = run([str(tmp_path / "bin" / name), flag], tmp_path / "cache")
            assert result.returncode == 0, (name, result.stderr)
    assert len(cache_files(tmp_path / "cache")) == 2  # one per path the archive was run by


@pytest.mark.parametrize(
    "locale",
    [{}, {"LC_CTYPE": "C"}, {"LC_CTYPE": ""}, {"LC_CTYPE": "POSIX"}, {"LC_CTYPE": "C.UTF-8"}, {"LC_ALL": "C"}],
    ids=["unset", "C", "empty", "POSIX", "C.UTF-8", "LC_ALL"],
)
def test_a_create_hands_the_runtime_the_environment_and_signals_it_was_given(
    tmp_path: Path, pyz: Path, locale: Dict[str, str]
) -> None:
    """Python's start exports LC_CTYPE=C.UTF-8 when the locale is C, and ignores SIGPIPE and SIGXFSZ;
    the runtime a create execs must see neither (the sh itself exports PWD: docs/startup.md, "The environment")."""
    runtime = tmp_path / "runtime"
    runtime.write_text('#!/bin/sh\ncat /proc/$$/environ\necho\ngrep "^SigIgn:" /proc/$$/status\n')
    runtime.chmod(0o755)
    env = {"PATH": CLEAN_PATH, **write_small_toolkit(tmp_path, str(runtime)), **locale}
    (tmp_path / "bin").mkdir()
    shim = tmp_path / "bin" / "container-hooks-runtime"
    shim.symlink_to(pyz)
    given = subprocess.run([str(runtime)], env=env, cwd=tmp_path, capture_output=True, timeout=60, check=True)
    result = subprocess.run(
        [str(shim), "create", "--bundle", str(tmp_path / "bundle"), "x"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    environ, status = result.stdout.rsplit(b"\n", 2)[:2]
    seen = dict(entry.split(b"=", 1) for entry in environ.split(b"\0") if entry)
    assert seen == {**{k.encode(): v.encode() for k, v in env.items()}, b"PWD": str(tmp_path).encode()}
    # What the runtime itself run directly ignores: the signals this test was started with (under
    # `nohup ... &`, SIGHUP, SIGINT and SIGQUIT), never Python's SIGPIPE (13) and SIGXFSZ (25).
    assert status.split() == given.stdout.rsplit(b"\n", 2)[1].split()
    assert not int(status.split()[1], 16) & (1 << 12 | 1 << 24)
