"""The engines nodes run today, from Debian's newer suites, for tests on a Debian 12 host.

containerd 1.7 (trixie), containerd 2.x (sid) and dockerd 26 (trixie's docker.io) run on
Debian 12; Debian 12 ships containerd 1.6 and dockerd 20.10. Each is fetched with
`apt-get download` through a private sources list, package cache and empty dpkg status (the
system's apt configuration and state are never touched), unpacked with `dpkg-deb -x` and kept
under the cache directory ($CHTS_ENGINE_CACHE, default /var/cache/chts-engines), so a second run
costs nothing. runc from those suites needs a newer glibc: tests keep Debian 12's runc.

    python3 tests/newer_engines.py fetch [NAME ...]     # what .ci/run does before the tests
    python3 tests/newer_engines.py path NAME            # the unpacked tree's bin directory
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

MIRROR = "http://deb.debian.org/debian"


class Engine(NamedTuple):
    suite: str
    package: str
    binary: str  # the daemon, relative to the unpacked tree
    family: str  # the version prefix the tests are about


ENGINES: Dict[str, Engine] = {
    "containerd-1.7": Engine("trixie", "containerd", "usr/bin/containerd", "1.7."),
    "containerd-2": Engine("sid", "containerd", "usr/bin/containerd", "2."),
    "dockerd-26": Engine("trixie", "docker.io", "usr/sbin/dockerd", "26."),
}


def cache_dir() -> Path:
    return Path(os.environ.get("CHTS_ENGINE_CACHE", "/var/cache/chts-engines"))


def mirror() -> str:
    """The Debian mirror this host's apt uses (deb822 or one-line sources), else the default."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[1]:
                return words[1]
    return MIRROR


def apt_options(state: Path) -> List[str]:
    """apt options that read and write nothing of the system's apt configuration or state."""
    return [
        f"-oDir::Etc::SourceList={state / 'sources.list'}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={state / 'lists'}",
        "-oDir::State::status=/dev/null",  # else the installed (older) version is the candidate
        f"-oDir::Cache={state / 'cache'}",
        "-oAPT::Sandbox::User=root",
    ]


def prepare_suite(suite: str) -> List[str]:
    """A private apt state for ``suite`` with fresh lists; the options that use it."""
    state = cache_dir() / f"apt-{suite}"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(f"deb {mirror()} {suite} main\n")
    options = apt_options(state)
    subprocess.run(["apt-get", *options, "-qq", "update"], check=True, stdout=subprocess.DEVNULL)
    return options


def installed(name: str) -> Optional[Path]:
    """The unpacked tree of ``name`` when it is in the cache, else None."""
    tree = cache_dir() / name
    return tree if (tree / ENGINES[name].binary).is_file() else None


def fetch(name: str) -> Path:
    """The unpacked tree of engine ``name``, downloading and unpacking it when not cached."""
    found = installed(name)
    if found is not None:
        return found
    engine = ENGINES[name]
    options = prepare_suite(engine.suite)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as work:
        subprocess.run(["apt-get", *options, "-qq", "download", engine.package], check=True, cwd=work)
        debs = sorted(Path(work).glob("*.deb"))
        if len(debs) != 1:
            raise SystemExit(f"newer_engines: apt-get download {engine.package} gave {len(debs)} files")
        tree = Path(work) / "tree"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True)
        (tree / "DEBIAN-VERSION").write_text(debs[0].name + "\n")
        target = cache_dir() / name
        if target.exists():
            shutil.rmtree(target)
        tree.rename(target)  # whole or not at all: a killed fetch leaves only the temporary directory
    return target


def version(name: str, tree: Path) -> str:
    """What the daemon says its version is (`containerd --version`, `dockerd --version`)."""
    done = subprocess.run([str(tree / ENGINES[name].binary), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main(argv: List[str]) -> int:
    if len(argv) < 1 or argv[0] not in ("fetch", "path"):
        print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
        return 2
    names = argv[1:] or list(ENGINES)
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        print(f"newer_engines: unknown engine {unknown[0]!r} (known: {', '.join(ENGINES)})", file=sys.stderr)
        return 2
    for name in names:
        tree = fetch(name) if argv[0] == "fetch" else installed(name)
        if tree is None:
            print(f"newer_engines: {name} is not fetched (run: python3 tests/newer_engines.py fetch {name})")
            return 1
        if argv[0] == "fetch":
            print(f"{name}: {version(name, tree)} in {tree}")
        else:
            print(tree / Path(ENGINES[name].binary).parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
