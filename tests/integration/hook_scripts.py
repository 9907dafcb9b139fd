"""Hook programs the integration tests install on the host."""

from __future__ import annotations

from pathlib import Path

PRECREATE_SCRIPT = """#!/usr/bin/python3
# A precreate hook: the proposed config on stdin, the new one on stdout (as libpod runs them).
import json, os, sys
spec = json.load(sys.stdin)
env = spec["process"]["env"]
chain = [item for item in env if item.startswith("CHAIN=")]
if chain:
    env[env.index(chain[0])] = chain[0] + sys.argv[1]
else:
    env.append("CHAIN=" + sys.argv[1])
spec.setdefault("annotations", {})["org.example.precreate-cwd"] = os.getcwd()
spec["annotations"]["org.example.precreate-env-" + sys.argv[1]] = ",".join(sorted(os.environ))
json.dump(spec, sys.stdout)
"""


def write_precreate_script(path: Path) -> Path:
    """An executable precreate hook: appends argv[1] to CHAIN in process.env, records its cwd and env."""
    path.write_text(PRECREATE_SCRIPT)
    path.chmod(0o755)
    return path
