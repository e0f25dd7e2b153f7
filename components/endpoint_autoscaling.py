"""EndpointAutoscaling: instance count of a SageMaker variant follows its load.

Two target-tracking policies: the load signal and GPU utilization (for models whose cost per request varies). The load
signal is either invocations per instance (one-minute metric, the SLO-derived target) or, when a concurrency target
was measured, concurrent requests per instance at high resolution (10-second metric: scale-out starts within a
minute of a burst instead of several). Application Auto Scaling scales out when either asks and in only when both allow,
and scale-in waits longer than scale-out so a brief lull does not drop capacity a returning peak needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .scale_from_zero import wake_from_zero


@dataclass(frozen=True)
class EndpointAutoscalingArgs:
    variant_name: str
    min_capacity: int
    max_capacity: int
    invocations_per_instance_per_minute: int | None
    """One-minute invocations target; None when concurrent_requests_per_instance is given."""
    gpus_per_instance: int
    concurrent_requests_per_instance: int | None = None
    """In-flight requests per instance at the SLO (`infra.ops profile`): tracked on the high-resolution metric."""
    backlog_per_instance: int | None = None
    """Async endpoints: queued requests per instance to track; min_capacity may then be 0, and a backlog with no
    instance at all wakes the first one (target tracking alone never scales out from zero)."""
    gpu_utilization_target_percent: int = 70
    scale_in_cooldown_seconds: int = 600
    scale_out_cooldown_seconds: int = 60


class EndpointAutoscaling(pulumi.ComponentResource):
    def __init__(self, name: str, args: EndpointAutoscalingArgs, endpoint_name: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        """`endpoint_name`: the scaled endpoint's name as its component's output, so that scaling waits for it."""
        super().__init__("mlserve:serving:EndpointAutoscaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        target = aws.appautoscaling.Target(
            f"{name}-target", service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", endpoint_name, "/variant/", args.variant_name),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=args.min_capacity, max_capacity=args.max_capacity, opts=child)

        def tracking(**spec) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs:
            return aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                scale_in_cooldown=args.scale_in_cooldown_seconds, scale_out_cooldown=args.scale_out_cooldown_seconds,
                disable_scale_in=False, **spec)

        if args.backlog_per_instance is not None:
            self._queue_scaling(name, args, endpoint_name, target, tracking)
        else:
            load, metric, target_value = self._load_signal(name, args)
            aws.appautoscaling.Policy(
                f"{name}-{load}", policy_type="TargetTrackingScaling", resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
                target_tracking_scaling_policy_configuration=tracking(
                    target_value=target_value,
                    predefined_metric_specification=aws.appautoscaling.
                    PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric)),
                opts=child)
        aws.appautoscaling.Policy(
            f"{name}-gpu", policy_type="TargetTrackingScaling", resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
            target_tracking_scaling_policy_configuration=tracking(
                # GPUUtilization sums over an instance's GPUs (100 per GPU).
                target_value=args.gpu_utilization_target_percent * args.gpus_per_instance,
                customized_metric_specification=aws.appautoscaling.
                PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
                    metric_name="GPUUtilization", namespace="/aws/sagemaker/Endpoints", statistic="Average",
                    dimensions=[
                        aws.appautoscaling.
                        PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs(
                            name="EndpointName", value=endpoint_name),
                        aws.appautoscaling.
                        PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs(
                            name="VariantName", value=args.variant_name),
                    ])),
            opts=child)
        self.register_outputs({"resource_id": target.resource_id})

    @staticmethod
    def _load_signal(name: str, args: EndpointAutoscalingArgs) -> tuple[str, str, int]:
        """(policy name, predefined metric, target) for a realtime endpoint."""
        if args.concurrent_requests_per_instance is not None:
            return ("concurrency", "SageMakerVariantConcurrentRequestsPerModelHighResolution",
                    args.concurrent_requests_per_instance)
        if args.invocations_per_instance_per_minute is not None:
            return "invocations", "SageMakerVariantInvocationsPerInstance", args.invocations_per_instance_per_minute
        raise ValueError(f"{name}: give invocations_per_instance_per_minute, "
                         "concurrent_requests_per_instance or backlog_per_instance")

    def _queue_scaling(self, name: str, args: EndpointAutoscalingArgs, endpoint_name: pulumi.Input[str], target,
                       tracking) -> None:
        """Async: track the queue per instance; a backlog with no capacity adds the first instance at once."""
        child = pulumi.ResourceOptions(parent=self)
        endpoint = [aws.appautoscaling.
                    PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs(
                        name="EndpointName", value=endpoint_name)]
        aws.appautoscaling.Policy(
            f"{name}-backlog", policy_type="TargetTrackingScaling", resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
            target_tracking_scaling_policy_configuration=tracking(
                target_value=args.backlog_per_instance,
                customized_metric_specification=aws.appautoscaling.
                PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
                    metric_name="ApproximateBacklogSizePerInstance", namespace="AWS/SageMaker", statistic="Average",
                    dimensions=endpoint)),
            opts=child)
        wake_from_zero(name, target, logical_alarm=f"{name}-backlog-without-capacity",
                       alarm_name=pulumi.Output.concat(endpoint_name, "-backlog-without-capacity"),
                       description="Requests wait and no instance runs: start one (scale out from zero)",
                       metric_name="HasBacklogWithoutCapacity", dimensions={"EndpointName": endpoint_name},
                       statistic="Average", cooldown_seconds=args.scale_out_cooldown_seconds, parent=self)
