"""One host, two engines (issue 21): Docker on runc and Podman on crun, both configured to the shim, in either
order; each engine's containers go on running under its own low-level runtime, the hook fires in both, and
unconfigure gives every file back.

The two low-level runtimes are the test's own: a "runc" and a "crun" that log their argv and exec the
host's runc (crun cannot run containers on a cgroup-v1 host, and CI may not have it). Each engine finds
its runtime where the test tells it (Docker's runtime path, Podman's [engine.runtimes]), never on the
host's paths, so what else is installed here changes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import ToolkitRoot, record_hook, require_binary
from daemons import Dockerd, PodmanEnv, dockerd, podman_env

from chts.base.text_files import toml_loads

pytestmark = pytest.mark.integration

NAME = "container-hooks-runtime"


def logging_runtime(path: Path, calls: Path, runc: str) -> Path:
    """A low-level runtime that appends "NAME ARGV" to ``calls`` and execs the real runc."""
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\necho "{path.name} $*" >> {shlex.quote(str(calls))}\nexec {shlex.quote(runc)} "$@"\n')
    path.chmod(0o755)
    return path


def created_by(calls: Path, container_id: str) -> List[str]:
    """Which logging runtimes created the container ``container_id``."""
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line.split()[0] for line in lines if " create " in f" {line} " and container_id in line.split()]


def ctk(toolkit: ToolkitRoot, *args: str) -> str:
    done = toolkit.run_ctk(list(args), timeout=120)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def podman_shim(toolkit: ToolkitRoot, directory: Path) -> Path:
    """The shim for Podman, which gives the runtime hardly any of its environment (conmon, and its own
    start/kill/delete calls): a script under the shim's name that sets the toolkit's variables and execs
    the archive under the name it was run as, so that container-hooks-runtime.crun stays itself."""
    directory.mkdir()
    script = directory / NAME
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(toolkit.env().items()))
    script.write_text(f'#!/bin/sh\n{exports}exec {shlex.quote(str(toolkit.bin))}/"${{0##*/}}" "$@"\n')
    script.chmod(0o755)
    (toolkit.bin / f"{NAME}.crun").symlink_to(NAME)  # where the script's container-hooks-runtime.crun leads
    return script


def configure(toolkit: ToolkitRoot, action: str, engine: str, config: Path, docker: Dockerd, shim: Path) -> None:
    extra = [f"--runtime-path={shim}", "--set-as-default"] if action == "configure" else []
    if engine == "docker":
        before = docker.reload_count()
        ctk(toolkit, "runtime", action, "--runtime=docker", f"--config={config}", "--reload",
            f"--pid-file={docker.pid_file}", *extra)  # fmt: skip
        docker.wait_for_reload(before)
    else:
        ctk(toolkit, "runtime", action, "--runtime=podman", f"--config={config}", *extra)


def run_docker(docker: Dockerd, image: str, tmp_path: Path, name: str) -> str:
    cidfile = tmp_path / f"{name}.cid"
    docker.docker("run", "--rm", "--network", "none", "--cidfile", str(cidfile), image, "true")
    return cidfile.read_text().strip()


def run_podman(podman: PodmanEnv, image: str, tmp_path: Path, name: str) -> str:
    cidfile = tmp_path / f"{name}.cid"
    podman.podman("run", "--rm", "--network", "none", "--cidfile", str(cidfile), image, "true")
    return cidfile.read_text().strip()


@pytest.mark.parametrize("order", [("docker", "podman"), ("podman", "docker")], ids="-then-".join)
def test_docker_on_runc_and_podman_on_crun_each_keep_their_own(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path, order: List[str]
) -> None:
    host_runc = require_binary("runc")
    calls = tmp_path / "calls"
    runc = logging_runtime(tmp_path / "runc-bin" / "runc", calls, host_runc)
    crun = logging_runtime(tmp_path / "crun-bin" / "crun", calls, host_runc)
    hooks = tmp_path / "hook.log"
    toolkit.write_hooks({"prestart": [record_hook(hooks, "fired")]})
    toolkit.write_config(extra_runtime=f'runtimes = ["{runc}"]')  # the shim's own pick: Docker's runc
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(
        json.dumps({"runtimes": {"logged-runc": {"path": str(runc)}}, "default-runtime": "logged-runc"})
    )
    with dockerd(tmp_path, config_file=daemon_json, env=toolkit.env()) as docker, podman_env(
        tmp_path, env=toolkit.env()
    ) as podman:
        containers_conf = podman.containers_conf
        text = containers_conf.read_text().replace('runtime = "runc"', 'runtime = "crun"')
        containers_conf.write_text(f'{text}[engine.runtimes]\ncrun = ["{crun}"]\n')
        files: Dict[str, Path] = {"docker": daemon_json, "podman": containers_conf, "toolkit": toolkit.config}
        originals = {name: path.read_bytes() for name, path in files.items()}
        docker_image = docker.import_rootfs(busybox_rootfs)
        podman_image = podman.import_rootfs(busybox_rootfs)
        assert created_by(calls, run_podman(podman, podman_image, tmp_path, "p0")) == ["crun"]  # before: its own

        shims = {"docker": toolkit.shim, "podman": podman_shim(toolkit, tmp_path / "podman-bin")}
        for engine in order:
            configure(toolkit, "configure", engine, files[engine], docker, shims[engine])
        assert docker.runtimes()["runtimes"][NAME]["path"] == str(toolkit.shim)  # Docker keeps the plain name
        podman_runtimes = toml_loads(containers_conf.read_text())["engine"]["runtimes"]
        assert podman_runtimes[NAME] == [f"{shims['podman']}.crun"]  # Podman's entry names the shim's crun
        assert os.readlink(f"{shims['podman']}.crun") == NAME  # configure's link

        assert created_by(calls, run_docker(docker, docker_image, tmp_path, "d1")) == ["runc"]
        assert created_by(calls, run_podman(podman, podman_image, tmp_path, "p1")) == ["crun"]
        assert hooks.read_text() == "fired\nfired\n"  # the shim injected in both

        check = ctk(toolkit, "check", "--no-container", "--config-source=file", f"--dest={toolkit.bin}",
                    f"--docker-config={daemon_json}", f"--podman-config={containers_conf}",
                    f"--containerd-config={tmp_path}/none", f"--crio-config={tmp_path}/none")  # fmt: skip
        lines = {
            line.split()[1]: line for line in check.splitlines() if line.split()[1:2] in (["docker:"], ["podman:"])
        }
        assert lines["docker:"].startswith("PASS") and lines["docker:"].endswith(f"the shim execs {runc}"), check
        assert lines["podman:"].startswith("PASS") and f"its containers run {crun} (" in lines["podman:"], check

        first, second = order
        configure(toolkit, "unconfigure", first, files[first], docker, shims[first])
        if second == "docker":  # the other engine goes on as it was configured
            assert created_by(calls, run_docker(docker, docker_image, tmp_path, "d2")) == ["runc"]
        else:
            assert created_by(calls, run_podman(podman, podman_image, tmp_path, "p2")) == ["crun"]
        assert hooks.read_text() == "fired\nfired\nfired\n"
        configure(toolkit, "unconfigure", second, files[second], docker, shims[second])
        assert {name: path.read_bytes() for name, path in files.items()} == originals
        assert not os.path.lexists(f"{shims['podman']}.crun")
        assert not Path(f"{toolkit.config}.chains.json").exists()

        assert created_by(calls, run_docker(docker, docker_image, tmp_path, "d3")) == ["runc"]  # no shim now
        assert created_by(calls, run_podman(podman, podman_image, tmp_path, "p3")) == ["crun"]
        assert hooks.read_text() == "fired\nfired\nfired\n"
