"""Probe containers: a throw-away container with a hook only it matches, proving the shim injects.

`ctk check` runs one through the shim with runc itself (run_probe_container); the node installer's
verify runs one through containerd (`ctr run --runc-binary`) with a drop-in hook that matches only
its annotation (probe_hook, probe_rootfs; chts.node.engine.verify_container).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from chts import SHIM
from chts.base.runtime_lookup import FALLBACK_PATH
from chts.config.edit import apply_assignments, install_config_text
from chts.config.toolkit import runtimes_of
from chts.errors import ToolkitError
from chts.node.files import make_directory
from chts.node.host import HostRoot

if TYPE_CHECKING:
    from chts.config.toolkit import Config

CONTAINER_TIMEOUT = 60
PROBE_DIR = "/run/container-hooks-node"
PROBE_ANNOTATION = "io.container-hooks.probe"
PROBE_NAMESPACE = "container-hooks-probe"  # a containerd namespace of its own: kubelet never sees the probe


def is_static_elf(path: str) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it runs alone in an empty rootfs."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 16)
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return False
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    (table_offset,) = struct.unpack_from(order + ("Q" if wide else "I"), data, 32 if wide else 28)
    entry_size, count = struct.unpack_from(order + "HH", data, 54 if wide else 42)
    for index in range(count):
        offset = table_offset + index * entry_size
        if offset + 4 > len(data) or struct.unpack_from(order + "I", data, offset)[0] == 3:
            return False
    return True


def build_rootfs(rootfs: str) -> Tuple[str, List[Dict[str, Any]]]:
    """A root file system that can run `true`: busybox-static alone, else the host's own, bind-mounted read-only."""
    os.makedirs(os.path.join(rootfs, "bin"))
    busybox = shutil.which("busybox", path=FALLBACK_PATH)
    if busybox and is_static_elf(busybox):
        shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
        os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
        return "busybox-static container", []
    os.rmdir(os.path.join(rootfs, "bin"))
    mounts = []
    for directory in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr"):
        if os.path.islink(directory):  # merged /usr: keep the host's links, mount only their targets
            os.symlink(os.readlink(directory), rootfs + directory)
        elif os.path.isdir(directory):
            mounts.append({"destination": directory, "type": "bind", "source": directory, "options": ["rbind", "ro"]})
    return "container of the host's /bin/true (host directories bind-mounted read-only)", mounts


def probe_spec(runtime: str, bundle: str, rootfs: str, mounts: List[Dict[str, Any]]) -> None:
    """config.json from the runtime's own `spec` template (right for its version), running /bin/true."""
    result = subprocess.run([runtime, "spec"], cwd=bundle, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise ToolkitError(f"{runtime} spec failed: {result.stderr.strip()}")
    path = os.path.join(bundle, "config.json")
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    spec["process"].update(terminal=False, args=["/bin/true"])
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["mounts"] = spec.get("mounts", []) + mounts
    spec.pop("hooks", None)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(spec, handle, indent="\t")


def probe_config(work: str, config: Config, dest: str) -> str:
    """A toolkit config naming only the probe hook: every default path is moved into ``work``."""
    path = os.path.join(work, "config.toml")
    probe_hooks = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", 'cat > "$1"', "sh", f"{work}/probe.json"]}]}
    with open(os.path.join(work, "hooks.json"), "w", encoding="utf-8") as handle:
        json.dump(probe_hooks, handle)
    text = install_config_text(path, dest)
    text = apply_assignments(text, path, [("container-hooks-runtime", "runtimes", runtimes_of(config))])
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def run_probe_container(shim: str, runtime: str, config: Config, dest: str, shown: str) -> Tuple[bool, str]:
    """(hook fired, what happened): one container through the shim (``shown``: how to name it), then
    everything removed."""
    work = tempfile.mkdtemp(prefix="container-hooks-check-")
    state = os.path.join(work, "runc-state")
    container_id = f"container-hooks-check-{uuid.uuid4().hex[:12]}"
    try:
        bundle = os.path.join(work, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        what, mounts = build_rootfs(rootfs)
        probe_spec(runtime, bundle, rootfs, mounts)
        env = {
            "PATH": os.environ.get("PATH") or FALLBACK_PATH,
            "CONTAINER_HOOKS_CONFIG": probe_config(work, config, dest),
            "CONTAINER_HOOKS_CACHE_DIR": os.path.join(work, "cache"),
        }
        log = os.path.join(work, "runc-log.json")
        command = [shim, "--root", state, "--log", log, "--log-format", "json", "run", "--bundle", bundle, container_id]
        try:
            result = subprocess.run(
                command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CONTAINER_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            return False, f"{SHIM} run did not finish in {CONTAINER_TIMEOUT} s"
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            return False, f"{SHIM} run of a {what} failed: {message}"
        try:
            with open(os.path.join(work, "probe.json"), encoding="utf-8") as handle:
                fired = json.load(handle).get("id") == container_id
        except (OSError, ValueError):
            fired = False
        if not fired:
            return False, f"the container ran through {shown} but the injected probe hook did not fire"
        return True, f"a {what} ran through {shown}; its injected prestart probe hook fired"
    finally:
        subprocess.run(
            [runtime, "--root", state, "delete", "--force", container_id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CONTAINER_TIMEOUT,
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)


def probe_hook(token: str) -> Dict[str, Any]:
    """An oci-hooks(5) file firing only for the probe container (annotation), recording its state on the host."""
    return {
        "version": "1.0.0",
        "hook": {"path": "/bin/sh", "args": ["sh", "-c", f'cat > "{PROBE_DIR}/probe-{token}.json"']},
        "when": {"annotations": {f"^{PROBE_ANNOTATION.replace('.', '[.]')}$": f"^{token}$"}},
        "stages": ["prestart"],
    }


def probe_rootfs(host: HostRoot, rootfs: str) -> List[str]:
    """A rootfs of the host's own /usr (bind-mounted read-only) and its top-level links; ctr --mount arguments."""
    make_directory(host.path(rootfs))
    mounts = ["--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        seen = host.path(f"/{name}", follow_last=False)
        if os.path.islink(seen):
            os.symlink(os.readlink(seen), host.path(f"{rootfs}/{name}", follow_last=False))
        elif os.path.isdir(seen):
            mounts += ["--mount", f"type=bind,src=/{name},dst=/{name},options=rbind:ro"]
    return mounts
