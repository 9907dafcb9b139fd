"""One small interface every container engine implements, and the registry of engines.

`runtime configure|unconfigure` (chts/ctk/runtime.py) is written once against `Engine`; an engine
module only turns a `RuntimeRequest` into the file edits it needs. Adding an engine is one module
and one line in `ENGINE_MODULES`.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, NamedTuple, Optional, Protocol

from chts import SHIM
from chts.base.file_edit import Plan
from chts.errors import ToolkitError

DEFAULT_RUNTIME_NAME = SHIM  # the name engines know the shim by
DEFAULT_RUNTIME_PATH = "/usr/bin/container-hooks-runtime"

# name -> module under chts.engines; each module has `ENGINE`, an object satisfying `Engine`.
ENGINE_MODULES = {
    "docker": "docker",
    "containerd": "containerd",
    "crio": "crio",
    "podman": "podman",
}


class RuntimeRequest(NamedTuple):
    """What the user asked for, engine-independent (paths already defaulted by the command)."""

    config: str
    name: str
    path: str
    set_as_default: bool
    drop_in_dir: Optional[str] = None
    config_source: str = "auto"  # how effective() learns the engine's view: auto, file or command
    drop_in: bool = False  # containerd: write a file of our own under `imports` instead of editing the main file
    toolkit_config: Optional[str] = (
        None  # where configure records the low-level runtime for the shim (chts/ctk/chaining.py)
    )


class EffectiveRuntimes(NamedTuple):
    """What the engine will really run with after reading all its files (defaults, imports, drop-ins).

    ``runtimes`` maps each runtime name to its settings as the engine reads them; ``source`` says where
    the answer came from: ``"file"`` (our reading of the files, in the engine's own order) or the engine
    command whose output it is (``"containerd config dump"``, ``"crio config"``).
    """

    default: Optional[str]
    runtimes: Dict[str, Dict[str, Any]]
    source: str
    # everything else the engine reads from these files, which configure and unconfigure must leave as it is
    other: Optional[Dict[str, Any]] = None


class Engine(Protocol):
    name: str

    @property
    def default_config(self) -> str:
        """The engine's config file when --config is not given (podman: $CONTAINERS_CONF when set)."""

    def configure(self, request: RuntimeRequest) -> Plan:
        """The edits that add the runtime (and make it the default when asked); idempotent."""

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        """The edits that remove exactly what configure added and restore the previous default."""

    def apply_hint(self, request: RuntimeRequest) -> str:
        """One sentence telling the user how to make the running engine read the new config."""

    def reload(self, pid_file: str) -> str:
        """Make the running engine read its config, where that is safe; else raise ToolkitError."""

    def effective(self, config: str, source: str) -> EffectiveRuntimes:
        """The runtimes the engine would run with from ``config`` as it is on disk now.

        ``source`` is ``auto`` (the engine's own parser when its binary is on the host, else the files),
        ``file`` or ``command``; raise ToolkitError when it cannot be had.
        """

    def low_level_runtime(self, effective: EffectiveRuntimes, name: str) -> Optional[str]:
        """The binary the engine's runtime ``name`` executes (runc, crun, /usr/libexec/crio/runc ...), if known."""


def get_engine(name: str) -> Engine:
    module = ENGINE_MODULES.get(name)
    if module is None:
        raise ToolkitError(f"unknown engine {name!r}: choose one of {', '.join(ENGINE_MODULES)}")
    engine: Engine = importlib.import_module(f"chts.engines.{module}").ENGINE
    return engine
