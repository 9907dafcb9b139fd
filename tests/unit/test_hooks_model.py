"""chts.hooks.model: what runc can really read, refused here with the range it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chts.config.toolkit import default_config
from chts.errors import ToolkitError
from chts.hooks.model import MAX_TIMEOUT, parse_hooks_json, resolved_on_host, validate_hook
from chts.hooks.sources import scan_hook_sources


def test_the_largest_timeout_runc_reads_is_accepted() -> None:
    # runc: time.Duration(timeout) * time.Second must fit in int64 nanoseconds
    assert MAX_TIMEOUT == 9223372036
    assert MAX_TIMEOUT * 10**9 <= 2**63 - 1 < (MAX_TIMEOUT + 1) * 10**9
    hooks = parse_hooks_json(f'{{"poststop": [{{"path": "/bin/true", "timeout": {MAX_TIMEOUT}}}]}}', "/h.json")
    assert hooks["poststop"][0]["timeout"] == MAX_TIMEOUT


@pytest.mark.parametrize("timeout", ["9223372037", "9223372036854775807", "9223372036854775808", "1e3", "0", "-1"])
def test_timeouts_out_of_range_name_the_range(timeout: str) -> None:
    with pytest.raises(ToolkitError) as caught:
        parse_hooks_json(f'{{"poststop": [{{"path": "/bin/true", "timeout": {timeout}}}]}}', "/h.json")
    assert str(caught.value).startswith(
        "/h.json: poststop[0].timeout: must be an integer from 1 to 9223372036 (seconds), not "
    )


def test_only_start_container_hooks_run_a_file_of_the_container() -> None:
    # runtime-spec config.md: startContainer's path resolves after pivot_root; every other stage's on the host.
    assert not resolved_on_host("startContainer")
    for stage in ("prestart", "createRuntime", "createContainer", "poststart", "poststop", "precreate"):
        assert resolved_on_host(stage), stage


def test_an_unknown_key_in_a_hook_is_refused_naming_the_keys_a_hook_has() -> None:
    with pytest.raises(ValueError) as caught:
        validate_hook({"path": "/bin/true", "timout": 5}, "prestart[0]")
    assert str(caught.value) == "prestart[0]: unknown key 'timout' (a hook has: path, args, env, timeout)"


def test_a_hooks_file_up_to_one_mib_is_read_and_a_larger_one_refused(tmp_path: Path) -> None:
    config = default_config()
    hooks_json = tmp_path / "hooks.json"
    config["container-hooks"]["path"] = str(hooks_json)
    config["container-hooks"]["hooks-dirs"] = []
    text = '{"prestart": [{"path": "/bin/true"}]}'
    hooks_json.write_text(text + " " * ((1 << 20) - len(text)))
    planned, _, problems = scan_hook_sources(config)
    assert ([entry["hook"]["path"] for entry in planned], problems) == (["/bin/true"], [])
    hooks_json.write_text(text + " " * ((1 << 20) - len(text) + 1))
    _, _, problems = scan_hook_sources(config)
    assert problems == [f"{hooks_json}: larger than {1 << 20} bytes, refusing to read it as a hooks file"]
