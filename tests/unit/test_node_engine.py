"""The node installer's reading of engine output: the runtime handler in an effective config, its fingerprint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chts.errors import ToolkitError
from chts.node.engine import (
    container_check,
    digest,
    engine_older_than_config,
    handler_binary,
    require_handler,
    runtime_argv,
)
from chts.node.host import LAYOUTS, HostRoot
from chts.node.probe import probe_hook

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


def fake_proc(root: Path, pid: int, started_ticks: int, boot: int) -> None:
    """/proc/PID/stat (field 22: start time in clock ticks since boot; a command name with a space) and btime."""
    (root / "proc" / str(pid)).mkdir(parents=True)
    fields = ["S"] + ["0"] * 18 + [str(started_ticks)] + ["0"] * 30
    (root / "proc" / str(pid) / "stat").write_text(f"{pid} (containerd x) " + " ".join(fields) + "\n")
    (root / "proc" / "stat").write_text(f"cpu 1 2 3\nbtime {boot}\nprocesses 9\n")


def test_an_engine_older_than_its_config_files_is_told(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    boot, tick = 1_700_000_000, os.sysconf("SC_CLK_TCK")
    fake_proc(tmp_path, 4242, started_ticks=100 * tick, boot=boot)  # started at boot + 100 s
    config = tmp_path / "etc/containerd/config.toml"
    drop_in = tmp_path / "etc/containerd/conf.d/99-container-hooks.toml"
    drop_in.parent.mkdir(parents=True)
    config.write_text("version = 2\n")
    drop_in.write_text("version = 2\n")
    for path in (config, drop_in):
        os.utime(path, (boot + 50, boot + 50))
    dump = f'version = 2\nimports = ["/etc/containerd/config.toml", "/etc/containerd/conf.d/{drop_in.name}"]\n'
    assert engine_older_than_config(host, CONTAINERD, dump, 4242) is None
    os.utime(drop_in, (boot + 100.5, boot + 100.5))  # within the second /proc's boot time leaves uncertain
    assert engine_older_than_config(host, CONTAINERD, dump, 4242) is None
    os.utime(drop_in, (boot + 160, boot + 160))
    assert engine_older_than_config(host, CONTAINERD, dump, 4242) == (
        f"containerd (PID 4242) started before /etc/containerd/conf.d/{drop_in.name} last changed"
    )
    assert engine_older_than_config(host, CONTAINERD, dump, 0) is None  # systemd knows no main PID
    assert engine_older_than_config(host, CONTAINERD, dump, 4243) is None  # no such process


def test_the_engine_is_configured_through_its_drop_in_by_the_installed_ctk(tmp_path: Path) -> None:
    host = HostRoot(str(tmp_path))
    (tmp_path / "etc/crio/crio.conf.d").mkdir(parents=True)
    assert runtime_argv(host, CRIO, "/opt/container-hooks", "container-hooks-runtime", True, True) == [
        "/opt/container-hooks/bin/container-hooks-ctk", "runtime", "configure", "--runtime=crio",
        "--config=/etc/crio/crio.conf", "--runtime-name=container-hooks-runtime",
        "--runtime-path=/opt/container-hooks/bin/container-hooks-runtime", "--drop-in-dir=/etc/crio/crio.conf.d",
        "--set-as-default",
    ]  # fmt: skip
    unconfigure = runtime_argv(host, CONTAINERD, "/opt/container-hooks", "container-hooks-runtime", True, False)
    assert unconfigure[2:4] == ["unconfigure", "--runtime=containerd"]
    assert unconfigure[-1] == "--drop-in" and "--set-as-default" not in unconfigure


def check_report(*checks: tuple[str, str, str]) -> str:
    return json.dumps({"passed": all(c[0] != "FAIL" for c in checks), "checks": [
        {"status": status, "subject": subject, "detail": detail} for status, subject, detail in checks
    ]})  # fmt: skip


def test_the_container_check_of_ctk_checks_json_report() -> None:
    """CRI-O nodes verify through `ctk check` as the host runs it: its JSON report, not a line of its text."""
    ran = ("PASS", "container", "a container ran through /opt/x/bin/container-hooks-runtime; its probe fired")
    report = check_report(("PASS", "config", "/etc/container-hooks/config.toml"), ran, ("PASS", "engines", "ok"))
    assert container_check(report, "ctk check") == f"PASS  container: {ran[2]}"
    with pytest.raises(ToolkitError, match=r"^`ctk check` failed: hooks: bad; engines: worse$"):
        container_check(check_report(ran, ("FAIL", "hooks", "bad"), ("FAIL", "engines", "worse")), "ctk check")
    with pytest.raises(ToolkitError, match="ran no container through the shim: no low-level runtime"):
        container_check(check_report(("SKIP", "container", "no low-level runtime")), "ctk check")
    with pytest.raises(ToolkitError, match="ran no container through the shim: it has no container check"):
        container_check(check_report(("PASS", "config", "x")), "ctk check")
    for garbage in ("PASS  container: text, not JSON", "{}", '{"checks": [{"status": "PASS"}]}'):
        with pytest.raises(ToolkitError, match="did not answer with its JSON report"):
            container_check(garbage, "ctk check")
