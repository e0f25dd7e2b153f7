"""/metrics carries every series mlserve's scaler, alerts and dashboard read (components.vllm), and the queue KEDA
scales on is real: with more requests in flight than --max-num-seqs, vllm:num_requests_waiting rises above 0."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

from components.vllm import DASHBOARD_SERIES, NUM_REQUESTS_RUNNING, NUM_REQUESTS_WAITING, REQUEST_SUCCESS

from .client import call, metrics

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported(samples: dict, series: str) -> bool:
    """A series as PromQL names it: a gauge or counter sample of that name, or a histogram's _bucket/_sum/_count."""
    return series in samples or all(series + suffix in samples for suffix in HISTOGRAM_SUFFIXES)


def test_every_series_mlserve_reads_is_exported_after_traffic(llm_server):
    for _ in range(2):
        answer = call(llm_server, "POST", "/v1/chat/completions",
                      {"model": llm_server.served_model_name, "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 4, "ignore_eos": True})
        assert answer.status == 200, answer
    samples = metrics(llm_server)
    missing = [s for s in DASHBOARD_SERIES if not exported(samples, s)]
    seen = sorted({name for name in samples if name.startswith("vllm:")})
    assert not missing, f"not on /metrics: {missing}; vLLM exports: {seen}"
    # Labelled by the served model name: the dashboards and the scaler select on it.
    for series in DASHBOARD_SERIES:
        labels = [lab for lab, _ in samples.get(series) or samples[series + "_count"]]
        assert all(f'model_name="{llm_server.served_model_name}"' in lab for lab in labels), (series, labels)
    # Labelled `finished_reason` (not `finish_reason`, the OpenAI field's name): a query must select on that.
    finished = {lab: value for lab, value in samples[REQUEST_SUCCESS]}
    assert {"stop", "length", "abort", "error"} <= {reason for lab in finished
                                                    for reason in re.findall(r'finished_reason="(\w+)"', lab)}, finished
    assert any('finished_reason="length"' in lab and value >= 2 for lab, value in finished.items()), finished


def test_requests_beyond_max_num_seqs_wait_and_the_gauge_shows_it(llm_server):
    # Each request asks for SEQUENCES completions (n): the engine schedules each as a sequence of its own, so a few
    # requests fill its queue at once. Many single-sequence requests did not, on two busy cores: the API server hands
    # them to the engine about as fast as the engine finishes them, and a sampled gauge then often reads 0.
    requests, sequences = 2 * llm_server.max_num_seqs, 4
    stop = threading.Event()
    seen: list[tuple[float, float]] = []  # (waiting, running) per poll of /metrics while the requests run
    failures: list[BaseException] = []

    def poll() -> None:
        while not stop.wait(0.02):
            try:
                samples = metrics(llm_server)
            except (OSError, AssertionError, KeyError, ValueError) as error:  # reported below, not lost in the thread
                failures.append(error)
                continue
            seen.append((sum(v for _, v in samples[NUM_REQUESTS_WAITING]),
                         sum(v for _, v in samples[NUM_REQUESTS_RUNNING])))

    # Long enough that the engine is still busy with the first two when the API server (on the same two cores)
    # has passed it the others: with 200 tokens each, an idle machine sometimes finished one before the next came.
    tokens = llm_server.max_model_len - 64

    def generate(index: int):
        return call(llm_server, "POST", "/v1/completions",
                    {"model": llm_server.served_model_name, "prompt": f"{index} once upon a time",
                     "max_tokens": tokens, "ignore_eos": True, "n": sequences}, timeout=180)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        with ThreadPoolExecutor(requests) as pool:
            answers = list(pool.map(generate, range(requests)))
    finally:
        stop.set()
        poller.join(10)
    assert all(a.status == 200 for a in answers), answers
    assert all(a.json()["usage"]["completion_tokens"] == sequences * tokens for a in answers)
    assert seen and max(waiting for waiting, _ in seen) > 0, (seen, failures)
    assert max(running for _, running in seen) <= llm_server.max_num_seqs, seen
    # Once they are done, nothing waits: the gauge falls back (a scaler scales in again).
    assert all(value == 0 for _, value in metrics(llm_server)[NUM_REQUESTS_WAITING])
