"""Scale out from zero: target tracking never adds the first instance or copy (with none running, its metric has no
data), so an alarm on a "work is waiting and nothing runs" metric drives a step policy that adds one."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def wake_from_zero(name: str, target: aws.appautoscaling.Target, *, logical_alarm: str,
                   alarm_name: pulumi.Input[str], description: str, metric_name: str, dimensions: dict,
                   statistic: str, cooldown_seconds: int, parent: pulumi.Resource) -> aws.appautoscaling.Policy:
    """`{name}-wake` (+1 on the alarm) and the alarm `logical_alarm` on AWS/SageMaker `metric_name` >= 1 in a minute."""
    child = pulumi.ResourceOptions(parent=parent)
    wake = aws.appautoscaling.Policy(
        f"{name}-wake", policy_type="StepScaling", resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
        step_scaling_policy_configuration=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
            adjustment_type="ChangeInCapacity", cooldown=cooldown_seconds, metric_aggregation_type=statistic,
            step_adjustments=[aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                metric_interval_lower_bound="0", scaling_adjustment=1)]),
        opts=child)
    aws.cloudwatch.MetricAlarm(
        logical_alarm, name=alarm_name, alarm_description=description, namespace="AWS/SageMaker",
        metric_name=metric_name, statistic=statistic, dimensions=dimensions, period=60, evaluation_periods=1,
        comparison_operator="GreaterThanOrEqualToThreshold", threshold=1, treat_missing_data="notBreaching",
        alarm_actions=[wake.arn], opts=child)
    return wake
