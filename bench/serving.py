"""`make bench-serving`: the local Triton against the usual naive baseline, side by side, in one run.

Both serve the sample model on 127.0.0.1 and get the same v2 JSON request (one image) from the same load generator:
  - mlserve: Triton (the bundled CPU tritonserver, python backend wrapping ONNX Runtime, dynamic batching);
  - baseline: FastAPI + uvicorn calling ONNX Runtime once per request (no batching).
For each concurrency (1, 8, 32) it runs a bounded time and request count, then prints throughput, p50/p95/p99 and the
throughput ratio, plus each server's time from process start to ready. A second table prices the front (the layer
that turns client mistakes into 4xx): the same requests to Triton's own port behind it and through it, latency at
concurrency 1 and throughput at 32. Everything it starts, it stops.

    python -m bench.serving [--seconds 5] [--concurrency 1 8 32] [--max-requests 20000] [--no-large]

A third table sends a 1x3x224x224 FP32 image as v2 JSON and as binary tensors to the same server (through the front).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from serving_image import local_server
from serving_image.sample_model.make_sample import sample_input

PATH = "/v2/models/resnet50/infer"
BASELINE_APP = textwrap.dedent('''
    import numpy as np, onnxruntime
    from fastapi import FastAPI, Request
    session = onnxruntime.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready():
        return {}

    @app.post("/v2/models/resnet50/infer")
    async def infer(request: Request):
        body = await request.json()
        tensor = body["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        logits = session.run(["logits"], {"input": x})[0]
        return {"model_name": "resnet50",
                "outputs": [{"name": "logits", "datatype": "FP32", "shape": list(logits.shape),
                             "data": logits.flatten().tolist()}]}
''')


@dataclass
class Result:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def load(port: int, body: bytes, concurrency: int, seconds: float, max_requests: int,
         headers: dict[str, str] | None = None, path: str = PATH) -> Result:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    budget = [max_requests]
    deadline = time.monotonic() + seconds

    def worker():
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            started = time.perf_counter()
            try:
                connection.request("POST", path, body, headers or {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(concurrency, len(latencies), errors, time.monotonic() - started, latencies)


def start_baseline() -> tuple[subprocess.Popen, int, float]:
    port = local_server.free_port()
    app = BASELINE_APP.replace("MODEL", repr(str(local_server.SAMPLE / "model.onnx")))
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c",
                                app + f"\nimport uvicorn\nuvicorn.run(app, host='127.0.0.1', port={port}, "
                                      "log_level='warning')"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1)
            return process, port, time.monotonic() - started
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the baseline did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency and server (bounded)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-requests", type=int, default=20_000, help="per concurrency and server (bounded)")
    parser.add_argument("--no-large", dest="large", action="store_false",
                        help="skip the 224x224 JSON-versus-binary table")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 120 or any(c < 1 or c > 256 for c in args.concurrency):
        parser.error("--seconds must be in (0, 120] and each --concurrency in [1, 256]")
    console = Console(width=140)
    x = sample_input(0)
    body = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.flatten().tolist()}]}).encode()

    inner_port = local_server.free_port()
    triton = local_server.start(extra_env={"MLSERVE_TRITON_HTTP_PORT": str(inner_port)})
    baseline = None
    try:
        triton_ready = local_server.wait_ready(triton)
        baseline, baseline_port, baseline_ready = start_baseline()
        rows = []
        for concurrency in args.concurrency:
            load(triton.http, body, concurrency, 0.5, 200)  # warm connections and caches alike
            load(baseline_port, body, concurrency, 0.5, 200)
            rows.append((load(triton.http, body, concurrency, args.seconds, args.max_requests),
                         load(baseline_port, body, concurrency, args.seconds, args.max_requests)))
        front_rows = []
        for concurrency in (1, 32):
            load(inner_port, body, concurrency, 0.5, 200)
            front_rows.append((load(inner_port, body, concurrency, args.seconds, args.max_requests),
                               load(triton.http, body, concurrency, args.seconds, args.max_requests)))
    finally:
        local_server.stop(triton)
        if baseline is not None:
            baseline.terminate()
            baseline.wait(timeout=30)

    table = Table(title="Sample model (ResNet-style, 1x3x32x32 FP32), v2 JSON over HTTP on 127.0.0.1")
    for column in ("concurrency", "server", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "req/s ratio"):
        table.add_column(column, justify="right" if column not in ("server",) else "left")
    for mlserve, naive in rows:
        ratio = mlserve.throughput / naive.throughput if naive.throughput else float("nan")
        for name, result, shown_ratio in (("mlserve (Triton)", mlserve, f"{ratio:.2f}x"),
                                          ("FastAPI + ORT", naive, "1.00x")):
            table.add_row(str(result.concurrency), name, f"{result.throughput:.0f}", f"{result.percentile(50):.1f}",
                          f"{result.percentile(95):.1f}", f"{result.percentile(99):.1f}", str(result.errors),
                          shown_ratio)
    console.print(table)
    console.print(f"time from process start to ready: mlserve (Triton) {triton_ready:.2f} s, "
                  f"FastAPI + ORT {baseline_ready:.2f} s")
    console.print(f"median latency at concurrency 1: mlserve {statistics.median(rows[0][0].latencies_ms):.1f} ms, "
                  f"baseline {statistics.median(rows[0][1].latencies_ms):.1f} ms")
    front = Table(title="The front's cost: Triton's own port vs through the front (same requests)")
    for column in ("concurrency", "path", "req/s", "p50 ms", "p99 ms", "errors", "req/s ratio"):
        front.add_column(column, justify="left" if column == "path" else "right")
    for direct, fronted in front_rows:
        ratio = fronted.throughput / direct.throughput if direct.throughput else float("nan")
        for name, result, shown in (("Triton directly", direct, "1.00x"), ("through the front", fronted,
                                                                           f"{ratio:.2f}x")):
            front.add_row(str(result.concurrency), name, f"{result.throughput:.0f}", f"{result.percentile(50):.2f}",
                          f"{result.percentile(99):.2f}", str(result.errors), shown)
    console.print(front)
    if args.large:
        console.print(large_input_table(args))
    return 0


def large_input_table(args) -> Table:
    """1x3x224x224 FP32 as v2 JSON (about 1.5 MB of text) and as binary tensors (600 KB), same server and model."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from serving_image.sample_model.make_sample import build_model

    folder = Path(tempfile.mkdtemp(prefix="mlserve-bench-224-"))
    (folder / "model.onnx").write_bytes(build_model(size=224, downsample=8).SerializeToString())
    spec = json.loads((local_server.SAMPLE / "spec.json").read_text())
    spec["inputs"][0]["dims"] = [3, 224, 224]
    spec["warmup"] = [{"batch_size": 1}]
    (folder / "spec.json").write_text(json.dumps(spec))
    x = np.random.RandomState(0).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
    as_json = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                      "data": x.flatten().tolist()}]}).encode()
    header = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    as_binary = header + x.tobytes()
    binary_headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))}
    server = local_server.start(folder)
    rows = []
    try:
        local_server.wait_ready(server)
        for concurrency in (1, 8):
            load(server.http, as_json, concurrency, 0.5, 50)
            load(server.http, as_binary, concurrency, 0.5, 50, binary_headers)
            rows.append((load(server.http, as_json, concurrency, args.seconds, args.max_requests),
                         load(server.http, as_binary, concurrency, args.seconds, args.max_requests, binary_headers)))
    finally:
        local_server.stop(server)
        shutil.rmtree(folder, ignore_errors=True)
    table = Table(title=f"1x3x224x224 FP32 through the front: v2 JSON ({len(as_json) / 1e6:.1f} MB) vs binary "
                        f"tensors ({len(as_binary) / 1e6:.1f} MB); the model averages 8x8 first, so transport dominates")
    for column in ("concurrency", "encoding", "req/s", "p50 ms", "p99 ms", "errors", "req/s ratio"):
        table.add_column(column, justify="left" if column == "encoding" else "right")
    for as_text, as_bytes in rows:
        ratio = as_bytes.throughput / as_text.throughput if as_text.throughput else float("nan")
        for name, result, shown in (("JSON", as_text, "1.00x"), ("binary", as_bytes, f"{ratio:.2f}x")):
            table.add_row(str(result.concurrency), name, f"{result.throughput:.0f}", f"{result.percentile(50):.1f}",
                          f"{result.percentile(99):.1f}", str(result.errors), shown)
    return table


if __name__ == "__main__":
    sys.exit(main())
