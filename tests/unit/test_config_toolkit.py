"""The toolkit config: defaults, partial files merged over them, and one clear line for bad input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from chts.config.toolkit import SCHEMA, default_config, load_config
from chts.errors import ToolkitError


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(str(tmp_path / "absent.toml"))
    assert config == default_config()
    assert config["container-hooks"]["path"] == "/etc/container-hooks/hooks.json"
    assert config["container-hooks-ctk"]["path"] == "/usr/bin/container-hooks-ctk"
    runtime = config["container-hooks-runtime"]
    assert runtime == {
        "debug": "/etc/container-hooks/container-hooks-runtime.log",
        "log-level": "info",
        "runtimes": ["runc", "docker-runc"],
    }


def test_partial_file_is_merged_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# mine\n[container-hooks-runtime]\nruntimes = ["crun", "runc"]\n')
    config = load_config(str(path))
    assert config["container-hooks-runtime"]["runtimes"] == ["crun", "runc"]
    assert config["container-hooks-runtime"]["log-level"] == "info"
    assert config["container-hooks"] == default_config()["container-hooks"]


def test_defaults_are_not_shared_between_loads(tmp_path: Path) -> None:
    first = default_config()
    first["container-hooks-runtime"]["runtimes"].append("x")
    assert default_config()["container-hooks-runtime"]["runtimes"] == ["runc", "docker-runc"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[container-hooks\n", "invalid TOML"),
        ("[container-hook]\npath = '/x'\n", "unknown section [container-hook]"),
        ("[container-hooks]\npaht = '/x'\n", "unknown key 'paht' in [container-hooks]"),
        ("[container-hooks]\npath = 3\n", "[container-hooks] path must be a string"),
        ("[container-hooks]\npath = 'relative.json'\n", "must be an absolute path"),
        ("[container-hooks-runtime]\nruntimes = 'runc'\n", "runtimes must be a non-empty list"),
        ("[container-hooks-runtime]\nruntimes = []\n", "runtimes must be a non-empty list"),
        ("[container-hooks-runtime]\nruntimes = ['runc', 1]\n", "non-empty strings"),
        ("[container-hooks-runtime]\nlog-level = 'loud'\n", "log-level must be one of"),
        ("container-hooks = 1\n", "must be a table"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(ToolkitError) as error:
        load_config(str(path))
    text = str(error.value)
    assert text.startswith(str(path))
    assert message in text
    assert "\n" not in text


def test_unusable_files(tmp_path: Path) -> None:
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(ToolkitError, match="is a directory"):
        load_config(str(directory))
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ToolkitError, match="larger than"):
        load_config(str(big))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[x]")
    with pytest.raises(ToolkitError, match="not UTF-8"):
        load_config(str(binary))
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ToolkitError, match="dangling symlink"):
        load_config(str(dangling))


def test_every_schema_default_is_valid() -> None:
    for section, keys in SCHEMA.items():
        for key, (_kind, default, comment) in keys.items():
            assert comment, f"{section}.{key} needs a comment for the default file"
            defaults: Any = default_config()
            assert default == defaults[section][key]


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    os.chmod(path, 0o644)
    assert load_config(str(path)) == default_config()
