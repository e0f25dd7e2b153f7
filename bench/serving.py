"""`make bench-serving`: the local Triton against the usual naive baseline, side by side, in one run.

Both serve the sample model on 127.0.0.1 and get the same v2 JSON request (one image) from the same load generator:
  - mlserve: the front and Triton behind it (the bundled CPU tritonserver, python backend wrapping ONNX Runtime,
    dynamic batching), as served;
  - baseline: FastAPI + uvicorn calling ONNX Runtime once per request (no batching).
For each concurrency (1, 8, 32) it runs a bounded time and request count, then prints throughput, p50/p95/p99 and the
throughput ratio, plus each server's time from process start to ready. A second table prices the front (the layer
that turns client mistakes into 4xx): the same requests to Triton's own port behind it and through it, at
concurrency 1 and 32, and a third its CPU per request at 32 beside Triton's and its stubs' (from /proc), which is
what the throughput ratio shows once the cores are saturated. Progress goes to stderr as it runs; everything it
starts, it stops, and the logs and folders it writes under the temporary directory go with them.

Repeats: the whole set of measurements runs `--repeats` times, each pair of a ratio measured back to back within a
repeat (which of the two goes first alternates), so a ratio is paired; each ratio is printed as the median over the
repeats and its spread [min-max]. The goals (docs/benchmark.md) are judged on those medians and printed last. The
machine is shared by the load generator, Triton and the front (and whatever else runs there): the load average is
printed too.

Percentiles are nearest-rank (`percentile`): the p-th percentile of n sorted values is the ceil(p/100 * n)-th
smallest, a latency that was observed (numpy's method="inverted_cdf"; the p50 of [1, 2, 3, 4] is 2).

    python -m bench.serving [--seconds 3] [--repeats 5] [--concurrency 1 8 32] [--max-requests 20000] [--no-large]
                            [--check]

A third table sends a 1x3x224x224 FP32 image as v2 JSON and as binary tensors to the same server (through the front).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from typing import cast

import httptools
import psutil
import uvloop
from rich.console import Console
from rich.markup import escape
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


# The goals (docs/benchmark.md, "Goals"), judged on the medians over the repeats.
GOAL_FRONT_THROUGHPUT = 0.95  # through the front / Triton's own port, req/s at concurrency 32, at least
GOAL_FRONT_P50_MS = 0.3  # through the front - Triton's own port, p50 at concurrency 1, at most
GOAL_BASELINE = 2.0  # mlserve / FastAPI + ONNX Runtime, req/s at concurrency 32, at least


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank: the ceil(p/100 * n)-th smallest of n values (the smallest for p = 0); nan when empty."""
    if not values:
        return float("nan")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside [0, 100]")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class Spread:
    """A figure over the repeats: its median and its range."""
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def show(self, digits: int = 2, suffix: str = "") -> str:
        return f"{self.median:.{digits}f}{suffix} [{self.low:.{digits}f}-{self.high:.{digits}f}]"


@dataclass
class Result:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu_us: dict[str, float] | None = None
    """CPU (user + system) per request of each part of the server, where the run measured it (`processes_cpu`)."""

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


class _Client(asyncio.Protocol):
    """One kept-alive connection of the load generator: sends the prepared request, reads the answer, again."""

    def __init__(self, run: _Run):
        self.run = run
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0
        self.waiting = False  # a request is out and its answer not read yet
        self.closed = run.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.send()

    def send(self) -> None:
        if not self.run.take():
            assert self.transport is not None
            self.transport.close()
            return
        self.sent = time.perf_counter()
        self.waiting = True
        assert self.transport is not None
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()  # counted as an error when the connection is lost

    def on_message_complete(self) -> None:
        self.waiting = False
        elapsed = (time.perf_counter() - self.sent) * 1000
        if self.parser.get_status_code() == 200:
            self.run.latencies.append(elapsed)
        else:
            self.run.errors += 1
        self.send()

    def connection_lost(self, exc) -> None:
        if self.waiting:  # the server closed the connection before answering: an error, and this client stops
            self.run.errors += 1
            self.waiting = False
        if not self.closed.done():
            self.closed.set_result(None)


class _Run:
    """What the connections of one measurement share: the request bytes, the budget and deadline, the results."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: bytes, seconds: float, max_requests: int):
        self.loop, self.request = loop, request
        self.deadline = time.perf_counter() + seconds
        self.budget = max_requests
        self.latencies: list[float] = []
        self.errors = 0

    def take(self) -> bool:
        if self.budget <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.budget -= 1
        return True


def load(port: int, body: bytes, concurrency: int, seconds: float, max_requests: int,
         headers: dict[str, str] | None = None, path: str = PATH) -> Result:
    """`concurrency` kept-alive connections, each sending the same request as soon as its answer is read, for at most
    `seconds` and `max_requests` in all. One event loop (uvloop) and llhttp's parser in this process: a load
    generator that uses little CPU, so the servers it measures keep the cores: about 27 us of CPU per request here,
    where a thread of http.client per connection (the bench before) took 150 us, and its figures moved with it."""
    head = "".join(f"{name}: {value}\r\n" for name, value in
                   (headers or {"Content-Type": "application/json"}).items())
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
               ).encode("latin-1") + body

    async def measure() -> Result:
        loop = asyncio.get_running_loop()
        run = _Run(loop, request, seconds, max_requests)
        started = time.perf_counter()
        clients = []
        for _ in range(concurrency):
            try:
                _, client = await loop.create_connection(lambda: _Client(run), "127.0.0.1", port)
                clients.append(client)
            except OSError:
                run.errors += 1
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), seconds + 35)
        return Result(concurrency, len(run.latencies), run.errors, time.perf_counter() - started, run.latencies)

    return uvloop.run(measure())


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


def say(message: str) -> None:
    """Progress, on stderr as it happens (the tables come on stdout at the end)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def processes_cpu(root: int) -> dict[str, float]:
    """CPU seconds so far (user + system) of a server's process tree, by part: the root process (for mlserve: the
    front, a thread of the serving entrypoint, beside a supervisor that only waits), tritonserver, and its python
    backend stubs. Empty once the root is gone; a child that ends while it is read is left out."""
    try:
        top = psutil.Process(root)
        tree = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    parts: dict[str, float] = {}
    for process in tree:
        try:
            name, times = process.name(), process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        part = "front" if process.pid == root else "python backend stubs" if name.startswith("triton_python") else name
        parts[part] = parts.get(part, 0.0) + times.user + times.system
    return parts


def measured_cpu(root: int, port: int, body: bytes, concurrency: int, seconds: float, max_requests: int) -> Result:
    """A load whose result says each part's CPU per request (us), from the server's process tree before and after."""
    before = processes_cpu(root)
    result = load(port, body, concurrency, seconds, max_requests)
    after = processes_cpu(root)
    if result.requests:
        result.cpu_us = {part: (after[part] - before.get(part, 0.0)) / result.requests * 1e6 for part in after}
    return result


def stop_and_clean(server: local_server.LocalServer) -> None:
    """Stop a server this run started and remove its log (its temporary folder goes with the server)."""
    local_server.stop(server)
    server.log.unlink(missing_ok=True)


def planned_seconds(args: argparse.Namespace) -> float:
    """How long the measurements take at most: each is bounded by --seconds (warm-ups are half a second each)."""
    per_repeat = 2 * len(args.concurrency) + 2 * 2
    warmups = 3 * len({*args.concurrency, 1, 32}) * 0.5
    large = (2 * 2 * args.seconds + 2 * 2 * 0.5) if args.large else 0
    cpu = min(args.repeats, CPU_REPEATS) * 2 * args.seconds
    return args.repeats * per_repeat * args.seconds + cpu + warmups + large


def paired(first: tuple[int, dict], second: tuple[int, dict], body: bytes, concurrency: int, seconds: float,
           max_requests: int, swap: bool) -> tuple[Result, Result]:
    """Two servers (port, headers) under the same load back to back; `swap` runs the second first."""
    order = [second, first] if swap else [first, second]
    results = [load(port, body, concurrency, seconds, max_requests, headers or None) for port, headers in order]
    return (results[1], results[0]) if swap else (results[0], results[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (bounded)")
    parser.add_argument("--repeats", type=int, default=5, help="each ratio is measured this many times (median, "
                                                                 "spread)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-requests", type=int, default=20_000, help="per measurement (bounded)")
    parser.add_argument("--no-large", dest="large", action="store_false",
                        help="skip the 224x224 JSON-versus-binary table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is not met")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 120 or any(c < 1 or c > 256 for c in args.concurrency):
        parser.error("--seconds must be in (0, 120] and each --concurrency in [1, 256]")
    if not 1 <= args.repeats <= 50:
        parser.error("--repeats must be in [1, 50]")
    console = Console(width=150)
    x = sample_input(0)
    body = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.flatten().tolist()}]}).encode()
    load_before = os.getloadavg()
    say(f"about {planned_seconds(args):.0f} s of measurements after the servers start ({args.repeats} repeats of "
        f"{args.seconds:g} s per measurement); the tables follow at the end")

    inner_port = local_server.free_port()
    say("starting the local Triton (the front and Triton, the sample model)")
    triton = local_server.start(extra_env={"MLSERVE_TRITON_HTTP_PORT": str(inner_port)})
    baseline = None
    # (concurrency) -> per repeat: (mlserve, baseline); (concurrency) -> per repeat: (direct, through the front)
    rows: dict[int, list[tuple[Result, Result]]] = {c: [] for c in args.concurrency}
    front_rows: dict[int, list[tuple[Result, Result]]] = {1: [], 32: []}
    cpu_rows: list[tuple[Result, ...]] = []  # per repeat: (Triton's own port, through the front), CPU measured
    try:
        triton_ready = local_server.wait_ready(triton)
        say(f"Triton ready in {triton_ready:.1f} s; starting the baseline (FastAPI + ONNX Runtime)")
        baseline, baseline_port, baseline_ready = start_baseline()
        mlserve, naive, direct = (triton.http, {}), (baseline_port, {}), (inner_port, {})
        say("warming up both servers")
        for port in (triton.http, baseline_port, inner_port):  # warm connections and caches alike
            for concurrency in sorted({*args.concurrency, *front_rows}):
                load(port, body, concurrency, 0.5, 200)
        for repeat in range(args.repeats):
            say(f"repeat {repeat + 1}/{args.repeats}: concurrency {', '.join(map(str, args.concurrency))} against "
                "both servers, then the front's cost at 1 and 32")
            for concurrency in args.concurrency:
                rows[concurrency].append(paired(mlserve, naive, body, concurrency, args.seconds, args.max_requests,
                                                swap=repeat % 2 == 1))
            for concurrency in front_rows:
                front_rows[concurrency].append(paired(direct, mlserve, body, concurrency, args.seconds,
                                                      args.max_requests, swap=repeat % 2 == 1))
            if 32 in front_rows and repeat < CPU_REPEATS:  # where the front's cost shows: its CPU, beside Triton's
                cpu_rows.append(tuple(measured_cpu(triton.process.pid, port, body, 32, args.seconds,
                                                   args.max_requests) for port in (inner_port, triton.http)))
    except (RuntimeError, TimeoutError) as error:  # a server that did not start: its last lines say why
        say(f"a server did not start: {error}")
        return 1
    finally:
        say("stopping the servers")
        stop_and_clean(triton)
        if baseline is not None:
            baseline.terminate()
            baseline.wait(timeout=30)
    load_after = os.getloadavg()

    console.print(baseline_table(rows, args.repeats))
    console.print(f"time from process start to ready: mlserve (Triton) {triton_ready:.2f} s, "
                  f"FastAPI + ORT {baseline_ready:.2f} s")
    console.print(front_table(front_rows, args.repeats))
    if cpu_rows:
        console.print(cpu_table(cpu_rows))
    goals = goals_table(rows, front_rows)
    console.print(goals)
    console.print(f"{args.repeats} repeats of {args.seconds:g} s per measurement; load average (1 min) "
                  f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} CPUs; "
                  f"percentiles nearest-rank")
    for line in caveats(goal_figures(rows, front_rows), load_before[0], os.cpu_count() or 1):
        console.print(line)
    if args.large:
        say("the 224x224 table: starting a second Triton with a large-input model")
        try:
            console.print(large_input_table(args))
        except (RuntimeError, TimeoutError) as error:
            say(f"the large-input server did not start: {error}")
            return 1
    say("done")
    return 1 if args.check and not all(met for *_, met in goal_figures(rows, front_rows)) else 0


def _median_of(results: list[Result], figure) -> float:
    return statistics.median(figure(result) for result in results)


def baseline_table(rows: dict[int, list[tuple[Result, Result]]], repeats: int) -> Table:
    table = Table(title=escape(f"Sample model (ResNet-style, 1x3x32x32 FP32), v2 JSON over HTTP on 127.0.0.1: "
                               f"medians of {repeats} repeats [min-max]"))
    for column in ("concurrency", "server", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "req/s ratio"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for concurrency, pairs in rows.items():
        ratio = Spread.of([m.throughput / n.throughput if n.throughput else float("nan") for m, n in pairs])
        for index, name in ((0, "mlserve (front + Triton)"), (1, "FastAPI + ORT")):
            results = [pair[index] for pair in pairs]
            table.add_row(str(concurrency), name, Spread.of([r.throughput for r in results]).show(0),
                          *(f"{_median_of(results, lambda r, p=p: r.percentile(p)):.2f}" for p in (50, 95, 99)),
                          str(sum(r.errors for r in results)), ratio.show(2, "x") if index == 0 else "1.00x")
    return table


def front_table(front_rows: dict[int, list[tuple[Result, Result]]], repeats: int) -> Table:
    table = Table(title=escape(f"The front's cost: Triton's own port vs through the front (same requests), "
                               f"medians of {repeats} repeats [min-max]"))
    for column in ("concurrency", "path", "req/s", "p50 ms", "p99 ms", "errors", "req/s ratio", "p50 added ms"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for concurrency, pairs in front_rows.items():
        ratio = Spread.of([f.throughput / d.throughput if d.throughput else float("nan") for d, f in pairs])
        added = Spread.of([f.percentile(50) - d.percentile(50) for d, f in pairs])
        for index, name in ((0, "Triton directly"), (1, "through the front")):
            results = [pair[index] for pair in pairs]
            table.add_row(str(concurrency), name, Spread.of([r.throughput for r in results]).show(0),
                          f"{_median_of(results, lambda r: r.percentile(50)):.2f}",
                          f"{_median_of(results, lambda r: r.percentile(99)):.2f}", str(sum(r.errors for r in results)),
                          ratio.show(2, "x") if index else "1.00x", added.show(2) if index else "")
    return table


CPU_REPEATS = 2
"""Repeats that also measure each part's CPU per request at concurrency 32 (one more pair of loads each)."""
CPU_PARTS = ("front", "tritonserver", "python backend stubs")


def cpu_table(cpu_rows: list[tuple[Result, ...]]) -> Table:
    """CPU per request of each part at concurrency 32, from /proc: what the front costs, where the throughput ratio
    only shows it once the cores are saturated (docs/benchmark.md, "Where the time goes now")."""
    table = Table(title=escape(f"CPU per request at concurrency 32 (us, user + system, from /proc): medians of "
                               f"{len(cpu_rows)} repeats [min-max]"))
    for column in ("path", "req/s", *CPU_PARTS, "all"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for index, name in ((0, "Triton directly"), (1, "through the front")):
        measured = [(row[index], row[index].cpu_us) for row in cpu_rows if row[index].cpu_us]
        if not measured:
            continue
        parts = [Spread.of([cpu.get(part, 0.0) for _, cpu in measured if cpu]) for part in CPU_PARTS]
        total = Spread.of([sum(cpu.get(part, 0.0) for part in CPU_PARTS) for _, cpu in measured if cpu])
        table.add_row(name, Spread.of([r.throughput for r, _ in measured]).show(0),
                      *("-" if index == 0 and part == "front" else spread.show(0)
                        for part, spread in zip(CPU_PARTS, parts, strict=True)), total.show(0))
    return table


def goal_figures(rows, front_rows) -> list[tuple[str, str, Spread, bool]]:
    """(goal, target, measured over the repeats, met by the median) for each goal whose measurements ran."""
    figures = []
    if 32 in front_rows and front_rows[32]:
        ratio = Spread.of([f.throughput / d.throughput for d, f in front_rows[32]])
        figures.append(("through the front / Triton's own port, req/s at concurrency 32",
                        f">= {GOAL_FRONT_THROUGHPUT:.2f}x", ratio, ratio.median >= GOAL_FRONT_THROUGHPUT))
    if 1 in front_rows and front_rows[1]:
        added = Spread.of([f.percentile(50) - d.percentile(50) for d, f in front_rows[1]])
        figures.append(("p50 added by the front at concurrency 1 (ms)", f"<= {GOAL_FRONT_P50_MS:.2f}", added,
                        added.median <= GOAL_FRONT_P50_MS))
    if 32 in rows and rows[32]:
        ratio = Spread.of([m.throughput / n.throughput for m, n in rows[32]])
        figures.append(("mlserve / FastAPI + ONNX Runtime, req/s at concurrency 32", f">= {GOAL_BASELINE:.1f}x",
                        ratio, ratio.median >= GOAL_BASELINE))
    return figures


NOISY_SPREAD = 0.10  # a ratio whose repeats span more than this share of its median: the machine was busy
DOCS = "docs/benchmark.md"


NOISY_LOAD_PER_CPU = 0.5
"""A 1-minute load average above this per CPU before the servers start: other work is using the cores. (After the
run says nothing: the bench's own servers and load keep both cores busy, so it ends near 3 on two CPUs anyway.)"""


def caveats(figures: list[tuple[str, str, Spread, bool]], load_before: float, cpus: int) -> list[str]:
    """What to make of the goals: a noisy run said as such (repeats spread wide, or the machine busy before the run
    began), and where a missed goal is explained."""
    lines = []
    noisy = [goal for goal, _, measured, _ in figures if "(ms)" not in goal and measured.median  # ratios only
             and (measured.high - measured.low) / abs(measured.median) > NOISY_SPREAD]
    if noisy or load_before > NOISY_LOAD_PER_CPU * cpus:
        why = f"{len(noisy)} ratio(s) spread over {NOISY_SPREAD:.0%} of their median" if noisy else \
            f"the load average was {load_before:.2f} on {cpus} CPUs before the servers started"
        lines.append(f"noisy run: {why}; something else used the cores. Rerun on a quiet machine before quoting "
                     "these figures.")
    if not all(met for *_, met in figures):
        lines.append(f"a goal was missed: {DOCS} (\"Where the time goes now\") says where the time goes and why.")
    return lines


def goals_table(rows, front_rows) -> Table:
    table = Table(title="Goals (docs/benchmark.md), judged on the median over the repeats")
    for column in ("goal", "target", "median [min-max]", "met"):
        table.add_column(escape(column), justify="left" if column == "goal" else "right")
    for goal, target, measured, met in goal_figures(rows, front_rows):
        table.add_row(goal, target, measured.show(2), "yes" if met else "NO")
    return table


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
        stop_and_clean(server)
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
