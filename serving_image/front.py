"""The front: a thin HTTP layer before Triton that answers a client's mistake with a 4xx, never a 5xx.

Why it exists: Triton (24.12 in the image, 2.51 locally) answers several malformed requests with 500, a body that is
not JSON or `data` that does not fill `shape` among them, and one request whose JSON shape asks for more memory than
there is ends the server. SageMaker counts a container's 5xx in `Invocation5XXErrors`, the alarm that rolls a canary
back, and KServe's error-rate alert reads Triton's failure counter: one misbehaving client could roll back a good
release. The front routes, checks and forwards; the checks are the Gate's (`gate.py`), the HTTP is `http1.py`'s.

Per inference request: the model and version in the path, the content type and binary header length, the body size,
then `Gate.precheck` (the request's JSON structure, shapes and batch, binary sizes; not the tensors' values), then
the body goes to Triton byte for byte on a kept-alive connection. Triton's 200 goes back as is. When Triton refuses
(4xx, 500), the Gate's full `check` runs on the body, and what it finds is the client's 400 with the reason and message
it always had (`data` that does not fill its shape, strings or booleans among numbers, ragged lists: Triton checks
those values in its HTTP front end, before the model, so its failure counter does not move); Triton's own "wrong JSON
type" 500 is a 400 too. A request Triton does not refuse costs the front no pass over its values.
`tests/serving/test_fuzz_kserve.py` fuzzes all of this from KServe's Open Inference Protocol spec.

  kserve:    v2 HTTP on the public port (Triton's HTTP on a loopback port behind it); gRPC goes to Triton directly,
             whose gRPC statuses already say INVALID_ARGUMENT for these cases; the metrics port serves Triton's
             metrics followed by the front's own.
  sagemaker: /ping and /invocations (JSON, or Triton's binary tensors with
             `application/vnd.sagemaker-triton.binary+json;json-header-size=N`), translated to v2 for Triton.

Overload shed by the model's queue policy (Triton's 503 "Exceeds maximum queue size" / "Request timeout expired")
becomes 429 with Retry-After: capacity, not a server fault.

Its metrics: `mlserve_front_refused_total{reason}` (client errors by what was wrong, json_type for a field of the wrong
JSON type, and queue_full/queue_timeout)
and `mlserve_front_forwarded_total{code}` (what Triton answered); and, from the start,
`mlserve_engine_store_failures_total{operation,reason}` (the shared engine store failed and the replica built locally).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from urllib.parse import unquote

import orjson
from prometheus_client import CollectorRegistry, Counter, generate_latest

from . import http1
from .gate import CUSTOM_ATTRIBUTES, HEADER_LENGTH, Gate, Refusal, header_length_of
from .http1 import Request, Response, UpstreamError

__all__ = ["CUSTOM_ATTRIBUTES", "DEFAULT_MAX_BODY_BYTES", "Front", "Gate", "Refusal", "run"]

# Read from this file's source by tests/components (tests.harness.front_constant): keep both module-level literals.
SAGEMAKER_BINARY = "application/vnd.sagemaker-triton.binary+json"
OVERLOAD_RETRY_AFTER = "1"
"""Seconds a shed client waits (Retry-After on the 429); the gateway restores it where SageMaker drops the header."""
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
FORWARDED_HEADERS = ("Content-Type", HEADER_LENGTH, "Accept-Encoding", "Content-Encoding")
_FORWARDED = {name.lower(): name for name in FORWARDED_HEADERS}
# Triton's words when a model's queue policy (spec.json `queue`) sheds a request: reason counted -> text matched.
OVERLOAD = {"queue_full": b"Exceeds maximum queue size", "queue_timeout": b"Request timeout expired"}
# Triton's JSON parser (TritonJson) when a request value has the wrong JSON type, which Triton answers with 500 before
# the request reaches a model. The Gate checks every field's type itself; inside `data` that would cost a pass over
# every value in Python (true/false among numbers, which numpy silently turns into 1/0), so there Triton's refusal is
# the check, and the front hands it back as the client error it is.
TRITON_JSON_TYPE = (b"attempt to access JSON non-", b"attempt to get members for non-object")
JSON = [("Content-Type", "application/json")]
STOPPING = Response(503, b'{"error":"Server is stopping"}', JSON)  # said as Triton says it


READ_ONLY_ROUTES = re.compile(
    r"/v2/?|/v2/health/(live|ready)|/v2/models/[^/]+(/versions/[^/]+)?(/ready|/config|/stats)?")
"""What the front passes to Triton besides inference: the Open Inference Protocol's GET routes (server and model
metadata, health, readiness; tests/serving derives them from the protocol's own spec, schemas/kserve-oip) and the
model's configuration and statistics, which tritonclient and perf_analyzer read."""


def _json(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps({"error": message}), headers or JSON)


class Front:
    """The front's routes and what it makes of Triton's answers; Triton's HTTP on 127.0.0.1:`upstream_port`."""

    def __init__(self, gate: Gate, upstream_port: int, metrics_port: int | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 store_failures: Mapping[tuple[str, str], int] | None = None):
        self.gate, self.upstream_port, self.metrics_port = gate, upstream_port, metrics_port
        self.max_body_bytes = max_body_bytes
        self.model_path = f"/v2/models/{gate.spec.name}/infer".encode()  # what Triton is sent, in plain spelling
        self.version_path = f"/v2/models/{gate.spec.name}/versions/1/infer".encode()
        self.registry = CollectorRegistry()
        self.refused = Counter("mlserve_front_refused", "Requests refused as client errors, by reason",
                               ["model", "reason"], registry=self.registry)
        self.forwarded = Counter("mlserve_front_forwarded", "Requests forwarded to Triton, by its status code",
                                 ["model", "code"], registry=self.registry)
        failures = Counter("mlserve_engine_store_failures", "Failures of the shared engine store at start, by "
                           "operation and reason (the replica built its engine locally)",
                           ["model", "operation", "reason"], registry=self.registry)
        for (operation, reason), count in (store_failures or {}).items():
            failures.labels(gate.spec.name, operation, reason).inc(count)
        self._counters: dict[tuple[Counter, str], object] = {}
        self.triton: http1.Upstream | None = None
        self.triton_metrics: http1.Upstream | None = None
        self.stopping = False  # set on SIGTERM: new requests are refused, those in flight finish

    def _count(self, counter: Counter, label: str) -> None:
        child = self._counters.get((counter, label))
        if child is None:
            child = self._counters[(counter, label)] = counter.labels(self.gate.spec.name, label)
        child.inc()  # type: ignore[attr-defined]

    async def open(self) -> None:
        # Short keep-alive: Triton's shutdown waits for every open HTTP connection, idle ones included.
        self.triton = http1.Upstream("127.0.0.1", self.upstream_port, frozenset(_FORWARDED), idle_timeout=1.0)
        self.triton.open()
        if self.metrics_port:
            self.triton_metrics = http1.Upstream("127.0.0.1", self.metrics_port, frozenset(), idle_timeout=1.0)
            self.triton_metrics.open()

    async def close(self) -> None:
        for upstream in (self.triton, self.triton_metrics):
            if upstream is not None:
                await upstream.close()
        self.triton = self.triton_metrics = None

    def stop_accepting(self) -> None:
        """SIGTERM: new requests get 503; idle connections to Triton close now (its shutdown waits for them)."""
        self.stopping = True
        if self.triton is not None:
            self.triton.close_idle(stop_pooling=True)

    # Routing
    def handler(self, mode: str) -> http1.Handler:
        route = self._sagemaker if mode == "sagemaker" else self._kserve

        async def handle(request: Request) -> Response:
            if self.stopping:  # health checks fail too, so balancers drain this instance
                return STOPPING
            try:
                return await route(request)
            except Refusal as refusal:
                self._count(self.refused, refusal.reason)
                return _json(refusal.status, refusal.message)
        return handle

    async def _kserve(self, request: Request) -> Response:
        if request.method == "POST" and request.path.startswith("/v2/models/") and request.path.endswith("/infer"):
            path = unquote(request.path) if "%" in request.path else request.path
            parts = path.split("/")  # '', v2, models, NAME, [versions, V,] infer
            if len(parts) == 5 and parts[3]:
                return await self._infer(request, parts[3], None, self.model_path)
            if len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5]:
                return await self._infer(request, parts[3], parts[5], self.version_path)
        if request.method in ("GET", "HEAD") and READ_ONLY_ROUTES.fullmatch(request.path):
            # The protocol's spec writes server metadata as /v2/; Triton answers it only as /v2.
            return await self._pass_through(request, b"/v2" if request.path == "/v2/" else None)
        # Triton's administrative extensions (shared memory registration, trace and log settings, the model
        # repository's load/unload) never leave the pod: only the protocol's routes and the model's own do.
        return _json(404, f"not found: {request.method} {request.path} (this server answers the Open Inference "
                          "Protocol: GET /v2, /v2/health/live|ready, /v2/models/<model>[/versions/<v>][/ready|/config|/stats], "
                          "POST .../infer)")

    async def _sagemaker(self, request: Request) -> Response:
        routes = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",)}
        if request.path not in routes:
            return _json(404, f"not found: {request.path} (this container serves /ping and /invocations)")
        if request.method not in routes[request.path]:
            return _json(405, f"{request.method} is not allowed on {request.path}",
                         [*JSON, ("Allow", ", ".join(routes[request.path]))])
        if request.path == "/ping":
            return await self._ping()
        return await self._invocations(request)

    # Inference
    def _body(self, request: Request, sagemaker: bool) -> tuple[bytes, int | None]:
        content_type = request.headers.get("content-type", "application/json").lower()
        header_length = header_length_of(content_type, request.headers)
        allowed = ("application/json", SAGEMAKER_BINARY, "application/octet-stream") if sagemaker else (
            "application/json", "application/octet-stream")
        if not content_type.startswith(allowed):
            raise Refusal(415, "content_type", f"content type {content_type!r} is not accepted: send "
                                               f"{' or '.join(allowed)}")
        if request.too_large:
            raise Refusal(413, "body_too_large", f"the body is larger than {self.max_body_bytes} bytes")
        body = request.body
        if header_length is not None and header_length > len(body):
            raise Refusal(400, "binary_header", f"the inference header length {header_length} is longer than the "
                                                f"body ({len(body)} bytes)")
        self.gate.precheck(body, header_length)
        return body, header_length

    async def _infer(self, request: Request, model: str, version: str | None, target: bytes) -> Response:
        self.gate.model(model)
        if version is not None and version != "1":
            raise Refusal(404, "unknown_version", f"unknown version '{version}' of {self.gate.spec.name}: it has 1")
        body, header_length = self._body(request, sagemaker=False)
        headers = [("Content-Type", request.headers.get("content-type", "application/json"))]
        if header_length is not None:
            headers.append((HEADER_LENGTH, str(header_length)))
        if "accept-encoding" in request.headers:  # the client's choice only: Triton compresses if asked
            headers.append(("Accept-Encoding", request.headers["accept-encoding"]))
        return await self._forward("POST", target, body, headers, header_length)

    async def _invocations(self, request: Request) -> Response:
        body, header_length = self._body(request, sagemaker=True)
        headers = [("Content-Type", "application/octet-stream" if header_length is not None else "application/json")]
        if header_length is not None:
            headers.append((HEADER_LENGTH, str(header_length)))
        return await self._forward("POST", self.model_path, body, headers, header_length, sagemaker=True)

    async def _forward(self, method: str, target: bytes, body: bytes, headers: list[tuple[str, str]],
                       header_length: int | None, sagemaker: bool = False) -> Response:
        assert self.triton is not None
        try:
            upstream = await self.triton.request(method, target, headers, body)
        except UpstreamError as error:
            # Triton is not there (starting or stopping): a server-side condition, said as such.
            self._count(self.forwarded, "unreachable")
            return _json(503, f"the model server is starting or stopping: {error}")
        status, payload = upstream.status, upstream.body
        if status != 200:
            if status == 503:
                overload = next((reason for reason, text in OVERLOAD.items() if text in payload), None)
                if overload:
                    # The model's queue policy shed this request: overload, said as 429 (SageMaker counts it as 4xx,
                    # so shedding never trips the 5xx rollback alarm); the client should retry after a pause.
                    self._count(self.refused, overload)
                    return Response(429, payload, [*JSON, ("Retry-After", OVERLOAD_RETRY_AFTER)])
            elif status == 500 or 400 <= status < 500:
                # Triton refused it: the Gate's full check (the tensors' values included) says why, as it always did.
                self.gate.check(body, header_length)
                if status == 500 and any(text in payload for text in TRITON_JSON_TYPE):
                    # A value of the wrong JSON type that the Gate leaves to Triton (see TRITON_JSON_TYPE).
                    self._count(self.refused, "json_type")
                    return Response(400, payload, JSON)
        self._count(self.forwarded, str(status))
        reply = [(_FORWARDED[name], value) for name, value in upstream.headers.items()]
        if sagemaker and HEADER_LENGTH.lower() in upstream.headers:
            size = upstream.headers[HEADER_LENGTH.lower()]
            reply = [(name, value) for name, value in reply if name not in ("Content-Type", HEADER_LENGTH)]
            reply.append(("Content-Type", f"{SAGEMAKER_BINARY};json-header-size={size}"))
        return Response(status, payload, reply)

    # Everything else
    async def _ping(self) -> Response:
        assert self.triton is not None
        try:
            upstream = await self.triton.request("GET", b"/v2/health/ready", [])
        except UpstreamError:
            return Response(503)
        return Response(200 if upstream.status == 200 else 503)

    async def _pass_through(self, request: Request, target: bytes | None = None) -> Response:
        if request.too_large:
            raise Refusal(413, "body_too_large", f"the body is larger than {self.max_body_bytes} bytes")
        assert self.triton is not None
        headers = [(_FORWARDED[name], value) for name, value in request.headers.items() if name in _FORWARDED]
        try:
            upstream = await self.triton.request(request.method, target or request.target, headers, request.body)
        except UpstreamError as error:
            return _json(503, f"the model server is starting or stopping: {error}")
        return Response(upstream.status, upstream.body,
                        [(_FORWARDED[name], value) for name, value in upstream.headers.items()])

    def metrics_handler(self) -> http1.Handler:
        async def handle(request: Request) -> Response:
            if request.path != "/metrics":
                return _json(404, "not found: this port serves /metrics")
            if request.method not in ("GET", "HEAD"):
                return _json(405, f"{request.method} is not allowed on /metrics", [*JSON, ("Allow", "GET, HEAD")])
            text = b""
            if self.triton_metrics is not None:
                try:
                    text = (await self.triton_metrics.request("GET", b"/metrics", [])).body
                except UpstreamError:
                    text = b""
            return Response(200, text + generate_latest(self.registry),
                            [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
        return handle


async def run(front: Front, mode: str, host: str, port: int, metrics_port: int | None,
              stop: asyncio.Event) -> None:
    """Serve until `stop` is set; then finish what is in flight (up to 25 s)."""
    await front.open()
    servers = [(http1.Server(front.handler(mode), front.max_body_bytes), port)]
    if metrics_port is not None:
        servers.append((http1.Server(front.metrics_handler(), 1024 * 1024), metrics_port))
    try:
        for server, server_port in servers:
            await server.start(host, server_port)
        await stop.wait()
    finally:
        for server, _ in servers:
            await server.shutdown(timeout=25)
        await front.close()
