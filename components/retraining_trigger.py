"""RetrainingTrigger: what a deployment's drift alarms start (retraining), through EventBridge.

CloudWatch sends an "Alarm State Change" event for every alarm in the account; the rule matches only this
deployment's drift alarms entering ALARM and hands the event to one target, called with a role that may do only
that: start the SageMaker Pipeline, start the Step Functions state machine, or invoke the API destination (an HTTPS
endpoint whose API key the EventBridge connection keeps in Secrets Manager, under the stack key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .policy_document import Statement, assume_role_policy, render


@dataclass(frozen=True)
class PipelineTarget:
    pipeline_arn: str


@dataclass(frozen=True)
class StateMachineTarget:
    state_machine_arn: str


@dataclass(frozen=True)
class HttpsTarget:
    url: str
    api_key: pulumi.Input[str]
    """A secret Output: the value EventBridge sends in `header`."""
    header: str = "x-api-key"
    max_per_second: int = 1


@dataclass(frozen=True)
class RetrainingTriggerArgs:
    deployment: str
    alarm_names: Sequence[str]
    target: PipelineTarget | StateMachineTarget | HttpsTarget
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]


def alarm_event_pattern(alarm_names: Sequence[str]) -> dict:
    """EventBridge pattern: these alarms going into ALARM (not back to OK, not INSUFFICIENT_DATA)."""
    return {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": sorted(alarm_names), "state": {"value": ["ALARM"]}}}


class RetrainingTrigger(pulumi.ComponentResource):
    def __init__(self, name: str, args: RetrainingTriggerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:RetrainingTrigger", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        rule = aws.cloudwatch.EventRule(
            f"{name}-retrain", description=f"drift of {args.deployment}: start retraining",
            event_pattern=json.dumps(alarm_event_pattern(args.alarm_names)), opts=child)
        role = aws.iam.Role(f"{name}-retrain", assume_role_policy=assume_role_policy(
            "events.amazonaws.com", {"StringEquals": {"aws:SourceAccount": args.account_id}}), opts=child)

        target = args.target
        extra: dict = {}
        if isinstance(target, PipelineTarget):
            arn: pulumi.Input[str] = target.pipeline_arn
            allowed = Statement(sid="StartRetrainingPipeline", actions=["sagemaker:StartPipelineExecution"],
                                resources=[target.pipeline_arn])
            extra["sagemaker_pipeline_target"] = aws.cloudwatch.EventTargetSagemakerPipelineTargetArgs(
                pipeline_parameter_lists=[])
        elif isinstance(target, StateMachineTarget):
            arn = target.state_machine_arn
            allowed = Statement(sid="StartRetrainingStateMachine", actions=["states:StartExecution"],
                                resources=[target.state_machine_arn])
        else:
            connection = aws.cloudwatch.EventConnection(
                f"{name}-retrain", description=f"retraining webhook of {args.deployment}",
                authorization_type="API_KEY", kms_key_identifier=args.kms_key_arn,
                auth_parameters=aws.cloudwatch.EventConnectionAuthParametersArgs(
                    api_key=aws.cloudwatch.EventConnectionAuthParametersApiKeyArgs(
                        key=target.header, value=target.api_key)), opts=child)
            destination = aws.cloudwatch.EventApiDestination(
                f"{name}-retrain", connection_arn=connection.arn, invocation_endpoint=target.url,
                http_method="POST", invocation_rate_limit_per_second=target.max_per_second, opts=child)
            arn = destination.arn
            allowed = Statement(sid="InvokeRetrainingWebhook", actions=["events:InvokeApiDestination"],
                                resources=[destination.arn])
        policy = aws.iam.RolePolicy(f"{name}-retrain", role=role.id, policy=render(allowed), opts=child)
        aws.cloudwatch.EventTarget(
            f"{name}-retrain", rule=rule.name, arn=arn, role_arn=role.arn,
            # A retraining start that fails is retried for a day, then dropped: the alarm has already notified.
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(maximum_event_age_in_seconds=86_400,
                                                                   maximum_retry_attempts=185),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]), **extra)
        self.rule_name = rule.name
        self.register_outputs({"rule_name": rule.name})
