"""container-hooks-ctk hooks list|validate|explain against temporary toolkit roots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest
from ctk_cli import run_ctk

from chts.hooks.problems import hooks_json_errors

AUDIT_DROPIN = {
    "version": "1.0.0",
    "hook": {"path": "/usr/bin/env", "args": ["env", "audit"]},
    "when": {"commands": ["nginx$"]},
    "stages": ["prestart", "poststop"],
}


class Root:
    def __init__(self, base: Path) -> None:
        self.config = base / "config.toml"
        self.hooks = base / "hooks.json"
        self.dropins = base / "hooks.d"
        self.dropins.mkdir()
        self.config.write_text(
            f'[container-hooks]\npath = "{self.hooks}"\nhooks-dirs = ["{self.dropins}"]\n'
            f'[container-hooks-runtime]\ndebug = ""\n'
        )

    def write_hooks(self, hooks: Any) -> None:
        self.hooks.write_text(hooks if isinstance(hooks, str) else json.dumps(hooks, indent=2))

    def write_dropin(self, name: str, content: Any) -> Path:
        path = self.dropins / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    def bundle(self, base: Path, args: Any, hooks: Any = None) -> Path:
        bundle = base / "bundle"
        bundle.mkdir()
        spec: Dict[str, Any] = {"ociVersion": "1.0.2", "process": {"args": args}, "root": {"path": "rootfs"}}
        if hooks is not None:
            spec["hooks"] = hooks
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Root:
    root = Root(tmp_path)
    monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(root.config))
    return root


BAD_HOOKS = """{
  "prestart": [
    {"path": "/bin/true"},
    {"path": "relative"},
    {"path": "/bin/x", "timeout": 0}
  ],
  "poststart": {"path": "/x"},
  "bogus": [],
  "poststop": [{"path": "/bin/true", "env": ["NOEQUALS"]}]
}"""


def test_validate_reports_every_error_with_its_line(capsys: Any, root: Root) -> None:
    root.write_hooks(BAD_HOOKS)
    root.write_dropin("10-typo.json", {"version": "1.0.0", "hooks": {"path": "/x"}, "when": {}, "stages": []})
    root.write_dropin("20-good.json", AUDIT_DROPIN)
    status, out, err = run_ctk(capsys, "hooks", "validate")
    assert status == 1
    lines = out.splitlines()
    assert lines[:5] == [
        f"{root.hooks}:4: prestart[1].path: must be absolute, not 'relative'",
        f"{root.hooks}:5: prestart[2].timeout: must be an integer from 1 to 9223372036 (seconds), not 0",
        f"{root.hooks}:7: poststart: must be a list of hooks",
        f"{root.hooks}:8: unknown stage 'bogus' (stages: prestart, createRuntime, createContainer, "
        "startContainer, poststart, poststop)",
        f"{root.hooks}:9: poststop[0].env: 'NOEQUALS' is not KEY=VALUE",
    ]
    assert lines[5].startswith(f"{root.dropins}/10-typo.json:1: unknown key 'hooks'")
    assert len(lines) == 6
    assert "6 error(s)" in err


def test_validate_syntax_error_has_line_and_column(capsys: Any, root: Root) -> None:
    root.write_hooks('{\n  "prestart": [\n    {"path": "/bin/true",}\n  ]\n}\n')
    status, out, _ = run_ctk(capsys, "hooks", "validate")
    assert status == 1
    assert out.startswith(f"{root.hooks}:3:") and "invalid JSON" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty file"), ("[]", "must be a JSON object of stages"), ("\xff", "invalid JSON")],
)
def test_validate_whole_file_problems(capsys: Any, root: Root, content: str, message: str) -> None:
    root.write_hooks(content)
    status, out, _ = run_ctk(capsys, "hooks", "validate")
    assert status == 1 and out.startswith(str(root.hooks)) and message in out


def test_validate_refuses_files_others_can_write(capsys: Any, root: Root) -> None:
    root.write_hooks({"prestart": [{"path": "/bin/true"}]})
    os.chmod(root.hooks, 0o666)
    status, out, _ = run_ctk(capsys, "hooks", "validate")
    assert status == 1 and "refusing hooks file writable by group and others (mode 0666)" in out


def test_validate_ok_and_warns_about_missing_executables(capsys: Any, root: Root) -> None:
    root.write_hooks(
        {
            "prestart": [{"path": "/bin/true"}, {"path": "/no/such/hook"}],
            "startContainer": [{"path": "/inside/the/container"}],  # resolved in the container: not checked
            "createContainer": [{"path": "/no/such/create-container-hook"}],  # resolved on the host
        }
    )
    root.write_dropin("audit.json", AUDIT_DROPIN)
    status, out, err = run_ctk(capsys, "hooks", "validate")
    assert status == 0
    assert out == "OK: 6 hook(s) from 3 source(s)\n"
    assert err == (
        f"warning: {root.hooks}: prestart hook /no/such/hook does not exist\n"
        f"warning: {root.hooks}: createContainer hook /no/such/create-container-hook does not exist\n"
    )


def test_validate_named_files(capsys: Any, root: Root, tmp_path: Path) -> None:
    good = root.write_dropin("good.json", AUDIT_DROPIN)
    bad_dropin = root.write_dropin("bad.json", {**AUDIT_DROPIN, "when": {"always": "true"}})
    root.write_hooks(BAD_HOOKS)
    status, out, _ = run_ctk(capsys, "hooks", "validate", str(good), str(bad_dropin), str(root.hooks), "/no/such")
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{bad_dropin}:") and "always" in lines[0]
    assert sum(line.startswith(f"{root.hooks}:") for line in lines) == 5
    assert lines[-1] == "/no/such: cannot read: No such file or directory"
    status, out, _ = run_ctk(capsys, "hooks", "validate", str(good))
    assert (status, out) == (0, "OK: 1 file(s)\n")


def test_list_by_source_and_stage(capsys: Any, root: Root) -> None:
    root.write_hooks({"prestart": [{"path": "/bin/true", "args": ["true", "a b"], "timeout": 5}]})
    root.write_dropin("audit.json", AUDIT_DROPIN)
    status, out, _ = run_ctk(capsys, "hooks", "list")
    assert status == 0
    assert out.splitlines() == [
        f"{root.hooks} (1 hook(s))",
        '  prestart         /bin/true args=["true", "a b"] timeout=5s',
        f"{root.dropins} (directory)",
        f"{root.dropins}/audit.json (2 hook(s))",
        '  createRuntime    /usr/bin/env args=["env", "audit"]  when={"commands": ["nginx$"]}',
        '  poststop         /usr/bin/env args=["env", "audit"]  when={"commands": ["nginx$"]}',
    ]


def test_list_json_and_missing_sources(capsys: Any, root: Root) -> None:
    status, out, _ = run_ctk(capsys, "hooks", "list")
    assert status == 0 and f"{root.hooks} (missing: no hooks)" in out
    root.write_hooks(BAD_HOOKS)
    status, out, err = run_ctk(capsys, "hooks", "list", "--json")
    assert status == 1
    data = json.loads(out)
    assert data["hooks"] == [] and data["sources"][0] == str(root.hooks) and len(data["errors"]) == 5
    status, out, err = run_ctk(capsys, "hooks", "list")
    assert status == 1 and "unusable, see the errors below" in out and err.count("error: ") == 5


def test_explain_shows_result_origin_and_reasons(capsys: Any, root: Root, tmp_path: Path) -> None:
    setkey = {"path": "/proc/1/exe", "args": ["libnetwork-setkey", "abc"]}
    root.write_hooks({"prestart": [{"path": "/bin/true"}, setkey], "poststop": [{"path": "/bin/false"}]})
    root.write_dropin("audit.json", AUDIT_DROPIN)
    root.write_dropin("never.json", {**AUDIT_DROPIN, "when": {"annotations": {"^x$": "y"}}, "stages": ["poststart"]})
    bundle = root.bundle(tmp_path, ["/usr/sbin/nginx", "-g"], hooks={"prestart": [setkey]})
    before = (bundle / "config.json").read_bytes()
    status, out, _ = run_ctk(capsys, "hooks", "explain", "--bundle", str(bundle))
    assert status == 0, out
    assert (bundle / "config.json").read_bytes() == before
    text = out.splitlines()
    audit = (
        f'  + /usr/bin/env args=["env", "audit"]  ({root.dropins}/audit.json: matched: commands: '
        "'/usr/sbin/nginx' matches 'nginx$')"
    )
    assert text[:3] == [
        "prestart:",
        '    /proc/1/exe args=["libnetwork-setkey", "abc"]  (already in config.json)',
        f"  + /bin/true  ({root.hooks}: applies to every container)",
    ]
    assert text[3:6] == ["poststop:", f"  + /bin/false  ({root.hooks}: applies to every container)", audit]
    # The drop-in's prestart is injected as createRuntime, as Podman 5 does.
    assert text[6:8] == ["createRuntime:", audit]
    assert "not injected:" in text
    assert '  - prestart /proc/1/exe args=["libnetwork-setkey", "abc"]  (identical hook already in config.json)' in text
    assert any(line.startswith("  - poststart /usr/bin/env") and "not matched" in line for line in text)
    assert text[-1] == f"4 hook(s) would be added; {bundle}/config.json is not changed by this command"


def test_explain_marker_and_failure_policy(capsys: Any, root: Root, tmp_path: Path) -> None:
    root.write_hooks({"prestart": [{"path": "/bin/true"}]})
    bundle = root.bundle(tmp_path, ["sh"], hooks={"prestart": [{"path": "/usr/bin/container-hooks"}]})
    status, out, _ = run_ctk(capsys, "hooks", "explain", "--bundle", str(bundle))
    assert status == 0 and "has the container-hooks marker" in out
    root.write_dropin("bad.json", "{")
    status, out, _ = run_ctk(capsys, "hooks", "explain", "-b", str(bundle))
    assert status == 1
    assert out.startswith(f"error: {root.dropins}/bad.json:") and "the shim would fail this create" in out
    root.config.write_text(
        root.config.read_text().replace("[container-hooks]\n", '[container-hooks]\non-error = "skip"\n')
    )
    status, out, _ = run_ctk(capsys, "hooks", "explain", "-b", str(bundle))
    assert status == 0 and out.startswith(f"skipped (on-error = skip): {root.dropins}/bad.json:")


def test_explain_bad_bundles(capsys: Any, root: Root, tmp_path: Path) -> None:
    status, _, err = run_ctk(capsys, "hooks", "explain", "--bundle", str(tmp_path / "nothing"))
    assert status == 1 and "config.json: no such file" in err
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "config.json").write_text('{"hooks": {"prestart": {}}}')
    root.write_hooks({"prestart": [{"path": "/bin/true"}]})
    status, _, err = run_ctk(capsys, "hooks", "explain", "--bundle", str(bundle))
    assert status == 1 and err.startswith(f"container-hooks-ctk: {bundle}/config.json: ")
    (bundle / "config.json").write_text("{oops")
    status, _, err = run_ctk(capsys, "hooks", "explain", "--bundle", str(bundle))
    assert status == 1 and "invalid JSON" in err and err.count("\n") == 1


def test_broken_config_is_one_line(capsys: Any, root: Root) -> None:
    root.config.write_text("[container-hooks]\npath = 3\n")
    for action in ("list", "validate"):
        status, _, err = run_ctk(capsys, "hooks", action)
        assert status == 1 and err == f"container-hooks-ctk: {root.config}: [container-hooks] path must be a string\n"


def test_a_valid_hooks_json_has_no_errors() -> None:
    assert hooks_json_errors('{"prestart": [{"path": "/x"}]}', "f") == []


def test_help_has_examples(capsys: Any) -> None:
    for argv in (["hooks"], ["hooks", "list"], ["hooks", "validate"], ["hooks", "explain"]):
        status, out, _ = run_ctk(capsys, *argv, "--help")
        assert status == 0 and "example" in out


def test_files_skipped_whatever_on_error_says_are_warnings_not_errors(capsys: Any, root: Root) -> None:
    root.write_dropin("10-ok.json", AUDIT_DROPIN)
    greek = root.write_dropin("20-greek.json", {**AUDIT_DROPIN, "when": {"commands": ["\\p{Greek}"]}})
    status, out, err = run_ctk(capsys, "hooks", "validate")
    assert status == 0 and out.startswith("OK: ")
    assert f"warning: {greek}:1: when.commands: Unicode script \\p{{Greek}} is valid in Go" in err
    status, out, err = run_ctk(capsys, "hooks", "list")
    assert status == 0 and f"{greek} (skipped, see the warnings below)" in out and "warning:" in err


def test_validate_reads_a_0_1_0_file_named_on_the_command_line(capsys: Any, root: Root) -> None:
    umount = {"hook": "/usr/libexec/oci/hooks.d/oci-umount", "hasbindmounts": True, "stages": ["prestart"]}
    good = root.write_dropin("oci-umount.json", umount)
    bad = root.write_dropin("oci-bad.json", {**umount, "stage": ["prestart"]})
    status, out, _ = run_ctk(capsys, "hooks", "validate", str(good))
    assert status == 0, out
    status, out, _ = run_ctk(capsys, "hooks", "validate", str(bad))
    assert status == 1 and out.splitlines() == [f"{bad}:1: cannot set both 'stage' and 'stages'"]


def test_explain_lists_precreate_hooks_in_the_order_the_shim_runs_them(capsys: Any, root: Root, tmp_path: Path) -> None:
    precreate = {
        "version": "1.0.0",
        "hook": {"path": "/usr/libexec/rewrite"},
        "when": {"always": True},
        "stages": ["precreate"],
    }
    root.write_dropin("10-rewrite.json", precreate)
    root.write_dropin("20-never.json", {**precreate, "when": {"commands": ["^nginx$"]}})
    bundle = root.bundle(tmp_path, ["sh"])
    status, out, _ = run_ctk(capsys, "hooks", "explain", "--bundle", str(bundle))
    assert status == 0, out
    lines = out.splitlines()
    start = lines.index("precreate (run by the shim before runc, in this order; each may rewrite config.json):")
    assert lines[start + 1] == f"  > /usr/libexec/rewrite  ({root.dropins}/10-rewrite.json: matched: always: true)"
    assert any(line.startswith("  - precreate /usr/libexec/rewrite") and "not matched" in line for line in lines)
    assert lines[-1] == f"0 hook(s) would be added; {bundle}/config.json is not changed by this command"
