"""chts.shim.inject's path helpers, written without os for the create path: same answers as os.path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chts.shim.inject import absolute_path

components = st.lists(st.sampled_from(["a", "bundle", ".", "..", "", "x y", "é"]), max_size=8)


@given(components, st.booleans())
def test_absolute_path_is_os_path_abspath(parts: list[str], rooted: bool) -> None:
    path = ("/" if rooted else "") + "/".join(parts)
    if path.startswith("//"):
        return  # POSIX leaves a leading // implementation-defined; os.path keeps it, no engine passes it
    assert absolute_path(path or ".") == os.path.abspath(path or ".")


def test_relative_bundle_is_taken_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_path("b/../c/./d") == f"{tmp_path}/c/d"
    assert absolute_path(".") == str(tmp_path)
