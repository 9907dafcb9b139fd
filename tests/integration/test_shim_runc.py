"""The built .pyz as a runc shim under real runc: hooks in all six stages, exit codes, errors, passthrough."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from conftest import CLEAN_PATH, ToolkitRoot, python_start, require, require_binary, require_root
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chts.shim.argv import INJECTING_COMMANDS, parse_runc_argv

pytestmark = pytest.mark.integration

STAGES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


@pytest.fixture(autouse=True)
def _needs_runc() -> None:
    require_root()
    require_binary("runc")


def stage_hooks(log: Path) -> Dict[str, List[Dict[str, Any]]]:
    """One hook per stage appending its stage name to ``log`` (visible in the container too)."""
    return {stage: [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {stage} >> {log}"]}] for stage in STAGES}


def share_into_container(bundle: Path, directory: Path) -> None:
    """Bind-mount ``directory`` at the same path, so hooks in the container's namespaces can log."""
    spec = json.loads((bundle / "config.json").read_text())
    spec["mounts"].append(
        {"destination": str(directory), "type": "bind", "source": str(directory), "options": ["rbind", "rw"]}
    )
    (bundle / "config.json").write_text(json.dumps(spec, indent="\t"))


def runc_state(tmp_path: Path) -> List[str]:
    return ["--root", str(tmp_path / "runc-state")]


def wait_until_stopped(state: List[str], container: str) -> None:
    for _ in range(200):
        result = subprocess.run(
            ["runc", *state, "state", container], capture_output=True, text=True, env={"PATH": CLEAN_PATH}
        )
        if json.loads(result.stdout)["status"] == "stopped":
            return
        time.sleep(0.02)
    raise AssertionError(f"{container} did not stop")


def fired(log: Path) -> List[str]:
    return log.read_text().split() if log.exists() else []


def six_stage_bundle(toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path) -> Tuple[Path, Path]:
    """(bundle, log): a hook per stage logging to a directory shared with the container."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "fired"
    toolkit.write_hooks(stage_hooks(log))
    bundle = make_bundle(["/bin/true"])
    share_into_container(bundle, logs)
    return bundle, log


def test_run_fires_every_stage_exactly_once(toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path) -> None:
    bundle, log = six_stage_bundle(toolkit, make_bundle, tmp_path)
    result = toolkit.run_shim([*runc_state(tmp_path), "run", "--bundle", str(bundle), "six-stages"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert sorted(fired(log)) == sorted(STAGES)
    assert "injected 6 hook(s)" in toolkit.log.read_text()
    assert "id=six-stages" in toolkit.log.read_text()


def test_create_start_delete_fires_every_stage_once(toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path) -> None:
    bundle, log = six_stage_bundle(toolkit, make_bundle, tmp_path)
    state = runc_state(tmp_path)
    # Docker's argv: global flags, cwd = bundle, --log in JSON
    docker_flags = [*state, "--log", str(bundle / "log.json"), "--log-format", "json"]
    steps = [
        ["create", "--bundle", str(bundle), "--pid-file", str(bundle / "init.pid"), "c1"],
        ["start", "c1"],
    ]
    for step in steps:
        result = toolkit.run_shim([*docker_flags, *step], cwd=bundle)
        assert result.returncode == 0, (step, result.stderr)
        assert result.stdout == ""
    wait_until_stopped(state, "c1")
    result = toolkit.run_shim([*docker_flags, "delete", "c1"], cwd=bundle)
    assert result.returncode == 0, result.stderr
    assert fired(log).count("poststop") == 1
    assert sorted(fired(log)) == sorted(STAGES)


def test_exit_status_comes_back_unchanged(toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path) -> None:
    toolkit.write_hooks({"poststop": [{"path": "/bin/true"}]})
    bundle = make_bundle(["/bin/sh", "-c", "exit 7"])
    result = toolkit.run_shim([*runc_state(tmp_path), "run", "-b", str(bundle), "exit7"])
    assert result.returncode == 7


def test_existing_prestart_hook_stays_first_and_second_create_changes_nothing(
    toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path
) -> None:
    setkey = {"path": "/bin/true", "args": ["libnetwork-setkey", "-exec-root=/var/run/docker", "abc", "def"]}
    log = tmp_path / "fired"
    toolkit.write_hooks({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo mine >> {log}"]}]})
    bundle = make_bundle(["/bin/true"], hooks={"prestart": [setkey]}, indent=None)
    original = json.loads((bundle / "config.json").read_text())
    state = runc_state(tmp_path)
    assert toolkit.run_shim([*state, "create", "--bundle", str(bundle), "first"]).returncode == 0
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["hooks"]["prestart"][0] == setkey
    assert [hook["path"] for hook in spec["hooks"]["prestart"]] == ["/bin/true", "/bin/sh"]
    # lossless: everything else as it was, in the same order; the record of what was added, beside it
    assert list(spec) == list(original)
    assert {k: v for k, v in spec.items() if k != "hooks"} == {k: v for k, v in original.items() if k != "hooks"}
    record = (bundle / "container-hooks.injected").read_bytes()
    assert record.endswith(b"\n" + (bundle / "config.json").read_bytes())
    assert json.loads(record.split(b"\n")[1]) == [["prestart", spec["hooks"]["prestart"][1]]]
    assert "\n" not in (bundle / "config.json").read_text().strip()  # compact stays compact
    written = (bundle / "config.json").stat()
    assert toolkit.run_shim([*state, "delete", "--force", "first"]).returncode == 0
    assert toolkit.run_shim([*state, "create", "--bundle", str(bundle), "second"]).returncode == 0
    again = (bundle / "config.json").stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert toolkit.run_shim([*state, "delete", "--force", "second"]).returncode == 0
    assert fired(log) == ["mine", "mine"]


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ('{"prestart": [', "invalid JSON"),
        ("", "empty file"),
        ('{"prestart": [{"path": "relative/hook"}]}', "must be absolute"),
        ('{"prestrat": []}', "unknown stage 'prestrat'"),
        ('{"poststop": [{"path": "/bin/true", "timeout": 0}]}', "timeout"),
        ('{"poststop": [{"path": "/bin/true", "timeout": 9223372036854775808}]}', "from 1 to 9223372036"),
    ],
)
def test_create_with_unusable_hooks_fails_in_one_line_and_leaves_the_bundle(
    toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path, hooks: str, message: str
) -> None:
    toolkit.write_hooks(hooks)
    bundle = make_bundle(["/bin/true"])
    before = (bundle / "config.json").read_bytes()
    runc_log = bundle / "log.json"
    state = runc_state(tmp_path)
    result = toolkit.run_shim(
        [*state, "--log", str(runc_log), "--log-format", "json", "create", "-b", str(bundle), "bad"]
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"container-hooks-runtime: {toolkit.hooks}")
    assert message in lines[0]
    logged = [json.loads(line) for line in runc_log.read_text().splitlines()]
    assert logged[-1]["level"] == "error"
    assert logged[-1]["msg"] == lines[0]
    assert (bundle / "config.json").read_bytes() == before
    listed = subprocess.run(["runc", *state, "list", "-q"], capture_output=True, text=True, env={"PATH": CLEAN_PATH})
    assert "bad" not in listed.stdout.split()


def test_passthrough_survives_broken_toolkit_files(toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path) -> None:
    toolkit.write_hooks({"poststop": [{"path": "/bin/true"}]})
    bundle = make_bundle(["/bin/sleep", "30"])
    state = runc_state(tmp_path)
    assert toolkit.run_shim([*state, "create", "-b", str(bundle), "victim"]).returncode == 0
    toolkit.write_hooks("{broken")
    toolkit.config.write_text("[container-hooks\n")
    result = toolkit.run_shim([*state, "state", "victim"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "victim"  # stdout is runc's own, parseable
    assert toolkit.run_shim([*state, "kill", "victim", "9"]).returncode == 0
    assert toolkit.run_shim([*state, "delete", "--force", "victim"]).returncode == 0
    # ...while a create reports the broken config
    result = toolkit.run_shim([*state, "create", "-b", str(bundle), "next"])
    assert result.returncode == 1
    assert str(toolkit.config) in result.stderr and "invalid TOML" in result.stderr


def test_runtime_not_found_is_one_clear_line(toolkit: ToolkitRoot, tmp_path: Path) -> None:
    toolkit.write_config(extra_runtime='runtimes = ["no-such-runc", "/nowhere/runc"]')
    result = toolkit.run_shim(["--root", str(tmp_path), "state", "x"])
    assert result.returncode == 1
    assert "no low-level runtime found: tried no-such-runc, /nowhere/runc" in result.stderr


def test_shim_never_execs_itself(toolkit: ToolkitRoot, tmp_path: Path) -> None:
    """A runtimes list naming the shim itself (found on PATH, or by a link) must not loop."""
    link = tmp_path / "runc-link"
    link.symlink_to(toolkit.shim)
    toolkit.write_config(extra_runtime=f'runtimes = ["container-hooks-runtime", "{link}", "runc"]')
    env = toolkit.env(PATH=f"{toolkit.bin}:{CLEAN_PATH}")
    result = subprocess.run([str(toolkit.shim), "--version"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("runc version")


# Passthrough is byte-identical: any argv (bytes, not only UTF-8) whose first word is not an
# injecting command reaches the runtime exactly as given. The runtime here records its argv.
argument = st.binary(min_size=0, max_size=10).filter(lambda b: b"\0" not in b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(argument, max_size=6), st.sampled_from([b"state", b"delete", b"kill", b"--root", b"-x", b"exec"]))
def test_passthrough_argv_is_byte_identical(
    toolkit: ToolkitRoot, tmp_path: Path, args: List[bytes], first: bytes
) -> None:
    record = tmp_path / "argv"
    recorder = tmp_path / "recorder"
    recorder.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > {record}\n")
    recorder.chmod(0o755)
    toolkit.write_config(extra_runtime=f'runtimes = ["{recorder}"]')
    argv = [first, *args]
    if parse_runc_argv([arg.decode("utf-8", "surrogateescape") for arg in argv]).command in INJECTING_COMMANDS:
        return
    env = {k.encode(): v.encode() for k, v in toolkit.env().items()}
    subprocess.run([os.fsencode(str(toolkit.shim)), *argv], env=env, check=True, capture_output=True)
    assert record.read_bytes().split(b"\0")[:-1] == argv


def test_pyz_runs_on_every_python(toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path, pyz: Path) -> None:
    """The one file, on every interpreter from 3.8 to 3.13 (pyenv's, as on the dev machines)."""
    pythons = sorted(Path("/root/.pyenv/versions").glob("3.*/bin/python3"))
    versions = {p.parent.parent.name.rsplit(".", 1)[0] for p in pythons}
    wanted = {f"3.{minor}" for minor in range(8, 14)}
    require(wanted <= versions, f"pyenv Pythons {sorted(wanted - versions)} are missing")
    log = tmp_path / "fired"
    toolkit.write_hooks({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo $0 >> {log}", "hook"]}]})
    program = python_start(pyz)
    for python in pythons:
        version = python.parent.parent.name.rsplit(".", 1)[0]
        if version not in wanted:
            continue
        # Python as chts/start.sh would run it with this interpreter (a cache miss, then a hit),
        # and `python x.pyz` through runpy.
        starts = {
            "program": [str(python), *program],
            "again": [str(python), *program],
            "runpy": [str(python)],
        }
        for how, start in starts.items():
            bundle = make_bundle(["/bin/true"], name=f"bundle-{version}-{how}")
            result = subprocess.run(
                [*start, str(pyz), "runtime", *runc_state(tmp_path), "run", "-b", str(bundle), f"py{version}-{how}"],
                env=toolkit.env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, (version, how, result.stderr)
            ctk = subprocess.run([*start, str(pyz), "ctk", "--version"], capture_output=True, text=True, timeout=60)
            assert ctk.returncode == 0 and "container-hooks-ctk" in ctk.stdout, (version, how, ctk.stderr)
        tag = f"cpython-{version.replace('.', '')}"
        assert any(path.name.startswith(f"code-{tag}-") for path in toolkit.cache.iterdir()), version
    assert len(fired(log)) == 3 * len(wanted)


def test_recreating_a_bundle_replaces_the_hooks_added_before(
    toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path
) -> None:
    """Podman (restart) and runc users create a bundle again: the hooks of the config as it is now
    run, once; a hook whose args or timeout changed is not doubled, a removed one does not run."""
    log = tmp_path / "fired"
    setkey = {"path": "/bin/true", "args": ["libnetwork-setkey", "abc"]}

    def hook(label: str, timeout: int) -> Dict[str, Any]:
        return {"path": "/bin/sh", "args": ["sh", "-c", f"echo {label} >> {log}"], "timeout": timeout}

    toolkit.write_hooks({"prestart": [hook("audit-v1", 5)], "poststop": [hook("cleanup", 5)]})
    bundle = make_bundle(["/bin/true"], hooks={"prestart": [setkey]})
    state = runc_state(tmp_path)
    assert toolkit.run_shim([*state, "run", "--bundle", str(bundle), "first"]).returncode == 0
    assert fired(log) == ["audit-v1", "cleanup"]
    toolkit.write_hooks({"prestart": [hook("audit-v2", 9)]})  # args and timeout changed, poststop removed
    result = toolkit.run_shim([*state, "run", "--bundle", str(bundle), "second"])
    assert result.returncode == 0, result.stderr
    assert fired(log) == ["audit-v1", "cleanup", "audit-v2"]
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["hooks"]["prestart"] == [setkey, hook("audit-v2", 9)]
    assert spec["hooks"].get("poststop", []) == []


def test_a_forged_record_annotation_strips_no_hook_and_hooks_see_the_engines_annotations(
    toolkit: ToolkitRoot, make_bundle: Any, tmp_path: Path
) -> None:
    """Whoever sets annotations (`podman run --annotation`, `docker run --annotation`, pod
    annotations) names the engine's security hook as "added by the shim": it still runs, and
    the state each hook receives on stdin carries the engine's annotations, as with plain runc."""
    log = tmp_path / "fired"
    states = tmp_path / "states"
    states.mkdir()
    security = {"path": "/bin/sh", "args": ["sh", "-c", f"echo security >> {log}"]}
    forged = json.dumps([["createRuntime", security], ["prestart", security]])
    annotations = {"io.container-hooks.injected": forged, "org.example/team": "a"}
    toolkit.write_hooks({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {states}/shim"]}]})
    bundle = make_bundle(["/bin/true"], hooks={"createRuntime": [security]})
    spec = json.loads((bundle / "config.json").read_text())
    spec["annotations"] = annotations
    (bundle / "config.json").write_text(json.dumps(spec, indent="\t"))
    state = runc_state(tmp_path)
    for name in ("first", "again"):  # a second create of the same bundle (a Podman restart) too
        result = toolkit.run_shim([*state, "run", "--bundle", str(bundle), name])
        assert result.returncode == 0, result.stderr
    assert fired(log) == ["security", "security"]
    written = json.loads((bundle / "config.json").read_text())
    assert written["annotations"] == annotations
    assert written["hooks"]["createRuntime"] == [security]
    hook_state = json.loads((states / "shim").read_text())
    assert hook_state["annotations"] == annotations


# ----------------------------------------------------------------------------- argv as runc reads it
# The argv tables of the shim's unit tests, asked of the real runc: does it create a container?
# A createRuntime hook in the bundle tells (create, run); restore fails on CRIU only once it has
# read its argv. Options that runc 1.1 does not know but newer runc does ("--config",
# "--pidfd-socket") and restore's unknown options are left out: there the shim injects on purpose.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
from test_shim import (  # noqa: E402  (after the path)
    COMMAND_BOOLS,
    CREATES,
    DOCKER_ROOT,
    DOES_NOT_CREATE,
    GLOBAL_BOOLS,
    B,
    command_bool_cases,
    global_bool_cases,
)

NEWER_THAN_RUNC_1_1 = ("--config", "--pidfd-socket", "--some-criu-option", "0x1_0")
FAILED_AFTER_THE_ARGV = (
    b"CRIU",
    b"criu",
    b"systemd not running",
    b"console socket",
    b" failed: chdir ",
    b"unable to stat preserved-fd",  # --preserve-fds N read, but the test passes no fds beyond stderr
)


def runc_argv_cases() -> List[List[str]]:
    cases = [*CREATES, *DOES_NOT_CREATE, ["run", "-b", B, "--nope", "--"], ["restore", "-b", B, "--nope", "--"]]
    for name in GLOBAL_BOOLS:
        cases.extend(argv for argv, _ in global_bool_cases(("-" if len(name) == 1 else "--") + name))
    for command, names in COMMAND_BOOLS.items():
        for name in names:
            cases.extend(argv for argv, _ in command_bool_cases(command, name)[::3])  # before the id
    return [argv for argv in cases if not any(word in NEWER_THAN_RUNC_1_1 for word in argv)]


def test_the_shim_injects_exactly_when_runc_creates(make_bundle: Any, tmp_path: Path) -> None:
    made = tmp_path / "made"
    bundle = make_bundle(
        ["/bin/true"], hooks={"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo >> {made}"]}]}
    )
    state = runc_state(tmp_path)
    env = {"PATH": CLEAN_PATH}
    wrong = []
    for argv in runc_argv_cases():
        argv = [str(bundle) if word == B else word.replace(B, str(bundle)) for word in argv]
        argv = [str(tmp_path / "pid") if word == "/p" else word for word in argv]
        argv = [state[1] if word == DOCKER_ROOT[1] else word for word in argv]  # never the host's Docker
        made.unlink(missing_ok=True)
        # to files: a created container's init holds the pipes open
        with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
            subprocess.run(
                ["runc", *state, *argv], cwd=bundle, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        # runc read the argv and went on to fail for a reason of this host: no CRIU (restore always
        # fails here), no checkpoint, no systemd, no console socket, no bundle "-x", no preserved fds
        failed_after = any(reason in (tmp_path / "err").read_bytes() for reason in FAILED_AFTER_THE_ARGV)
        created = made.exists() or failed_after
        listed = subprocess.run(["runc", *state, "list", "-q"], capture_output=True, text=True, env=env)
        for container in listed.stdout.split():
            subprocess.run(["runc", *state, "delete", "--force", "--", container], capture_output=True, env=env)
        if parse_runc_argv(argv).creates != created:
            wrong.append((argv, created, (tmp_path / "err").read_text(errors="replace")[-200:]))
    assert not wrong, "\n".join(map(repr, wrong))
