"""chts.config.chains: the record of the runtime configure chained the shim to, and keeping it first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chts.config.chains import chain_tags, chained_runtimes, record_key, with_chained_first
from chts.config.toolkit import parse_config, runtimes_of
from chts.errors import ToolkitError

CONFIGMAP = '# the ConfigMap\'s file\n[container-hooks-runtime]\nruntimes = ["runc", "docker-runc"]  # ours\n'


def test_the_chained_binary_stays_first_and_the_rest_keeps_its_order(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    records = {
        record_key("crio", "/etc/crio/crio.conf"): {"runtime": "/usr/libexec/crio/crun"},
        record_key("containerd", "/etc/containerd/config.toml"): {"runtime": "/usr/libexec/crio/crun"},
        "broken": "not a record",
    }
    Path(f"{config}.chains.json").write_text(json.dumps(records))
    chained = chained_runtimes(str(config))
    assert chained == ["/usr/libexec/crio/crun"]
    text = with_chained_first(CONFIGMAP, str(config), chained)
    assert runtimes_of(parse_config(text, "x")) == ["/usr/libexec/crio/crun", "runc", "docker-runc"]
    assert text.startswith("# the ConfigMap's file\n")  # the file's own lines kept
    assert with_chained_first(text, str(config), chained) == text  # already first: unchanged


def test_no_record_means_nothing_chained(tmp_path: Path) -> None:
    assert chained_runtimes(str(tmp_path / "config.toml")) == []
    assert chain_tags(str(tmp_path / "config.toml")) == {}


def test_the_tags_are_those_of_the_records_that_have_one(tmp_path: Path) -> None:
    """The installer re-creates a link per tag (container-hooks-runtime.TAG): each from a record of its own."""
    config = tmp_path / "config.toml"
    records = {
        record_key("podman", "/etc/containers/containers.conf"): {"runtime": "/usr/bin/crun", "tag": "crun"},
        record_key("docker", "/etc/docker/daemon.json"): {"runtime": "/opt/crun", "tag": "crun-2"},
        record_key("crio", "/etc/crio/crio.conf"): {"runtime": "/usr/libexec/crio/crun"},  # before tags
        "broken": {"tag": "x", "runtime": 5},
    }
    Path(f"{config}.chains.json").write_text(json.dumps(records))
    assert chain_tags(str(config)) == {"crun": "/usr/bin/crun", "crun-2": "/opt/crun"}


def test_a_layout_the_line_editor_cannot_keep_is_refused(tmp_path: Path) -> None:
    inline = 'container-hooks-runtime = { runtimes = ["runc"] }\n'
    with pytest.raises(ToolkitError, match="config.toml"):
        with_chained_first(inline, str(tmp_path / "config.toml"), ["/usr/bin/crun"])
