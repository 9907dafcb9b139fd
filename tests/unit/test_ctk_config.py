"""container-hooks-ctk config: default, show, --set for every key type, in-place edits that keep the user's text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from ctk_cli import run_ctk

from chts.base.text_files import toml_loads
from chts.base.toml_edit import toml_value
from chts.config.toolkit import SCHEMA, default_config, parse_config

# Per schema type: (--set text, expected value) accepted, and texts rejected.
ACCEPTED: Dict[str, List[Tuple[str, Any]]] = {
    "path": [("/opt/x", "/opt/x"), ('"/opt/quoted"', "/opt/quoted")],
    "path-or-empty": [("/var/log/x.log", "/var/log/x.log"), ("", "")],
    "string-list": [("crun,runc", ["crun", "runc"]), (" crun , runc ", ["crun", "runc"]), ('["runc"]', ["runc"])],
    "log-level": [("debug", "debug"), ("error", "error")],
    "path-list": [("/a,/b", ["/a", "/b"]), ("", []), ('["/a"]', ["/a"])],
    "on-error": [("skip", "skip"), ("fail", "fail")],
    "bool": [("true", True), ("no", False), ("1", True)],
}
REJECTED: Dict[str, List[Tuple[str, str]]] = {
    "path": [("relative/x", "must be an absolute path"), ("", "must be an absolute path")],
    "path-or-empty": [("relative.log", "must be an absolute path")],
    "string-list": [("", "non-empty list"), ("runc,", "non-empty strings"), ('["runc", 1]', "non-empty strings")],
    "log-level": [("loud", "must be one of debug, info, warning, error")],
    "path-list": [("relative", "list of absolute paths"), ('["/a"', "not a valid TOML value")],
    "on-error": [("ignore", "must be one of fail, skip")],
    "bool": [("maybe", "must be true or false")],
}
KEYS = [(section, key, spec[0]) for section, keys in SCHEMA.items() for key, spec in keys.items()]


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "etc" / "config.toml"
    monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(path))
    return path


def test_every_schema_type_has_cases() -> None:
    # A type added to the schema must come with accepted and rejected examples here.
    kinds = {kind for _, _, kind in KEYS}
    assert kinds <= set(ACCEPTED) and kinds <= set(REJECTED)


def test_default_is_the_schema_with_comments(capsys: Any) -> None:
    status, out, _ = run_ctk(capsys, "config", "default")
    assert status == 0
    assert parse_config(out, "default") == default_config()
    for keys in SCHEMA.values():
        for _, _, comment in keys.values():
            assert f"# {comment}\n" in out


def test_default_output_file(capsys: Any, tmp_path: Path) -> None:
    target = tmp_path / "new" / "config.toml"
    assert run_ctk(capsys, "config", "default", "-o", str(target))[0] == 0
    assert parse_config(target.read_text(), str(target)) == default_config()
    assert os.stat(target).st_mode & 0o777 == 0o644


def test_show_merges_the_file_over_defaults(capsys: Any, config_file: Path) -> None:
    status, out, _ = run_ctk(capsys, "config", "show")
    assert status == 0 and "(missing)" in out
    config_file.parent.mkdir()
    config_file.write_text('[container-hooks-runtime]\nlog-level = "debug"\n')
    status, out, _ = run_ctk(capsys, "config", "show")
    expected = default_config()
    expected["container-hooks-runtime"]["log-level"] = "debug"
    assert status == 0 and toml_loads(out) == expected


def test_show_rejects_a_bad_file(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text("[container-hooks-runtime]\nlog-level = 3\n")
    status, out, err = run_ctk(capsys, "config", "show")
    assert status == 1 and out == ""
    assert err.startswith(f"container-hooks-ctk: {config_file}: [container-hooks-runtime] log-level must be one of")


@pytest.mark.parametrize(("section", "key", "kind"), KEYS)
def test_set_every_key(capsys: Any, config_file: Path, section: str, key: str, kind: str) -> None:
    for text, value in ACCEPTED[kind]:
        status, out, err = run_ctk(capsys, "config", "--set", f"{section}.{key}={text}")
        assert (status, err) == (0, ""), text
        assert toml_loads(out)[section][key] == value
    assert not config_file.exists()  # without -i or -o nothing is written


@pytest.mark.parametrize(("section", "key", "kind"), KEYS)
def test_set_rejects_wrong_types_by_name(capsys: Any, config_file: Path, section: str, key: str, kind: str) -> None:
    for text, message in REJECTED[kind]:
        status, out, err = run_ctk(capsys, "config", "-i", "--set", f"{section}.{key}={text}")
        assert status == 1 and out == ""
        assert err.startswith(f"container-hooks-ctk: --set {section}.{key}: ") and message in err, err
        assert err.count("\n") == 1
    assert not config_file.exists()


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("nosuch.key=1", "--set nosuch.key: unknown key (known: container-hooks.path, "),
        ("container-hooks.nosuch=1", "--set container-hooks.nosuch: unknown key"),
        ("log-level=debug", "--set log-level: unknown key"),
        ("container-hooks-runtime.log-level", "expected KEY=VALUE"),
    ],
)
def test_set_rejects_unknown_keys(capsys: Any, config_file: Path, assignment: str, message: str) -> None:
    status, _, err = run_ctk(capsys, "config", "-i", "--set", assignment)
    assert status == 1 and message in err
    assert not config_file.exists()


USER_FILE = """\
# site settings, owned by ops
[container-hooks-runtime]
log-level = "warning"   # quiet on prod
runtimes = [
  "runc",   # the only one we ship
]

[container-hooks]
path = "/etc/container-hooks/hooks.json"
"""


def test_in_place_keeps_comments_and_layout(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text(USER_FILE)
    status, _, err = run_ctk(
        capsys,
        "config",
        "-i",
        "--set",
        "container-hooks-runtime.log-level=debug",
        "--set",
        "container-hooks-runtime.debug=",
        "--set",
        "container-hooks.on-error=skip",
    )
    assert status == 0 and "wrote" in err
    text = config_file.read_text()
    assert text.startswith("# site settings, owned by ops\n[container-hooks-runtime]\n")
    assert 'log-level = "debug"  # quiet on prod\n' in text
    assert '"runc",   # the only one we ship\n' in text  # untouched keys keep their layout
    # New keys go into their table, after what is there, under the schema's comment.
    assert text.index('debug = ""') < text.index("[container-hooks]\n") < text.index('on-error = "skip"')
    effective = parse_config(text, "x")
    assert effective["container-hooks-runtime"]["log-level"] == "debug"
    assert effective["container-hooks"]["on-error"] == "skip"


def test_in_place_missing_file_starts_from_the_commented_default(capsys: Any, config_file: Path) -> None:
    status, _, _ = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.runtimes=crun,runc")
    assert status == 0
    text = config_file.read_text()
    assert text.startswith("# container-hooks-toolkit configuration")
    assert 'runtimes = ["crun", "runc"]\n' in text


def test_unknown_sections_are_kept_with_a_warning(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text("[from-the-future]\nknob = 1\n")
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=error")
    assert status == 0
    assert "warning: " in err and "unknown section [from-the-future] kept" in err
    assert toml_loads(config_file.read_text())["from-the-future"] == {"knob": 1}


def test_unchanged_file_is_not_rewritten(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text(USER_FILE)
    before = os.stat(config_file)
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=warning")
    assert status == 0 and err == f"{config_file}: unchanged\n"
    assert os.stat(config_file).st_ino == before.st_ino


def test_output_writes_elsewhere_and_leaves_the_source(capsys: Any, config_file: Path, tmp_path: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text(USER_FILE)
    target = tmp_path / "out.toml"
    status, _, _ = run_ctk(capsys, "config", "--set", "container-hooks-runtime.log-level=debug", "-o", str(target))
    assert status == 0
    assert config_file.read_text() == USER_FILE
    assert target.read_text() == USER_FILE.replace('"warning"   #', '"debug"  #')


def test_config_option_beats_the_environment(capsys: Any, config_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[container-hooks-runtime]\nlog-level = "error"\n')
    status, out, _ = run_ctk(capsys, "config", "--config", str(other), "--set", "container-hooks.on-error=skip")
    assert status == 0 and 'log-level = "error"' in out
    status, out, _ = run_ctk(capsys, "config", "show", "--config", str(other))
    assert status == 0 and toml_loads(out)["container-hooks-runtime"]["log-level"] == "error"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[container-hooks-runtime\n", "invalid TOML"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b'[container-hooks-runtime]\nruntimes = "runc"\n', "runtimes must be a non-empty list"),
        (b"container-hooks = 1\n", "container-hooks must be a table"),
        (b"x = 1\n" * 200000, "larger than"),
    ],
)
def test_bad_files_are_refused_and_left_alone(capsys: Any, config_file: Path, content: bytes, message: str) -> None:
    config_file.parent.mkdir()
    config_file.write_bytes(content)
    status, out, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")
    assert status == 1 and out == ""
    assert err.startswith(f"container-hooks-ctk: {config_file}") and message in err
    assert err.count("\n") == 1
    assert config_file.read_bytes() == content


def test_empty_file_is_a_valid_config(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text("")
    assert run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")[0] == 0
    assert toml_loads(config_file.read_text()) == {"container-hooks-runtime": {"log-level": "debug"}}


def test_directory_is_refused(capsys: Any, config_file: Path) -> None:
    config_file.mkdir(parents=True)
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")
    assert status == 1 and "is a directory" in err
    status, _, err = run_ctk(capsys, "config", "default", "-o", str(config_file))
    assert status == 1 and "not a regular file" in err


def test_layout_it_cannot_edit_is_refused(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text('container-hooks-runtime.log-level = "info"\n')  # dotted key, no table header
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")
    assert status == 1 and "edit the file by hand" in err
    assert config_file.read_text() == 'container-hooks-runtime.log-level = "info"\n'


def test_in_place_and_output_exclude_each_other(capsys: Any, config_file: Path) -> None:
    status, _, err = run_ctk(capsys, "config", "-i", "-o", "/tmp/x", "--set", "container-hooks.on-error=skip")
    assert status == 2 and "not allowed with argument" in err


def test_writing_without_root_says_so(capsys: Any, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks.on-error=skip")
    assert status == 1 and "config needs root to write" in err and "sudo" in err
    assert not config_file.exists()
    status, _, err = run_ctk(capsys, "config", "default", "-o", str(config_file))
    assert status == 1
    assert err == f"container-hooks-ctk: config default needs root to write {config_file} (run it with sudo)\n"
    assert not config_file.exists()


def test_help_has_examples(capsys: Any) -> None:
    for argv in (["config"], ["config", "default"], ["config", "show"]):
        status, out, _ = run_ctk(capsys, *argv, "--help")
        assert status == 0 and "example" in out


def test_toml_value_round_trips() -> None:
    for value in ['a"b\\c', "", ["x", 'y"'], True, 3]:
        assert toml_loads("v = " + toml_value(value))["v"] == value


# ----------------------------------------------------------------------------- edges mutation testing found


def test_the_section_set_into_must_be_a_table(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text("container-hooks-runtime = 1\n")
    status, out, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")
    assert (status, out) == (1, "")
    assert err == (
        f"container-hooks-ctk: {config_file}: container-hooks-runtime must be a table [container-hooks-runtime]\n"
    )
    assert config_file.read_text() == "container-hooks-runtime = 1\n"


def test_unknown_keys_are_kept_with_a_warning(capsys: Any, config_file: Path) -> None:
    config_file.parent.mkdir()
    config_file.write_text("[container-hooks]\nfrom-the-future = 1\n")
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")
    assert status == 0
    assert err.splitlines()[0] == (
        f"warning: {config_file}: unknown key 'from-the-future' in [container-hooks] kept; "
        "the toolkit refuses the file until it goes"
    )
    assert toml_loads(config_file.read_text())["container-hooks"] == {"from-the-future": 1}


def test_a_directory_is_named_as_not_the_toml_file_expected(capsys: Any, config_file: Path) -> None:
    config_file.mkdir(parents=True)
    status, _, err = run_ctk(capsys, "config", "-i", "--set", "container-hooks-runtime.log-level=debug")
    assert (status, err) == (1, f"container-hooks-ctk: {config_file}: is a directory, expected a TOML file\n")


def test_output_dash_is_stdout_not_a_file_named_dash(
    capsys: Any, tmp_path: Path, monkeypatch: Any, config_file: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, _ = run_ctk(capsys, "config", "default", "-o", "-")
    assert status == 0 and parse_config(out, "default") == default_config()
    status, out, _ = run_ctk(capsys, "config", "--set", "container-hooks.on-error=skip", "-o", "-")
    assert status == 0 and toml_loads(out)["container-hooks"]["on-error"] == "skip"
    assert not (tmp_path / "-").exists()
