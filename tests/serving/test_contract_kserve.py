"""The KServe v2 contract against the real local Triton: correct outputs, health, metrics, refusals, shutdown."""

import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import onnxruntime
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from prometheus_client.parser import text_string_to_metric_families

from serving_image import local_server
from serving_image.sample_model.make_sample import sample_input

MODEL = "resnet50"


def reference(x):
    session = onnxruntime.InferenceSession(str(local_server.SAMPLE / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def http_infer(server, x, name="input", datatype="FP32"):
    client = httpclient.InferenceServerClient(server.url)
    tensor = httpclient.InferInput(name, list(x.shape), datatype)
    tensor.set_data_from_numpy(x.astype(np.float32 if datatype == "FP32" else np.int64), binary_data=False)
    return client.infer(MODEL, [tensor]).as_numpy("logits")


def test_http_outputs_equal_onnx_runtime_run_directly(server):
    x = sample_input(7, batch=4)
    np.testing.assert_allclose(http_infer(server, x), reference(x), rtol=1e-5, atol=1e-5)


def test_grpc_outputs_equal_onnx_runtime_run_directly(server):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    x = sample_input(8, batch=2)
    tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    np.testing.assert_allclose(client.infer(MODEL, [tensor]).as_numpy("logits"), reference(x), rtol=1e-5, atol=1e-5)


def test_shipped_expected_outputs_hold(server):
    expected = json.loads((local_server.SAMPLE / "expected.json").read_text())["logits"]
    for seed, logits in expected.items():
        np.testing.assert_allclose(http_infer(server, sample_input(int(seed)))[0], logits, atol=1e-5)


def test_metrics_count_inferences_in_kserve_mode(server):
    for _ in range(3):
        http_infer(server, sample_input(1))
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics}/metrics", timeout=5).read().decode()
    # prometheus_client names counter samples *_total; Triton's families keep their own names.
    values = {family.name: sample.value for family in text_string_to_metric_families(text)
              for sample in family.samples if sample.labels.get("model") == MODEL}
    assert values["nv_inference_request_success"] >= 3
    assert values["nv_inference_count"] >= 3
    assert "nv_inference_exec_count" in values and "nv_inference_queue_duration_us" in values
    quantiles = {sample.labels.get("quantile") for family in text_string_to_metric_families(text)
                 if family.name == "nv_inference_request_summary_us" for sample in family.samples}
    assert "0.99" in quantiles  # the p99 latency the SLO alert reads (summary_latencies=true)


def tensor_body(shape=(1, 3, 32, 32), name="input", datatype="FP32", data=None, **extra) -> bytes:
    count = int(np.prod(shape)) if all(d > 0 for d in shape) else 1
    return json.dumps({"inputs": [{"name": name, "shape": list(shape), "datatype": datatype,
                                   "data": [0.0] * count if data is None else data}], **extra}).encode()


def binary_body(x, header_size_delta=0, declared=None) -> tuple[bytes, dict]:
    raw = x.astype(np.float32).tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": declared or len(raw)}}]}).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header) + header_size_delta)}


def post_raw(server, body: bytes, content_type="application/json", headers=None, model=MODEL):
    request = urllib.request.Request(f"http://{server.url}/v2/models/{model}/infer", data=body,
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def counters(server) -> dict[tuple[str, str], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics}/metrics", timeout=5).read().decode()
    return {(family.name, sample.labels.get("reason", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.labels.get("model") == MODEL and sample.name.endswith(("_total", "failure", "success"))}


X = np.zeros((1, 3, 32, 32), np.float32)
MALFORMED = {
    # case: (body, content type, extra headers, model, status, reason counted, message fragment)
    "not json": (b"this is not json", "application/json", {}, MODEL, 400, "not_json", "not valid json"),
    "not an object": (b"[1, 2]", "application/json", {}, MODEL, 400, "not_an_object", "json object"),
    "no inputs": (b'{"inputs": []}', "application/json", {}, MODEL, 400, "no_inputs", "no 'inputs'"),
    "data shorter than shape": (tensor_body(data=[0.0] * 10), "application/json", {}, MODEL, 400, "data_count",
                                "has 10 values"),
    "strings for numbers": (tensor_body(data=["0.5"] * 3072), "application/json", {}, MODEL, 400, "data_type",
                            "text"),
    "ragged data": (tensor_body(data=[[0.0, 1.0], [2.0]]), "application/json", {}, MODEL, 400, "data", "ragged"),
    "batch above maximum": (tensor_body(shape=(33, 3, 32, 32)), "application/json", {}, MODEL, 400,
                            "batch_too_large", "above the model's maximum 32"),
    "unknown model": (tensor_body(), "application/json", {}, "resnet51", 404, "unknown_model", "unknown model"),
    "wrong input name": (tensor_body(name="image"), "application/json", {}, MODEL, 400, "unknown_input",
                         "unknown input 'image'"),
    "wrong datatype": (tensor_body(datatype="INT64", data=[0] * 3072), "application/json", {}, MODEL, 400,
                       "datatype", "takes fp32"),
    "wrong sample shape": (tensor_body(shape=(1, 3, 16, 16)), "application/json", {}, MODEL, 400, "shape",
                           "does not match"),
    "negative dimension": (tensor_body(shape=(1, 3, -32, 32), data=[0.0]), "application/json", {}, MODEL, 400,
                           "shape", "at least 1"),
    "absurd dimensions": (tensor_body(shape=(1, 3, 32, 32, 10**9), data=[0.0]), "application/json", {}, MODEL, 400,
                          "shape", "dimensions"),
    "oversized body": (b'{"inputs": [' + b" " * (5 * 1024 * 1024) + b"]}", "application/json", {}, MODEL, 413,
                       "body_too_large", "larger than"),
    "wrong content type": (tensor_body(), "text/plain", {}, MODEL, 415, "content_type", "not accepted"),
    "binary header not a number": (binary_body(X)[0], "application/octet-stream",
                                   {"Inference-Header-Content-Length": "abc"}, MODEL, 400, "binary_header",
                                   "non-negative integer"),
    "binary header past the body": (binary_body(X)[0], "application/octet-stream",
                                    {"Inference-Header-Content-Length": "999999"}, MODEL, 400, "binary_header",
                                    "longer than the body"),
    "binary size not the shape's": (binary_body(X, declared=100)[0], "application/octet-stream",
                                    binary_body(X, declared=100)[1], MODEL, 400, "binary_size", "needs 12288"),
}


def typed_body(tensor=None, **request) -> bytes:
    """One valid FP32 input, with fields of the tensor or the request replaced by JSON of the wrong type."""
    body = {"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.0] * 3072,
                        **(tensor or {})}], **request}
    return json.dumps(body).encode()


# A field of the wrong JSON type: each was a 500 (the front's own TypeError/AttributeError, or Triton's
# "attempt to access JSON non-..."), which SageMaker and the error-rate alert count as a server fault.
WRONG_JSON_TYPES = {
    "input name an object": (typed_body({"name": {"a": 1}}), "'name' must be a string, got an object"),
    "input name a list": (typed_body({"name": ["input"]}), "'name' must be a string, got a list"),
    "input not an object": (b'{"inputs": ["input"]}', "inputs[0] must be an object"),
    "input shape a string": (typed_body({"shape": "1,3,32,32"}), "shape must be a list of integers", "shape"),
    "inputs an object": (b'{"inputs": {"name": "input"}}', "'inputs' must be a non-empty list"),
    "input data an object": (typed_body({"data": {"a": 1}}), "'data' must be a list, got an object"),
    "input parameters a list": (typed_body({"parameters": [1]}), "'parameters' must be an object, got a list"),
    "outputs a number": (typed_body(outputs=5), "'outputs' must be a list, got an integer"),
    "outputs null": (typed_body(outputs=None), "'outputs' must be a list, got null"),
    "output name an object": (typed_body(outputs=[{"name": {"a": 1}}]), "'name' must be a string, got an object"),
    "output binary_data a string": (typed_body(outputs=[{"name": "logits", "parameters": {"binary_data": "yes"}}]),
                                    "binary_data' must be true or false, got a string"),
    "output classification a string": (typed_body(outputs=[{"name": "logits", "parameters": {"classification": "x"}}]),
                                       "classification' must be a non-negative integer, got a string"),
    "request id a number": (typed_body(id=42), "'id' must be a string, got an integer"),
    "request parameters a list": (typed_body(parameters=[1]), "'parameters' must be an object, got a list"),
    "priority a string": (typed_body(parameters={"priority": "high"}), "priority' must be a non-negative integer"),
    "timeout negative": (typed_body(parameters={"timeout": -1}), "timeout' must be a non-negative integer"),
    "binary_data_output a string": (typed_body(parameters={"binary_data_output": "x"}),
                                    "binary_data_output' must be true or false"),
    "data mixes booleans with numbers": (typed_body({"data": [True] + [0.0] * 3071}), "non-number"),
}
for _case, (_body, _fragment, *_reason) in WRONG_JSON_TYPES.items():
    MALFORMED[f"wrong json type: {_case}"] = (_body, "application/json", {}, MODEL, 400, (_reason or ["json_type"])[0],
                                              _fragment.lower())


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_request_gets_a_4xx_that_says_what_and_the_server_keeps_serving(server, case):
    body, content_type, headers, model, status, reason, fragment = MALFORMED[case]
    before = counters(server)
    got, payload = post_raw(server, body, content_type, headers, model)
    assert got == status, (got, payload[:300])
    assert fragment in json.loads(payload)["error"].lower(), payload[:300]
    after = counters(server)
    # Counted as the client error it is; Triton's failure counter (the SLO alert's input) never saw it.
    key = ("mlserve_front_refused", reason)
    assert after.get(key, 0) == before.get(key, 0) + 1
    assert after.get(("nv_inference_request_failure", "")) == before.get(("nv_inference_request_failure", ""))
    x = sample_input(3)
    np.testing.assert_allclose(http_infer(server, x), reference(x), rtol=1e-5, atol=1e-5)


def test_binary_tensors_give_the_same_answer_as_json(server):
    x = sample_input(5, batch=2)
    client = httpclient.InferenceServerClient(server.url)
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    output = httpclient.InferRequestedOutput("logits", binary_data=True)
    np.testing.assert_allclose(client.infer(MODEL, [tensor], outputs=[output]).as_numpy("logits"), reference(x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model,name,shape,datatype,status", [
    (MODEL, "input", [1, 3, 16, 16], "FP32", "INVALID_ARGUMENT"),
    (MODEL, "input", [1, 3, 32, 32], "INT64", "INVALID_ARGUMENT"),
    (MODEL, "image", [1, 3, 32, 32], "FP32", "INVALID_ARGUMENT"),
    (MODEL, "input", [33, 3, 32, 32], "FP32", "INVALID_ARGUMENT"),
    ("resnet51", "input", [1, 3, 32, 32], "FP32", "NOT_FOUND"),
])
def test_grpc_refuses_malformed_requests_with_the_matching_status(server, model, name, shape, datatype, status):
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    tensor = grpcclient.InferInput(name, shape, datatype)
    tensor.set_data_from_numpy(np.zeros(shape, np.float32 if datatype == "FP32" else np.int64))
    with pytest.raises(InferenceServerException) as refused:
        client.infer(model, [tensor])
    assert refused.value.status() == f"StatusCode.{status}"
    x = sample_input(6)
    tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    np.testing.assert_allclose(client.infer(MODEL, [tensor]).as_numpy("logits"), reference(x), rtol=1e-5, atol=1e-5)


def test_model_is_not_ready_until_warm_and_ready_after(tmp_path):
    # A long warm-up: Triton keeps the model unready until every warm-up run is done.
    folder = local_server.model_folder(tmp_path, warmup=[{"batch_size": 32, "count": 150}])
    server = local_server.start(folder)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and 200 not in seen:
            try:
                with urllib.request.urlopen(f"http://{server.url}/v2/health/ready", timeout=1) as response:
                    seen.append(response.status)
            except urllib.error.HTTPError as error:
                seen.append(error.code)
            except OSError:
                seen.append("refused")  # Triton listens only once models are loaded: a probe reads not-ready
            time.sleep(0.05)
        assert seen[0] != 200 and seen[-1] == 200, seen[:5] + seen[-3:]
        assert "successfully loaded" in server.logs()
        with urllib.request.urlopen(f"http://{server.url}/v2/health/live", timeout=1) as response:
            assert response.status == 200
    finally:
        local_server.stop(server)
        server.log.unlink(missing_ok=True)


def test_sigterm_during_load_loses_no_accepted_request():
    server = local_server.start()
    local_server.wait_ready(server)
    outcomes = {"ok": 0, "refused": 0, "lost": []}
    lock = threading.Lock()
    stop_at = time.monotonic() + 15
    x = sample_input(2, batch=4)

    def client():
        connection = None
        while time.monotonic() < stop_at:
            try:
                connection = connection or httpclient.InferenceServerClient(server.url, network_timeout=30)
                tensor = httpclient.InferInput("input", list(x.shape), "FP32")
                tensor.set_data_from_numpy(x)
                connection.infer(MODEL, [tensor])
                with lock:
                    outcomes["ok"] += 1
            except ConnectionRefusedError:
                with lock:
                    outcomes["refused"] += 1
                return
            except Exception as error:  # noqa: BLE001 - anything else is a request we accepted and lost
                message = str(error)
                with lock:
                    if "Connection refused" in message or "Server is stopping" in message:
                        outcomes["refused"] += 1
                        return
                    outcomes["lost"].append(message)
                return

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    before = outcomes["ok"]
    exit_code = local_server.stop(server)
    for thread in threads:
        thread.join(timeout=30)
    server.log.unlink(missing_ok=True)
    assert before > 0
    assert outcomes["lost"] == [], outcomes["lost"][:3]
    assert exit_code == 0


def test_the_response_cache_answers_a_repeated_request_and_the_queue_sheds_overload_as_429(tmp_path):
    """spec.json's response_cache and queue, rendered into config.pbtxt, against the real local Triton."""
    folder = local_server.model_folder(tmp_path, response_cache=True, queue={"max_queue_size": 1},
                                       max_queue_delay_microseconds=50_000)
    with local_server.running(folder) as server:
        x = sample_input(11)
        http_infer(server, x)
        hits = lambda: next(s.value for f in text_string_to_metric_families(  # noqa: E731
            urllib.request.urlopen(f"http://127.0.0.1:{server.metrics}/metrics", timeout=5).read().decode())
            if f.name == "nv_cache_num_hits_per_model" for s in f.samples)
        before = hits()
        np.testing.assert_allclose(http_infer(server, x), reference(x), rtol=1e-5, atol=1e-5)
        assert hits() == before + 1

        statuses, lock = [], threading.Lock()
        bodies = [tensor_body(shape=(32, 3, 32, 32), data=(sample_input(i, batch=32)).flatten().tolist())
                  for i in range(24)]

        def send(body):
            started = time.monotonic()
            status, payload = post_raw(server, body)
            with lock:
                statuses.append((status, time.monotonic() - started, payload[:200]))

        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        shed = [s for s in statuses if s[0] != 200]
        assert shed, "24 concurrent batches of 32 against a queue of 1: some must be shed"
        assert all(status == 429 and b"Exceeds maximum queue size" in payload for status, _, payload in shed), shed[:3]
        assert max(seconds for _, seconds, _ in shed) < 5  # refused at once, not after a timeout
        refused = counters(server).get(("mlserve_front_refused", "queue_full"), 0)
        assert refused == len(shed)


def test_priorities_render_into_the_batcher_and_triton_accepts_them(tmp_path):
    folder = local_server.model_folder(tmp_path, priorities={"levels": 2, "default": 2})
    with local_server.running(folder) as server:
        client = httpclient.InferenceServerClient(server.url)
        x = sample_input(12)
        tensor = httpclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=False)
        np.testing.assert_allclose(client.infer(MODEL, [tensor], priority=1).as_numpy("logits"), reference(x),
                                   rtol=1e-5, atol=1e-5)
        config = client.get_model_config(MODEL)["dynamic_batching"]
        assert config["priority_levels"] == 2 and config["default_priority_level"] == 2


def test_the_locust_load_test_runs_bounded_against_the_local_server(server, tmp_path):
    """`make loadtest`'s locustfile, headless for 4 s with its day shape: requests succeed and it stops by itself."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    locust = Path(sys.executable).parent / "locust"
    started = time.monotonic()
    result = subprocess.run([str(locust), "-f", "bench/locustfile.py", "--headless", "--host", f"http://{server.url}",
                             "--run-time", "4s", "--stop-timeout", "3", "--only-summary", "--exit-code-on-error", "1",
                             "--csv", str(tmp_path / "locust")], cwd=local_server.ROOT, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MLSERVE_BINARY": "1", "MLSERVE_PEAK_USERS": "4"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert time.monotonic() - started < 30
    stats = (tmp_path / "locust_stats.csv").read_text().splitlines()
    row = next(line for line in stats if line.startswith("POST,kserve infer")).split(",")
    assert int(row[2]) > 10 and int(row[3]) == 0  # requests, failures


def _get(server, path):
    try:
        with urllib.request.urlopen(f"http://{server.url}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_every_read_only_route_of_the_protocol_reaches_triton(server):
    import yaml

    spec = yaml.safe_load((local_server.SAMPLE.parents[1] / "schemas" / "kserve-oip" / "rest_predict_v2.yaml")
                          .read_text())
    paths = [p.replace("${MODEL_NAME}", MODEL).replace("${MODEL_VERSION}", "1") for p, ops in spec["paths"].items()
             if "get" in ops]
    assert len(paths) == 5
    for path in paths:
        status, body = _get(server, path)
        assert status == 200, (path, status, body)


@pytest.mark.parametrize("path", ["/v2/systemsharedmemory/status", "/v2/cudasharedmemory/status", "/v2/trace/setting",
                                  "/v2/logging", "/v2/repository/index"])
def test_tritons_administrative_routes_never_leave_the_pod(server, path):
    status, body = _get(server, path)
    assert status == 404 and "Open Inference Protocol" in json.loads(body)["error"]
    request = urllib.request.Request(f"http://{server.url}/v2/repository/models/{MODEL}/unload", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
    assert _get(server, "/v2/health/ready")[0] == 200  # and the model is still served
