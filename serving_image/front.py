"""The front: a thin HTTP layer before Triton that answers a client's mistake with a 4xx, never a 5xx.

Why it exists: Triton (24.12 in the image, 2.51 locally) answers several malformed requests with 500, a body that is
not JSON or `data` that does not fill `shape` among them. SageMaker counts a container's 5xx in
`Invocation5XXErrors`, the alarm that rolls a canary back, and KServe's error-rate alert reads Triton's failure
counter: one misbehaving client could roll back a good release. The front checks each inference request against the
model's spec (model, input names, datatypes, shape and batch, data count and types, binary-tensor sizes, body size,
content type) and the JSON type of every field Triton reads (`id`, `parameters` and the reserved ones in it, `inputs`,
`outputs`, each tensor's `name` and `parameters`: Triton answers a wrong one with 500), refuses what is wrong with the
status and a message that says what, and forwards the rest to Triton byte for byte. What Triton then answers, the
client gets; except that Triton's own "wrong JSON type" 500 (true/false among a tensor's numbers, which the front
leaves to Triton rather than walk every value) comes back as the 400 it is. No per-request schema validation: each
check is a type test on a field the request names. `tests/serving/test_fuzz_kserve.py` fuzzes all of this from
KServe's Open Inference Protocol spec.

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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest

from .spec import ModelSpec

SAGEMAKER_BINARY = "application/vnd.sagemaker-triton.binary+json"
HEADER_LENGTH = "Inference-Header-Content-Length"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
OVERLOAD_RETRY_AFTER = "1"
"""Seconds a shed client waits (Retry-After on the 429); the gateway restores it where SageMaker drops the header."""
ITEM_SIZE = {"FP32": 4, "FP16": 2, "BF16": 2, "INT8": 1, "INT32": 4, "INT64": 8, "UINT8": 1, "BOOL": 1}
NUMBER_KINDS = {"FP32": "fiu", "FP16": "fiu", "BF16": "fiu", "INT8": "iu", "INT32": "iu", "INT64": "iu",
                "UINT8": "iu", "BOOL": "b"}
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
FORWARDED_HEADERS = ("Content-Type", HEADER_LENGTH, "Accept-Encoding", "Content-Encoding")
# Triton's words when a model's queue policy (spec.json `queue`) sheds a request: reason counted -> text matched.
OVERLOAD = {"queue_full": b"Exceeds maximum queue size", "queue_timeout": b"Request timeout expired"}


class Refusal(Exception):
    """A client error: its HTTP status, a short reason for the metric, and the message the client reads."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


# Triton's JSON parser (TritonJson) when a request value has the wrong JSON type, which Triton answers with 500 before
# the request reaches a model. The Gate checks every field's type itself; inside `data` that would cost a pass over
# every value in Python (true/false among numbers, which numpy silently turns into 1/0), so there Triton's refusal is
# the check, and the front hands it back as the client error it is.
TRITON_JSON_TYPE = (b"attempt to access JSON non-", b"attempt to get members for non-object")
UINT64 = 1 << 64


def _json_kind(value: Any) -> str:
    """How a client would name a JSON value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    return {float: "a number", str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < UINT64


# The reserved parameters Triton reads with a fixed JSON type (src/http_server.cc, Triton 2.51): a value of another
# type is a 500 there. name -> (accepts, what the message says it must be).
_BOOLEAN = (lambda v: type(v) is bool, "true or false")
_UINT = (_is_uint, "a non-negative integer")
_STRING = (lambda v: type(v) is str, "a string")
REQUEST_PARAMETERS = {"sequence_id": (lambda v: type(v) is str or _is_uint(v), "a non-negative integer or a string"),
                      "sequence_start": _BOOLEAN, "sequence_end": _BOOLEAN, "priority": _UINT, "timeout": _UINT,
                      "binary_data_output": _BOOLEAN}
_SHARED_MEMORY = {"shared_memory_region": _STRING, "shared_memory_offset": _UINT, "shared_memory_byte_size": _UINT}
INPUT_PARAMETERS = {"binary_data_size": _UINT, **_SHARED_MEMORY}
OUTPUT_PARAMETERS = {"binary_data": _BOOLEAN, "classification": _UINT, **_SHARED_MEMORY}


def _wrong_type(where: str, wanted: str, value: Any) -> Refusal:
    return Refusal(400, "json_type", f"{where} must be {wanted}, got {_json_kind(value)}")


def _parameters(holder: dict[str, Any], where: str, reserved: dict) -> dict[str, Any]:
    """`holder`'s 'parameters' (an object when given) with the reserved ones of the right JSON type."""
    if "parameters" not in holder:
        return {}
    parameters = holder["parameters"]
    if type(parameters) is not dict:
        raise _wrong_type(f"{where}'parameters'", "an object", parameters)
    for key, value in parameters.items():
        check = reserved.get(key)
        if check is not None and not check[0](value):
            raise _wrong_type(f"{where}'parameters.{key}'", check[1], value)
    return parameters


@dataclass(frozen=True)
class Gate:
    """What a request to this model must look like: the spec's inputs, outputs and batch limit."""
    spec: ModelSpec

    def model(self, name: str) -> None:
        if name != self.spec.name:
            raise Refusal(404, "unknown_model", f"unknown model '{name}': this server serves '{self.spec.name}'")

    def check(self, body: bytes, header_length: int | None) -> None:
        """Raise Refusal for anything Triton would refuse or fail on; return for a request worth running."""
        header_bytes = body if header_length is None else body[:header_length]
        try:
            request = orjson.loads(header_bytes)  # ten times faster than json for a tensor's numbers
        except orjson.JSONDecodeError as error:
            what = "the inference header" if header_length is not None else "the body"
            raise Refusal(400, "not_json", f"{what} is not valid JSON: {error}") from None
        if not isinstance(request, dict):
            raise Refusal(400, "not_an_object", "the request must be a JSON object with an 'inputs' list")
        if "id" in request and type(request["id"]) is not str:
            raise _wrong_type("'id'", "a string", request["id"])
        _parameters(request, "", REQUEST_PARAMETERS)
        inputs = request.get("inputs")
        if inputs is None or inputs == []:
            raise Refusal(400, "no_inputs", "the request has no 'inputs' (a non-empty list of tensors)")
        if type(inputs) is not list:
            raise _wrong_type("'inputs'", "a non-empty list of tensors", inputs)
        expected = {t.name: t for t in self.spec.inputs}
        given = []
        for index, tensor in enumerate(inputs):
            if type(tensor) is not dict:
                raise _wrong_type(f"inputs[{index}]", "an object (name, shape, datatype, data)", tensor)
            name = tensor.get("name")
            if type(name) is not str:
                raise _wrong_type(f"inputs[{index}]: 'name'", "a string", name)
            if name not in expected:
                raise Refusal(400, "unknown_input", f"unknown input {name!r}: {self.spec.name} takes "
                                                    f"{', '.join(sorted(expected))}")
            given.append(name)
        if len(set(given)) != len(given):
            raise Refusal(400, "duplicate_input", "an input is given twice")
        missing = sorted(set(expected) - set(given))
        if missing:
            raise Refusal(400, "missing_input", f"missing input(s) {', '.join(missing)}")
        binary_total = 0
        for tensor in inputs:
            binary_total += self._tensor(tensor, expected[tensor["name"]], binary=header_length is not None)
        if header_length is not None and binary_total != len(body) - header_length:
            raise Refusal(400, "binary_size", f"the inputs declare {binary_total} bytes of binary data, the body "
                                              f"carries {len(body) - header_length} after the header")
        outputs = request.get("outputs", [])
        if type(outputs) is not list:
            raise _wrong_type("'outputs'", "a list", outputs)
        for index, output in enumerate(outputs):
            if type(output) is not dict:
                raise _wrong_type(f"outputs[{index}]", "an object with a 'name'", output)
            name = output.get("name")
            if type(name) is not str:
                raise _wrong_type(f"outputs[{index}]: 'name'", "a string", name)
            if name not in {o.name for o in self.spec.outputs}:
                raise Refusal(400, "unknown_output", f"unknown output {name!r}: {self.spec.name} returns "
                                                     f"{', '.join(o.name for o in self.spec.outputs)}")
            _parameters(output, f"output {name}: ", OUTPUT_PARAMETERS)

    def _tensor(self, tensor: dict[str, Any], spec, binary: bool) -> int:
        name = spec.name
        if tensor.get("datatype") != spec.datatype:
            raise Refusal(400, "datatype", f"input {name}: datatype {tensor.get('datatype')!r}, the model takes "
                                           f"{spec.datatype}")
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise Refusal(400, "shape", f"input {name}: shape must be a list of integers, got {shape!r}")
        batched = self.spec.max_batch_size > 0
        if len(shape) != len(spec.dims) + batched:
            raise Refusal(400, "shape", f"input {name}: shape {shape} has {len(shape)} dimensions, the model takes "
                                        f"{'[batch] + ' if batched else ''}{spec.dims}")
        if any(d < 1 for d in shape):
            raise Refusal(400, "shape", f"input {name}: every dimension must be at least 1, got {shape}")
        if batched and shape[0] > self.spec.max_batch_size:
            raise Refusal(400, "batch_too_large", f"input {name}: batch {shape[0]} is above the model's maximum "
                                                  f"{self.spec.max_batch_size}")
        for given, wanted in zip(shape[batched:], spec.dims, strict=True):
            if wanted != -1 and given != wanted:
                raise Refusal(400, "shape", f"input {name}: shape {shape} does not match the model's "
                                            f"{'[batch] + ' if batched else ''}{spec.dims}")
        count = math.prod(shape)
        size = _parameters(tensor, f"input {name}: ", INPUT_PARAMETERS).get("binary_data_size")
        if size is not None:
            if not binary:
                raise Refusal(400, "binary_size", f"input {name}: binary_data_size without the "
                                                  f"{HEADER_LENGTH} header")
            if size != count * ITEM_SIZE[spec.datatype]:
                raise Refusal(400, "binary_size", f"input {name}: binary_data_size {size!r}, shape {shape} of "
                                                  f"{spec.datatype} needs {count * ITEM_SIZE[spec.datatype]}")
            return size
        data = tensor.get("data")
        if data is None:
            raise Refusal(400, "no_data", f"input {name}: no 'data' (nor binary_data_size)")
        if type(data) is not list:
            raise _wrong_type(f"input {name}: 'data'", "a list", data)
        try:
            values = np.asarray(data)
        except ValueError:
            raise Refusal(400, "data", f"input {name}: 'data' is ragged (nested lists of unequal length)") from None
        if values.dtype.kind not in NUMBER_KINDS[spec.datatype]:
            raise Refusal(400, "data_type", f"input {name}: 'data' holds {values.dtype.kind!r}-kind values "
                                            f"({'text' if values.dtype.kind in 'US' else 'not numbers'}), "
                                            f"the model takes {spec.datatype}")
        if values.size != count:
            raise Refusal(400, "data_count", f"input {name}: 'data' has {values.size} values, shape {shape} needs "
                                             f"{count}")
        return 0


def header_length_of(content_type: str, headers) -> int | None:
    """The JSON header's length for a binary-tensor request, None for plain JSON; Refusal if malformed.

    Three spellings: KServe v2's `Inference-Header-Content-Length: N`; Triton's SageMaker content type
    `...binary+json;json-header-size=N`; and, for `application/octet-stream` through InvokeEndpoint (which forwards
    no other header), `X-Amzn-SageMaker-Custom-Attributes: N`, which the API gateway maps from the v2 header."""
    raw = headers.get(HEADER_LENGTH)
    if content_type.startswith(SAGEMAKER_BINARY):
        match = re.search(r"json-header-size=(\S+)", content_type)
        raw = match.group(1) if match else None
        if raw is None:
            raise Refusal(400, "binary_header", f"{SAGEMAKER_BINARY} needs ';json-header-size=N'")
    elif raw is None and content_type.startswith("application/octet-stream"):
        raw = headers.get(CUSTOM_ATTRIBUTES)
        if raw is None:
            raise Refusal(400, "binary_header", f"application/octet-stream needs the {HEADER_LENGTH} header")
        raw = raw.removeprefix("json-header-size=")
    if raw is None:
        return None
    if not raw.isdigit():
        raise Refusal(400, "binary_header", f"the inference header length must be a non-negative integer, got {raw!r}")
    return int(raw)


class Front:
    """The aiohttp application: validation, then Triton on 127.0.0.1:`upstream_port`."""

    def __init__(self, gate: Gate, upstream_port: int, metrics_port: int | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 store_failures: Mapping[tuple[str, str], int] | None = None):
        self.gate, self.upstream = gate, f"http://127.0.0.1:{upstream_port}"
        self.metrics_upstream = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None
        self.max_body_bytes = max_body_bytes
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
        self.session: aiohttp.ClientSession | None = None
        self.stopping = False  # set on SIGTERM: new requests are refused, those in flight finish

    def app(self, mode: str) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[self._refusals])
        if mode == "sagemaker":
            app.router.add_get("/ping", self._ping)
            app.router.add_post("/invocations", self._invocations)
        else:
            app.router.add_post(r"/v2/models/{model}/infer", self._infer)
            app.router.add_post(r"/v2/models/{model}/versions/{version}/infer", self._infer)
            app.router.add_route("*", "/{tail:.*}", self._pass_through)
        return app

    def metrics_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        return app

    async def open(self) -> None:
        # Short keep-alive: Triton's shutdown waits for every open HTTP connection, idle ones included.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=1.0),
                                             timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
                                             auto_decompress=False, skip_auto_headers=("Accept-Encoding",))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    @web.middleware
    async def _refusals(self, request: web.Request, handler):
        if self.stopping:  # said as Triton says it; health checks fail too, so balancers drain this instance
            return web.json_response({"error": "Server is stopping"}, status=503)
        try:
            return await handler(request)
        except Refusal as refusal:
            self.refused.labels(self.gate.spec.name, refusal.reason).inc()
            return web.json_response({"error": refusal.message}, status=refusal.status)
        except web.HTTPRequestEntityTooLarge:
            self.refused.labels(self.gate.spec.name, "body_too_large").inc()
            return web.json_response({"error": f"the body is larger than {self.max_body_bytes} bytes"}, status=413)

    async def _read(self, request: web.Request, sagemaker: bool) -> tuple[bytes, int | None]:
        content_type = request.headers.get("Content-Type", "application/json").lower()
        header_length = header_length_of(content_type, request.headers)
        allowed = ("application/json", SAGEMAKER_BINARY, "application/octet-stream") if sagemaker else (
            "application/json", "application/octet-stream")
        if not content_type.startswith(allowed):
            raise Refusal(415, "content_type", f"content type {content_type!r} is not accepted: send "
                                               f"{' or '.join(allowed)}")
        body = await request.read()
        if header_length is not None and header_length > len(body):
            raise Refusal(400, "binary_header", f"the inference header length {header_length} is longer than the "
                                                f"body ({len(body)} bytes)")
        self.gate.check(body, header_length)
        return body, header_length

    async def _infer(self, request: web.Request) -> web.StreamResponse:
        self.gate.model(request.match_info["model"])
        version = request.match_info.get("version")
        if version is not None and version != "1":
            raise Refusal(404, "unknown_version", f"unknown version '{version}' of {self.gate.spec.name}: it has 1")
        body, header_length = await self._read(request, sagemaker=False)
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        if header_length is not None:
            headers[HEADER_LENGTH] = str(header_length)
        if "Accept-Encoding" in request.headers:  # the client's choice only: Triton compresses if asked
            headers["Accept-Encoding"] = request.headers["Accept-Encoding"]
        return await self._forward("POST", request.path, body, headers, request)

    async def _invocations(self, request: web.Request) -> web.StreamResponse:
        body, header_length = await self._read(request, sagemaker=True)
        headers = {"Content-Type": "application/octet-stream" if header_length is not None else "application/json"}
        if header_length is not None:
            headers[HEADER_LENGTH] = str(header_length)
        return await self._forward("POST", f"/v2/models/{self.gate.spec.name}/infer", body, headers, request,
                                   sagemaker=True)

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        try:
            async with self.session.get(f"{self.upstream}/v2/health/ready") as response:
                return web.Response(status=200 if response.status == 200 else 503)
        except aiohttp.ClientError:
            return web.Response(status=503)

    async def _pass_through(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS}
        return await self._forward(request.method, request.path_qs, body, headers, request, count=False)

    async def _forward(self, method: str, path: str, body: bytes, headers: dict[str, str], request: web.Request,
                       sagemaker: bool = False, count: bool = True) -> web.StreamResponse:
        assert self.session is not None
        try:
            async with self.session.request(method, f"{self.upstream}{path}", data=body, headers=headers) as upstream:
                payload = await upstream.read()
                status = upstream.status
                reply = {k: v for k, v in upstream.headers.items() if k in FORWARDED_HEADERS}
        except aiohttp.ClientError as error:
            # Triton is not there (starting or stopping): a server-side condition, said as such.
            if count:
                self.forwarded.labels(self.gate.spec.name, "unreachable").inc()
            return web.json_response({"error": f"the model server is starting or stopping: {error}"}, status=503)
        if status == 500 and count and any(text in payload for text in TRITON_JSON_TYPE):
            # A value of the wrong JSON type that the Gate leaves to Triton (see TRITON_JSON_TYPE): the client's.
            self.refused.labels(self.gate.spec.name, "json_type").inc()
            return web.Response(status=400, body=payload, headers={"Content-Type": "application/json"})
        if status == 503 and count:
            overload = next((reason for reason, text in OVERLOAD.items() if text in payload), None)
            if overload:
                # The model's queue policy shed this request: overload, said as 429 (SageMaker counts it as 4xx,
                # so shedding never trips the 5xx rollback alarm); the client should retry after a pause.
                self.refused.labels(self.gate.spec.name, overload).inc()
                return web.Response(status=429, body=payload, headers={"Content-Type": "application/json",
                                                                       "Retry-After": OVERLOAD_RETRY_AFTER})
        if count:
            self.forwarded.labels(self.gate.spec.name, str(status)).inc()
        if sagemaker and HEADER_LENGTH in reply:
            reply["Content-Type"] = f"{SAGEMAKER_BINARY};json-header-size={reply.pop(HEADER_LENGTH)}"
        return web.Response(status=status, body=payload, headers=reply)

    async def _metrics(self, _request: web.Request) -> web.StreamResponse:
        text = b""
        if self.metrics_upstream and self.session is not None:
            try:
                async with self.session.get(self.metrics_upstream) as response:
                    text = await response.read()
            except aiohttp.ClientError:
                text = b""
        return web.Response(body=text + generate_latest(self.registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def run(front: Front, mode: str, host: str, port: int, metrics_port: int | None,
              stop: asyncio.Event) -> None:
    """Serve until `stop` is set; then finish what is in flight (up to the runner's shutdown timeout)."""
    await front.open()
    runners = [web.AppRunner(front.app(mode), access_log=None, shutdown_timeout=25)]
    sites = [(runners[0], port)]
    if metrics_port is not None:
        runners.append(web.AppRunner(front.metrics_app(), access_log=None))
        sites.append((runners[1], metrics_port))
    for runner in runners:
        await runner.setup()
    for runner, site_port in sites:
        await web.TCPSite(runner, host, site_port, reuse_address=True).start()
    await stop.wait()
    for runner in runners:
        await runner.cleanup()
    await front.close()
