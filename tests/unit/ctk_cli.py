"""Run container-hooks-ctk in-process for unit tests: exit status, stdout and stderr of one call."""

from __future__ import annotations

from typing import Any, Tuple

from chts.ctk.main import main


def run_ctk(capsys: Any, *argv: str) -> Tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors and --help
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err
