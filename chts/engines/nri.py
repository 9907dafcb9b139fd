"""NRI (the Node Resource Interface) as the engines print it, and the one containerd 1.7 edit that turns it on.

NRI mode (docs/nri.md) needs no runtime entry: a plugin on the runtime's NRI socket adds the hooks.
What matters of the engine is whether its NRI is on and where its socket is, read from what the
engine itself prints (`containerd config dump`, `crio config`), never from our reading of its files:

* containerd: ``[plugins."io.containerd.nri.v1.nri"]`` ``disable`` and ``socket_path``; 1.7 prints
  ``disable = true`` by default, 2.x ``false``; 1.6 and older have no such plugin. A plugin named in
  ``disabled_plugins`` is off whatever its table says.
* CRI-O (1.26 and later): ``[crio.nri]`` ``enable_nri`` (default true from 1.30) and ``nri_listen``.

containerd 1.7 is enabled by a drop-in of our own (``99-container-hooks-nri.toml``) beside the
runtime drop-in of `runtime configure --drop-in`, in the directory it would use, imported the same
way. containerd 1.x replaces a whole plugin table from an imported file, so the drop-in carries the
NRI table the other files give, with ``disable = false``.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from chts import DEFAULT_NRI_SOCKET
from chts.base.config_files import parse_toml, read_config_text
from chts.base.file_edit import FileEdit, Plan
from chts.base.text_files import toml_decode_error, toml_loads
from chts.base.toml_edit import marked_edit, remove_marks, set_key, tables_text
from chts.engines.containerd_config import WHAT, config_version, read_files
from chts.engines.containerd_dropin import CREATED_DIRECTORY, MINIMAL_CONFIG, drop_in_target
from chts.engines.runtime_binaries import run_engine_command
from chts.errors import ToolkitError

NRI_PLUGIN = "io.containerd.nri.v1.nri"
NRI_PLUGIN_NAMES = {NRI_PLUGIN, "nri"}  # as `disabled_plugins` may name it
# the first releases with NRI: containerd 1.7 (off by default until 2.0), CRI-O 1.26 (on from 1.30)
MIN_VERSION = {"containerd": (1, 7), "crio": (1, 26)}
NRI_DROP_IN_NAME = "99-container-hooks-nri.toml"
NRI_DROP_IN_HEADER = (
    "# Written by `container-hooks-ctk node nri-enable` (node install --mode nri): containerd 1.7 runs\n"
    "# its NRI plugin with this table; `node nri-disable` (node uninstall) removes it. containerd 1.x\n"
    "# replaces a whole plugin table from an imported file: this one carries the NRI settings of the\n"
    "# other files as well; run nri-enable again after changing them elsewhere.\n\n"
)
ENABLE_EDIT = f'[plugins."{NRI_PLUGIN}"] disable = false'


class NriSetting(NamedTuple):
    """NRI as the engine printed its configuration."""

    supported: bool  # the engine has NRI at all (containerd 1.7+, CRI-O 1.26+)
    enabled: bool
    socket: str


def containerd_nri(dump: Dict[str, Any]) -> NriSetting:
    """NRI in a parsed `containerd config dump` (1.7: version 2, 2.x: version 3; the plugin key is the same)."""
    disabled = dump.get("disabled_plugins", [])
    if isinstance(disabled, list) and NRI_PLUGIN_NAMES & set(map(str, disabled)):
        return NriSetting(True, False, DEFAULT_NRI_SOCKET)
    plugins = dump.get("plugins", {})
    table = plugins.get(NRI_PLUGIN) if isinstance(plugins, dict) else None
    if not isinstance(table, dict):
        return NriSetting(False, False, DEFAULT_NRI_SOCKET)
    socket = table.get("socket_path")
    return NriSetting(
        True, table.get("disable") is not True, socket if isinstance(socket, str) and socket else DEFAULT_NRI_SOCKET
    )


def crio_nri(printed: Dict[str, Any], text: str = "") -> NriSetting:
    """NRI in a parsed `crio config` (CRI-O before 1.26 prints no ``[crio.nri]``). CRI-O prints a value equal to
    its default commented out (``# enable_nri = true`` from 1.30, ``false`` before): ``text``, the printed
    text, gives those."""
    crio = printed.get("crio", {})
    table = crio.get("nri") if isinstance(crio, dict) else None
    if not isinstance(table, dict):
        return NriSetting(False, False, DEFAULT_NRI_SOCKET)
    enabled = table.get("enable_nri", commented(text, "enable_nri"))
    socket = table.get("nri_listen", commented(text, "nri_listen"))
    return NriSetting(True, enabled is True, socket if isinstance(socket, str) and socket else DEFAULT_NRI_SOCKET)


def commented(text: str, key: str) -> Any:
    """The value of ``# key = value``, a default `crio config` printed commented out (None: no such line)."""
    for line in text.splitlines():
        if line.startswith("#") and line.lstrip("# \t").startswith(f"{key} ="):
            try:
                return toml_loads(line.lstrip("# \t")).get(key)
            except toml_decode_error():
                return None
    return None


def engine_version(engine: str, printed: str) -> Optional[Tuple[int, int, int]]:
    """(major, minor, patch) from ``containerd --version`` (``containerd github.com/... 1.7.24~ds1 ...``,
    ``... v2.1.9``) or ``crio --version`` (``crio version 1.26.4`` or ``Version:  1.30.0``); None if unknown."""
    if engine == "containerd":
        fields = printed.split()
        found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", fields[2]) if len(fields) >= 3 else None
    else:
        found = re.search(r"(?im)^\s*(?:crio\s+)?version[:\s]+v?(\d+)\.(\d+)(?:\.(\d+))?", printed)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def version_problem(engine: str, version: Optional[Tuple[int, int, int]]) -> Optional[str]:
    """Why this engine version has no NRI (None: it has)."""
    wanted = MIN_VERSION[engine]
    name = "CRI-O" if engine == "crio" else engine
    if version is None:
        return f"{name}'s version is unknown"
    if version[:2] < wanted:
        return f"{name} {'.'.join(map(str, version))} has no NRI (it needs {name} {wanted[0]}.{wanted[1]} or later)"
    return None


def enablement_advice(engine: str, config: str, version: Optional[Tuple[int, int, int]]) -> str:
    """What to do on a node whose engine has NRI turned off."""
    if engine == "containerd":
        if version is not None and version[0] < 2:
            return (
                f"containerd 1.7 needs one config edit, {ENABLE_EDIT} (in {config} or a file it imports), "
                "and one restart: `container-hooks-ctk node install --mode nri` does both through a drop-in"
            )
        return f"set {ENABLE_EDIT} (in {config} or a file it imports) and restart containerd"
    return f"set [crio.nri] enable_nri = true (in a file of crio.conf.d beside {config}) and restart CRI-O"


# ----------------------------------------------------------------------------- containerd 1.7: the drop-in


def nri_target(config: str, enable: bool = True) -> Tuple[str, bool, Optional[str], Dict[str, Any], int]:
    """Our NRI drop-in's path, whether the main file needs an ``imports`` entry for it, the main file's text,
    the main file (our marks undone) and the containerd major version whose rules apply."""
    text = read_config_text(config, WHAT)
    main = parse_toml(remove_marks(text, config), config) if text is not None else {"version": 2}
    version = config_version(main, config)
    if version != 2 and enable:
        raise ToolkitError(
            f"{config}: config version {version}: containerd 1.7's NRI drop-in is written for a version 2 "
            f"file; set {ENABLE_EDIT} there yourself"
        )
    _, major, _ = read_files(config, {config: main})
    runtime_drop_in, needs_import = drop_in_target(config, text, main, major)
    return os.path.join(os.path.dirname(runtime_drop_in), NRI_DROP_IN_NAME), needs_import, text, main, major


def marked_imports(text: Optional[str], config: str) -> List[str]:
    """The ``imports`` entries our marks added to the main file (the runtime drop-in's, ours)."""
    if text is None:
        return []
    now = parse_toml(text, config).get("imports", [])
    without = parse_toml(remove_marks(text, config), config).get("imports", [])
    return [item for item in now if isinstance(item, str) and item not in without] if isinstance(now, list) else []


def without_key(document: Dict[str, Any], key: str = "imports") -> Dict[str, Any]:
    return {name: value for name, value in document.items() if name != key}


def imports_edit(config: str, text: Optional[str], wanted: List[str]) -> List[FileEdit]:
    """The main file with exactly ``wanted`` as our marked ``imports`` entries (after its own)."""

    def edit(base: str, parsed: Dict[str, Any]) -> str:
        if text is not None and without_key(parse_toml(text, config)) != without_key(parsed):
            raise ToolkitError(
                f"{config}: holds marked edits of `runtime configure` other than an imports entry (a runtime "
                "configured without --drop-in); unconfigure it, or configure it with --drop-in, first"
            )
        own = parsed.get("imports", [])
        own = own if isinstance(own, list) else []
        added = [item for item in dict.fromkeys(wanted) if item not in own]
        return set_key(base, (), "imports", [*own, *added]) if added else base

    if text is None and not wanted:
        return []
    return marked_edit(config, WHAT, MINIMAL_CONFIG, edit).edits


def enable_plan(config: str) -> Plan:
    """The NRI drop-in with ``disable = false`` and, when needed, the main file's ``imports`` entry for it."""
    target, needs_import, text, main, major = nri_target(config)
    if major >= 2:
        raise ToolkitError(f"{config}: containerd 2.x runs NRI unless told not to: remove the `disable = true` instead")
    old = read_config_text(target, WHAT)
    if old is not None and not old.startswith(NRI_DROP_IN_HEADER.splitlines()[0]):
        raise ToolkitError(f"{target}: exists and was not written by this tool; move it away first")
    merged, _, _ = read_files(config, {config: main, target: None})
    plugins = merged.get("plugins", {})
    table = copy.deepcopy(plugins.get(NRI_PLUGIN, {})) if isinstance(plugins, dict) else {}
    table = table if isinstance(table, dict) else {}
    table["disable"] = False
    document = {"version": 2, "plugins": {NRI_PLUGIN: table}}
    created = not os.path.isdir(os.path.dirname(target)) if old is None else CREATED_DIRECTORY in old
    new_text = NRI_DROP_IN_HEADER + (CREATED_DIRECTORY if created else "") + tables_text((), document)
    edits = [FileEdit(target, None if old is None else old.encode(), new_text.encode(), backup=False)]
    if needs_import:  # the drop-in first: the main file must never import a file that is not there
        edits += imports_edit(config, text, [*marked_imports(text, config), target])
    return Plan(edits, [])


def disable_plan(config: str) -> Plan:
    """Remove what enable_plan wrote: our NRI drop-in and its marked ``imports`` entry (others stay)."""
    try:
        target, _, text, _, _ = nri_target(config, enable=False)
    except ToolkitError:  # a layout nri-enable refuses (k3s without a drop-in directory ...): nothing of ours there
        return Plan([], [])
    edits: List[FileEdit] = []
    entry = [item for item in marked_imports(text, config) if item == target]
    if entry:  # the import first: containerd must never be left importing a file that is gone
        edits += imports_edit(config, text, [item for item in marked_imports(text, config) if item != target])
    old = read_config_text(target, WHAT)
    if old is not None and old.startswith(NRI_DROP_IN_HEADER.splitlines()[0]):
        edits.append(FileEdit(target, old.encode(), None, backup=False, remove_directory=CREATED_DIRECTORY in old))
    return Plan(edits, [])


def dumped_nri(binary: str, config: str) -> NriSetting:
    """NRI as ``binary --config CONFIG config dump`` prints it; a file containerd rejects is one line naming it."""
    done = run_engine_command([binary, "--config", config, "config", "dump"], f"{config}: containerd", check=True)
    if done is None:
        raise ToolkitError(f"{binary}: not found: the effective configuration cannot be checked")
    return containerd_nri(parse_toml(done.stdout, f"{binary} config dump"))
