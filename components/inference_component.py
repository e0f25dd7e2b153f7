"""InferenceComponent: one model on a SageMaker endpoint as copies with their own reservation, able to scale to zero.

pulumi-aws 7.51.1 has no inference component resource; pulumi-aws-native's `aws-native:sagemaker:InferenceComponent`
is CloudFormation's, with the stack's provider (region, tags). Resources:
- the SageMaker Model, run with the host endpoint's role and security group;
- the inference component: the model, per-copy GPUs/CPU/memory, the copy count, and its update policy (copies
  replaced in batches, rolled back by the deployment's rollback alarms);
- copy-count autoscaling: target tracking on the per-copy load (concurrent requests at high resolution, or
  invocations per copy), between min and max copies; with min 0, a step policy on a NoCapacityInvocationFailures
  alarm brings the first copy back when a request finds none (target tracking never scales out from zero), and the
  endpoint's managed instance scaling then starts an instance for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from .sagemaker_endpoint import SageMakerEndpoint, ServedModel, serving_model
from .scale_from_zero import wake_from_zero


@dataclass(frozen=True)
class InferenceComponentArgs:
    inference_component_name: str
    """Also what a caller names in InvokeEndpoint's InferenceComponentName (the gateway sends it)."""
    host: SageMakerEndpoint
    """The endpoint (managed instances) the copies run on; its role and security group run the model."""
    variant_name: str
    model: ServedModel
    image_uri: pulumi.Input[str]
    accelerators: int
    cpu_cores: float
    min_memory_mb: int
    copies: int
    min_copies: int
    max_copies: int
    concurrency_per_copy: int | None
    """High-resolution concurrency target per copy; None: invocations_per_copy_per_minute."""
    invocations_per_copy_per_minute: int | None
    batch_percent: int | None = None
    """Copies replaced per update batch (rollout: rolling), 5-50 as the API documents; None: no rolling policy, so
    SageMaker replaces every copy at once (a single copy can only be updated so: no batch of one copy is 50% or less
    of it) and no alarm can roll the update back (the API takes rollback alarms only beside a rolling policy)."""
    bake_seconds: int = 0
    rollback_batch_percent: int | None = None
    """Copies restored per batch when an update rolls back; None: all at once."""
    timeout_seconds: int | None = None
    """The whole update's limit; None: every batch's bake plus half an hour."""
    scale_in_cooldown_seconds: int = 600
    scale_out_cooldown_seconds: int = 60
    tags: dict[str, str] = field(default_factory=dict)


def rolling_update(args: InferenceComponentArgs, rollback_alarm_names: Sequence[pulumi.Input[str]] = ()
                   ) -> aws_native.sagemaker.InferenceComponentDeploymentConfigArgs | None:
    """The update policy every change of the component is made with; None leaves SageMaker's default (all copies)."""
    if args.batch_percent is None:
        return None
    batches = max(1, math.ceil(100 / args.batch_percent))

    def percent(value: int) -> aws_native.sagemaker.InferenceComponentCapacitySizeArgs:
        return aws_native.sagemaker.InferenceComponentCapacitySizeArgs(
            type=aws_native.sagemaker.InferenceComponentCapacitySizeType.CAPACITY_PERCENT, value=value)

    return aws_native.sagemaker.InferenceComponentDeploymentConfigArgs(
        rolling_update_policy=aws_native.sagemaker.InferenceComponentRollingUpdatePolicyArgs(
            maximum_batch_size=percent(args.batch_percent), wait_interval_in_seconds=args.bake_seconds,
            maximum_execution_timeout_in_seconds=args.timeout_seconds or min(
                28_800, max(600, batches * args.bake_seconds + 1800)),
            rollback_maximum_batch_size=percent(args.rollback_batch_percent) if args.rollback_batch_percent else None),
        auto_rollback_configuration=aws_native.sagemaker.InferenceComponentAutoRollbackConfigurationArgs(
            alarms=[aws_native.sagemaker.InferenceComponentAlarmArgs(alarm_name=n)
                    for n in rollback_alarm_names]) if rollback_alarm_names else None)


class InferenceComponent(pulumi.ComponentResource):
    inference_component_name: pulumi.Output[str]

    def __init__(self, name: str, args: InferenceComponentArgs, opts: pulumi.ResourceOptions | None = None,
                 rollback_alarm_names: Sequence[pulumi.Input[str]] = ()):
        """`rollback_alarm_names`: the alarms that roll a rolling update back, as the outputs of the component
        that made them (SageMakerDeployment's EndpointAlarms), so that the component waits for them."""
        super().__init__("mlserve:serving:InferenceComponent", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        host = args.host
        model = serving_model(f"{name}-model", args.model, image_uri=args.image_uri, role_arn=host.role_arn,
                              subnet_ids=host.subnet_ids, security_group_id=host.security_group_id,
                              opts=pulumi.ResourceOptions(parent=self, depends_on=[host.role_policy]))
        component = aws_native.sagemaker.InferenceComponent(
            f"{name}-component", inference_component_name=args.inference_component_name, endpoint_name=host.endpoint_name,
            variant_name=args.variant_name,
            specification=aws_native.sagemaker.InferenceComponentSpecificationArgs(
                model_name=model.name,
                compute_resource_requirements=aws_native.sagemaker.InferenceComponentComputeResourceRequirementsArgs(
                    number_of_accelerator_devices_required=args.accelerators or None,
                    number_of_cpu_cores_required=args.cpu_cores, min_memory_required_in_mb=args.min_memory_mb)),
            runtime_config=aws_native.sagemaker.InferenceComponentRuntimeConfigArgs(copy_count=args.copies),
            deployment_config=rolling_update(args, rollback_alarm_names),
            tags=[aws_native.TagArgs(key=k, value=v) for k, v in sorted(args.tags.items())], opts=child)

        target = aws.appautoscaling.Target(
            f"{name}-copies", service_namespace="sagemaker",
            resource_id=f"inference-component/{args.inference_component_name}",
            scalable_dimension="sagemaker:inference-component:DesiredCopyCount",
            min_capacity=args.min_copies, max_capacity=args.max_copies,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[component]))
        if args.concurrency_per_copy is not None:
            load, metric, value = ("concurrency", "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
                                   args.concurrency_per_copy)
        elif args.invocations_per_copy_per_minute is not None:
            load, metric, value = ("invocations", "SageMakerInferenceComponentInvocationsPerCopy",
                                   args.invocations_per_copy_per_minute)
        else:
            raise ValueError(f"{args.inference_component_name}: give concurrency_per_copy or invocations_per_copy_per_minute")
        aws.appautoscaling.Policy(
            f"{name}-{load}", policy_type="TargetTrackingScaling", resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.
            PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=value, scale_in_cooldown=args.scale_in_cooldown_seconds,
                scale_out_cooldown=args.scale_out_cooldown_seconds,
                predefined_metric_specification=aws.appautoscaling.
                PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=metric)),
            opts=child)
        if args.min_copies == 0:
            wake_from_zero(name, target, logical_alarm=f"{name}-no-capacity",
                           alarm_name=f"{args.inference_component_name}-no-capacity",
                           description="A request found no copy of the model: add one (scale out from zero)",
                           metric_name="NoCapacityInvocationFailures",
                           dimensions={"InferenceComponentName": args.inference_component_name}, statistic="Maximum",
                           cooldown_seconds=args.scale_out_cooldown_seconds, parent=self)

        self.inference_component_name = component.inference_component_name.apply(lambda n: n or args.inference_component_name)
        self.register_outputs({"inference_component_name": self.inference_component_name})
