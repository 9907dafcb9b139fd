"""chts.hooks.sources and the shim's use of it: order, masking, failure policy, explain, the cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import pytest

from chts.base.logfile import LogFile
from chts.config.toolkit import default_config
from chts.errors import SKIPPED_FILE, ToolkitError
from chts.hooks.sources import apply_failure_policy, explain_hooks, scan_hook_sources, select_hooks
from chts.shim import cache, inject

if TYPE_CHECKING:
    from chts.config.toolkit import Config


class Root:
    """A temp toolkit root: hooks.json and hook directories a, b, c."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.hooks_json = base / "hooks.json"
        self.dirs = [base / name for name in ("a", "b", "c")]
        for directory in self.dirs:
            directory.mkdir()
            directory.chmod(0o755)

    def config(self, on_error: str = "fail") -> Config:
        config = default_config()
        section = config["container-hooks"]
        section["path"] = str(self.hooks_json)
        section["hooks-dirs"] = [str(d) for d in self.dirs]
        section["on-error"] = on_error
        return config

    def dropin(self, directory: int, name: str, hook_path: str, when: Any = None, stages: Any = None) -> Path:
        path = self.dirs[directory] / name
        data = {
            "version": "1.0.0",
            "hook": {"path": hook_path},
            "when": when if when is not None else {"always": True},
            "stages": stages or ["prestart"],
        }
        path.write_text(json.dumps(data))
        path.chmod(0o644)
        return path


@pytest.fixture
def root(tmp_path: Path) -> Root:
    return Root(tmp_path)


def load_hook_sources(config: Any, warn: Any = None) -> Tuple[List[Any], List[str]]:
    """What the shim plans for ``config``: the scan, then the failure policy (as inject.planned_hooks does)."""
    planned, sources, problems = scan_hook_sources(config)
    apply_failure_policy(problems, config["container-hooks"]["on-error"], warn or (lambda message: None))
    return planned, sources


def hook_paths(planned: List[Any]) -> List[str]:
    return [entry["hook"]["path"] for entry in planned]


def test_nothing_configured_means_no_hooks(root: Root) -> None:
    planned, sources, problems = scan_hook_sources(root.config())
    assert (planned, problems) == ([], [])
    assert sources == [str(root.hooks_json)] + [str(d) for d in root.dirs]


def test_hooks_json_first_then_dropins_in_file_name_order(root: Root) -> None:
    hooks = {"poststop": [{"path": "/json/poststop"}], "prestart": [{"path": "/json/pre"}]}
    root.hooks_json.write_text(json.dumps(hooks))
    for directory, name, hook_path in [
        (2, "20-b.json", "/c/20"),
        (0, "30-a.json", "/a/30"),
        (1, "10-b.json", "/b/10"),
        (0, "01-Upper.json", "/a/01U"),
        (1, "01-lower.json", "/b/01l"),
    ]:
        root.dropin(directory, name, hook_path)
    planned, sources, _ = scan_hook_sources(root.config())
    # hooks.json in stage order; then file names compared case-insensitively, as Podman does.
    assert hook_paths(planned) == ["/json/pre", "/json/poststop", "/b/01l", "/a/01U", "/b/10", "/c/20", "/a/30"]
    assert {entry["source"] for entry in planned[2:]} == {
        str(root.dirs[1] / "01-lower.json"),
        str(root.dirs[0] / "01-Upper.json"),
        str(root.dirs[1] / "10-b.json"),
        str(root.dirs[2] / "20-b.json"),
        str(root.dirs[0] / "30-a.json"),
    }
    assert all("when" not in entry for entry in planned[:2])
    # Every directory and every file read is watched by the shim's cache.
    assert set(sources) >= {str(d) for d in root.dirs} | {entry["source"] for entry in planned}


def test_a_later_directory_masks_the_same_file_name(root: Root) -> None:
    for directory, name in [(0, "10-x.json"), (2, "10-x.json"), (1, "10-x.json"), (0, "20-y.json"), (1, "20-y.json")]:
        root.dropin(directory, name, "/" + "abc"[directory] + "/" + name[3])
    planned, sources, _ = scan_hook_sources(root.config())
    assert hook_paths(planned) == ["/c/x", "/b/y"]
    assert str(root.dirs[0] / "10-x.json") not in sources  # masked: never read


def test_masking_hides_a_broken_file_in_an_earlier_directory(root: Root) -> None:
    (root.dirs[0] / "10-x.json").write_text("{broken")
    root.dropin(1, "10-x.json", "/b/x")
    assert load_hook_sources(root.config())[0][0]["hook"]["path"] == "/b/x"


def test_only_json_files_count_and_missing_directories_are_empty(root: Root) -> None:
    root.dropin(0, "10-x.json", "/a/x")
    (root.dirs[0] / "README").write_text("not a hook")
    (root.dirs[0] / "10-x.json.bak").write_text("{broken")
    config = root.config()
    config["container-hooks"]["hooks-dirs"].append(str(root.base / "absent"))
    assert hook_paths(load_hook_sources(config)[0]) == ["/a/x"]


def test_one_file_with_several_stages(root: Root) -> None:
    root.dropin(0, "10-x.json", "/a/x", stages=["poststop", "prestart", "createRuntime"])
    planned = load_hook_sources(root.config())[0]
    # prestart is read as createRuntime (as Podman 5 does), so the hook is planned there once.
    assert [entry["stage"] for entry in planned] == ["poststop", "createRuntime"]


def test_planned_hooks_are_plain_data_for_the_marshal_cache(root: Root) -> None:
    import marshal

    root.dropin(0, "10-x.json", "/a/x", when={"annotations": {"a": "b"}, "commands": ["x"], "hasBindMounts": True})
    planned = load_hook_sources(root.config())[0]
    assert marshal.loads(marshal.dumps(planned)) == planned


# ----------------------------------------------------------------------------- failure policy


def broken_root(root: Root) -> Root:
    root.dropin(0, "10-good.json", "/a/good")
    (root.dirs[0] / "20-bad.json").write_text('{"version": "1.0.0", "hooks": {}}')
    root.dropin(1, "30-open.json", "/b/open").chmod(0o666)
    root.dropin(2, "40-good.json", "/c/good")
    return root


def test_fail_policy_raises_the_first_problem_in_one_line(root: Root) -> None:
    broken_root(root)
    with pytest.raises(ToolkitError) as caught:
        load_hook_sources(root.config("fail"))
    message = str(caught.value)
    assert message.startswith(f"{root.dirs[0] / '20-bad.json'}:1: unknown key 'hooks'")
    assert message.endswith("(and 1 more unusable hook source(s): `container-hooks-ctk hooks validate` lists them)")


def test_skip_policy_leaves_out_unusable_sources_and_warns_naming_each(root: Root) -> None:
    broken_root(root)
    warnings: List[str] = []
    planned, _ = load_hook_sources(root.config("skip"), warnings.append)
    assert hook_paths(planned) == ["/a/good", "/c/good"]
    assert len(warnings) == 2
    assert f"{root.dirs[0] / '20-bad.json'}:1: unknown key 'hooks'" in warnings[0]
    assert (
        f"{root.dirs[1] / '30-open.json'}: refusing hook file writable by group and others (mode 0666)" in warnings[1]
    )
    assert all(w.startswith("skipping unusable hook source (on-error = skip): ") for w in warnings)


def test_an_untrusted_directory_is_one_unusable_source(root: Root) -> None:
    root.dropin(0, "10-x.json", "/a/x")
    root.dropin(1, "20-y.json", "/b/y")
    root.dirs[1].chmod(0o777)
    planned, _, problems = scan_hook_sources(root.config())
    assert hook_paths(planned) == ["/a/x"]
    assert problems == [
        f"{root.dirs[1]}: refusing hooks directory writable by group and others (mode 0777): "
        f"hooks run as root (chmod go-w {root.dirs[1]})"
    ]


def test_a_bad_hooks_json_is_a_problem_like_any_other(root: Root) -> None:
    root.hooks_json.write_text('{"prestart": [{"path": "relative"}]}')
    root.dropin(0, "10-x.json", "/a/x")
    planned, _, problems = scan_hook_sources(root.config())
    assert hook_paths(planned) == ["/a/x"]
    assert problems == [f"{root.hooks_json}: prestart[0].path: must be absolute, not 'relative'"]


# ----------------------------------------------------------------------------- select and explain


def container(args: List[str], env: Optional[List[str]] = None) -> Dict[str, Any]:
    return {"process": {"args": args, "env": env or []}}


def test_select_and_explain_per_file(root: Root) -> None:
    root.hooks_json.write_text(json.dumps({"prestart": [{"path": "/json/every"}]}))
    audit = root.dropin(0, "10-audit.json", "/a/audit", when={"x-container-hooks-env": {"^AUDIT$": "^1$"}})
    nginx = root.dropin(0, "20-nginx.json", "/a/nginx", {"commands": ["(^|/)nginx$"]}, ["prestart", "poststop"])
    planned = load_hook_sources(root.config())[0]
    assert hook_paths(select_hooks(planned, container(["/usr/sbin/nginx"]))) == ["/json/every", "/a/nginx", "/a/nginx"]
    assert hook_paths(select_hooks(planned, container(["sh"], ["AUDIT=1"]))) == ["/json/every", "/a/audit"]
    explained = explain_hooks(planned, container(["sh"], ["AUDIT=1"]))
    assert [(entry["hook"]["path"], matched, reason) for entry, matched, reason in explained] == [
        ("/json/every", True, f"{root.hooks_json}: applies to every container"),
        ("/a/audit", True, f"{audit}: matched: x-container-hooks-env: AUDIT='1' matches '^AUDIT$'='^1$'"),
        ("/a/nginx", False, f"{nginx}: not matched: commands: 'sh' matches none of '(^|/)nginx$'"),
        ("/a/nginx", False, f"{nginx}: not matched: commands: 'sh' matches none of '(^|/)nginx$'"),
    ]


def test_hooks_json_alone_applies_to_every_container(root: Root) -> None:
    root.hooks_json.write_text(json.dumps({"prestart": [{"path": "/json/every"}]}))
    planned = load_hook_sources(root.config())[0]
    assert select_hooks(planned, {}) == planned


# ----------------------------------------------------------------------------- the shim's cached planning


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setattr(cache, "cache_dir", lambda: str(directory))
    # A file's ctime cannot be set back, and age() only sets the mtime: no racy window here.
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)
    return directory


def age(*paths: Path) -> None:
    """Make files look old: the cache ignores files changed in the last two seconds."""
    old = time.time() - 60
    for path in paths:
        os.utime(path, (old, old))


def test_planned_hooks_are_cached_and_chmod_invalidates(root: Root, cache_dir: Path) -> None:
    good = root.dropin(0, "10-x.json", "/a/x")
    age(good, *root.dirs)
    log = LogFile("", "info")
    config = root.config()
    assert hook_paths(inject.planned_hooks(config, log)) == ["/a/x"]
    assert len(list(cache_dir.iterdir())) == 1  # stored
    assert hook_paths(inject.planned_hooks(config, log)) == ["/a/x"]
    good.chmod(0o666)  # changes st_mode only: the cached plan must not survive it
    with pytest.raises(ToolkitError, match="refusing hook file writable by group and others"):
        inject.planned_hooks(config, log)
    good.chmod(0o644)
    assert hook_paths(inject.planned_hooks(config, log)) == ["/a/x"]


def test_a_file_added_to_a_directory_is_seen_through_the_cache(root: Root, cache_dir: Path) -> None:
    age(*root.dirs)
    log = LogFile("", "info")
    config = root.config()
    assert inject.planned_hooks(config, log) == []
    root.dropin(1, "10-new.json", "/b/new")
    assert hook_paths(inject.planned_hooks(config, log)) == ["/b/new"]


def test_skip_policy_warns_on_every_create_even_from_the_cache(root: Root, cache_dir: Path, tmp_path: Path) -> None:
    bad = root.dirs[0] / "10-bad.json"
    bad.write_text("{")
    bad.chmod(0o644)
    age(bad, *root.dirs)
    log_file = tmp_path / "shim.log"
    log = LogFile(str(log_file), "info")
    config = root.config("skip")
    for _ in range(2):
        assert inject.planned_hooks(config, log) == []
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2
    assert all("level=warning" in line and f"{bad}:1:2: invalid JSON" in line for line in lines)


def test_cache_is_right_while_files_are_replaced_with_old_mtimes(
    root: Root, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hooks.json replaced again and again the way install -p, rsync -t, tar and dpkg do it (a new
    file, its mtime set into the past, renamed over the old one) while creates plan their hooks:
    every create sees a version that was there while it ran, and once the writer stops, the last
    one, from the cache too. Many drop-ins widen the window between reading hooks.json and storing."""
    import threading

    monkeypatch.setattr(cache, "RACY_SECONDS", 0.3)
    for index in range(150):
        root.dropin(index % 3, f"{index:03d}.json", f"/d/{index}")
    age(*root.dirs)
    past = time.time() - 3600

    def install(version: int) -> None:
        tmp = root.base / "hooks.json.tmp"
        tmp.write_text(json.dumps({"prestart": [{"path": "/bin/true", "args": [f"v{version:06d}"]}]}))
        os.utime(tmp, (past, past))
        os.rename(tmp, root.hooks_json)

    install(0)
    # [rename started, rename done (None: under way), version], appended before the rename
    history: List[List[Any]] = [[0.0, time.monotonic(), 0]]
    stop = threading.Event()

    def writer() -> None:
        version = 0
        while not stop.is_set():
            version += 1
            history.append([time.monotonic(), None, version])
            install(version)
            history[-1][1] = time.monotonic()
            time.sleep(0.002)

    log = LogFile("", "info")
    config = root.config()

    def planned_version() -> int:
        planned = inject.planned_hooks(config, log)
        return int(planned[0]["hook"]["args"][0][1:])

    def visible_during(begin: float, end: float) -> List[int]:
        return [
            version
            for index, (started, _, version) in enumerate(list(history))
            if started <= end and (index + 1 == len(history) or (history[index + 1][1] or end) >= begin)
        ]

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            begin = time.monotonic()
            version = planned_version()
            end = time.monotonic()
            seen.append(version)
            assert version in visible_during(begin, end), (version, history[-3:])
    finally:
        stop.set()
        thread.join()
    assert len(set(seen)) > 3  # the creates really ran while the file changed
    time.sleep(0.4)  # past the racy window: now the plan is stored and served
    final = history[-1][2]
    assert planned_version() == final
    assert len(list(cache_dir.iterdir())) == 1
    assert planned_version() == final


# ----------------------------------------------------------------------------- hook executables


@pytest.fixture
def exe_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    directory = tmp_path / "libexec"
    directory.mkdir(mode=0o755)
    return directory


def executable(directory: Path, name: str, uid: int = 0, mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n")
    os.chown(path, uid, 0)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("uid", "mode", "refusal"),
    [
        (1000, 0o755, "refusing hook executable owned by uid 1000 (mode 0755)"),
        (0, 0o775, "refusing hook executable writable by group (mode 0775)"),
        (0, 0o757, "refusing hook executable writable by others (mode 0757)"),
    ],
)
def test_a_hook_executable_others_could_change_is_refused(
    root: Root, exe_dir: Path, uid: int, mode: int, refusal: str
) -> None:
    hook = executable(exe_dir, "audit", uid, mode)
    root.hooks_json.write_text(json.dumps({"poststop": [{"path": str(hook)}]}))
    planned, _, problems = scan_hook_sources(root.config())
    assert planned == []
    assert len(problems) == 1
    assert problems[0].startswith(f"{root.hooks_json}: poststop hook {hook}: {hook}: {refusal}: hooks run as root")


def test_a_directory_above_the_executable_counts_too(root: Root, exe_dir: Path) -> None:
    hook = executable(exe_dir, "audit")
    os.chown(exe_dir, 1000, 1000)
    dropin = root.dropin(0, "10-audit.json", str(hook))
    planned, _, problems = scan_hook_sources(root.config())
    assert planned == []
    assert len(problems) == 1
    # A drop-in's prestart runs as createRuntime (Podman 5's mapping), and the message names the stage it runs in.
    assert problems[0].startswith(
        f"{dropin}: createRuntime hook {hook}: {exe_dir}: refusing directory above a hook executable owned by uid 1000"
    )


def test_links_sticky_directories_container_stages_and_the_insecure_switch(root: Root, exe_dir: Path) -> None:
    theirs = executable(exe_dir, "theirs", uid=1000)
    link = exe_dir / "link"
    link.symlink_to(theirs)
    sticky = exe_dir / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    ours_in_sticky = executable(sticky, "ours")
    root.hooks_json.write_text(json.dumps({"poststop": [{"path": str(link)}]}))
    _, _, problems = scan_hook_sources(root.config())
    assert len(problems) == 1 and f"{theirs}: refusing hook executable owned by uid 1000" in problems[0]
    # startContainer's path resolves in the container: the host's file at that path is not what runs
    hooks = {"startContainer": [{"path": str(theirs)}], "poststop": [{"path": str(ours_in_sticky)}]}
    root.hooks_json.write_text(json.dumps(hooks))
    planned, _, problems = scan_hook_sources(root.config())
    assert problems == [] and len(planned) == 2
    # the insecure switch accepts any owner, never a file others may write
    root.hooks_json.write_text(json.dumps({"poststop": [{"path": str(theirs)}]}))
    config = root.config()
    config["container-hooks"]["insecure-allow-non-root-files"] = True
    assert scan_hook_sources(config)[2] == []
    theirs.chmod(0o777)
    assert "writable by group and others" in scan_hook_sources(config)[2][0]


@pytest.mark.parametrize("stage", ["prestart", "createRuntime", "createContainer", "poststart", "poststop"])
def test_every_stage_resolved_on_the_host_has_its_executable_checked(root: Root, exe_dir: Path, stage: str) -> None:
    """createContainer runs before pivot_root (runtime-spec: its path resolves in the runtime
    namespace): a world-writable host file there runs as root in every container."""
    writable = executable(exe_dir, "writable", mode=0o777)
    root.hooks_json.write_text(json.dumps({stage: [{"path": str(writable)}]}))
    planned, _, problems = scan_hook_sources(root.config())
    assert planned == []
    assert len(problems) == 1
    assert problems[0].startswith(f"{root.hooks_json}: {stage} hook {writable}: {writable}: refusing hook executable")
    assert "writable by group and others" in problems[0]


def test_skip_policy_leaves_out_a_source_with_an_untrusted_executable(root: Root, exe_dir: Path) -> None:
    theirs = executable(exe_dir, "theirs", uid=1000)
    root.dropin(0, "10-bad.json", str(theirs))
    root.dropin(0, "20-good.json", "/bin/true")
    warnings: List[str] = []
    planned, _ = load_hook_sources(root.config("skip"), warnings.append)
    assert hook_paths(planned) == ["/bin/true"]
    assert len(warnings) == 1 and "refusing hook executable owned by uid 1000" in warnings[0]


def test_a_chmod_of_a_cached_hook_executable_is_seen(root: Root, exe_dir: Path, cache_dir: Path) -> None:
    hook = executable(exe_dir, "audit")
    root.hooks_json.write_text(json.dumps({"poststop": [{"path": str(hook)}]}))
    age(root.hooks_json, *root.dirs)
    cache_dir.mkdir(mode=0o700)  # beside the executable's directory: made now, not while planning
    log = LogFile("", "info")
    config = root.config()
    assert hook_paths(inject.planned_hooks(config, log)) == [str(hook)]
    assert len(list(cache_dir.iterdir())) == 1
    hook.chmod(0o777)
    with pytest.raises(ToolkitError, match="refusing hook executable writable by group and others"):
        inject.planned_hooks(config, log)


def test_fail_policy_with_one_problem_raises_it_alone(root: Root) -> None:
    root.dropin(0, "10-x.json", "/a/x").chmod(0o666)
    with pytest.raises(ToolkitError) as caught:
        load_hook_sources(root.config("fail"))
    assert str(caught.value) == (
        f"{root.dirs[0] / '10-x.json'}: refusing hook file writable by group and others (mode 0666): "
        f"hooks run as root (chmod go-w {root.dirs[0] / '10-x.json'})"
    )


def test_a_file_skipped_whatever_on_error_says_only_warns_even_under_fail() -> None:
    warnings: List[str] = []
    problem = "/etc/containers/oci/hooks.d/x.json: some reason" + SKIPPED_FILE
    apply_failure_policy([problem], "fail", warnings.append)
    assert warnings == [f"skipping hook file: {problem}"]
    with pytest.raises(ToolkitError, match="^/d/y.json: bad$"):
        apply_failure_policy([problem, "/d/y.json: bad"], "fail", warnings.append)


def test_a_hooks_directory_no_reader_expected_is_a_problem_naming_it(root: Root) -> None:
    config = root.config()
    config["container-hooks"]["hooks-dirs"] = [str(root.dirs[0]) + "\0x"]
    _, _, problems = scan_hook_sources(config)
    assert len(problems) == 1 and problems[0].startswith(f"{root.dirs[0]}\0x: cannot use hooks directory: ")


def test_a_hooks_directory_written_with_a_trailing_slash_names_its_files_once(root: Root) -> None:
    root.dropin(0, "10-x.json", "/a/x")
    config = root.config()
    config["container-hooks"]["hooks-dirs"] = [str(root.dirs[0]) + "/"]
    planned, _, problems = scan_hook_sources(config)
    assert problems == [] and [entry["source"] for entry in planned] == [str(root.dirs[0] / "10-x.json")]


def test_a_hooks_file_no_reader_expected_is_a_problem_naming_it(root: Root) -> None:
    config = root.config()
    config["container-hooks"]["path"] = str(root.hooks_json) + "\0x"
    _, _, problems = scan_hook_sources(config)
    assert len(problems) == 1 and problems[0].startswith(f"{root.hooks_json}\0x: cannot use hooks file: ")


def test_a_hooks_file_others_can_write_is_named_as_the_hooks_file(root: Root) -> None:
    root.hooks_json.write_text("{}")
    root.hooks_json.chmod(0o646)
    _, _, problems = scan_hook_sources(root.config())
    assert problems == [
        f"{root.hooks_json}: refusing hooks file writable by others (mode 0646): "
        f"hooks run as root (chmod go-w {root.hooks_json})"
    ]
