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


@dataclass(frozen=True)
class EndpointAutoscalingArgs:
    endpoint_name: pulumi.Input[str]
    variant_name: str
    min_capacity: int
    max_capacity: int
    invocations_per_instance_per_minute: int | None
    """One-minute invocations target; None when concurrent_requests_per_instance is given."""
    gpus_per_instance: int
    concurrent_requests_per_instance: int | None = None
    """In-flight requests per instance at the SLO (`infra.ops profile`): tracked on the high-resolution metric."""
    gpu_utilization_target_percent: int = 70
    scale_in_cooldown_seconds: int = 600
    scale_out_cooldown_seconds: int = 60


class EndpointAutoscaling(pulumi.ComponentResource):
    def __init__(self, name: str, args: EndpointAutoscalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:serving:EndpointAutoscaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        target = aws.appautoscaling.Target(
            f"{name}-target", service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", args.endpoint_name, "/variant/", args.variant_name),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=args.min_capacity, max_capacity=args.max_capacity, opts=child)

        def tracking(**spec) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs:
            return aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                scale_in_cooldown=args.scale_in_cooldown_seconds, scale_out_cooldown=args.scale_out_cooldown_seconds,
                disable_scale_in=False, **spec)

        if args.concurrent_requests_per_instance is not None:
            load, metric, target_value = ("concurrency", "SageMakerVariantConcurrentRequestsPerModelHighResolution",
                                          args.concurrent_requests_per_instance)
        elif args.invocations_per_instance_per_minute is not None:
            load, metric, target_value = ("invocations", "SageMakerVariantInvocationsPerInstance",
                                          args.invocations_per_instance_per_minute)
        else:
            raise ValueError(f"{args.endpoint_name}: give invocations_per_instance_per_minute or "
                             "concurrent_requests_per_instance")
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
                            name="EndpointName", value=args.endpoint_name),
                        aws.appautoscaling.
                        PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs(
                            name="VariantName", value=args.variant_name),
                    ])),
            opts=child)
        self.register_outputs({"resource_id": target.resource_id})
