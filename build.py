#!/usr/bin/env python3
"""Build dist/container-hooks-toolkit.pyz: one zipapp holding the three tools.

    python3 build.py [--output PATH] [--python INTERPRETER]

Steps, in order:
1. shiv packs chts/ and the pinned, pure-Python tomli and tomli-w into a zipapp
   (pip is told to take only platform-independent wheels, so the one file runs
   on any CPU and on every Python from 3.8 to 3.13);
2. shiv's bootstrap is dropped: it costs ~30 ms per start and unpacks under
   ~/.shiv, far too much for a program that runs on every runc call, and
   pure-Python packages import straight from the archive. The archive starts
   with chts/start.sh, a POSIX sh program that passes the shim's runc calls on
   itself when Python has nothing to do, else execs Python on the file's first
   bytes: that sh text (a string to Python) and chts/boot.py, then the zip data.
   `python3 x.pyz` still works, through a __main__.py that imports chts.boot;
3. the result is checked (no compiled files, the tools answer --version, both
   ways of starting work) and moved into place atomically.
Needs shiv; without it, build.py installs the pinned shiv into a temporary
virtual environment first (pip's access to the package index is needed anyway).
"""

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from chts import DEFAULT_CACHE_DIR, MARKER, SHIM, __version__  # noqa: E402  (after the path)
from chts.base import runtime_lookup  # noqa: E402
from chts.config import toolkit as toolkit_config  # noqa: E402
from chts.shim import argv as runc_argv  # noqa: E402
from chts.shim import runtime_record  # noqa: E402

DEPENDENCIES = ["tomli==2.0.2", "tomli-w==1.0.0"]
SHIV = "shiv==1.0.8"
# Only py3-none-any wheels: never a compiled (mypyc) tomli bound to one Python and CPU.
PURE_WHEELS = ["--only-binary=:all:", "--platform", "any", "--implementation", "py", "--python-version", "3.8"]
DEFAULT_OUTPUT = os.path.join(HERE, "dist", "container-hooks-toolkit.pyz")
DEFAULT_PYTHON = "/usr/bin/python3"
START = os.path.join(HERE, "chts", "start.sh")
BOOT = os.path.join(HERE, "chts", "boot.py")
# Python -I: ignore PYTHON* variables, the user's site and the current directory (a bundle
# directory must not be able to shadow our modules); -S: skip site (we need none of it).
# PROGRAM execs the archive's first PREFIX bytes: chts/start.sh (a string to Python) and
# chts/boot.py, whose last lines call run(). After them the archive holds chts/boot.py compiled by
# the build's Python: its bytecode magic (4 bytes) and CODE bytes of marshal data, which an
# interpreter with the same magic runs instead (as it would a .pyc): compiling boot.py is
# most of a millisecond in a fresh interpreter, whose compiler's pages are not yet in memory.
PROGRAM = (
    'import sys,marshal,_frozen_importlib_external as e;f=open(sys.argv[1],"rb");s=f.read({prefix});'
    "exec(marshal.loads(f.read({code})) if f.read(4)==e.MAGIC_NUMBER else s)"
)
# Run by the build's Python on boot.py (stdin): its magic and marshalled code (stdout).
COMPILE_BOOT = (
    "import marshal,sys,_frozen_importlib_external as e;"
    "sys.stdout.buffer.write(e.MAGIC_NUMBER+marshal.dumps(compile(sys.stdin.buffer.read(),'chts/boot.py','exec')))"
)
NO_CODE = b"\0\0\0\0"  # no magic is four zero bytes: PROGRAM compiles the source
ARCHIVE_MAIN = b"""\
# `python3 container-hooks-toolkit.pyz TOOL ...`: what chts/start.sh's Python does, through runpy.
import sys

archive = sys.path[0]
sys.path[0] = archive + "/site-packages"
from chts.boot import run

run(archive)
"""


def sh_word(value: str) -> str:
    """``value`` quoted for sh; refused when it would need a backslash (Python reads the sh text too)."""
    if "'" in value or "\\" in value or "\n" in value:
        raise ValueError(f"{value!r}: a quote, backslash or newline cannot be written in chts/start.sh")
    return f"'{value}'"


def start_program(python: str, build: str, prefix: int, code: int = 0) -> str:
    """chts/start.sh with its @NAMES@ filled in; ``prefix``: the bytes Python execs, boot.py included;
    ``code``: the length of boot.py's marshalled code after them."""
    with open(START, encoding="utf-8") as handle:
        text = handle.read()
    values = {
        "PYTHON": sh_word(python),
        "PROGRAM": sh_word(PROGRAM.format(prefix=prefix, code=code)),
        "VERSION": __version__,
        "MARKER_NAME": MARKER,
        "SHIM_NAME": SHIM,
        "GLOBAL_VALUE_FLAGS": " | ".join(sorted(runc_argv.GLOBAL_VALUE_FLAGS)),
        "INJECTING_COMMANDS": " | ".join(runc_argv.INJECTING_COMMANDS),
        "FALLBACK_PATH": sh_word(runtime_lookup.FALLBACK_PATH),
        "CACHE_DIR": sh_word(DEFAULT_CACHE_DIR),
        "CONFIG_PATH": sh_word(toolkit_config.DEFAULT_CONFIG_PATH),
        "RECORD_NAME": runtime_record.RECORD_NAME,
        "RECORD_HEADER": sh_word(f"{runtime_record.HEADER} {build}"),
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    # Python reads the sh text as one string literal: no escapes in it, and it ends only at the end.
    if re.search("@[A-Z_]+@", text) or "\\" in text or text.count("'''") != 2:
        raise AssertionError("chts/start.sh: a name left unfilled, a backslash, or three quotes in a row")
    return text


def archive_prefix(python: str, build: str) -> bytes:
    """chts/start.sh and chts/boot.py: what the archive holds before its zip data."""
    if not python.startswith("/"):
        sys.exit(f"build.py: --python {python!r}: need an absolute path")
    try:
        sh_word(python)
    except ValueError as exc:
        sys.exit(f"build.py: --python {exc}")
    with open(BOOT, "rb") as handle:
        boot = handle.read()
    compiled = compiled_boot(python, boot)
    size = 0
    while True:  # the program names the prefix's length, which includes the program
        start = start_program(python, build, size, len(compiled) - 4).encode()
        if len(start) + len(boot) == size:
            return start + boot + compiled
        size = len(start) + len(boot)


def compiled_boot(python: str, boot: bytes) -> bytes:
    """boot.py compiled by ``python``: its bytecode magic and marshal data; NO_CODE when it cannot run."""
    try:
        result = subprocess.run([python, "-ISc", COMPILE_BOOT], input=boot, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"build.py: {python} cannot compile chts/boot.py ({exc}); every start compiles it", file=sys.stderr)
        return NO_CODE
    return result.stdout


def build_id(python: str) -> str:
    """What the runtime record is made for: the sources, the pinned dependencies and the interpreter."""
    digest = hashlib.sha256(repr((DEPENDENCIES, python)).encode())
    for directory, subdirs, files in sorted(os.walk(os.path.join(HERE, "chts"))):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".sh")):
                path = os.path.join(directory, name)
                digest.update(os.path.relpath(path, HERE).encode() + b"\0")
                with open(path, "rb") as handle:
                    digest.update(handle.read() + b"\0")
    return digest.hexdigest()[:16]


def shiv_command(work: str) -> "tuple[list[str], dict[str, str]]":
    """How to run shiv: this Python's, else the pinned one installed into ``work`` first."""
    if importlib.util.find_spec("shiv") is not None:
        return [sys.executable, "-m", "shiv"], dict(os.environ)
    target = os.path.join(work, "shiv")
    print(f"build.py: no shiv in {sys.executable}; installing {SHIV} into a temporary directory", file=sys.stderr)
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        subprocess.run([*install, "--target", target, SHIV], check=True)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"build.py: could not install {SHIV} with pip (exit {exc.returncode}); is pip installed?")
    return [sys.executable, "-m", "shiv"], dict(os.environ, PYTHONPATH=target)


def run_shiv(site_packages: str, output: str, python: str, work: str) -> None:
    shiv, env = shiv_command(work)
    command = [
        *shiv,
        "--site-packages",
        site_packages,
        "--output-file",
        output,
        "--python",
        python,
        "--entry-point",
        "chts.dispatch:main",
        "--reproducible",
        "--compressed",
        *PURE_WHEELS,
        *DEPENDENCIES,
    ]
    try:
        subprocess.run(command, check=True, env=env)
    except FileNotFoundError:
        sys.exit(f"build.py: cannot run {sys.executable}")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"build.py: shiv failed (exit {exc.returncode})")


def replace_bootstrap(shiv_output: str, output: str, prefix: bytes) -> None:
    """Copy the archive without shiv's bootstrap, with our own start (archive_prefix) and __main__.py."""
    with zipfile.ZipFile(shiv_output) as source, open(output, "wb") as raw:
        raw.write(prefix)
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as target:
            for info in source.infolist():
                if info.filename == "__main__.py" or info.filename.startswith("_bootstrap/"):
                    continue
                if info.filename.endswith((".so", ".pyd", ".dylib")):
                    sys.exit(f"build.py: compiled file {info.filename} in the archive; it must be pure Python")
                data = source.read(info.filename)
                info.compress_type = zipfile.ZIP_STORED  # no zlib import, no inflating at start-up
                target.writestr(info, data)
            main = zipfile.ZipInfo("__main__.py", date_time=(1980, 1, 1, 0, 0, 0))
            main.compress_type = zipfile.ZIP_STORED
            main.external_attr = 0o644 << 16
            target.writestr(main, ARCHIVE_MAIN)
    os.chmod(output, 0o755)


def check(output: str, work: str) -> None:
    """Both starts answer: the archive run as a program (its sh start), and python3 on its __main__.py."""
    env = dict(os.environ, CONTAINER_HOOKS_CACHE_DIR=os.path.join(work, "cache"))  # not the host's /run
    for start in ([output], [sys.executable, "-IS", output]):
        for tool in ("ctk", "marker"):  # the runtime passes --version on to runc
            result = subprocess.run([*start, tool, "--version"], capture_output=True, text=True, check=False, env=env)
            if result.returncode != 0 or "0." not in result.stdout:
                sys.exit(f"build.py: {' '.join(start)} {tool} --version failed: {result.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where to write the zipapp")
    parser.add_argument(
        "--python",
        default=DEFAULT_PYTHON,
        help=f"the interpreter to run, an absolute path; where it is missing, the first python3 "
        f"3.8+ on PATH (default: {DEFAULT_PYTHON})",
    )
    args = parser.parse_args()
    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    build = build_id(args.python)
    prefix = archive_prefix(args.python, build)  # refuses a bad --python before the slow part
    with tempfile.TemporaryDirectory(prefix="chts-build-") as work:
        site_packages = os.path.join(work, "site-packages")
        shutil.copytree(
            os.path.join(HERE, "chts"),
            os.path.join(site_packages, "chts"),
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "start.sh"),
        )
        with open(os.path.join(site_packages, "chts", "_build.py"), "w", encoding="utf-8") as handle:
            handle.write(f'"""Written by build.py: the build chts.shim.runtime_record names."""\n\nBUILD = "{build}"\n')
        shiv_output = os.path.join(work, "shiv.pyz")
        run_shiv(site_packages, shiv_output, args.python, work)
        staged = os.path.join(work, "staged.pyz")
        replace_bootstrap(shiv_output, staged, prefix)
        check(staged, work)
        shutil.move(staged, output + ".tmp")
        os.replace(output + ".tmp", output)
    print(f"built {os.path.relpath(output)} ({os.path.getsize(output)} bytes)")


if __name__ == "__main__":
    main()
