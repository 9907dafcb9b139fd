"""Drop-in hooks under real runc, through the built shim: conditional hooks fire only where they match.

Each container runs with `runc run` via container-hooks-runtime; hooks append a label to
a log file on the host, so what fired is read back from that file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import ToolkitRoot, record_hook, require_binary, require_root
from hook_scripts import write_precreate_script

pytestmark = pytest.mark.integration

# Run as `python -c PEAK_RSS FILE COMMAND...`: runs COMMAND with this process's stdio and writes the
# peak RSS (KiB) of COMMAND's process, across its exec of runc, or of any process it waited for.
PEAK_RSS = """\
import resource, subprocess, sys
status = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(status)
"""


class Scene:
    """A toolkit root with a hooks.d directory, a fired-hooks log and a runc state root."""

    def __init__(self, toolkit: ToolkitRoot, tmp_path: Path, make_bundle: Any) -> None:
        require_root()
        require_binary("runc")
        self.toolkit = toolkit
        self.make_bundle = make_bundle
        self.hooks_d = toolkit.base / "hooks.d"
        self.hooks_d.mkdir(mode=0o755)
        self.fired = tmp_path / "fired.log"
        self.fired.touch()
        self.runc_root = tmp_path / "runc-root"
        self.count = 0
        self.configure()

    def configure(self, extra: str = "") -> None:
        self.toolkit.write_config(extra=f'hooks-dirs = ["{self.hooks_d}"]\n{extra}')

    def dropin(self, name: str, label: str, when: Dict[str, Any], stages: List[str]) -> Path:
        path = self.hooks_d / name
        data = {"version": "1.0.0", "hook": record_hook(self.fired, label), "when": when, "stages": stages}
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o644)
        return path

    def run(
        self,
        args: List[str],
        env: Any = None,
        mounts: Any = None,
        expect: int = 0,
        annotations: Any = None,
        peak: Any = None,
    ) -> Any:
        """Run one container through the shim; return what the shim printed (it must print nothing on stdout).

        ``peak``: a file where a parent process between the test and the shim writes the largest
        resident set (KiB) of the shim or anything it waited for (the shim execs runc in place).
        """
        self.count += 1
        bundle = self.make_bundle(args, name=f"bundle{self.count}", env=env)
        if mounts or annotations:
            spec = json.loads((bundle / "config.json").read_text())
            spec["mounts"] += mounts or []
            spec.setdefault("annotations", {}).update(annotations or {})
            (bundle / "config.json").write_text(json.dumps(spec))
        self.fired.write_text("")
        self.runc_log = bundle / "log.json"
        done = self.toolkit.run_shim(
            [
                "--root", str(self.runc_root), "--log", str(self.runc_log), "--log-format", "json",
                "run", "--bundle", str(bundle), f"dropin-{self.count}",
            ],
            timeout=60,
            wrapper=[] if peak is None else [sys.executable, "-c", PEAK_RSS, str(peak)],
        )  # fmt: skip
        assert done.returncode == expect, done.stderr
        self.bundle = bundle
        return done

    def labels(self) -> List[str]:
        return self.fired.read_text().split()


@pytest.fixture
def scene(toolkit: ToolkitRoot, tmp_path: Path, make_bundle: Any) -> Scene:
    return Scene(toolkit, tmp_path, make_bundle)


def test_conditional_hooks_fire_only_for_the_containers_they_match(scene: Scene, tmp_path: Path) -> None:
    scene.toolkit.write_hooks({"prestart": [record_hook(scene.fired, "every")]})
    scene.configure()
    scene.dropin("10-audit.json", "audit", {"x-container-hooks-env": {"^AUDIT$": "^1$"}}, ["prestart", "poststop"])
    scene.dropin("20-true.json", "true-cmd", {"commands": ["^/bin/true$"]}, ["createRuntime"])
    scene.dropin("30-binds.json", "binds", {"hasBindMounts": True}, ["prestart"])
    scene.dropin("40-never.json", "never", {"always": False}, ["prestart"])
    bind = {"destination": "/mnt", "type": "bind", "source": str(tmp_path), "options": ["rbind", "ro"]}

    scene.run(["/bin/sh", "-c", "true"])
    assert scene.labels() == ["every"]
    scene.run(["/bin/sh", "-c", "true"], env=["PATH=/bin", "AUDIT=1"])
    assert scene.labels() == ["every", "audit", "audit"]  # prestart and poststop
    scene.run(["/bin/sh", "-c", "true"], env=["AUDIT=0"])
    assert scene.labels() == ["every"]
    scene.run(["/bin/true"])
    assert scene.labels() == ["every", "true-cmd"]  # runc runs prestart, then createRuntime
    scene.run(["/bin/sh", "-c", "true"], mounts=[bind])
    assert scene.labels() == ["every", "binds"]
    scene.run(["/bin/true"], env=["AUDIT=1"], mounts=[bind])
    assert sorted(scene.labels()) == ["audit", "audit", "binds", "every", "true-cmd"]

    log = scene.toolkit.log.read_text()
    assert "20-true.json: matched: commands: '/bin/true' matches '^/bin/true$'" in log


def test_an_untrusted_dropin_fails_the_create_with_one_line_naming_file_and_mode(scene: Scene) -> None:
    scene.dropin("10-ok.json", "ok", {"always": True}, ["prestart"])
    writable = scene.dropin("20-open.json", "open", {"always": True}, ["prestart"])
    writable.chmod(0o646)
    done = scene.run(["/bin/true"], expect=1)
    expected = (
        f"container-hooks-runtime: {writable}: refusing hook file writable by others (mode 0646): "
        f"hooks run as root (chmod go-w {writable})"
    )
    assert done.stderr.strip() == expected
    assert done.stdout == ""
    errors = [json.loads(line) for line in scene.runc_log.read_text().splitlines()]
    assert [(e["level"], e["msg"]) for e in errors] == [("error", expected)]
    assert scene.labels() == []
    assert "hooks" not in json.loads((scene.bundle / "config.json").read_text())  # untouched

    writable.chmod(0o644)  # fixed: the next create must see it (the cache watches st_mode)
    scene.run(["/bin/true"])
    assert scene.labels() == ["ok", "open"]


def test_an_untrusted_hooks_directory_fails_the_create(scene: Scene) -> None:
    scene.dropin("10-ok.json", "ok", {"always": True}, ["prestart"])
    scene.hooks_d.chmod(0o775)
    done = scene.run(["/bin/true"], expect=1)
    assert f"{scene.hooks_d}: refusing hooks directory writable by group (mode 0775)" in done.stderr


def test_an_untrusted_config_toml_fails_the_create_but_not_passthrough(scene: Scene) -> None:
    scene.toolkit.config.chmod(0o666)
    done = scene.run(["/bin/true"], expect=1)
    assert f"{scene.toolkit.config}: refusing toolkit config writable by group and others (mode 0666)" in done.stderr
    state = scene.toolkit.run_shim(["--root", str(scene.runc_root), "list"])
    assert state.returncode == 0, state.stderr  # passthrough still reaches runc, with the default runtimes


def test_skip_policy_runs_the_container_without_the_bad_file_and_logs_why(scene: Scene) -> None:
    scene.configure('on-error = "skip"')
    scene.dropin("10-ok.json", "ok", {"always": True}, ["prestart"])
    bad = scene.hooks_d / "20-bad.json"
    lines = [
        '{"version": "1.0.0",',
        '"hook": {"path": "/bin/true"},',
        '"when":',
        '{"always": "true"},',
        '"stages": ["prestart"]}',
    ]
    bad.write_text("\n".join(lines) + "\n")
    done = scene.run(["/bin/true"])
    assert done.stderr == ""
    assert scene.labels() == ["ok"]
    warning = [line for line in scene.toolkit.log.read_text().splitlines() if "level=warning" in line]
    assert len(warning) == 1
    assert f'{bad}:4: when.always: must be true or false, not the string \\"true\\"' in warning[0]


def test_the_insecure_switch_is_never_silent(scene: Scene) -> None:
    scene.configure("insecure-allow-non-root-files = true")
    scene.dropin("10-ok.json", "ok", {"always": True}, ["prestart"])
    scene.run(["/bin/true"])
    assert scene.labels() == ["ok"]
    assert "level=warning" in scene.toolkit.log.read_text()
    assert "insecure-allow-non-root-files is on" in scene.toolkit.log.read_text()


def test_a_broken_dropin_never_stops_passthrough_commands(scene: Scene) -> None:
    (scene.hooks_d / "10-bad.json").write_text("{")
    state = scene.toolkit.run_shim(["--root", str(scene.runc_root), "list"])
    assert state.returncode == 0, state.stderr


def test_prestart_dropins_run_as_createruntime_in_file_order(scene: Scene) -> None:
    # Podman 5 (containers/common since 2024) injects a drop-in's prestart into createRuntime,
    # so drop-ins run in file order whichever of the two stages they name.
    scene.toolkit.write_hooks({"prestart": [record_hook(scene.fired, "hooks.json")]})
    scene.configure()
    scene.dropin("10-a.json", "a", {"always": True}, ["createRuntime"])
    scene.dropin("20-b.json", "b", {"always": True}, ["prestart"])
    scene.dropin("30-c.json", "c", {"always": True}, ["prestart", "createRuntime"])  # once, not twice
    scene.run(["/bin/true"])
    assert scene.labels() == ["hooks.json", "a", "b", "c"]
    hooks = json.loads((scene.bundle / "config.json").read_text())["hooks"]
    assert len(hooks["prestart"]) == 1 and len(hooks["createRuntime"]) == 3


def test_a_podman_0_1_0_file_is_read_and_converted(scene: Scene) -> None:
    # oci-hooks(5)'s own 0.1.0 example shape: no version, "hook" a path, "cmds" regexes, any-of.
    legacy = {
        "hook": "/bin/sh",
        "arguments": ["-c", f'echo legacy >> "{scene.fired}"'],
        "cmds": ["^/bin/true$"],
        "stages": ["prestart"],
    }
    (scene.hooks_d / "oci-legacy.json").write_text(json.dumps(legacy))
    scene.run(["/bin/true"])
    assert scene.labels() == ["legacy"]
    scene.run(["/bin/sh", "-c", "true"])
    assert scene.labels() == []


def test_regex_conditions_on_100_kb_annotations_decide_in_seconds(scene: Scene) -> None:
    # Issue 18: the container's creator writes the annotations; the NFA took 161 s and 27.7 s
    # on these patterns and values (Go's regexp: 3.9 s and 0.13 s). Both conditions, both ways.
    scene.dropin(
        "10-letters.json", "letters", {"annotations": {"^org\\.example\\.a$": "(?:[a-z]{0,1000})x"}}, ["prestart"]
    )
    scene.dropin(
        "20-mail.json", "mail", {"annotations": {"^org\\.example\\.b$": "\\w{8,64}@corp\\.example\\.com"}}, ["prestart"]
    )
    letters, words = "a" * 100 * 1024, "b" * 100 * 1024
    for suffix, fired in (("", []), ("x@corp.example.com", ["letters", "mail"])):
        start = time.monotonic()
        scene.run(["/bin/true"], annotations={"org.example.a": letters + suffix, "org.example.b": words + suffix})
        elapsed = time.monotonic() - start
        assert scene.labels() == fired
        assert elapsed < 10, f"a create with two regex conditions on 100 KB annotations took {elapsed:.1f} s"


def precreate_dropin(scene: Scene, name: str, script: Path, label: str, **hook: Any) -> Path:
    path = scene.hooks_d / name
    data = {
        "version": "1.0.0",
        "hook": {"path": str(script), "args": [script.name, label], **hook},
        "when": {"always": True},
        "stages": ["precreate"],
    }
    path.write_text(json.dumps(data))
    return path


def test_precreate_hooks_rewrite_the_config_runc_gets_in_file_order(scene: Scene, tmp_path: Path) -> None:
    script = write_precreate_script(tmp_path / "precreate.py")
    precreate_dropin(scene, "10-first.json", script, "a", env=["ONLY=this"])
    precreate_dropin(scene, "20-second.json", script, "b")
    done = scene.run(["/bin/sh", "-c", 'echo "chain=$CHAIN"'])
    assert done.stdout == "chain=ab\n"  # seen inside the container, both hooks, in file order
    spec = json.loads((scene.bundle / "config.json").read_text())
    assert spec["annotations"]["org.example.precreate-cwd"] == str(scene.bundle)  # run in the bundle
    # The hook's env only, nothing inherited from the shim (Python itself adds LC_CTYPE).
    assert set(spec["annotations"]["org.example.precreate-env-a"].split(",")) - {"LC_CTYPE"} == {"ONLY"}
    assert set(spec["annotations"]["org.example.precreate-env-b"].split(",")) - {"LC_CTYPE"} == set()
    assert "precreate" not in spec.get("hooks", {})  # run by the shim, never handed to runc
    assert "precreate hook" in scene.toolkit.log.read_text()


def test_a_failing_precreate_hook_fails_the_create_naming_the_hook(scene: Scene, tmp_path: Path) -> None:
    script = tmp_path / "refuse.sh"
    script.write_text("#!/bin/sh\necho 'first line' >&2\necho 'quota exceeded' >&2\nexit 3\n")
    script.chmod(0o755)
    dropin = precreate_dropin(scene, "10-refuse.json", script, "x")
    done = scene.run(["/bin/true"], expect=1)
    expected = f"container-hooks-runtime: precreate hook {script} ({dropin}) failed: exit status 3: quota exceeded"
    assert done.stderr.strip() == expected
    spec = json.loads((scene.bundle / "config.json").read_text())
    assert "annotations" not in spec and "hooks" not in spec  # config.json untouched


def test_a_file_podman_reads_but_we_cannot_use_costs_that_file_not_every_container(scene: Scene) -> None:
    # Under on-error = "fail": a Unicode script (valid Go, unsupported here) and a 0.1.0 file with no
    # condition (Podman never injects it) are skipped with a warning; the good file still fires.
    scene.dropin("10-ok.json", "ok", {"always": True}, ["prestart"])
    greek = scene.dropin("20-greek.json", "greek", {"commands": ["^\\p{Greek}+$"]}, ["prestart"])
    never = scene.hooks_d / "30-never.json"
    never.write_text(json.dumps({"hook": "/bin/true", "stages": ["prestart"]}))
    done = scene.run(["/bin/true"])
    assert done.stderr == ""
    assert scene.labels() == ["ok"]
    warnings = [line for line in scene.toolkit.log.read_text().splitlines() if "level=warning" in line]
    assert len(warnings) == 2
    assert f"skipping hook file: {greek}:" in warnings[0] and "\\\\p{Greek} is valid in Go" in warnings[0]
    assert f"skipping hook file: {never}: no cmds, annotations or hasbindmounts" in warnings[1]


GIB = 1 << 30


def test_a_precreate_hook_printing_a_gigabyte_never_makes_the_shim_hold_200_mb(scene: Scene, tmp_path: Path) -> None:
    script = tmp_path / "flood.sh"
    script.write_text(f"#!/bin/sh\nexec head -c {GIB} /dev/zero\n")
    script.chmod(0o755)
    dropin = precreate_dropin(scene, "10-flood.json", script, "x")
    peak = tmp_path / "peak"
    done = scene.run(["/bin/true"], expect=1, peak=peak)
    expected = (
        f"container-hooks-runtime: precreate hook {script} ({dropin}) printed more than {64 << 20} bytes, not a config"
    )
    assert done.stderr.strip() == expected
    assert int(peak.read_text()) < 200 * 1024, f"peak RSS {peak.read_text()} KiB"
    spec = json.loads((scene.bundle / "config.json").read_text())
    assert "hooks" not in spec  # config.json untouched


def test_a_gigabyte_on_a_precreate_hooks_stderr_is_not_held(scene: Scene, tmp_path: Path) -> None:
    script = tmp_path / "noisy.sh"
    script.write_text(f"#!/bin/sh\nhead -c {GIB} /dev/zero >&2\nexec cat\n")
    script.chmod(0o755)
    precreate_dropin(scene, "10-noisy.json", script, "x")
    peak = tmp_path / "peak"
    done = scene.run(["/bin/sh", "-c", "echo ran"], peak=peak)
    assert done.stdout == "ran\n" and done.stderr == ""
    assert int(peak.read_text()) < 200 * 1024, f"peak RSS {peak.read_text()} KiB"


def test_a_precreate_hook_whose_child_holds_stdout_fails_the_create_at_once(scene: Scene, tmp_path: Path) -> None:
    script = tmp_path / "lingers.sh"
    script.write_text("#!/bin/sh\ncat\nsleep 5 &\n")  # the background sleep inherits stdout
    script.chmod(0o755)
    dropin = precreate_dropin(scene, "10-lingers.json", script, "x")
    start = time.monotonic()
    done = scene.run(["/bin/true"], expect=1)
    assert time.monotonic() - start < 4
    expected = (
        f"container-hooks-runtime: precreate hook {script} ({dropin}) exited, but a process it started "
        "still holds its stdout open 1.0 s later (redirect the background command's output)"
    )
    assert done.stderr.strip() == expected
