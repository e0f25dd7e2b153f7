"""Exercise the SageMaker contract of the real local Triton; run inside a private network namespace.

Triton's SageMaker listener binds 0.0.0.0 (it has no address option), so the test runs this probe with
`unshare --net`, where the only interface is loopback. Prints one JSON object with what it observed.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from serving_image.local_server import ROOT, SAMPLE
from serving_image.sample_model.make_sample import sample_input

PORT = 8081  # given through SAGEMAKER_BIND_TO_PORT, as SageMaker does


def call(path, body=None, content_type="application/json"):
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=body,
                                     headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return "refused", ""


def main():
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(PORT), "MLSERVE_MODEL_DIR": str(SAMPLE), "PYTHONUNBUFFERED": "1"}
    log = open("/tmp/mlserve-sagemaker-probe.log", "w")  # noqa: SIM115 the server writes to it until it stops
    process = subprocess.Popen([sys.executable, "-m", "serving_image", "serve", "--local", "--mode", "sagemaker"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    pings = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _ = call("/ping")
        pings.append(status)
        if status == 200:
            break
        time.sleep(0.05)
    x = sample_input(0)
    body = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.flatten().tolist()}]}).encode()
    status, text = call("/invocations", body)
    result = {"pings": pings[:3] + pings[-2:], "invocation_status": status,
              "logits": json.loads(text)["outputs"][0]["data"] if status == 200 else text}
    wrong = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 16, 16], "datatype": "FP32",
                                    "data": [0.0] * 768}]}).encode()
    result["wrong_shape"] = call("/invocations", wrong)
    result["after_error"] = call("/invocations", body)[0]
    process.send_signal(signal.SIGTERM)
    result["exit_code"] = process.wait(timeout=30)
    log.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
