"""container-hooks-ctk check end to end under real runc: from the built .pyz, and from an install in a temp root."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Set

import pytest
from conftest import CLEAN_PATH, require_binary, require_root

pytestmark = pytest.mark.integration


def leftovers() -> Set[str]:
    """What a check run could leave behind: its temp dirs."""
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("container-hooks-check-")}


def engine_options(base: Path) -> List[str]:
    # Never the host's real /etc files: each engine reads a path that does not exist.
    return [f"--{engine}-config={base / engine}" for engine in ("docker", "containerd", "crio", "podman")]


def run(command: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    require_root()
    require_binary("runc")
    return {
        "PATH": CLEAN_PATH,
        "CONTAINER_HOOKS_CONFIG": str(tmp_path / "etc" / "config.toml"),
        "CONTAINER_HOOKS_CACHE_DIR": str(tmp_path / "cache"),
    }


def test_check_from_the_pyz_runs_a_container_through_the_shim(pyz: Path, tmp_path: Path, env: Dict[str, str]) -> None:
    before = leftovers()
    result = run([str(pyz), "ctk", "check", "--dest", str(tmp_path / "bin"), *engine_options(tmp_path)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    container = [line for line in lines if line.startswith(("PASS  container:", "FAIL  container:"))]
    assert container == [
        f"PASS  container: a busybox-static container ran through {pyz} as container-hooks-runtime; "
        "its injected prestart probe hook fired"
    ]
    assert lines[-1] == "check: passed"
    assert leftovers() == before


def test_check_of_an_installed_root(pyz: Path, tmp_path: Path, env: Dict[str, str]) -> None:
    dest = tmp_path / "bin"
    options = ["--dest", str(dest), "--config", env["CONTAINER_HOOKS_CONFIG"]]
    assert run([str(pyz), "ctk", "install", *options], env).returncode == 0
    hook_log = tmp_path / "hook.log"
    # The host's own hooks are not run by the probe container, however many there are.
    hooks = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo ran >> {hook_log}"]}]}
    (tmp_path / "etc" / "hooks.json").write_text(json.dumps(hooks))
    result = run([str(dest / "container-hooks-ctk"), "check", *options, *engine_options(tmp_path)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"PASS  installation: container-hooks-runtime, container-hooks-ctk, container-hooks in {dest}" in result.stdout
    )
    assert f"ran through {dest / 'container-hooks-runtime'}; its injected prestart probe hook fired" in result.stdout
    assert not hook_log.exists()


def test_check_fails_when_the_container_does_not_run(pyz: Path, tmp_path: Path, env: Dict[str, str]) -> None:
    runc = require_binary("runc")
    # A runtime that passes `spec` and `--version` to runc but fails every container.
    broken = tmp_path / "broken-runc"
    broken.write_text(f'#!/bin/sh\ncase " $* " in *" run "*) echo "no luck" >&2; exit 3;; esac\nexec {runc} "$@"\n')
    broken.chmod(0o755)
    config = Path(env["CONTAINER_HOOKS_CONFIG"])
    config.parent.mkdir()
    config.write_text(f'[container-hooks-runtime]\nruntimes = ["{broken}"]\ndebug = ""\n')
    before = leftovers()
    result = run([str(pyz), "ctk", "check", "--dest", str(tmp_path / "bin"), *engine_options(tmp_path)], env)
    assert result.returncode == 1
    assert "FAIL  container: container-hooks-runtime run of a busybox-static container failed: no luck" in result.stdout
    assert result.stdout.splitlines()[-1] == "check: FAILED"
    assert leftovers() == before
