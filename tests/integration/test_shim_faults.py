"""The built .pyz under faults, in fresh processes on every supported interpreter: one line, never a traceback.

Each run starts the archive the way its sh start runs Python (its -ISc program) with one
interpreter and its own empty cache directory, so nothing is imported before the shim
runs (on 3.10/3.11 `_json` fails differently when `json.decoder` was never imported)
and nothing parsed by another interpreter is served from the cache. The runtime is a
script that records its argv (first on PATH as runc): reaching it is what "passthrough works" means here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from conftest import CLEAN_PATH, python_start, require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

SHIM = "container-hooks-runtime"


@pytest.fixture(scope="session")
def pythons() -> List[Tuple[str, str]]:
    """(label, python3) for pyenv's 3.8-3.13 and the host's /usr/bin/python3 (what the sh start runs)."""
    found: Dict[str, str] = {}
    for python in sorted(Path("/root/.pyenv/versions").glob("3.*/bin/python3")):
        version = python.parent.parent.name.rsplit(".", 1)[0]
        if version in {f"3.{minor}" for minor in range(8, 14)}:
            found[version] = str(python)
    require(len(found) == 6, f"pyenv Pythons 3.8-3.13 are needed, found {sorted(found)}")
    host = Path("/usr/bin/python3")
    require(host.exists(), "/usr/bin/python3 is missing")
    return [*sorted(found.items()), ("host", str(host))]


class Root:
    """A toolkit root whose runtime records its argv, and one fresh cache per run."""

    def __init__(self, base: Path, pyz: Path, pythons: List[Tuple[str, str]]) -> None:
        self.base = base
        self.pyz = pyz
        self.pythons = pythons
        self.hooks = base / "hooks.json"
        self.hooks_d = base / "hooks.d"
        self.hooks_d.mkdir()
        self.config = base / "config.toml"
        self.shim_log = base / "shim.log"
        self.runc_log = base / "runc.log"
        self.record = base / "argv"
        # named runc and first on PATH: the default runtime, reached even when config.toml is unusable
        (base / "bin").mkdir()
        self.runtime = base / "bin" / "runc"
        self.runtime.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {self.record}\n")
        self.runtime.chmod(0o755)
        self.bundle = base / "bundle"
        self.bundle.mkdir()
        self.spec = b'{"ociVersion": "1.0.2", "process": {"args": ["/bin/true"]}}\n'
        (self.bundle / "config.json").write_bytes(self.spec)
        self.runs = 0
        self.configure()

    def configure(self, extra: str = "") -> None:
        self.config.write_text(
            f'[container-hooks]\npath = "{self.hooks}"\nhooks-dirs = ["{self.hooks_d}"]\n{extra}\n'
            f'[container-hooks-runtime]\ndebug = "{self.shim_log}"\nruntimes = ["runc"]\n'
        )

    def run(self, python: str, args: List[str]) -> subprocess.CompletedProcess[str]:
        """The shim as the kernel starts it under ``python``, in a fresh process with an empty cache."""
        self.runs += 1
        for stale in (self.record, self.runc_log, self.shim_log):
            if stale.is_file():
                stale.unlink()
        env = {
            "PATH": f"{self.base / 'bin'}:{CLEAN_PATH}",
            "CONTAINER_HOOKS_CONFIG": str(self.config),
            "CONTAINER_HOOKS_CACHE_DIR": str(self.base / f"cache-{self.runs}"),
        }
        return subprocess.run(
            [python, *python_start(self.pyz), str(self.pyz), "runtime", *args],
            env=env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def create(self, python: str) -> subprocess.CompletedProcess[str]:
        return self.run(python, ["--log", str(self.runc_log), "--log-format", "json", "create", "-b", "bundle", "c1"])

    def reached_runtime(self) -> bool:
        return self.record.exists()


@pytest.fixture
def root(tmp_path: Path, pyz: Path, pythons: List[Tuple[str, str]]) -> Root:
    return Root(tmp_path, pyz, pythons)


def assert_one_line_failure(
    root: Root, result: subprocess.CompletedProcess[str], names: Path, label: str, shim_log: bool = True
) -> str:
    """Exit 1, one stderr line naming ``names``, the same line in runc's JSON --log and the shim's log.

    ``shim_log`` False: config.toml itself is unusable, so the log is the default one (not written here).
    """
    where = (label, result.stderr)
    assert result.returncode == 1, where
    assert "Traceback" not in result.stderr, where
    lines = result.stderr.splitlines()
    assert len(lines) == 1, where
    assert lines[0].startswith(f"{SHIM}: {names}"), where
    logged = [json.loads(line) for line in root.runc_log.read_text().splitlines()]
    assert [entry["msg"] for entry in logged] == lines, where
    assert logged[0]["level"] == "error"
    errors = [line for line in root.shim_log.read_text().splitlines() if "level=error" in line] if shim_log else []
    if shim_log:
        assert len(errors) == 1, (where, errors)
        assert f"msg={names}" in errors[0].replace('msg="', "msg="), (where, errors)
    assert not root.reached_runtime(), where
    assert (root.bundle / "config.json").read_bytes() == root.spec, where
    return lines[0]


# Malformed JSON as people write it; each must give one line, on every interpreter.
MALFORMED = {
    "trailing comma": '{"prestart": [{"path": "/bin/true",}]}',
    "single quotes": "{'prestart': []}",
    "missing colon": '{"prestart" []}',
    "control character": '{"prestart": [{"path": "/bin/\x01true"}]}',
    "nested 100000 deep": '{"prestart": ' + "[" * 100000 + "]" * 100000 + "}",
    "unterminated": '{"prestart": [',
    "extra data": "{} {}",
    "NaN": '{"prestart": [{"path": "/bin/true", "timeout": NaN}]}',
}


@pytest.mark.parametrize("label", sorted(MALFORMED))
def test_malformed_hooks_json_is_one_line_on_every_python(root: Root, label: str) -> None:
    root.hooks.write_text(MALFORMED[label])
    for version, python in root.pythons:
        line = assert_one_line_failure(root, root.create(python), root.hooks, f"{label} on {version}")
        assert "invalid JSON" in line, (version, line)


@pytest.mark.parametrize("label", sorted(MALFORMED))
def test_malformed_dropin_is_skipped_under_on_error_skip(root: Root, label: str) -> None:
    dropin = root.hooks_d / "10-bad.json"
    dropin.write_text(MALFORMED[label])
    root.configure('on-error = "skip"')
    for version, python in root.pythons:
        result = root.create(python)
        assert (result.returncode, result.stderr) == (0, ""), (version, label)
        assert root.reached_runtime(), version
        assert f"skipping unusable hook source (on-error = skip): {dropin}" in root.shim_log.read_text()


def test_deep_config_toml_never_stops_passthrough(root: Root) -> None:
    """tomllib and tomli recurse per nesting level: ~500 levels were a RecursionError on every call."""
    root.config.write_text(root.config.read_text() + "deep = " + "[" * 600 + "]" * 600 + "\n")
    for version, python in root.pythons:
        result = root.run(python, ["state", "c1"])
        assert (result.returncode, result.stderr) == (0, ""), version
        assert root.record.read_text().split() == ["state", "c1"], version
        # the create says why, in one line, and does not reach the runtime
        assert_one_line_failure(root, root.create(python), root.config, version, shim_log=False)


def test_no_python_warning_reaches_stderr(root: Root) -> None:
    """A nested-set pattern makes re warn (FutureWarning); the engine must see nothing of it."""
    dropin = root.hooks_d / "10-nested.json"
    when = {"annotations": {"[[a]": ".*"}, "always": True}
    dropin.write_text(
        json.dumps({"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": when, "stages": ["poststop"]})
    )
    for version, python in root.pythons:
        result = root.create(python)
        assert (result.returncode, result.stderr) == (0, ""), version


garbage = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda data: data.decode("latin-1")),
    st.builds(lambda head, tail: head + tail, st.sampled_from(['{"prestart": [', "[", '{"a": ']), st.text(max_size=30)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage)
def test_generated_garbage_never_gives_a_traceback(root: Root, text: str) -> None:
    root.hooks.write_bytes(text.encode("utf-8", "surrogateescape"))
    for version, python in root.pythons:
        result = root.create(python)
        assert "Traceback" not in result.stderr, (version, text, result.stderr)
        if result.returncode == 0:  # garbage that happens to be a valid hooks.json
            assert result.stderr == "" and root.reached_runtime(), (version, text)
        else:
            assert_one_line_failure(root, result, root.hooks, f"{text!r} on {version}")


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_next_create_removes_the_temporary_file_of_a_killed_shim(root: Root) -> None:
    """kill -9 between writing a temporary file and renaming it leaves `.config.json.<pid>.tmp`
    (or the record's `.container-hooks.injected.<pid>.tmp`)."""
    root.hooks.write_text('{"poststop": [{"path": "/bin/true"}]}')
    stale = root.bundle / f".config.json.{dead_pid()}.tmp"
    stale.write_text('{"ociVersion": "1.0.2", "hooks": {"poststop": [')
    (root.bundle / f".container-hooks.injected.{dead_pid()}.tmp").write_text("container-hooks-toolkit")
    _, python = root.pythons[-1]
    result = root.create(python)
    assert (result.returncode, result.stderr) == (0, "")
    assert sorted(path.name for path in root.bundle.iterdir()) == ["config.json", "container-hooks.injected"]


def test_a_fifo_as_log_never_hangs_a_create(root: Root) -> None:
    """Neither the shim's log nor runc's --log may block: no reader means no line, not a hang."""
    import os

    os.mkfifo(root.shim_log)
    os.mkfifo(root.runc_log)
    root.hooks.write_text("{broken")
    _, python = root.pythons[-1]
    # a FIFO in place of the logs: the failure still reaches stderr, and the call returns
    result = root.run(python, ["--log", str(root.runc_log), "create", "-b", "bundle", "c1"])
    assert result.returncode == 1
    assert result.stderr.startswith(f"{SHIM}: {root.hooks}")
    root.hooks.write_text("{}")
    assert root.run(python, ["--log", str(root.runc_log), "create", "-b", "bundle", "c1"]).returncode == 0


@pytest.mark.parametrize("depth", [1000, 5000])
def test_config_json_nested_deeper_than_python_reads_is_kept_and_created(root: Root, depth: int) -> None:
    """runc reads 10,000 levels; Python's parsers stop near 1,000 (before 3.12): copied as text."""
    root.hooks.write_text('{"poststop": [{"path": "/bin/true"}]}')
    deep = "[" * depth + "]" * depth
    for version, python in root.pythons:
        (root.bundle / "config.json").write_text('{"ociVersion": "1.0.2", "x-deep": ' + deep + ', "x": 1e400}')
        result = root.create(python)
        assert (result.returncode, result.stderr) == (0, ""), version
        text = (root.bundle / "config.json").read_text()
        assert text.startswith('{"ociVersion": "1.0.2", "x-deep": ' + deep + ', "x": 1e400,"hooks":'), version


@pytest.mark.parametrize("spec", ['{"ociVersion": "1.0.2",}', "{'a': 1}", '{"a" 1}', '{"a": 1, "a": 2}', "[]", ""])
def test_malformed_config_json_is_one_line_on_every_python(root: Root, spec: str) -> None:
    root.hooks.write_text('{"poststop": [{"path": "/bin/true"}]}')
    root.spec = spec.encode()
    (root.bundle / "config.json").write_bytes(root.spec)
    for version, python in root.pythons:
        assert_one_line_failure(root, root.create(python), Path("bundle/config.json"), f"{spec!r} on {version}")
