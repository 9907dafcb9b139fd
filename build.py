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
   with `#!/usr/bin/python3 -IScPROGRAM` and the source of chts/boot.py, then the
   zip data. Linux passes "-IScPROGRAM" as one argument, so Python runs PROGRAM,
   which execs those first bytes of the file: no runpy, no zipimport until a
   module is missing from the shim's bytecode cache. `python3 x.pyz` still
   works, through a __main__.py that imports chts.boot;
3. the result is checked (no compiled files, the tools answer --version, both
   ways of starting work) and moved into place atomically.
Needs shiv (`pip install shiv==1.0.8`) and pip's access to the package index.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEPENDENCIES = ["tomli==2.0.2", "tomli-w==1.0.0"]
# Only py3-none-any wheels: never a compiled (mypyc) tomli bound to one Python and CPU.
PURE_WHEELS = ["--only-binary=:all:", "--platform", "any", "--implementation", "py", "--python-version", "3.8"]
DEFAULT_OUTPUT = os.path.join(HERE, "dist", "container-hooks-toolkit.pyz")
DEFAULT_PYTHON = "/usr/bin/python3"
# -I: ignore PYTHON* variables, the user's site and the current directory (a bundle
# directory must not be able to shadow our modules); -S: skip site (we need none of
# it). PROGRAM reads PREFIX bytes of its own file: the shebang line (a comment to
# Python) and chts/boot.py, whose last lines call run().
PROGRAM = 'import sys;exec(open(sys.argv[1],"rb").read({prefix}))'
ARCHIVE_MAIN = b"""\
# `python3 container-hooks-toolkit.pyz TOOL ...`: what the shebang's program does, through runpy.
import sys

archive = sys.path[0]
sys.path[0] = archive + "/site-packages"
from chts.boot import run

run(archive)
"""
# Linux before 5.1 reads at most 127 bytes of a shebang line (later: 255).
MAX_SHEBANG = 127


def archive_prefix(python: str) -> bytes:
    """The shebang line and chts/boot.py: what the archive holds before its zip data."""
    if not python.startswith("/") or " " in python:
        sys.exit(f"build.py: --python {python!r}: need an absolute path without spaces")
    with open(os.path.join(HERE, "chts", "boot.py"), "rb") as handle:
        boot = handle.read()
    size = 0
    while True:  # the program names the prefix's length, which includes the program
        line = f"#!{python} -ISc{PROGRAM.format(prefix=size)}\n".encode()
        if len(line) + len(boot) == size:
            break
        size = len(line) + len(boot)
    if len(line) > MAX_SHEBANG:
        sys.exit(f"build.py: --python {python!r}: the shebang line would be longer than {MAX_SHEBANG} bytes")
    return line + boot


def run_shiv(site_packages: str, output: str, python: str) -> None:
    command = [
        sys.executable,
        "-m",
        "shiv",
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
        subprocess.run(command, check=True)
    except FileNotFoundError:
        sys.exit(f"build.py: cannot run {sys.executable}")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"build.py: shiv failed (exit {exc.returncode}); is it installed? pip install shiv==1.0.8")


def replace_bootstrap(shiv_output: str, output: str, python: str) -> None:
    """Copy the archive without shiv's bootstrap, with our own start (archive_prefix) and __main__.py."""
    with zipfile.ZipFile(shiv_output) as source, open(output, "wb") as raw:
        raw.write(archive_prefix(python))
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
    """Both starts answer: the shebang's one-line program, and the archive's __main__.py."""
    env = dict(os.environ, CONTAINER_HOOKS_CACHE_DIR=os.path.join(work, "cache"))  # not the host's /run
    with open(output, "rb") as handle:
        entry = handle.readline()[len("#!") :].split(b" ", 1)[1].rstrip(b"\n").decode()
    for start in ([sys.executable, entry, output], [sys.executable, "-IS", output]):
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
        help=f"the shebang's interpreter, an absolute path (default: {DEFAULT_PYTHON})",
    )
    args = parser.parse_args()
    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chts-build-") as work:
        site_packages = os.path.join(work, "site-packages")
        shutil.copytree(
            os.path.join(HERE, "chts"),
            os.path.join(site_packages, "chts"),
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        shiv_output = os.path.join(work, "shiv.pyz")
        archive_prefix(args.python)  # refuse a bad --python before the slow part
        run_shiv(site_packages, shiv_output, args.python)
        staged = os.path.join(work, "staged.pyz")
        replace_bootstrap(shiv_output, staged, args.python)
        check(staged, work)
        shutil.move(staged, output + ".tmp")
        os.replace(output + ".tmp", output)
    print(f"built {os.path.relpath(output)} ({os.path.getsize(output)} bytes)")


if __name__ == "__main__":
    main()
