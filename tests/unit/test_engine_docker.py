"""Docker daemon.json: byte-exact edits in any layout, shim entries kept, the previous default restored."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from engine_cases import NAME, SHIM, configured, fake_binary, runtime_cmd, unconfigured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chts.base.json_edit import add_member
from chts.engines import RuntimeRequest
from chts.engines.docker import ENGINE, added, load, removed, state_path
from chts.errors import ToolkitError

STATE = ".container-hooks-state.json"


def test_shim_entries_without_a_path_are_kept(tmp_path: Path, capsys: Any) -> None:
    """Docker documents `runtimeType` + `options` entries (containerd shims): neither refused nor touched."""
    config = tmp_path / "daemon.json"
    text = (
        '{\n  "runtimes": {\n    "gvisor": {\n      "runtimeType": "io.containerd.runsc.v1",\n'
        '      "options": {"TypeUrl": "io.containerd.runsc.v1.options"}\n    }\n  }\n}\n'
    )
    config.write_text(text)
    configured(capsys, "docker", config, "--set-as-default")
    written = json.loads(config.read_text())
    assert written["runtimes"]["gvisor"] == json.loads(text)["runtimes"]["gvisor"]
    assert written["runtimes"][NAME] == {"path": SHIM}
    assert written["default-runtime"] == NAME
    unconfigured(capsys, "docker", config)
    assert config.read_text() == text


def test_a_missing_file_gets_a_readable_one_and_gives_back_an_empty_object(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "docker" / "daemon.json"
    configured(capsys, "docker", config)
    assert config.read_text() == f'{{\n  "runtimes": {{\n    "{NAME}": {{\n      "path": "{SHIM}"\n    }}\n  }}\n}}\n'
    unconfigured(capsys, "docker", config)
    assert config.read_text() == "{\n}\n"


def test_runc_is_reserved(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    status, _, err = runtime_cmd(capsys, "configure", "docker", config, "--runtime-name=runc")
    assert status != 0 and "reserved" in err
    assert not config.exists()


def test_a_runtime_of_our_name_the_user_wrote_is_refused(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    text = json.dumps({"runtimes": {NAME: {"path": "/old/shim", "runtimeArgs": ["--debug"]}}})
    config.write_text(text)
    status, _, err = runtime_cmd(capsys, "configure", "docker", config)
    assert status != 0 and f"already defines runtimes.{NAME}" in err
    assert config.read_text() == text and not Path(f"{config}{STATE}").exists()


def test_without_a_record_unconfigure_leaves_the_entry(tmp_path: Path, capsys: Any) -> None:
    """Nothing shows configure added it: the same-name rule says it is the user's."""
    config = tmp_path / "daemon.json"
    text = json.dumps({"runtimes": {NAME: {"path": SHIM}}, "default-runtime": NAME})
    config.write_text(text)
    status, _, err = runtime_cmd(capsys, "unconfigure", "docker", config)
    assert status == 0, err
    assert "no record that configure added" in err and "left as it is" in err
    assert config.read_text() == text


def test_a_record_of_the_first_release_is_still_undone(tmp_path: Path, capsys: Any) -> None:
    """Records written before they held text: values, `had-runtimes`, a taken-over entry (named, not put back)."""
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"runtimes": {NAME: {"path": SHIM, "runtimeArgs": ["-x"]}}, "default-runtime": NAME}))
    record = {"runtime": {"path": "/old", "runtimeArgs": ["-x"]}, "had-runtimes": False, "default-runtime": "runc"}
    Path(f"{config}{STATE}").write_text(json.dumps(record))
    status, _, err = runtime_cmd(capsys, "unconfigure", "docker", config)
    assert status == 0, err
    assert json.loads(config.read_text()) == {"default-runtime": "runc"}
    assert '"/old"' in err and "add it back by hand" in err


def test_reload_refuses_a_pid_that_is_not_dockerd(tmp_path: Path, capsys: Any, bystander: Any) -> None:
    """A stale pid file naming another live process: it is not signalled (the test's own child, never PID 1)."""
    config = tmp_path / "daemon.json"
    pid_file = tmp_path / "docker.pid"
    pid_file.write_text(f"{bystander.pid}\n")
    status, _, err = runtime_cmd(capsys, "configure", "docker", config, "--reload", f"--pid-file={pid_file}")
    assert status != 0 and "not dockerd" in err
    assert bystander.poll() is None


def test_effective_has_the_builtin_runc_and_the_files_default(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"runtimes": {"crun": {"path": "/usr/bin/crun"}}, "default-runtime": "crun"}))
    effective = ENGINE.effective(str(config), "file")
    assert effective.default == "crun" and set(effective.runtimes) == {"runc", "crun"}
    assert ENGINE.low_level_runtime(effective, "crun") == "/usr/bin/crun"
    assert ENGINE.effective(str(tmp_path / "none.json"), "file").default == "runc"


def test_low_level_runtime_of_each_entry_form(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(
        json.dumps(
            {
                "runtimes": {
                    "bin": {"runtimeType": "io.containerd.runc.v2", "options": {"BinaryName": "/opt/crun"}},
                    "kata": {"runtimeType": "io.containerd.kata.v2"},
                    "sh": {"path": "sh"},
                }
            }
        )
    )
    effective = ENGINE.effective(str(config), "file")
    assert ENGINE.low_level_runtime(effective, "bin") == "/opt/crun"
    assert ENGINE.low_level_runtime(effective, "kata") is None  # its own shim: nothing runc-like to exec
    assert ENGINE.low_level_runtime(effective, "io.containerd.runsc.v1") is None
    assert (ENGINE.low_level_runtime(effective, "sh") or "").endswith("/sh")  # a name: looked up in $PATH


def test_command_source_says_why_dockerd_cannot_be_asked(tmp_path: Path, monkeypatch: Any) -> None:
    fake_binary(tmp_path / "bin", monkeypatch, "dockerd", "echo 'Usage: dockerd [OPTIONS]'\n")  # 20.10's --help
    config = tmp_path / "daemon.json"
    config.write_text("{}")
    with pytest.raises(ToolkitError, match="no --validate"):
        ENGINE.effective(str(config), "command")
    assert ENGINE.effective(str(config), "auto").source == "file"


def test_a_dockerd_with_validate_checks_the_file(tmp_path: Path, monkeypatch: Any) -> None:
    script = 'case "$1" in --help) echo "  --validate";; *) echo "unable to configure: bad" >&2; exit 1;; esac\n'
    fake_binary(tmp_path / "bin", monkeypatch, "dockerd", script)
    config = tmp_path / "daemon.json"
    config.write_text("{}")
    with pytest.raises(ToolkitError, match="dockerd --validate refused it: unable to configure: bad"):
        ENGINE.effective(str(config), "auto")


# --------------------------------------------------------------------------- any layout, byte for byte

KEYS = st.sampled_from(["log-level", "debug", "labels", "runtimes", "default-runtime", "mtu", "caf\u00e9", "x"])
SCALARS = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=6),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=6
)
RUNTIME = st.one_of(
    st.fixed_dictionaries({"path": st.sampled_from(["/usr/bin/crun", "runc"])}),
    st.fixed_dictionaries(
        {"path": st.just("/x"), "runtimeArgs": st.lists(st.sampled_from(["--debug", "-v"]), max_size=2)}
    ),
    st.fixed_dictionaries(
        {"runtimeType": st.just("io.containerd.runsc.v1"), "options": st.dictionaries(KEYS, SCALARS, max_size=2)}
    ),
)
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "runtimes": st.dictionaries(st.sampled_from(["crun", "nvidia", "gvisor"]), RUNTIME, max_size=3),
        "default-runtime": st.sampled_from(["runc", "crun", "io.containerd.runsc.v1"]),
        "log-opts": st.dictionaries(KEYS, st.text(max_size=4), max_size=2),
        "labels": st.lists(st.text(max_size=4), max_size=3),
        "other": VALUES,
    },
)
LAYOUTS = st.fixed_dictionaries(
    {
        "indent": st.sampled_from([None, 0, 2, 4, "\t"]),
        "separators": st.sampled_from([None, (",", ":"), (", ", ": "), (",", ": ")]),
        "ensure_ascii": st.booleans(),
        "newline": st.sampled_from(["\n", "\r\n"]),
        "final": st.sampled_from(["", "\n", "\r\n", "\n\n"]),
        "sort_keys": st.booleans(),
    }
)


def write_layout(document: Dict[str, Any], layout: Dict[str, Any]) -> str:
    text = json.dumps(
        document,
        indent=layout["indent"],
        separators=layout["separators"],
        ensure_ascii=layout["ensure_ascii"],
        sort_keys=layout["sort_keys"],
    )
    return text.replace("\n", str(layout["newline"])) + str(layout["final"])


def only_insertions(before: str, after: str, replaced: Optional[str]) -> None:
    """Fail when anything of ``before`` is not in ``after`` as it was (but the text ``replaced``)."""
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag != "insert":
            assert replaced is not None and replaced.find(before[i1:i2]) >= 0, (tag, before[i1:i2], after[j1:j2])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS, layout=LAYOUTS, set_as_default=st.booleans())
def test_any_layout_keeps_every_byte_it_does_not_own(
    document: Dict[str, Any], layout: Dict[str, Any], set_as_default: bool
) -> None:
    text = write_layout(document, layout)
    request = RuntimeRequest("daemon.json", NAME, SHIM, set_as_default)
    new, record = added(text, request)
    expected = {**document, "runtimes": {**document.get("runtimes", {}), NAME: {"path": SHIM}}}
    if set_as_default:
        expected["default-runtime"] = NAME
    assert json.loads(new) == expected
    replaced = "default-runtime" in document and set_as_default
    only_insertions(text, new, json.dumps(document.get("default-runtime")) if replaced else None)
    if layout["newline"] == "\r\n":  # no bare LF added to a CRLF file

        def bare_lf(data: str) -> int:
            return data.replace("\r\n", "").count("\n")

        assert bare_lf(new) == bare_lf(text)
    notes: List[str] = []
    assert removed(new, record, NAME, "daemon.json", notes) == text  # the original bytes
    assert notes == []


def test_a_byte_order_mark_stays(tmp_path: Path, capsys: Any) -> None:
    """dockerd strips a UTF-8 BOM before parsing; the file keeps it."""
    config = tmp_path / "daemon.json"
    original = b'\xef\xbb\xbf{\r\n  "debug": true\r\n}\r\n'
    config.write_bytes(original)
    configured(capsys, "docker", config, "--set-as-default")
    assert config.read_bytes().startswith(b'\xef\xbb\xbf{\r\n  "debug": true,\r\n  "runtimes": {\r\n')
    unconfigured(capsys, "docker", config)
    assert config.read_bytes() == original


def test_duplicate_keys_are_refused_not_guessed(tmp_path: Path, capsys: Any) -> None:
    """json.loads keeps the last of two `runtimes`; which one dockerd's user meant is theirs to say."""
    config = tmp_path / "daemon.json"
    config.write_text('{"runtimes": {}, "runtimes": {"crun": {"path": "/usr/bin/crun"}}}')
    status, _, err = runtime_cmd(capsys, "configure", "docker", config)
    assert status != 0 and "runtimes appears 2 times; fix it by hand" in err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS, layout=LAYOUTS, set_as_default=st.booleans(), extra=st.dictionaries(KEYS, SCALARS))
def test_unconfigure_after_the_user_edited_the_file(
    document: Dict[str, Any], layout: Dict[str, Any], set_as_default: bool, extra: Dict[str, Any]
) -> None:
    """Members the user added after configure stay; only ours (and the default we set) go."""
    text = write_layout(document, layout)
    new, record = added(text, RuntimeRequest("daemon.json", NAME, SHIM, set_as_default))
    extra = {f"user-{key}": value for key, value in extra.items()}
    for key, value in extra.items():
        new, _ = add_member(new, [key], value, "daemon.json")
    result = json.loads(removed(new, record, NAME, "daemon.json", []))
    assert result == {**document, **extra}


def test_a_broken_state_record_is_named_and_nothing_changes(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "daemon.json"
    config.write_text("{}\n")
    Path(f"{config}{STATE}").write_text("{not json")
    for action in ("configure", "unconfigure"):
        status, _, err = runtime_cmd(capsys, action, "docker", config)
        assert status != 0 and err.startswith(f"container-hooks-ctk: {config}{STATE}: invalid JSON"), err
    assert config.read_text() == "{}\n"


def test_a_dockerd_with_validate_is_asked_about_this_file_and_named_as_the_source(
    tmp_path: Path, monkeypatch: Any
) -> None:
    bin_dir = tmp_path / "bin"
    script = f'case "$1" in --help) echo "  --validate";; *) echo "$@" > {bin_dir}/argv;; esac\n'
    fake_binary(bin_dir, monkeypatch, "dockerd", script)
    config = tmp_path / "daemon.json"
    config.write_text('{"default-runtime": "io.containerd.runsc.v1"}')
    effective = ENGINE.effective(str(config), "auto")
    assert (bin_dir / "argv").read_text().split() == ["--validate", "--config-file", str(config)]
    assert effective.source == "file, checked by dockerd --validate"
    # a containerd shim named as the default needs no entry: dockerd hands it to containerd
    assert effective.runtimes["io.containerd.runsc.v1"] == {"runtimeType": "io.containerd.runsc.v1"}
    (bin_dir / "argv").unlink()
    assert ENGINE.effective(str(config), "file").source == "file"
    assert not (bin_dir / "argv").exists()  # the file source asks no dockerd


def test_load_refuses_a_broken_daemon_json_and_names_a_broken_state_record(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text("{")
    with pytest.raises(ToolkitError, match="daemon.json"):
        load(str(config))
    config.write_text("{}")
    Path(state_path(str(config))).write_text("")
    with pytest.raises(ToolkitError) as caught:
        load(str(config))
    assert str(caught.value).startswith(f"{state_path(str(config))}: empty file, expected a state record file")
