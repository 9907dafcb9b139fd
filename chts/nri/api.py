"""The NRI messages the plugin reads and writes (containerd/nri pkg/api/api.proto, v1alpha1).

Decoded messages are plain dicts of what the plugin uses; everything else in them (Linux
resources, rlimits, CDI devices, ...) is skipped by chts.nri.wire.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from chts.nri import wire

# Service names as pkg/api/api_ttrpc.pb.go registers them.
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"
PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"

# enum Event; an EventMask has bit (event - 1) set for each event (pkg/api/event.go).
CREATE_CONTAINER = 4


def event_mask(*events: int) -> int:
    mask = 0
    for event in events:
        mask |= 1 << (event - 1)
    return mask


# message Hooks: the OCI stages by their field numbers, in the runtime-spec's names.
HOOK_STAGES = (
    (1, "prestart"),
    (2, "createRuntime"),
    (3, "createContainer"),
    (4, "startContainer"),
    (5, "poststart"),
    (6, "poststop"),
)
STAGE_FIELDS = {stage: number for number, stage in HOOK_STAGES}


def encode_register_plugin(name: str, index: str) -> bytes:
    """RegisterPluginRequest{plugin_name = 1, plugin_idx = 2}."""
    return wire.field_string(1, name) + wire.field_string(2, index)


def decode_register_plugin(data: bytes) -> Tuple[str, str]:
    fields = wire.decode(data)
    return wire.last_string(fields, 1), wire.last_string(fields, 2)


def decode_configure(data: bytes) -> Dict[str, Any]:
    """ConfigureRequest{config = 1, runtime_name = 2, runtime_version = 3, registration_timeout = 4,
    request_timeout = 5} (timeouts in milliseconds; containerd 1.7 sends 0)."""
    fields = wire.decode(data)
    return {
        "config": wire.last_string(fields, 1),
        "runtime_name": wire.last_string(fields, 2),
        "runtime_version": wire.last_string(fields, 3),
        "registration_timeout": wire.signed64(wire.last_int(fields, 4)),
        "request_timeout": wire.signed64(wire.last_int(fields, 5)),
    }


def encode_configure_response(events: int) -> bytes:
    """ConfigureResponse{events = 2}."""
    return wire.field_varint(2, events)


def decode_synchronize(data: bytes) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], bool]:
    """SynchronizeRequest{pods = 1, containers = 2, more = 3}."""
    fields = wire.decode(data)
    pods = [decode_pod(item) for item in wire.all_bytes(fields, 1)]
    containers = [decode_container(item) for item in wire.all_bytes(fields, 2)]
    return pods, containers, bool(wire.last_int(fields, 3))


def encode_synchronize_response(more: bool) -> bytes:
    """SynchronizeResponse{update = 1, more = 2}: no updates."""
    return wire.field_bool(2, more)


def decode_create_container(data: bytes) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """CreateContainerRequest{pod = 1, container = 2}: (pod, container)."""
    fields = wire.decode(data)
    return decode_pod(wire.last_bytes(fields, 1)), decode_container(wire.last_bytes(fields, 2))


def decode_pod(data: bytes) -> Dict[str, Any]:
    """PodSandbox{id = 1, name = 2, uid = 3, namespace = 4, labels = 5, annotations = 6}."""
    fields = wire.decode(data)
    return {
        "id": wire.last_string(fields, 1),
        "name": wire.last_string(fields, 2),
        "uid": wire.last_string(fields, 3),
        "namespace": wire.last_string(fields, 4),
        "labels": wire.string_map(fields, 5),
        "annotations": wire.string_map(fields, 6),
    }


def decode_container(data: bytes) -> Dict[str, Any]:
    """Container{id = 1, pod_sandbox_id = 2, name = 3, state = 4, labels = 5, annotations = 6,
    args = 7, env = 8, mounts = 9, hooks = 10}."""
    fields = wire.decode(data)
    return {
        "id": wire.last_string(fields, 1),
        "pod_sandbox_id": wire.last_string(fields, 2),
        "name": wire.last_string(fields, 3),
        "state": wire.last_int(fields, 4),
        "labels": wire.string_map(fields, 5),
        "annotations": wire.string_map(fields, 6),
        "args": wire.all_strings(fields, 7),
        "env": wire.all_strings(fields, 8),
        "mounts": [decode_mount(item) for item in wire.all_bytes(fields, 9)],
        "hooks": decode_hooks(wire.last_bytes(fields, 10)),
    }


def decode_mount(data: bytes) -> Dict[str, Any]:
    """Mount{destination = 1, type = 2, source = 3, options = 4}, in the OCI spec's keys."""
    fields = wire.decode(data)
    return {
        "destination": wire.last_string(fields, 1),
        "type": wire.last_string(fields, 2),
        "source": wire.last_string(fields, 3),
        "options": wire.all_strings(fields, 4),
    }


def decode_hooks(data: bytes) -> Dict[str, List[Dict[str, Any]]]:
    """Hooks{prestart = 1, ... poststop = 6} as the OCI `hooks` object (stages present only)."""
    fields = wire.decode(data)
    hooks: Dict[str, List[Dict[str, Any]]] = {}
    for number, stage in HOOK_STAGES:
        items = wire.all_bytes(fields, number)
        if items:
            hooks[stage] = [decode_hook(item) for item in items]
    return hooks


def decode_hook(data: bytes) -> Dict[str, Any]:
    """Hook{path = 1, args = 2, env = 3, timeout = 4 (OptionalInt{value = 1})}, as an OCI hook
    (args, env and timeout only when present, as chts.hooks.merge.hook_identity compares them)."""
    fields = wire.decode(data)
    hook: Dict[str, Any] = {"path": wire.last_string(fields, 1)}
    args = wire.all_strings(fields, 2)
    if args:
        hook["args"] = args
    env = wire.all_strings(fields, 3)
    if env:
        hook["env"] = env
    if 4 in fields:
        hook["timeout"] = wire.signed64(wire.last_int(wire.decode(wire.last_bytes(fields, 4)), 1))
    return hook


def encode_hook(hook: Mapping[str, Any]) -> bytes:
    out = wire.field_string(1, hook["path"]) + wire.repeated_string(2, hook.get("args", ()))
    out += wire.repeated_string(3, hook.get("env", ()))
    if "timeout" in hook:
        out += wire.field_bytes(4, wire.field_varint(1, hook["timeout"]), keep_empty=True)
    return out


def encode_hooks(hooks: Sequence[Tuple[str, Mapping[str, Any]]]) -> bytes:
    """Hooks{...} of the (stage, hook) pairs, each stage's hooks in the order given."""
    out = bytearray()
    for _, stage in HOOK_STAGES:
        for wanted, hook in hooks:
            if wanted == stage:
                out += wire.field_bytes(STAGE_FIELDS[stage], encode_hook(hook), keep_empty=True)
    return bytes(out)


def encode_create_container_response(hooks: Sequence[Tuple[str, Mapping[str, Any]]]) -> bytes:
    """CreateContainerResponse{adjust = 1: ContainerAdjustment{hooks = 5}}; no adjustment without hooks."""
    if not hooks:
        return b""
    adjustment = wire.field_bytes(5, encode_hooks(hooks), keep_empty=True)
    return wire.field_bytes(1, adjustment, keep_empty=True)


# The error text of a failed call starts with who said it: containerd shows it as the create's error.
PLUGIN_NAME_PREFIX = "container-hooks NRI plugin: "
