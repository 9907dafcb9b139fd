"""Drop-in hooks under a real dockerd: `docker run -e AUDIT=1` and the container's command opt it in.

Docker 20.10 passes no labels as annotations, so the env extension (process.env) and the
command (process.args[0]) are what a Docker user can select on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import ToolkitRoot, record_hook
from daemons import dockerd
from hook_scripts import write_precreate_script

pytestmark = pytest.mark.integration

RUNTIME = "chts"


def write_dropin(directory: Path, name: str, hook: Dict[str, Any], when: Dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(json.dumps({"version": "1.0.0", "hook": hook, "when": when, "stages": ["prestart"]}))
    path.chmod(0o644)
    return path


def hooks_dir(toolkit: ToolkitRoot) -> Path:
    """A hooks.d the toolkit's config names, for the test's drop-ins."""
    hooks_d = toolkit.base / "hooks.d"
    hooks_d.mkdir(mode=0o755)
    toolkit.write_config(extra=f'hooks-dirs = ["{hooks_d}"]')
    return hooks_d


def shim_runtime(toolkit: ToolkitRoot) -> Dict[str, Any]:
    """daemon.json naming the shim as the runtime RUNTIME."""
    return {"runtimes": {RUNTIME: {"path": str(toolkit.shim)}}}


def test_conditional_hooks_fire_only_for_matching_docker_containers(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    hooks_d = hooks_dir(toolkit)
    fired = tmp_path / "fired.log"
    write_dropin(hooks_d, "10-audit.json", record_hook(fired, "audit"), {"x-container-hooks-env": {"^AUDIT$": "^1$"}})
    write_dropin(hooks_d, "20-true.json", record_hook(fired, "true-cmd"), {"commands": ["(^|/)true$"]})
    write_dropin(hooks_d, "30-binds.json", record_hook(fired, "binds"), {"hasBindMounts": True})
    daemon_json = shim_runtime(toolkit)
    with dockerd(tmp_path, daemon_json, env=toolkit.env()) as engine:
        image = engine.import_rootfs(busybox_rootfs)

        def run(*args: str) -> List[str]:
            fired.write_text("")
            engine.docker("run", "--rm", "--network", "none", "--runtime", RUNTIME, *args)
            return fired.read_text().split()

        # Docker bind-mounts /etc/resolv.conf, /etc/hostname and /etc/hosts into every
        # container, so hasBindMounts matches every Docker container (docs/hooks.md, "When a hook applies").
        assert run(image, "sh", "-c", "true") == ["binds"]
        assert run("-e", "AUDIT=1", image, "sh", "-c", "true") == ["audit", "binds"]
        assert run("-e", "AUDIT=0", image, "sh", "-c", "true") == ["binds"]
        assert run(image, "true") == ["true-cmd", "binds"]
        assert run("-e", "AUDIT=1", image, "/bin/true") == ["audit", "true-cmd", "binds"]

        # An unusable hook file stops `docker run`, and Docker shows the shim's one line.
        writable = write_dropin(hooks_d, "40-open.json", record_hook(fired, "open"), {"always": True})
        writable.chmod(0o646)
        done = engine.docker("run", "--rm", "--network", "none", "--runtime", RUNTIME, image, "true", check=False)
        assert done.returncode != 0
        assert (
            f"container-hooks-runtime: {writable}: refusing hook file writable by others (mode 0646)" in done.stderr
        ), done.stderr


def test_a_precreate_hook_rewrites_a_docker_containers_config(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    # Podman's precreate stage, which Docker has no notion of: the shim runs it before runc.
    hooks_d = hooks_dir(toolkit)
    script = write_precreate_script(tmp_path / "precreate.py")
    dropin = {
        "version": "1.0.0",
        "hook": {"path": str(script), "args": [script.name, "from-precreate"], "timeout": 10},
        "when": {"x-container-hooks-env": {"^WANT_CHAIN$": "^1$"}},
        "stages": ["precreate"],
    }
    (hooks_d / "10-chain.json").write_text(json.dumps(dropin))
    daemon_json = shim_runtime(toolkit)
    with dockerd(tmp_path, daemon_json, env=toolkit.env()) as engine:
        image = engine.import_rootfs(busybox_rootfs)
        run = ("run", "--rm", "--network", "none", "--runtime", RUNTIME)
        shown = engine.docker(*run, "-e", "WANT_CHAIN=1", image, "sh", "-c", 'echo "chain=$CHAIN"')
        assert shown.stdout.strip() == "chain=from-precreate"
        plain = engine.docker(*run, image, "sh", "-c", 'echo "chain=$CHAIN"')
        assert plain.stdout.strip() == "chain="
