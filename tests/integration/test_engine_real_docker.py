"""Docker: configure daemon.json, reload dockerd by SIGHUP, and `docker run` through the shim."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import newer_engines
import pytest
from conftest import ToolkitRoot, record_hook, require
from daemons import Dockerd, dockerd

pytestmark = pytest.mark.integration

USER_SETTINGS = {
    "log-level": "info",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "runtimes": {"plain-runc": {"path": "/usr/sbin/runc", "runtimeArgs": ["--log-format", "text"]}},
    "default-runtime": "runc",
    "shutdown-timeout": 10,
}


def reloaded_by_ctk(toolkit: ToolkitRoot, engine: Dockerd, action: str, config: Path, *extra: str) -> str:
    """``runtime ACTION --runtime=docker --reload`` on ``config``; waits for dockerd's reload, returns stdout."""
    before = engine.reload_count()
    done = toolkit.run_ctk(
        ["runtime", action, "--runtime=docker", f"--config={config}", "--reload", f"--pid-file={engine.pid_file}",
         *extra]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    engine.wait_for_reload(before)
    return str(done.stdout)


def dockerd_binary(version: str) -> Optional[str]:
    """The dockerd of ``version``: "host" is Debian 12's (20.10), "26" trixie's (tests/newer_engines.py)."""
    if version == "host":
        return None
    tree = newer_engines.installed(f"dockerd-{version}")
    require(
        tree is not None, f"dockerd {version} is not fetched (python3 tests/newer_engines.py fetch dockerd-{version})"
    )
    assert tree is not None
    return str(tree / newer_engines.ENGINES[f"dockerd-{version}"].binary)


@pytest.mark.parametrize("version", ["host", "26"])
def test_configure_reload_run_unconfigure(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path, version: str
) -> None:
    """Docker 20.10 (Debian 12) and 26 (what nodes run today): configure, SIGHUP, `docker info` shows the
    runtime, `docker run` fires the hook, unconfigure gives every byte back."""
    config = tmp_path / "daemon.json"
    original = json.dumps(USER_SETTINGS, indent=4) + "\n"
    config.write_text(original)
    with dockerd(tmp_path, config_file=config, env=toolkit.env(), binary=dockerd_binary(version)) as engine:
        if version != "host":
            assert engine.docker("version", "--format", "{{.Server.Version}}").stdout.startswith(f"{version}.")
        image = engine.import_rootfs(busybox_rootfs)
        out = reloaded_by_ctk(
            toolkit, engine, "configure", config, f"--runtime-path={toolkit.shim}", "--set-as-default"
        )
        assert "SIGHUP" in out
        written = json.loads(config.read_text())
        assert written["runtimes"]["container-hooks-runtime"] == {"path": str(toolkit.shim)}
        assert {k: v for k, v in written.items() if k not in ("runtimes", "default-runtime")} == {
            k: v for k, v in USER_SETTINGS.items() if k not in ("runtimes", "default-runtime")
        }
        assert written["runtimes"]["plain-runc"] == USER_SETTINGS["runtimes"]["plain-runc"]  # type: ignore[index]
        assert list(written) == list(USER_SETTINGS)  # key order kept
        assert config.read_text().startswith('{\n    "log-level"')  # indentation kept
        runtimes = engine.runtimes()
        assert runtimes["default"] == "container-hooks-runtime"

        log = tmp_path / "hook.log"
        toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
        engine.docker("run", "--rm", "--network", "none", image, "true")
        assert log.read_text() == "fired\n"  # exactly once per container
        engine.docker("run", "--rm", "--network", "none", image, "true")
        assert log.read_text() == "fired\nfired\n"

        reloaded_by_ctk(toolkit, engine, "unconfigure", config)
        assert config.read_text() == original
        assert not Path(str(config) + ".container-hooks-state.json").exists()
        runtimes = engine.runtimes()
        assert runtimes["default"] == "runc"
        assert "container-hooks-runtime" not in runtimes["runtimes"]


# A site's daemon.json in the layouts re-serialising would destroy: compact, CRLF, an inline array, number
# spellings, escapes, and a runtime in Docker's documented containerd-shim form (no `path`), which
# dockerd 20.10 accepts and ignores.
ODD_DAEMON_JSON = (
    '{"log-level":"info","labels":["site=caf\\u00e9"],"shutdown-timeout":10,'
    '"runtimes":{"gvisor":{"runtimeType":"io.containerd.runsc.v1","options":{"TypeUrl":"x"}},'
    '"wrapped":{"path":"WRAPPER"}},"default-runtime":"wrapped"}\r\n'
)


def test_odd_layout_kept_and_the_shim_chains_to_the_old_default(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    """The default runtime was a wrapper around runc: after configure the shim execs that wrapper, not runc."""
    wrapper = tmp_path / "runc-wrapper"
    calls = tmp_path / "wrapper-calls"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec runc "$@"\n')
    wrapper.chmod(0o755)
    config = tmp_path / "daemon.json"
    original = ODD_DAEMON_JSON.replace("WRAPPER", str(wrapper))
    config.write_bytes(original.encode())
    toolkit_config = toolkit.config.read_text()
    with dockerd(tmp_path, config_file=config, env=toolkit.env()) as engine:
        image = engine.import_rootfs(busybox_rootfs)
        reloaded_by_ctk(toolkit, engine, "configure", config, f"--runtime-path={toolkit.shim}", "--set-as-default")
        wrapped = f'"wrapped":{{"path":"{wrapper}"}}'
        tagged = f"{toolkit.shim}.runc-wrapper"  # the shim's name for the wrapper (chts/ctk/chaining.py)
        expected = original.replace(wrapped, f'{wrapped},"container-hooks-runtime":{{"path":"{tagged}"}}')
        expected = expected.replace('"default-runtime":"wrapped"', '"default-runtime":"container-hooks-runtime"')
        assert config.read_bytes() == expected.encode()  # only our member and the default's value written
        info = engine.runtimes()
        assert info["default"] == "container-hooks-runtime"
        assert info["runtimes"]["container-hooks-runtime"]["path"] == tagged
        assert f'[container-hooks-runtime.chains]\nrunc-wrapper = "{wrapper}"\n' in toolkit.config.read_text()

        log = tmp_path / "hook.log"
        toolkit.write_hooks({"prestart": [record_hook(log, "fired")]})
        engine.docker("run", "--rm", "--network", "none", image, "true")
        assert log.read_text() == "fired\n"
        assert " create " in f" {calls.read_text()} "  # the shim exec'd the old default's binary

        reloaded_by_ctk(toolkit, engine, "unconfigure", config)
        assert config.read_bytes() == original.encode()
        assert engine.runtimes()["default"] == "wrapped"
        assert toolkit.config.read_text() == toolkit_config  # the chain taken back, byte for byte
        assert not os.path.lexists(tagged)


def test_docker_26_annotations_reach_the_hooks_as_docker_wrote_them(
    tmp_path: Path, toolkit: ToolkitRoot, busybox_rootfs: Path
) -> None:
    """`docker run --annotation` (Docker >= 24) sets the spec's annotations: one that looks like the
    record earlier versions kept there takes no hook out, and every hook's state carries exactly
    Docker's annotations, as with plain runc (Docker 26 from Debian trixie, tests/newer_engines.py)."""
    log = tmp_path / "hook.log"
    states = tmp_path / "states"
    states.mkdir()
    toolkit.write_hooks(
        {
            "prestart": [record_hook(log, "fired")],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {states}/s"]}],
        }
    )
    forged = json.dumps([["prestart", record_hook(log, "fired")], ["poststop", {"path": "/bin/true"}]])
    daemon_json = {"runtimes": {"container-hooks-runtime": {"path": str(toolkit.shim)}}}
    with dockerd(tmp_path, daemon_json, env=toolkit.env(), binary=dockerd_binary("26")) as engine:
        assert engine.docker("version", "--format", "{{.Server.Version}}").stdout.startswith("26.")
        image = engine.import_rootfs(busybox_rootfs)
        engine.docker(
            "run", "--rm", "--network", "none", "--runtime", "container-hooks-runtime",
            "--annotation", f"io.container-hooks.injected={forged}", "--annotation", "org.example/team=a",
            image, "true",
        )  # fmt: skip
        assert log.read_text() == "fired\n"
        state = json.loads((states / "s").read_text())
        assert state["annotations"] == {"io.container-hooks.injected": forged, "org.example/team": "a"}
