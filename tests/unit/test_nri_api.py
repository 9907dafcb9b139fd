"""chts.nri.api against protoc's classes (tests/nri_proto.py): what the plugin decodes is what a
protobuf library wrote, and what it encodes is what a protobuf library reads."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nri_proto import compile_proto
from nri_runtime import hooks_of

from chts.nri import api

PB: Any = None


@pytest.fixture(scope="module", autouse=True)
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    global PB
    PB = compile_proto(tmp_path_factory.mktemp("nri-proto"))
    return PB


texts = st.text(max_size=12)
string_maps = st.dictionaries(texts, texts, max_size=3)
hooks: st.SearchStrategy[Dict[str, Any]] = st.fixed_dictionaries(
    {"path": st.text(min_size=1, max_size=12)},
    optional={
        "args": st.lists(texts, min_size=1, max_size=3),
        "env": st.lists(texts, min_size=1, max_size=3),
        "timeout": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    },
)
stage_hooks = st.lists(st.tuples(st.sampled_from([stage for _, stage in api.HOOK_STAGES]), hooks), max_size=6)


def pb_hooks(pb: Any, pairs: List[Any]) -> Any:
    fields = {
        stage: field
        for field, stage in zip(
            ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop"),
            (stage for _, stage in api.HOOK_STAGES),
        )
    }
    message = pb.Hooks()
    for stage, hook in pairs:
        item = getattr(message, fields[stage]).add(
            path=hook["path"], args=hook.get("args", []), env=hook.get("env", [])
        )
        if "timeout" in hook:
            item.timeout.value = hook["timeout"]
    return message


def by_stage(pairs: List[Any]) -> Dict[str, List[Any]]:
    result: Dict[str, List[Any]] = {}
    for _, stage in api.HOOK_STAGES:
        for wanted, hook in pairs:
            if wanted == stage:
                result.setdefault(stage, []).append(hook)
    return result


@settings(max_examples=60, deadline=None)
@given(stage_hooks)
def test_the_adjustment_is_what_protobuf_reads(pairs: List[Any]) -> None:
    data = api.encode_create_container_response(pairs)
    reply = PB.CreateContainerResponse.FromString(data)
    assert reply.HasField("adjust") == bool(pairs)
    assert hooks_of(PB, reply.adjust.hooks) == by_stage(pairs)
    assert not reply.adjust.annotations and not reply.adjust.mounts and not reply.adjust.args


@settings(max_examples=60, deadline=None)
@given(
    string_maps,
    string_maps,
    st.lists(texts, max_size=4),
    st.lists(st.tuples(texts, texts, texts, st.lists(texts, max_size=3)), max_size=3),
    stage_hooks,
    st.integers(min_value=0, max_value=4),
)
def test_a_create_request_decodes_as_protobuf_wrote_it(
    labels: Dict[str, str],
    annotations: Dict[str, str],
    args: List[str],
    mounts: List[Any],
    pairs: List[Any],
    state: int,
) -> None:
    pod = PB.PodSandbox(
        id="p", name="n", uid="u", namespace="ns", labels=labels, annotations=annotations,
        runtime_handler="runc", linux=PB.LinuxPodSandbox(cgroup_parent="/kubepods"), pid=42, ips=["10.0.0.1"],
    )  # fmt: skip
    container = PB.Container(
        id="c", pod_sandbox_id="p", name="app", state=state, labels=labels, annotations=annotations, args=args,
        env=["A=1"], mounts=[PB.Mount(destination=d, type=t, source=s, options=o) for d, t, s, o in mounts],
        hooks=pb_hooks(PB, pairs), pid=7, created_at=-1, exit_code=-3, status_reason="r",
    )  # fmt: skip
    data = PB.CreateContainerRequest(pod=pod, container=container).SerializeToString()
    got_pod, got = api.decode_create_container(data)
    assert got_pod == {
        "id": "p",
        "name": "n",
        "uid": "u",
        "namespace": "ns",
        "labels": labels,
        "annotations": annotations,
    }
    assert got == {
        "id": "c",
        "pod_sandbox_id": "p",
        "name": "app",
        "state": state,
        "labels": labels,
        "annotations": annotations,
        "args": args,
        "env": ["A=1"],
        "mounts": [{"destination": d, "type": t, "source": s, "options": o} for d, t, s, o in mounts],
        "hooks": by_stage(pairs),
    }


def test_register_configure_and_synchronize_match_protobuf() -> None:
    register = PB.RegisterPluginRequest.FromString(api.encode_register_plugin("container-hooks", "10"))
    assert (register.plugin_name, register.plugin_idx) == ("container-hooks", "10")
    assert api.decode_register_plugin(register.SerializeToString()) == ("container-hooks", "10")
    configure = PB.ConfigureRequest(
        config="x", runtime_name="containerd", runtime_version="v2.1.9", registration_timeout=5000,
        request_timeout=2000, NRI_version="v0.9",
    )  # fmt: skip
    assert api.decode_configure(configure.SerializeToString()) == {
        "config": "x",
        "runtime_name": "containerd",
        "runtime_version": "v2.1.9",
        "registration_timeout": 5000,
        "request_timeout": 2000,
    }
    mask = api.event_mask(api.CREATE_CONTAINER)
    assert PB.ConfigureResponse.FromString(api.encode_configure_response(mask)).events == 8
    sync = PB.SynchronizeRequest(pods=[PB.PodSandbox(id="p1")], containers=[PB.Container(id="c1")], more=True)
    pods, containers, more = api.decode_synchronize(sync.SerializeToString())
    assert [p["id"] for p in pods] == ["p1"] and [c["id"] for c in containers] == ["c1"] and more
    assert PB.SynchronizeResponse.FromString(api.encode_synchronize_response(True)).more
    assert api.encode_synchronize_response(False) == b""


def test_a_hook_without_timeout_has_none_and_a_zero_timeout_is_kept() -> None:
    message = PB.Hook(path="/x")
    assert api.decode_hook(message.SerializeToString()) == {"path": "/x"}
    message.timeout.value = 0
    assert api.decode_hook(message.SerializeToString()) == {"path": "/x", "timeout": 0}
    assert PB.Hook.FromString(api.encode_hook({"path": "/x", "timeout": 0})).HasField("timeout")
