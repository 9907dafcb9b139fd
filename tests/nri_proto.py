"""The NRI and ttrpc messages as protoc compiles them, to check chts/nri against code we did not write.

The .proto text is this test suite's own, with the field numbers of containerd/nri
pkg/api/api.proto and containerd/ttrpc request.proto (and google.rpc.Status): facts, not
their files. It is compiled at test time with grpcio-tools (a test-only dependency) into a
temporary directory; generated code is never committed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

PROTO = """\
syntax = "proto3";
package chtstest;

message Status { int32 code = 1; string message = 2; }
message KeyValue { string key = 1; string value = 2; }
message Request {
  string service = 1;
  string method = 2;
  bytes payload = 3;
  int64 timeout_nano = 4;
  repeated KeyValue metadata = 5;
}
message Response { Status status = 1; bytes payload = 2; }

message Empty {}
message RegisterPluginRequest { string plugin_name = 1; string plugin_idx = 2; string NRI_version = 3; }
message ConfigureRequest {
  string config = 1;
  string runtime_name = 2;
  string runtime_version = 3;
  int64 registration_timeout = 4;
  int64 request_timeout = 5;
  string NRI_version = 6;
}
message ConfigureResponse { int32 events = 2; }
message SynchronizeRequest { repeated PodSandbox pods = 1; repeated Container containers = 2; bool more = 3; }
message SynchronizeResponse { repeated Empty update = 1; bool more = 2; }
message CreateContainerRequest { PodSandbox pod = 1; Container container = 2; }
message CreateContainerResponse { ContainerAdjustment adjust = 1; repeated Empty update = 2; repeated Empty evict = 3; }
message StopContainerRequest { PodSandbox pod = 1; Container container = 2; }
message StopContainerResponse { repeated Empty update = 1; }
message LinuxPodSandbox { string cgroup_parent = 3; }
message PodSandbox {
  string id = 1;
  string name = 2;
  string uid = 3;
  string namespace = 4;
  map<string, string> labels = 5;
  map<string, string> annotations = 6;
  string runtime_handler = 7;
  LinuxPodSandbox linux = 8;
  uint32 pid = 9;
  repeated string ips = 10;
}
message Mount { string destination = 1; string type = 2; string source = 3; repeated string options = 4; }
message OptionalInt { int64 value = 1; }
message Hook { string path = 1; repeated string args = 2; repeated string env = 3; OptionalInt timeout = 4; }
message Hooks {
  repeated Hook prestart = 1;
  repeated Hook create_runtime = 2;
  repeated Hook create_container = 3;
  repeated Hook start_container = 4;
  repeated Hook poststart = 5;
  repeated Hook poststop = 6;
}
message Container {
  string id = 1;
  string pod_sandbox_id = 2;
  string name = 3;
  int32 state = 4;
  map<string, string> labels = 5;
  map<string, string> annotations = 6;
  repeated string args = 7;
  repeated string env = 8;
  repeated Mount mounts = 9;
  Hooks hooks = 10;
  uint32 pid = 12;
  int64 created_at = 14;
  int32 exit_code = 17;
  string status_reason = 18;
}
message ContainerAdjustment {
  map<string, string> annotations = 2;
  repeated Mount mounts = 3;
  Hooks hooks = 5;
  repeated string args = 9;
}
"""


def compile_proto(directory: Path) -> ModuleType:
    """The generated module (nri_test_pb2), compiled into ``directory``."""
    from grpc_tools import protoc

    source = directory / "nri_test.proto"
    source.write_text(PROTO)
    status = protoc.main(["protoc", f"-I{directory}", f"--python_out={directory}", str(source)])
    assert status == 0, "protoc failed"
    sys.path.insert(0, str(directory))
    try:
        sys.modules.pop("nri_test_pb2", None)
        return importlib.import_module("nri_test_pb2")
    finally:
        sys.path.remove(str(directory))
