#!/usr/bin/env python3
"""Benchmark the shim against plain runc, interleaved in one run: `python3 bench/bench.py`.

Four figures, as the engines experience them (clean environment, /usr/bin/python3):
* passthrough: `runc state <missing id>` (what every non-create call costs) through
  plain runc, through a bare stdlib zipapp that only execs runc (the floor for any
  Python shim), and through the shim; overhead = time above plain runc.
* marker: the `container-hooks` marker hook against /bin/true.
* cycle: create + start + delete of a busybox `/bin/true` container, plain runc with
  the hook already in config.json vs the shim injecting the same hook, so both
  runc runs do the same work and the difference is the shim's.
* docker: `docker run --rm busybox true` on a dockerd of our own (private paths, the
  helpers of tests/integration/daemons.py) whose default runtime is the shim (no hooks
  configured), against `--runtime runc` on the same daemon.
Commands are run round-robin, many rounds, and medians are reported (single timings
drift by milliseconds here). Needs root, runc and busybox-static (docker.io for the
last figure; the pytest the test helpers import is installed into the run's directory when
this python3 has none); builds the .pyz.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipapp
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYZ = os.path.join(ROOT, "dist", "container-hooks-toolkit.pyz")
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
PYTHON = "/usr/bin/python3"
PYTEST = "pytest==8.3.4"  # as tox.ini pins it

sys.path.insert(0, ROOT)
import build  # noqa: E402  (the project, from this checkout)
from chts.shim.cache import RACY_SECONDS  # noqa: E402


def run_timed(argv: Sequence[str], env: Dict[str, str]) -> Tuple[float, float, int]:
    """(wall ms, CPU ms of the child and its children, exit status) of one command."""
    start = time.perf_counter()
    quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    pid = os.posix_spawn(argv[0], list(argv), env, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - start) * 1000
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, os.waitstatus_to_exitcode(status)


def make_floor(work: str, runc: str) -> str:
    """The cheapest possible Python shim: a stdlib zipapp whose __main__ only execs runc."""
    source = os.path.join(work, "floor")
    os.mkdir(source)
    with open(os.path.join(source, "__main__.py"), "w") as handle:
        handle.write(f"import os, sys\nos.execv({runc!r}, [{runc!r}] + sys.argv[1:])\n")
    target = os.path.join(work, "floor.pyz")
    zipapp.create_archive(source, target, interpreter=f"{PYTHON} -IS")
    return target


def make_bundle(work: str, name: str, hook: Dict[str, Any], with_hook: bool) -> str:
    bundle = os.path.join(work, name)
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for directory in ("proc", "sys", "dev", "tmp"):
        os.mkdir(os.path.join(rootfs, directory))
    shutil.copy2(shutil.which("busybox", path=CLEAN_ENV["PATH"]) or "/bin/busybox", os.path.join(rootfs, "bin"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
    subprocess.run(["runc", "spec"], cwd=bundle, check=True, env=CLEAN_ENV)
    with open(os.path.join(bundle, "config.json")) as handle:
        spec = json.load(handle)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["root"]["readonly"] = True
    if with_hook:
        spec["hooks"] = {"poststop": [hook]}
    with open(os.path.join(bundle, "config.json"), "w") as handle:
        json.dump(spec, handle)
    return bundle


def median(values: List[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="passthrough rounds (default 200)")
    parser.add_argument("--cycles", type=int, default=60, help="create/start/delete rounds (default 60)")
    parser.add_argument("--docker-runs", type=int, default=40, help="docker run rounds (default 40; 0: none)")
    parser.add_argument(
        "--rest-ms", type=float, default=100, help="idle before each create of the from-rest cycles (default 100)"
    )
    parser.add_argument("--no-build", action="store_true", help="use dist/ as it is")
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where bundles, runc's state and the caches go (default /dev/shm, a tmpfs: engines keep "
        "theirs under /run, a tmpfs on systemd hosts, where the shim's fsync of config.json costs nothing)",
    )
    parser.add_argument(
        "--devices", action="store_true", help="only what each start-up device of the create path saves"
    )
    args = parser.parse_args()
    if args.devices:
        return startup_devices(args.rounds // 5 or 1)
    if os.geteuid() != 0:
        sys.exit("bench: needs root (runc creates containers)")
    runc = shutil.which("runc", path=CLEAN_ENV["PATH"])
    if runc is None:
        sys.exit("bench: runc is not installed")
    if not args.no_build:
        subprocess.run([sys.executable, os.path.join(ROOT, "build.py")], check=True, stdout=subprocess.DEVNULL)

    with tempfile.TemporaryDirectory(prefix="chts-bench-", dir=args.dir) as work:
        shim = os.path.join(work, "container-hooks-runtime")
        os.symlink(PYZ, shim)
        marker = os.path.join(work, "container-hooks")
        os.symlink(PYZ, marker)
        floor = make_floor(work, runc)
        state_root = os.path.join(work, "runc-root")
        hook = {"path": "/bin/true", "args": ["true", "bench"]}
        with open(os.path.join(work, "hooks.json"), "w") as handle:
            json.dump({"poststop": [hook]}, handle)
        with open(os.path.join(work, "config.toml"), "w") as handle:
            handle.write(f'[container-hooks]\npath = "{work}/hooks.json"\n')
            handle.write(f'[container-hooks-runtime]\ndebug = "{work}/shim.log"\n')
        shim_env = dict(
            CLEAN_ENV, CONTAINER_HOOKS_CONFIG=f"{work}/config.toml", CONTAINER_HOOKS_CACHE_DIR=f"{work}/cache"
        )
        # The shim's parsed-file cache keeps no file changed in the last RACY_SECONDS, by mtime or
        # ctime (which no one can set back): the cycles start after that window, as on a host
        # whose config is older than a second or two (inside it, every create parses TOML).
        os.utime(f"{work}/config.toml", (time.time() - 10, time.time() - 10))
        os.utime(f"{work}/hooks.json", (time.time() - 10, time.time() - 10))
        cache_usable_at = time.time() + RACY_SECONDS + 0.1

        state = ["--root", state_root, "state", "no-such-container"]
        passthrough = {
            "runc": [runc, *state],
            "floor": [floor, *state],
            "shim": [shim, *state],
            "true": ["/bin/true"],
            "marker": [marker],
        }
        wall: Dict[str, List[float]] = {name: [] for name in passthrough}
        cpu: Dict[str, List[float]] = {name: [] for name in passthrough}
        for argv in passthrough.values():  # warm-up, and the shim's cache
            run_timed(argv, shim_env)
        for round_number in range(args.rounds):
            names = list(passthrough)
            for name in names if round_number % 2 else names[::-1]:
                argv = passthrough[name]
                w, c, _ = run_timed(argv, shim_env)
                wall[name].append(w)
                cpu[name].append(c)

        plain_bundle = make_bundle(work, "plain", hook, with_hook=True)
        shim_bundle = make_bundle(work, "shimmed", hook, with_hook=False)
        sides = {"runc": (runc, plain_bundle), "shim": (shim, shim_bundle)}
        time.sleep(max(0.0, cache_usable_at - time.time()))
        back_to_back = run_cycles(sides, state_root, shim_env, args.cycles, rest=0.0)
        from_rest = run_cycles(sides, state_root, shim_env, args.cycles, rest=args.rest_ms / 1000)
        paused = runc_after_pause(runc, plain_bundle, state_root, shim_env, args.cycles)

        docker = docker_runs(work, shim_env, args.docker_runs)

    runc_ms, floor_ms, shim_ms = (median(wall[n]) for n in ("runc", "floor", "shim"))
    runc_cpu, floor_cpu, shim_cpu = (median(cpu[n]) for n in ("runc", "floor", "shim"))
    print(f"python: {PYTHON} ({subprocess.check_output([PYTHON, '--version'], text=True).strip()})")
    print(f"passthrough `runc state`, median of {args.rounds} interleaved rounds (wall ms / CPU ms):")
    print(f"  plain runc          {runc_ms:6.2f} / {runc_cpu:6.2f}")
    print(f"  bare zipapp floor   {floor_ms:6.2f} / {floor_cpu:6.2f}   overhead {floor_ms - runc_ms:5.2f} ms")
    print(f"  container-hooks     {shim_ms:6.2f} / {shim_cpu:6.2f}   overhead {shim_ms - runc_ms:5.2f} ms")
    print(
        f"  shim / floor: total {shim_ms / floor_ms:.2f}x, overhead "
        f"{(shim_ms - runc_ms) / (floor_ms - runc_ms):.2f}x (CPU overhead "
        f"{(shim_cpu - runc_cpu) / max(floor_cpu - runc_cpu, 1e-9):.2f}x)"
    )
    true_ms, marker_ms = median(wall["true"]), median(wall["marker"])
    print(f"marker hook: /bin/true {true_ms:6.2f} ms, container-hooks {marker_ms:6.2f} ms")
    for title, cycle in (
        ("back to back (each create right after the previous delete)", back_to_back),
        (f"from rest ({args.rest_ms:g} ms idle before each create)", from_rest),
    ):
        cycle_runc, cycle_shim = median(cycle["runc"][0]), median(cycle["shim"][0])
        cpu_runc, cpu_shim = median(cycle["runc"][1]), median(cycle["shim"][1])
        print(f"create/start/delete of busybox /bin/true, {title}, median of {args.cycles} interleaved cycles:")
        print(f"  plain runc          {cycle_runc:6.2f} ms wall / {cpu_runc:6.2f} ms CPU")
        print(f"  container-hooks     {cycle_shim:6.2f} ms wall / {cpu_shim:6.2f} ms CPU")
        print(f"  shim / runc: {cycle_shim / cycle_runc:.2f}x wall, {cpu_shim / cpu_runc:.2f}x CPU")
    print(f"plain runc create alone, by the pause since the previous container's delete, median of {args.cycles}:")
    for pause, times in paused.items():
        print(f"  after {pause:4.0f} ms   {median(times):6.2f} ms wall")
    if docker:
        plain, shimmed = median(docker["runc"]), median(docker["shim"])
        print(f"docker run --rm busybox true, median of {len(docker['runc'])} interleaved runs:")
        print(f"  --runtime runc      {plain:7.1f} ms")
        print(f"  the shim (default)  {shimmed:7.1f} ms   {shimmed / plain:.3f}x")
    return 0


def run_cycles(
    sides: Dict[str, Tuple[str, str]], state_root: str, env: Dict[str, str], rounds: int, rest: float
) -> Dict[str, Tuple[List[float], List[float]]]:
    """create + start + delete through each side, round-robin: {side: (wall ms, CPU ms) per cycle}.
    ``rest``: seconds of idle before each create (none: the create follows the previous delete)."""
    result: Dict[str, Tuple[List[float], List[float]]] = {name: ([], []) for name in sides}
    with open(os.path.join(sides["shim"][1], "config.json"), "rb") as handle:
        fresh_spec = handle.read()
    for round_number in range(rounds + 1):
        names = list(sides)
        # Alternate who goes first: a container's teardown still costs the kernel
        # something after `delete` returns, and it must not always fall on the same side.
        for name in names if round_number % 2 else names[::-1]:
            binary, bundle = sides[name]
            cid = f"bench-{name}-{rest}-{round_number}"
            if name == "shim":  # as an engine does: a new config.json for every container
                with open(os.path.join(bundle, "config.json"), "wb") as handle:
                    handle.write(fresh_spec)
            time.sleep(rest)
            total_wall = total_cpu = 0.0
            for step in (
                ["--root", state_root, "create", "--bundle", bundle, cid],
                ["--root", state_root, "start", cid],
                ["--root", state_root, "delete", "--force", cid],
            ):
                w, c, code = run_timed([binary, *step], env)
                if code != 0:
                    sys.exit(f"bench: {name} {' '.join(step)} exited {code}")
                total_wall += w
                total_cpu += c
            if round_number:  # round 0 warms up (and fills the shim's caches)
                result[name][0].append(total_wall)
                result[name][1].append(total_cpu)
    return result


def runc_after_pause(
    runc: str, bundle: str, state_root: str, env: Dict[str, str], rounds: int
) -> Dict[float, List[float]]:
    """Plain runc's create (wall ms), right after the previous container's delete or after a pause
    as long as the shim's Python start: what a create's wall time owes to the moment it runs."""
    result: Dict[float, List[float]] = {0.0: [], 8.0: [], 100.0: []}
    for round_number in range(rounds):
        pauses = list(result)
        for pause in pauses if round_number % 2 else pauses[::-1]:
            cid = f"pause-{pause}-{round_number}"
            time.sleep(pause / 1000)
            wall, _, code = run_timed([runc, "--root", state_root, "create", "--bundle", bundle, cid], env)
            if code != 0:
                sys.exit(f"bench: runc create {cid} exited {code}")
            result[pause].append(wall)
            run_timed([runc, "--root", state_root, "start", cid], env)
            run_timed([runc, "--root", state_root, "delete", "--force", cid], env)
    return result


def startup_devices(rounds: int) -> int:
    """What each start-up device of the create path saves: the work it avoids, timed in fresh interpreters."""
    # The modules a cached create runs (tiers 0 and 1, tests/integration/test_hot_path.py).
    create_path = ["__init__", "dispatch", "shim", "cache", "runtime_record", "inject", "jsonio", "merge"]
    create_path += ["hook_sources", "hooks_file", "shim_log", "atomic", "errors"]
    sources = [os.path.join(ROOT, "chts", f"{name}.py") for name in create_path]
    toml = '[container-hooks]\npath = "/etc/x"\n[container-hooks-runtime]\nruntimes = ["runc"]\n'
    with open(PYZ, "rb") as handle:
        words = handle.read(20000).decode("latin-1").split("'")
    program = next(word for word in words if word.startswith(build.PROGRAM.split(";", 1)[0]))  # the sh's PROGRAM
    commands = {
        "the interpreter alone (python3 -IS)": [PYTHON, "-ISc", "pass"],
        "+ import _json (what jsonio drives)": [PYTHON, "-ISc", "import _json"],
        "+ import json": [PYTHON, "-ISc", "import json"],
        "+ import tomllib and parse a config (what the parse cache avoids)": [
            PYTHON, "-ISc", f"import tomllib; tomllib.loads({toml!r})"],
        f"+ compile the {len(sources)} modules of a create (what the code cache avoids)": [
            PYTHON, "-ISc", f"for f in {sources!r}: compile(open(f, 'rb').read(), f, 'exec')"],
        "the marker through the archive's first bytes (the sh start's way)": [PYTHON, "-ISc", program, PYZ, "marker"],
        "the marker through runpy (python3 -IS file.pyz)": [PYTHON, "-IS", PYZ, "marker"],
    }  # fmt: skip
    env = dict(CLEAN_ENV, CONTAINER_HOOKS_CACHE_DIR=tempfile.mkdtemp(prefix="chts-bench-"))
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for round_number in range(rounds + 1):
        for name, argv in commands.items():
            wall = run_timed(argv, env)[0]
            if round_number:  # round 0 warms up (and fills the code cache)
                times[name].append(wall)
    print(f"start-up devices, median of {rounds} interleaved rounds (wall ms):")
    for name in commands:
        print(f"  {median(times[name]):6.2f}  {name}")
    shutil.rmtree(env["CONTAINER_HOOKS_CACHE_DIR"])
    return 0


def docker_runs(work: str, shim_env: Dict[str, str], rounds: int) -> Optional[Dict[str, List[float]]]:
    """``docker run --rm`` wall times through the shim as dockerd's default runtime and through runc."""
    if rounds <= 0 or shutil.which("dockerd", path=CLEAN_ENV["PATH"]) is None:
        return None
    sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "integration")]
    try:
        import pytest  # noqa: F401  # the test helpers import it
    except ImportError:
        # As build.py does for shiv: the pinned pytest into this run's directory, so the one
        # command works with any python3 (Debian's externally managed one included).
        target = os.path.join(work, "pytest")
        install = [sys.executable, "-m", "pip", "install", "-q", "--no-warn-script-location", "--target", target]
        if subprocess.run([*install, PYTEST], check=False).returncode != 0:
            print(f"bench: no docker figure: could not install {PYTEST} for the test helpers", file=sys.stderr)
            return None
        sys.path.insert(0, target)
    try:
        from daemons import dockerd
    except ImportError as exc:
        print(f"bench: no docker figure: {exc}", file=sys.stderr)
        return None
    base = Path(work) / "docker"
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox", path=CLEAN_ENV["PATH"]) or "/bin/busybox", rootfs / "bin")
    os.symlink("busybox", rootfs / "bin" / "true")
    hooks = Path(work) / "no-hooks.json"
    hooks.write_text("{}")
    config = Path(work) / "docker-config.toml"
    config.write_text(f'[container-hooks]\npath = "{hooks}"\n')
    old = time.time() - 10  # older than the racy window: the shim records its runtimes at once
    os.utime(config, (old, old))
    env = dict(shim_env, CONTAINER_HOOKS_CONFIG=str(config))
    daemon_json = {"runtimes": {"container-hooks-runtime": {"path": os.path.join(work, "container-hooks-runtime")}}}
    daemon_json["default-runtime"] = "container-hooks-runtime"  # type: ignore[assignment]
    times: Dict[str, List[float]] = {"runc": [], "shim": []}
    with dockerd(base, daemon_json, env=env) as engine:
        image = engine.import_rootfs(rootfs)
        runs = {"runc": ["--runtime", "runc"], "shim": []}
        for round_number in range(rounds + 1):
            order = list(runs.items())
            for name, extra in order if round_number % 2 else order[::-1]:
                start = time.perf_counter()
                engine.docker("run", "--rm", "--network", "none", *extra, image, "true")
                if round_number:  # round 0 warms up
                    times[name].append((time.perf_counter() - start) * 1000)
    return times


if __name__ == "__main__":
    sys.exit(main())
