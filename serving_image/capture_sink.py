"""The KServe request-capture sink: KServe's logger posts each request and response here; the sink pairs them,
samples, and writes them batched to S3, KMS-encrypted, in SageMaker's data-capture JSON Lines layout, so the one
drift job reads KServe and SageMaker captures alike.

KServe's logger sends CloudEvents over HTTP: `ce-type` is `org.kubeflow.serving.inference.request` or `.response`,
`ce-id` is shared by a request and its response, the body is the payload as sent. A pair becomes one line
`{"captureData": {"endpointInput": ..., "endpointOutput": ...}, "eventMetadata": {...}, "eventVersion": "0"}` under
`<prefix>yyyy/mm/dd/hh/<uuid>.jsonl`, which is where SageMaker puts a variant's capture files too.

Bounded by design: at most `max_pending` requests wait for their response (the oldest is dropped and counted), and
at most `max_buffer_bytes` of lines wait for S3 (beyond that an event is refused with 503, and counted). Lines are
flushed when `flush_bytes` accumulate, every `flush_seconds`, and on SIGTERM; what could not be written at shutdown is
reported on stderr and in the metrics, never silently lost. Sampling is decided per `ce-id` (a stable hash), so a
request and its response are kept or skipped together. Every event body, a streamed one included, is refused above
`max_event_bytes` (413, counted `too_large`).

What is captured: JSON bodies, as SageMaker writes them (`"encoding": "JSON"`), and, for a response, an LLM's
streamed answer: vLLM's OpenAI-compatible server answers `stream: true` with server-sent events (`data: {chunk}`
... `data: [DONE]`). KServe v0.20.0's agent (pkg/logger/handler.go) copies such a stream to the client as it comes,
buffers all of it and logs it once at the end as one response event holding the raw concatenated event-stream text,
and labels it with the REQUEST's Content-Type (application/json), so the sink goes by the body, not the label: a
response body that starts with `data:` (after optional whitespace) and is UTF-8 is kept as SageMaker keeps an event
stream, `"observedContentType": "text/event-stream"`, `"encoding": "BASE64"`, which drift/llm.py reads. Anything
else (a request that is not JSON, a response neither JSON nor an event stream, binary-tensor events) is counted
`not_json` and skipped.

No HTTP status is recorded (no `eventMetadata.httpStatus`): the agent logs a response only when the status was 200
(any other status logs the request alone, which waits here until evicted or shutdown, counted), and its CloudEvent
carries no status attribute (worker.go sets id, type, source, time and the extensions inferenceservicename,
namespace, component, endpoint, metadata, annotations, recordedtime). A failure inside a 200 stream (an error chunk)
is in the captured text, and drift reads it from there.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import sys
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"


@dataclass
class SinkSettings:
    bucket: str
    prefix: str  # ends with "/": captured_files_prefix(<endpoint>) in the model bucket
    kms_key_id: str
    sample_percent: float = 100.0
    max_pending: int = 10_000
    max_buffer_bytes: int = 64 * 1024 * 1024
    flush_bytes: int = 4 * 1024 * 1024
    flush_seconds: float = 60.0
    max_event_bytes: int = 8 * 1024 * 1024


@dataclass
class _Part:
    content_type: str
    body: bytes


@dataclass
class CaptureSink:
    settings: SinkSettings
    s3: Any  # an S3 client (boto3's)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.pending: OrderedDict[str, tuple[str, _Part]] = OrderedDict()
        self.lines: list[bytes] = []
        self.buffered = 0
        self.lock = asyncio.Lock()  # guards the buffer; never held across an S3 call
        self.uploading = asyncio.Lock()  # one upload at a time
        self.events = Counter("mlserve_capture_events_total", "Logger events received", ["type"],
                              registry=self.registry)
        self.written = Counter("mlserve_capture_records_written_total", "Pairs written to S3", registry=self.registry)
        self.dropped = Counter("mlserve_capture_dropped_total", "Events or pairs not written", ["reason"],
                               registry=self.registry)
        self.buffer_gauge = Gauge("mlserve_capture_buffered_bytes", "Lines waiting for S3", registry=self.registry)

    def sampled(self, event_id: str) -> bool:
        return zlib.crc32(event_id.encode()) % 10_000 < self.settings.sample_percent * 100

    async def receive(self, kind: str, event_id: str, event_time: str, part: _Part) -> int:
        """Take one logger event; the HTTP status to answer."""
        self.events.labels(kind).inc()
        if not self.sampled(event_id):
            return 204
        if kind == REQUEST_TYPE:
            self.pending[event_id] = (event_time, part)
            if len(self.pending) > self.settings.max_pending:
                self.pending.popitem(last=False)
                self.dropped.labels("unpaired_request_evicted").inc()
            return 202
        request = self.pending.pop(event_id, None)
        if request is None:
            self.dropped.labels("response_without_request").inc()
            return 202
        line = record(event_id, request[0] or event_time, request[1], part)
        if line is None:
            self.dropped.labels("not_json").inc()  # a request not JSON, or a response neither JSON nor a stream
            return 202
        async with self.lock:
            if self.buffered + len(line) > self.settings.max_buffer_bytes:
                self.dropped.labels("buffer_full").inc()
                return 503
            self.lines.append(line)
            self.buffered += len(line)
            self.buffer_gauge.set(self.buffered)
        if self.buffered >= self.settings.flush_bytes:
            await self.flush()
        return 202

    async def flush(self) -> bool:
        """Write the buffered lines as one object; False when S3 refused (the lines go back, still bounded)."""
        async with self.uploading:
            async with self.lock:
                lines, size = self.lines, self.buffered
                self.lines, self.buffered = [], 0
            if not lines:
                return True
            now = datetime.now(UTC)
            key = f"{self.settings.prefix}{now:%Y/%m/%d/%H}/{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.jsonl"
            try:
                await asyncio.to_thread(self.s3.put_object, Bucket=self.settings.bucket, Key=key,
                                        Body=b"".join(lines), ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId=self.settings.kms_key_id, ContentType="application/jsonl")
            except Exception as error:  # noqa: BLE001 botocore raises many kinds; the lines stay for the next try
                print(f"capture sink: could not write {len(lines)} record(s) to s3://{self.settings.bucket}/{key}: "
                      f"{error}", file=sys.stderr)
                async with self.lock:
                    self.lines, self.buffered = lines + self.lines, size + self.buffered
                    self.buffer_gauge.set(self.buffered)
                return False
            self.written.inc(len(lines))
            self.buffer_gauge.set(self.buffered)
            return True

    async def shutdown(self) -> dict[str, int]:
        """Flush what is buffered; report what could not be kept (unpaired requests, lines S3 refused)."""
        flushed = await self.flush()
        lost = {"unpaired_requests": len(self.pending), "unwritten_records": 0 if flushed else len(self.lines)}
        for reason, count in lost.items():
            if count:
                self.dropped.labels(f"shutdown_{reason}").inc(count)
        print(f"capture sink: stopped; not written: {lost['unpaired_requests']} request(s) without a response, "
              f"{lost['unwritten_records']} record(s) S3 refused", file=sys.stderr)
        return lost

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_event_bytes)
        app.router.add_post("/", self._event)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _event(self, request: web.Request) -> web.Response:
        kind, event_id = request.headers.get("ce-type", ""), request.headers.get("ce-id", "")
        if kind not in (REQUEST_TYPE, RESPONSE_TYPE) or not event_id:
            return web.json_response({"error": f"expected a KServe logger CloudEvent (ce-type {REQUEST_TYPE} or "
                                      f"{RESPONSE_TYPE}, and a ce-id)"}, status=400)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.dropped.labels("too_large").inc()
            if kind == RESPONSE_TYPE:  # its request can never be paired now: free it, counted once (too_large)
                self.pending.pop(event_id, None)
            return web.json_response({"error": f"event larger than {self.settings.max_event_bytes} bytes"},
                                     status=413)
        part = _Part(request.headers.get("Content-Type", "application/json"), body)
        status = await self.receive(kind, event_id, request.headers.get("ce-time", ""), part)
        return web.Response(status=status)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


EVENT_STREAM = "text/event-stream"
_STREAM_START = re.compile(rb"\s*data:")


def is_event_stream(body: bytes) -> bool:
    """A server-sent event stream as vLLM writes one: `data:` first, after optional whitespace, and UTF-8 text."""
    if not _STREAM_START.match(body):  # no copy of the body for a look at its start
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _captured(part: _Part, mode: str) -> dict | None:
    if mode == "OUTPUT" and is_event_stream(part.body):  # whatever the event's Content-Type claims
        return {"observedContentType": EVENT_STREAM, "mode": mode,
                "data": base64.b64encode(part.body).decode("ascii"), "encoding": "BASE64"}
    if "json" not in part.content_type.split(";")[0].lower():
        return None
    try:
        text = part.body.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return {"observedContentType": part.content_type, "mode": mode, "data": text, "encoding": "JSON"}


def record(event_id: str, event_time: str, request: _Part, response: _Part) -> bytes | None:
    """One SageMaker data-capture line for a request and its response; None when the request is not JSON or the
    response is neither JSON nor an event stream."""
    endpoint_input, endpoint_output = _captured(request, "INPUT"), _captured(response, "OUTPUT")
    if endpoint_input is None or endpoint_output is None:
        return None
    line = {"captureData": {"endpointInput": endpoint_input, "endpointOutput": endpoint_output},
            "eventMetadata": {"eventId": event_id, "inferenceTime": event_time}, "eventVersion": "0"}
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()


async def serve(sink: CaptureSink, host: str, port: int) -> None:
    runner = web.AppRunner(sink.app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"capture sink: listening on {host}:{port}, writing to s3://{sink.settings.bucket}/{sink.settings.prefix}",
          file=sys.stderr)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=sink.settings.flush_seconds)
        except TimeoutError:
            await sink.flush()
    await runner.cleanup()  # no new events; those in flight are answered first
    await sink.shutdown()


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m serving_image capture-sink", description="KServe request capture to S3")
    parser.add_argument("--bucket", default=env.get("MLSERVE_CAPTURE_BUCKET"))
    parser.add_argument("--prefix", default=env.get("MLSERVE_CAPTURE_PREFIX"))
    parser.add_argument("--kms-key-id", default=env.get("MLSERVE_CAPTURE_KMS_KEY"))
    parser.add_argument("--sample-percent", type=float, default=float(env.get("MLSERVE_CAPTURE_SAMPLE_PERCENT", 100)))
    parser.add_argument("--flush-seconds", type=float, default=float(env.get("MLSERVE_CAPTURE_FLUSH_SECONDS", 60)))
    parser.add_argument("--host", default=env.get("MLSERVE_CAPTURE_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env.get("MLSERVE_CAPTURE_PORT", 8080)))
    args = parser.parse_args(argv)
    missing = [name for name in ("bucket", "prefix", "kms_key_id") if not getattr(args, name)]
    if missing:
        parser.error("missing: " + ", ".join(f"--{m.replace('_', '-')}" for m in missing))
    if not args.prefix.endswith("/") or not 0 < args.sample_percent <= 100 or args.flush_seconds <= 0:
        parser.error("--prefix must end with /, --sample-percent be in (0, 100], --flush-seconds be positive")
    import boto3  # pyright: ignore[reportMissingImports]  (in the image)

    sink = CaptureSink(SinkSettings(args.bucket, args.prefix, args.kms_key_id, args.sample_percent,
                                    flush_seconds=args.flush_seconds), boto3.client("s3"))
    asyncio.run(serve(sink, args.host, args.port))
    return 0
