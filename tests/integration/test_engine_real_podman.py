"""Podman: configure containers.conf, run through the shim by name and as the default, unconfigure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ToolkitRoot, record_hook
from daemons import podman_env, runtime_with_env

from chts.toolkit_config import toml_loads

pytestmark = pytest.mark.integration


def test_configure_run_unconfigure(tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path) -> None:
    log = tmp_path / "hook.log"
    toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
    shim = runtime_with_env(tmp_path, toolkit.shim, toolkit.env())  # conmon does not pass podman's env on
    with podman_env(tmp_path) as engine:
        config = engine.containers_conf
        original = config.read_text()
        image = engine.import_rootfs(busybox_rootfs)
        done = toolkit.run_ctk(
            ["runtime", "configure", "--runtime=podman", f"--config={config}", f"--runtime-path={shim}",
             "--set-as-default"]
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        text = config.read_text()
        assert all(line in text for line in original.splitlines())  # comments and layout kept
        engine_table = toml_loads(text)["engine"]
        assert engine_table["runtimes"]["container-hooks-runtime"] == [str(shim)]
        assert engine_table["runtime"] == "container-hooks-runtime"

        engine.podman("run", "--rm", "--network", "none", "--runtime", "container-hooks-runtime", image, "true")
        assert log.read_text() == "fired\n"
        engine.podman("run", "--rm", "--network", "none", image, "true")  # the default now
        assert log.read_text() == "fired\nfired\n"

        done = toolkit.run_ctk(["runtime", "unconfigure", "--runtime=podman", f"--config={config}"])
        assert done.returncode == 0, done.stderr
        assert config.read_text() == original
        engine.podman("run", "--rm", "--network", "none", image, "true")  # back on runc: no hook
        assert log.read_text() == "fired\nfired\n"


def test_podman_info_shows_it_and_is_the_command_source(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    """With CONTAINERS_CONF set podman reads that file alone, and so does configure; `podman info` agrees."""
    log = tmp_path / "hook.log"
    toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
    shim = runtime_with_env(tmp_path, toolkit.shim, toolkit.env())
    with podman_env(tmp_path) as engine:
        config = engine.containers_conf
        original = config.read_text()
        env = {**engine.env(), **toolkit.env()}  # CONTAINERS_CONF and private storage for `podman info`

        def ctk(*args: str) -> None:
            done = subprocess.run(
                [str(toolkit.ctk), "runtime", *args, "--runtime=podman", f"--config={config}",
                 "--config-source=command"],
                env=env, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr

        ctk("configure", f"--runtime-path={shim}", "--set-as-default")
        runtime = json.loads(engine.podman("info", "--format", "json").stdout)["host"]["ociRuntime"]
        assert (runtime["name"], runtime["path"]) == ("container-hooks-runtime", str(shim))
        image = engine.import_rootfs(busybox_rootfs)
        engine.podman("run", "--rm", "--network", "none", image, "true")
        assert log.read_text() == "fired\n"
        ctk("unconfigure")
        assert config.read_text() == original
        assert json.loads(engine.podman("info", "--format", "json").stdout)["host"]["ociRuntime"]["name"] == "runc"
