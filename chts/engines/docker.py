"""Docker: `runtimes.<name>` and `default-runtime` in daemon.json, edited byte-exactly, the undo recorded beside it.

Only the members configure adds or changes are written (chts/base/json_edit.py): inline
arrays, compact files, CRLF, a missing final newline, ``1e3`` and ``\\u00e9`` stay as the user
wrote them. JSON has no comments and dockerd rejects unknown keys, so what configure replaced
(the previous ``default-runtime`` value, as its text) goes to ``daemon.json.container-hooks-state.json``;
unconfigure applies exactly the inverse edits, giving back the original bytes.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any, Dict, List, Optional, Tuple

from chts.base.config_files import foreign_runtime, parse_json_object, read_config_text, type_name, typed_value
from chts.base.file_edit import FileEdit, Plan
from chts.base.json_edit import add_member, remove_member, replace_value, value_text
from chts.engines import EffectiveRuntimes, Engine, RuntimeRequest
from chts.engines.runtime_binaries import resolve_binary, run_engine_command, runc_shim_binary
from chts.errors import ToolkitError

WHAT = "Docker daemon.json"
STATE_SUFFIX = ".container-hooks-state.json"
STATE_VERSION = 2
BUILTIN_DEFAULT = "runc"
OURS = ("runtimes", "default-runtime")  # the members configure may change; everything else must stay
SHIM_NAME = re.compile(r"io\.containerd\.[\w-]+\.v\d+")  # Docker >= 23 runs these without a runtimes entry
# A new file: indented, so the user can read and extend it.
EMPTY_DOCUMENT = "{\n}\n"


def state_path(config: str) -> str:
    return config + STATE_SUFFIX


def checked_document(text: str, path: str) -> Dict[str, Any]:
    """daemon.json parsed, its ``runtimes`` and ``default-runtime`` type-checked as dockerd reads them.

    An entry is either a runc drop-in (``path``, ``runtimeArgs``) or a containerd shim
    (``runtimeType``, ``options``), as Docker documents; both are kept as they are.
    """
    document = parse_json_object(text.lstrip("\ufeff"), path)
    runtimes = document.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise ToolkitError(f"{path}: runtimes must be an object, found {type_name(runtimes)}")
    for name, entry in runtimes.items():
        if not isinstance(entry, dict):
            raise ToolkitError(f"{path}: runtimes.{name} must be an object, found {type_name(entry)}")
        for key, kind in (("path", str), ("runtimeType", str), ("options", dict)):
            typed_value(entry, key, kind, ("runtimes", name), path)
        args = entry.get("runtimeArgs", [])
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise ToolkitError(f"{path}: runtimes.{name}.runtimeArgs must be a list of strings")
    typed_value(document, "default-runtime", str, (), path)
    return document


def load(path: str) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """daemon.json's text (validated) and configure's state record, if there is one."""
    text = read_config_text(path, WHAT)
    if text is not None:
        checked_document(text, path)
    state_text = read_config_text(state_path(path), "state record")
    state = None if state_text is None else parse_json_object(state_text, state_path(path))
    return text, state


def added(text: str, request: RuntimeRequest) -> Tuple[str, Dict[str, Any]]:
    """``text`` with our runtime (and default) added, and the record that undoes exactly that."""
    path = request.config
    document = checked_document(text, path)
    record: Dict[str, Any] = {"version": STATE_VERSION, "name": request.name}
    entry = {"path": request.path}
    if "runtimes" in document:
        if request.name in document["runtimes"]:
            raise foreign_runtime(path, f"runtimes.{request.name}")
        text, record["runtimes-inside"] = add_member(text, ["runtimes", request.name], entry, path)
    else:
        text, record["document-inside"] = add_member(text, ["runtimes"], {request.name: entry}, path)
        record["added-runtimes"] = True
    if request.set_as_default:
        if "default-runtime" in document:
            text, record["default-runtime"] = replace_value(text, ["default-runtime"], value_text(request.name), path)
        else:
            text, inside = add_member(text, ["default-runtime"], request.name, path)
            record["document-inside"] = record.get("document-inside") or inside
    expected = dict(document)
    expected["runtimes"] = {**document.get("runtimes", {}), request.name: entry}
    if request.set_as_default:
        expected["default-runtime"] = request.name
    return verified(text, expected, path), {k: v for k, v in record.items() if v is not None}


def removed(text: str, state: Optional[Dict[str, Any]], name: str, path: str, notes: List[str]) -> str:
    """``text`` without configure's changes, by the inverse edits the record names.

    Without a record nothing shows that configure added the entry of our name: it is left as it is.
    """
    document = checked_document(text, path)
    if state is None:
        if name in document.get("runtimes", {}):
            notes.append(f"{path}: no record that configure added runtimes.{name} ({state_path(path)}): left as it is")
        return text
    record = upgraded(state)
    expected = dict(document)
    inside = record.get("document-inside")
    if document.get("default-runtime") == name:
        if "default-runtime" in record:
            text, _ = replace_value(text, ["default-runtime"], record["default-runtime"], path)
            expected["default-runtime"] = json.loads(record["default-runtime"])
        else:
            text = remove_member(text, ["default-runtime"], path, inside)
            expected.pop("default-runtime")
    runtimes = dict(document.get("runtimes", {}))
    if name in runtimes:
        del runtimes[name]
        if record.get("added-runtimes") and not runtimes:
            text = remove_member(text, ["runtimes"], path, inside)
            expected.pop("runtimes")
        else:
            text = remove_member(text, ["runtimes", name], path, record.get("runtimes-inside"))
            expected["runtimes"] = runtimes
    if isinstance(record.get("runtime"), dict):  # the first release took a user's entry of our name over
        earlier = json.dumps(record["runtime"])
        notes.append(f"{path}: configure had replaced runtimes.{name} = {earlier}; add it back by hand if needed")
    return verified(text, expected, path)


def upgraded(state: Dict[str, Any]) -> Dict[str, Any]:
    """A record of any release in today's form (the first one kept values, not their text)."""
    if state.get("version") == STATE_VERSION:
        return state
    record: Dict[str, Any] = {"added-runtimes": not state.get("had-runtimes", True), "runtime": state.get("runtime")}
    if state.get("default-runtime") is not None:
        record["default-runtime"] = value_text(state["default-runtime"])
    return record


def verified(text: str, expected: Dict[str, Any], path: str) -> str:
    """``text`` if it parses to exactly ``expected``; else refuse, naming the file (never write a surprise)."""
    try:
        result = json.loads(text.lstrip("\ufeff"))
    except ValueError:
        result = None
    if result != expected:
        raise ToolkitError(f"{path}: its layout defeats a minimal edit; nothing written; make this change by hand")
    return text


def state_bytes(record: Optional[Dict[str, Any]]) -> Optional[bytes]:
    return None if record is None else json.dumps(record, indent=2).encode() + b"\n"


def recorded_default(config: str) -> Optional[str]:
    """The default runtime configure replaced, from its record (None: none, or no record)."""
    try:
        _, state = load(config)
        value = json.loads(upgraded(state or {}).get("default-runtime", "null"))
    except (ToolkitError, ValueError):
        return None
    return value if isinstance(value, str) else None


def dockerd_validates() -> bool:
    """dockerd 23.0 and later have ``--validate``; 20.10 (Debian 12's) does not."""
    done = run_engine_command(["dockerd", "--help"], "dockerd --help")
    return done is not None and "--validate" in done.stdout


class Docker:
    name = "docker"
    default_config = "/etc/docker/daemon.json"

    def configure(self, request: RuntimeRequest) -> Plan:
        if request.name == "runc":
            raise ToolkitError("the runtime name 'runc' is reserved by Docker; choose another --runtime-name")
        text, state = load(request.config)
        notes: List[str] = []
        base = EMPTY_DOCUMENT if text is None else text
        if state is not None:
            base = removed(base, state, request.name, request.config, notes)
        new, record = added(base, request)
        old_bytes = None if text is None else text.encode()
        return Plan(
            [
                FileEdit(request.config, old_bytes, new.encode()),
                FileEdit(state_path(request.config), state_bytes(state), state_bytes(record), backup=False),
            ],
            notes,
        )

    def unconfigure(self, request: RuntimeRequest) -> Plan:
        text, state = load(request.config)
        if text is None:
            return Plan([], [f"{request.config}: does not exist; nothing to remove"])
        notes: List[str] = []
        new = removed(text, state, request.name, request.config, notes)
        edits = [FileEdit(request.config, text.encode(), new.encode())]
        if state is not None:
            edits.append(FileEdit(state_path(request.config), state_bytes(state), None, backup=False))
        return Plan(edits, notes)

    def effective(self, config: str, source: str) -> EffectiveRuntimes:
        """daemon.json over dockerd's built-in ``runc`` (dockerd has no config dump)."""
        validates = False
        if source != "file":
            validates = dockerd_validates()
            if validates:
                run_engine_command(["dockerd", "--validate", "--config-file", config], "dockerd --validate", True)
            elif source == "command":
                raise ToolkitError(
                    "dockerd here has no --validate (added in Docker 23.0) and no config dump: use --config-source file"
                )
        text = read_config_text(config, WHAT)
        document = {} if text is None else checked_document(text, config)
        runtimes: Dict[str, Dict[str, Any]] = {
            BUILTIN_DEFAULT: {"path": BUILTIN_DEFAULT},
            **document.get("runtimes", {}),
        }
        default = document.get("default-runtime", BUILTIN_DEFAULT)
        # a containerd shim named as the default (now, or before configure) needs no entry: dockerd hands
        # it to containerd; it is part of what the engine runs with either way
        for named in (default, recorded_default(config)):
            if named is not None and named not in runtimes and SHIM_NAME.fullmatch(named):
                runtimes[named] = {"runtimeType": named}
        how = "file, checked by dockerd --validate" if validates else "file"
        return EffectiveRuntimes(default, runtimes, how, {k: v for k, v in document.items() if k not in OURS})

    def low_level_runtime(self, effective: EffectiveRuntimes, name: str) -> Optional[str]:
        """A drop-in's ``path`` (a name is looked up in $PATH, as dockerd does); the runc shim's ``BinaryName``.

        Other containerd shims (``runtimeType`` of kata, gVisor...) run no runc-like binary: None.
        """
        entry = effective.runtimes.get(name)
        if entry is None:
            return None
        if isinstance(entry.get("path"), str):
            return resolve_binary(entry["path"])
        return runc_shim_binary(entry.get("runtimeType"), entry.get("options"))

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


ENGINE: Engine = Docker()
