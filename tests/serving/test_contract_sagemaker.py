"""SageMaker's container contract (/ping, /invocations, SAGEMAKER_BIND_TO_PORT) against the real local Triton."""

import json
import shutil
import subprocess
import sys

import numpy as np

from serving_image.local_server import ROOT, SAMPLE


def run_probe() -> dict:
    # Triton's SageMaker listener binds 0.0.0.0: the probe and the server share a loopback-only network namespace.
    assert shutil.which("unshare"), "util-linux unshare is needed to run SageMaker mode locally"
    result = subprocess.run(["unshare", "--net", "sh", "-c",
                             f"ip link set lo up && exec {sys.executable} -m tests.serving.sagemaker_probe"],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sagemaker_contract_ping_invocations_and_shutdown():
    probe = run_probe()
    assert probe["pings"][0] != 200 and probe["pings"][-1] == 200  # not ready until the model is loaded
    assert probe["invocation_status"] == 200
    expected = json.loads((SAMPLE / "expected.json").read_text())["logits"]["0"]
    np.testing.assert_allclose(probe["logits"], expected, atol=1e-5)
    status, message = probe["wrong_shape"]
    assert 400 <= status < 500 and "unexpected shape" in message
    assert probe["after_error"] == 200
    assert probe["exit_code"] == 0


def test_local_sagemaker_mode_refuses_to_bind_all_interfaces_outside_a_private_namespace():
    result = subprocess.run([sys.executable, "-m", "serving_image", "serve", "--local", "--mode", "sagemaker",
                             "--model-dir", str(SAMPLE), "--port", "18555"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "run it in a private network namespace" in result.stderr


def test_serve_local_sagemaker_is_reachable_on_host_loopback_through_the_bridge():
    """`make serve-local MODE=sagemaker`: Triton in its own namespace, /ping and /invocations on the host's 127.0.0.1."""
    import signal
    import time
    import urllib.error
    import urllib.request

    from serving_image.local_server import free_port
    from serving_image.sample_model.make_sample import sample_input

    port = free_port()
    bridge = subprocess.Popen([sys.executable, "-m", "serving_image.loopback_bridge", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, ping = time.monotonic() + 90, None
        while time.monotonic() < deadline and ping != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
                    ping = response.status
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        assert ping == 200
        x = sample_input(1)
        body = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                       "data": x.flatten().tolist()}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            logits = json.loads(response.read())["outputs"][0]["data"]
        expected = json.loads((SAMPLE / "expected.json").read_text())["logits"]["1"]
        np.testing.assert_allclose(logits, expected, atol=1e-5)
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(timeout=40) == 0
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
