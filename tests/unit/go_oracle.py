"""Go's regexp package as a test oracle: tests/goregex_oracle/main.go, built with `go build` once per session."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from conftest import CLEAN_PATH, require

SOURCE = Path(__file__).resolve().parent.parent / "goregex_oracle" / "main.go"


class GoOracle:
    """One long-lived oracle process answering a JSON line per query."""

    def __init__(self, binary: Path) -> None:
        self.binary = str(binary)
        self.process = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )

    def ask(self, pattern: str, inputs: Sequence[str]) -> Tuple[Optional[str], List[bool]]:
        """(Go's error message or None, MatchString of each input)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"p": pattern, "s": list(inputs)}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        return answer.get("err"), answer.get("m") or [False] * len(inputs)

    def tables(self) -> Dict[str, List[str]]:
        """Go's unicode.Categories and unicode.Scripts names."""
        output = subprocess.run([self.binary, "tables"], capture_output=True, text=True, check=True).stdout
        tables: Dict[str, List[str]] = json.loads(output)
        return tables

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def build_oracle(directory: Path) -> Path:
    go = shutil.which("go", path=CLEAN_PATH + ":/usr/lib/go/bin")
    require(go is not None, "go is not installed (apt-get install golang-go)")
    assert go is not None
    binary = directory / "goregex-oracle"
    env = {"PATH": CLEAN_PATH, "HOME": str(directory), "GOCACHE": str(directory / "gocache"), "GO111MODULE": "off"}
    subprocess.run([go, "build", "-o", str(binary), str(SOURCE)], check=True, env=env, cwd=directory)
    return binary


@pytest.fixture(scope="session")
def go_oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoOracle]:
    oracle = GoOracle(build_oracle(tmp_path_factory.mktemp("go-oracle")))
    yield oracle
    oracle.close()
