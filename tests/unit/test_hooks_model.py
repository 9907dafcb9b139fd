"""chts.hooks.model: what runc can really read, refused here with the range it accepts."""

from __future__ import annotations

import pytest

from chts.errors import ToolkitError
from chts.hooks.model import MAX_TIMEOUT, parse_hooks_json


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
