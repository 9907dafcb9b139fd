"""A Podman host's hook directories (tests/data/podman-host, see its SOURCES.md) read as Podman reads them.

NVIDIA's hook, oci-umount and oci-systemd-hook in the 0.1.0 format, the seccomp hook,
containers/qm's precreate hooks and Sarus-style files, in Podman's two directories:
every file is usable, /etc masks /usr/share, and each container gets what Podman gives it.
"""

# The container table keeps one case per line.
# ruff: noqa: E501

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from chts.config.toolkit import default_config
from chts.hooks.sources import explain_hooks, scan_hook_sources

HOST = Path(__file__).resolve().parent.parent / "data" / "podman-host"
DIRS = ("usr/share/containers/oci/hooks.d", "etc/containers/oci/hooks.d")


@pytest.fixture
def planned(tmp_path: Path) -> List[Any]:
    copy = tmp_path / "host"
    shutil.copytree(HOST, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # a checkout's modes vary; the shim refuses group-writable
    config = default_config()
    config["container-hooks"]["path"] = str(tmp_path / "no-hooks.json")
    config["container-hooks"]["hooks-dirs"] = [str(copy / directory) for directory in DIRS]
    hooks, _, problems = scan_hook_sources(config)
    assert problems == []  # no file of a real Podman host fails (or is skipped)
    return hooks


def rows(entries: List[Dict[str, Any]]) -> List[Tuple[str, str, str]]:
    return [(Path(entry["source"]).name, entry["stage"], entry["hook"]["path"].rpartition("/")[2]) for entry in entries]


def test_every_file_is_read_in_podmans_order_and_etc_masks_usr_share(planned: List[Dict[str, Any]]) -> None:
    assert rows(planned) == [
        ("07-ssh-hook.json", "createRuntime", "ssh_hook"),
        ("09-slurm-global-sync-hook.json", "createRuntime", "slurm_global_sync_hook"),  # prestart, as Podman 5
        ("oci-nvidia-hook.json", "createRuntime", "nvidia-container-toolkit"),
        ("oci-qm-device-manager.json", "precreate", "oci-qm-device-manager"),
        ("oci-qm-seat-manager.json", "precreate", "oci-qm-device-manager"),
        ("oci-qm-wayland-client-devices.json", "precreate", "oci-qm-wayland-client-devices"),
        ("oci-seccomp-bpf-hook.json", "createRuntime", "oci-seccomp-bpf-hook"),
        ("oci-systemd-hook.json", "createRuntime", "oci-systemd-hook"),
        ("oci-systemd-hook.json", "poststop", "oci-systemd-hook"),
        ("oci-umount.json", "createRuntime", "oci-umount"),
    ]
    umount = planned[-1]
    assert umount["source"].endswith("etc/containers/oci/hooks.d/oci-umount.json")
    assert umount["hook"]["args"] == ["/usr/libexec/oci/hooks.d/oci-umount", "--debug"]  # hook + arguments


BIND = {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"]}


def container(args: List[str], annotations: Optional[Dict[str, str]] = None, binds: bool = False) -> Dict[str, Any]:
    spec: Dict[str, Any] = {"process": {"args": args, "env": ["PATH=/bin"]}, "mounts": [BIND] if binds else []}
    if annotations is not None:
        spec["annotations"] = annotations
    return spec


CONTAINERS = [
    # (case, spec, files whose hooks it gets) — what Podman's manager.Hooks selects for each
    ("plain", container(["sh"]), ["oci-nvidia-hook.json"]),
    ("systemd", container(["/usr/sbin/init"]), ["oci-nvidia-hook.json", "oci-systemd-hook.json", "oci-systemd-hook.json"]),
    ("bind mount: oci-umount (0.1.0)", container(["sh"], binds=True), ["oci-nvidia-hook.json", "oci-umount.json"]),
    ("syscall tracing", container(["sh"], {"io.containers.trace-syscall": "of:/tmp/p.json"}), ["oci-nvidia-hook.json", "oci-seccomp-bpf-hook.json"]),
    ("qm device", container(["sh"], {"org.containers.qm.device.audio": "true"}), ["oci-nvidia-hook.json", "oci-qm-device-manager.json"]),
    ("qm device, not enabled", container(["sh"], {"org.containers.qm.device.audio": "no"}), ["oci-nvidia-hook.json"]),
    ("qm seat and wayland", container(["sh"], {"org.containers.qm.wayland.seat": "seat0", "org.containers.qm.wayland-client.gpu": "x"}), ["oci-nvidia-hook.json", "oci-qm-seat-manager.json", "oci-qm-wayland-client-devices.json"]),
    ("Sarus ssh", container(["sh"], {"com.hooks.ssh.enabled": "true"}), ["07-ssh-hook.json", "oci-nvidia-hook.json"]),
    ("Sarus ssh, value with a newline", container(["sh"], {"com.hooks.ssh.enabled": "true\n"}), ["oci-nvidia-hook.json"]),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "files"), [c[1:] for c in CONTAINERS], ids=[c[0] for c in CONTAINERS])
def test_each_container_gets_what_podman_gives_it(planned: List[Any], spec: Dict[str, Any], files: List[str]) -> None:
    # Every stage, precreate included (the shim runs those; the rest go into config.json).
    matched = [Path(entry["source"]).name for entry, applies, _ in explain_hooks(planned, spec) if applies]
    assert matched == files
