"""Load shapes for a deployed model (or the local server), with locust: `make loadtest URL=... [PATH_KIND=...]`.

Two paths, chosen by MLSERVE_PATH:
  kserve   (default)  POST {URL}/v2/models/{MLSERVE_MODEL}/infer, v2 JSON or binary tensors (MLSERVE_BINARY=1);
                      URL is a KServe/Triton server or the API gateway's stage URL (https://.../v1).
  sagemaker           POST {URL}/invocations (a container, e.g. `make serve-local MODE=sagemaker`).
MLSERVE_API_KEY adds `x-api-key` (the gateway's usage plans). Traffic is a day's shape squeezed into the run: a
ramp, a plateau and a burst (`DayShape`), bounded by locust's --run-time, and every user waits between requests
(think time), as clients do. Client errors (4xx) and server errors (5xx) are counted apart.
"""

from __future__ import annotations

import json
import os

import numpy as np
from locust import FastHttpUser, LoadTestShape, between, task

MODEL = os.environ.get("MLSERVE_MODEL", "resnet50")
PATH_KIND = os.environ.get("MLSERVE_PATH", "kserve")
BINARY = os.environ.get("MLSERVE_BINARY") == "1"
SHAPE = [int(d) for d in os.environ.get("MLSERVE_INPUT_SHAPE", "1,3,32,32").split(",")]
PEAK_USERS = int(os.environ.get("MLSERVE_PEAK_USERS", "16"))


def request() -> tuple[bytes, dict[str, str]]:
    x = np.random.default_rng(0).uniform(0, 1, SHAPE).astype(np.float32)
    headers = {"x-api-key": os.environ["MLSERVE_API_KEY"]} if os.environ.get("MLSERVE_API_KEY") else {}
    if not BINARY:
        body = json.dumps({"inputs": [{"name": os.environ.get("MLSERVE_INPUT", "input"), "shape": SHAPE,
                                       "datatype": "FP32", "data": x.flatten().tolist()}]}).encode()
        return body, {**headers, "Content-Type": "application/json"}
    header = json.dumps({"inputs": [{"name": os.environ.get("MLSERVE_INPUT", "input"), "shape": SHAPE,
                                     "datatype": "FP32", "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    if PATH_KIND == "sagemaker":
        content_type = f"application/vnd.sagemaker-triton.binary+json;json-header-size={len(header)}"
        return header + x.tobytes(), {**headers, "Content-Type": content_type}
    return header + x.tobytes(), {**headers, "Content-Type": "application/octet-stream",
                                  "Inference-Header-Content-Length": str(len(header))}


BODY, HEADERS = request()


class InferenceClient(FastHttpUser):
    wait_time = between(0.01, 0.05)

    @task
    def infer(self) -> None:
        path = "/invocations" if PATH_KIND == "sagemaker" else f"/v2/models/{MODEL}/infer"
        with self.client.post(path, data=BODY, headers=HEADERS, name=f"{PATH_KIND} infer",
                              catch_response=True) as response:
            if 400 <= response.status_code < 500:
                response.failure(f"client error {response.status_code}: {response.text[:200]}")
            elif response.status_code >= 500 or response.status_code == 0:
                response.failure(f"server error {response.status_code}: {response.text[:200]}")


class DayShape(LoadTestShape):
    """A ramp to half the peak, a plateau, a burst to the peak, and back: fractions of --run-time."""
    stages = ((0.2, 0.25), (0.5, 0.5), (0.7, 1.0), (1.0, 0.5))

    def tick(self):
        run_time = self.runner.environment.parsed_options.run_time if self.runner else None
        if not run_time:
            return None
        elapsed = self.get_run_time() / run_time
        for until, share in self.stages:
            if elapsed < until:
                users = max(1, round(PEAK_USERS * share))
                return users, users
        return None
