"""Docker: configure daemon.json, reload dockerd by SIGHUP, and `docker run` through the shim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ToolkitRoot, record_hook
from daemons import dockerd

pytestmark = pytest.mark.integration

USER_SETTINGS = {
    "log-level": "info",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "runtimes": {"plain-runc": {"path": "/usr/sbin/runc", "runtimeArgs": ["--log-format", "text"]}},
    "default-runtime": "runc",
    "shutdown-timeout": 10,
}


def test_configure_reload_run_unconfigure(tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path) -> None:
    config = tmp_path / "daemon.json"
    original = json.dumps(USER_SETTINGS, indent=4) + "\n"
    config.write_text(original)
    with dockerd(tmp_path, config_file=config, env=toolkit.env()) as engine:
        image = engine.import_rootfs(busybox_rootfs)
        before = engine.reload_count()
        done = toolkit.run_ctk(
            ["runtime", "configure", "--runtime=docker", f"--config={config}", f"--runtime-path={toolkit.shim}",
             "--set-as-default", "--reload", f"--pid-file={engine.pid_file}"]
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "SIGHUP" in done.stdout
        engine.wait_for_reload(before)
        written = json.loads(config.read_text())
        assert written["runtimes"]["container-hooks-runtime"] == {"path": str(toolkit.shim)}
        assert {k: v for k, v in written.items() if k not in ("runtimes", "default-runtime")} == {
            k: v for k, v in USER_SETTINGS.items() if k not in ("runtimes", "default-runtime")
        }
        assert written["runtimes"]["plain-runc"] == USER_SETTINGS["runtimes"]["plain-runc"]  # type: ignore[index]
        assert list(written) == list(USER_SETTINGS)  # key order kept
        assert config.read_text().startswith('{\n    "log-level"')  # indentation kept
        runtimes = engine.runtimes()
        assert runtimes["default"] == "container-hooks-runtime"

        log = tmp_path / "hook.log"
        toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
        engine.docker("run", "--rm", "--network", "none", image, "true")
        assert log.read_text() == "fired\n"  # exactly once per container
        engine.docker("run", "--rm", "--network", "none", image, "true")
        assert log.read_text() == "fired\nfired\n"

        before = engine.reload_count()
        done = toolkit.run_ctk(
            ["runtime", "unconfigure", "--runtime=docker", f"--config={config}", "--reload",
             f"--pid-file={engine.pid_file}"]
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        engine.wait_for_reload(before)
        assert config.read_text() == original
        assert not Path(str(config) + ".container-hooks-state.json").exists()
        runtimes = engine.runtimes()
        assert runtimes["default"] == "runc"
        assert "container-hooks-runtime" not in runtimes["runtimes"]
