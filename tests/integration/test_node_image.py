"""The installer image as the DaemonSet runs it: a real docker container with the fake node's root at /host.

No registry is reachable here, so the image's base is built from this machine's own Python (the
interpreter, its standard library and the shared libraries they load), imported with `docker
import`; deploy/kubernetes/Dockerfile then builds on it with --build-arg PYTHON_IMAGE. dockerd runs
in the fake node's mount namespace, so the container's /host is the node's root with its mounts,
as a hostPath "/" volume is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Set

import pytest
from conftest import ROOT, require_binary
from daemons import dockerd, import_tar_of, wait_until
from fake_node import fake_node
from test_node_installer import NODE_CONTAINERD_TOML, ConfigMapDir, FakeApiServer, hooks_json, run_hooked_container

pytestmark = pytest.mark.integration

PYTHON_IMAGE = "container-hooks-python:local"
INSTALLER_IMAGE = "container-hooks-installer:test"
# Parts of the standard library the installer never imports: left out to keep the image small.
UNUSED_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "dist-packages"}


def shared_libraries(binary: str) -> Set[str]:
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    return set(re.findall(r"(/\S+\.so[.\d]*)", done.stdout))


def host_python_rootfs(rootfs: Path) -> None:
    """A root file system holding this machine's /usr/bin/python3 and what it needs, nothing else."""
    python = os.path.realpath("/usr/bin/python3")
    version = os.path.basename(python)  # python3.N
    rootfs.mkdir()
    for link in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{link}"):
            (rootfs / link).symlink_to(os.readlink(f"/{link}"))
            (rootfs / link).resolve().mkdir(parents=True, exist_ok=True)
    for directory in ("usr/bin", "tmp", "run", "etc"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(python, rootfs / "usr" / "bin" / version)
    (rootfs / "usr" / "bin" / "python3").symlink_to(version)
    stdlib = f"/usr/lib/{version}"
    unused = lambda directory, names: UNUSED_STDLIB & set(names)  # noqa: E731
    shutil.copytree(stdlib, rootfs / stdlib.lstrip("/"), symlinks=True, ignore=unused)
    libraries = shared_libraries(python)
    for module in Path(stdlib, "lib-dynload").glob("*.so"):
        libraries |= shared_libraries(str(module))
    for library in libraries:
        target = rootfs / os.path.realpath(library).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(library), target)
        soname = rootfs / library.lstrip("/")  # the name ld.so looks for (a link to the versioned file)
        if not soname.exists():
            soname.parent.mkdir(parents=True, exist_ok=True)
            soname.symlink_to(os.path.realpath(library))
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n")


def test_installer_image_installs_verifies_stays_and_uninstalls_a_node(
    pyz: Path, tmp_path: Path, busybox_rootfs: Path
) -> None:
    require_binary("docker")
    require_binary("ldd")
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"hooks.json": hooks_json("from-the-pod")})
    token = tmp_path / "token"
    token.write_text("pod-token\n")
    api = FakeApiServer()
    python_rootfs = tmp_path / "python-rootfs"
    host_python_rootfs(python_rootfs)
    context = tmp_path / "context"
    (context / "dist").mkdir(parents=True)
    shutil.copy2(pyz, context / "dist" / pyz.name)
    try:
        with fake_node(NODE_CONTAINERD_TOML) as node, dockerd(tmp_path, wrapper=node.in_namespace([])) as engine:
            original = node.path("/etc/containerd/config.toml").read_bytes()
            import_tar_of(python_rootfs, ["docker", "-H", f"unix://{engine.socket}", "import", "-", PYTHON_IMAGE])
            dockerfile = str(ROOT / "deploy" / "kubernetes" / "Dockerfile")
            engine.docker("build", "--build-arg", f"PYTHON_IMAGE={PYTHON_IMAGE}", "-t", INSTALLER_IMAGE,
                          "-f", dockerfile, str(context), timeout=300)  # fmt: skip
            # the DaemonSet's pod: privileged (every capability but CAP_SYS_RESOURCE, which this VM's root
            # lacks, so --privileged itself fails here), the node's / at /host (rslave = HostToContainer)
            pod = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                   "--network", "host", "-e", "NODE_NAME=node-1",
                   "-v", f"{node.root}:/host:rslave", "-v", f"{source.path}:/etc/container-hooks-config:ro",
                   "-v", f"{token}:/var/run/secrets/kubernetes.io/serviceaccount/token:ro"]  # fmt: skip
            cluster = [f"--api-server={api.url}", "--restart-mode=auto"]
            engine.docker("run", "-d", "--name", "installer", *pod, INSTALLER_IMAGE, "node", "run", "--interval=0.5",
                          *cluster)  # fmt: skip
            wait_until(lambda: len(api.requests) == 1, 180, "the pod to verify the node and label it")
            assert api.requests[0]["body"] == {"metadata": {"labels": {"container-hooks.io/ready": "true"}}}
            assert api.requests[0]["headers"]["Authorization"] == "Bearer pod-token"
            probe = ["python3", "/opt/container-hooks-toolkit/container-hooks-toolkit.pyz", "ctk", "node", "ready"]
            assert engine.docker("exec", "installer", *probe, check=False).returncode == 0  # the readiness probe
            assert node.restarts == 1
            assert node.path("/etc/container-hooks/hooks.json").read_text() == hooks_json("from-the-pod")

            # a rolling update or a drain: SIGTERM, exit 0, the node stays as it is
            engine.docker("stop", "--time", "30", "installer")
            assert engine.docker("inspect", "--format", "{{.State.ExitCode}}", "installer").stdout.strip() == "0"
            logs = engine.docker("logs", "installer").stdout
            assert "the node keeps its configuration" in logs
            assert node.restarts == 1
            shutil.copytree(busybox_rootfs, node.path("/var/tmp/busybox"), symlinks=True)
            assert run_hooked_container(node, "/var/tmp/busybox", "after-the-pod") == "hello\n"
            assert node.path("/var/log/hooks.log").read_text() == "from-the-pod\n" * 2  # the pod's probe, and this

            # the uninstall Job
            engine.docker("run", "--rm", *pod, INSTALLER_IMAGE, "node", "uninstall", *cluster)
            assert api.requests[-1]["body"] == {"metadata": {"labels": {"container-hooks.io/ready": None}}}
            assert node.path("/etc/containerd/config.toml").read_bytes() == original
            assert node.restarts == 2
            assert not node.path("/opt/container-hooks").exists()
    finally:
        api.close()
