"""Podman: `[engine.runtimes] <name> = [path]` and `[engine] runtime`, by a marked edit of containers.conf.

The main file rather than a containers.conf.d drop-in, because podman reads only the file named by
CONTAINERS_CONF when that is set (no drop-ins), and the edit must work for such hosts too; the
marked, minimal edit keeps the user's comments all the same.
"""

from __future__ import annotations

import copy
from typing import Any, Dict

from chts.engines import Plan, RuntimeRequest
from chts.engines.engine_files import foreign_runtime, table_at, typed_value
from chts.engines.toml_edit import marked_edit, set_key_expecting, unmarked_edit, verified

WHAT = "containers.conf"
MINIMAL_CONFIG = "# containers.conf written by `container-hooks-ctk runtime configure` (there was none).\n"


def checked_engine_table(document: Dict[str, Any], path: str) -> Dict[str, Any]:
    """``[engine]`` with its ``runtime`` and ``runtimes`` type-checked (``runtimes`` filled in when absent)."""
    engine = table_at(document, ("engine",), path)
    typed_value(engine, "runtime", str, ("engine",), path)
    return {**engine, "runtimes": table_at(document, ("engine", "runtimes"), path)}


class Podman:
    name = "podman"
    default_config = "/etc/containers/containers.conf"

    def configure(self, request: RuntimeRequest) -> Plan:
        def edit(text: str, document: Dict[str, Any]) -> str:
            path = request.config
            if request.name in checked_engine_table(document, path)["runtimes"]:
                raise foreign_runtime(path, f"engine.runtimes.{request.name}")
            expected = copy.deepcopy(document)
            new = set_key_expecting(text, expected, ("engine", "runtimes"), request.name, [request.path])
            if request.set_as_default:
                new = set_key_expecting(new, expected, ("engine",), "runtime", request.name)
            return verified(new, expected, path)

        return marked_edit(request.config, WHAT, MINIMAL_CONFIG, edit)

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        return unmarked_edit(request.config, WHAT, lambda document: checked_engine_table(document, request.config))

    def apply_hint(self, request: RuntimeRequest) -> str:
        how = (
            "new containers use it" if request.set_as_default else f"use it with `podman run --runtime {request.name}`"
        )
        return f"podman reads containers.conf at every command: {how}"

    def reload(self, pid_file: str) -> str:
        return "podman has no daemon: nothing to reload"


ENGINE = Podman()
