#!/usr/bin/env python3
"""NRI mode on one machine: `sudo python3 tests/nri_demo.py` (the README's "NRI mode on one machine").

Starts a real containerd 2.x (Debian sid's, fetched by tests/newer_engines.py into its cache) with
CRI and NRI on private paths in a mount namespace of its own, registers `container-hooks-ctk nri run`
(the built .pyz) on its NRI socket, and creates a pod with two containers through the CRI, as a
kubelet would: one plain, one annotated `example.com/audit=on`. The toolkit config names a
hooks.json with an always-on createRuntime hook and a hooks directory with a drop-in file whose
poststart hook applies to annotated containers only. Prints which hooks ran in each container
(each hook appends its name to a file named after the container id it reads on stdin) and the
plugin's log line for each container. containerd's own config is written by this script into its
temporary directory; nothing under /etc, /run/containerd or /var/lib/containerd is touched.

Needs root, busybox-static (for the image) and Debian's apt (for containerd 2.x). The CRI client's
grpcio/grpcio-tools are installed into the run's temporary directory when this python3 lacks them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parent.parent
ANNOTATION = "example.com/audit"


def hook(markers: Path, label: str) -> Dict[str, Any]:
    """A host /bin/sh hook appending ``label`` to markers/<the container id in its state on stdin>."""
    script = f'state=$(cat); id=${{state#*\\"id\\":\\"}}; echo {label} >> {shlex.quote(str(markers))}/"${{id%%\\"*}}"'
    return {"path": "/bin/sh", "args": ["sh", "-c", script]}


def toolkit(work: Path, markers: Path) -> Dict[str, str]:
    base = work / "toolkit"
    (base / "hooks.d").mkdir(parents=True)
    (base / "hooks.json").write_text(json.dumps({"createRuntime": [hook(markers, "always")]}, indent=1) + "\n")
    drop_in = {
        "version": "1.0.0",
        "hook": hook(markers, "audit"),
        "when": {"annotations": {f"^{ANNOTATION.replace('.', '[.]')}$": "^on$"}},
        "stages": ["poststart"],
    }
    (base / "hooks.d" / "50-audit.json").write_text(json.dumps(drop_in, indent=1) + "\n")
    (base / "config.toml").write_text(
        f'[container-hooks]\npath = "{base / "hooks.json"}"\nhooks-dirs = ["{base / "hooks.d"}"]\n'
    )
    return {"CONTAINER_HOOKS_CONFIG": str(base / "config.toml"), "CONTAINER_HOOKS_CACHE_DIR": str(base / "cache")}


def main() -> int:
    if os.geteuid() != 0:
        print("tests/nri_demo.py: needs root (containerd, runc)", file=sys.stderr)
        return 2
    subprocess.run([sys.executable, str(ROOT / "tests" / "newer_engines.py"), "fetch", "containerd-2"], check=True)
    subprocess.run([sys.executable, str(ROOT / "build.py")], check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(ROOT / "bench"))
    from nri import busybox_rootfs, helpers  # bench/nri.py: the test helpers importable, the busybox rootfs

    with tempfile.TemporaryDirectory(prefix="chts-nri-demo-") as directory:
        work = Path(directory)
        helpers(work)
        from cri import oci_image_archive
        from daemons import NriPlugin, cri_containerd, wait_until

        markers = work / "markers"
        markers.mkdir()
        env = toolkit(work, markers)
        ctk = work / "container-hooks-ctk"
        ctk.symlink_to(ROOT / "dist" / "container-hooks-toolkit.pyz")
        image = oci_image_archive(busybox_rootfs(work), work / "image.tar")
        with cri_containerd("2", image, parent=str(work)) as engine:
            print(f"containerd {engine.cri.version().runtime_version}: CRI and NRI on private paths (pid {engine.pid})")
            plugin = NriPlugin(ctk, engine.nri_socket, work, env=env)
            plugin.start()
            try:
                print(f"$ container-hooks-ctk nri run --socket {engine.nri_socket}   (registered, pid {plugin.pid})")
                cri = engine.cri
                pod = cri.run_pod("demo")
                created = {}
                for name, annotations in (("plain", {}), ("annotated", {ANNOTATION: "on"})):
                    container = cri.create_container(pod, name, ["sleep", "30"], annotations=annotations)
                    cri.start_container(container)
                    created[name] = container
                for name, container in created.items():
                    marker = markers / container
                    wait_until(marker.exists, 5, f"a hook in container {name}")
                    print(f"container {name} ({container[:12]}): hooks that ran: {marker.read_text().split()}")
                sandbox = markers / pod.id
                ran = sandbox.read_text().split() if sandbox.exists() else []
                print(f"pod sandbox (pause) container ({pod.id[:12]}): hooks that ran: {ran} (NRI: no events for it)")
                for line in plugin.output().splitlines():
                    if "injected" in line:
                        print("plugin log: " + line)
                for container in created.values():
                    cri.stop_container(container)
                    cri.remove_container(container)
                cri.stop_pod(pod)
                cri.remove_pod(pod)
            finally:
                plugin.stop()
        print("containerd's config was never edited and containerd never restarted: the plugin delivered the hooks.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
