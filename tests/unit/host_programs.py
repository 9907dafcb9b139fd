"""A host root whose programs really run as the host (HostRoot.run chroots into it): node installer unit tests.

A static busybox is the host's /bin/sh, so a script can stand in for systemctl, ctr or the installed ctk;
with ``containerd=True`` the machine's real containerd and the C library it links are the host's too, so
`containerd config dump` is containerd's own reading of the host root's files. Files are hard-linked when
they can be (same file system), else copied; nothing outside ``root`` is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import require_binary, require_root

from chts.node.host import HostRoot


def put(root: Path, source: str, host_path: str) -> None:
    """``source`` (a file here) at ``host_path`` in the host root."""
    target = root / host_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(os.path.realpath(source), target)
    except OSError:
        shutil.copy2(source, target)


def libraries(binary: str) -> list[str]:
    """The shared objects ``binary`` loads (its interpreter included), as ldd lists them."""
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    found = []
    for line in done.stdout.splitlines():
        words = line.split()
        path = words[2] if len(words) > 2 and words[1] == "=>" else words[0] if words else ""
        if path.startswith("/"):
            found.append(path)
    return found


def program_host(root: Path, containerd: bool = False) -> HostRoot:
    """A host root at ``root`` with /bin/sh (and containerd at /usr/bin/containerd when asked)."""
    require_root()  # chroot
    busybox = require_binary("busybox")
    for applet in ("sh", "cat"):  # busybox's sh runs its applets only when they are there as programs
        put(root, busybox, f"/bin/{applet}")
    if containerd:
        binary = require_binary("containerd")
        put(root, binary, "/usr/bin/containerd")
        for library in libraries(binary):
            put(root, library, library)
    return HostRoot(str(root))


def script(root: Path, host_path: str, body: str) -> None:
    """An executable sh script at ``host_path`` in the host root."""
    target = root / host_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("#!/bin/sh\n" + body)
    target.chmod(0o755)
