"""Drift of LLM traffic: features of OpenAI-compatible bodies as vLLM's server writes them (chat.completion,
text_completion, chat.completion.chunk streams, error objects), read from the same captures, compared by the same
job. Expected values are counted by hand from the bodies written here, never recomputed with the code's formulas."""

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from drift.__main__ import main
from drift.baseline import build_baseline, compare
from drift.capture import CaptureFormatError
from drift.job import MAX_PREDICTION_PSI_METRIC, MAX_PSI_METRIC, NAMESPACE, DriftJob
from drift.llm import completion_from_text, pair_rows, read_capture_lines, request_features, response_features

BUCKET = "mlserve-prod-models"
PREFIX = "data-capture/mlserve-prod-assistant/mlserve-prod-assistant/primary/"
BASELINE_KEY = "assistant/baseline/baseline.json"
MODEL = "mlserve-assistant"


# ---- bodies, as vLLM's OpenAI server writes them -------------------------------------------------------------------

def chat_request(messages, max_tokens=None, temperature=None, stream=False, **extra):
    body = {"model": MODEL, "messages": messages, **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def chat_response(content, finish="stop", prompt_tokens=17, completion_tokens=5):
    return {"id": "chatcmpl-9f2c1e0a7b3d4c55", "object": "chat.completion", "created": 1764756000, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None,
                                                 "annotations": None, "audio": None, "function_call": None,
                                                 "tool_calls": [], "reasoning_content": None},
                         "logprobs": None, "finish_reason": finish, "stop_reason": None, "token_ids": None}],
            "service_tier": None, "system_fingerprint": None,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
                      "completion_tokens": completion_tokens, "prompt_tokens_details": None},
            "prompt_logprobs": None, "prompt_token_ids": None, "kv_transfer_params": None}


def completion_response(text, finish="length", prompt_tokens=5, completion_tokens=16):
    return {"id": "cmpl-4be8a1d2c3f94e10", "object": "text_completion", "created": 1764756000, "model": MODEL,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None,
                         "prompt_logprobs": None}],
            "service_tier": None, "system_fingerprint": None,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
                      "completion_tokens": completion_tokens, "prompt_tokens_details": None},
            "kv_transfer_params": None}


def error_response(message="This model's maximum context length is 2048 tokens. However, you requested 4096 tokens "
                           "(3072 in the messages, 1024 in the completion). Please reduce the length of the messages "
                           "or completion."):
    return {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}


def chunk(choices, usage=None):
    body = {"id": "chatcmpl-1d6f0b9e2a7c4f83", "object": "chat.completion.chunk", "created": 1764756000,
            "model": MODEL, "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return body


def chat_stream(pieces, finish="stop", prompt_tokens=17, completion_tokens=None, include_usage=True):
    """The event stream of a streamed chat completion: a role chunk, a chunk per piece, the finish chunk, the
    usage chunk (with `stream_options.include_usage`), then [DONE]."""
    chunks = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                      "finish_reason": None}])]
    chunks += [chunk([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
               for piece in pieces]
    chunks.append(chunk([{"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": finish,
                          "stop_reason": None}]))
    if include_usage:
        completion_tokens = len(pieces) if completion_tokens is None else completion_tokens
        chunks.append(chunk([], usage={"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens +
                                       completion_tokens, "completion_tokens": completion_tokens}))
    return "".join(f"data: {json.dumps(c, separators=(',', ':'))}\n\n" for c in chunks) + "data: [DONE]\n\n"


def capture_line(request, response, streamed=False, metadata=None):
    """A SageMaker data-capture line (the KServe sink writes the same): JSON bodies as text, an event stream as
    BASE64 (SageMaker's encoding for a content type it does not read as JSON or CSV)."""
    output = ({"observedContentType": "text/event-stream", "mode": "OUTPUT",
               "data": base64.b64encode(response.encode()).decode(), "encoding": "BASE64"} if streamed else
              {"observedContentType": "application/json", "mode": "OUTPUT", "data": json.dumps(response),
               "encoding": "JSON"})
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(request),
                          "encoding": "JSON"},
        "endpointOutput": output},
        "eventMetadata": {"eventId": "3c1c2f1e-5d2b-4a8e-9c47-0b6f1c2d3e4f", "inferenceTime": "2026-12-03T10:00:00Z",
                          **(metadata or {})}, "eventVersion": "0"})


def rows_of(request, response=None, streamed=False):
    completion = completion_from_text(response if streamed else json.dumps(response)) if response else None
    return pair_rows(request, completion)


# ---- features, counted by hand ------------------------------------------------------------------------------------

def test_a_chat_completion_gives_its_prompt_and_completion_features():
    request = chat_request([{"role": "system", "content": "Be brief."},           # 9 characters
                            {"role": "user", "content": "What is PSI?"}],         # 12
                           max_tokens=64, temperature=0.2)
    assert rows_of(request, chat_response("A drift score.", prompt_tokens=17, completion_tokens=5)) == [
        {"prompt.chars": 21.0, "request.messages": 2.0, "request.max_tokens": 64.0, "request.temperature": 0.2,
         "prompt.tokens": 17.0},
        {"output:error": 0.0, "output:completion.chars": 14.0, "output:completion.tokens": 5.0,
         "output:finish.stop": 1.0, "output:finish.length": 0.0, "output:finish.other": 0.0}]


def test_a_streamed_chat_completion_joins_its_deltas_and_takes_usage_and_finish_from_their_chunks():
    request = chat_request([{"role": "user", "content": "Count to three"}], max_completion_tokens=3, max_tokens=99,
                           stream=True)                                            # 14 characters
    stream = chat_stream(["One,", " two,", " three"], finish="length", prompt_tokens=12, completion_tokens=3)
    assert stream.endswith('"completion_tokens":3}}\n\ndata: [DONE]\n\n')  # the usage chunk, then [DONE]
    request_row, prediction = rows_of(request, stream, streamed=True)
    # max_completion_tokens wins over max_tokens (vLLM reads it first); no temperature: -1
    assert request_row == {"prompt.chars": 14.0, "request.messages": 1.0, "request.max_tokens": 3.0,
                           "request.temperature": -1.0, "prompt.tokens": 12.0}
    assert prediction == {"output:error": 0.0, "output:completion.chars": 15.0,  # "One, two, three"
                          "output:completion.tokens": 3.0, "output:finish.stop": 0.0, "output:finish.length": 1.0,
                          "output:finish.other": 0.0}


def test_a_stream_without_usage_has_no_token_features_and_one_that_ends_in_an_error_is_an_error():
    request = chat_request([{"role": "user", "content": "Hi"}], stream=True)
    request_row, prediction = rows_of(request, chat_stream(["Hello", "!"], include_usage=False), streamed=True)
    assert "prompt.tokens" not in request_row and "output:completion.tokens" not in prediction
    assert prediction["output:completion.chars"] == 6.0 and prediction["output:finish.stop"] == 1.0
    broken = ('data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
              '"delta":{"role":"assistant","content":"Hel"},"logprobs":null,"finish_reason":null}]}\n\n'
              'data: {"error":{"message":"engine dead","type":"InternalServerError","param":null,"code":500}}\n\n'
              'data: [DONE]\n\n')
    assert rows_of(request, broken, streamed=True)[1] == {"output:error": 1.0}


def test_completions_requests_count_the_prompt_text_and_have_no_messages():
    assert request_features({"model": MODEL, "prompt": "San Francisco is a", "max_tokens": 16}) == {
        "prompt.chars": 18.0, "request.messages": 0.0, "request.max_tokens": 16.0, "request.temperature": -1.0}
    assert request_features({"model": MODEL, "prompt": ["ab", "cde"], "temperature": 0})["prompt.chars"] == 5.0
    token_ids = request_features({"model": MODEL, "prompt": [[1, 15043, 29892], [1, 3186]]})
    assert "prompt.chars" not in token_ids and token_ids["request.messages"] == 0.0  # token ids have no characters
    _, prediction = rows_of({"model": MODEL, "prompt": "San Francisco is a"},
                            completion_response(" city in northern California", finish="length"))
    assert prediction["output:completion.chars"] == 28.0 and prediction["output:finish.length"] == 1.0


def test_text_parts_count_and_other_parts_and_tool_calls_do_not():
    request = chat_request([
        {"role": "user", "content": [{"type": "text", "text": "Describe"},                          # 8
                                     {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                                     {"type": "text", "text": " this"}]},                            # 5
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                               "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}])                             # 5
    assert request_features(request)["prompt.chars"] == 18.0 and request_features(request)["request.messages"] == 3.0


def test_an_error_object_is_an_error_and_one_choice_cut_by_length_makes_the_response_length():
    assert rows_of(chat_request([{"role": "user", "content": "x" * 5000}]), error_response())[1] == {
        "output:error": 1.0}
    two = chat_response("Yes.")
    two["choices"].append({**two["choices"][0], "index": 1, "finish_reason": "length",
                           "message": {"role": "assistant", "content": "Well, it"}})
    prediction = response_features(completion_from_text(json.dumps(two)))[1]
    assert prediction["output:completion.chars"] == 12.0 and prediction["output:finish.length"] == 1.0
    tools = chat_response(None, finish="tool_calls")
    assert response_features(completion_from_text(json.dumps(tools)))[1]["output:finish.other"] == 1.0


def test_capture_lines_in_both_encodings_and_an_http_error_status_are_read():
    stream = chat_stream(["Hi", " there"], prompt_tokens=4)
    lines = [capture_line(chat_request([{"role": "user", "content": "Hello"}]), chat_response("Hello!")),
             capture_line(chat_request([{"role": "user", "content": "Hey"}], stream=True), stream, streamed=True),
             capture_line(chat_request([{"role": "user", "content": "Hey"}]), "<html>502 Bad Gateway</html>",
                          metadata={"httpStatus": 502})]
    read = read_capture_lines(lines, "s3://b/k.jsonl")
    assert read.skipped == []
    assert [row.get("prompt.chars") for row in read.rows] == [5.0, None, 3.0, None, 3.0, None]
    assert read.rows[3]["output:completion.chars"] == 8.0 and read.rows[2]["prompt.tokens"] == 4.0
    assert read.rows[5] == {"output:error": 1.0}


@pytest.mark.parametrize("line,reason", [
    (capture_line({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
                  {"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [0.5]}]}),
     "line 2: the request is not an OpenAI chat or completions body (no 'messages' or 'prompt')"),
    (capture_line(chat_request([{"role": "user", "content": "Hi"}]), {"outputs": []}),
     "line 2: the response is neither an OpenAI completion (no 'choices') nor an error object"),
    (capture_line(chat_request([{"role": "user", "content": "Hi"}]), "data: {not json}\n\n", streamed=True),
     "line 2: event 1 of the streamed response is not JSON"),
    (capture_line(chat_request([{"role": "user", "content": "Hi"}], temperature="hot"), chat_response("x")),
     "line 2: the request's temperature is not a number ('hot')"),
    ("{oops", "line 2: not JSON"),
    (json.dumps({"captureData": {"endpointInput": {"data": "@@@", "encoding": "BASE64"}}}),
     "line 2: endpointInput.data is not valid base64 UTF-8"),
])
def test_a_line_that_is_not_an_openai_body_is_skipped_with_its_place_and_reason(line, reason):
    good = capture_line(chat_request([{"role": "user", "content": "Hello"}]), chat_response("Hello!"))
    read = read_capture_lines([good, line, good], "s3://bucket/data-capture/x.jsonl")
    assert len(read.rows) == 4 and len(read.skipped) == 1  # two good lines, a request and a prediction row each
    assert isinstance(read.skipped[0], CaptureFormatError)
    assert str(read.skipped[0]).startswith("s3://bucket/data-capture/x.jsonl, line 2: ")
    assert reason in str(read.skipped[0])


# ---- binning: what a few distinct values and 0-or-1 shares need ---------------------------------------------------

def llm_rows(temperatures, errors):
    rows = []
    for temperature, error in zip(temperatures, errors, strict=True):
        rows.append({"prompt.chars": 10.0, "request.messages": 1.0, "request.max_tokens": 64.0,
                     "request.temperature": temperature})
        rows.append({"output:error": error})
    return rows


def test_a_setting_the_reference_never_had_is_a_shift_and_so_is_an_error_share_from_none():
    baseline = build_baseline(llm_rows([0.7] * 100, [0.0] * 100), payload="openai")
    assert baseline["payload"] == "openai" and baseline["features"]["output:error"]["edges"] == [0.5]
    window = {r.feature: r.psi for r in compare(baseline, llm_rows([0.2] * 100, [1.0] * 5 + [0.0] * 95))}
    # temperature: the reference all in the bin of 0.7, the window all below it; empty bins count as 1e-4:
    # (1 - 1e-4) ln(1e4) + (1e-4 - 1) ln(1e-4) = 2 x 0.9999 x 9.21034 = 18.4188
    assert window["request.temperature"] == pytest.approx(18.4188, abs=1e-3)
    # errors: 0% -> 5%: (0.05 - 1e-4) ln(0.05 / 1e-4) + (0.95 - 1) ln(0.95) = 0.310109 + 0.002565 = 0.312673
    assert window["output:error"] == pytest.approx(0.312673, abs=1e-5)
    assert window["prompt.chars"] == window["request.max_tokens"] == 0.0


# ---- end to end: reference files -> `python -m drift baseline --payload openai` -> captures -> the job -> metrics ----

SYSTEM = "Be brief."  # 9 characters


def traffic(indices, extra_chars=0):
    """Deterministic LLM traffic whose every feature repeats with a period dividing 100, so any 100 consecutive
    requests have exactly the reference's shares. Request i has a prompt of 10 x (i % 100 + 1) characters (plus
    `extra_chars`) spread over 1-3 chat messages, or one completions prompt; max_tokens 256/512/1024/unset and
    temperature 0/0.7/1/unset in turn; every 10th answer streamed, every 20th cut by length, every 25th an error."""
    pairs = []
    for i in indices:
        chars = 10 * (i % 100 + 1) + extra_chars
        max_tokens = (256, 512, 1024, None)[i % 4]
        temperature = (0.0, 0.7, 1.0, None)[(i // 5) % 4]
        shape = i % 5
        if shape == 0:
            messages = [{"role": "user", "content": "q" * chars}]
        elif shape == 1:
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "q" * (chars - 9)}]
        elif shape == 2:
            messages = [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "cde"},
                        {"role": "user", "content": "q" * (chars - 5)}]
        else:
            messages = None
        streamed = i % 10 == 9
        if messages is None:
            request = {"model": MODEL, "prompt": "p" * chars}
            if max_tokens is not None:
                request["max_tokens"] = max_tokens
            if temperature is not None:
                request["temperature"] = temperature
        else:
            request = chat_request(messages, max_tokens=max_tokens, temperature=temperature, stream=streamed)
        finish = "length" if i % 20 == 0 else "stop"
        answer_tokens = 8 + i % 50
        prompt_tokens = chars // 4
        if i % 25 == 24:
            response, streamed = error_response(), False
        elif streamed and messages is not None:
            response = chat_stream(["a" * 3] * answer_tokens, finish=finish, prompt_tokens=prompt_tokens)
        elif messages is None:
            response, streamed = completion_response("c" * (3 * answer_tokens), finish=finish,
                                                     prompt_tokens=prompt_tokens,
                                                     completion_tokens=answer_tokens), False
        else:
            response = chat_response("a" * (3 * answer_tokens), finish=finish, prompt_tokens=prompt_tokens,
                                     completion_tokens=answer_tokens)
        pairs.append((request, response, streamed))
    return pairs


def write_reference(tmp_path, pairs):
    (tmp_path / "requests.jsonl").write_text("\n".join(json.dumps(request) for request, _, _ in pairs))
    # a streamed response is a JSON string holding its event-stream text
    (tmp_path / "responses.jsonl").write_text("\n".join(json.dumps(response) for _, response, _ in pairs))


def run_window(tmp_path, pairs, extra_lines=()):
    """Baseline from 500 reference requests through the CLI, the window's captures in S3, the job in openai mode."""
    write_reference(tmp_path, traffic(range(500)))
    out = tmp_path / "baseline.json"
    assert main(["baseline", "--payload", "openai", "--reference", str(tmp_path / "requests.jsonl"),
                 "--responses", str(tmp_path / "responses.jsonl"), "--out", str(out)]) == 0
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=BASELINE_KEY, Body=out.read_bytes())
    now = datetime.now(UTC)
    lines = [capture_line(request, response, streamed) for request, response, streamed in pairs]
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{now:%Y/%m/%d/%H}/capture.jsonl",
                  Body="\n".join([*lines, *extra_lines]))
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    said: list[str] = []
    job = DriftJob(BUCKET, PREFIX, BASELINE_KEY, "assistant", payload="openai")
    results = job.run(s3, cloudwatch, end=now + timedelta(seconds=1), say=said.append)
    published = {}
    for metric in (MAX_PSI_METRIC, MAX_PREDICTION_PSI_METRIC):
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=metric, Dimensions=[{"Name": "Deployment", "Value": "assistant"}],
            StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        published[metric] = max(p["Maximum"] for p in points)
    return {r.feature: r for r in results}, published, said


def test_the_reference_baseline_bins_prompt_length_in_exact_tenths():
    """The premise of the hand-computed PSI below: 100 prompt lengths, 10 to 1000, five requests each."""
    rows = [row for request, response, streamed in traffic(range(500)) for row in rows_of(request, response,
                                                                                            streamed)]
    feature = build_baseline(rows, payload="openai")["features"]["prompt.chars"]
    assert feature["proportions"] == [0.1] * 10
    # the quantile at k x 499 / 10: 49.9 -> between 100 and 110, 99.8 -> between 200 and 210
    assert feature["edges"][:2] == [pytest.approx(109.0), pytest.approx(208.0)]


@mock_aws
def test_unchanged_llm_traffic_publishes_no_drift(tmp_path):
    by_feature, published, said = run_window(tmp_path, traffic(range(1000, 1200)))
    assert set(by_feature) == {
        "prompt.chars", "prompt.tokens", "request.messages", "request.max_tokens", "request.temperature",
        "output:completion.chars", "output:completion.tokens", "output:error", "output:finish.stop",
        "output:finish.length", "output:finish.other"}
    assert by_feature["prompt.chars"].count == 200 and by_feature["output:error"].count == 200
    assert by_feature["prompt.tokens"].count == 192  # the 8 errors carry no usage
    assert all(r.psi == 0.0 for r in by_feature.values())  # the same shares in every bin
    assert published == {MAX_PSI_METRIC: 0.0, MAX_PREDICTION_PSI_METRIC: 0.0} and said == []


@mock_aws
def test_longer_prompts_raise_the_input_psi_over_the_alarm_threshold_and_odd_lines_are_skipped(tmp_path):
    odd = [capture_line({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
                        {"outputs": []}), "{truncated"]
    by_feature, published, said = run_window(tmp_path, traffic(range(1000, 1200), extra_chars=2000), odd)
    # every prompt is now longer than the reference's longest: all in the top bin, which held a tenth, and the
    # other nine bins empty (counted as 1e-4): (1 - 0.1) ln(1 / 0.1) + 9 x (1e-4 - 0.1) ln(1e-4 / 0.1)
    #   = 0.9 x 2.302585 + 9 x 0.0999 x 6.907755 = 2.072327 + 6.210763 = 8.283090
    assert by_feature["prompt.chars"].psi == pytest.approx(8.28309, abs=1e-4)
    assert by_feature["prompt.tokens"].psi > 8  # usage follows the prompt (its tenths are uneven: errors have none)
    assert by_feature["prompt.chars"].ks_statistic == 1.0
    assert {name: r.psi for name, r in by_feature.items() if name not in ("prompt.chars", "prompt.tokens")} == {
        name: 0.0 for name in by_feature if name not in ("prompt.chars", "prompt.tokens")}
    # the alarm's metric: the inputs' highest PSI, over the default threshold 0.2
    assert published[MAX_PSI_METRIC] == pytest.approx(by_feature["prompt.tokens"].psi) and published[MAX_PSI_METRIC] > 0.2
    assert published[MAX_PREDICTION_PSI_METRIC] == 0.0
    source = f"s3://{BUCKET}/{PREFIX}"
    assert len(said) == 3 and all(line.startswith(f"drift: skipped {source}") for line in said[:2])
    assert "line 201: the request is not an OpenAI chat or completions body" in said[0]
    assert "line 202: not JSON" in said[1]
    assert said[2] == "drift: skipped 2 of 202 capture line(s) in the window: not openai bodies"
