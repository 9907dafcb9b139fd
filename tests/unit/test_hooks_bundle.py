"""A bundle's config.json as the create path reads it: its size limit and what cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from chts.errors import ToolkitError
from chts.hooks.bundle import MAX_SPEC_BYTES, read_spec_text


def test_config_json_over_64_mib_is_refused_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "config.json"
    with open(spec, "wb") as handle:  # sparse
        handle.truncate(MAX_SPEC_BYTES + 1)
    assert MAX_SPEC_BYTES == 64 << 20
    with pytest.raises(ToolkitError) as error:
        read_spec_text(str(spec))
    assert str(error.value) == f"{spec}: larger than {64 << 20} bytes"
    spec.unlink()
    with open(spec, "wb") as handle:
        handle.truncate(MAX_SPEC_BYTES)
    with pytest.raises(ToolkitError) as error:  # at the limit: read, and then it is not JSON
        read_spec_text(str(spec))
    assert str(error.value) == f"{spec}:1:1: invalid JSON: Expecting value"


def test_a_config_json_that_cannot_be_read_is_named_and_none_is_none(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ToolkitError, match=f"^{tmp_path}/config.json: cannot read: Is a directory$"):
        read_spec_text(str(tmp_path / "config.json"))
    assert read_spec_text(str(tmp_path / "missing" / "config.json")) is None
