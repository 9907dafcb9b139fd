"""The README's "NRI mode on one machine" stays true: tests/nri_demo.py, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_readme_nri_demo_shows_each_containers_hooks(pyz: Path) -> None:
    require_root()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONTAINER_HOOKS")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "nri_demo.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("container plain (") and line.endswith(": hooks that ran: ['always']") for line in lines)
    assert any(
        line.startswith("container annotated (") and line.endswith(": hooks that ran: ['always', 'audit']")
        for line in lines
    ), done.stdout
    assert any("pod sandbox (pause) container" in line and "hooks that ran: []" in line for line in lines)
    assert sum("plugin log:" in line and "injected" in line for line in lines) == 2
