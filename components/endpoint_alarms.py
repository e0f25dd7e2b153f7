"""EndpointAlarms: the alarms that guard a SageMaker endpoint and roll a bad deployment back.

They are declared before the endpoint, by name, because the endpoint's auto-rollback configuration lists them.
Latency and server errors roll back; client errors and GPU saturation page a person but do not roll back (a
client sending bad payloads is not a reason to undo a good model).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .names import (
    CLIENT_ERROR_RATE,
    GPU_MEMORY,
    GPU_UTILIZATION,
    P99_LATENCY,
    SERVER_ERROR_RATE,
    SERVICE_UNHEALTHY,
    alarm_name,
)

ENDPOINT_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"  # GPU and memory metrics of the instances
COMPONENT_NAMESPACE = "/aws/sagemaker/InferenceComponents"  # the same per inference component, normalized


@dataclass(frozen=True)
class EndpointAlarmsArgs:
    endpoint_name: str
    variant_name: str
    topic_arn: pulumi.Input[str]
    p99_latency_ms: int
    error_rate_percent: float
    client_error_rate_percent: float
    gpus_per_instance: int
    gpu_utilization_percent: int = 90
    gpu_memory_percent: int = 90
    inference_component_name: str | None = None
    """Inference components report invocations per component, and GPU use per component, normalized to 0-100."""

    @property
    def subject(self) -> str:
        """What the alarms are named after: the component (several may share one endpoint), else the endpoint."""
        return self.inference_component_name or self.endpoint_name


class EndpointAlarms(pulumi.ComponentResource):
    rollback_alarm_names: list[pulumi.Output[str]]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: EndpointAlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:EndpointAlarms", name, None, opts)
        self._args, self._name = args, name
        dimensions = {"EndpointName": args.endpoint_name, "VariantName": args.variant_name}
        gpu_namespace, gpu_metric, gpu_scale = INSTANCE_NAMESPACE, "GPU{}Utilization", args.gpus_per_instance
        if args.inference_component_name:
            dimensions = {"InferenceComponentName": args.inference_component_name}
            gpu_namespace, gpu_metric, gpu_scale = COMPONENT_NAMESPACE, "GPU{}UtilizationNormalized", 1

        latency = self._alarm(
            P99_LATENCY, f"p99 model latency of {args.subject} above {args.p99_latency_ms} ms",
            metric_name="ModelLatency", namespace=ENDPOINT_NAMESPACE, dimensions=dimensions, extended_statistic="p99",
            # ModelLatency is reported in microseconds.
            threshold=args.p99_latency_ms * 1000, evaluation_periods=5, datapoints_to_alarm=3)
        server_errors = self._rate_alarm(SERVER_ERROR_RATE, "Invocation5XXErrors", args.error_rate_percent, dimensions)
        client_errors = self._rate_alarm(CLIENT_ERROR_RATE, "Invocation4XXErrors", args.client_error_rate_percent, dimensions)
        # Per-instance GPU metrics add up over GPUs: 100% per GPU.
        gpu = self._alarm(
            GPU_UTILIZATION, f"GPU utilization of {args.subject} saturated",
            metric_name=gpu_metric.format(""), namespace=gpu_namespace, dimensions=dimensions, statistic="Average",
            threshold=args.gpu_utilization_percent * gpu_scale, evaluation_periods=15,
            datapoints_to_alarm=12)
        gpu_memory = self._alarm(
            GPU_MEMORY, f"GPU memory of {args.subject} nearly full",
            metric_name=gpu_metric.format("Memory"), namespace=gpu_namespace, dimensions=dimensions,
            statistic="Maximum", threshold=args.gpu_memory_percent * gpu_scale, evaluation_periods=5,
            datapoints_to_alarm=5)

        # One page for "the service is unhealthy", whichever signal saw it first.
        unhealthy = aws.cloudwatch.CompositeAlarm(
            f"{name}-unhealthy", alarm_name=alarm_name(args.subject, SERVICE_UNHEALTHY),
            alarm_description=f"{args.subject} breaches its latency or error SLO",
            alarm_rule=pulumi.Output.format('ALARM("{0}") OR ALARM("{1}")', latency.name, server_errors.name),
            actions_enabled=True, alarm_actions=[args.topic_arn], ok_actions=[args.topic_arn],
            opts=pulumi.ResourceOptions(parent=self))

        self.service_unhealthy_alarm_name = unhealthy.alarm_name
        self.rollback_alarm_names = [latency.name, server_errors.name]
        self.alarm_names = [a.name for a in (latency, server_errors, client_errors, gpu, gpu_memory)]
        self.register_outputs({"alarm_names": self.alarm_names, "rollback_alarm_names": self.rollback_alarm_names})

    def _alarm(self, role: str, description: str, **metric) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}", name=alarm_name(self._args.subject, role), alarm_description=description,
            comparison_operator="GreaterThanThreshold", period=60, treat_missing_data="notBreaching",
            actions_enabled=True, alarm_actions=[self._args.topic_arn], ok_actions=[self._args.topic_arn],
            opts=pulumi.ResourceOptions(parent=self), **metric)

    def _rate_alarm(self, role: str, error_metric: str, percent: float, dimensions: dict) -> aws.cloudwatch.MetricAlarm:
        """Errors as a share of invocations: a count threshold would page at night and sleep at peak."""
        def metric(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(id=query_id, return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    metric_name=metric_name, namespace=ENDPOINT_NAMESPACE, dimensions=dimensions, period=60,
                    stat="Sum"))

        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}", name=alarm_name(self._args.subject, role),
            alarm_description=f"{error_metric} above {percent}% of invocations on {self._args.subject}",
            comparison_operator="GreaterThanThreshold", threshold=percent, evaluation_periods=5, datapoints_to_alarm=3,
            treat_missing_data="notBreaching", actions_enabled=True, alarm_actions=[self._args.topic_arn],
            ok_actions=[self._args.topic_arn],
            metric_queries=[
                metric("errors", error_metric),
                metric("invocations", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate", expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                    label=f"{error_metric} %", return_data=True),
            ],
            opts=pulumi.ResourceOptions(parent=self))
