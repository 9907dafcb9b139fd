"""NRI mode against real containerd 2.x and 1.7 (issue 20): pods and containers created through the CRI.

One containerd per generation for the module (CRI and NRI on private paths, in a mount namespace of
its own: tests/integration/daemons.py CriContainerd), a busybox-static image imported as both the
sandbox (pause) image and the containers' image; no kubelet, no CNI (host-network pods).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from cri import CONTAINER_RUNNING, oci_image_archive
from daemons import CriContainerd, cri_containerd, wait_until

pytestmark = pytest.mark.integration

GENERATIONS = ("2", "1.7")


@pytest.fixture(scope="session")
def busybox_image(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """busybox-static as an OCI image archive (no registry here)."""
    return oci_image_archive(busybox_rootfs, tmp_path_factory.mktemp("image") / "busybox.tar")


@pytest.fixture(scope="module", params=GENERATIONS, ids=[f"containerd-{g}" for g in GENERATIONS])
def engine(request: pytest.FixtureRequest, busybox_image: Path) -> Iterator[CriContainerd]:
    with cri_containerd(request.param, busybox_image) as started:
        yield started


def test_a_cri_pod_runs_a_container_that_writes_to_a_host_directory(engine: CriContainerd, tmp_path: Path) -> None:
    version = engine.cri.version()
    assert version.runtime_name == "containerd"
    assert version.runtime_version.startswith(engine.generation + "."), version
    pod = engine.cri.run_pod("harness")
    container = engine.cri.create_container(
        pod, "writer", ["sh", "-c", "echo $GREETING > /out/written; exec sleep 3600"],
        env={"GREETING": "hello"}, mounts=[(tmp_path, "/out")],
    )  # fmt: skip
    engine.cri.start_container(container)
    wait_until(lambda: (tmp_path / "written").exists(), 10, "the container to write its file", engine.log)
    time.sleep(0.05)
    assert (tmp_path / "written").read_text() == "hello\n"
    assert engine.cri.container_status(container).state == CONTAINER_RUNNING
    assert [c.id for c in engine.cri.list_containers(pod)] == [container]
    engine.cri.stop_container(container)
    engine.cri.remove_container(container)
    engine.cri.remove_pod(pod)
    assert pod.id not in engine.cri.pod_ids()
