"""How a deployment's stack config becomes its component's args: pure mapping, nothing declared here.

`infra/program.py` declares the platform and calls these once per deployment; each builder reads one deployment's
config (and what the stack shares, `StackBase`) and returns the typed args its component takes.
"""

from __future__ import annotations

import math
from typing import Any

import pulumi
import pulumi_aws as aws

import drift
from components.capture_sink import CaptureSinkArgs
from components.drift_monitor import DriftMonitorArgs
from components.encryption import Encryption
from components.endpoint_alarms import EndpointAlarmsArgs
from components.endpoint_autoscaling import EndpointAutoscalingArgs
from components.inference_api import ApiTierSpec, InferenceApiArgs
from components.inference_component import InferenceComponentArgs
from components.kserve_deployment import KServeDeploymentArgs
from components.kserve_service import KServeModelSpec, ModelCache, ModelRef
from components.model_servers import LlmScaling, ModelServer, VllmEngine, triton, vllm_server
from components.names import (
    COLD_START_TAG,
    GROUP_LABEL,
    ISVC_LABEL,
    PRIMARY_VARIANT,
    USAGE_TAG,
    captured_files_prefix,
    deployment_name,
    endpoint_name,
    engine_store_prefix,
    image_repository_name,
    usage_tag,
)
from components.openai_routes import OpenAiRequestShape
from components.retraining_trigger import HttpsTarget, PipelineTarget, StateMachineTarget
from components.sagemaker_deployment import SageMakerDeployment, SageMakerDeploymentArgs
from components.sagemaker_endpoint import (
    AsyncConfig,
    ManagedInstances,
    SageMakerEndpoint,
    SageMakerEndpointArgs,
    ServedModel,
    TrafficShift,
    Variant,
)
from infra.aws_facts import sagemaker_gpus
from infra.config import StackConfig
from infra.config.models import (
    AllAtOnce,
    BlueGreen,
    Canary,
    HttpsRetraining,
    Linear,
    ModelArtifact,
    PipelineRetraining,
    RetrainingTarget,
    Rolling,
    Shadow,
    StateMachineRetraining,
)
from infra.config.models import KServeDeployment as KServeConfig
from infra.config.models import SageMakerDeployment as SageMakerConfig
from infra.platform import KubernetesPlatform, StackBase, stack_tags, validated


def kserve_args(p: StackBase, d: KServeConfig, k8s_platform: KubernetesPlatform,
                logging_ready: list[pulumi.Resource]) -> KServeDeploymentArgs:
    cfg, c, cluster = p.cfg, p.cfg.cluster, k8s_platform.eks
    assert c is not None
    name = deployment_name(p.stack, d.name)
    canary = d.rollout if isinstance(d.rollout, Canary) else None
    candidate = canary.candidate if canary else None
    image_uri = pulumi.Output.concat(p.store.repository_urls[image_repository_name(p.stack, d.image.repository)],
                                     d.image.reference)
    return KServeDeploymentArgs(
        service=KServeModelSpec(
            name=d.name, namespace=name, server=model_server(d, image_uri, name),
            model=ModelRef(*model_location(d.model)),
            candidate=ModelRef(*model_location(candidate)) if candidate else None,
            canary_percent=canary.percent if canary else 0, gpus=d.compute.gpus, cpu=d.compute.cpu,
            memory=d.compute.memory, node_group=d.compute.node_group, min_replicas=d.autoscaling.min,
            max_replicas=d.autoscaling.max,
            target_concurrency=None if d.is_llm else validated(d.autoscaling.target_concurrency),
            llm_scaling=LlmScaling(d.llm.scale_at_waiting, d.llm.scale_at_kv_cache_percent) if d.llm else None,
            scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds, region=cfg.region,
            kms_key_arn=p.encryption.key_arn, oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer, load_balancer_cidrs=p.network.load_balancer_cidrs,
            prometheus_url=k8s_platform.addons.prometheus_url,
            spread_across_zones=cfg.is_prod, certificate_arn=c.ingress_certificate_arn,
            model_cache=ModelCache(d.compute.node_group, math.ceil(d.llm.weights_gib)) if d.llm else None),
        vpc_id=p.network.vpc_id, load_balancer_subnet_ids=p.network.load_balancer_subnet_ids,
        backend_cidrs=p.network.private_cidrs, deletion_protection=cfg.is_prod, after=k8s_platform.ready,
        gateway=gateway_args(cfg, d, name, p.encryption, logging_ready),
        base_url=f"https://{d.name}.{c.ingress_domain}" if c.ingress_domain else None,
        capture=CaptureSinkArgs(
            namespace=name, image_uri=image_uri, bucket=cfg.model_store.bucket, prefix=captured_files_prefix(name),
            sample_percent=d.data_capture.sample_percent, kms_key_arn=p.encryption.key_arn,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
            serving_label=ISVC_LABEL, node_selector={GROUP_LABEL: validated(c.system_group()).name})
        if d.data_capture.enabled else None,
        drift=drift_args(p, d, name))


def model_location(model: ModelArtifact) -> tuple[str, str, str]:
    """What KServe downloads and the serving role may read: a tensor model's object (its folder readable), or a
    language model's whole folder."""
    if model.format == "safetensors":
        return model.uri, model.bucket, model.key
    return model.uri, model.bucket, model.prefix


def vllm_engine(d: SageMakerConfig | KServeConfig) -> VllmEngine:
    llm = validated(d.llm)
    return VllmEngine(
        served_model_name=llm.model_name(d.name), max_model_len=llm.max_model_len, tensor_parallel=llm.tensor_parallel,
        gpu_memory_utilization=llm.gpu_memory_utilization, dtype=llm.dtype, quantization=llm.quantization,
        max_num_seqs=llm.max_num_seqs, weights_gib=llm.weights_gib)


def model_server(d: KServeConfig, image_uri: pulumi.Input[str], namespace: str) -> ModelServer:
    if d.is_llm:
        return vllm_server(image_uri, vllm_engine(d))
    return triton(image_uri, f"s3://{d.model.bucket}/{engine_store_prefix(namespace)}")


def served(model: ModelArtifact, llm: VllmEngine | None = None) -> ServedModel:
    return ServedModel(model_data_url=model.uri, triton_model_name=model.triton_model_name, model_sha256=model.sha256,
                       llm=llm)


def host_args(p: StackBase, group: str, members: list[SageMakerConfig]) -> SageMakerEndpointArgs:
    cfg, first = p.cfg, members[0]
    capture = first.data_capture if len(members) == 1 and first.data_capture.enabled else None
    repositories = sorted({image_repository_name(p.stack, d.image.repository) for d in members})
    return SageMakerEndpointArgs(
        endpoint_name=endpoint_name(p.stack, group), image_uri=None,
        repository_arns=[p.store.repository_arns[r] for r in repositories], bucket_name=cfg.model_store.bucket,
        model_prefixes=sorted({d.model.prefix for d in members}),
        inference_component_names=[deployment_name(p.stack, d.name) for d in members],
        variants=[Variant(name=PRIMARY_VARIANT, instance_type=first.compute.instance_type,
                          instance_count=first.compute.instance_count, model=None)],
        kms_key_arn=p.encryption.key_arn, account_id=p.account_id, region=cfg.region, vpc_id=p.network.vpc_id,
        vpc_cidr=p.network.vpc_cidr, subnet_ids=p.network.private_subnet_ids,
        startup_health_check_timeout_seconds=first.compute.startup_health_check_timeout_seconds,
        model_download_timeout_seconds=first.compute.model_download_timeout_seconds,
        inference_ami_version=first.compute.inference_ami_version,
        data_capture_percent=capture.sample_percent if capture else None,
        managed_instances=managed_instances(members))


def sagemaker_args(p: StackBase, d: SageMakerConfig, logging_ready: list[pulumi.Resource],
                   hosts: dict[str, SageMakerEndpoint]) -> SageMakerDeploymentArgs:
    cfg, name = p.cfg, deployment_name(p.stack, d.name)
    gpus = sagemaker_gpus(d.compute.instance_type)

    def variant(variant_name: str, model: ModelArtifact, count: int, weight: float) -> Variant:
        return Variant(name=variant_name, model=served(model), instance_type=d.compute.instance_type,
                       instance_count=count, weight=weight)

    primary_weight = 100 - sum(v.weight_percent for v in d.ab_variants)
    variants = [variant(PRIMARY_VARIANT, d.model, d.compute.instance_count, primary_weight / 100)]
    variants += [variant(v.name, v.model, v.instance_count, v.weight_percent / 100) for v in d.ab_variants]
    rollout = d.rollout
    shadow = variant("shadow", rollout.candidate, d.compute.instance_count, rollout.sample_percent / 100) \
        if isinstance(rollout, Shadow) else None
    models = [d.model, *(v.model for v in d.ab_variants), *([rollout.candidate] if isinstance(rollout, Shadow) else [])]
    hosted = d.hosting == "inference_components"
    endpoint = endpoint_name(p.stack, d.endpoint_group)
    repository = image_repository_name(p.stack, d.image.repository)
    image_uri = pulumi.Output.concat(p.store.repository_urls[repository], d.image.reference)
    return SageMakerDeploymentArgs(
        alarms=EndpointAlarmsArgs(
            endpoint_name=endpoint, variant_name=PRIMARY_VARIANT, topic_arn=p.topic_arn,
            p99_latency_ms=d.slo.p99_latency_ms, error_rate_percent=d.slo.error_rate_percent,
            client_error_rate_percent=d.slo.client_error_rate_percent, gpus_per_instance=gpus,
            inference_component_name=name if hosted else None),
        inference_component=inference_component_args(p, d, name, hosts[d.endpoint_group], image_uri) if hosted else None,
        endpoint=None if hosted else SageMakerEndpointArgs(
            endpoint_name=name, image_uri=image_uri,
            repository_arns=[p.store.repository_arns[repository]], bucket_name=cfg.model_store.bucket,
            model_prefixes=sorted({m.prefix for m in models}), variants=variants, shadow=shadow,
            traffic_shift=traffic_shift(d.rollout), kms_key_arn=p.encryption.key_arn, account_id=p.account_id,
            region=cfg.region, vpc_id=p.network.vpc_id, vpc_cidr=p.network.vpc_cidr,
            subnet_ids=p.network.private_subnet_ids,
            startup_health_check_timeout_seconds=d.compute.startup_health_check_timeout_seconds,
            model_download_timeout_seconds=d.compute.model_download_timeout_seconds,
            inference_ami_version=d.compute.inference_ami_version,
            data_capture_percent=d.data_capture.sample_percent if d.data_capture.enabled else None,
            async_inference=AsyncConfig(d.async_inference.max_concurrent_invocations_per_instance)
            if d.mode == "async" else None,
            termination_wait_seconds=600 if cfg.is_prod else 0),
        autoscaling=None if hosted else EndpointAutoscalingArgs(
            variant_name=PRIMARY_VARIANT, min_capacity=d.autoscaling.min,
            max_capacity=d.autoscaling.max, invocations_per_instance_per_minute=d.target_invocations_per_minute(),
            concurrent_requests_per_instance=d.autoscaling.target_concurrency,
            backlog_per_instance=d.async_inference.backlog_per_instance if d.mode == "async" else None,
            gpus_per_instance=gpus, scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds=d.autoscaling.scale_out_cooldown_seconds),
        gateway=gateway_args(cfg, d, name, p.encryption, logging_ready),
        drift=drift_args(p, d, endpoint))


def drift_args(p: StackBase, d: SageMakerConfig | KServeConfig, capturing: str) -> DriftMonitorArgs | None:
    """The drift job over the captures of `capturing` (a SageMaker endpoint, or a KServe deployment's namespace,
    whose capture sink writes the same layout)."""
    if not d.drift.enabled:
        return None
    return DriftMonitorArgs(
        deployment=d.name, bucket_name=p.cfg.model_store.bucket, capture_prefix=captured_files_prefix(capturing),
        baseline_key=(d.drift.baseline_uri or "").split("/", 3)[3], code_path=str(drift.BUNDLE),
        kms_key_arn=p.encryption.key_arn, topic_arn=p.topic_arn, account_id=p.account_id,
        schedule_minutes=d.drift.schedule_minutes, psi_alarm_threshold=d.drift.psi_alarm_threshold,
        prediction_psi_alarm_threshold=d.drift.prediction_psi_alarm_threshold,
        log_retention_days=p.cfg.logs.retention_days, on_alarm=retraining_target(d.drift.on_alarm, p.invoke),
        payload_kind="openai" if d.is_llm else "tensor")


def retraining_target(trigger: RetrainingTarget | None, invoke: pulumi.InvokeOptions):
    """What a drift alarm starts; an HTTPS target's API key is read from its secret at deploy time, kept secret."""
    if isinstance(trigger, PipelineRetraining):
        return PipelineTarget(trigger.pipeline_arn)
    if isinstance(trigger, StateMachineRetraining):
        return StateMachineTarget(trigger.state_machine_arn)
    if isinstance(trigger, HttpsRetraining):
        key = aws.secretsmanager.get_secret_version_output(secret_id=trigger.api_key_secret_arn, opts=invoke)
        return HttpsTarget(trigger.url, pulumi.Output.secret(key.secret_string), trigger.header,
                           trigger.max_per_second)
    return None


def managed_instances(members: list[SageMakerConfig]) -> ManagedInstances:
    """Instances for the copies of every component on the endpoint: none when no copy runs, and at max enough for
    each component's copies packed by GPU on instances of their own (an upper bound: SageMaker may pack tighter)."""
    def instances(d: SageMakerConfig, copies: int) -> int:
        return math.ceil(copies / d.copies_per_instance())

    return ManagedInstances(min_instances=sum(instances(d, d.autoscaling.min) for d in members),
                            max_instances=max(1, sum(instances(d, d.autoscaling.max) for d in members)))


def inference_component_args(p: StackBase, d: SageMakerConfig, name: str, host: SageMakerEndpoint,
                   image_uri: pulumi.Input[str]) -> InferenceComponentArgs:
    rolling = d.rollout if isinstance(d.rollout, Rolling) else None
    return InferenceComponentArgs(
        inference_component_name=name, host=host, variant_name=PRIMARY_VARIANT,
        model=served(d.model, vllm_engine(d) if d.llm else None), image_uri=image_uri,
        accelerators=d.inference_component.accelerators, cpu_cores=d.inference_component.cpu_cores,
        min_memory_mb=d.inference_component.min_memory_mb, copies=d.inference_component.copies, min_copies=d.autoscaling.min,
        max_copies=d.autoscaling.max, concurrency_per_copy=d.autoscaling.target_concurrency,
        invocations_per_copy_per_minute=d.target_invocations_per_minute(),
        batch_percent=rolling.batch_percent if rolling else None, bake_seconds=rolling.bake_minutes * 60 if rolling else 0,
        rollback_batch_percent=rolling.rollback_batch_percent if rolling else None,
        timeout_seconds=rolling.timeout_minutes * 60 if rolling and rolling.timeout_minutes else None,
        scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds,
        scale_out_cooldown_seconds=d.autoscaling.scale_out_cooldown_seconds,
        tags={**stack_tags(p.cfg, p.stack), **({COLD_START_TAG: "true"} if d.inference_component.tolerates_cold_start else {})})


def sagemaker_outputs(cfg: StackConfig, deployment: SageMakerDeployment) -> dict[str, Any]:
    return {
        "api_url": deployment.api_url,
        "endpoint_name": deployment.endpoint_name,
        "invoke_url": pulumi.Output.concat("https://runtime.sagemaker.", cfg.region, ".amazonaws.com/endpoints/",
                                           deployment.endpoint_name, "/invocations"),
        "alarms": deployment.alarm_names,
    }


def gateway_args(cfg: StackConfig, d: SageMakerConfig | KServeConfig, api_name: str, encryption: Encryption,
                 logging_ready: list[pulumi.Resource]) -> InferenceApiArgs:
    """The same front door for every backend: auth, tiers, schema, logs, WAF in prod, custom domain; the async
    route for an async SageMaker endpoint; the traffic it is expected to carry, as a tag the estimate reads."""
    return InferenceApiArgs(
        model_name=d.llm.model_name(d.name) if d.llm else d.model.triton_model_name,
        async_route=isinstance(d, SageMakerConfig) and d.mode == "async",
        # A language model: the OpenAI routes, streamed where the backend is reached by a proxy (KServe).
        openai=OpenAiRequestShape(d.llm.model_name(d.name), streaming=isinstance(d, KServeConfig),
                                  max_body_bytes=cfg.gateway.max_body_bytes) if d.llm else None,
        tags={USAGE_TAG: usage_tag(d.usage.requests_per_second, d.usage.request_kb, d.usage.response_kb, llm=d.is_llm,
                                   tokens_per_second_at_slo=d.llm.tokens_per_second_at_slo if d.llm else None)},
        api_name=api_name, region=cfg.region,
        authorization=cfg.gateway.authorization, cognito_user_pool_arn=cfg.gateway.cognito_user_pool_arn,
        tiers=[ApiTierSpec(t.name, t.rate_per_second, t.burst, t.quota_per_day) for t in cfg.gateway.tiers],
        kms_key_arn=encryption.key_arn, max_body_bytes=cfg.gateway.max_body_bytes,
        log_retention_days=cfg.gateway.access_log_retention_days, enable_waf=cfg.is_prod,
        waf_rate_limit_per_ip=cfg.gateway.waf_rate_limit_per_ip, domain_name=cfg.gateway.domain_name,
        certificate_arn=cfg.gateway.certificate_arn, logging_ready=tuple(logging_ready))


def traffic_shift(rollout) -> TrafficShift:
    """Map the config's rollout onto SageMaker's blue/green traffic routing."""
    if isinstance(rollout, Canary):
        return TrafficShift("CANARY", rollout.bake_minutes * 60, rollout.percent)
    if isinstance(rollout, Linear):
        return TrafficShift("LINEAR", rollout.step_bake_minutes * 60, rollout.step_percent)
    if isinstance(rollout, BlueGreen):
        return TrafficShift("ALL_AT_ONCE", rollout.bake_minutes * 60)
    if isinstance(rollout, Rolling):
        return TrafficShift("ROLLING", rollout.bake_minutes * 60, rollout.batch_percent, rollout.rollback_batch_percent,
                            rollout.timeout_minutes * 60 if rollout.timeout_minutes else None)
    assert isinstance(rollout, (AllAtOnce, Shadow))
    return TrafficShift("ALL_AT_ONCE", 0)
