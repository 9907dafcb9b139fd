"""NRI mode: the plugin a CRI runtime (containerd, CRI-O) asks about every container it creates."""

import os

# Where `nri run` keeps its state file (NAME.json) and `ctk check` reads it: one place for both.
STATE_DIR_VARIABLE = "CONTAINER_HOOKS_NRI_STATE_DIR"
DEFAULT_STATE_DIR = "/run/container-hooks/nri"


def default_state_dir() -> str:
    return os.environ.get(STATE_DIR_VARIABLE) or DEFAULT_STATE_DIR
