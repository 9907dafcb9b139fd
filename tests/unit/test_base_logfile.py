"""chts.base.logfile: the log line's quoting, as the shim and the NRI plugin write it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chts.base.logfile import append_line, quote


def bare(value: str) -> bool:
    """The rule, stated per character: letters and digits (any script) and -_./:,=@+ go unquoted."""
    return bool(value) and all(c.isalnum() or c in "-_./:,=@+" for c in value)


@given(st.text(alphabet=st.sampled_from('aZ9é٣-_./:,=@+ "\\\n\t=x'), max_size=12) | st.text(max_size=12))
def test_a_value_is_bare_exactly_when_every_character_may_be(value: str) -> None:
    quoted = quote(value)
    if bare(value):
        assert quoted == value
    else:
        assert quoted == '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_examples() -> None:
    assert quote("") == '""'
    assert quote("/run/x.sock") == "/run/x.sock"
    assert quote("..") == ".." and quote("a b") == '"a b"' and quote('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert quote("été") == "été"


def test_a_new_log_file_is_not_for_everyone_to_read(tmp_path: Path) -> None:
    """Created 0640 (before the umask): hook paths and container ids are not for every user of the host."""
    old_umask = os.umask(0)
    try:
        append_line(str(tmp_path / "log"), "one line\n")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "log").read_text() == "one line\n"
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o640


def test_appending_leaves_no_descriptor_open(tmp_path: Path) -> None:
    """The shim and the NRI plugin append for every container: a leaked descriptor per line would add up."""
    before = set(os.listdir("/proc/self/fd"))
    for number in range(5):
        append_line(str(tmp_path / "log"), f"line {number}\n")
    append_line(str(tmp_path / "no-such-dir" / "log"), "dropped\n")  # cannot be opened: nothing to close
    assert set(os.listdir("/proc/self/fd")) == before
    assert (tmp_path / "log").read_text().count("\n") == 5
