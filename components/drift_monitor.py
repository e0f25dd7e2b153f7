"""DriftMonitor: a scheduled job that compares a deployment's captured inputs with its baseline and alarms on drift.

EventBridge runs our function (the `drift` package: PSI and a KS test per feature) every `schedule_minutes`; it reads
the window's data-capture files and the baseline from the model bucket and publishes `mlserve/Drift` metrics. An
alarm on the inputs' highest PSI, and one on the predictions' when the baseline watches outputs, notify the stack's
topic and, when configured, start retraining (RetrainingTrigger). The function can read only the capture prefix and
the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from .names import DRIFT_MAX_PREDICTION_PSI, DRIFT_MAX_PSI, DRIFT_METRIC_NAMESPACE, DRIFT_NAMESPACE_ENV
from .policy_document import Statement, assume_role_policy, render, via_service
from .retraining_trigger import (
    HttpsTarget,
    PipelineTarget,
    RetrainingTrigger,
    RetrainingTriggerArgs,
    StateMachineTarget,
)


@dataclass(frozen=True)
class DriftMonitorArgs:
    deployment: str
    bucket_name: str
    capture_prefix: str  # where SageMaker writes this variant's captures (…/<endpoint>/<variant>/)
    baseline_key: str
    code_path: str  # folder of the `drift` package
    kms_key_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]  # the retraining trigger's trust policy names it
    schedule_minutes: int = 60
    psi_alarm_threshold: float = 0.2
    prediction_psi_alarm_threshold: float | None = None
    """Set: an alarm on the predictions' highest PSI too (the baseline must watch outputs)."""
    log_retention_days: int = 90
    on_alarm: PipelineTarget | StateMachineTarget | HttpsTarget | None = None
    """What either drift alarm starts; None: the alarms only notify."""
    payload_kind: Literal["tensor", "openai"] = "tensor"
    """What the captured bodies are: `tensor` (v2 inference JSON, Triton's) or `openai` (an LLM's OpenAI-compatible
    chat and completions bodies, vLLM's: prompt and completion lengths, finish reasons, errors). The job refuses a
    baseline built from the other kind. `tensor`, the job's own default, adds no variable to the function, so the
    functions of tensor deployments stay as they were."""


class DriftMonitor(pulumi.ComponentResource):
    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:DriftMonitor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket_arn = f"arn:aws:s3:::{args.bucket_name}"

        logs = aws.cloudwatch.LogGroup(f"{name}-drift", name=f"/aws/lambda/{name}-drift",
                                       retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn,
                                       opts=child)
        role = aws.iam.Role(f"{name}-drift", assume_role_policy=assume_role_policy("lambda.amazonaws.com"), opts=child)
        role_policy = aws.iam.RolePolicy(f"{name}-drift", role=role.id, policy=render(
            Statement(sid="ReadCapturesAndBaseline", actions=["s3:GetObject"],
                      resources=[f"{bucket_arn}/{args.capture_prefix}*", f"{bucket_arn}/{args.baseline_key}"]),
            # The list also makes S3 answer a missing baseline 404 (NoSuchKey) rather than 403.
            Statement(sid="ListCaptures", actions=["s3:ListBucket"], resources=[bucket_arn],
                      conditions={"StringLike": {"s3:prefix": [f"{args.capture_prefix}*", args.baseline_key]}}),
            Statement(sid="DecryptCaptures", actions=["kms:Decrypt"], resources=[args.kms_key_arn],
                      conditions=via_service("s3", args.kms_key_arn)),
            # PutMetricData has no resource-level permissions; the namespace condition scopes it.
            Statement(sid="PublishDriftMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                      conditions={"StringEquals": {"cloudwatch:namespace": DRIFT_METRIC_NAMESPACE}}),
            Statement(sid="WriteOwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                      resources=[pulumi.Output.concat(logs.arn, ":*")]),
        ), opts=child)
        function = aws.lambda_.Function(
            f"{name}-drift", role=role.arn, runtime="python3.12", handler="drift.job.handler", timeout=300,
            memory_size=1024, reserved_concurrent_executions=1, kms_key_arn=args.kms_key_arn,
            code=pulumi.AssetArchive({"drift": pulumi.FileArchive(args.code_path)}),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "MLSERVE_BUCKET": args.bucket_name, "MLSERVE_CAPTURE_PREFIX": args.capture_prefix,
                "MLSERVE_BASELINE_KEY": args.baseline_key, "MLSERVE_DEPLOYMENT": args.deployment,
                "MLSERVE_WINDOW_MINUTES": str(args.schedule_minutes), DRIFT_NAMESPACE_ENV: DRIFT_METRIC_NAMESPACE,
                **({"MLSERVE_PAYLOAD_KIND": args.payload_kind} if args.payload_kind != "tensor" else {})}),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=logs.name),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]))
        schedule = aws.cloudwatch.EventRule(f"{name}-drift", schedule_expression=f"rate({args.schedule_minutes} minutes)",
                                            description=f"drift check of {args.deployment}", opts=child)
        aws.lambda_.Permission(f"{name}-drift", action="lambda:InvokeFunction", function=function.name,
                               principal="events.amazonaws.com", source_arn=schedule.arn, opts=child)
        aws.cloudwatch.EventTarget(f"{name}-drift", rule=schedule.name, arn=function.arn, opts=child)
        watched = [(f"{name}-drift", f"{name}-input-drift", DRIFT_MAX_PSI, args.psi_alarm_threshold,
                    f"Inputs of {args.deployment} drifted from the baseline (max PSI over features)")]
        if args.prediction_psi_alarm_threshold is not None:
            watched.append((f"{name}-prediction-drift", f"{name}-prediction-drift", DRIFT_MAX_PREDICTION_PSI,
                            args.prediction_psi_alarm_threshold,
                            f"Predictions of {args.deployment} drifted from the baseline (max PSI over outputs)"))
        alarms = [aws.cloudwatch.MetricAlarm(
            logical, name=alarm_name, alarm_description=description,
            namespace=DRIFT_METRIC_NAMESPACE, metric_name=metric,
            dimensions={"Deployment": args.deployment}, statistic="Maximum", period=args.schedule_minutes * 60,
            evaluation_periods=2, datapoints_to_alarm=2, threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            # No metric means the job did not run: say so rather than look healthy.
            treat_missing_data="breaching", actions_enabled=True, alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn], opts=child)
            for logical, alarm_name, metric, threshold, description in watched]
        if args.on_alarm is not None:
            RetrainingTrigger(name, RetrainingTriggerArgs(
                deployment=args.deployment, alarm_names=[alarm_name for _, alarm_name, *_ in watched],
                target=args.on_alarm, account_id=args.account_id, kms_key_arn=args.kms_key_arn), opts=child)
        self.function_name = function.name
        self.alarm_name = alarms[0].name
        self.register_outputs({"function_name": function.name, "alarm_names": [a.name for a in alarms]})
