"""deploy/kubernetes: valid against Kubernetes schemas offline (strict, many versions), names as ctk node has them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT

from chts import DEFAULT_NRI_SOCKET as NRI_SOCKET
from chts.config.toolkit import DEFAULT_CONFIG_PATH
from chts.ctk.main import build_parser
from chts.ctk.node import DEFAULT_READY_FILE, DEFAULT_SOURCE_DIR
from chts.node.files import DEFAULT_TOOLKIT_DIR, HOST_CONFIG_DIR, read_source_dir
from chts.node.installer import RUNTIME_NAME
from chts.node.kube_api import READY_LABEL
from chts.nri import DEFAULT_STATE_DIR

DEPLOY = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes still in wide use on managed offerings up to the newest the package knows.
VERSIONS = ["1.27.0", "1.30.0", "1.33.0", "1.37.0"]
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")
PYZ_IN_IMAGE = "/opt/container-hooks-toolkit/container-hooks-toolkit.pyz"


def documents(path: Path) -> List[Dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_documents() -> Dict[str, Dict[str, Any]]:
    """kind/name -> document, over every manifest."""
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for path in MANIFESTS for doc in documents(path)}


def option(args: List[str], name: str) -> str:
    (value,) = [arg.split("=", 1)[1] for arg in args if arg.startswith(f"{name}=")]
    return value


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_is_valid_in_strict_mode(path: Path, version: str) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def kustomized(directory: Path) -> List[Path]:
    """The manifest files `kubectl apply -k DIRECTORY` applies: its resources, a directory's own kustomization's
    recursively (what kustomize does with plain resources and no patches, which these kustomizations have none of)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources"}  # nothing this reading would miss
    files: List[Path] = []
    for resource in kustomization["resources"]:
        path = (directory / resource).resolve()
        files += kustomized(path) if path.is_dir() else [path]
    return files


def rendered(directory: Path) -> Dict[str, Dict[str, Any]]:
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc for path in kustomized(directory) for doc in documents(path)
    }


def test_kustomization_lists_every_manifest_but_the_uninstall_job() -> None:
    shim, nri = kustomized(DEPLOY), kustomized(DEPLOY / "nri")
    assert sorted(set(shim) | set(nri)) == [p for p in MANIFESTS if p.parent.name != "uninstall"]
    assert len(shim) == len(set(shim)) and len(nri) == len(set(nri))
    shared = sorted(p.name for p in set(shim) & set(nri))
    assert shared == ["configmap.yaml", "namespace.yaml", "serviceaccount.yaml"]  # one copy: ../common
    assert sorted(rendered(DEPLOY)) == [
        "ClusterRole/container-hooks-installer", "ClusterRoleBinding/container-hooks-installer",
        "ConfigMap/container-hooks-config", "DaemonSet/container-hooks-installer", "Namespace/container-hooks",
        "RuntimeClass/container-hooks", "ServiceAccount/container-hooks-installer",
    ]  # fmt: skip


def test_nri_variant_runs_the_plugin_unprivileged_on_the_nri_socket() -> None:
    """deploy/kubernetes/nri: `nri run` on the NRI socket with only the host paths it reads; the installer, in
    --mode nri, as an init container; no RuntimeClass, no RBAC, no engine restart asked for."""
    docs = rendered(DEPLOY / "nri")
    assert sorted(docs) == [
        "ConfigMap/container-hooks-config", "DaemonSet/container-hooks-nri", "Namespace/container-hooks",
        "ServiceAccount/container-hooks-installer",
    ]  # fmt: skip
    daemonset = docs["DaemonSet/container-hooks-nri"]
    pod = daemonset["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (plugin,) = pod["containers"]
    (installer,) = pod["initContainers"]
    assert plugin["args"] == ["nri", "run", f"--socket={NRI_SOCKET}"]
    assert {"name": "CONTAINER_HOOKS_CONFIG", "value": DEFAULT_CONFIG_PATH} in plugin["env"]
    security = plugin["securityContext"]
    assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]} and security["readOnlyRootFilesystem"] is True
    host_mounts = {m["mountPath"]: (volumes[m["name"]]["hostPath"]["path"], m.get("readOnly", False))
                   for m in plugin["volumeMounts"] if "hostPath" in volumes[m["name"]]}  # fmt: skip
    assert host_mounts == {
        os.path.dirname(NRI_SOCKET): (os.path.dirname(NRI_SOCKET), False),  # the socket: connect() needs write
        HOST_CONFIG_DIR: (HOST_CONFIG_DIR, True),  # config.toml, hooks.json, hooks.d, where the node has them
        DEFAULT_TOOLKIT_DIR: (DEFAULT_TOOLKIT_DIR, True),  # the .pyz the install put there
    }
    state = [m for m in plugin["volumeMounts"] if m["mountPath"] == DEFAULT_STATE_DIR]
    assert state and "emptyDir" in volumes[state[0]["name"]]  # its pid is the pod's: checked in the pod
    assert not pod.get("hostPID") and not pod.get("hostNetwork") and pod["automountServiceAccountToken"] is False

    parsed = build_parser().parse_args(installer["args"])  # the real CLI takes the init container's arguments
    assert (parsed.command, parsed.action, parsed.mode) == ("node", "install", "nri")
    mounts = {mount["name"]: mount["mountPath"] for mount in installer["volumeMounts"]}
    assert mounts["host-root"] == parsed.host_root and volumes["host-root"]["hostPath"]["path"] == "/"
    assert mounts["config"] == parsed.source_dir == DEFAULT_SOURCE_DIR
    assert f"ConfigMap/{volumes['config']['configMap']['name']}" in docs
    assert parsed.toolkit_dir == DEFAULT_TOOLKIT_DIR
    shim_pod = rendered(DEPLOY)["DaemonSet/container-hooks-installer"]["spec"]["template"]["spec"]
    assert installer["image"] == plugin["image"] == shim_pod["containers"][0]["image"]
    assert pod["priorityClassName"] == "system-node-critical" and {"operator": "Exists"} in pod["tolerations"]


def test_names_agree_with_the_installer() -> None:
    docs = all_documents()
    runtime_class = docs["RuntimeClass/container-hooks"]
    assert runtime_class["handler"] == RUNTIME_NAME
    assert runtime_class["scheduling"]["nodeSelector"] == {READY_LABEL: "true"}

    daemonset = docs["DaemonSet/container-hooks-installer"]
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:2] == ["node", "run"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts["host-root"] == option(args, "--host-root") == "/host"
    assert mounts["config"] == option(args, "--source-dir") == DEFAULT_SOURCE_DIR
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert set(volumes) == set(mounts)
    assert volumes["host-root"]["hostPath"]["path"] == "/"  # the one host path
    assert f"ConfigMap/{volumes['config']['configMap']['name']}" in docs
    assert container["readinessProbe"]["exec"]["command"] == ["python3", PYZ_IN_IMAGE, "ctk", "node", "ready"]
    assert "--ready-file" not in " ".join(args)  # the probe and the installer agree on the default
    assert DEFAULT_READY_FILE.startswith("/run/")
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]

    # what the issue asks of the rollout
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    assert not pod.get("hostPID")  # the systemd restart mode goes over /run/systemd, not the host's PID namespace
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}

    # the least RBAC: patch nodes, nothing else, bound to the installer's service account
    role = docs["ClusterRole/container-hooks-installer"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]}]
    binding = docs["ClusterRoleBinding/container-hooks-installer"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (subject,) = binding["subjects"]
    assert subject["name"] == pod["serviceAccountName"] == "container-hooks-installer"
    assert f"ServiceAccount/{subject['name']}" in docs


def test_uninstall_job_runs_the_same_image_on_the_same_host_path() -> None:
    docs = all_documents()
    (job,) = [doc for name, doc in docs.items() if name.startswith("Job/")]
    pod = job["spec"]["template"]["spec"]
    daemonset_pod = docs["DaemonSet/container-hooks-installer"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == daemonset_pod["containers"][0]["image"]
    assert pod["containers"][0]["args"][:2] == ["node", "uninstall"]
    assert pod["volumes"] == [v for v in daemonset_pod["volumes"] if v["name"] == "host-root"]
    assert pod["serviceAccountName"] == daemonset_pod["serviceAccountName"]


def test_configmap_is_what_the_installer_accepts(tmp_path: Path) -> None:
    (configmap,) = [doc for name, doc in all_documents().items() if name.startswith("ConfigMap/")]
    for key, text in configmap["data"].items():
        (tmp_path / key).write_text(text)
    synced = {item.host_path for item in read_source_dir(str(tmp_path))}
    assert synced == {
        "/etc/container-hooks/config.toml",
        "/etc/container-hooks/hooks.json",
        "/etc/container-hooks/hooks.d/50-demo.json",
    }


def test_dockerfile_puts_the_pyz_where_the_manifests_run_it() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"COPY dist/container-hooks-toolkit.pyz {PYZ_IN_IMAGE}\n" in dockerfile
    assert f'ENTRYPOINT ["python3", "{PYZ_IN_IMAGE}", "ctk"]' in dockerfile
    images = {doc["spec"]["template"]["spec"]["containers"][0]["image"] for doc in all_documents().values()
              if doc["kind"] in ("DaemonSet", "Job")}  # fmt: skip
    assert len(images) == 1 and re.fullmatch(r"container-hooks-installer:\d+\.\d+\.\d+", images.pop())
