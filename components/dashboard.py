"""Dashboard: one CloudWatch dashboard per stack, built from a small typed model of widgets (never a JSON string).

Per deployment: model latency percentiles, invocations and errors, GPU and GPU memory, instance count, the gateway's
latency, errors and request count (429 throttles count as 4XX), and the drift index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from .names import DRIFT_MAX_PREDICTION_PSI, DRIFT_MAX_PSI, DRIFT_METRIC_NAMESPACE


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str = "Average"
    id: str | None = None
    label: str | None = None
    visible: bool = True

    def as_json(self) -> list:
        options: dict[str, str | bool] = {"stat": self.stat}
        options.update({k: v for k, v in (("id", self.id), ("label", self.label)) if v})
        if not self.visible:
            options["visible"] = False
        return [self.namespace, self.name, *[x for kv in self.dimensions.items() for x in kv], options]


@dataclass(frozen=True)
class Expression:
    expression: str
    label: str
    id: str

    def as_json(self) -> list:
        return [{"expression": self.expression, "label": self.label, "id": self.id}]


@dataclass(frozen=True)
class Graph:
    title: str
    metrics: Sequence[Metric | Expression]
    unit: str = ""
    period: int = 60

    def as_json(self, region: str, x: int, y: int) -> dict:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
            "title": self.title, "region": region, "view": "timeSeries", "period": self.period,
            "metrics": [m.as_json() for m in self.metrics], "yAxis": {"left": {"label": self.unit, "min": 0}}}}


@dataclass(frozen=True)
class DeploymentPanel:
    name: str
    endpoint_name: str | None = None  # SageMaker deployments; KServe model metrics live in Prometheus
    variant_name: str | None = None
    inference_component_name: str | None = None  # hosting: inference_components (metrics per component)
    api_name: str | None = None
    stage_name: str = "v1"
    drift: bool = False
    prediction_drift: bool = False  # the baseline watches outputs: their max PSI beside the inputs'


@dataclass(frozen=True)
class DashboardArgs:
    dashboard_name: str
    region: str
    deployments: list[DeploymentPanel] = field(default_factory=list)


def graphs_for(panel: DeploymentPanel) -> list[Graph]:
    graphs = sagemaker_graphs(panel) if panel.endpoint_name else []
    if panel.api_name:
        api = {"ApiName": panel.api_name, "Stage": panel.stage_name}
        graphs.append(Graph(f"{panel.name}: gateway", [
            Metric("AWS/ApiGateway", "Latency", api, stat="p99", label="p99 latency (ms)"),
            Metric("AWS/ApiGateway", "Count", api, stat="Sum"),
            Metric("AWS/ApiGateway", "4XXError", api, stat="Sum", label="4XX (incl. 429 throttled)"),
            Metric("AWS/ApiGateway", "5XXError", api, stat="Sum")]))
    if panel.drift:
        drifts = [Metric(DRIFT_METRIC_NAMESPACE, DRIFT_MAX_PSI, {"Deployment": panel.name}, stat="Maximum",
                         label="inputs")]
        if panel.prediction_drift:
            drifts.append(Metric(DRIFT_METRIC_NAMESPACE, DRIFT_MAX_PREDICTION_PSI, {"Deployment": panel.name},
                                 stat="Maximum", label="predictions"))
        graphs.append(Graph(f"{panel.name}: drift (PSI, max over features)", drifts, period=3600))
    return graphs


def sagemaker_graphs(panel: DeploymentPanel) -> list[Graph]:
    if panel.endpoint_name is None or panel.variant_name is None:
        raise ValueError(f"panel {panel.name}: SageMaker graphs need the endpoint and variant names")
    endpoint = {"EndpointName": panel.endpoint_name, "VariantName": panel.variant_name}
    sm = "AWS/SageMaker"
    if panel.inference_component_name:
        return inference_component_graphs(panel.name, {"InferenceComponentName": panel.inference_component_name})
    return [
        Graph(f"{panel.name}: model latency", [
            *[Metric(sm, "ModelLatency", endpoint, stat=p, id=p, visible=False) for p in ("p50", "p95", "p99")],
            *[Expression(f"{p} / 1000", f"{p} ms", f"{p}ms") for p in ("p50", "p95", "p99")]], unit="ms"),
        Graph(f"{panel.name}: invocations and errors", [
            Metric(sm, "Invocations", endpoint, stat="Sum"),
            Metric(sm, "Invocation4XXErrors", endpoint, stat="Sum"),
            Metric(sm, "Invocation5XXErrors", endpoint, stat="Sum")], unit="count"),
        Graph(f"{panel.name}: GPU", [
            Metric("/aws/sagemaker/Endpoints", "GPUUtilization", endpoint),
            Metric("/aws/sagemaker/Endpoints", "GPUMemoryUtilization", endpoint)], unit="%"),
        Graph(f"{panel.name}: instances", [
            Metric(sm, "Invocations", endpoint, stat="Sum", id="invocations", visible=False),
            Metric(sm, "InvocationsPerInstance", endpoint, stat="Sum", id="perinstance", visible=False),
            Expression("IF(perinstance > 0, invocations / perinstance, 0)", "instances in service", "instances")]),
    ]


def inference_component_graphs(title: str, component: dict[str, str]) -> list[Graph]:
    """An inference component reports per component (it may share its endpoint): latency, invocations, failures
    for want of a copy (scale from zero), GPU use normalized to the copies' reservation."""
    sm = "AWS/SageMaker"
    return [
        Graph(f"{title}: model latency", [
            *[Metric(sm, "ModelLatency", component, stat=p, id=p, visible=False) for p in ("p50", "p95", "p99")],
            *[Expression(f"{p} / 1000", f"{p} ms", f"{p}ms") for p in ("p50", "p95", "p99")]], unit="ms"),
        Graph(f"{title}: invocations and errors", [
            Metric(sm, "Invocations", component, stat="Sum"),
            Metric(sm, "Invocation4XXErrors", component, stat="Sum"),
            Metric(sm, "Invocation5XXErrors", component, stat="Sum"),
            Metric(sm, "NoCapacityInvocationFailures", component, stat="Sum",
                   label="no copy to serve (cold start)")], unit="count"),
        Graph(f"{title}: GPU (share of its reservation)", [
            Metric("/aws/sagemaker/InferenceComponents", "GPUUtilizationNormalized", component),
            Metric("/aws/sagemaker/InferenceComponents", "GPUMemoryUtilizationNormalized", component)], unit="%"),
    ]


def dashboard_body(args: DashboardArgs) -> dict:
    graphs = [g for panel in args.deployments for g in graphs_for(panel)]
    return {"widgets": [g.as_json(args.region, 12 * (i % 2), 6 * (i // 2)) for i, g in enumerate(graphs)]}


class Dashboard(pulumi.ComponentResource):
    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:Dashboard", name, None, opts)
        dashboard = aws.cloudwatch.Dashboard(f"{name}-dashboard", dashboard_name=args.dashboard_name,
                                             dashboard_body=json.dumps(dashboard_body(args)),
                                             opts=pulumi.ResourceOptions(parent=self))
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboard_name": dashboard.dashboard_name})
