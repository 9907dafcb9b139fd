"""Files nested too deeply: every ctk command that reads one says so in one line naming it, and writes nothing.

Python's parsers, and everything walking what they return, recurse per level: a daemon.json
2000 levels deep (dockerd reads 10000) was a 23-line RecursionError traceback. The readers
refuse past chts.base.nesting.MAX_DEPTH; a file 200 deep still works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from ctk_cli import run_ctk
from engine_cases import SHIM, snapshot

from chts.base.nesting import MAX_DEPTH, json_text_depth, toml_text_depth, value_depth
from chts.base.text_files import toml_loads
from chts.errors import ToolkitError
from chts.node.files import NodeState
from chts.node.host import HostRoot


def json_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_objects(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def toml_arrays(depth: int) -> str:
    return "x = " + "[" * depth + "]" * depth + "\n"


def toml_inline_tables(depth: int) -> str:
    return "x = " + "{a = " * depth + "1" + "}" * depth + "\n"


def toml_dotted_key(depth: int) -> str:
    return ".".join(["a"] * depth) + " = 1\n"


def toml_header(depth: int) -> str:
    return "[" + ".".join(["a"] * depth) + "]\nb = 1\n"


JSON_SHAPES = {"arrays": json_arrays, "objects": json_objects}
TOML_SHAPES = {"arrays": toml_arrays, "inline": toml_inline_tables, "dotted": toml_dotted_key, "header": toml_header}
# the tests' shim path (engine_cases): an engine chained to the host's crun, where one is installed, gets its link there
RUNTIME = [f"--runtime-path={SHIM}", "--config-source=file"]


class Root:
    """A toolkit root (config.toml, hooks.json, hooks.d, a bundle) and the engine files beside it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.config = base / "config.toml"
        (base / "hooks.d").mkdir()
        (base / "hooks.json").write_text('{"prestart": []}')
        self.config.write_text(
            f'[container-hooks]\npath = "{base}/hooks.json"\nhooks-dirs = ["{base}/hooks.d"]\n'
            '[container-hooks-runtime]\ndebug = ""\n'
        )
        (base / "bundle").mkdir()
        (base / "daemon.json").write_text("{}\n")

    def runtime(self, action: str, engine: str, config: str, *extra: str) -> List[str]:
        return [
            "runtime", action, f"--runtime={engine}", f"--config={self.base / config}",
            f"--toolkit-config={self.config}", *RUNTIME, *extra,
        ]  # fmt: skip


# (name, the file to write relative to the root, its text for a depth, the ctk command)
Case = Tuple[str, str, Callable[[int], str], Callable[[Root], List[str]]]


def cases() -> List[Case]:
    found: List[Case] = []
    for shape, deep in JSON_SHAPES.items():

        def wrap(depth: int, deep: Callable[[int], str] = deep) -> str:
            return '{"x": ' + deep(depth) + "}"

        state = "daemon.json.container-hooks-state.json"
        found += [
            (f"docker configure, daemon.json of {shape}", "daemon.json", wrap,
             lambda r: r.runtime("configure", "docker", "daemon.json", "--set-as-default")),
            (f"docker unconfigure, daemon.json of {shape}", "daemon.json", wrap,
             lambda r: r.runtime("unconfigure", "docker", "daemon.json")),
            (f"docker configure, state record of {shape}", state, wrap,
             lambda r: r.runtime("configure", "docker", "daemon.json")),
        ]  # fmt: skip
    for shape, deep in TOML_SHAPES.items():

        def containerd(depth: int, deep: Callable[[int], str] = deep) -> str:
            return "version = 2\n" + deep(depth)

        def toolkit(depth: int, deep: Callable[[int], str] = deep) -> str:
            return deep(depth)  # before the root's own config.toml text

        found += [
            (f"containerd configure, config.toml of {shape}", "containerd.toml", containerd,
             lambda r: r.runtime("configure", "containerd", "containerd.toml")),
            (f"containerd configure --drop-in, config.toml of {shape}", "containerd.toml", containerd,
             lambda r: r.runtime("configure", "containerd", "containerd.toml", "--drop-in")),
            (f"containerd unconfigure, config.toml of {shape}", "containerd.toml", containerd,
             lambda r: r.runtime("unconfigure", "containerd", "containerd.toml")),
            (f"crio configure, crio.conf of {shape}", "crio.conf", deep,
             lambda r: r.runtime("configure", "crio", "crio.conf")),
            (f"crio configure, a drop-in of {shape}", "crio.conf.d/10-deep.conf", deep,
             lambda r: r.runtime("configure", "crio", "crio.conf")),
            (f"podman configure, containers.conf of {shape}", "containers.conf", deep,
             lambda r: r.runtime("configure", "podman", "containers.conf")),
            (f"podman unconfigure, containers.conf of {shape}", "containers.conf", deep,
             lambda r: r.runtime("unconfigure", "podman", "containers.conf")),
            (f"config show, the toolkit config of {shape}", "config.toml", toolkit,
             lambda r: ["config", "show", "-c", str(r.config)]),
            (f"config --set -i, the toolkit config of {shape}", "config.toml", toolkit,
             lambda r: ["config", "-c", str(r.config), "--set", "container-hooks-runtime.log-level=debug", "-i"]),
            (f"runtime configure, the toolkit config of {shape}", "config.toml", toolkit,
             lambda r: r.runtime("configure", "docker", "daemon.json")),
            (f"hooks list, the toolkit config of {shape}", "config.toml", toolkit,
             lambda r: ["hooks", "list", "-c", str(r.config)]),
        ]  # fmt: skip
    for shape, deep in JSON_SHAPES.items():

        def hooks_json(depth: int, deep: Callable[[int], str] = deep) -> str:
            return '{"prestart": ' + deep(depth) + "}"

        def dropin(depth: int, deep: Callable[[int], str] = deep) -> str:
            return '{"version": "1.0.0", "hook": ' + deep(depth) + "}"

        found += [
            (f"hooks validate, hooks.json of {shape}", "hooks.json", hooks_json,
             lambda r: ["hooks", "validate", "-c", str(r.config)]),
            (f"hooks validate, a drop-in of {shape}", "hooks.d/10-deep.json", dropin,
             lambda r: ["hooks", "validate", "-c", str(r.config)]),
        ]  # fmt: skip
    return found


CASES = cases()


def prepared(tmp_path: Path, case: Case, depth: int) -> Tuple[Root, Path]:
    root = Root(tmp_path)
    _, name, text, _ = case
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    if name == "crio.conf.d/10-deep.conf":
        (tmp_path / "crio.conf").write_text("[crio]\n")
    if name.endswith("state.json"):  # a record beside an unconfigured daemon.json
        (tmp_path / "daemon.json").write_text("{}\n")
    if name == "config.toml":
        path.write_text(text(depth) + root.config.read_text())
    else:
        path.write_text(text(depth))
    return root, path


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_file_2000_deep_is_one_line_naming_it_and_nothing_is_written(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    root, path = prepared(tmp_path, case, 2000)
    monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(root.config))
    before = snapshot(tmp_path)
    status, out, err = run_ctk(capsys, *case[3](root))
    if case[0].startswith("hooks validate"):
        said = out.strip().splitlines()  # validate lists every error on stdout, and exits 1
        assert status == 1 and len(said) == 1 and "Traceback" not in err, (out, err)
        assert said[0].startswith(f"{path}: ") and "nested too deeply" in said[0], said
    else:
        assert status != 0 and err.count("\n") == 1, err  # one line, no traceback
        assert err.startswith(f"container-hooks-ctk: {path}: ") and "nested too deeply" in err, err
        if "invalid" not in err:  # one that parsed: how deep it is
            assert "(2001 levels)" in err or "(2000 levels)" in err, err
    assert snapshot(tmp_path) == before


WORKING = [case for case in CASES if not case[0].startswith("hooks validate")]


@pytest.mark.parametrize("case", WORKING, ids=[case[0] for case in WORKING])
def test_a_file_200_deep_still_works(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    root, _ = prepared(tmp_path, case, 200)
    monkeypatch.setenv("CONTAINER_HOOKS_CONFIG", str(root.config))
    status, _, err = run_ctk(capsys, *case[3](root))
    if case[2].__name__ == "toolkit" or case[1] == "config.toml":
        # an unknown key of the toolkit config is refused as such, not for its depth
        assert "nested too deeply" not in err and "Traceback" not in err, err
    else:
        assert status == 0, err


def test_the_deepest_file_read_is_max_depth(tmp_path: Path, capsys: Any) -> None:
    root = Root(tmp_path)
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"x": ' + json_arrays(MAX_DEPTH - 1) + "}")  # MAX_DEPTH levels with the top object
    status, _, err = run_ctk(capsys, *root.runtime("configure", "docker", "daemon.json"))
    assert status == 0, err
    daemon.write_text('{"x": ' + json_arrays(MAX_DEPTH) + "}")
    before = snapshot(tmp_path)
    status, _, err = run_ctk(capsys, *root.runtime("unconfigure", "docker", "daemon.json"))
    assert err == f"container-hooks-ctk: {daemon}: invalid JSON: {describe_json(MAX_DEPTH + 1)}\n"
    assert status == 1 and snapshot(tmp_path) == before


def describe_json(depth: int) -> str:
    return f"arrays and objects nested too deeply for this reader ({depth} levels)"


@pytest.mark.parametrize("shape", sorted(JSON_SHAPES))
def test_hooks_explain_refuses_a_config_json_too_deep_to_walk_and_keeps_one_too_deep_to_parse(
    tmp_path: Path, capsys: Any, shape: str
) -> None:
    root = Root(tmp_path)
    spec = tmp_path / "bundle" / "config.json"
    explain = ["hooks", "explain", "-c", str(root.config), "-b", str(tmp_path / "bundle")]
    for depth, refused in ((200, False), (MAX_DEPTH + 100, True), (5000, False)):
        # Too deep for Python's parser (5000), a member is kept as its text, as the shim keeps it.
        spec.write_text(
            '{"ociVersion": "1.0.2", "process": {"args": ["/bin/true"]}, "x": ' + JSON_SHAPES[shape](depth) + "}"
        )
        before = snapshot(tmp_path)
        status, out, err = run_ctk(capsys, *explain)
        assert snapshot(tmp_path) == before
        if refused:
            assert (status, err) == (1, f"container-hooks-ctk: {spec}: {describe_json(depth + 1)}\n")
        else:
            assert (status, err) == (0, ""), depth
            assert "0 hook(s) would be added" in out


def test_a_node_state_file_2000_deep_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "opt/container-hooks").mkdir(parents=True)
    state = tmp_path / "opt/container-hooks/node-state.json"
    state.write_text('{"managed": ' + json_arrays(2000) + "}")
    with pytest.raises(ToolkitError) as caught:
        NodeState(HostRoot(str(tmp_path)), "/opt/container-hooks")
    assert str(caught.value) == f"{state}: invalid JSON: {describe_json(2001)}; move it away to start over"


def test_check_names_a_deep_engine_file_in_its_line_and_goes_on(tmp_path: Path, capsys: Any) -> None:
    root = Root(tmp_path)
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"x": ' + json_objects(2000) + "}")
    containerd = tmp_path / "containerd.toml"
    containerd.write_text("version = 2\n" + toml_arrays(2000))
    status, out, err = run_ctk(
        capsys, "check", "--no-container", "-c", str(root.config), f"--docker-config={daemon}",
        f"--containerd-config={containerd}", "--config-source=file",
    )  # fmt: skip
    assert "Traceback" not in err and status == 0, err
    assert f"{daemon}: invalid JSON: {describe_json(2001)}" in out
    assert f"{containerd}: invalid TOML: tables or arrays nested too deeply for this reader (2001 levels)" in out


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[", "b": "\\"[[["}', 1),  # brackets and escaped quotes inside strings do not count
        ("[" * 5000 + "]" * 5000, 5000),
    ],
)
def test_json_text_depth(text: str, depth: int) -> None:
    assert json_text_depth(text) == depth
    if depth < 500:
        assert value_depth(json.loads(text)) == depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("a = 1\n", 1),
        ("a = [1, {b = [2]}]\n", 4),
        ("[table]\na = 1\n", 2),
        ('a = \'[[[[\'  # [[[[\nb = "\\"[["\nc = \'\'\'\n[[[\n\'\'\'\nd = """\n{{{"""\n', 1),
        ("x = " + "[" * 3000 + "]" * 3000 + "\n", 3001),
    ],
)
def test_toml_text_depth(text: str, depth: int) -> None:
    assert toml_text_depth(text) == depth


@pytest.mark.parametrize("shape", sorted(TOML_SHAPES))
def test_toml_loads_refuses_any_shape_past_the_bound(shape: str) -> None:
    from chts.base.nesting import NestedTooDeeply

    with pytest.raises(NestedTooDeeply, match=r"tables or arrays nested too deeply for this reader \(\d+ levels\)"):
        toml_loads(TOML_SHAPES[shape](2000))
    assert value_depth(toml_loads(TOML_SHAPES[shape](100))) in (100, 101)


def test_values_depth_counts_dicts_and_lists_only() -> None:
    deep: Dict[str, Any] = {}
    node = deep
    for _ in range(3000):
        node["a"] = {}
        node = node["a"]
    assert value_depth(deep) == 3001 and value_depth("x") == 0 and value_depth([]) == 1
