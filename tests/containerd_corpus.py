"""The containerd corpus (tests/fixtures/engines/containerd): real hosts' files, installed under a test's directory.

Each case is a directory holding the main ``config.toml`` and whatever lies beside it on such a
host (drop-in directories, k3s templates). Paths that point into the host's containerd directories
are rewritten to the copy, so imports resolve there and nothing outside the test is read.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Optional, Tuple

CORPUS = Path(__file__).resolve().parent / "fixtures" / "engines" / "containerd"
HOST_DIRECTORIES = (
    "/var/lib/rancher/k3s/agent/etc/containerd/",
    "/var/lib/rancher/rke2/agent/etc/containerd/",
    "/etc/containerd/",
)

# case -> (plain configure, configure --drop-in) as read with containerd 1.x's rules (2.x's for
# version 3): None = works, else a fragment of the one-line refusal.
EXPECTED: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    "debian-12": (None, None),
    "containerd-1.6-default": (None, None),
    "kubeadm": (None, None),
    "kubespray": (None, None),
    "kind": (None, None),
    "gke": (None, None),
    "gce-v1-legacy": (None, None),
    "eks-al2023": (None, None),
    "k3s": ("k3s rewrites it at every start, so this edit would be lost", "imports no drop-in directory"),
    "rke2-v3": ("rke2 rewrites it at every start, so this edit would be lost; use --drop-in", None),
    "containerd-2-default": (None, None),
    "nvidia-ctk": ("whose CRI plugin table replaces this file's on containerd 1.x", "imported after"),
    "docker-containerd-io": (None, None),  # CRI disabled: configured all the same, with a warning
}
CASES = sorted(EXPECTED)


def install(case: str, directory: Path) -> Path:
    """Copy ``case`` into ``directory`` with host paths pointing into the copy; return its main config."""
    target = directory / case
    shutil.copytree(CORPUS / case, target)
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in (".toml", ".tmpl"):
            text = path.read_text()
            for host in HOST_DIRECTORIES:
                text = text.replace(host, f"{target}/")
            path.write_text(text)
    return target / "config.toml"
