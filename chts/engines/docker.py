"""Docker: `runtimes.<name>` and `default-runtime` in daemon.json, with the previous state recorded beside it.

JSON has no comments, so what configure replaced (the previous default runtime, an earlier entry
of the same name) is recorded in ``daemon.json.container-hooks-state.json``; dockerd rejects
unknown keys in daemon.json itself. Key order and the file's indentation are kept.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any, Dict, List, Optional, Tuple

from chts.engines import FileEdit, Plan, RuntimeRequest
from chts.engines.engine_files import parse_json_object, read_config_text, type_name, typed_value
from chts.errors import ToolkitError

WHAT = "Docker daemon.json"
STATE_SUFFIX = ".container-hooks-state.json"


def state_path(config: str) -> str:
    return config + STATE_SUFFIX


def json_layout(text: Optional[str]) -> Any:
    """The indent json.dumps needs to write like the user did: their first indented line's whitespace."""
    if text is None:
        return 2
    match = re.search(r"\n([ \t]+)\S", text)
    return match.group(1) if match else None


def dump(document: Dict[str, Any], layout_of: Optional[str]) -> bytes:
    return (json.dumps(document, indent=json_layout(layout_of), ensure_ascii=False) + "\n").encode()


def load(request: RuntimeRequest) -> Tuple[Optional[str], Dict[str, Any], Optional[Dict[str, Any]]]:
    """daemon.json's text and object, and configure's state record if there is one; all validated."""
    path = request.config
    text = read_config_text(path, WHAT)
    document = {} if text is None else parse_json_object(text, path)
    runtimes = document.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise ToolkitError(f"{path}: runtimes must be an object, found {type_name(runtimes)}")
    for name, entry in runtimes.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ToolkitError(f"{path}: runtimes.{name} must be an object with a string path")
        args = entry.get("runtimeArgs", [])
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise ToolkitError(f"{path}: runtimes.{name}.runtimeArgs must be a list of strings")
    typed_value(document, "default-runtime", str, (), path)
    state_text = read_config_text(state_path(path), "state record")
    state = None if state_text is None else parse_json_object(state_text, state_path(path))
    return text, document, state


def restored(document: Dict[str, Any], state: Optional[Dict[str, Any]], name: str, notes: List[str]) -> Dict[str, Any]:
    """``document`` without configure's changes: the recorded entry and default come back."""
    document = dict(document)
    runtimes = dict(document.get("runtimes", {}))
    previous_entry = None if state is None else state.get("runtime")
    if previous_entry is not None:
        runtimes[name] = previous_entry
    else:
        runtimes.pop(name, None)
    if runtimes or (state is not None and state.get("had-runtimes")):
        document["runtimes"] = runtimes
    else:
        document.pop("runtimes", None)
    if document.get("default-runtime") == name:
        previous_default = None if state is None else state.get("default-runtime")
        if previous_default is not None:
            document["default-runtime"] = previous_default
        else:
            if state is None:
                notes.append(f"no record of the previous default runtime: removed default-runtime ({name})")
            document.pop("default-runtime", None)
    return document


class Docker:
    name = "docker"
    default_config = "/etc/docker/daemon.json"

    def configure(self, request: RuntimeRequest) -> Plan:
        if request.name == "runc":
            raise ToolkitError("the runtime name 'runc' is reserved by Docker; choose another --runtime-name")
        text, current, state = load(request)
        notes: List[str] = []
        document = restored(current, state, request.name, notes) if state is not None else current
        runtimes = dict(document.get("runtimes", {}))
        previous_entry = runtimes.get(request.name)
        record = {
            "runtime": previous_entry,
            "had-runtimes": "runtimes" in document,
            "default-runtime": document.get("default-runtime"),
        }
        # keep the entry's other keys (runtimeArgs above all) and its place; only the path is ours
        runtimes[request.name] = {**(previous_entry or {}), "path": request.path}
        document = {**document, "runtimes": runtimes}
        if request.set_as_default:
            document["default-runtime"] = request.name
        old_state = None if state is None else json.dumps(state, indent=2).encode() + b"\n"
        return Plan(
            [
                FileEdit(request.config, None if text is None else text.encode(), dump(document, text)),
                FileEdit(state_path(request.config), old_state, json.dumps(record, indent=2).encode() + b"\n", False),
            ],
            notes,
        )

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        text, current, state = load(request)
        if text is None:
            return Plan([], [f"{request.config}: does not exist; nothing to remove"])
        notes: List[str] = []
        document = restored(current, state, request.name, notes)
        edits = [FileEdit(request.config, text.encode(), dump(document, text))]
        if state is not None:
            edits.append(FileEdit(state_path(request.config), json.dumps(state).encode(), None, backup=False))
        return Plan(edits, notes)

    def apply_hint(self, request: RuntimeRequest) -> str:
        return (
            "dockerd reloads runtimes on SIGHUP, no restart needed: `kill -HUP $(cat /var/run/docker.pid)` "
            "(or `systemctl reload docker`, or rerun with --reload)"
        )

    def reload(self, pid_file: str) -> str:
        try:
            with open(pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError) as exc:
            raise ToolkitError(f"{pid_file}: no dockerd PID there ({exc}); reload it by hand") from None
        try:
            with open(f"/proc/{pid}/comm") as handle:
                command = handle.read().strip()
        except OSError:
            raise ToolkitError(f"{pid_file}: process {pid} is not running; start dockerd") from None
        if command != "dockerd":  # a stale pid file must not make us signal an unrelated process
            raise ToolkitError(f"{pid_file}: process {pid} is {command!r}, not dockerd; reload it by hand")
        os.kill(pid, signal.SIGHUP)
        return f"sent SIGHUP to dockerd (pid {pid}): it reloads its runtimes"


ENGINE = Docker()
