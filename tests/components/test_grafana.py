"""Grafana on the prod cluster: pinned chart, Prometheus as its data source, no public endpoint, a generated admin
secret, and a dashboard per KServe deployment built with grafana-foundation-sdk whose queries all name that
deployment's namespace and read metrics the cluster really has."""

import json
import re

import pytest

from tests.harness import raw_config, stack_plan

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "mlserve-prod-reranker"
# What the cluster's exporters publish: Triton's metrics (its docs' list), kube-state-metrics (the Prometheus
# chart's subchart) and dcgm-exporter's default counters.
TRITON = {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_request_summary_us",
          "nv_inference_queue_duration_us", "nv_inference_count", "nv_inference_exec_count",
          "nv_inference_request_duration_us"}
KUBE_STATE = {"kube_deployment_status_replicas_available", "kube_pod_status_phase"}
DCGM = {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP"}
PROMQL_WORDS = {"sum", "rate", "max", "avg", "by", "ceil", "clamp_min", "reason", "gpu", "Hostname"}


@pytest.fixture(scope="module")
def plan():
    return stack_plan("prod")


def grafana(plan):
    (release,) = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "grafana"]
    return release.inputs


def dashboard(plan):
    (config_map,) = [c for c in plan.of_type("kubernetes:core/v1:ConfigMap")
                     if c.inputs["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert config_map.inputs["metadata"]["namespace"] == "monitoring"
    return json.loads(config_map.inputs["data"]["reranker.json"])


def test_grafana_is_pinned_private_and_reads_prometheus(plan):
    release = grafana(plan)
    assert release["version"] == raw_config("prod")["mlserve:cluster"]["charts"]["grafana"]
    assert release["repositoryOpts"]["repo"] == "https://grafana-community.github.io/helm-charts"
    values = release["values"]
    assert values["service"] == {"type": "ClusterIP"} and values["ingress"] == {"enabled": False}
    assert values["grafana.ini"]["auth.anonymous"] == {"enabled": False}
    assert values["grafana.ini"]["users"] == {"allow_sign_up": False}
    (source,) = values["datasources"]["datasources.yaml"]["datasources"]
    assert source["url"] == "http://prometheus-server.monitoring.svc.cluster.local:80" and source["uid"] == "prometheus"
    # The sidecar watches only its own namespace (no searchNamespace: the chart's default), with namespaced RBAC.
    assert "searchNamespace" not in values["sidecar"]["dashboards"] and values["rbac"]["namespaced"] is True
    assert values["nodeSelector"] == {"mlserve.io/node-group": "system"}


def test_the_admin_password_is_generated_and_kept_secret(plan):
    admin = grafana(plan)["values"]["admin"]
    (secret,) = [s for s in plan.of_type("kubernetes:core/v1:Secret") if s.inputs["metadata"]["name"] ==
                 admin["existingSecret"]]
    # Pulumi's secret wrapper: the generated password (RandomPassword) is encrypted in state, never plain.
    assert secret.inputs["stringData"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    assert secret.inputs["stringData"]["value"]["admin-user"] == "admin"
    assert plan.of_type("random:index/randomPassword:RandomPassword")[0].inputs["length"] == 32


def test_the_dashboard_shows_what_the_issue_asks_for(plan):
    titles = [p["title"] for p in dashboard(plan)["panels"]]
    assert titles == ["requests per second", "latency (Triton p50/p95/p99)", "queue time per request",
                      "batch size (requests per execution)", "replicas and pending pods",
                      "KEDA's signal: in-flight requests", "GPU utilization", "GPU memory and temperature"]


def test_every_query_names_the_deployment_and_reads_a_metric_the_cluster_has(plan):
    for panel in dashboard(plan)["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        for target in panel["targets"]:
            expr = target["expr"]
            assert f'namespace="{NAMESPACE}"' in expr, expr  # namespace= or DCGM's exported_namespace=
            metrics = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\{", expr))
            assert metrics and metrics <= TRITON | KUBE_STATE | DCGM, (panel["title"], metrics)


def test_the_keda_panel_plots_the_query_the_scaled_object_scales_on(plan):
    (scaler,) = [o for o in plan.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
                 if o.inputs["metadata"]["name"] == "reranker"]
    (trigger,) = scaler.inputs["spec"]["triggers"]
    (panel,) = [p for p in dashboard(plan)["panels"] if p["title"].startswith("KEDA")]
    assert panel["targets"][0]["expr"] == trigger["metadata"]["query"]
    assert panel["targets"][1]["expr"] == f"ceil(({trigger['metadata']['query']}) / {trigger['metadata']['threshold']})"
