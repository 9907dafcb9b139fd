"""containerd: versions 1, 2 and 3, option inheritance, the previous default recorded in the file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import newer_engines
import pytest
from conftest import require, require_binary
from engine_cases import NAME, SHIM, configured, fake_binary, runtime_cmd, snapshot, unconfigured

from chts.base.text_files import toml_loads
from chts.base.toml_edit import BLOCK_END, WAS_PREFIX
from chts.ctk import runtime
from chts.ctk.runtime import change_runtime
from chts.engines import RuntimeRequest, containerd, containerd_config
from chts.engines.containerd import ENGINE
from chts.engines.runtime_binaries import search_path
from chts.errors import ToolkitError

PLUGIN = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}


@pytest.fixture(autouse=True)
def no_containerd_binary(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Unit tests read the files as containerd would, whatever containerd this host has (integration tests ask it)."""
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)
    # configure may record the chained runtime in the toolkit config: never the host's
    monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(tmp_path_factory.mktemp("toolkit") / "config.toml"))


def containerd_table(config: Path, version: int) -> Dict[str, Any]:
    table: Dict[str, Any] = toml_loads(config.read_text())["plugins"][PLUGIN[version]]["containerd"]
    return table


@pytest.mark.parametrize("version", [1, 2, 3])
def test_each_config_version_uses_its_plugin(tmp_path: Path, capsys: Any, version: int) -> None:
    plugin = f'"{PLUGIN[version]}"' if "." in PLUGIN[version] else PLUGIN[version]
    header = "" if version == 1 else f"version = {version}\n"  # a file without `version` is version 1
    original = (
        f'{header}# mine\n[plugins.{plugin}.containerd]\n  default_runtime_name = "crun"\n'
        f'[plugins.{plugin}.containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n'
        f'[plugins.{plugin}.containerd.runtimes.crun.options]\n  BinaryName = "/usr/bin/crun"\n'
        f'  SystemdCgroup = true\n  Root = "/run/crun"\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(original)
    configured(capsys, "containerd", config, "--set-as-default")
    table = containerd_table(config, version)
    assert table["default_runtime_name"] == NAME
    # the options of the previous default (crun here, not runc) carry over; only BinaryName is ours: the
    # shim's name for crun, which containerd ran (chts/ctk/chaining.py)
    assert table["runtimes"][NAME] == {
        "runtime_type": "io.containerd.runc.v2",
        "options": {"BinaryName": f"{SHIM}.crun", "SystemdCgroup": True, "Root": "/run/crun"},
    }
    assert f'{WAS_PREFIX}  default_runtime_name = "crun"' in config.read_text()  # the record, in the file
    unconfigured(capsys, "containerd", config)
    assert config.read_text() == original


def test_without_set_as_default_the_default_is_untouched(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n')
    configured(capsys, "containerd", config)
    table = containerd_table(config, 2)
    assert "default_runtime_name" not in table
    assert table["runtimes"][NAME]["options"] == {"BinaryName": SHIM}


def test_a_missing_file_gets_a_minimal_config_with_runc(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "etc" / "containerd" / "config.toml"
    configured(capsys, "containerd", config, "--set-as-default")
    document = toml_loads(config.read_text())
    assert document["version"] == 2
    table = document["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert set(table["runtimes"]) == {"runc", NAME}
    assert table["default_runtime_name"] == NAME


def test_a_layout_that_defeats_a_minimal_edit_is_refused(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    # the containerd table set by dotted keys: a [..containerd] header appended would redefine it
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  containerd.snapshotter = "overlayfs"\n')
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config, "--set-as-default")
    assert status != 0 and "defeats a minimal edit" in err and err.count("\n") == 1
    assert snapshot(tmp_path) == before


def test_a_runtime_of_that_name_defined_by_the_user_is_left_alone(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{NAME}]\n')
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config)
    assert status != 0 and "already defines runtime" in err
    unconfigured(capsys, "containerd", config)
    assert NAME in config.read_text()  # unconfigure removes only what configure added


def effective(config: Path) -> Any:
    return ENGINE.effective(str(config), "file")


def test_a_runtimes_table_replaces_the_built_in_one_on_1x(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\n')
    assert set(effective(config).runtimes) == {"crun"}  # runc gone: what broke the CRI plugin
    config.write_text("version = 2\n")
    assert effective(config).runtimes == {"runc": {"runtime_type": "io.containerd.runc.v2"}}
    assert effective(config).default == "runc"


def test_imports_replace_plugin_tables_on_1x_and_merge_on_2x(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_in = tmp_path / "conf.d" / "10-x.toml"
    drop_in.parent.mkdir()
    drop_in.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.x]\n')
    config = tmp_path / "config.toml"
    config.write_text(
        f'version = 2\nimports = ["{tmp_path}/conf.d/*.toml"]\n'
        '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "mine"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
    )
    one = effective(config)
    assert set(one.runtimes) == {"x"} and "sandbox_image" not in str(one.other)
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: "/fake/containerd")
    monkeypatch.setattr(containerd_config, "binary_major", lambda binary: 2)
    two = effective(config)
    assert set(two.runtimes) == {"runc", "x"} and "mine" in str(two.other)


def test_relative_imports_and_a_missing_import(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = "a"\n'
    )
    config = tmp_path / "config.toml"
    config.write_text('version = 2\nimports = ["a.toml"]\n')
    assert effective(config).default == "a"  # relative to the importing file
    config.write_text('version = 2\nimports = ["gone.toml"]\n')
    with pytest.raises(ToolkitError, match=r"gone.toml: imported but missing: containerd would refuse to start"):
        effective(config)


def test_legacy_default_runtime_and_untrusted_tables_on_1x(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[plugins.cri.containerd.default_runtime]\n"
        'runtime_type = "io.containerd.runc.v2"\n'
        "[plugins.cri.containerd.untrusted_workload_runtime]\n"
        'runtime_type = "io.containerd.kata.v2"\n'
    )
    view = effective(config)
    assert view.default == "default"
    assert set(view.runtimes) == {"runc", "default", "untrusted"}
    assert ENGINE.low_level_runtime(view, "untrusted") is None  # kata runs no runc-like binary


def test_zero_values_are_unset(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
        'runtime_type = "io.containerd.runc.v2"\nbase_runtime_spec = ""\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        'BinaryName = ""\nSystemdCgroup = false\n'
    )
    view = effective(config)
    assert view.runtimes == {"runc": {"runtime_type": "io.containerd.runc.v2"}}
    assert ENGINE.low_level_runtime(view, "runc") == shutil.which("runc", path=search_path())


def test_the_verification_restores_the_file_when_runc_would_be_lost(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the edit as it was before the fix: a runtimes table without runc
    monkeypatch.setattr(
        containerd, "runtime_tables", lambda table, request: {request.name: containerd.shim_entry(table, request)}
    )
    config = tmp_path / "config.toml"
    original = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n'
    config.write_text(original)
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config)
    assert status == 1 and err.count("\n") == 1
    says = "containerd would not run as asked: the default runtime 'runc' is not defined any more (seen by file)"
    assert says in err and err.endswith("; the files are restored\n")
    assert snapshot(tmp_path) == {"config.toml": original.encode()}  # and no backup left behind
    backup = tmp_path / "config.toml.container-hooks.bak"
    backup.write_text("an older backup\n")
    assert runtime_cmd(capsys, "configure", "containerd", config)[0] == 1
    assert backup.read_text() == "an older backup\n"


def test_a_file_containerd_rejects_is_named(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: None)
    config = tmp_path / "config.toml"
    config.write_text("version = 2\n")
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config, "--config-source=command")
    assert status == 1 and "containerd is not on PATH: --config-source=command needs it" in err
    assert config.read_text() == "version = 2\n"


def test_disabled_cri_plugin_is_warned_about(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config)
    assert status == 0
    assert "disables the CRI plugin (disabled_plugins): this edit has no effect until it is enabled" in err


def test_crlf_config_comes_back_byte_for_byte(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    original = b'version = 2\r\n[plugins."io.containerd.grpc.v1.cri".containerd]\r\n  default_runtime_name = "runc"\r\n'
    config.write_bytes(original)
    configured(capsys, "containerd", config, "--set-as-default")
    assert b"\n" not in config.read_bytes().replace(b"\r\n", b"")
    unconfigured(capsys, "containerd", config)
    assert config.read_bytes() == original


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('version = 2\nimports = "conf.d/*.toml"\n', "imports must be a list of strings"),
        ("version = 2\nimports = [1]\n", "imports must be a list of strings"),
    ],
)
def test_bad_imports_are_one_clear_line(tmp_path: Path, capsys: Any, content: str, says: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    for action in ("configure", "unconfigure"):
        status, _, err = runtime_cmd(capsys, action, "containerd", config, "--drop-in")
        assert status == 1 and err == f"container-hooks-ctk: {config}: {says}\n"
    assert config.read_text() == content


def test_a_broken_imported_file_is_named(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-x.toml").write_text("[plugins\n")
    config = tmp_path / "config.toml"
    config.write_text(f'version = 2\nimports = ["{tmp_path}/conf.d/*.toml"]\n')
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config)
    assert status == 1 and err.startswith(f"container-hooks-ctk: {tmp_path}/conf.d/10-x.toml: invalid TOML")
    assert err.count("\n") == 1 and config.read_text().startswith("version = 2\nimports")


def test_a_drop_in_of_our_name_written_by_someone_else_is_refused(tmp_path: Path, capsys: Any) -> None:
    theirs = tmp_path / "conf.d" / "99-container-hooks.toml"
    theirs.parent.mkdir()
    theirs.write_text("# not ours\nversion = 2\n")
    config = tmp_path / "config.toml"
    config.write_text("version = 2\n")
    before = snapshot(tmp_path)
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config, "--drop-in")
    assert status == 1 and f"{theirs}: exists and was not written by this tool" in err
    unconfigured(capsys, "containerd", config)
    assert snapshot(tmp_path) == before  # unconfigure leaves it too


def test_unconfigure_refuses_a_block_whose_end_line_was_deleted(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text("version = 2\n")
    configured(capsys, "containerd", config)
    text = config.read_text().replace(BLOCK_END + "\n", "") + "# the operator's own line\n"
    config.write_text(text)
    status, _, err = runtime_cmd(capsys, "unconfigure", "containerd", config)
    assert status == 1 and err.count("\n") == 1 and "has lost its end line" in err
    assert config.read_text() == text


def test_option_names_in_any_case_are_one_option(tmp_path: Path, capsys: Any) -> None:
    """kubespray wrote `binaryName`/`systemdCgroup`: containerd matches names without case, so must we."""
    config = tmp_path / "config.toml"
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
        'runtime_type = "io.containerd.runc.v2"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        'systemdCgroup = true\nbinaryName = "/opt/bin/runc"\n'
    )
    configured(capsys, "containerd", config)
    ours = containerd_table(config, 2)["runtimes"][NAME]["options"]
    assert ours == {"systemdCgroup": True, "BinaryName": f"{SHIM}.runc"}  # never two spellings of the binary
    view = effective(config)
    assert view.runtimes["runc"]["options"] == {"SystemdCgroup": True, "BinaryName": "/opt/bin/runc"}
    assert ENGINE.low_level_runtime(view, "runc") == "/opt/bin/runc"
    assert ENGINE.low_level_runtime(view, NAME) == f"{SHIM}.runc"  # the shim's name for /opt/bin/runc


DEBIAN_12 = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n'


def fake_containerd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, dump: str) -> None:
    """A containerd of ``version`` whose `config dump` runs the sh script ``dump`` (the file is "$2")."""
    script = f'[ "$1" = --version ] && echo "containerd github.com/containerd/containerd {version} x" && exit 0\n'
    binary = fake_binary(tmp_path / "bin", monkeypatch, "containerd", script + dump)
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: str(binary))


def test_an_empty_sandbox_mode_is_podsandbox(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """containerd 1.7 fills `sandbox_mode = "podsandbox"` into runc as it starts, so its dump of Debian's file
    has it and its dump of the configured file (runc written without it) has "": one setting, not a change."""
    runc = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n'
    builtin = containerd_config.cri_view(toml_loads(f'version = 2\n{runc}sandbox_mode = "podsandbox"\n'), "d", 1)
    written = containerd_config.cri_view(toml_loads(f'version = 2\n{runc}sandbox_mode = ""\n'), "d", 1)
    assert builtin.runtimes == written.runtimes == {"runc": {"runtime_type": "io.containerd.runc.v2"}}
    # end to end, with a containerd 1.7 whose dump says podsandbox before the edit and "" after it
    config = tmp_path / "config.toml"
    config.write_text(DEBIAN_12)
    dump = f"""cat "$2"; grep -q container-hooks "$2" || printf '{runc}sandbox_mode = "podsandbox"\\n'\n"""
    fake_containerd(tmp_path, monkeypatch, "1.7.24", dump)
    configured(capsys, "containerd", config)
    unconfigured(capsys, "containerd", config)
    assert config.read_text() == DEBIAN_12


@pytest.mark.parametrize("source", ["file", "command"])
def test_a_version_1_file_on_containerd_2_is_refused_in_one_line(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """containerd 2.x ignores a version-1 file's CRI runtimes: an edit there would add nothing."""
    original = '[plugins.cri.containerd.runtimes.kata]\nruntime_type = "io.containerd.kata.v2"\n'
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    config.write_text(original)
    fake_containerd(tmp_path, monkeypatch, "2.1.9", "echo version = 3\n")
    assert set(effective(config).runtimes) == {"runc"}  # as 2.x reads it: kata is not there
    for extra in ([], ["--drop-in"], ["--set-as-default"]):
        status, out, err = runtime_cmd(capsys, "configure", "containerd", config, f"--config-source={source}", *extra)
        assert status == 1 and err.count("\n") == 1 and out == ""
        assert "config version 1 (`version = 1` or no `version` line): containerd 2.x ignores" in err
        assert snapshot(tmp_path / "etc") == {"config.toml": original.encode()}
    assert not (tmp_path / "etc" / "conf.d").exists()


def test_a_disabled_cri_plugin_is_a_warning_with_the_real_dump(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker's containerd.io file: `config dump` leaves the disabled plugin's settings out, so the runtimes
    come from the files; configure warns and succeeds, as the README says."""
    original = '#   Copyright 2018-2022 Docker Inc.\ndisabled_plugins = ["cri"]\n'
    config = tmp_path / "config.toml"
    config.write_text(original)
    fake_containerd(tmp_path, monkeypatch, "1.7.24", "echo 'disabled_plugins = [\"cri\"]'\n")
    status, _, err = runtime_cmd(capsys, "configure", "containerd", config)
    assert status == 0, err
    assert "disables the CRI plugin (disabled_plugins): this edit has no effect until it is enabled" in err
    assert NAME in ENGINE.effective(str(config), "command").runtimes
    unconfigured(capsys, "containerd", config)
    assert config.read_text() == original


def test_drop_in_unconfigure_leaves_the_directory_as_it_was(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(DEBIAN_12)
    configured(capsys, "containerd", config, "--drop-in")
    assert (tmp_path / "conf.d" / "99-container-hooks.toml").is_file()
    configured(capsys, "containerd", config, "--drop-in", "--set-as-default")  # a second run keeps the record
    unconfigured(capsys, "containerd", config)
    assert not (tmp_path / "conf.d").exists()  # configure created it
    (tmp_path / "conf.d").mkdir()
    configured(capsys, "containerd", config, "--drop-in")
    unconfigured(capsys, "containerd", config)
    assert (tmp_path / "conf.d").is_dir()  # it was there before: it stays, empty
    # an imported directory that did not exist yet (EKS nodeadm's config.d)
    config.write_text(f'version = 2\nimports = ["{tmp_path}/config.d/*.toml"]\n')
    configured(capsys, "containerd", config, "--drop-in")
    unconfigured(capsys, "containerd", config)
    assert not (tmp_path / "config.d").exists()


def test_a_failed_configure_leaves_no_directory_and_says_nothing_was_written(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "verification_problem", lambda *args: "runtime 'x' is gone (seen by file)")
    config = tmp_path / "config.toml"
    config.write_text(DEBIAN_12)
    for extra in ([], ["--drop-in"]):
        status, out, err = runtime_cmd(capsys, "configure", "containerd", config, *extra)
        assert status == 1 and err.endswith("runtime 'x' is gone (seen by file); the files are restored\n")
        assert "wrote" not in out and "previous content" not in out
        assert snapshot(tmp_path) == {"config.toml": DEBIAN_12.encode()}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no conf.d/


def test_runc_with_an_empty_runtime_type_is_runc_v2(tmp_path: Path, capsys: Any) -> None:
    """`runtime_type = ""` runs containerd's default, runc.v2: the builder copies runc's options, as the
    verifier expects."""
    config = tmp_path / "config.toml"
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = ""\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nSystemdCgroup = true\n'
    )
    configured(capsys, "containerd", config, "--set-as-default")
    ours = containerd_table(config, 2)["runtimes"][NAME]
    assert ours == {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True, "BinaryName": SHIM}}


def test_the_drop_in_is_written_before_the_import_that_names_it_and_removed_after(tmp_path: Path) -> None:
    """A configure killed between its two writes must not leave the main file importing a file that is not
    there: containerd refuses to start on it (`failed to load TOML: ... no such file or directory`)."""
    config = tmp_path / "config.toml"
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = "runc"\n')
    request = RuntimeRequest(str(config), NAME, SHIM, set_as_default=False, config_source="file", drop_in=True)
    drop_in = str(tmp_path / "conf.d" / "99-container-hooks.toml")
    assert [edit.path for edit in ENGINE.configure(request).edits] == [drop_in, str(config)]
    change_runtime(ENGINE, request, True, say=lambda line: None)
    assert [edit.path for edit in ENGINE.unconfigure(request).edits] == [str(config), drop_in]


@pytest.mark.parametrize("containerd_tree", ["PATH", "containerd-1.7", "containerd-2"])
def test_imported_top_level_settings_merge_as_containerd_merges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, containerd_tree: str
) -> None:
    """Later non-zero values win, a zero value keeps the one before, lists are appended (1.x) or joined without
    repeats (2.x): the files as read here say what the real containerd's `config dump` says (Debian's, and the
    newer ones of tests/newer_engines.py)."""
    if containerd_tree == "PATH":
        binary = require_binary("containerd")
    else:
        tree = newer_engines.installed(containerd_tree)
        require(tree is not None, f"{containerd_tree} is not fetched (python3 tests/newer_engines.py fetch)")
        assert tree is not None
        binary = str(tree / "usr/bin/containerd")
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: binary)
    config, drop_in = tmp_path / "config.toml", tmp_path / "imported.toml"
    a, b = "io.containerd.grpc.v1.a", "io.containerd.grpc.v1.b"
    config.write_text(
        f'version = 2\nimports = ["{drop_in}"]\nrequired_plugins = ["{a}"]\noom_score = 5\nroot = "/var/lib/mine"\n'
    )
    # oom_score 1 is no zero value, though Python finds 1 among (0, True) and 0 among (False,)
    drop_in.write_text(f'version = 2\nrequired_plugins = ["{a}", "{b}"]\noom_score = 1\nroot = ""\n')
    read, _ = containerd_config.effective_view(str(config), "file")
    dumped, source = containerd_config.effective_view(str(config), "command")
    assert source == "containerd config dump"
    major = containerd_config.binary_major(binary)
    assert read.other["required_plugins"] == ([a, b] if major == 2 else [a, a, b])
    assert (read.other["oom_score"], read.other["root"]) == (1, "/var/lib/mine")
    for key in ("required_plugins", "oom_score", "root"):
        assert read.other[key] == dumped.other[key], key


def test_containerd_2_reads_a_version_2_document_as_its_migration_to_version_3() -> None:
    """On 2.x a version-2 configuration is the version-3 one containerd migrates it to, whichever of the two
    a caller has: the runtimes, the default and every other setting in the same place."""
    document = toml_loads(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "pause:3.9"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd]\nsnapshotter = "zfs"\ndefault_runtime_name = "x"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.x.options]\nBinaryName = "/opt/x"\n'
    )
    read = containerd_config.cri_view(document, "config.toml", 2)
    assert read == containerd_config.cri_view(containerd_config.migrated(document, "config.toml"), "config.toml", 2)
    assert (read.default, read.runtimes["x"]["options"], set(read.runtimes)) == (
        "x",
        {"BinaryName": "/opt/x"},
        {"runc", "x"},
    )
    assert read.other["plugins"]["io.containerd.cri.v1.runtime"] == {"containerd": {"snapshotter": "zfs"}}


RUNC_OPTION_NAMES = (
    "BinaryName", "CriuImagePath", "CriuPath", "CriuWorkPath", "IoGid", "IoUid", "NoNewKeyring", "NoPivotRoot",
    "Root", "ShimCgroup", "SystemdCgroup", "TaskApiAddress", "TaskApiVersion",
)  # fmt: skip  # runc shim options (containerd's runc options.proto): containerd matches them without case


def test_every_runc_option_in_any_case_is_the_one_option(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    options = "".join(f'{name.lower()} = "{name}"\n' for name in RUNC_OPTION_NAMES)
    config.write_text(f'version = 2\n[plugins."{PLUGIN[2]}".containerd.runtimes.x.options]\n{options}')
    assert effective(config).runtimes["x"]["options"] == {name: name for name in RUNC_OPTION_NAMES}


@pytest.mark.parametrize(
    ("printed", "major"),
    [("containerd github.com/containerd/containerd/v2 v2.0.0 207ad711eabd375a01713109a8a197d197ff6542", 2),
     ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", 1),
     ("containerd github.com/containerd/containerd/v2 2.1.9+unknown", 2), ("containerd dev", None),
     ("containerd github.com/containerd/containerd/v2 vX", None)],
)  # fmt: skip
def test_the_major_version_from_what_containerd_version_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: str, major: Optional[int]
) -> None:
    """Upstream's release binaries print `v2.0.0`, Debian's `2.1.9+unknown` or `1.6.20~ds1`."""
    binary = fake_binary(tmp_path / f"bin-{abs(hash(printed))}", monkeypatch, "containerd", f"echo '{printed}'\n")
    assert containerd_config.binary_major(str(binary)) == major


def test_a_version_3_file_is_as_containerd_2_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing moves: the CRI runtime plugin's own settings stay where a version-3 file has them."""
    config = tmp_path / "config.toml"
    config.write_text(
        'version = 3\n[plugins."io.containerd.cri.v1.runtime"]\nenable_selinux = true\n'
        '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.x]\nruntime_type = "io.containerd.runc.v2"\n'
    )
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: "/fake/containerd")
    monkeypatch.setattr(containerd_config, "binary_major", lambda binary: 2)
    view = effective(config)
    assert set(view.runtimes) == {"runc", "x"}
    assert view.other["plugins"] == {"io.containerd.cri.v1.runtime": {"enable_selinux": True}}


def test_containerd_1_6_reads_a_version_3_file_as_version_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian 12's containerd: the CRI runtimes of a `version = 3` file are those under the version-2 key, as
    its own `config dump` shows (1.7 refuses such a file)."""
    binary = require_binary("containerd")
    require(containerd_config.binary_major(binary) == 1, f"{binary} is not containerd 1.x")
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: binary)
    config = tmp_path / "config.toml"
    config.write_text(
        f'version = 3\n[plugins."{PLUGIN[2]}".containerd.runtimes.x]\nruntime_type = "io.containerd.runc.v2"\n'
        f'[plugins."{PLUGIN[3]}".containerd.runtimes.y]\nruntime_type = "io.containerd.runc.v2"\n'
    )
    dumped = containerd_config.effective_view(str(config), "command")[0]
    read = containerd_config.effective_view(str(config), "file")[0]
    assert set(read.runtimes) == set(dumped.runtimes) == {"x"}


def test_a_file_containerd_rejects_once_written_is_put_back_with_containerd_s_word(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """containerd reads the files before the change and refuses them after (a newer containerd's rule, a file
    another tool changed meanwhile): the change is taken back whole, directory too, and its word is the line."""
    real = require_binary("containerd")
    etc = tmp_path / "etc"
    etc.mkdir()
    drop_in = etc / "conf.d" / "99-container-hooks.toml"
    fake = fake_binary(
        tmp_path / "bin", monkeypatch, "containerd",
        f'if [ "$3 $4" = "config dump" ] && [ -e {drop_in} ]; then\n'
        '  echo "containerd: failed to load TOML: invalid" >&2; exit 1\n'
        f"fi\nexec {real} \"$@\"\n",
    )  # fmt: skip
    monkeypatch.setattr(containerd_config, "containerd_binary", lambda: str(fake))
    config = etc / "config.toml"
    config.write_text("version = 2\n")
    before = snapshot(etc)
    status, out, err = runtime_cmd(capsys, "configure", "containerd", config, "--drop-in", "--config-source=command")
    assert status == 1 and out == "" and err.count("\n") == 1, (out, err)
    assert f"{config}: containerd would not run as asked: " in err and "failed to load TOML" in err, err
    assert err.endswith("; the files are restored\n"), err
    assert snapshot(etc) == before and sorted(p.name for p in etc.iterdir()) == ["config.toml"]  # conf.d gone too


def test_a_drop_in_that_cannot_be_written_is_one_line_and_nothing_changes(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text("version = 2\n")
    (tmp_path / "conf.d").write_text("a file where the drop-in directory would go\n")
    before = snapshot(tmp_path)
    status, out, err = runtime_cmd(capsys, "configure", "containerd", config, "--drop-in")
    assert (status, out) == (1, "") and err.count("\n") == 1, (out, err)
    assert f"{tmp_path}/conf.d" in err and "would not run as asked" not in err, err
    assert snapshot(tmp_path) == before
