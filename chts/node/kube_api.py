"""Label this pod's node through the Kubernetes API server, with the pod's service account and stdlib HTTP only."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple, Optional

from chts.errors import ToolkitError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
READY_LABEL = "container-hooks.io/ready"
TIMEOUT = 30


class ApiServer(NamedTuple):
    url: str  # https://10.96.0.1:443, or http://127.0.0.1:PORT in tests
    token: str
    ca_file: Optional[str]


def in_cluster(url: Optional[str], token_file: Optional[str], ca_file: Optional[str]) -> Optional[ApiServer]:
    """The API server this pod talks to: explicit options, else the in-cluster environment; None outside a cluster."""
    if url is None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            return None
        url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    token_file = token_file or f"{SERVICE_ACCOUNT_DIR}/token"
    try:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise ToolkitError(f"{token_file}: cannot read the service account token: {exc.strerror}") from None
    if not token:
        raise ToolkitError(f"{token_file}: empty service account token")
    if ca_file is None and os.path.isfile(f"{SERVICE_ACCOUNT_DIR}/ca.crt"):
        ca_file = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
    return ApiServer(url.rstrip("/"), token, ca_file)


def set_node_label(api: ApiServer, node: str, key: str, value: Optional[str]) -> None:
    """Set ``key=value`` on ``node`` (``value`` None removes the label) with one JSON merge patch."""
    body = json.dumps({"metadata": {"labels": {key: value}}}).encode()
    request = urllib.request.Request(
        f"{api.url}/api/v1/nodes/{urllib.parse.quote(node, safe='')}",
        data=body,
        method="PATCH",
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/merge-patch+json",
            "Accept": "application/json",
        },
    )
    context = None
    if api.url.startswith("https:"):
        context = ssl.create_default_context(cafile=api.ca_file)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        reason = api_reason(exc)
        if exc.code == 404 and value is None:
            return  # the node is gone: its label is gone with it
        raise ToolkitError(f"{api.url}: PATCH node {node} label {key} refused: HTTP {exc.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ToolkitError(f"{api.url}: cannot reach the API server to label node {node}: {cause}") from None


def api_reason(exc: urllib.error.HTTPError) -> str:
    """The API server's Status message, else the HTTP reason."""
    try:
        status = json.loads(exc.read() or b"{}")
    except ValueError:
        status = {}
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or exc.reason)
