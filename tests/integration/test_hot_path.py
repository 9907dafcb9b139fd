"""The hot-path tiers (CONTRIBUTING.md, "The shim's hot-path tiers"): what a runc call through the built .pyz imports.

The shim runs as the kernel starts it, with posix.execv replaced by a function that
writes sys.modules to a file and exits: what is loaded at the moment runc would be
exec'd is compared with the interpreter's own start-up modules plus the tier's
allow-list, so a stray import fails here rather than in a benchmark.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Dict, Set

import pytest
from conftest import CLEAN_PATH, python_start, write_small_toolkit

pytestmark = pytest.mark.integration

PYTHON = "/usr/bin/python3"  # what the sh start runs

# Every call: argv[0] dispatch, runc's argv, the runtime lookup, the cached config. Builtins only.
PASSTHROUGH = {"chts", "chts.dispatch", "chts.shim", "chts.shim.main", "chts.shim.argv", "chts.shim.cache"}
PASSTHROUGH |= {"chts.base", "chts.base.runtime_lookup", "chts.base.signature", "posix", "marshal", "time", "_warnings"}
PASSTHROUGH |= {"chts.shim.runtime_record", "chts._build"}  # what lets the sh start pass the next calls on
# create/run/restore while the cache holds the plan: the C JSON accelerator and the create path.
CREATE = PASSTHROUGH | {
    "__future__",
    "_json",
    "stat",
    "_stat",
    "chts.base.atomic",
    "chts.errors",
    "chts.hooks",
    "chts.hooks.bundle",
    "chts.hooks.sources",
    "chts.hooks.model",
    "chts.shim.inject",
    "chts.hooks.bundle_record",
    "chts.base.jsonio",
    "chts.hooks.merge",
    "chts.shim.log",
    "chts.base.logfile",
}

CAPTURE = """\
import posix, sys
def execv(path, argv):
    with open({out!r}, "w") as handle:
        handle.write("\\n".join(sorted(sys.modules)))
    posix._exit(0)
posix.execv = execv
{program}
"""


def start_modules() -> Set[str]:
    """What the interpreter itself has loaded when the sh start's Python program begins."""
    result = subprocess.run(
        [PYTHON, "-IS", "-c", "import sys; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(result.stdout.split())


def loaded(pyz: Path, args: list[str], env: Dict[str, str], out: Path) -> Set[str]:
    program = CAPTURE.format(out=str(out), program=python_start(pyz)[1])
    subprocess.run([PYTHON, "-IS", "-c", program, str(pyz), *args], env=env, check=True, timeout=60)
    return set(out.read_text().split())


@pytest.fixture
def scene(tmp_path: Path) -> Dict[str, str]:
    env = write_small_toolkit(tmp_path, "/bin/true")
    past = time.time() - 3600
    for name in ("hooks.json", "config.toml"):
        os.utime(tmp_path / name, (past, past))
    return {"PATH": CLEAN_PATH, **env}


def test_passthrough_and_create_import_only_their_tier(pyz: Path, tmp_path: Path, scene: Dict[str, str]) -> None:
    if not Path(PYTHON).exists():
        pytest.skip(f"{PYTHON} is missing")
    baseline = start_modules()
    bundle = str(tmp_path / "bundle")
    out = tmp_path / "modules"
    # First calls fill both caches (compiled modules, parsed files); a file changed in the last
    # two seconds (its ctime: the test just wrote it) is not cached, so wait that long first.
    time.sleep(2.1)
    loaded(pyz, ["runtime", "create", "-b", bundle, "warm"], scene, out)
    passthrough = loaded(pyz, ["runtime", "state", "c1"], scene, out) - baseline
    assert passthrough <= PASSTHROUGH, sorted(passthrough - PASSTHROUGH)
    create = loaded(pyz, ["runtime", "create", "-b", bundle, "c1"], scene, out) - baseline
    assert create <= CREATE, sorted(create - CREATE)
    assert "chts.shim.inject" in create and "chts.shim.inject" not in passthrough  # the tiers really differ
    assert '"poststop"' in (tmp_path / "bundle" / "config.json").read_text()  # and the create injected
