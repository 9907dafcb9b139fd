"""Every engine, the same promises: bad input is one clear line and changes nothing; dry-run writes
nothing; configure twice = configure once; unconfigure after configure gives the file back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from engine_cases import CONFIG_NAMES, SHIM, configured, runtime_cmd, snapshot, unconfigured

from chts.base.config_files import CONFIG_LIMIT

# (engine, file content, what the message must say) for inputs no engine may accept
BAD_INPUTS: List[Tuple[str, bytes, str]] = [
    ("docker", b"", "empty file"),
    ("docker", b" \n\t\n", "empty file"),
    ("docker", b'{"runtimes": {', "invalid JSON"),
    ("docker", b"[]", "expected a JSON object"),
    ("docker", b'{"runtimes": null}', "runtimes must be an object, found null"),
    ("docker", b'{"runtimes": []}', "runtimes must be an object, found an array"),
    ("docker", b'{"runtimes": {"x": {"path": 1}}}', "runtimes.x.path must be a string, found an integer"),
    ("docker", b'{"runtimes": {"x": []}}', "runtimes.x must be an object, found an array"),
    ("docker", b'{"runtimes": {"x": {"runtimeType": "s", "options": 1}}}', "runtimes.x.options must be"),
    ("docker", b'{"runtimes": {"x": {"path": "/x", "runtimeArgs": "-v"}}}', "runtimeArgs must be a list of strings"),
    ("docker", b'{"default-runtime": 7}', "default-runtime must be a string"),
    ("docker", b"\xff\xfe{}", "not UTF-8"),
    ("containerd", b"", "empty file"),
    ("containerd", b"version = 2\n[plugins\n", "invalid TOML"),
    ("containerd", b'version = "two"\n', "version must be an integer"),
    ("containerd", b"version = 4\n", "config version 4"),
    ("containerd", b"version = true\n", "version must be an integer"),
    ("containerd", b'version = 2\n[plugins]\n"io.containerd.grpc.v1.cri" = 1\n', "must be a table, found an integer"),
    ("containerd", b'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nruntimes = []\n', "found an array"),
    (
        "containerd",
        b'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = 1\n',
        "default_runtime_name must be a string",
    ),
    ("containerd", b"\xc3\x28", "not UTF-8"),
    ("podman", b"", "empty file"),
    ("podman", b"[engine\n", "invalid TOML"),
    ("podman", b"engine = 1\n", "engine must be a table"),
    ("podman", b"[engine]\nruntime = 1\n", "engine.runtime must be a string"),
    ("podman", b'[engine]\nruntimes = ["runc"]\n', "engine.runtimes must be a table"),
    ("podman", b'[engine.runtimes]\nrunc = "/usr/bin/runc"\n', "engine.runtimes.runc must be a list of paths"),
    ("crio", b"", "empty file"),
    ("crio", b"[crio.runtime\n", "invalid TOML"),
    ("crio", b"crio = 1\n", "crio must be a table"),
    ("crio", b"[crio.runtime]\ndefault_runtime = 1\n", "default_runtime must be a string"),
    ("crio", b"[crio.runtime]\nruntimes = 1\n", "runtimes must be a table"),
]


def ids(case: Tuple[str, bytes, str]) -> str:
    return f"{case[0]}:{case[2]}"


def assert_one_clear_line(status: int, err: str, path: Path, says: str) -> None:
    assert status != 0
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(f"container-hooks-ctk: {path}"), err
    assert says in err, err


@pytest.mark.parametrize("action", ["configure", "unconfigure"])
@pytest.mark.parametrize("case", BAD_INPUTS, ids=ids)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    tmp_path: Path, capsys: Any, case: Tuple[str, bytes, str], action: str
) -> None:
    engine, content, says = case
    config = tmp_path / CONFIG_NAMES[engine]
    config.write_bytes(content)
    if engine == "crio" and action == "unconfigure":
        pytest.skip("crio unconfigure reads only its own drop-in")
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, action, engine, config, "--set-as-default")
    assert_one_clear_line(status, err, config, says)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("engine", sorted(CONFIG_NAMES))
@pytest.mark.parametrize("kind", ["directory", "oversized", "dangling symlink"])
def test_unusable_files_are_refused(tmp_path: Path, capsys: Any, engine: str, kind: str) -> None:
    config = tmp_path / CONFIG_NAMES[engine]
    if kind == "directory":
        config.mkdir()
        says = "is a directory"
    elif kind == "oversized":
        config.write_bytes(b"#" * (CONFIG_LIMIT + 1))
        says = "larger than"
    else:
        config.symlink_to(tmp_path / "nowhere")
        says = "dangling symlink"
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", engine, config)
    assert_one_clear_line(status, err, config, says)
    assert snapshot(tmp_path) == before


def test_a_broken_crio_drop_in_is_named(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "crio.conf"
    config.write_text('[crio.runtime]\ndefault_runtime = "runc"\n')
    (tmp_path / "crio.conf.d").mkdir()
    broken = tmp_path / "crio.conf.d" / "50-broken.conf"
    broken.write_text("[crio.runtime\n")
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "crio", config)
    assert_one_clear_line(status, err, broken, "invalid TOML")
    assert snapshot(tmp_path) == before


# A config per engine holding user settings and comments (for docker: settings only, JSON has no comments).
USER_FILES: Dict[str, str] = {
    "docker": '{\n  "log-level": "warn",\n  "default-runtime": "runc",\n  "storage-driver": "overlay2"\n}\n',
    "containerd": (
        "# mine\nversion = 2\n\n"
        '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9" # mirror\n'
        '  [plugins."io.containerd.grpc.v1.cri".containerd]\n    default_runtime_name = "runc"\n'
    ),
    "podman": '# mine\n[engine]\n# the runtime\nruntime = "runc"\n\n[engine.runtimes]\nrunc = ["/usr/sbin/runc"]\n',
    "crio": '# mine\n[crio.runtime]\ndefault_runtime = "runc"\n',
}


@pytest.mark.parametrize("engine", sorted(USER_FILES))
def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path: Path, capsys: Any, engine: str) -> None:
    config = tmp_path / CONFIG_NAMES[engine]
    config.write_text(USER_FILES[engine])
    before = snapshot(tmp_path)
    out = configured(capsys, engine, config, "--set-as-default", "--dry-run")
    assert out.startswith("--- ") and "+++ " in out and SHIM in out
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("engine", sorted(USER_FILES))
def test_configure_twice_is_once_and_unconfigure_gives_the_file_back(tmp_path: Path, capsys: Any, engine: str) -> None:
    config = tmp_path / CONFIG_NAMES[engine]
    config.write_text(USER_FILES[engine])
    configured(capsys, engine, config, "--set-as-default")
    once = snapshot(tmp_path)
    out = configured(capsys, engine, config, "--set-as-default")
    assert "nothing changed" in out
    assert snapshot(tmp_path) == once
    assert configured(capsys, engine, config, "--set-as-default", "--dry-run") == "no change\n"
    unconfigured(capsys, engine, config)
    assert config.read_text() == USER_FILES[engine]
    leftovers = {name for name in snapshot(tmp_path) if not name.endswith(".container-hooks.bak")}
    assert leftovers == {CONFIG_NAMES[engine]}  # no state or drop-in file left behind


@pytest.mark.parametrize("engine", sorted(USER_FILES))
def test_a_rewritten_user_file_is_backed_up(tmp_path: Path, capsys: Any, engine: str) -> None:
    config = tmp_path / CONFIG_NAMES[engine]
    config.write_text(USER_FILES[engine])
    config.chmod(0o640)
    out = configured(capsys, engine, config)
    if engine == "crio":
        assert config.read_text() == USER_FILES[engine]  # crio: only a drop-in of ours is written
        return
    backup = Path(f"{config}.container-hooks.bak")
    assert backup.read_text() == USER_FILES[engine]
    assert str(backup) in out
    assert config.stat().st_mode & 0o777 == 0o640  # mode kept


@pytest.mark.parametrize("engine", sorted(USER_FILES))
def test_unconfigure_of_a_missing_file_changes_nothing(tmp_path: Path, capsys: Any, engine: str) -> None:
    config = tmp_path / CONFIG_NAMES[engine]
    out = unconfigured(capsys, engine, config)
    assert "nothing" in out or "nothing" in capsys.readouterr().err
    assert snapshot(tmp_path) == {}


def test_a_relative_runtime_path_is_refused(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    status, _, err = runtime_cmd(capsys, "configure", "docker", config, "--runtime-path=bin/shim")
    assert status != 0 and "absolute" in err
    assert not config.exists()


@pytest.mark.parametrize("can_write", [False, True], ids=["not-theirs", "their-own-file"])
def test_without_root_a_file_the_user_cannot_write_is_refused_and_their_own_is_configured(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, can_write: bool
) -> None:
    """Rootless Podman's containers.conf is the user's own: configure writes it; the system's file needs sudo."""
    config = tmp_path / CONFIG_NAMES["podman"]
    config.write_text(USER_FILES["podman"])
    before = snapshot(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "access", lambda path, mode: can_write)
    status, out, err = runtime_cmd(capsys, "configure", "podman", config)
    if can_write:
        assert status == 0 and SHIM in config.read_text(), err
    else:
        assert (status, out) == (
            1,
            "",
        ) and err == f"container-hooks-ctk: {config}: writing it needs root (run with sudo)\n"
        assert snapshot(tmp_path) == before
