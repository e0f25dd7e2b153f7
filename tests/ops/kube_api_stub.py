"""A stand-in Kubernetes API server on 127.0.0.1 for the few calls `rollout` makes for KServe.

It answers the real paths and verbs (read/patch an Ingress, list InferenceServices, Prometheus through the service
proxy) so the official client and our adapter are exercised over HTTP; it is not a cluster and claims nothing more.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse


class KubeState:
    def __init__(self, namespace: str, ingress: dict, inference_services: list[dict]):
        self.namespace, self.ingress, self.inference_services = namespace, ingress, inference_services
        self.firing: list[str] = []  # alert names firing for the deployment
        self.patches: list[tuple[str, dict]] = []  # (content type, body)
        self.queries: list[str] = []
        self.objects: dict[str, dict] = {}  # any other object, by its API path (a KEDA ScaledObject for verify)


def serve(state: KubeState):
    ns = state.namespace
    ingress_path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{state.ingress['metadata']['name']}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def reply(self, body, status=200):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            url = url._replace(path=unquote(url.path))  # the API server decodes %3A in `name:port` as Go does
            if url.path == ingress_path:
                return self.reply(state.ingress)
            if url.path in state.objects:
                return self.reply(state.objects[url.path])
            if url.path == f"/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices":
                return self.reply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceServiceList",
                                   "items": state.inference_services})
            if url.path == "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query":
                state.queries.append(parse_qs(url.query)["query"][0])
                return self.reply({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {"alertname": name, "alertstate": "firing"}, "value": [0, "1"]}
                    for name in state.firing]}})
            self.reply({"kind": "Status", "code": 404, "message": f"{url.path} not found"}, 404)

        def do_PATCH(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if urlparse(self.path).path != ingress_path:
                return self.reply({"kind": "Status", "code": 404}, 404)
            state.patches.append((self.headers["Content-Type"], body))
            state.ingress["metadata"]["annotations"].update(body["metadata"]["annotations"])
            self.reply(state.ingress)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def use_stub(server, tmp_path, monkeypatch) -> None:
    """Point KUBECONFIG at the stub server, as the Kubernetes client reads it: a context with a static token."""
    import yaml

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        "users": [{"name": "stub", "user": {"token": "stub-token"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
