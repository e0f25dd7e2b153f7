"""SageMakerEndpoint: a model served by the bundled Triton image on a realtime SageMaker endpoint.

Reads top to bottom as what it makes: an execution role that can read only its models' S3 prefixes, a security
group, one SageMaker Model per variant, an endpoint configuration (variants, KMS, data capture, shadow), and the
endpoint with a blue/green deployment policy that shifts traffic per config and rolls back on the given alarms.
With managed instances the variant holds no model: inference components bring theirs (one or several deployments
sharing the endpoint), created with this endpoint's role and security group.

Models and endpoint configurations are immutable in SageMaker, so they are auto-named: a new model version makes new
ones, and updating the endpoint to them is what runs the blue/green deployment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from .model_servers import VllmEngine, sagemaker_vllm_env
from .names import async_prefix, data_capture_destination, data_capture_prefix
from .policy_document import Statement, assume_role_policy, render

TRITON_PORT_ENV = {"SAGEMAKER_TRITON_PING_MODE": "ready"}


@dataclass(frozen=True)
class ServedModel:
    """A released model as the bundled Triton image loads it, or a language model's folder as vLLM does."""
    model_data_url: str  # s3://bucket/key of model.tar.gz; a language model's folder (s3://bucket/prefix/)
    triton_model_name: str
    model_sha256: str
    llm: VllmEngine | None = None
    """A language model: SageMaker copies the folder as it is (no archive) and vLLM serves it."""


@dataclass(frozen=True)
class Variant:
    name: str
    instance_type: str
    instance_count: int
    model: ServedModel | None
    """None: inference components bring the models (the endpoint has managed_instances)."""
    weight: float = 1.0


@dataclass(frozen=True)
class ManagedInstances:
    """Inference components host the model: the endpoint's instances follow the copies, between these bounds."""
    min_instances: int
    max_instances: int


@dataclass(frozen=True)
class AsyncConfig:
    max_concurrent_invocations_per_instance: int


@dataclass(frozen=True)
class TrafficShift:
    """How SageMaker moves an endpoint to a new config: blue/green (ALL_AT_ONCE, CANARY, LINEAR: a full green fleet
    beside the blue one) or ROLLING (batches of `step_percent` of the fleet replaced in place: max capacity plus one
    batch, not twice the fleet)."""
    kind: Literal["ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING"]
    wait_seconds: int
    step_percent: int | None = None
    rollback_step_percent: int | None = None  # ROLLING: batch size when rolling back (None: all at once)
    timeout_seconds: int | None = None  # ROLLING: the whole update's limit (None: derived like blue/green's)


def max_execution_seconds(shift: TrafficShift) -> int:
    """Every step's bake plus half an hour for instances to start, within the API's 600-28800 s."""
    if shift.timeout_seconds:
        return shift.timeout_seconds
    batches = -(-100 // (shift.step_percent or 100))
    steps = {"CANARY": 2, "LINEAR": batches, "ROLLING": batches, "ALL_AT_ONCE": 1}[shift.kind]
    return min(28_800, max(600, steps * shift.wait_seconds + 1800))


@dataclass(frozen=True)
class SageMakerEndpointArgs:
    endpoint_name: str
    image_uri: pulumi.Input[str] | None
    """The serving image of the variants' models; None when inference components bring the models."""
    repository_arns: Sequence[pulumi.Input[str]]
    """Image repositories the endpoint's role may pull from (the components' images on a shared endpoint)."""
    bucket_name: str
    variants: list[Variant]
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    traffic_shift: TrafficShift | None = None
    """How an update moves to a new config; None only with managed_instances (components roll out themselves)."""
    startup_health_check_timeout_seconds: int = 900
    # The host's NVIDIA driver (a SageMaker AMI version) must run the image's CUDA; None leaves SageMaker's default.
    inference_ami_version: str | None = None
    model_download_timeout_seconds: int = 900
    data_capture_percent: int | None = None  # None: capture off
    shadow: Variant | None = None
    termination_wait_seconds: int = 600
    model_prefixes: list[str] = field(default_factory=list)  # folders of the bucket this endpoint may read
    inference_component_names: list[str] = field(default_factory=list)
    """The inference components this endpoint hosts: their containers log under their own log groups."""
    async_inference: AsyncConfig | None = None
    """Asynchronous inference: queued requests, inputs and results in the model bucket, SNS notifications."""
    managed_instances: ManagedInstances | None = None
    """Set: the variant holds no model (an InferenceComponent does) and SageMaker scales its instances."""

    @property
    def data_capture_prefix(self) -> str:
        return data_capture_prefix(self.endpoint_name)


def log_groups(args: SageMakerEndpointArgs) -> list[str]:
    """Where SageMaker writes the containers' output: the endpoint's group, and for each inference component its own
    (`/aws/sagemaker/InferenceComponents/<name>`), both with the execution role's credentials."""
    return [f"/aws/sagemaker/Endpoints/{args.endpoint_name}",
            *(f"/aws/sagemaker/InferenceComponents/{name}" for name in args.inference_component_names)]


class SageMakerEndpoint(pulumi.ComponentResource):
    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SageMakerEndpointArgs, opts: pulumi.ResourceOptions | None = None,
                 rollback_alarm_names: Sequence[pulumi.Input[str]] = ()):
        """`rollback_alarm_names`: the alarms that roll a blue/green or rolling update back, as the outputs of the
        component that made them (SageMakerDeployment's EndpointAlarms), so that the endpoint waits for them."""
        super().__init__("mlserve:serving:SageMakerEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoint", vpc_id=args.vpc_id, description=f"SageMaker endpoint {args.endpoint_name}",
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                    cidr_blocks=[args.vpc_cidr], description="AWS APIs via endpoints")],
            opts=child)
        # Async inference tells its callers through SNS when a result (or a failure) is in S3.
        self.async_topic_arns: dict[str, pulumi.Output[str]] = {}
        if args.async_inference:
            for outcome in ("success", "error"):
                self.async_topic_arns[outcome] = aws.sns.Topic(
                    f"{name}-async-{outcome}", name=f"{args.endpoint_name}-async-{outcome}",
                    kms_master_key_id=args.kms_key_arn, opts=child).arn
        role = aws.iam.Role(f"{name}-execution", assume_role_policy=assume_role_policy(
            "sagemaker.amazonaws.com", {"StringEquals": {"aws:SourceAccount": args.account_id}}), opts=child)
        role_policy = aws.iam.RolePolicy(f"{name}-execution", role=role.id,
                                         policy=self._execution_policy(args, security_group,
                                                                       list(self.async_topic_arns.values())),
                                         opts=child)

        served = [v for v in [*args.variants, *([args.shadow] if args.shadow else [])] if v.model]
        if served and args.image_uri is None:
            raise ValueError(f"{args.endpoint_name}: variants that carry a model need the serving image_uri")
        models = {variant.name: serving_model(
            f"{name}-{variant.name}", variant.model, image_uri=args.image_uri or "", role_arn=role.arn,
            subnet_ids=args.subnet_ids, security_group_id=security_group.id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]))
            for variant in served if variant.model}

        managed = args.managed_instances

        def production_variant(v: Variant, cls):
            extra = {} if managed is None or cls is not aws.sagemaker.EndpointConfigurationProductionVariantArgs else {
                "managed_instance_scaling": aws.sagemaker.EndpointConfigurationProductionVariantManagedInstanceScalingArgs(
                    status="ENABLED", min_instance_count=managed.min_instances,
                    max_instance_count=managed.max_instances),
                "routing_configs": [aws.sagemaker.EndpointConfigurationProductionVariantRoutingConfigArgs(
                    routing_strategy="LEAST_OUTSTANDING_REQUESTS")]}
            return cls(variant_name=v.name, model_name=models[v.name].name if v.name in models else None,
                       instance_type=v.instance_type, **extra,
                       initial_instance_count=v.instance_count, initial_variant_weight=v.weight,
                       container_startup_health_check_timeout_in_seconds=args.startup_health_check_timeout_seconds,
                       model_data_download_timeout_in_seconds=args.model_download_timeout_seconds,
                       inference_ami_version=args.inference_ami_version)

        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            kms_key_arn=args.kms_key_arn,
            production_variants=[production_variant(v, aws.sagemaker.EndpointConfigurationProductionVariantArgs)
                                 for v in args.variants],
            shadow_production_variants=[production_variant(
                args.shadow, aws.sagemaker.EndpointConfigurationShadowProductionVariantArgs)] if args.shadow else None,
            data_capture_config=aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True, initial_sampling_percentage=args.data_capture_percent,
                destination_s3_uri=data_capture_destination(args.bucket_name, args.endpoint_name),
                kms_key_id=args.kms_key_arn,
                capture_options=[aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode=m)
                                 for m in ("Input", "Output")],
                capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    json_content_types=["application/json"]),
            ) if args.data_capture_percent else None,
            async_inference_config=self._async_config(args, self.async_topic_arns),
            # Inference components run with the endpoint's own role (CreateEndpointConfig requires one then).
            execution_role_arn=role.arn if managed else None,
            opts=child)

        if managed is None and args.traffic_shift is None:
            raise ValueError(f"{args.endpoint_name}: an endpoint whose variants hold models needs its traffic_shift")
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint", name=args.endpoint_name, endpoint_config_name=config.name,
            # With inference components, updates (and their rollback) are the component's, copy batch by batch.
            deployment_config=None if managed or args.traffic_shift is None else deployment_config(
                args.traffic_shift, args.termination_wait_seconds, rollback_alarm_names),
            opts=child)

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.role_arn = role.arn
        self.role_policy = role_policy
        self.security_group_id = security_group.id
        self.subnet_ids = args.subnet_ids
        self.register_outputs({"endpoint_name": endpoint.name, "endpoint_arn": endpoint.arn, "role_arn": role.arn,
                               "endpoint_config_name": config.name})

    @staticmethod
    def _async_config(args: SageMakerEndpointArgs, topics: dict[str, pulumi.Output[str]]):
        if args.async_inference is None:
            return None
        where = f"s3://{args.bucket_name}/"
        return aws.sagemaker.EndpointConfigurationAsyncInferenceConfigArgs(
            output_config=aws.sagemaker.EndpointConfigurationAsyncInferenceConfigOutputConfigArgs(
                s3_output_path=where + async_prefix(args.endpoint_name, "output"),
                s3_failure_path=where + async_prefix(args.endpoint_name, "failure"),
                kms_key_id=args.kms_key_arn,
                notification_config=aws.sagemaker.
                EndpointConfigurationAsyncInferenceConfigOutputConfigNotificationConfigArgs(
                    success_topic=topics["success"], error_topic=topics["error"],
                    include_inference_response_ins=["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"])),
            client_config=aws.sagemaker.EndpointConfigurationAsyncInferenceConfigClientConfigArgs(
                max_concurrent_invocations_per_instance=args.async_inference.max_concurrent_invocations_per_instance))

    @staticmethod
    def _execution_policy(args: SageMakerEndpointArgs, security_group: aws.ec2.SecurityGroup,
                          async_topics: list[pulumi.Output[str]]) -> pulumi.Output[str]:
        bucket_arn = f"arn:aws:s3:::{args.bucket_name}"
        region_account = pulumi.Output.concat(args.region, ":", args.account_id)
        statements = [
            Statement(sid="ReadThisModel", actions=["s3:GetObject"],
                      resources=[f"{bucket_arn}/{prefix}*" for prefix in args.model_prefixes]),
            Statement(sid="ListThisModel", actions=["s3:ListBucket"], resources=[bucket_arn],
                      conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in args.model_prefixes]}}),
            Statement(sid="PullServingImage", resources=list(args.repository_arns),
                      actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]),
            # GetAuthorizationToken is account-wide: it has no resource-level permissions, so "*" is the only form.
            Statement(sid="AuthenticateToEcr", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            Statement(sid="UseStackKey", resources=[args.kms_key_arn],
                      actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"]),
            Statement(sid="WriteEndpointLogs", actions=["logs:CreateLogGroup", "logs:CreateLogStream",
                                                        "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      resources=[pulumi.Output.concat("arn:aws:logs:", region_account, f":log-group:{group}:*")
                                 for group in log_groups(args)]),
            # PutMetricData has no resource-level permissions; the namespace condition is what scopes it.
            Statement(sid="PublishEndpointMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                      conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints*",
                                                                          "AWS/SageMaker*"]}}),
            # Describe calls have no resource-level permissions; they are read-only.
            Statement(sid="DescribeVpc", resources=["*"], actions=[
                "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups"]),
            Statement(sid="AttachToVpc", actions=[
                "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission"], resources=[
                pulumi.Output.concat("arn:aws:ec2:", region_account, ":network-interface/*"),
                pulumi.Output.concat("arn:aws:ec2:", region_account, ":subnet/*"),
                pulumi.Output.concat("arn:aws:ec2:", region_account, ":security-group/", security_group.id)],
                conditions={"StringEquals": {"ec2:Vpc": pulumi.Output.concat("arn:aws:ec2:", region_account,
                                                                             ":vpc/", args.vpc_id)}}),
        ]
        if args.data_capture_percent:
            statements.append(Statement(sid="WriteDataCapture", actions=["s3:PutObject"],
                                        resources=[f"{bucket_arn}/{args.data_capture_prefix}*"]))
        if args.async_inference:
            statements += [
                Statement(sid="ReadAsyncInputs", actions=["s3:GetObject"],
                          resources=[f"{bucket_arn}/{async_prefix(args.endpoint_name, 'input')}*"]),
                Statement(sid="WriteAsyncResults", actions=["s3:PutObject"], resources=[
                    f"{bucket_arn}/{async_prefix(args.endpoint_name, part)}*" for part in ("output", "failure")]),
                Statement(sid="NotifyAsyncResults", actions=["sns:Publish"], resources=async_topics),
            ]
        return render(*statements)


def serving_model(name: str, model: ServedModel, *, image_uri: pulumi.Input[str], role_arn: pulumi.Input[str],
                  subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]], security_group_id: pulumi.Input[str],
                  opts: pulumi.ResourceOptions) -> aws.sagemaker.Model:
    """The SageMaker Model of a released model: a production variant's, or an inference component's."""
    if model.llm is not None:
        return aws.sagemaker.Model(
            name, execution_role_arn=role_arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image_uri, mode="SingleModel",
                # The weights folder as released (no tar.gz to unpack): SageMaker copies it to /opt/ml/model.
                model_data_source=aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(s3_data_sources=[
                    aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                        s3_uri=model.model_data_url, s3_data_type="S3Prefix", compression_type="None")]),
                environment={**sagemaker_vllm_env(model.llm), "MLSERVE_MODEL_SHA256": model.model_sha256}),
            # vLLM needs no network either: the weights are local and it must never reach a model hub.
            enable_network_isolation=True,
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(subnets=subnet_ids, security_group_ids=[security_group_id]),
            opts=opts)
    return aws.sagemaker.Model(
        name, execution_role_arn=role_arn,
        primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
            image=image_uri, model_data_url=model.model_data_url, mode="SingleModel",
            environment={**TRITON_PORT_ENV, "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": model.triton_model_name,
                         "MLSERVE_MODEL_SHA256": model.model_sha256}),
        # Triton needs no network of its own: SageMaker downloads the model and the image.
        enable_network_isolation=True,
        vpc_config=aws.sagemaker.ModelVpcConfigArgs(subnets=subnet_ids, security_group_ids=[security_group_id]),
        opts=opts)


def deployment_config(shift: TrafficShift, termination_wait_seconds: int,
                      rollback_alarm_names) -> aws.sagemaker.EndpointDeploymentConfigArgs:
    """Blue/green or rolling, both guarded by the same alarms: any of them in ALARM rolls the update back."""
    rollback = aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
        alarms=[aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=n)
                for n in rollback_alarm_names])
    step_percent = shift.step_percent or 100
    if shift.kind == "ROLLING":
        return aws.sagemaker.EndpointDeploymentConfigArgs(
            rolling_update_policy=aws.sagemaker.EndpointDeploymentConfigRollingUpdatePolicyArgs(
                maximum_batch_size=aws.sagemaker.EndpointDeploymentConfigRollingUpdatePolicyMaximumBatchSizeArgs(
                    type="CAPACITY_PERCENT", value=step_percent),
                wait_interval_in_seconds=shift.wait_seconds,
                maximum_execution_timeout_in_seconds=max_execution_seconds(shift),
                rollback_maximum_batch_size=aws.sagemaker.
                EndpointDeploymentConfigRollingUpdatePolicyRollbackMaximumBatchSizeArgs(
                    type="CAPACITY_PERCENT", value=shift.rollback_step_percent)
                if shift.rollback_step_percent else None),
            auto_rollback_configuration=rollback)
    step = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
        type="CAPACITY_PERCENT", value=step_percent) if shift.kind == "CANARY" else None
    linear = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
        type="CAPACITY_PERCENT", value=step_percent) if shift.kind == "LINEAR" else None
    return aws.sagemaker.EndpointDeploymentConfigArgs(
        blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=aws.sagemaker.
            EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                type=shift.kind, wait_interval_in_seconds=shift.wait_seconds, canary_size=step,
                linear_step_size=linear),
            termination_wait_in_seconds=termination_wait_seconds,
            maximum_execution_timeout_in_seconds=max_execution_seconds(shift)),
        auto_rollback_configuration=rollback)
