"""The record of the hooks a create added, beside the bundle's config.json: where it is, when it is believed,
how it is written and removed, how large it may be."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, List, Tuple

from chts.hooks.bundle_record import (
    MAX_RECORD_BYTES,
    previously_added,
    read_record,
    record_path,
    render,
    update_record,
)

if TYPE_CHECKING:
    from chts.hooks.model import Hook

ADDED: List[Tuple[str, Hook]] = [
    ("prestart", {"path": "/usr/bin/audit", "args": ["audit", "--now"]}),
    ("poststop", {"path": "/bin/true"}),
]
SPEC = b'{"ociVersion": "1.0.2", "hooks": {}}'


def test_the_record_sits_beside_config_json_and_describes_only_those_bytes(tmp_path: Path) -> None:
    spec = tmp_path / "config.json"
    assert record_path(str(spec)) == f"{tmp_path}/container-hooks.injected"
    assert record_path("config.json") == "container-hooks.injected"  # runc's default bundle: "."
    assert update_record(str(spec), None, render(ADDED, SPEC)) is None
    record = tmp_path / "container-hooks.injected"
    assert record.stat().st_mode & 0o777 == 0o600
    found = read_record(str(spec))
    assert previously_added(found, SPEC) == ADDED
    assert previously_added(found, SPEC + b" ") == []  # a spec written afresh: nothing in it is ours


def test_a_record_already_as_wanted_is_not_written_and_none_wanted_is_removed(tmp_path: Path) -> None:
    spec = str(tmp_path / "config.json")
    wanted = render(ADDED, SPEC)
    assert update_record(spec, wanted, wanted) is None
    assert not (tmp_path / "container-hooks.injected").exists()  # "found" was what it holds: nothing to do
    assert update_record(spec, None, None) is None
    assert update_record(spec, None, wanted) is None
    assert update_record(spec, wanted, None) is None
    assert not (tmp_path / "container-hooks.injected").exists()
    assert update_record(spec, wanted, None) is None  # gone already: no problem


def test_a_record_that_cannot_be_removed_is_a_message_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "container-hooks.injected").mkdir()
    said = update_record(str(tmp_path / "config.json"), b"old", None)
    assert said == f"{tmp_path}/container-hooks.injected: cannot remove: Is a directory"


def test_a_record_that_cannot_be_written_is_a_message_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "container-hooks.injected").mkdir()
    said = update_record(str(tmp_path / "config.json"), None, render(ADDED, SPEC))
    assert said is not None and said.startswith(f"{tmp_path}/container-hooks.injected: "), said
    assert (tmp_path / "container-hooks.injected").is_dir()


def test_a_link_at_the_record_is_replaced_never_followed(tmp_path: Path) -> None:
    """Whoever can put a link in the bundle must not have the shim write through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"not the shim's")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "container-hooks.injected").symlink_to(elsewhere)
    assert update_record(str(bundle / "config.json"), None, render(ADDED, SPEC)) is None
    assert elsewhere.read_bytes() == b"not the shim's"
    assert not (bundle / "container-hooks.injected").is_symlink()
    assert previously_added(read_record(str(bundle / "config.json")), SPEC) == ADDED


def test_a_record_larger_than_its_limit_is_not_read(tmp_path: Path) -> None:
    """128 MiB: config.json's 64 MiB and as much again for the list of hooks (sparse files here)."""
    spec = str(tmp_path / "config.json")
    record = tmp_path / "container-hooks.injected"
    with open(record, "wb") as handle:
        handle.truncate(MAX_RECORD_BYTES)
    assert MAX_RECORD_BYTES == 128 << 20
    found = read_record(spec)
    assert found is not None and len(found) == MAX_RECORD_BYTES
    del found
    os.truncate(record, MAX_RECORD_BYTES + 1)
    assert read_record(spec) is None
    assert read_record(str(tmp_path / "nothing" / "config.json")) is None
