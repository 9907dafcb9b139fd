"""The node installer's reading of engine output: the runtime handler in an effective config, its fingerprint."""

from __future__ import annotations

import pytest

from chts.errors import ToolkitError
from chts.node_engine import digest, handler_binary, probe_hook, require_handler
from chts.node_host import LAYOUTS

CONTAINERD = next(layout for layout in LAYOUTS if layout.engine == "containerd" and layout.layout == "plain")
CRIO = next(layout for layout in LAYOUTS if layout.engine == "crio")

DUMP = """\
version = 2
imports = ["{first}", "{second}"]
[plugins]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.container-hooks-runtime]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.container-hooks-runtime.options]
      BinaryName = "/opt/container-hooks/bin/container-hooks-runtime"
"""


def test_handler_in_a_containerd_dump() -> None:
    dump = DUMP.format(first="/etc/containerd/config.toml", second="/etc/containerd/conf.d/99-container-hooks.toml")
    shim = "/opt/container-hooks/bin/container-hooks-runtime"
    assert handler_binary(dump, CONTAINERD, "container-hooks-runtime") == shim
    assert handler_binary(dump, CONTAINERD, "runc") is None  # no BinaryName: containerd's own runc
    assert handler_binary(dump, CONTAINERD, "kata") is None
    with pytest.raises(ToolkitError, match="effective configuration has no runtime 'kata'"):
        require_handler(dump, CONTAINERD, "kata", shim)
    with pytest.raises(ToolkitError, match="runtime 'container-hooks-runtime' runs /opt/container-hooks/bin/cont"):
        require_handler(dump, CONTAINERD, "container-hooks-runtime", "/usr/bin/container-hooks-runtime")


def test_handler_in_crio_config() -> None:
    config = '[crio.runtime.runtimes.container-hooks-runtime]\nruntime_path = "/opt/x"\n'
    assert handler_binary(config, CRIO, "container-hooks-runtime") == "/opt/x"


def test_fingerprint_ignores_the_order_containerd_prints_imports_in() -> None:
    """`containerd config dump` (1.6) prints imports in a varying order: that must not look like a change."""
    one = DUMP.format(first="/etc/containerd/config.toml", second="/etc/containerd/conf.d/a.toml")
    other = DUMP.format(first="/etc/containerd/conf.d/a.toml", second="/etc/containerd/config.toml")
    assert digest(one) == digest(other)
    assert digest(one) != digest(one.replace("/opt/container-hooks", "/usr"))


def test_probe_hook_fires_only_for_its_own_token() -> None:
    hook = probe_hook("abc123")
    assert hook["when"] == {"annotations": {"^io[.]container-hooks[.]probe$": "^abc123$"}}
    assert hook["stages"] == ["prestart"]
