"""`ctk node` on a fake node: a real containerd in a host root of its own; the test plays systemd and the API server."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml
from conftest import ROOT, require
from daemons import wait_until
from fake_node import FakeNode, fake_node
from test_engine_real_containerd import USER_SETTINGS

from chts.base.text_files import toml_loads

pytestmark = pytest.mark.integration

CRI = "io.containerd.grpc.v1.cri"
SHIM = "/opt/container-hooks/bin/container-hooks-runtime"
CONTAINERD_DROP_IN = "/etc/containerd/conf.d/99-container-hooks.toml"

# A kubeadm-style node: containerd's default paths (private in the fake node) and an operator's CRI settings.
NODE_CONTAINERD_TOML = "version = 2\n" + USER_SETTINGS

DEPLOY = ROOT / "deploy" / "kubernetes"
CONFIG_TOML = '[container-hooks-runtime]\nruntimes = ["runc"]\ndebug = "/var/log/container-hooks-runtime.log"\n'


DROP_IN_HOOK = json.dumps({"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": True},
                           "stages": ["prestart"]})  # fmt: skip


def hooks_json(label: str) -> str:
    return json.dumps({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {label} >> /var/log/hooks.log"]}]})


class ConfigMapDir:
    """A ConfigMap as kubelet mounts it: KEY -> ..data/KEY, ..data -> ..<timestamp>, the link swapped atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.generation = 0

    def publish(self, files: Dict[str, str]) -> None:
        self.generation += 1
        version = self.path / f"..2026_12_01_00_00_0{self.generation}"
        version.mkdir()
        for name, text in files.items():
            (version / name).write_text(text)
        tmp = self.path / "..data_tmp"
        tmp.symlink_to(version.name)
        os.rename(tmp, self.path / "..data")
        for name in files:
            link = self.path / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


class FakeApiServer:
    """127.0.0.1 HTTP server recording each request (method, path, headers, JSON body); answers 200 {}."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorded.append({"method": "PATCH", "path": self.path, "headers": dict(self.headers),
                                 "body": json.loads(body)})  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.close()


def cluster_options(tmp_path: Path, api: FakeApiServer, source: ConfigMapDir) -> List[str]:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    return [
        f"--source-dir={source.path}", f"--api-server={api.url}", f"--token-file={token}", "--node-name=node-1",
        f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd",
    ]  # fmt: skip


def dump(node: FakeNode) -> Dict[str, Any]:
    return toml_loads(node.run(["containerd", "--config", "/etc/containerd/config.toml", "config", "dump"]).stdout)


def run_hooked_container(node: FakeNode, busybox: str, name: str, shim: str = SHIM) -> str:
    done = node.ctr("run", "--rm", "--runtime", "io.containerd.runc.v2", "--runc-binary", shim, "--rootfs", busybox,
                    name, "/bin/echo", "hello")  # fmt: skip
    return str(done.stdout)


def test_node_installer_on_a_fake_node_with_a_real_containerd(
    pyz: Path, tmp_path: Path, busybox_rootfs: Path, api_server: FakeApiServer
) -> None:
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"config.toml": CONFIG_TOML, "hooks.json": hooks_json("first")})
    with fake_node(NODE_CONTAINERD_TOML) as node:
        original = node.path("/etc/containerd/config.toml").read_bytes()
        shutil.copytree(busybox_rootfs, node.path("/var/tmp/busybox"), symlinks=True)
        options = cluster_options(tmp_path, api_server, source)

        # a systemctl that ignores the restart (as in a chroot without SYSTEMD_IGNORE_CHROOT) is caught
        node.path("/run/fake-systemd/ignore").touch()
        done = node.installer(pyz, "install", *options, check=False)
        assert done.returncode == 1
        assert done.stderr == ("container-hooks-ctk: `systemctl restart containerd` returned but systemd shows no "
                               "running containerd (main PID 0)\n")  # fmt: skip
        node.path("/run/fake-systemd/ignore").unlink()

        done = node.installer(pyz, "install", *options)
        assert node.restarts == 1, done.stdout
        runtime = dump(node)["plugins"][CRI]["containerd"]["runtimes"]["container-hooks-runtime"]
        assert runtime["options"]["BinaryName"] == SHIM
        assert dump(node)["plugins"][CRI]["containerd"]["default_runtime_name"] == "runc"
        link = node.path(SHIM)
        assert os.readlink(link) == "../current.pyz"
        assert node.path("/opt/container-hooks/current.pyz").resolve().read_bytes() == pyz.read_bytes()
        synced = node.path("/etc/container-hooks/hooks.json")
        assert synced.read_text() == hooks_json("first")
        assert (synced.stat().st_mode & 0o7777, synced.stat().st_uid) == (0o644, 0)

        # a real container through the handler's binary runs the synced hook
        assert run_hooked_container(node, "/var/tmp/busybox", "app-1") == "hello\n"
        assert node.path("/var/log/hooks.log").read_text() == "first\n"

        # a second install changes nothing and restarts nothing
        node.installer(pyz, "install", *options)
        assert node.restarts == 1

        # verify: a probe container through containerd, the ready file, the label by PATCH
        node.installer(pyz, "verify", *options)
        assert (tmp_path / "ready").exists()
        assert node.installer(pyz, "ready", f"--ready-file={tmp_path / 'ready'}", check=False).returncode == 0
        (patch,) = api_server.requests
        assert patch["path"] == "/api/v1/nodes/node-1"
        assert patch["headers"]["Authorization"] == "Bearer secret-token"
        assert patch["headers"]["Content-Type"] == "application/merge-patch+json"
        assert patch["body"] == {"metadata": {"labels": {"container-hooks.io/ready": "true"}}}
        # the probe is a container like any other: the node's hooks ran for it too
        assert node.path("/var/log/hooks.log").read_text() == "first\n" * 2

        # run: stays up; a bad ConfigMap edit is refused in one line and the node keeps its hooks; a good
        # one is picked up without restarting containerd; a regenerated main config gets the runtime back
        log = tmp_path / "run.log"
        runner = node.popen_installer(pyz, "run", *options, "--interval=0.2", log=log)
        try:
            wait_until(lambda: len(api_server.requests) == 2 or runner.poll() is not None, 120, "run to verify", log)
            source.publish({"config.toml": CONFIG_TOML, "hooks.json": "[]"})
            refusal = "hooks.json: must be a JSON object of stages"
            wait_until(lambda: refusal in log.read_text() or runner.poll() is not None, 60, "the refusal", log)
            assert synced.read_text() == hooks_json("first")
            source.publish({"config.toml": CONFIG_TOML, "hooks.json": hooks_json("second")})
            wait_until(lambda: synced.read_text() == hooks_json("second") or runner.poll() is not None, 60,
                       "the ConfigMap update on the node", log)  # fmt: skip
            assert node.restarts == 1

            node.path("/etc/containerd/config.toml").write_bytes(original)  # as k3s/kubeadm/nodeadm regenerate it
            wait_until(lambda: len(api_server.requests) == 3 or runner.poll() is not None, 120, "the re-assert", log)
            runtimes = dump(node)["plugins"][CRI]["containerd"]["runtimes"]
            assert runtimes["container-hooks-runtime"]["options"]["BinaryName"] == SHIM
        finally:
            runner.send_signal(signal.SIGTERM)
            assert runner.wait(60) == 0, log.read_text()
        # containerd, never restarted, still served the handler (CRI status): the re-assert restarted nothing;
        # nor did SIGTERM
        assert node.restarts == 1, log.read_text()
        after_reassert = log.read_text().split("configuring again")[1]
        assert "containerd runs its effective configuration: no restart" in after_reassert
        assert "the node keeps its configuration" in log.read_text()
        assert run_hooked_container(node, "/var/tmp/busybox", "app-2") == "hello\n"
        # app-1, the probes of verify and run (first); the probe after the re-assert, and app-2 (second)
        assert node.path("/var/log/hooks.log").read_text() == "first\n" * 3 + "second\n" * 2

        # uninstall: label removed, the engine config back byte for byte, one restart; the shim stays
        # while a container started through it exists (containerd needs it to stop that container)
        node.ctr("run", "-d", "--runc-binary", SHIM, "--rootfs", "/var/tmp/busybox", "long", "/bin/sleep", "1000")
        done = node.installer(pyz, "uninstall", *options)
        assert "1 container(s) started through it still exist (default/long)" in done.stdout
        assert api_server.requests[-1]["body"] == {"metadata": {"labels": {"container-hooks.io/ready": None}}}
        assert node.path("/etc/containerd/config.toml").read_bytes() == original
        assert sorted(os.listdir(node.path("/etc/containerd"))) == ["config.toml"]
        assert node.restarts == 2
        assert "container-hooks-runtime" not in dump(node)["plugins"][CRI]["containerd"]["runtimes"]
        assert not node.path("/etc/container-hooks").exists()
        assert node.path(SHIM).exists()
        node.ctr("task", "delete", "--force", "long")
        node.ctr("container", "delete", "long")
        node.installer(pyz, "uninstall", *options)
        assert not node.path("/opt/container-hooks").exists()
        assert node.restarts == 2
        assert node.ctr("version").returncode == 0


def test_run_as_default_runtime_with_cleanup_on_exit_gives_the_node_back_on_sigterm(
    pyz: Path, tmp_path: Path, api_server: FakeApiServer
) -> None:
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"hooks.json": hooks_json("x")})
    with fake_node(NODE_CONTAINERD_TOML) as node:
        original = node.path("/etc/containerd/config.toml").read_bytes()
        log = tmp_path / "run.log"
        options = cluster_options(tmp_path, api_server, source)
        runner = node.popen_installer(pyz, "run", *options, "--interval=0.2", "--cleanup-on-exit", "--set-as-default",
                                      log=log)  # fmt: skip
        try:
            wait_until(lambda: len(api_server.requests) == 1 or runner.poll() is not None, 120, "run to verify", log)
            assert dump(node)["plugins"][CRI]["containerd"]["default_runtime_name"] == "container-hooks-runtime"
        finally:
            runner.send_signal(signal.SIGTERM)
            assert runner.wait(120) == 0, log.read_text()
        assert api_server.requests[-1]["body"] == {"metadata": {"labels": {"container-hooks.io/ready": None}}}
        assert node.path("/etc/containerd/config.toml").read_bytes() == original
        assert sorted(os.listdir(node.path("/etc/containerd"))) == ["config.toml"]
        assert dump(node)["plugins"][CRI]["containerd"]["default_runtime_name"] == "runc"  # the previous default
        assert node.restarts == 2  # configured, given back
        assert not node.path("/opt/container-hooks").exists()
        assert not (tmp_path / "ready").exists()


def test_upgrade_switches_the_build_under_a_running_container_without_a_restart(
    pyz: Path, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """A new build (here: the same code with another interpreter) is switched in; the engine is not restarted."""
    interpreter = "/usr/bin/python3.11"
    require(os.path.exists(interpreter), f"{interpreter} is not installed")
    newer = tmp_path / "newer" / "container-hooks-toolkit.pyz"
    subprocess.run([sys.executable, str(ROOT / "build.py"), "--output", str(newer), "--python", interpreter],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"hooks.json": hooks_json("hooked")})
    options = [f"--source-dir={source.path}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd"]
    with fake_node(NODE_CONTAINERD_TOML) as node:
        shutil.copytree(busybox_rootfs, node.path("/var/tmp/busybox"), symlinks=True)
        node.installer(pyz, "install", *options)
        node.ctr("run", "-d", "--runc-binary", SHIM, "--rootfs", "/var/tmp/busybox", "long", "/bin/sleep", "1000")
        before = node.path("/opt/container-hooks/current.pyz").resolve()

        done = node.installer(newer, "install", *options)
        assert f"{interpreter} is Python 3.11" in done.stdout  # preflight checks the interpreter the sh start runs
        after = node.path("/opt/container-hooks/current.pyz").resolve()
        assert after != before and after.read_bytes() == newer.read_bytes()
        assert before.exists()  # the previous build stays until the next upgrade
        assert os.readlink(node.path(SHIM)) == "../current.pyz"
        assert node.restarts == 1  # BinaryName did not change: nothing for containerd to reread

        # the container started before the upgrade is stopped through the new build; new ones run through it
        node.ctr("task", "delete", "--force", "long")
        node.ctr("container", "delete", "long")
        assert run_hooked_container(node, "/var/tmp/busybox", "after-upgrade") == "hello\n"
        assert node.path("/var/log/hooks.log").read_text() == "hooked\n" * 2  # "long" (old build), then this


# k3s's generated config as recent k3s writes it for containerd 1.7 (config version 2, an `imports` of its
# config.toml.d drop-in directory, k3s-io/k3s#13680), trimmed; containerd 1.6 here stands in for k3s's own.
K3S_DIR = "/var/lib/rancher/k3s/agent/etc/containerd"
K3S_SOCKET = "/run/k3s/containerd/containerd.sock"
K3S_CONTAINERD = "/var/lib/rancher/k3s/data/current/bin/containerd"  # where k3s unpacks its containerd
K3S_CONTAINERD_TOML = f"""\
# File generated by k3s. DO NOT EDIT. Use config.toml.tmpl instead.
version = 2
imports = ["{K3S_DIR}/config.toml.d/*.toml"]
root = "/var/lib/rancher/k3s/agent/containerd"
state = "/run/k3s/containerd"

[grpc]
  address = "{K3S_SOCKET}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  sandbox_image = "rancher/mirrored-pause:3.6"
  restrict_oom_score_adj = true  # not k3s's: this VM needs it

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
"""


def test_k3s_node_gets_a_drop_in_in_its_imported_directory_and_keeps_its_generated_file(
    pyz: Path, tmp_path: Path
) -> None:
    options = [f"--source-dir={tmp_path / 'none'}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd"]
    with fake_node(K3S_CONTAINERD_TOML, config=f"{K3S_DIR}/config.toml", socket=K3S_SOCKET) as node:
        binary = node.path(K3S_CONTAINERD)
        binary.parent.mkdir(parents=True)
        binary.symlink_to("/usr/bin/containerd")
        generated = node.path(f"{K3S_DIR}/config.toml").read_bytes()

        done = node.installer(pyz, "install", *options)
        assert "engine: containerd, layout: k3s" in done.stdout
        assert [call for call in node.calls if not call.startswith("show")] == ["restart k3s"]
        assert node.path(f"{K3S_DIR}/config.toml").read_bytes() == generated  # k3s's file is never edited
        assert node.path(f"{K3S_DIR}/config.toml.d/99-container-hooks.toml").exists()
        dumped = toml_loads(node.run([K3S_CONTAINERD, "--config", f"{K3S_DIR}/config.toml", "config", "dump"]).stdout)
        runtimes = dumped["plugins"][CRI]["containerd"]["runtimes"]
        assert runtimes["container-hooks-runtime"]["options"]["BinaryName"] == SHIM
        assert dumped["plugins"][CRI]["sandbox_image"] == "rancher/mirrored-pause:3.6"  # carried in the 1.x drop-in

        node.installer(pyz, "verify", *options)  # the probe goes through `k3s ctr` on k3s's socket

        node.installer(pyz, "uninstall", *options)
        assert node.path(f"{K3S_DIR}/config.toml").read_bytes() == generated
        assert not node.path(f"{K3S_DIR}/config.toml.d/99-container-hooks.toml").exists()
        assert node.restarts == 2


def test_the_shipped_configmap_on_a_node_runs_its_demo_hook_for_the_demo_namespace_only(
    pyz: Path, tmp_path: Path, busybox_rootfs: Path
) -> None:
    (configmap,) = [doc for doc in yaml.safe_load_all((DEPLOY / "common" / "configmap.yaml").read_text()) if doc]
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish(configmap["data"])
    options = [f"--source-dir={source.path}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd"]
    with fake_node(NODE_CONTAINERD_TOML) as node:
        shutil.copytree(busybox_rootfs, node.path("/var/tmp/busybox"), symlinks=True)
        node.installer(pyz, "install", *options)
        node.installer(pyz, "verify", *options)
        for name, namespace in (("in-demo", "hooks-demo"), ("elsewhere", "default")):
            # the annotation containerd's CRI puts on every container of a pod
            node.ctr("run", "--rm", "--runc-binary", SHIM, "--annotation",
                     f"io.kubernetes.cri.sandbox-namespace={namespace}", "--rootfs", "/var/tmp/busybox", name,
                     "/bin/true")  # fmt: skip
        log = node.path("/var/log/container-hooks-demo.log").read_text()
        states = [json.loads(line) for line in log.splitlines() if line]
        assert [state["id"] for state in states] == ["in-demo"]


def test_a_running_engine_without_the_handler_is_restarted_though_its_files_did_not_change(
    pyz: Path, tmp_path: Path
) -> None:
    """The installer asks the running containerd (CRI status) whether it serves the handler, not only the files."""
    options = [f"--source-dir={tmp_path / 'none'}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd"]
    with fake_node(NODE_CONTAINERD_TOML) as node:
        config = node.path("/etc/containerd/config.toml")
        original = config.read_bytes()
        done = node.installer(pyz, "install", *options)
        assert "containerd serves runtime handler 'container-hooks-runtime' running " + SHIM in done.stdout
        configured = {path: path.read_bytes() for path in (config, node.path(CONTAINERD_DROP_IN))}

        # containerd restarted (by someone else) while the files were as before, then ours put back as they were
        config.write_bytes(original)
        node.path(CONTAINERD_DROP_IN).unlink()
        node.stop_containerd()
        node.start_containerd()
        long_ago = time.time() - 3600  # older than containerd: the file times do not tell
        for path, data in configured.items():
            path.write_bytes(data)
            os.utime(path, (long_ago, long_ago))

        done = node.installer(pyz, "install", *options)
        assert "running containerd serves no runtime handler 'container-hooks-runtime'" in done.stdout
        assert node.restarts == 2
        assert "containerd serves runtime handler 'container-hooks-runtime'" in done.stdout.split("restarted")[-1]


WRAPPER = "/opt/vendor/bin/runc-wrapper"  # a vendor's runc wrapper, as nvidia-container-runtime is one
WRAPPED_CONTAINERD_TOML = f"""\
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{WRAPPER}"
"""


def test_the_chained_runtime_survives_configmap_syncs(pyz: Path, tmp_path: Path, busybox_rootfs: Path) -> None:
    """configure chains the shim to the wrapper the default ran; a ConfigMap sync keeps its chain."""
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"config.toml": CONFIG_TOML, "hooks.json": hooks_json("one")})
    options = [f"--source-dir={source.path}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd"]
    with fake_node(WRAPPED_CONTAINERD_TOML) as node:
        wrapper = node.path(WRAPPER)
        wrapper.parent.mkdir(parents=True)
        wrapper.write_text('#!/bin/sh\necho "$*" >> /var/log/wrapper.log\nexec runc "$@"\n')
        wrapper.chmod(0o755)
        shutil.copytree(busybox_rootfs, node.path("/var/tmp/busybox"), symlinks=True)
        config = node.path("/etc/container-hooks/config.toml")

        node.installer(pyz, "install", *options)
        runtime = toml_loads(config.read_text())["container-hooks-runtime"]
        assert (runtime["runtimes"], runtime["chains"]) == (["runc"], {"runc-wrapper": WRAPPER})
        source.publish({"config.toml": CONFIG_TOML + 'log-level = "debug"\n', "hooks.json": hooks_json("two")})
        node.installer(pyz, "install", *options)  # the sync `run` makes on a ConfigMap edit, and configure again
        runtime = toml_loads(config.read_text())["container-hooks-runtime"]
        assert (runtime["runtimes"], runtime["chains"], runtime["log-level"]) == (
            ["runc"],
            {"runc-wrapper": WRAPPER},
            "debug",
        )
        handler = dump(node)["plugins"][CRI]["containerd"]["runtimes"]["container-hooks-runtime"]["options"][
            "BinaryName"
        ]
        assert handler == f"{SHIM}.runc-wrapper"  # the shim's name for the wrapper (chts/ctk/chaining.py)
        assert run_hooked_container(node, "/var/tmp/busybox", "wrapped", handler) == "hello\n"
        assert " create " in node.path("/var/log/wrapper.log").read_text()  # the shim exec'd the wrapper
        assert node.path("/var/log/hooks.log").read_text() == "two\n"

        done = node.installer(pyz, "uninstall", *options)
        assert not node.path("/etc/container-hooks").exists(), done.stdout  # config, hooks, chain record all gone


def test_install_through_absolute_links_in_the_host_root_writes_nothing_outside_it(
    pyz: Path, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """/etc/container-hooks and /opt/container-hooks as the host's absolute links: followed as the host (chroot)
    follows them, to directories in the host root, never to the installer's own /etc or /opt."""
    elsewhere = f"/etc/container-hooks-elsewhere-{os.urandom(6).hex()}"
    toolkit_elsewhere = f"/opt/container-hooks-elsewhere-{os.urandom(6).hex()}"
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"config.toml": CONFIG_TOML, "hooks.json": hooks_json("linked")})
    options = [f"--source-dir={source.path}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=systemd"]
    with fake_node(NODE_CONTAINERD_TOML) as node:
        shutil.copytree(busybox_rootfs, node.path("/var/tmp/busybox"), symlinks=True)
        node.path("/etc/container-hooks").symlink_to(elsewhere)
        node.path(elsewhere).mkdir()
        node.path("/opt/container-hooks").symlink_to(toolkit_elsewhere)  # dangling: install makes its target

        done = node.installer(pyz, "install", *options)
        for outside in (elsewhere, toolkit_elsewhere):
            assert not os.path.lexists(outside), done.stdout
        assert node.path(f"{elsewhere}/hooks.json").read_text() == hooks_json("linked")
        assert node.path(f"{toolkit_elsewhere}/bin/container-hooks-runtime").exists()
        assert os.readlink(node.path("/etc/container-hooks")) == elsewhere  # the host's links are kept
        assert os.readlink(node.path("/opt/container-hooks")) == toolkit_elsewhere
        assert run_hooked_container(node, "/var/tmp/busybox", "linked") == "hello\n"
        assert node.path("/var/log/hooks.log").read_text() == "linked\n"

        node.installer(pyz, "uninstall", *options)
        assert sorted(os.listdir(node.path(elsewhere))) == []  # the installer's files gone, the host's link kept
        assert os.readlink(node.path("/etc/container-hooks")) == elsewhere
        for outside in (elsewhere, toolkit_elsewhere):
            assert not os.path.lexists(outside)


# Where the fake node's containerd, its systemd stand-in and the machine's mounts write: not the installer's.
NOT_THE_INSTALLERS = ("proc", "sys", "dev", "usr", "tmp", "run/containerd", "run/fake-systemd", "var/lib/containerd",
                      "var/log/containerd.log", "var/tmp")  # fmt: skip


def file_tree(root: Path) -> Dict[str, Any]:
    """Every path under ``root`` (but NOT_THE_INSTALLERS) with its type, mode and bytes or link target."""
    tree: Dict[str, Any] = {}
    for directory, names, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        names[:] = [n for n in names if os.path.normpath(os.path.join(relative, n)) not in NOT_THE_INSTALLERS]
        for name in [*names, *files]:
            path = os.path.join(directory, name)
            key = os.path.normpath(os.path.join(relative, name))
            if key in NOT_THE_INSTALLERS:
                continue
            status = os.lstat(path)
            if os.path.islink(path):
                tree[key] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                tree[key] = ("dir", oct(status.st_mode), status.st_uid)
            else:
                tree[key] = ("file", oct(status.st_mode), status.st_uid, Path(path).read_bytes())
    return tree


def tree_differences(before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
    return [f"{key}: {before.get(key, 'absent')!r:.80} -> {after.get(key, 'absent')!r:.80}"
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]  # fmt: skip


def test_kill_9_at_any_write_of_install_then_install_and_uninstall_give_the_host_back(
    pyz: Path, tmp_path: Path
) -> None:
    """kill -9 before each file system write of install (the installer's own, then those of the ctk it runs as
    the host, which takes the installer with it as a pod's kill does); install again, uninstall: the host's
    files are as they were, byte for byte and mode for mode. Killed in the ctk, uninstall alone does it too."""
    source = ConfigMapDir(tmp_path / "configmap")
    source.publish({"config.toml": CONFIG_TOML, "hooks.json": hooks_json("synced"), "extra.json": DROP_IN_HOOK})
    options = [f"--source-dir={source.path}", f"--ready-file={tmp_path / 'ready'}", "--restart-mode=none"]
    with fake_node(NODE_CONTAINERD_TOML) as node:
        node.path("/etc/container-hooks").mkdir()
        node.path("/etc/container-hooks/hooks.json").write_text(hooks_json("the admin's"))  # backed up, given back
        node.path("/etc/container-hooks/hooks.json").chmod(0o600)  # with its mode (sync makes it 0644)
        before = file_tree(node.root)
        moments = {}
        for scope in ("", "host:"):
            for write in itertools.count(1):
                kill = {"CONTAINER_HOOKS_TEST_KILL_AT_WRITE": f"{scope}{write}"}
                done = node.installer(pyz, "install", *options, check=False, env=kill)
                if done.returncode == 0:
                    moments[scope or "installer:"] = write - 1
                    break
                assert done.returncode == -signal.SIGKILL, (kill, done.stdout, done.stderr)
                node.installer(pyz, "install", *options)
                node.installer(pyz, "uninstall", *options)
                assert tree_differences(before, file_tree(node.root)) == [], kill
                if scope:  # and a cleanup Job right after a pod killed while `runtime configure` ran
                    assert node.installer(pyz, "install", *options, check=False, env=kill).returncode < 0
                    node.installer(pyz, "uninstall", *options)
                    assert tree_differences(before, file_tree(node.root)) == [], ("uninstall only", kill)
        # every write was a moment: the installer's (sync, state, archive, lock) and configure's (drop-in, backups)
        assert moments["installer:"] > 20 and moments["host:"] > 3, moments
