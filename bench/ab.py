"""Two builds of the archive against each other: a create and a passthrough call, interleaved.

    python3 bench/ab.py OLD.pyz NEW.pyz [--rounds 300]

Each build gets its own toolkit root (config.toml naming /bin/true as the runtime, a hooks.json
with one hook, a bundle whose config.json already holds it) and its own cache directory, so
what is timed is the shim's own work: the sh start, Python, the cached plan, the merge that
finds nothing to change, and the exec. Calls alternate between the builds (which goes first
alternates too); the medians of wall time and of the child's CPU time (wait4) are printed.
Standard library only; needs no root and no runc.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Tuple

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def toolkit_root(base: str, archive: str) -> Dict[str, str]:
    """A toolkit root for ``archive`` under ``base``; the environment that makes the shim use it."""
    os.makedirs(f"{base}/bundle")
    os.makedirs(f"{base}/bin")
    os.symlink(os.path.abspath(archive), f"{base}/bin/container-hooks-runtime")
    with open(f"{base}/hooks.json", "w") as handle:
        handle.write('{"poststop": [{"path": "/bin/true"}]}')
    with open(f"{base}/config.toml", "w") as handle:
        handle.write(
            f'[container-hooks]\npath = "{base}/hooks.json"\nhooks-dirs = []\n'
            f'[container-hooks-runtime]\ndebug = "{base}/log"\nruntimes = ["/bin/true"]\n'
        )
    spec = {"ociVersion": "1.0.2", "process": {"args": ["/bin/true"]}, "root": {"path": "rootfs"}}
    with open(f"{base}/bundle/config.json", "w") as handle:
        json.dump(spec, handle)
    past = time.time() - 3600  # out of the parse cache's racy window
    for name in ("hooks.json", "config.toml"):
        os.utime(f"{base}/{name}", (past, past))
    return {
        "PATH": CLEAN_PATH,
        "CONTAINER_HOOKS_CONFIG": f"{base}/config.toml",
        "CONTAINER_HOOKS_CACHE_DIR": f"{base}/cache",
    }


def timed(argv: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    """(wall ms, CPU ms of the child) of one call."""
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"bench/ab.py: {' '.join(argv)} exited with status {status}")
    return (time.perf_counter() - start) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chts-ab-") as work:
        builds = {"old": args.old, "new": args.new}
        envs = {label: toolkit_root(f"{work}/{label}", archive) for label, archive in builds.items()}
        shim = {label: f"{work}/{label}/bin/container-hooks-runtime" for label in builds}
        calls: Dict[str, Callable[[str], List[str]]] = {
            "create": lambda label: [shim[label], "create", "--bundle", f"{work}/{label}/bundle", "x"],
            "passthrough (state)": lambda label: [shim[label], "state", "x"],
        }
        for call, argv_of in calls.items():
            for label in builds:
                for _ in range(20):  # warm: the code cache, the parse cache, the runtime record
                    timed(argv_of(label), envs[label])
            samples: Dict[str, Tuple[List[float], List[float]]] = {label: ([], []) for label in builds}
            for round_ in range(args.rounds):
                for label in ("old", "new") if round_ % 2 else ("new", "old"):
                    wall, cpu = timed(argv_of(label), envs[label])
                    samples[label][0].append(wall)
                    samples[label][1].append(cpu)
            medians = {label: (statistics.median(w), statistics.median(c)) for label, (w, c) in samples.items()}
            print(f"{call}, median of {args.rounds} interleaved rounds (wall ms / CPU ms):")
            for label, archive in builds.items():
                print(f"  {label} {archive}: {medians[label][0]:6.2f} / {medians[label][1]:6.2f}")
            ratio = medians["new"][1] / medians["old"][1]
            print(f"  new / old: {medians['new'][0] / medians['old'][0]:.3f}x wall, {ratio:.3f}x CPU")


if __name__ == "__main__":
    main()
