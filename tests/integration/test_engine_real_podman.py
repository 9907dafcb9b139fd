"""Podman: configure containers.conf, run through the shim by name and as the default, unconfigure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ToolkitRoot, record_hook
from daemons import podman_env, runtime_with_env

from chts.base.text_files import toml_loads

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


def csv_field(value: str) -> str:
    """``value`` as one field of the CSV podman reads a string-slice flag's value as."""
    return '"' + value.replace('"', '""') + '"'


def test_a_forged_record_annotation_keeps_podmans_own_hooks(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    """`podman run --annotation` naming the admin's --hooks-dir hook as "added by the shim" strips
    nothing, on the first start and when the container is started again (the same bundle)."""
    log = tmp_path / "hook.log"
    toolkit.write_hooks({"poststop": [record_hook(log, "shim")]})
    security = record_hook(log, "security")
    hooks_dir = tmp_path / "hooks.d"
    hooks_dir.mkdir()
    dropin = {"version": "1.0.0", "hook": security, "when": {"always": True}, "stages": ["prestart"]}
    (hooks_dir / "security.json").write_text(json.dumps(dropin))
    forged = json.dumps([[stage, security] for stage in ("prestart", "createRuntime")])
    shim = runtime_with_env(tmp_path, toolkit.shim, toolkit.env())
    with podman_env(tmp_path) as engine:
        image = engine.import_rootfs(busybox_rootfs)
        options = ["--runtime", str(shim), "--hooks-dir", str(hooks_dir)]
        engine.podman(
            *options, "run", "--name", "forged", "--network", "none",
            "--annotation", csv_field(f"io.container-hooks.injected={forged}"), image, "true",
        )  # fmt: skip
        assert log.read_text().split() == ["security", "shim"]
        engine.podman(*options, "start", "--attach", "forged")
        assert log.read_text().split() == ["security", "shim", "security", "shim"]
        inspected = json.loads(engine.podman("inspect", "forged").stdout)[0]
        assert inspected["Config"]["Annotations"]["io.container-hooks.injected"] == forged
