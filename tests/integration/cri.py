"""A CRI client for the tests and bench: what kubelet asks containerd, over gRPC on its socket.

The messages are a subset of Kubernetes' CRI (cri_api.proto beside this file, numbers from
kubernetes/cri-api), compiled with grpc_tools.protoc into a temporary directory the first time
they are needed (nothing generated is committed); grpcio carries the calls. Both are test-only
dependencies (tox.ini), never in the zipapp.

    cri = CriClient(engine.socket)
    pod = cri.run_pod("web", annotations={...})                    # host network: no CNI
    cid = cri.create_container(pod, "app", ["sh", "-c", "..."], mounts=[(host_dir, "/out")])
    cri.start_container(cid); cri.container_status(cid).state      # CONTAINER_RUNNING
    cri.remove_pod(pod)                                            # stops and removes its containers

``oci_image_archive`` writes a busybox root file system as an OCI image archive that
``ctr -n k8s.io images import`` loads (no registry here); it serves as the pod's sandbox (pause)
image and as the containers' image.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import platform
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import grpc

PROTO = Path(__file__).with_name("cri_api.proto")
IMAGE = "docker.io/library/chts-busybox:local"
# the image's command: the pod's sandbox container runs it, and a container given no command
SANDBOX_COMMAND = ["sleep", "86400"]
TIMEOUT = 60.0
CONTAINER_RUNNING = 1
CONTAINER_EXITED = 2
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
NODE = 2  # NamespaceMode: the host's namespace (a pod with host network needs no CNI)

_messages: Optional[Any] = None


def messages() -> Any:
    """The module protoc generates from cri_api.proto (compiled once per process)."""
    global _messages
    if _messages is None:
        from grpc_tools import protoc

        out = Path(tempfile.mkdtemp(prefix="chts-cri-"))
        try:
            status = protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={out}", str(PROTO)])
            if status != 0:
                raise RuntimeError(f"protoc could not compile {PROTO} (exit {status})")
            spec = importlib.util.spec_from_file_location("cri_api_pb2", out / "cri_api_pb2.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules["cri_api_pb2"] = module
            spec.loader.exec_module(module)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        _messages = module
    return _messages


class Pod(NamedTuple):
    """A pod sandbox: its id and the config it was run with (CreateContainer sends it again)."""

    id: str
    config: Any


class CriClient:
    """The CRI RuntimeService (and ImageService) of the engine listening on ``socket``."""

    def __init__(self, socket: Path, timeout: float = TIMEOUT) -> None:
        self.socket = socket
        self.timeout = timeout
        self.pb = messages()
        # reconnect soon after the engine (re)starts: gRPC's default backoff grows to minutes
        options = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 250)]
        self.channel = grpc.insecure_channel(f"unix://{Path(socket).resolve()}", options=options)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CriClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        request: Any,
        service: str = "RuntimeService",
        timeout: Optional[float] = None,
        wait_for_ready: bool = False,
    ) -> Any:
        response = getattr(self.pb, f"{method}Response")
        stub = self.channel.unary_unary(
            f"/runtime.v1.{service}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        return stub(request, timeout=timeout or self.timeout, wait_for_ready=wait_for_ready)

    # ------------------------------------------------------------------ runtime

    def version(self) -> Any:
        """VersionResponse: runtime_name, runtime_version, runtime_api_version."""
        return self.call("Version", self.pb.VersionRequest(version="v1"))

    def ready(self) -> bool:
        """Whether the CRI answers (containerd up, CRI plugin loaded)."""
        try:
            self.call("Version", self.pb.VersionRequest(version="v1"), timeout=1, wait_for_ready=True)
        except grpc.RpcError:
            return False
        return True

    def image_present(self, image: str = IMAGE) -> bool:
        """Whether the CRI's image store knows ``image`` (ImageStatus answers with an empty image if not)."""
        request = self.pb.ImageStatusRequest(image=self.pb.ImageSpec(image=image))
        return bool(self.call("ImageStatus", request, service="ImageService").image.id)

    def pod_config(
        self,
        name: str,
        annotations: Optional[Dict[str, str]] = None,
        labels: Optional[Dict[str, str]] = None,
        namespace: str = "default",
        log_directory: Optional[Path] = None,
    ) -> Any:
        """A pod with host network, PID and IPC namespaces: runs without CNI or a network plugin."""
        pb = self.pb
        host = pb.NamespaceOption(network=NODE, pid=NODE, ipc=NODE)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=str(uuid.uuid4()), namespace=namespace, attempt=0),
            log_directory=str(log_directory or ""),
            labels=labels or {},
            annotations=annotations or {},
            linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=host)),
        )

    def run_pod(self, name: str, runtime_handler: str = "", **config: Any) -> Pod:
        """RunPodSandbox (with ``runtime_handler``: a RuntimeClass's); ``config``: pod_config's keywords."""
        pod_config = self.pod_config(name, **config)
        request = self.pb.RunPodSandboxRequest(config=pod_config, runtime_handler=runtime_handler)
        response = self.call("RunPodSandbox", request)
        return Pod(response.pod_sandbox_id, pod_config)

    def stop_pod(self, pod: Pod) -> None:
        self.call("StopPodSandbox", self.pb.StopPodSandboxRequest(pod_sandbox_id=pod.id))

    def remove_pod(self, pod: Pod) -> None:
        """StopPodSandbox then RemovePodSandbox (which removes the pod's containers)."""
        self.stop_pod(pod)
        self.call("RemovePodSandbox", self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id))

    def pod_ids(self) -> List[str]:
        return [item.id for item in self.call("ListPodSandbox", self.pb.ListPodSandboxRequest()).items]

    def remove_all_pods(self) -> None:
        """Remove every pod sandbox (and so every container) the engine has: a module's teardown."""
        for pod_id in self.pod_ids():
            self.remove_pod(Pod(pod_id, None))

    def container_config(
        self,
        name: str,
        command: Sequence[str] = (),
        args: Sequence[str] = (),
        annotations: Optional[Dict[str, str]] = None,
        labels: Optional[Dict[str, str]] = None,
        mounts: Iterable[Tuple[Path, str]] = (),
        env: Optional[Dict[str, str]] = None,
        image: str = IMAGE,
    ) -> Any:
        """A container config; ``mounts``: (host path, container path) read-write binds."""
        pb = self.pb
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=0),
            image=pb.ImageSpec(image=image),
            command=list(command),
            args=list(args),
            envs=[pb.KeyValue(key=key, value=value) for key, value in (env or {}).items()],
            mounts=[pb.Mount(host_path=str(host), container_path=inside) for host, inside in mounts],
            labels=labels or {},
            annotations=annotations or {},
            log_path=f"{name}.log",
        )

    def create_container(self, pod: Pod, name: str, command: Sequence[str] = (), **config: Any) -> str:
        """CreateContainer in ``pod`` -> the container id; ``config``: container_config's keywords."""
        request = self.pb.CreateContainerRequest(
            pod_sandbox_id=pod.id, config=self.container_config(name, command, **config), sandbox_config=pod.config
        )
        return str(self.call("CreateContainer", request).container_id)

    def start_container(self, container_id: str) -> None:
        self.call("StartContainer", self.pb.StartContainerRequest(container_id=container_id))

    def stop_container(self, container_id: str, timeout: int = 0) -> None:
        """StopContainer; ``timeout`` 0: SIGKILL at once (busybox as PID 1 ignores SIGTERM)."""
        self.call("StopContainer", self.pb.StopContainerRequest(container_id=container_id, timeout=timeout))

    def remove_container(self, container_id: str) -> None:
        self.call("RemoveContainer", self.pb.RemoveContainerRequest(container_id=container_id))

    def container_status(self, container_id: str) -> Any:
        """ContainerStatus: state (CONTAINER_RUNNING, CONTAINER_EXITED...), exit_code, reason, message."""
        return self.call("ContainerStatus", self.pb.ContainerStatusRequest(container_id=container_id)).status

    def list_containers(self, pod: Optional[Pod] = None) -> List[Any]:
        request = self.pb.ListContainersRequest(filter=self.pb.ContainerFilter(pod_sandbox_id=pod.id if pod else ""))
        return list(self.call("ListContainers", request).containers)


# --------------------------------------------------------------------------- timing (tests and bench/nri.py)


# CreateContainer rounds not counted: the first creates on a fresh containerd are slower
WARMUP_ROUNDS = 4


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# a side of the comparison: its name -> (CriClient, Pod)
Sides = Dict[str, Tuple[Any, Any]]


def interleaved_creates(
    sides: Sides, rounds: int, command: Sequence[str] = ("sleep", "3600")
) -> Dict[str, List[float]]:
    """CreateContainer wall ms per side, round-robin with the order flipped every round (after WARMUP_ROUNDS).

    The containers are removed at the end: a removal between creates sets off containerd's garbage
    collection, whose timing then lands on random creates.
    """
    times: Dict[str, List[float]] = {name: [] for name in sides}
    created: List[Tuple[Any, str]] = []
    order = list(sides)
    for round_number in range(WARMUP_ROUNDS + rounds):
        for name in order if round_number % 2 else order[::-1]:
            cri, pod = sides[name]
            start = time.perf_counter()
            container = cri.create_container(pod, f"create-{round_number}", list(command))
            elapsed = (time.perf_counter() - start) * 1000
            created.append((cri, container))
            if round_number >= WARMUP_ROUNDS:
                times[name].append(elapsed)
    for cri, container in created:
        cri.remove_container(container)
    return times


def interleaved_cycles(sides: Sides, rounds: int) -> Dict[str, List[float]]:
    """Create + start + stop + remove wall ms per side, interleaved as interleaved_creates."""
    times: Dict[str, List[float]] = {name: [] for name in sides}
    order = list(sides)
    for round_number in range(rounds + 1):
        for name in order if round_number % 2 else order[::-1]:
            cri, pod = sides[name]
            start = time.perf_counter()
            container = cri.create_container(pod, f"cycle-{round_number}", ["sleep", "3600"])
            cri.start_container(container)
            cri.stop_container(container)
            cri.remove_container(container)
            if round_number:
                times[name].append((time.perf_counter() - start) * 1000)
    return times


# --------------------------------------------------------------------------- image


def _blob(layout: Path, data: bytes, media_type: str) -> Dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def oci_image_archive(rootfs: Path, archive: Path, name: str = IMAGE, command: Sequence[str] = SANDBOX_COMMAND) -> Path:
    """``rootfs`` as a one-layer OCI image archive (oci-layout, index.json, blobs) named ``name``.

    The image's Cmd is ``command`` (long-lived: it is what a pod's sandbox container runs).
    """
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isfile():
                with open(path, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
    uncompressed = layer_tar.getvalue()
    layout = Path(tempfile.mkdtemp(prefix="chts-oci-"))
    try:
        (layout / "blobs" / "sha256").mkdir(parents=True)
        layer = _blob(layout, gzip.compress(uncompressed, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
        config = {
            "architecture": ARCH,
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": list(command), "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(uncompressed).hexdigest()}"]},
        }
        config_blob = _blob(layout, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_blob,
            "layers": [layer],
        }
        manifest_blob = _blob(layout, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
        manifest_blob["platform"] = {"architecture": ARCH, "os": "linux"}
        manifest_blob["annotations"] = {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
        }
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [manifest_blob],
        }
        (layout / "index.json").write_text(json.dumps(index))
        with tarfile.open(archive, "w") as tar:
            for entry in ("oci-layout", "index.json", "blobs"):
                tar.add(str(layout / entry), arcname=entry)
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    return archive
