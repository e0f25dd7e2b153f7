"""The Grafana dashboard of one KServe deployment, built with grafana-foundation-sdk (typed builders, not JSON).

Every query names the deployment's namespace, so one dashboard per deployment shows only its pods: Triton's request
rate, p50/p95/p99 latency (its summaries), queue time, failures and batch size; replicas and pending pods
(kube-state-metrics); GPU utilization, memory and temperature (dcgm-exporter, whose own `namespace` label of the pod
using the GPU Prometheus keeps as `exported_namespace`, the scrape's being the exporter's); and the signal KEDA scales
on, the ScaledObject's own query, beside the replicas it asks for.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from . import vllm

PROMETHEUS_UID = "prometheus"
"""The provisioned Prometheus data source's uid (components/grafana.py provisions it under this uid)."""


def _panel(title: str, unit: str, *queries: tuple[str, str]) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).unit(unit).height(8).span(12)
             .datasource(DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)))
    for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref))
    return panel


def _replicas_panel(ns: str) -> timeseries.Panel:
    return _panel("replicas and pending pods", "none",
                  (f'sum(kube_deployment_status_replicas_available{{{ns}}})', "available"),
                  (f'sum(kube_pod_status_phase{{{ns},phase="Pending"}})', "pending (waiting for a GPU node)"))


def _gpu_panels(namespace: str) -> list[timeseries.Panel]:
    """dcgm-exporter's view of the deployment's GPUs (its `namespace` label kept as `exported_namespace`)."""
    return [
        _panel("GPU utilization", "percent",
               (f'avg by (gpu, Hostname) (DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{namespace}"}})', "GPU {{gpu}}")),
        _panel("GPU memory and temperature", "none",
               (f'max by (gpu) (DCGM_FI_DEV_FB_USED{{exported_namespace="{namespace}"}})', "memory used MiB, GPU {{gpu}}"),
               (f'max by (gpu) (DCGM_FI_DEV_GPU_TEMP{{exported_namespace="{namespace}"}})', "temperature C, GPU {{gpu}}")),
    ]


def serving_dashboard(deployment: str, namespace: str, in_flight: str, target_concurrency: int) -> dict:
    """The dashboard as Grafana's JSON model; `in_flight` is the KEDA trigger's query, `target_concurrency` its
    threshold per replica."""
    ns = f'namespace="{namespace}"'
    rate = f"sum(rate(nv_inference_request_success{{{ns}}}[1m]))"
    board = (dashboard.Dashboard(f"mlserve: {deployment}").uid(f"mlserve-{namespace}"[:40])
             .tags(["mlserve", "kserve", deployment]).refresh("30s").time("now-3h", "now").timezone("utc")
             .readonly())
    panels = [
        _panel("requests per second", "reqps", (rate, "succeeded"),
               (f'sum(rate(nv_inference_request_failure{{{ns}}}[1m])) by (reason)', "failed: {{reason}}")),
        _panel("latency (Triton p50/p95/p99)", "ms", *[
            (f'max(nv_inference_request_summary_us{{{ns},quantile="{q}"}}) / 1000', f"p{int(float(q) * 100)}")
            for q in ("0.5", "0.95", "0.99")]),
        _panel("queue time per request", "ms",
               (f"sum(rate(nv_inference_queue_duration_us{{{ns}}}[1m])) / 1000 / clamp_min({rate}, 1e-9)", "queue")),
        _panel("batch size (requests per execution)", "none",
               (f"sum(rate(nv_inference_count{{{ns}}}[5m])) / clamp_min(sum(rate(nv_inference_exec_count{{{ns}}}[5m])),"
                " 1e-9)", "inferences per execution")),
        _replicas_panel(ns),
        _panel("KEDA's signal: in-flight requests", "none", (in_flight, "in flight"),
               (f"ceil(({in_flight}) / {target_concurrency})", f"replicas asked for (target {target_concurrency} each)")),
        *_gpu_panels(namespace),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))


def llm_dashboard(deployment: str, namespace: str, waiting: str, kv_cache: str, scale_at_waiting: int,
                  scale_at_kv_cache_percent: int) -> dict:
    """An LLM deployment's dashboard over vLLM's own series: what a user feels (time to first token, inter-token
    latency), what the fleet delivers (tokens per second, requests by how they finished), and the two signals KEDA
    scales on (`waiting`, `kv_cache`: the ScaledObject's own queries) beside the replicas each asks for."""
    ns = f'namespace="{namespace}"'

    def quantiles(series: str) -> list[tuple[str, str]]:
        return [(f"histogram_quantile({q}, sum by (le) (rate({series}_bucket{{{ns}}}[5m]))) * 1000", f"p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)]

    board = (dashboard.Dashboard(f"mlserve: {deployment} (LLM)").uid(f"mlserve-{namespace}"[:40])
             .tags(["mlserve", "kserve", "llm", deployment]).refresh("30s").time("now-3h", "now").timezone("utc")
             .readonly())
    panels = [
        _panel("time to first token", "ms", *quantiles(vllm.TIME_TO_FIRST_TOKEN)),
        _panel("inter-token latency", "ms", *quantiles(vllm.INTER_TOKEN_LATENCY)),
        _panel("tokens per second", "none",
               (f"sum(rate({vllm.GENERATION_TOKENS}{{{ns}}}[1m]))", "generated"),
               (f"sum(rate({vllm.PROMPT_TOKENS}{{{ns}}}[1m]))", "prompt")),
        _panel("finished requests per second", "reqps",
               (f"sum by (finished_reason) (rate({vllm.REQUEST_SUCCESS}{{{ns}}}[1m]))", "{{finished_reason}}"),
               (f'sum(rate({vllm.HTTP_REQUESTS}{{{ns},handler=~"/v1/.*",status="5xx"}}[1m]))', "5xx"),
               (f'sum(rate({vllm.HTTP_REQUESTS}{{{ns},handler=~"/v1/.*",status="4xx"}}[1m]))', "4xx")),
        _panel("KEDA's signal: queue depth", "none",
               (waiting, "waiting"), (f"sum({vllm.NUM_REQUESTS_RUNNING}{{{ns}}})", "running"),
               (f"ceil(({waiting}) / {scale_at_waiting})", f"replicas asked for ({scale_at_waiting} waiting each)")),
        _panel("KEDA's signal: KV-cache use", "percent",
               (f"max({vllm.KV_CACHE_USAGE}{{{ns}}}) * 100", "fullest replica"),
               (f"ceil(({kv_cache}) / {scale_at_kv_cache_percent})",
                f"replicas asked for ({scale_at_kv_cache_percent}% each)")),
        _replicas_panel(ns),
        *_gpu_panels(namespace),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
