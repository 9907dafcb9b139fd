"""containerd: what `runtime configure` writes is what containerd really reads, and runs containers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import ToolkitRoot, record_hook, require_binary
from daemons import containerd_config_dump, containerd_paths_toml, short_directory, start_containerd

from chts.base.text_files import toml_loads

pytestmark = pytest.mark.integration

CRI = "io.containerd.grpc.v1.cri"

USER_SETTINGS = """
# The operator's own containerd settings: every line of this must survive configure.
[plugins]
  # CRI plugin, tuned by hand
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.example.internal/pause:3.9"  # air-gapped mirror
    # this VM cannot raise oom_score_adj
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
"""


def ctk(toolkit: ToolkitRoot, *args: str) -> subprocess.CompletedProcess[str]:
    done = toolkit.run_ctk(list(args))
    assert done.returncode == 0, done.stderr
    return done


def dumped(config: Path) -> Dict[str, Any]:
    return toml_loads(containerd_config_dump(config))


def test_configure_is_what_containerd_reads_and_unconfigure_gives_it_back(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    binary = require_binary("containerd")
    state = short_directory("chc-")
    config = tmp_path / "config.toml"
    original = containerd_paths_toml(state) + USER_SETTINGS
    config.write_text(original)
    before = dumped(config)

    ctk(toolkit, "runtime", "configure", "--runtime=containerd", f"--config={config}", "--set-as-default",
        f"--runtime-path={toolkit.shim}")  # fmt: skip
    text = config.read_text()
    for line in original.splitlines():
        assert line in text, f"lost line: {line!r}"  # comments included
    after = dumped(config)
    cri = after["plugins"][CRI]
    runtime = cri["containerd"]["runtimes"]["container-hooks-runtime"]
    assert runtime["runtime_type"] == "io.containerd.runc.v2"
    assert runtime["options"]["BinaryName"] == str(toolkit.shim)
    assert runtime["options"]["SystemdCgroup"] is True  # carried over from runc
    assert cri["containerd"]["default_runtime_name"] == "container-hooks-runtime"
    assert cri["sandbox_image"] == "registry.example.internal/pause:3.9"
    assert cri["restrict_oom_score_adj"] is True
    assert cri["containerd"]["runtimes"]["runc"] == before["plugins"][CRI]["containerd"]["runtimes"]["runc"]

    # containerd starts on the configured file and runs a container through the shim
    log = tmp_path / "hook.log"
    toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
    with start_containerd(binary, config, state, env=toolkit.env()) as engine:
        done = engine.ctr("run", "--rm", "--runc-binary", str(toolkit.shim), "--rootfs", str(busybox_rootfs),
                          "hooked", "/bin/echo", "hello")  # fmt: skip
        assert done.stdout == "hello\n"
    assert log.read_text() == "fired\n"

    ctk(toolkit, "runtime", "unconfigure", "--runtime=containerd", f"--config={config}")
    assert config.read_text() == original
    assert dumped(config) == before


def test_an_imports_drop_in_would_lose_the_cri_plugin_settings(tmp_path: Path) -> None:
    """Why configure edits the main file: containerd 1.x replaces a plugin table from an import (containerd#5837)."""
    require_binary("containerd")
    state = tmp_path / "state"  # never started: config dump only
    drop_in = tmp_path / "hooks.toml"
    drop_in.write_text(
        f'version = 2\n[plugins."{CRI}".containerd.runtimes.container-hooks-runtime]\n'
        '  runtime_type = "io.containerd.runc.v2"\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(f'imports = ["{drop_in}"]\n' + containerd_paths_toml(state) + USER_SETTINGS)
    cri = dumped(config)["plugins"][CRI]
    version = subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=True).stdout
    if " 1." in version:
        assert cri["sandbox_image"] != "registry.example.internal/pause:3.9"  # the trap, as seen on 1.6
        assert "runc" not in cri["containerd"]["runtimes"] or "options" not in cri["containerd"]["runtimes"]["runc"]
