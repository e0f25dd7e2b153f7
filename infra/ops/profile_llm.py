"""`python -m infra.ops profile` for an LLM deployment: what one vLLM replica streams within the TTFT and ITL SLOs.

An LLM's request is not one latency: a user waits for the first token (TTFT, time to first token), then reads the
answer at the pace of the gaps between tokens (ITL, inter-token latency), and a replica's capacity is the tokens per
second it generates while both stay within their SLOs. So each step of the sweep keeps N streaming
`/v1/chat/completions` requests in flight (`stream: true`, `stream_options.include_usage` so the last chunk carries
the token counts the server counted) and records per request the time to its first content chunk, the gaps between
its content chunks, its output tokens (from `usage`), or its error. A chunk may carry more than one token when the
server batches its stream (`mean_tokens_per_chunk` in a step's summary says so); the gaps are what a client sees,
which is what the SLO is about. They include the server's delivery: a front end short of CPU sends a stream in bursts
(seen with vLLM on 2 CPU cores: its own histograms said TTFT 6 ms and ITL 2 ms while clients saw TTFT 250 ms and gaps
near 0, the tokens arriving together at the end), which the TTFT SLO catches and the ITL figures alone would not.

Each step is bounded in time (no request starts after `seconds`; each request is bounded by `request_timeout`) and
in count (`max_requests`), so a slow or hung server ends the sweep instead of hanging it. Every request asks for
exactly `max_tokens` tokens (`ignore_eos`, a vLLM sampling parameter; `vllm bench serve` does the same), so steps
are comparable whatever the model would have said. Each prompt starts with a different number, so the server's
prefix cache cannot serve one request's prompt from another's.

Only the standard library, aiohttp and numpy: this module runs in the infra world (.venv) and beside the real server
in the LLM test world (.venv-llm) alike.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

MAX_STEP_SECONDS = 120
CHAT_PATH = "/v1/chat/completions"
# Common English words: one token each in the usual BPE vocabularies, so a prompt of n words is about n tokens (the
# server's own count comes back in usage.prompt_tokens and is reported).
WORDS = ("the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "on", "by", "at", "from",
         "this", "which", "or", "are", "an", "be", "not", "but", "have", "all", "one", "can", "time", "day")


@dataclass(frozen=True)
class LlmTarget:
    base_url: str
    """A server (`http://127.0.0.1:8000`, a pod: `/v1/chat/completions` is appended) or an OpenAI base URL, which
    ends in `/v1` (the gateway's stage URL, `https://<api>.execute-api.<region>.amazonaws.com/v1`: `/chat/completions`
    is appended), as OpenAI's SDKs take it."""
    model: str
    """The served model name (`vllm serve --served-model-name`), what `GET /v1/models` lists."""
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with every request: an API key (`x-api-key`) or a bearer token for the gateway."""

    @property
    def chat_url(self) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}{CHAT_PATH.removeprefix('/v1')}" if base.endswith("/v1") else f"{base}{CHAT_PATH}"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank, a value that was observed (numpy's inverted_cdf, as `infra.ops profile` and `make bench-serving`
    report them): the p50 of [1, 2, 3, 4] ms is 2 ms; no values is infinitely slow (it meets no SLO)."""
    if not values:
        return math.inf
    return float(np.percentile(values, p, method="inverted_cdf"))


@dataclass
class LlmStep:
    concurrency: int
    requests: int = 0
    """Requests answered in full: status 200, at least one content chunk, usage, and `data: [DONE]`."""
    errors: int = 0
    seconds: float = 0.0
    output_tokens: int = 0
    prompt_tokens: int = 0
    content_chunks: int = 0
    ttft_ms: list[float] = field(default_factory=list, repr=False)
    """Per answered request: from sending it to its first chunk with content."""
    itl_ms: list[float] = field(default_factory=list, repr=False)
    """Every gap between two consecutive content chunks of one request, over the step's answered requests."""
    error_samples: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        """Output tokens per second over the whole step (the replica's generation rate at this concurrency)."""
        return self.output_tokens / self.seconds if self.seconds else 0.0

    def ttft(self, p: float) -> float:
        return percentile(self.ttft_ms, p)

    def itl(self, p: float) -> float:
        return percentile(self.itl_ms, p)

    def meets(self, ttft_p99_ms: float, itl_p99_ms: float) -> bool:
        return (self.errors == 0 and self.requests > 0 and self.ttft(99) <= ttft_p99_ms
                and self.itl(99) <= itl_p99_ms)

    def summary(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "seconds": round(self.seconds, 3), "throughput_rps": round(self.throughput, 3),
                "output_tokens_per_second": round(self.tokens_per_second, 2),
                "mean_prompt_tokens": round(self.prompt_tokens / self.requests, 1) if self.requests else None,
                "mean_output_tokens": round(self.output_tokens / self.requests, 1) if self.requests else None,
                "mean_tokens_per_chunk": round(self.output_tokens / self.content_chunks, 2)
                if self.content_chunks else None,
                **{f"ttft_p{p}_ms": round(self.ttft(p), 2) for p in (50, 95, 99)},
                **{f"itl_p{p}_ms": round(self.itl(p), 2) for p in (50, 95, 99)},
                "error_samples": self.error_samples[:3]}


def prompt(index: int, prompt_tokens: int) -> str:
    """About `prompt_tokens` tokens, led by the request's own number so no two prompts share a cached prefix."""
    rng = np.random.default_rng(index)
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), max(0, prompt_tokens - 1))]
    return " ".join([str(index), *words])


def request_body(target: LlmTarget, index: int, prompt_tokens: int, max_tokens: int) -> dict[str, Any]:
    return {"model": target.model, "messages": [{"role": "user", "content": prompt(index, prompt_tokens)}],
            "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True},
            "ignore_eos": True, "temperature": 0}


class StreamError(Exception):
    """A request that did not stream a whole answer (its sample is what the step's error_samples keep)."""


async def stream_one(session: aiohttp.ClientSession, target: LlmTarget, body: dict[str, Any]
                     ) -> tuple[float, list[float], int, int]:
    """One streaming request: (TTFT ms, ITL gaps ms, output tokens, prompt tokens), or StreamError."""
    started = time.perf_counter()
    chunk_times: list[float] = []
    usage: dict[str, Any] | None = None
    done = False
    async with session.post(target.chat_url, json=body, headers=target.headers) as response:
        if response.status != 200:
            raise StreamError(f"{response.status}: {(await response.read())[:200]!r}")
        async for raw in response.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, SSE comments
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if not isinstance(chunk, dict):
                raise StreamError(f"not a chunk object: {data[:200]!r}")
            if "error" in chunk:
                raise StreamError(f"error in stream: {str(chunk['error'])[:200]}")
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ()):
                chunk_times.append(time.perf_counter())
            if chunk.get("usage"):
                usage = chunk["usage"]
    if not done:
        raise StreamError("stream ended without data: [DONE]")
    if not chunk_times:
        raise StreamError("no content chunk in the stream")
    if usage is None:
        raise StreamError("no usage in the stream (the server ignored stream_options.include_usage)")
    gaps = [(b - a) * 1000 for a, b in zip(chunk_times, chunk_times[1:], strict=False)]
    return (chunk_times[0] - started) * 1000, gaps, int(usage.get("completion_tokens", 0)), \
        int(usage.get("prompt_tokens", 0))


async def run_step(session: aiohttp.ClientSession, target: LlmTarget, concurrency: int, seconds: float,
                   max_requests: int, prompt_tokens: int, max_tokens: int, first_index: int = 0) -> LlmStep:
    """`concurrency` workers, each sending its next request when the last one ends, until `seconds` have passed or
    `max_requests` have been sent."""
    step = LlmStep(concurrency)
    sent = [0]
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline and sent[0] < max_requests:
            index = first_index + sent[0]
            sent[0] += 1
            try:
                ttft, gaps, output, prompt_count = await stream_one(
                    session, target, request_body(target, index, prompt_tokens, max_tokens))
            except (StreamError, TimeoutError, aiohttp.ClientError, ValueError) as error:
                step.errors += 1
                if len(step.error_samples) < 3:
                    step.error_samples.append(str(error) if isinstance(error, StreamError) else repr(error))
                continue
            step.requests += 1
            step.ttft_ms.append(ttft)
            step.itl_ms.extend(gaps)
            step.content_chunks += len(gaps) + 1
            step.output_tokens += output
            step.prompt_tokens += prompt_count

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    step.seconds = time.monotonic() - started
    return step


async def sweep(target: LlmTarget, concurrencies: list[int], seconds: float, max_requests: int, prompt_tokens: int,
                max_tokens: int, warmup_seconds: float = 1.0, request_timeout: float = 120.0) -> list[LlmStep]:
    """One step per concurrency, in the order given, after a warm-up at the highest one (its figures are dropped: a
    first request pays for the server's lazy start-up). Each request is bounded by `request_timeout` seconds."""
    if not 0 < seconds <= MAX_STEP_SECONDS or max_requests < 1 or prompt_tokens < 1 or max_tokens < 1 \
            or any(c < 1 for c in concurrencies):
        raise ValueError(f"seconds must be in (0, {MAX_STEP_SECONDS}]; concurrencies, max_requests, prompt_tokens "
                         "and max_tokens at least 1")
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        if warmup_seconds > 0:  # numbered after every measured request: no prompt of a step is already cached
            await run_step(session, target, max(concurrencies), warmup_seconds, max(concurrencies), prompt_tokens,
                           max_tokens, first_index=len(concurrencies) * max_requests)
        steps = []
        for number, concurrency in enumerate(concurrencies):
            steps.append(await run_step(session, target, concurrency, seconds, max_requests, prompt_tokens,
                                        max_tokens, first_index=number * max_requests))
        return steps


def recommend(steps: list[LlmStep], ttft_p99_ms: float, itl_p99_ms: float) -> dict[str, Any]:
    """The highest concurrency whose TTFT p99 and ITL p99 met the SLOs with no errors, and the output tokens per
    second one replica generated there; `concurrency` None when no step met them."""
    within = [s for s in steps if s.meets(ttft_p99_ms, itl_p99_ms)]
    best = max(within, key=lambda s: s.concurrency, default=None)
    slo = {"ttft_p99_ms": ttft_p99_ms, "itl_p99_ms": itl_p99_ms}
    if best is None:
        return {"concurrency": None, "tokens_per_second": None, "slo": slo,
                "reason": f"no step met TTFT p99 <= {ttft_p99_ms:g} ms and ITL p99 <= {itl_p99_ms:g} ms "
                          "without errors"}
    return {"concurrency": best.concurrency, "tokens_per_second": round(best.tokens_per_second, 2), "slo": slo,
            "step": best.summary()}


def config_lines(rec: dict[str, Any]) -> list[str]:
    """The deployment's keys to set from a recommendation (per replica); none when no step met the SLOs."""
    if rec.get("concurrency") is None:
        return []
    return [f"autoscaling.target_concurrency: {rec['concurrency']}",
            f"llm.tokens_per_second_at_slo: {rec['tokens_per_second']:.1f}"]


def step_line(step: LlmStep, rec: dict[str, Any]) -> str:
    """One step as the CLI prints it (LEGEND says what each column means)."""
    slo = rec["slo"]
    verdict = "meets" if step.concurrency == rec["concurrency"] else \
        ("ok" if step.meets(slo["ttft_p99_ms"], slo["itl_p99_ms"]) else "over")
    return (f"concurrency {step.concurrency:>4}: {step.throughput:7.2f} req/s {step.tokens_per_second:9.1f} tok/s  "
            f"TTFT p50 {step.ttft(50):7.1f} p95 {step.ttft(95):7.1f} p99 {step.ttft(99):7.1f} ms  "
            f"ITL p50 {step.itl(50):6.1f} p95 {step.itl(95):6.1f} p99 {step.itl(99):6.1f} ms  "
            f"errors {step.errors}  {verdict}")


LEGEND = ("columns: concurrency = streaming requests kept in flight; req/s = answered requests per second over the "
          "step; tok/s = output tokens per second (from each answer's usage); TTFT = time to the first content chunk, "
          "ITL = gaps between content chunks, p50/p95/p99 in ms (nearest-rank); errors = requests that failed, timed "
          "out or streamed no whole answer; meets = the highest concurrency with TTFT p99 and ITL p99 within the SLOs "
          "and no errors, ok = also within them, over = a p99 above its SLO or errors")


def report(target: LlmTarget, steps: list[LlmStep], rec: dict[str, Any], prompt_tokens: int,
           max_tokens: int) -> dict[str, Any]:
    return {"target": target.chat_url, "model": target.model, "prompt_tokens": prompt_tokens,
            "max_tokens": max_tokens, "steps": [s.summary() for s in steps], "recommendation": rec,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
