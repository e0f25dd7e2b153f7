"""The PromQL mlserve asks of a KServe deployment: what KEDA scales on, what Alertmanager pages on and what the
Grafana dashboard shows, over Triton's metrics (port 8002, `nv_inference_*`). One vocabulary, so the scaler, the
alerts and the dashboard read the same series the same way.
"""

from __future__ import annotations

from .names import KSERVE_ERROR_RATE, P99_LATENCY, kserve_alert_name


def slo_alert_rules(name: str, namespace: str, p99_latency_ms: float, error_rate_percent: float) -> list[dict]:
    """Prometheus alerting rules for one deployment's SLOs (what EndpointAlarms are for SageMaker), over both tracks.

    Latency reads Triton's p99 summary (`summary_latencies=true` in KServe mode); errors are failures over all
    requests. Alertmanager sends them to the stack's SNS topic."""
    where = f'namespace="{namespace}"'
    labels = {"deployment": name, "namespace": namespace, "severity": "page"}
    # REJECTED: shed by the model's queue policy (overload, answered 429 by the front), not a server fault.
    failures = f'sum(rate(nv_inference_request_failure{{{where},reason!="REJECTED"}}[5m]))'
    successes = f"sum(rate(nv_inference_request_success{{{where}}}[5m]))"
    return [
        {"alert": kserve_alert_name(name, P99_LATENCY),
         "expr": f'max(nv_inference_request_summary_us{{{where},quantile="0.99"}}) / 1000 > {p99_latency_ms:g}',
         "for": "5m", "labels": labels,
         "annotations": {"summary": f"p99 latency of {name} above {p99_latency_ms:g} ms"}},
        {"alert": kserve_alert_name(name, KSERVE_ERROR_RATE),
         "expr": f"100 * {failures} / clamp_min({failures} + {successes}, 1e-9) > {error_rate_percent:g}",
         "for": "5m", "labels": labels,
         "annotations": {"summary": f"errors of {name} above {error_rate_percent:g}% of requests"}},
    ]


def in_flight_query(namespace: str, isvc: str) -> str:
    """Requests in flight over an InferenceService's pods (Little's law: busy seconds per second): what KEDA scales on
    and the Grafana dashboard shows."""
    return (f'sum(rate(nv_inference_request_duration_us{{namespace="{namespace}",pod=~"{isvc}-predictor-.*"}}[1m]))'
            " / 1000000")
