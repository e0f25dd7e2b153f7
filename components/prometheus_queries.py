"""The PromQL mlserve asks of a KServe deployment: what KEDA scales on, what Alertmanager pages on and what the
Grafana dashboard shows, over Triton's metrics (port 8002, `nv_inference_*`) or vLLM's (`vllm:*`, components/vllm.py).
One vocabulary, so the scaler, the alerts and the dashboard read the same series the same way.
"""

from __future__ import annotations

from . import vllm
from .names import (
    INTER_TOKEN_LATENCY,
    KSERVE_ERROR_RATE,
    P99_LATENCY,
    SCALING_SIGNAL_ABSENT,
    TIME_TO_FIRST_TOKEN,
    kserve_alert_name,
    predictor_name,
)


def _alert(name: str, namespace: str, role: str, expr: str, summary: str, wait: str = "5m") -> dict:
    """One alerting rule of a deployment, labelled so Alertmanager groups it and the rollout finds it."""
    return {"alert": kserve_alert_name(name, role), "expr": expr, "for": wait,
            "labels": {"deployment": name, "namespace": namespace, "severity": "page"},
            "annotations": {"summary": summary}}


def slo_alert_rules(name: str, namespace: str, p99_latency_ms: float, error_rate_percent: float) -> list[dict]:
    """Prometheus alerting rules for one deployment's SLOs (what EndpointAlarms are for SageMaker), over both tracks.

    Latency reads Triton's p99 summary (`summary_latencies=true` in KServe mode); errors are failures over all
    requests. Alertmanager sends them to the stack's SNS topic."""
    where = f'namespace="{namespace}"'
    # REJECTED: shed by the model's queue policy (overload, answered 429 by the front), not a server fault.
    failures = f'sum(rate(nv_inference_request_failure{{{where},reason!="REJECTED"}}[5m]))'
    successes = f"sum(rate(nv_inference_request_success{{{where}}}[5m]))"
    return [
        _alert(name, namespace, P99_LATENCY,
               f'max(nv_inference_request_summary_us{{{where},quantile="0.99"}}) / 1000 > {p99_latency_ms:g}',
               f"p99 latency of {name} above {p99_latency_ms:g} ms"),
        _alert(name, namespace, KSERVE_ERROR_RATE,
               f"100 * {failures} / clamp_min({failures} + {successes}, 1e-9) > {error_rate_percent:g}",
               f"errors of {name} above {error_rate_percent:g}% of requests"),
    ]


def in_flight_query(namespace: str, isvc: str) -> str:
    """Requests in flight over an InferenceService's pods (Little's law: busy seconds per second): what KEDA scales on
    and the Grafana dashboard shows."""
    return f"sum(rate(nv_inference_request_duration_us{{{_pods(namespace, isvc)}}}[1m])) / 1000000"


def _pods(namespace: str, isvc: str) -> str:
    return f'namespace="{namespace}",pod=~"{predictor_name(isvc)}-.*"'


def vllm_waiting_query(namespace: str, isvc: str) -> str:
    """Requests vLLM's scheduler has not started, over an InferenceService's pods: a replica with waiting requests
    is full (its batch is at max_num_seqs, or its KV cache is), so KEDA adds one per `scale_at_waiting` of them."""
    return f"sum({vllm.NUM_REQUESTS_WAITING}{{{_pods(namespace, isvc)}}})"


def vllm_kv_cache_query(namespace: str, isvc: str) -> str:
    """KV-cache use in percent, summed over the pods (KEDA's AverageValue divides by replicas): it fills before
    requests wait, so scaling on it adds a replica before anyone queues."""
    return f"sum({vllm.KV_CACHE_USAGE}{{{_pods(namespace, isvc)}}}) * 100"


def _p99_ms(series: str, where: str) -> str:
    return f"histogram_quantile(0.99, sum by (le) (rate({series}_bucket{{{where}}}[5m]))) * 1000"


def llm_slo_alert_rules(name: str, namespace: str, ttft_p99_ms: float, itl_p99_ms: float, p99_latency_ms: float,
                        error_rate_percent: float) -> list[dict]:
    """An LLM deployment's SLO alerts over vLLM's own histograms and its HTTP status counts (both tracks).

    Time to first token and inter-token latency are what a chat user feels; the whole request's p99 bounds
    generations that run long. Errors are 5xx answers of the OpenAI routes over all their answers."""
    where = f'namespace="{namespace}"'
    answers = f'sum(rate({vllm.HTTP_REQUESTS}{{{where},handler=~"/v1/.*"}}[5m]))'
    failures = f'sum(rate({vllm.HTTP_REQUESTS}{{{where},handler=~"/v1/.*",status="5xx"}}[5m]))'
    return [
        _alert(name, namespace, TIME_TO_FIRST_TOKEN, f"{_p99_ms(vllm.TIME_TO_FIRST_TOKEN, where)} > {ttft_p99_ms:g}",
               f"p99 time to first token of {name} above {ttft_p99_ms:g} ms"),
        _alert(name, namespace, INTER_TOKEN_LATENCY, f"{_p99_ms(vllm.INTER_TOKEN_LATENCY, where)} > {itl_p99_ms:g}",
               f"p99 inter-token latency of {name} above {itl_p99_ms:g} ms"),
        _alert(name, namespace, P99_LATENCY, f"{_p99_ms(vllm.E2E_LATENCY, where)} > {p99_latency_ms:g}",
               f"p99 request latency of {name} above {p99_latency_ms:g} ms"),
        _alert(name, namespace, KSERVE_ERROR_RATE,
               f"100 * {failures} / clamp_min({answers}, 1e-9) > {error_rate_percent:g}",
               f"errors of {name} above {error_rate_percent:g}% of requests"),
        # KEDA reads a missing series as 0 (ignoreNullValues), so a lost scrape would hold the fleet at its minimum
        # without a word: say so while replicas are up.
        _alert(name, namespace, SCALING_SIGNAL_ABSENT,
               f"absent({vllm.NUM_REQUESTS_WAITING}{{{where}}}) and on() "
               f"sum(kube_deployment_status_replicas_available{{{where}}}) > 0",
               f"{name} serves but Prometheus reads none of vLLM's queue: KEDA cannot scale it", wait="10m"),
    ]
