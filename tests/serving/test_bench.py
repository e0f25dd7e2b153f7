"""bench/serving.py's figures: one percentile definition (nearest-rank), and ratios as a median and a range."""

import random
import time

import numpy as np
import pytest

from bench.serving import Spread, percentile


def test_percentiles_are_nearest_rank():
    assert percentile([1, 2, 3, 4], 50) == 2  # the ceil(0.5 * 4) = 2nd smallest
    assert percentile([4, 1, 3, 2], 75) == 3 and percentile([1, 2, 3, 4], 76) == 4
    assert percentile([1, 2, 3, 4], 0) == 1 and percentile([1, 2, 3, 4], 100) == 4
    assert percentile([7.5], 99) == 7.5
    assert percentile([], 50) != percentile([], 50)  # nan
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_nearest_rank_is_numpys_inverted_cdf_and_always_an_observed_value():
    rng = random.Random(0)
    for _ in range(200):
        values = [rng.lognormvariate(1, 0.5) for _ in range(rng.randint(1, 300))]
        for p in (1, 50, 90, 95, 99, 99.9, 100):
            assert percentile(values, p) == np.percentile(values, p, method="inverted_cdf")
            assert percentile(values, p) in values


def test_a_spread_is_the_median_and_the_range():
    spread = Spread.of([0.9, 1.1, 0.95, 1.0, 2.0])
    assert (spread.median, spread.low, spread.high) == (1.0, 0.9, 2.0)
    assert spread.show(2, "x") == "1.00x [0.90-2.00]"


class _Process:
    returncode = 0
    pid = 2**22  # above Linux's largest pid: no such process, its CPU reads as nothing

    def poll(self):
        return 0

    def terminate(self):
        pass

    def wait(self, timeout=None):
        return 0


def test_a_run_says_what_it_does_as_it_goes_and_leaves_no_log_behind(monkeypatch, tmp_path, capsys):
    """The servers and the load are stand-ins here (the real ones are the contract tests'): what is checked is what
    the run prints while it runs, and that the server logs it made are gone afterwards."""
    import bench.serving as bench
    from serving_image import local_server

    logs = []

    def start(*args, **kwargs):
        log = tmp_path / f"mlserve-serve-{len(logs)}.log"
        log.write_text("serve: ready\n")
        logs.append(log)
        return local_server.LocalServer(_Process(), 1, 2, 3, log)

    monkeypatch.setattr(local_server, "start", start)
    monkeypatch.setattr(local_server, "wait_ready", lambda server, timeout=60: 0.5)
    monkeypatch.setattr(local_server, "stop", lambda server, timeout=30: 0)
    monkeypatch.setattr(bench, "start_baseline", lambda: (_Process(), 4, 0.25))
    monkeypatch.setattr(bench, "load", lambda port, body, concurrency, seconds, max_requests, headers=None, path="":
                        bench.Result(concurrency, 10, 0, 1.0, [float(port)] * 10))
    assert bench.main(["--seconds", "1", "--repeats", "2", "--concurrency", "1", "8", "32"]) == 0
    progress = capsys.readouterr().err.splitlines()
    # 2 repeats x (3 pairs + 2 front pairs) x 2 loads x 1 s, the CPU pair at 32 in 2 repeats x 2 loads x 1 s,
    # 3 ports x 3 concurrencies x 0.5 s of warm-up, and the 224x224 table's 2 concurrencies x 2 encodings x
    # (1 s + 0.5 s of warm-up): 20 + 4 + 4.5 + 6 = 34.5
    assert progress[0] == ("bench: about 34 s of measurements after the servers start (2 repeats of 1 s per "
                           "measurement); the tables follow at the end")
    assert "bench: starting the local Triton (the front and Triton, the sample model)" in progress
    assert "bench: repeat 2/2: concurrency 1, 8, 32 against both servers, then the front's cost at 1 and 32" in progress
    assert progress[-1] == "bench: done"
    assert len(logs) == 2 and not any(log.exists() for log in logs)  # the main run's and the 224x224 table's


def _serve(answer):
    """A kept-alive HTTP/1.1 server on 127.0.0.1 whose `answer(n)` for the n-th request is a status, or None to
    drop the connection without answering. Returns (server, port); the caller shuts it down."""
    import itertools
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    counter = itertools.count()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            status = answer(next(counter))
            if status is None:
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_the_load_generator_counts_answers_and_errors_and_stops_at_its_budget():
    from bench.serving import load

    server, port = _serve(lambda n: 500 if n % 4 == 3 else 200)
    try:
        result = load(port, b'{"inputs": []}', concurrency=3, seconds=20, max_requests=40)
    finally:
        server.shutdown()
        server.server_close()
    assert result.requests + result.errors == 40  # the budget, not the 20 s, ended it
    assert result.errors == 10 and result.requests == 30  # every fourth request answered 500
    assert result.seconds < 20 and len(result.latencies_ms) == 30 and min(result.latencies_ms) > 0


def test_a_connection_the_server_drops_is_an_error_and_the_run_still_ends():
    from bench.serving import load

    server, port = _serve(lambda n: None if n == 0 else 200)
    try:
        result = load(port, b"{}", concurrency=2, seconds=10, max_requests=30)
    finally:
        server.shutdown()
        server.server_close()
    assert result.errors == 1  # the dropped request; that connection stops, the other goes on to the budget
    assert result.requests == 29 and result.seconds < 10


def test_a_noisy_run_and_a_missed_goal_are_said_under_the_goals():
    from bench.serving import caveats

    steady = ("ratio at 32", ">= 0.95x", Spread.of([0.96, 0.97, 0.98]), True)
    added = ("p50 added at 1 (ms)", "<= 0.30", Spread.of([-0.5, 0.2, 0.9]), True)  # ms: its spread is not a ratio's
    assert caveats([steady, added], 0.4, 2) == []  # an idle machine (the run's own load is not noise)
    wide = ("ratio at 32", ">= 0.95x", Spread.of([0.74, 0.87, 1.20]), False)
    lines = caveats([wide, added], 0.4, 2)
    assert lines[0].startswith("noisy run: 1 ratio(s) spread over 10% of their median")
    assert lines[1].startswith("a goal was missed: docs/benchmark.md")
    assert caveats([steady], 2.4, 2)[0].startswith("noisy run: the load average was 2.40 on 2 CPUs before the "
                                                   "servers started")
    assert caveats([steady], 2.4, 8) == []  # the same load on eight CPUs leaves the bench its cores


def test_a_process_trees_cpu_is_read_by_part_and_counts_its_children():
    """processes_cpu sums a tree from /proc: the root reads as 'front', a child burning CPU under its own name."""
    import subprocess
    import sys

    from bench.serving import processes_cpu

    burn = "import time\nend = time.monotonic() + 10\nwhile time.monotonic() < end: pass\n"
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys\n"
                               f"subprocess.run([sys.executable, '-c', {burn!r}])"])
    try:
        deadline = time.monotonic() + 20
        children = 0.0
        while time.monotonic() < deadline and children < 0.2:
            time.sleep(0.1)
            parts = processes_cpu(parent.pid)
            children = sum(seconds for part, seconds in parts.items() if part != "front")
        assert "front" in parts and children >= 0.2  # the child's busy loop, found through its parent
        assert parts["front"] < children  # the parent only waits
    finally:  # the busy child first, then the parent
        import psutil

        for child in psutil.Process(parent.pid).children():
            child.terminate()
        parent.terminate()
        parent.wait(timeout=10)


def test_the_cpu_table_shows_each_part_per_request_and_no_front_on_the_direct_path():
    from rich.console import Console

    from bench.serving import Result, cpu_table

    def result(rps, **cpu):
        return Result(32, rps, 0, 1.0, [1.0] * rps, {k.replace("_", " "): v for k, v in cpu.items()})

    rows = [(result(2000, front=0.0, tritonserver=330.0, python_backend_stubs=500.0),
             result(1800, front=100.0, tritonserver=340.0, python_backend_stubs=510.0))] * 2
    console = Console(width=200, record=True)
    console.print(cpu_table(rows))
    text = console.export_text()
    direct = next(line for line in text.splitlines() if "Triton directly" in line)
    front = next(line for line in text.splitlines() if "through the front" in line)
    assert "-" in direct.split("│")[3] and "830 [830-830]" in direct
    assert "100 [100-100]" in front and "950 [950-950]" in front
