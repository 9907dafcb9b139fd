"""The node label through a fake API server on 127.0.0.1: the PATCH sent, and each failure as one line."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from chts.errors import ToolkitError
from chts.node.kube_api import ApiServer, in_cluster, set_node_label

Answer = Tuple[int, Dict[str, Any]]


@pytest.fixture
def server() -> Iterator[Tuple[str, List[Dict[str, Any]], List[Answer]]]:
    """(url, requests seen, answers to give: (status, JSON body), default 200 {})."""
    seen: List[Dict[str, Any]] = []
    answers: List[Answer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status, answer = answers.pop(0) if answers else (200, {})
            self.send_response(status)
            self.end_headers()
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen, answers
    httpd.shutdown()
    httpd.server_close()


def test_label_set_and_removed_by_merge_patch(server: Any) -> None:
    url, seen, _ = server
    api = ApiServer(url, "tok", None)
    set_node_label(api, "node-1", "container-hooks.io/ready", "true")
    set_node_label(api, "node-1", "container-hooks.io/ready", None)
    assert [request["body"] for request in seen] == [
        {"metadata": {"labels": {"container-hooks.io/ready": "true"}}},
        {"metadata": {"labels": {"container-hooks.io/ready": None}}},
    ]
    assert seen[0]["path"] == "/api/v1/nodes/node-1"
    assert seen[0]["headers"]["Authorization"] == "Bearer tok"
    assert seen[0]["headers"]["Content-Type"] == "application/merge-patch+json"


def test_refusal_names_the_api_servers_reason(server: Any) -> None:
    url, _, answers = server
    message = 'nodes "node-1" is forbidden: User "system:serviceaccount:x:y" cannot patch resource "nodes"'
    answers.append((403, {"kind": "Status", "message": message}))
    with pytest.raises(ToolkitError) as error:
        set_node_label(ApiServer(url, "tok", None), "node-1", "container-hooks.io/ready", "true")
    assert str(error.value) == f"{url}: PATCH node node-1 label container-hooks.io/ready refused: HTTP 403: {message}"


def test_removing_the_label_of_a_deleted_node_is_fine(server: Any) -> None:
    url, _, answers = server
    answers.append((404, {"message": "not found"}))
    set_node_label(ApiServer(url, "tok", None), "gone", "container-hooks.io/ready", None)


def test_unreachable_api_server_is_one_line() -> None:
    with pytest.raises(ToolkitError, match="cannot reach the API server to label node n"):
        set_node_label(ApiServer("http://127.0.0.1:1", "tok", None), "n", "k", "v")


def test_in_cluster_reads_the_environment_and_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert in_cluster(None, None, None) is None
    token = tmp_path / "token"
    token.write_text("abc\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    assert in_cluster(None, str(token), "/ca.crt") == ApiServer("https://[fd00::1]:6443", "abc", "/ca.crt")
    token.write_text("")
    with pytest.raises(ToolkitError, match="token: empty service account token"):
        in_cluster("http://x", str(token), None)
