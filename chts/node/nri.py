"""Whether a node can run NRI mode, judged by the host's own engine: its version and its effective configuration.

`node preflight` says it, `node install --mode nri` requires it (and, on containerd 1.7 with NRI off,
turns NRI on through the installed ctk run as the host: `node nri-enable`, a verified drop-in).
"""

from __future__ import annotations

import os
from typing import List, NamedTuple, Optional, Tuple

from chts.base.file_edit import EditWriter
from chts.base.text_files import toml_decode_error, toml_loads
from chts.engines.nri import (
    ENABLE_EDIT,
    NRI_DROP_IN_HEADER,
    NRI_DROP_IN_NAME,
    NriSetting,
    containerd_nri,
    crio_nri,
    disable_plan,
    dumped_nri,
    enable_plan,
    enablement_advice,
    engine_version,
    version_problem,
)
from chts.errors import ToolkitError
from chts.node.engine import CONTAINERD_BINARY
from chts.node.files import ctk_path
from chts.node.host import EngineLayout, HostRoot


class NriReadiness(NamedTuple):
    """NRI on this node: the engine's version, its NRI as it prints it, and what stands in the way."""

    version: Optional[Tuple[int, int, int]]
    setting: NriSetting
    problem: Optional[str]  # None: NRI mode works now
    advice: str  # what to do about ``problem``
    installer_can_enable: bool  # containerd 1.7 with NRI off: `node install --mode nri` turns it on


def engine_binary(layout: EngineLayout) -> str:
    return CONTAINERD_BINARY.get(layout.layout, "containerd") if layout.engine == "containerd" else "crio"


def host_engine_version(host: HostRoot, layout: EngineLayout) -> Optional[Tuple[int, int, int]]:
    printed = host.run([engine_binary(layout), "--version"], f"{layout.engine} --version")
    return engine_version(layout.engine, printed)


def nri_setting(effective: str, layout: EngineLayout) -> NriSetting:
    """NRI in what the engine printed as its effective configuration."""
    try:
        document = toml_loads(effective)
    except toml_decode_error() as exc:
        raise ToolkitError(f"{layout.config}: {layout.engine}'s printed configuration does not parse: {exc}") from None
    return containerd_nri(document) if layout.engine == "containerd" else crio_nri(document, effective)


def nri_readiness(host: HostRoot, layout: EngineLayout, effective: str) -> NriReadiness:
    version = host_engine_version(host, layout)
    setting = nri_setting(effective, layout)
    problem = version_problem(layout.engine, version)
    if problem is None and not setting.supported:
        problem = f"{layout.engine} prints no NRI settings"
    if problem is not None:
        return NriReadiness(version, setting, problem, "upgrade the engine, or keep the shim (node install)", False)
    if setting.enabled:
        return NriReadiness(version, setting, None, "", False)
    can = layout.engine == "containerd" and version is not None and version[0] < 2
    advice = enablement_advice(layout.engine, layout.config, version)
    return NriReadiness(version, setting, f"NRI is disabled in {layout.engine}'s configuration", advice, can)


def describe(readiness: NriReadiness, layout: EngineLayout) -> str:
    """preflight's NRI line."""
    name = "CRI-O" if layout.engine == "crio" else layout.engine
    version = ".".join(map(str, readiness.version)) if readiness.version else "version unknown"
    if readiness.problem is None:
        return f"NRI mode: possible ({name} {version}, NRI enabled, socket {readiness.setting.socket})"
    if readiness.installer_can_enable:
        return f"NRI mode: possible after one change ({name} {version}): {readiness.problem}; {readiness.advice}"
    return f"NRI mode: not possible now ({name} {version}): {readiness.problem}; {readiness.advice}"


def nri_config_argv(toolkit_dir: str, layout: EngineLayout, enable: bool) -> List[str]:
    """`container-hooks-ctk node nri-enable|nri-disable` as the host runs it."""
    action = "nri-enable" if enable else "nri-disable"
    return [ctk_path(toolkit_dir), "node", action, f"--config={layout.config}", f"--containerd={engine_binary(layout)}"]


# ----------------------------------------------------------------------------- nri-enable / nri-disable


def change_nri(config: str, containerd: str, enable: bool) -> List[str]:
    """Write (``enable``) or remove containerd 1.7's NRI drop-in, then check the result in ``containerd``'s own
    `config dump`; every file is put back when containerd would not run as asked. What was done, one line each."""
    plan = enable_plan(config) if enable else disable_plan(config)
    changes = [edit for edit in plan.edits if edit.old != edit.new]
    writer = EditWriter(changes, keep_backups=False)
    problem: Optional[str] = None
    try:
        for edit in changes:
            writer.write(edit)
        setting = dumped_nri(containerd, config)
        if enable and not setting.enabled:
            problem = "NRI is still disabled in its effective configuration (a file imported later sets it?)"
    except ToolkitError as exc:
        if not writer.written:
            raise
        problem = str(exc)
    if problem is not None:
        writer.take_back()
        raise ToolkitError(f"{config}: containerd would not run as asked: {problem}; the files are restored")
    if enable:
        done = f"NRI enabled ({ENABLE_EDIT}, socket {setting.socket})" if changes else "NRI already enabled"
    else:
        done = "NRI drop-in removed" if changes else "no NRI drop-in of this tool; nothing changed"
    return [*writer.reports, f"{config}: {done}" + ("; restart containerd to apply it" if changes else "")]


def nri_drop_in_present(host: HostRoot, layout: EngineLayout) -> bool:
    """Whether the node has a drop-in of `node nri-enable` (so uninstall has it to remove), looked for where
    nri-enable puts it: conf.d beside the config, or a directory the config imports with a glob. An installed
    ctk of an older version has no nri-disable: it is run only when there is something to remove."""
    if layout.engine != "containerd":
        return False
    directory = os.path.dirname(layout.config)
    candidates = [f"{directory}/{name}" for name in ("conf.d", "config.toml.d", "config-v3.toml.d")]
    try:
        with open(host.path(layout.config), encoding="utf-8", errors="replace") as handle:
            imports = toml_loads(handle.read(1 << 20)).get("imports", [])
    except OSError:
        imports = []
    except toml_decode_error():
        imports = []
    for item in imports if isinstance(imports, list) else []:
        if isinstance(item, str) and "*" in item and "*" not in os.path.dirname(item):
            candidates.append(os.path.normpath(os.path.join(directory, os.path.dirname(item))))
    for candidate in dict.fromkeys(candidates):
        try:
            with open(host.path(f"{candidate}/{NRI_DROP_IN_NAME}"), encoding="utf-8", errors="replace") as handle:
                if handle.read(len(NRI_DROP_IN_HEADER)).startswith(NRI_DROP_IN_HEADER.splitlines()[0]):
                    return True
        except OSError:
            continue
    return False
