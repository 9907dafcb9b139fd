#!/usr/bin/env python3
"""NRI mode's cost through the CRI, on real containerd 2.x and 1.7: `sudo python3 bench/nri.py`.

For each containerd generation, two daemons of the same version and config on private paths
(tests/integration/daemons.py CriContainerd), one pod each: on one `container-hooks-ctk nri run`
is registered, the other has no plugin. The same calls alternate between them round-robin (the
order flips every round, after a few rounds of warming up) and medians are reported, so both sides share the
machine's drift and the ratio is measured in one run:
* CreateContainer alone (where NRI asks the plugin; runc does not run yet);
* the full cycle: CreateContainer + StartContainer + StopContainer + RemoveContainer.
The plugin's config: a hooks.json with one always-on createRuntime hook (/bin/true) and a hooks
directory with one drop-in conditional on an annotation no container has. Also reported: the CPU
time per CreateContainer of each containerd and of the plugin (/proc/PID/stat, over the
CreateContainer rounds: steadier than wall time on a busy machine) and the plugin's memory
(VmRSS, VmHWM).

Needs root, busybox-static and the engines of tests/newer_engines.py (`python3
tests/newer_engines.py fetch containerd-1.7 containerd-2`). The CRI client's grpcio, grpcio-tools
and the pytest the test helpers import are installed into the run's directory when this python3
lacks them. Builds the .pyz (--no-build: dist/ as it is).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "container-hooks-toolkit.pyz"
PINS = ["grpcio==1.68.1", "grpcio-tools==1.68.1", "pytest==8.3.4"]  # as tox.ini pins them
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GENERATIONS = ("2", "1.7")
ANNOTATION = "example.com/never-set"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kib(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(line.split()[1])
    return found


def helpers(work: Path) -> None:
    """Make the test helpers (tests/integration: daemons, cri) importable, installing what they import."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
        import pytest  # noqa: F401
    except ImportError:
        # As bench.py does for pytest: the pinned packages into this run's directory, so the one
        # command works with any python3 (Debian's externally managed one included).
        target = work / "site"
        install = [sys.executable, "-m", "pip", "install", "-q", "--root-user-action=ignore"]
        install += ["--no-warn-script-location", "--target", str(target)]
        subprocess.run([*install, *PINS], check=True)
        sys.path.insert(0, str(target))


def busybox_rootfs(directory: Path) -> Path:
    busybox = shutil.which("busybox", path=CLEAN_PATH)
    if busybox is None:
        raise SystemExit("bench/nri.py: busybox-static is not installed")
    rootfs = directory / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for name in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / name).mkdir()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "sleep", "true"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    return rootfs


def toolkit(work: Path, pyz: Path) -> Dict[str, str]:
    """The plugin's toolkit files under ``work``; the environment naming them."""
    base = work / "toolkit"
    (base / "hooks.d").mkdir(parents=True)
    (base / "hooks.json").write_text(json.dumps({"createRuntime": [{"path": "/bin/true"}]}))
    drop_in = {
        "version": "1.0.0",
        "hook": {"path": "/bin/true"},
        "when": {"annotations": {f"^{ANNOTATION}$": "^on$"}},
        "stages": ["poststart"],
    }
    (base / "hooks.d" / "never.json").write_text(json.dumps(drop_in))
    (base / "config.toml").write_text(
        f'[container-hooks]\npath = "{base / "hooks.json"}"\nhooks-dirs = ["{base / "hooks.d"}"]\n'
    )
    (base / "container-hooks-ctk").symlink_to(pyz)
    return {"CONTAINER_HOOKS_CONFIG": str(base / "config.toml"), "CONTAINER_HOOKS_CACHE_DIR": str(base / "cache")}


def measure(
    generation: str, image: Path, work: Path, pyz: Path, rounds: int, cycles: int, parent: str = "/dev/shm"
) -> Dict[str, Any]:
    from cri import WARMUP_ROUNDS, Sides, interleaved_creates, interleaved_cycles
    from daemons import NriPlugin, cri_containerd

    env = toolkit(work, pyz)
    with_plugin_engine = cri_containerd(generation, image, parent=parent)
    without_engine = cri_containerd(generation, image, parent=parent)
    with with_plugin_engine as with_plugin, without_engine as without:
        plugin = NriPlugin(work / "toolkit" / "container-hooks-ctk", with_plugin.nri_socket, work, env=env)
        plugin.start()
        try:
            sides: Sides = {
                "plugin": (with_plugin.cri, with_plugin.cri.run_pod("bench")),
                "none": (without.cri, without.cri.run_pod("bench")),
            }
            pids = {"plugin": plugin.pid, "containerd with": with_plugin.pid, "containerd without": without.pid}
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            creates = interleaved_creates(sides, rounds)
            creates_made = rounds + WARMUP_ROUNDS
            cpu = {name: (cpu_seconds(pid) - cpu_before[name]) * 1000 / creates_made for name, pid in pids.items()}
            cycle = interleaved_cycles(sides, cycles)
            memory = memory_kib(plugin.pid)
            version = with_plugin.cri.version().runtime_version
            expected = rounds + WARMUP_ROUNDS + cycles + 1
            deadline = time.monotonic() + 3  # the state file's count is written at most once a second
            while plugin.state().get("containers", 0) < expected and time.monotonic() < deadline:
                time.sleep(0.1)
            seen = plugin.state().get("containers", 0)
        finally:
            plugin.stop()
    if seen < expected:
        raise SystemExit(f"bench/nri.py: the plugin counted {seen} containers, expected {expected}")
    return {
        "generation": generation,
        "version": version,
        "create": creates,
        "cycle": cycle,
        "cpu_ms_per_create": cpu,
        "memory": memory,
    }


def report(result: Dict[str, Any], rounds: int, cycles: int) -> None:
    from cri import median

    create, cycle = result["create"], result["cycle"]
    print(f"\ncontainerd {result['version']} ({rounds} CreateContainer rounds, {cycles} cycles; medians, wall ms)")
    print("| | no plugin | plugin | added | ratio |")
    print("|---|---|---|---|---|")
    for label, times in (("CreateContainer", create), ("create + start + stop + remove", cycle)):
        none, plugin = median(times["none"]), median(times["plugin"])
        print(f"| {label} | {none:.2f} | {plugin:.2f} | {plugin - none:+.2f} | {plugin / none:.2f}x |")
    cpu, memory = result["cpu_ms_per_create"], result["memory"]
    with_plugin = cpu["containerd with"] + cpu["plugin"]
    print(
        f"| CreateContainer, CPU ms (containerd; + the plugin's {cpu['plugin']:.2f}) | {cpu['containerd without']:.2f} "
        f"| {with_plugin:.2f} | {with_plugin - cpu['containerd without']:+.2f} "
        f"| {with_plugin / cpu['containerd without']:.2f}x |"
    )
    print(f"plugin: VmRSS {memory['VmRSS'] / 1024:.1f} MiB (peak {memory['VmHWM'] / 1024:.1f} MiB)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=100, help="CreateContainer rounds (each side once per round)")
    parser.add_argument("--cycles", type=int, default=40, help="create/start/stop/remove rounds")
    parser.add_argument("--generation", choices=GENERATIONS, action="append", help="containerd 2 and/or 1.7 (both)")
    parser.add_argument("--no-build", action="store_true", help="use dist/ as it is")
    parser.add_argument("--json", help="also write the raw timings to this file")
    parser.add_argument(
        "--dir",
        default="/dev/shm",
        help="where the containerds' root and state go (default: a tmpfs; a disk's fsyncs spread the timings)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/nri.py: needs root (containerd, runc)", file=sys.stderr)
        return 2
    if not args.no_build:
        subprocess.run([sys.executable, str(ROOT / "build.py")], check=True, stdout=subprocess.DEVNULL)
    results = []
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="chts-bench-nri-") as directory:
        work = Path(directory)
        helpers(work)
        from cri import oci_image_archive

        image = oci_image_archive(busybox_rootfs(work), work / "image.tar")
        for generation in args.generation or GENERATIONS:
            side = work / f"containerd-{generation}"
            side.mkdir()
            result = measure(generation, image, side, PYZ, args.rounds, args.cycles, args.dir)
            report(result, args.rounds, args.cycles)
            results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
