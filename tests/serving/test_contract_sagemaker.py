"""SageMaker's container contract (/ping, /invocations, SAGEMAKER_BIND_TO_PORT) against the real local Triton behind
the front: JSON and binary tensors, client errors as 4xx, shutdown on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from serving_image.local_server import ROOT, SAMPLE, free_port
from serving_image.sample_model.make_sample import sample_input

BINARY = "application/vnd.sagemaker-triton.binary+json"


def call(port, path, body=None, content_type="application/json"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     headers={"Content-Type": content_type} if body is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()
    except OSError:
        return "refused", "", b""


def json_body(x) -> bytes:
    return json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.flatten().tolist()}]}).encode()


def binary_body(x) -> tuple[bytes, str]:
    raw = x.astype(np.float32).tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    return header + raw, f"{BINARY};json-header-size={len(header)}"


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp (hex, little-endian IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.fixture(scope="module")
def sagemaker():
    port = free_port()  # given through SAGEMAKER_BIND_TO_PORT, as SageMaker does
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "MLSERVE_MODEL_DIR": str(SAMPLE),
           "PYTHONUNBUFFERED": "1", "MLSERVE_MAX_BODY_BYTES": str(4 * 1024 * 1024)}
    process = subprocess.Popen([sys.executable, "-m", "serving_image", "serve", "--local", "--mode", "sagemaker"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pings = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not pings or pings[-1] != 200):
        pings.append(call(port, "/ping")[0])
        time.sleep(0.05)
    try:
        yield port, process, pings
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ping_turns_ready_and_invocations_answer_json_and_binary(sagemaker):
    port, _, pings = sagemaker
    assert pings[0] != 200 and pings[-1] == 200  # not ready until the model is loaded
    assert listening_addresses(port) == {"127.0.0.1"}  # --local binds loopback only, no namespace needed
    expected = json.loads((SAMPLE / "expected.json").read_text())["logits"]["0"]
    status, _, body = call(port, "/invocations", json_body(sample_input(0)))
    assert status == 200
    np.testing.assert_allclose(json.loads(body)["outputs"][0]["data"], expected, atol=1e-5)
    body, content_type = binary_body(sample_input(0))
    status, reply_type, reply = call(port, "/invocations", body, content_type)
    assert status == 200 and reply_type.startswith(f"{BINARY};json-header-size=")
    header_size = int(reply_type.split("=")[1])
    header = json.loads(reply[:header_size])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 40
    np.testing.assert_allclose(np.frombuffer(reply[header_size:], np.float32), expected, atol=1e-5)


@pytest.mark.parametrize("body,content_type,status,fragment", [
    (b"garbage", "application/json", 400, "not valid json"),
    (b'{"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.5]}]}',
     "application/json", 400, "has 1 values"),
    (b'{"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": ["x"]}]}',
     "application/json", 400, "text"),
    (b'{"inputs": [{"name": "input", "shape": [1, 3, 16, 16], "datatype": "FP32", "data": [0.5]}]}',
     "application/json", 400, "does not match"),
    (b"a,b,c", "text/csv", 415, "not accepted"),
    (b'{"inputs": []}', f"{BINARY};json-header-size=9999", 400, "longer than the body"),
    (b'{"inputs": []}', BINARY, 400, "json-header-size"),
])
def test_a_malformed_invocation_is_a_client_error_and_the_container_keeps_serving(sagemaker, body, content_type,
                                                                                  status, fragment):
    port, _, _ = sagemaker
    got, _, payload = call(port, "/invocations", body, content_type)
    assert got == status and fragment in json.loads(payload)["error"].lower(), (got, payload[:300])
    assert call(port, "/invocations", json_body(sample_input(1)))[0] == 200


def test_what_the_gateway_sends_for_binary_tensors_is_understood(sagemaker):
    """Through API Gateway: application/octet-stream, the header length in SageMaker's custom attributes."""
    port, _, _ = sagemaker
    body, content_type = binary_body(sample_input(2))
    header_size = content_type.split("=")[1]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, headers={
        "Content-Type": "application/octet-stream", "X-Amzn-SageMaker-Custom-Attributes": header_size})
    with urllib.request.urlopen(request, timeout=30) as response:
        reply_type, reply = response.headers["Content-Type"], response.read()
    size = int(reply_type.split("=")[1])
    expected = json.loads((SAMPLE / "expected.json").read_text())["logits"]["2"]
    np.testing.assert_allclose(np.frombuffer(reply[size:], np.float32), expected, atol=1e-5)


def test_other_paths_and_methods_are_4xx_with_a_message(sagemaker):
    """SageMaker's contract is /ping and /invocations: anything else is the client's 404 or 405, said in JSON."""
    port, _, _ = sagemaker
    for path, body, status in (("/v2/health/ready", None, 404), ("/invocations", None, 405),
                               ("/ping", b"{}", 405)):
        got, content_type, payload = call(port, path, body)
        assert got == status and content_type == "application/json", (path, got, payload[:200])
        assert path in json.loads(payload)["error"]
    assert call(port, "/invocations", json_body(sample_input(1)))[0] == 200


def test_sigterm_ends_the_container_cleanly(sagemaker):
    port, process, _ = sagemaker
    assert call(port, "/ping")[0] == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0

