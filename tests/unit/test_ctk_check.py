"""container-hooks-ctk check without a container: installation, config, hooks, runtime and engine findings."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, List

import pytest
from conftest import require_binary
from ctk_cli import run_ctk
from engine_cases import fake_binary

from chts.base.runtime_lookup import find_runtime
from chts.node.probe import is_static_elf

NAMES = ("container-hooks-runtime", "container-hooks-ctk", "container-hooks")


class Host:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.bin = base / "bin"
        self.bin.mkdir()
        self.config = base / "config.toml"
        self.hooks = base / "hooks.json"
        self.engines = base / "engines"
        self.engines.mkdir()
        self.write_config()

    def write_config(self, extra: str = "", runtime: str = "") -> None:
        self.config.write_text(
            f'[container-hooks]\npath = "{self.hooks}"\nhooks-dirs = []\n{extra}\n'
            f'[container-hooks-runtime]\ndebug = ""\n{runtime}\n'
        )

    def install_names(self, target: str = "toolkit.pyz") -> None:
        (self.bin / "toolkit.pyz").write_text("#!/bin/sh\n")
        (self.bin / "toolkit.pyz").chmod(0o755)
        for name in NAMES:
            (self.bin / name).symlink_to(target)

    def check(self, capsys: Any, *extra: str) -> tuple[int, List[str]]:
        engines = [
            f"--{engine}-config={self.engines / engine / 'config'}"
            for engine in ("docker", "containerd", "crio", "podman")
        ]
        status, out, err = run_ctk(
            capsys,
            "check",
            "--no-container",
            "--config-source=file",
            "--dest",
            str(self.bin),
            "--config",
            str(self.config),
            *engines,
            *extra,
        )
        assert err == ""
        return status, out.splitlines()


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def lines_about(lines: List[str], subject: str) -> List[str]:
    return [line for line in lines if line.split(None, 1)[1].startswith(f"{subject}:")]


def test_a_sound_host_passes(capsys: Any, host: Host) -> None:
    host.install_names()
    host.hooks.write_text(json.dumps({"prestart": [{"path": "/bin/true"}]}))
    status, lines = host.check(capsys)
    assert status == 0, lines
    assert lines_about(lines, "installation")[0].startswith("PASS  installation: ")
    assert lines_about(lines, "config") == [f"PASS  config: {host.config}"]
    assert lines_about(lines, "hooks") == ["PASS  hooks: 1 hook(s) from 1 source(s), all valid"]
    assert lines_about(lines, "low-level runtime")[0].startswith("PASS  low-level runtime: the shim would exec /")
    assert lines_about(lines, "container") == ["SKIP  container: --no-container"]
    assert lines[-1] == "check: passed"


def test_json_format_says_the_same_checks_in_one_document(capsys: Any, host: Host) -> None:
    """What programs read (the node installer's verify on CRI-O): every finding, and the outcome."""
    host.install_names()
    host.hooks.write_text(json.dumps({"prestart": [{"path": "/bin/true"}]}))
    _, text_lines = host.check(capsys)
    status, lines = host.check(capsys, "--format=json")
    assert status == 0 and len(lines) == 1
    document = json.loads(lines[0])
    assert document["passed"] is True
    shown = [f"{c['status']:<4}  {c['subject']}: {c['detail']}" for c in document["checks"]]
    assert shown == text_lines[:-1]  # the same findings, without the closing line
    host.config.write_text("[container-hooks]\npath = 1\n")
    status, lines = host.check(capsys, "--format=json")
    document = json.loads(lines[0])
    assert status == 1 and document["passed"] is False
    assert [c["subject"] for c in document["checks"] if c["status"] == "FAIL"] == ["config"]


def test_not_installed_is_a_warning(capsys: Any, host: Host) -> None:
    status, lines = host.check(capsys)
    assert status == 0
    assert lines_about(lines, "installation")[0].startswith("WARN  installation: none of container-hooks-runtime")


def test_partial_or_split_installation_fails(capsys: Any, host: Host) -> None:
    host.install_names()
    (host.bin / "container-hooks").unlink()
    status, lines = host.check(capsys)
    assert status == 1 and "FAIL  installation: missing in" in lines_about(lines, "installation")[0]
    shutil.copy(host.bin / "toolkit.pyz", host.bin / "container-hooks")
    status, lines = host.check(capsys)
    assert status == 1 and "the three names are not one file" in lines_about(lines, "installation")[0]
    assert lines[-1] == "check: FAILED"


def test_broken_config_fails(capsys: Any, host: Host) -> None:
    host.config.write_text("[container-hooks]\npath = 1\n")
    status, lines = host.check(capsys)
    assert status == 1
    assert lines_about(lines, "config") == [
        f"FAIL  config: {host.config}: [container-hooks] path must be a string "
        "(the shim fails every create until this is fixed)"
    ]
    os.chmod(host.config, 0o666)
    status, lines = host.check(capsys)
    assert status == 1 and "writable by group and others" in lines_about(lines, "config")[0]


def test_hook_problems(capsys: Any, host: Host) -> None:
    host.hooks.write_text('{"prestart": [{"path": "rel"}, {"path": "/x", "timeout": 0}]}')
    status, lines = host.check(capsys)
    hooks = lines_about(lines, "hooks")
    assert status == 1 and len(hooks) == 2 and all(line.startswith("FAIL") for line in hooks)
    assert "every create fails (on-error = fail)" in hooks[0]
    host.write_config(extra='on-error = "skip"')
    status, lines = host.check(capsys)
    assert status == 0 and all(line.startswith("WARN") for line in lines_about(lines, "hooks"))
    host.write_config()
    host.hooks.write_text('{"poststop": [{"path": "/no/such/hook"}]}')
    status, lines = host.check(capsys)
    assert status == 1
    assert lines_about(lines, "hooks") == [
        f"FAIL  hooks: {host.hooks}: poststop hook /no/such/hook does not exist: "
        "runc fails every container it applies to"
    ]


def test_a_file_skipped_whatever_on_error_says_is_a_warning(capsys: Any, host: Host, tmp_path: Path) -> None:
    hooks_d = tmp_path / "hooks.d"
    hooks_d.mkdir()
    legacy = hooks_d / "oci-register.json"
    legacy.write_text(json.dumps({"hook": "/bin/true", "stages": ["prestart"]}))  # 0.1.0, no condition
    host.config.write_text(host.config.read_text().replace("hooks-dirs = []", f'hooks-dirs = ["{hooks_d}"]'))
    host.install_names()
    status, lines = host.check(capsys)
    assert status == 0, lines
    assert lines_about(lines, "hooks") == [
        f"WARN  hooks: {legacy}: no cmds, annotations or hasbindmounts: Podman never injects such a 0.1.0 hook, "
        "nor does this toolkit (this file is skipped whatever on-error says); every create warns about it"
    ]


def test_no_runtime_fails(capsys: Any, host: Host) -> None:
    host.write_config(runtime='runtimes = ["/no/such/runc", "no-such-runc"]')
    status, lines = host.check(capsys)
    assert status == 1
    assert lines_about(lines, "low-level runtime")[0].startswith("FAIL  low-level runtime: none of /no/such/runc")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_engines_configured_for_the_shim(capsys: Any, host: Host) -> None:
    shim = host.bin / "container-hooks-runtime"
    host.install_names()
    write(
        host.engines / "docker" / "config",
        json.dumps({"runtimes": {"hooks": {"path": str(shim)}}, "default-runtime": "hooks"}),
    )
    write(
        host.engines / "containerd" / "config",
        f'version = 2\nimports = ["{host.engines}/containerd/conf.d/*.toml"]\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nBinaryName = "/usr/sbin/runc"\n',
    )
    write(  # containerd 1.x: this import's CRI table replaces the main file's (runc included)
        host.engines / "containerd" / "conf.d" / "hooks.toml",
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hooks.options]\n'
        f'BinaryName = "{host.bin}/container-hooks-runtime"\n',
    )
    write(host.engines / "podman" / "config", f'[engine.runtimes]\nhooks = ["/nowhere/x", "{shim}"]\n')
    write(host.engines / "crio" / "config", '[crio.runtime]\ndefault_runtime = "runc"\n')
    write(
        host.engines / "crio" / "crio.conf.d" / "99-hooks.conf",
        f'[crio.runtime]\ndefault_runtime = "hooks"\n[crio.runtime.runtimes.hooks]\nruntime_path = "{shim}"\n',
    )
    status, lines = host.check(capsys)
    assert status == 0, lines
    docker = lines_about(lines, "docker")
    seen = "seen by file"  # unit tests read the files: no engine binary is asked
    assert len(docker) == 1
    assert docker[0].startswith(
        f"PASS  docker: runtime 'hooks' runs {shim}; the default ({host.engines}/docker/config, {seen})"
    )
    assert docker[0].endswith(f"; the shim execs {find_runtime(['runc', 'docker-runc'], str(shim))}")
    assert lines_about(lines, "containerd")[0].startswith(
        f"PASS  containerd: runtime 'hooks' runs {shim}; not the default"
    )
    assert lines_about(lines, "podman")[0].startswith(f"PASS  podman: runtime 'hooks' runs {shim}; not the default")
    assert lines_about(lines, "crio")[0].startswith(f"PASS  crio: runtime 'hooks' runs {shim}; the default")
    assert not lines_about(lines, "engines")


def test_the_binary_configure_chained_to_is_shown_and_a_missing_one_warned(capsys: Any, host: Host) -> None:
    shim = host.bin / "container-hooks-runtime"
    host.install_names()
    config = host.engines / "docker" / "config"
    write(config, json.dumps({"runtimes": {"hooks": {"path": str(shim)}}, "default-runtime": "hooks"}))
    runc = find_runtime(["runc"], str(shim))
    records = Path(f"{host.config}.chains.json")
    records.write_text(json.dumps({f"docker:{config}": {"runtime": runc}}))
    host.write_config(runtime=f'runtimes = ["{runc}"]\n')
    status, lines = host.check(capsys)
    assert lines_about(lines, "docker")[0].endswith(
        f"the shim execs {runc}, as docker's default runtime did before configure"
    )
    records.write_text(json.dumps({f"docker:{config}": {"runtime": "/usr/libexec/crio/gone"}}))
    status, lines = host.check(capsys)
    line = lines_about(lines, "docker")[0]
    assert line.startswith("WARN  docker:") and "not /usr/libexec/crio/gone that docker's default ran" in line


def test_engines_not_configured_broken_or_pointing_nowhere(capsys: Any, host: Host) -> None:
    write(host.engines / "docker" / "config", '{"runtimes": {"x": {"path": "/usr/bin/container-hooks-runtime-gone"}}}')
    write(host.engines / "containerd" / "config", "version = [")
    write(host.engines / "podman" / "config", '[engine.runtimes]\nx = ["/nowhere/container-hooks-runtime"]\n')
    status, lines = host.check(capsys)
    assert status == 1
    docker = lines_about(lines, "docker")[0]
    assert docker.startswith(f"WARN  docker: {host.engines}/docker/config (seen by file): no runtime runs the shim")
    assert lines_about(lines, "containerd")[0].startswith("WARN  containerd: cannot tell: ")
    assert "invalid TOML" in lines_about(lines, "containerd")[0]
    assert lines_about(lines, "crio")[0].startswith("SKIP  crio: no ")
    podman = lines_about(lines, "podman")[0]
    assert podman.startswith(
        "FAIL  podman: runtime 'x' runs /nowhere/container-hooks-runtime, which is not an executable"
    )
    assert not lines_about(lines, "engines")  # podman is configured, if wrongly
    (host.engines / "podman" / "config").unlink()
    status, lines = host.check(capsys)
    assert lines_about(lines, "engines") == ["WARN  engines: no engine on this host is configured to use the shim yet"]


def test_quiet_prints_failures_only(capsys: Any, host: Host) -> None:
    host.write_config(runtime='runtimes = ["/no/such/runc"]')
    status, out, _ = run_ctk(
        capsys, "-q", "check", "--no-container", "--dest", str(host.bin), "--config", str(host.config)
    )
    assert status == 1 and [line[:4] for line in out.splitlines()] == ["FAIL"]


def test_static_elf_detection() -> None:
    assert not is_static_elf("/bin/sh")  # dynamically linked on every host this runs on
    assert not is_static_elf(__file__)
    assert is_static_elf(require_binary("busybox"))  # CI installs busybox-static


def test_help_has_examples(capsys: Any) -> None:
    status, out, _ = run_ctk(capsys, "check", "--help")
    assert status == 0 and "examples:" in out and "--docker-config" in out


def test_a_runtime_hidden_by_an_import_is_not_reported_as_running(capsys: Any, host: Host) -> None:
    """check reads the effective configuration: on containerd 1.x an imported CRI table hides the main file's."""
    shim = host.bin / "container-hooks-runtime"
    host.install_names()
    cri = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
    write(
        host.engines / "containerd" / "config",
        f'version = 2\nimports = ["{host.engines}/containerd/conf.d/*.toml"]\n'
        f'{cri}.hooks]\nruntime_type = "io.containerd.runc.v2"\n{cri}.hooks.options]\nBinaryName = "{shim}"\n',
    )
    write(host.engines / "containerd" / "conf.d" / "99-nvidia.toml", f"version = 2\n{cri}.nvidia]\n")
    status, lines = host.check(capsys)
    assert lines_about(lines, "containerd")[0].startswith(
        f"WARN  containerd: {host.engines}/containerd/config (seen by file): no runtime runs the shim"
    )


def test_each_engine_shows_the_binary_its_containers_run(capsys: Any, host: Host, monkeypatch: Any) -> None:
    """Docker on runc keeps the plain name, Podman on crun gets container-hooks-runtime.crun (issue 21):
    check names, per engine, the binary the shim execs for it, and fails an engine whose chain is broken."""
    host.install_names()
    shim = host.bin / "container-hooks-runtime"
    runc = fake_binary(host.base / "path", monkeypatch, "runc", 'echo "runc version 9.9-fake"\n')
    crun = host.base / "crun"
    crun.write_text('#!/bin/sh\necho "crun version 8.8-fake"\n')
    crun.chmod(0o755)
    write(host.engines / "docker" / "config", "{}\n")
    write(host.engines / "podman" / "config", f'[engine]\nruntime = "crun"\n[engine.runtimes]\ncrun = ["{crun}"]\n')
    for engine in ("podman", "docker"):
        status, _, err = run_ctk(
            capsys, "runtime", "configure", f"--runtime={engine}", f"--config={host.engines / engine / 'config'}",
            f"--runtime-path={shim}", "--set-as-default", "--config-source=file", f"--toolkit-config={host.config}",
        )  # fmt: skip
        assert status == 0, err
    status, lines = host.check(capsys)
    assert status == 0, lines
    docker = lines_about(lines, "docker")[0]
    assert docker.startswith(f"PASS  docker: runtime 'container-hooks-runtime' runs {shim};")
    assert docker.endswith(f"the shim execs {runc}")
    podman = lines_about(lines, "podman")[0]
    assert podman.startswith(f"PASS  podman: runtime 'container-hooks-runtime' runs {shim}.crun;")
    assert podman.endswith(f"its containers run {crun} (crun version 8.8-fake), chained as crun")

    crun.unlink()
    status, lines = host.check(capsys)
    assert status == 1
    assert lines_about(lines, "podman")[0].startswith("FAIL  podman:")
    assert lines_about(lines, "podman")[0].endswith(
        f"its containers fail: {crun}, chained as crun, is not an executable file"
    )
    assert lines_about(lines, "docker")[0].startswith("PASS  docker:")
    host.write_config()  # the chains table gone
    status, lines = host.check(capsys)
    assert lines_about(lines, "podman")[0].endswith(
        f"its containers fail: {host.config} has no [container-hooks-runtime.chains] crun"
    )
