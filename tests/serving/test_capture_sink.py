"""The KServe capture sink: KServe logger CloudEvents in, SageMaker data-capture JSON Lines out (S3 in moto), read
by the same drift parser (the tensor one, and drift/llm.py for an LLM's OpenAI bodies, streamed or not); sampled per
event id, bounded in memory, flushed on SIGTERM with what was lost reported."""

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import boto3
from aiohttp.test_utils import TestClient, TestServer
from moto.server import ThreadedMotoServer

from drift import llm
from drift.capture import parse_capture_lines
from serving_image.capture_sink import REQUEST_TYPE, RESPONSE_TYPE, CaptureSink, SinkSettings
from tests.serving.conftest import MODEL_BUCKET

ROOT = Path(__file__).resolve().parents[2]
BUCKET = MODEL_BUCKET  # the conftest `s3` fixture creates it
PREFIX = "data-capture/mlserve-prod-reranker/mlserve-prod-reranker/primary/"


def v2_request(value):
    return json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [value] * 4}]})


def v2_response(label):
    scores = [0.9 if k == label else 0.05 for k in range(3)]
    return json.dumps({"outputs": [{"name": "probabilities", "shape": [1, 3], "datatype": "FP32", "data": scores}]})


def headers(kind, event_id):
    return {"ce-type": kind, "ce-id": event_id, "ce-time": "2026-12-03T10:00:00Z", "ce-specversion": "1.0",
            "ce-source": "http://localhost:9081/", "Content-Type": "application/json"}


async def post_pair(client, event_id, value=1.0, label=0):
    first = await client.post("/", data=v2_request(value), headers=headers(REQUEST_TYPE, event_id))
    second = await client.post("/", data=v2_response(label), headers=headers(RESPONSE_TYPE, event_id))
    return first.status, second.status


def key_arn():
    return boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]


def captured_lines(s3):
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    return [line for o in objects for line in s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            .decode().splitlines()], objects


def run(coroutine):
    return asyncio.run(coroutine)


def test_pairs_become_sagemaker_capture_lines_the_drift_job_reads(s3):
    arn = key_arn()
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, arn), s3)

    async def scenario():
        async with TestClient(TestServer(sink.app())) as client:
            assert await post_pair(client, "e1", 1.0, 2) == (202, 202)
            assert await post_pair(client, "e2", 2.0, 0) == (202, 202)
            assert await sink.flush()

    run(scenario())
    lines, objects = captured_lines(s3)
    assert len(objects) == 1 and objects[0]["Key"].startswith(PREFIX) and objects[0]["Key"].endswith(".jsonl")
    head = s3.head_object(Bucket=BUCKET, Key=objects[0]["Key"])
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", arn)
    rows = parse_capture_lines(lines, "s3://sink", {"probabilities": "classes"})
    assert rows == [{"input.mean": 1.0, "input.std": 0.0}, {"output:probabilities.class": 2.0},
                    {"input.mean": 2.0, "input.std": 0.0}, {"output:probabilities.class": 0.0}]
    assert json.loads(lines[0])["eventMetadata"] == {"eventId": "e1", "inferenceTime": "2026-12-03T10:00:00Z"}


def test_sampling_keeps_or_skips_a_request_and_its_response_together(s3):
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, "alias/x", sample_percent=30), s3)
    ids = [f"event-{n}" for n in range(200)]

    async def scenario():
        async with TestClient(TestServer(sink.app())) as client:
            for event_id in ids:
                await post_pair(client, event_id)
            await sink.flush()

    run(scenario())
    kept = {json.loads(line)["eventMetadata"]["eventId"] for line in captured_lines(s3)[0]}
    # Worked once from the ids (CRC-32 of the CloudEvent id, per ten thousand, below 3,000): a stable choice, so the
    # same ids are kept by every replica and every run, whatever order they come in.
    assert len(kept) == 60
    assert {"event-0", "event-1", "event-2", "event-4", "event-15", "event-16", "event-17", "event-21"} <= kept
    assert not {"event-3", "event-5", "event-6", "event-7", "event-8", "event-9"} & kept
    assert not sink.pending  # every sampled request found its response


def test_memory_is_bounded_when_s3_refuses_and_what_is_dropped_is_counted(s3):
    one_line = 330  # bytes of one captured pair here, about
    sink = CaptureSink(SinkSettings("no-such-bucket", PREFIX, "alias/x", max_buffer_bytes=5 * one_line,
                                    flush_bytes=10**9, max_pending=3), s3)

    async def scenario():
        statuses = []
        async with TestClient(TestServer(sink.app())) as client:
            for n in range(10):
                statuses.append(await post_pair(client, f"e{n}"))
            assert not await sink.flush()  # the bucket does not exist: the lines stay, bounded
            for n in range(5):  # requests whose responses never come
                await client.post("/", data=v2_request(1.0), headers=headers(REQUEST_TYPE, f"lost-{n}"))
        return statuses

    statuses = run(scenario())
    assert sink.buffered <= 5 * one_line and len(sink.lines) == [s for _, s in statuses].count(202)
    assert [s for _, s in statuses].count(503) == 10 - len(sink.lines)  # refused, not silently dropped
    assert len(sink.pending) == 3  # the oldest unpaired requests were evicted
    metrics = sink.registry.get_sample_value
    assert metrics("mlserve_capture_dropped_total", {"reason": "buffer_full"}) == 10 - len(sink.lines)
    assert metrics("mlserve_capture_dropped_total", {"reason": "unpaired_request_evicted"}) == 2


def test_a_post_that_is_not_a_logger_event_is_a_400(s3):
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, "alias/x"), s3)

    async def scenario():
        async with TestClient(TestServer(sink.app())) as client:
            response = await client.post("/", data="{}", headers={"Content-Type": "application/json"})
            return response.status, await response.json()

    status, body = run(scenario())
    assert status == 400 and "expected a KServe logger CloudEvent" in body["error"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigterm_flushes_what_is_buffered_and_reports_what_it_could_not_keep():
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, moto_port = moto_server.get_host_and_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{moto_port}"}
    port = free_port()
    process = None
    try:
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{host}:{moto_port}",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=BUCKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "serving_image", "capture-sink", "--bucket", BUCKET, "--prefix", PREFIX,
             "--kms-key-id", "alias/mlserve-prod", "--host", "127.0.0.1", "--port", str(port),
             "--flush-seconds", "3600"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)

        async def send():
            import aiohttp

            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
                for _ in range(100):  # wait for the port, at most 10 s
                    try:
                        await client.get("/healthz")
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                for n in range(3):
                    assert await post_pair(client, f"e{n}") == (202, 202)
                await client.post("/", data=v2_request(1.0), headers=headers(REQUEST_TYPE, "no-response"))

        run(send())
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("KeyCount", 0) == 0  # still buffered
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        lines, _ = captured_lines(s3)
        assert sorted(json.loads(line)["eventMetadata"]["eventId"] for line in lines) == ["e0", "e1", "e2"]
        assert "not written: 1 request(s) without a response, 0 record(s) S3 refused" in stderr
    finally:
        if process and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        moto_server.stop()


# LLM traffic: vLLM's OpenAI-compatible server. KServe v0.20.0's agent logs a streamed answer once, at its end, as the
# raw event-stream text, under the REQUEST's Content-Type (application/json), and only when the status was 200.

CHAT = {"model": "tiny", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Say hello"}],
        "max_tokens": 16, "temperature": 0.2, "stream": True, "stream_options": {"include_usage": True}}


def chunk(delta, finish=None, usage=None, choices=True):
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "tiny",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


def vllm_stream(words=("Hel", "lo", "!"), finish="stop", usage=True):
    """What vLLM writes for `stream: true` with include_usage: role chunk, content deltas, finish, usage, [DONE]."""
    text = chunk({"role": "assistant", "content": ""})
    text += "".join(chunk({"content": w}) for w in words)
    text += chunk({}, finish=finish)
    if usage:
        text += chunk({}, usage={"prompt_tokens": 12, "completion_tokens": len(words), "total_tokens": 12 + len(words)},
                      choices=False)
    return text + "data: [DONE]\n\n"


def chat_response(text="Hi there", finish="length"):
    return json.dumps({"id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "tiny",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": finish}],
                       "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}})


async def post_llm_pair(client, event_id, request, response, response_type="application/json"):
    first = await client.post("/", data=json.dumps(request), headers=headers(REQUEST_TYPE, event_id))
    second = await client.post("/", data=response, headers={**headers(RESPONSE_TYPE, event_id),
                                                             "Content-Type": response_type})
    return first.status, second.status


def test_llm_traffic_streamed_or_not_goes_from_cloudevents_to_drifts_openai_features(s3):
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, key_arn()), s3)
    completions = {"model": "tiny", "prompt": "Once upon", "max_tokens": 8}

    async def scenario():
        async with TestClient(TestServer(sink.app())) as client:
            assert await post_llm_pair(client, "s1", CHAT, vllm_stream()) == (202, 202)  # as KServe labels it
            assert await post_llm_pair(client, "s2", CHAT, "\r\n  " + vllm_stream(("Yo",), "length", usage=False),
                                       "text/event-stream") == (202, 202)  # leading whitespace; any label
            assert await post_llm_pair(client, "j1", {**CHAT, "stream": False}, chat_response()) == (202, 202)
            assert await post_llm_pair(client, "c1", completions, json.dumps(
                {"object": "text_completion", "choices": [{"index": 0, "text": " a time", "finish_reason": "stop"}]})
            ) == (202, 202)
            assert await sink.flush()

    run(scenario())
    lines, objects = captured_lines(s3)
    assert len(objects) == 1 and len(lines) == 4
    records = {json.loads(line)["eventMetadata"]["eventId"]: json.loads(line) for line in lines}
    streamed = records["s1"]["captureData"]["endpointOutput"]
    assert (streamed["observedContentType"], streamed["encoding"], streamed["mode"]) == (
        "text/event-stream", "BASE64", "OUTPUT")
    assert base64.b64decode(streamed["data"]).decode() == vllm_stream()  # the raw text, byte for byte
    assert records["s1"]["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert records["j1"]["captureData"]["endpointOutput"]["encoding"] == "JSON"  # JSON bodies as before
    assert all("httpStatus" not in r["eventMetadata"] for r in records.values())  # KServe logs no status: none made up

    read = llm.read_capture_lines(lines, "s3://sink")
    assert read.skipped == []
    rows = {event_id: llm.capture_rows(record, "s3://sink", 1) for event_id, record in records.items()}
    prompt = float(len("Be brief.") + len("Say hello"))
    assert rows["s1"] == [
        {llm.PROMPT_CHARS: prompt, llm.MESSAGES: 2.0, llm.MAX_TOKENS: 16.0, llm.TEMPERATURE: 0.2,
         llm.PROMPT_TOKENS: 12.0},
        {llm.ERROR: 0.0, llm.COMPLETION_CHARS: 6.0, llm.FINISH_STOP: 1.0, llm.FINISH_LENGTH: 0.0,
         llm.FINISH_OTHER: 0.0, llm.COMPLETION_TOKENS: 3.0}]
    assert rows["s2"][1] == {llm.ERROR: 0.0, llm.COMPLETION_CHARS: 2.0, llm.FINISH_STOP: 0.0,
                             llm.FINISH_LENGTH: 1.0, llm.FINISH_OTHER: 0.0}  # no usage chunk: no token features
    assert rows["j1"][1][llm.FINISH_LENGTH] == 1.0 and rows["j1"][1][llm.COMPLETION_TOKENS] == 5.0
    assert rows["c1"] == [{llm.PROMPT_CHARS: 9.0, llm.MESSAGES: 0.0, llm.MAX_TOKENS: 8.0, llm.TEMPERATURE: -1.0},
                          {llm.ERROR: 0.0, llm.COMPLETION_CHARS: 7.0, llm.FINISH_STOP: 1.0, llm.FINISH_LENGTH: 0.0,
                           llm.FINISH_OTHER: 0.0}]
    assert sorted(read.rows, key=json.dumps) == sorted((r for pair in rows.values() for r in pair), key=json.dumps)
    assert sink.registry.get_sample_value("mlserve_capture_records_written_total") == 4


def test_a_stream_that_fails_midway_is_captured_and_drift_counts_it_an_error(s3):
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, "alias/x"), s3)
    failed = chunk({"role": "assistant", "content": ""}) + 'data: {"error": {"message": "engine dead", "code": 500}}\n\n'

    async def scenario():
        async with TestClient(TestServer(sink.app())) as client:
            assert await post_llm_pair(client, "f1", CHAT, failed) == (202, 202)
            await sink.flush()

    run(scenario())
    read = llm.read_capture_lines(captured_lines(s3)[0], "s3://sink")
    assert read.skipped == [] and read.rows[1] == {llm.ERROR: 1.0}


def test_what_is_still_not_captured_is_counted_and_never_a_5xx(s3):
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, "alias/x"), s3)
    dropped = {  # response bodies the drift job could not read: each pair is skipped, counted not_json
        "plain text": b"hello there",
        "stream claimed but not SSE": b"event: x\n\n",
        "data: but not UTF-8": b"data: \xff\xfe\n\n",
        "binary tensor": b"\x00\x01\x02\x03",
        "empty": b"",
        "truncated JSON": b'{"choices": [',
    }

    async def scenario():
        statuses = []
        async with TestClient(TestServer(sink.app())) as client:
            for n, body in enumerate(dropped.values()):
                statuses.append(await post_llm_pair(client, f"d{n}", CHAT, body))
            # a request body that is an event stream is not a request: skipped too
            first = await client.post("/", data=vllm_stream(), headers=headers(REQUEST_TYPE, "r1"))
            second = await client.post("/", data=chat_response(), headers=headers(RESPONSE_TYPE, "r1"))
            statuses.append((first.status, second.status))
            # a bare "data:" is an event stream as far as the sink goes; drift counts and skips it with its place
            statuses.append(await post_llm_pair(client, "kept", CHAT, "data:"))
            await sink.flush()
        return statuses

    statuses = run(scenario())
    assert statuses == [(202, 202)] * (len(dropped) + 2)
    assert sink.registry.get_sample_value("mlserve_capture_dropped_total", {"reason": "not_json"}) == len(dropped) + 1
    assert not sink.pending
    lines, _ = captured_lines(s3)
    assert [json.loads(line)["eventMetadata"]["eventId"] for line in lines] == ["kept"]
    read = llm.read_capture_lines(lines, "s3://sink")
    assert read.rows == [] and [str(e) for e in read.skipped] == [
        "s3://sink, line 1: event 1 of the streamed response is not JSON (Expecting value)"]


def test_a_stream_obeys_the_same_size_limit_and_its_request_is_freed(s3):
    limit = 64 * 1024
    sink = CaptureSink(SinkSettings(BUCKET, PREFIX, "alias/x", max_event_bytes=limit), s3)
    words = ["word"] * 2000
    big = vllm_stream(words)
    assert len(big.encode()) > limit

    async def scenario():
        async with TestClient(TestServer(sink.app())) as client:
            assert await post_llm_pair(client, "big", CHAT, big) == (202, 413)
            assert not sink.pending  # the request cannot be paired any more: not kept until evicted
            fits = vllm_stream(words[:100])
            assert len(fits.encode()) < limit
            assert await post_llm_pair(client, "fits", CHAT, fits) == (202, 202)
            await sink.flush()

    run(scenario())
    metrics = sink.registry.get_sample_value
    assert metrics("mlserve_capture_dropped_total", {"reason": "too_large"}) == 1
    assert metrics("mlserve_capture_dropped_total", {"reason": "unpaired_request_evicted"}) is None
    lines, _ = captured_lines(s3)
    assert [json.loads(line)["eventMetadata"]["eventId"] for line in lines] == ["fits"]
    read = llm.read_capture_lines(lines, "s3://sink")
    assert read.rows[1][llm.COMPLETION_TOKENS] == 100.0
