"""The platform in one screen: validated stack config in, components out.

This is the only place that maps configuration to component args. It declares nothing at import time: `declare`
is called by `infra/__main__.py` under the Pulumi CLI and by the offline plan and tests under the mock engine.
Each deployment is one component (SageMakerDeployment or KServeDeployment) that owns its alarms, scaling, gateway
and drift; `declare` builds the shared platform and loops over the deployments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

import drift
from components.alerting import BUDGETS_PUBLISHER, DEFAULT_PUBLISHERS, Alerting, AlertingArgs
from components.api_gateway_account import ApiGatewayAccount
from components.budget import StackBudget, StackBudgetArgs
from components.capture_sink import CaptureSinkArgs
from components.cluster_addons import ChartPins, ClusterAddons, ClusterAddonsArgs
from components.dashboard import Dashboard, DashboardArgs, DeploymentPanel
from components.drift_monitor import DriftMonitorArgs
from components.eks_cluster import EksCluster, EksClusterArgs
from components.encryption import BUDGETS, CLOUDWATCH_ALARMS, EVENTS, LOGS, Encryption, EncryptionArgs
from components.endpoint_alarms import EndpointAlarmsArgs
from components.endpoint_autoscaling import EndpointAutoscalingArgs
from components.grafana import Grafana, GrafanaArgs
from components.grafana_dashboard import serving_dashboard
from components.inference_api import ApiTierSpec, InferenceApiArgs
from components.inference_component import InferenceComponentArgs
from components.karpenter import GpuPool, Karpenter, KarpenterArgs
from components.kserve_deployment import KServeDeployment, KServeDeploymentArgs
from components.kserve_service import (
    ISVC_LABEL,
    KServeServiceArgs,
    ModelRef,
    in_flight_query,
    slo_alert_rules,
)
from components.model_audit import ModelAudit, ModelAuditArgs
from components.model_store import ModelStore, ModelStoreArgs
from components.names import (
    COLD_START_TAG,
    KARPENTER_DISCOVERY_TAG,
    PRIMARY_VARIANT,
    PROMETHEUS_NAMESPACE,
    PROMETHEUS_URL,
    STACK_TAG,
    captured_files_prefix,
    resource_name,
)
from components.network import Network, NetworkArgs
from components.node_group import GROUP_LABEL, NodeGroup, NodeGroupArgs
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

T = TypeVar("T")

# Config keys whose values the program hands to resources only as secrets (Alerting keeps subscription endpoints
# encrypted in state): storing them with `pulumi config set --secret` protects them end to end.
SECRET_SAFE_KEYS = frozenset({"mlserve:alerting"})


def declare(cfg: StackConfig, stack: str) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (the caller exports them)."""
    provider = aws.Provider("aws", region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(tags=stack_tags(cfg, stack)))
    with_provider = pulumi.ResourceOptions(provider=provider)
    sagemaker_opts = with_provider
    if any(isinstance(d, SageMakerConfig) and d.hosting == "inference_components" for d in cfg.deployments):
        # Inference components come from aws-native (CloudFormation's schema); same region, tags set per resource.
        native = aws_native.Provider("aws-native", region=cfg.region)
        sagemaker_opts = pulumi.ResourceOptions(providers=[provider, native])
    invoke = pulumi.InvokeOptions(provider=provider)
    account_id = aws.get_caller_identity(opts=invoke).account_id
    zones = aws.get_availability_zones(state="available", opts=invoke).names[: cfg.network.availability_zones]

    encryption = Encryption(resource_name(stack), EncryptionArgs(
        alias=resource_name(stack), account_id=account_id, region=cfg.region,
        deletion_window_days=30 if cfg.is_prod else 7, node_volumes=cfg.cluster is not None,
        service_principals=(LOGS, CLOUDWATCH_ALARMS, EVENTS) + ((BUDGETS,) if cfg.budget else ()),
        api_destination_secrets=any(isinstance(d.drift.on_alarm, HttpsRetraining) for d in cfg.deployments)),
        opts=with_provider)
    network = Network(resource_name(stack), NetworkArgs(
        cidr=cfg.network.cidr, availability_zones=zones, nat_gateway_per_az=cfg.is_prod, region=cfg.region,
        kms_key_arn=encryption.key_arn, flow_log_retention_days=cfg.network.flow_log_retention_days,
        private_subnet_tags={KARPENTER_DISCOVERY_TAG: resource_name(stack)} if cfg.cluster and cfg.cluster.gpu_pools
        else {}), opts=with_provider)
    store = ModelStore(resource_name(stack), ModelStoreArgs(
        bucket_name=cfg.model_store.bucket, kms_key_arn=encryption.key_arn,
        image_repositories=tuple(sorted({d.image.repository for d in cfg.deployments})),
        noncurrent_version_days=cfg.model_store.noncurrent_version_days, force_destroy=not cfg.is_prod),
        opts=with_provider)
    alerting = Alerting(resource_name(stack), AlertingArgs(
        topic_name=resource_name(stack, "alerts"), kms_key_arn=encryption.key_arn, account_id=account_id,
        emails=tuple(cfg.alerting.emails), https_webhooks=tuple(cfg.alerting.https_webhooks),
        publishers=DEFAULT_PUBLISHERS + ((BUDGETS_PUBLISHER,) if cfg.budget else ())), opts=with_provider)
    if cfg.budget:
        StackBudget(resource_name(stack), StackBudgetArgs(
            budget_name=resource_name(stack, "monthly"), monthly_usd=cfg.budget.monthly_usd, tag_key=STACK_TAG,
            tag_value=stack, topic_arn=alerting.topic_arn, actual_percent=tuple(cfg.budget.actual_alert_percent),
            forecast_percent=tuple(cfg.budget.forecast_alert_percent)), opts=with_provider)
    ModelAudit(resource_name(stack), ModelAuditArgs(
        trail_name=resource_name(stack, "model-store"), model_bucket_name=cfg.model_store.bucket,
        model_bucket_arn=store.bucket_arn, kms_key_arn=encryption.key_arn, account_id=account_id, region=cfg.region,
        alert_topic_arn=alerting.topic_arn, retention_days=cfg.logs.retention_days, object_lock=cfg.is_prod,
        force_destroy=not cfg.is_prod), opts=with_provider)
    # Every deployment's API logs its stages: the account's CloudWatch role must exist before any stage does.
    logging_ready: list[pulumi.Resource] = [ApiGatewayAccount(resource_name(stack), opts=with_provider)] \
        if cfg.deployments else []
    platform = Platform(cfg, stack, account_id, encryption, network, store, alerting.topic_arn, invoke)
    cluster = kubernetes_platform(platform, with_provider) if cfg.cluster else None

    hosts = component_hosts(platform, sagemaker_opts)
    endpoints, api_urls, panels = {}, {}, []
    for d in cfg.deployments:
        name = resource_name(stack, d.name)
        if isinstance(d, SageMakerConfig):
            deployment = SageMakerDeployment(name, sagemaker_args(platform, d, logging_ready, hosts),
                                             opts=sagemaker_opts)
            endpoints[d.name] = sagemaker_outputs(cfg, deployment)
            panels.append(DeploymentPanel(
                name=d.name, endpoint_name=resource_name(stack, d.endpoint_group), variant_name=PRIMARY_VARIANT,
                inference_component_name=name if d.hosting == "inference_components" else None, api_name=name,
                drift=d.drift.enabled, prediction_drift=d.drift.prediction_psi_alarm_threshold is not None))
        else:  # KServe: the gateway on the dashboard; model latency, GPUs and replicas in Prometheus (DCGM, Triton)
            assert cluster is not None, "config validation requires a cluster for KServe deployments"
            both = pulumi.ResourceOptions(providers=[provider, cluster.eks.provider])
            api_urls[d.name] = KServeDeployment(name, kserve_args(platform, d, cluster, logging_ready),
                                                opts=both).api_url
            panels.append(DeploymentPanel(name=d.name, api_name=name, drift=d.drift.enabled,
                                          prediction_drift=d.drift.prediction_psi_alarm_threshold is not None))
    dashboard = Dashboard(resource_name(stack), DashboardArgs(
        dashboard_name=resource_name(stack), region=cfg.region, deployments=panels), opts=with_provider)

    return {
        "region": cfg.region,
        "alert_topic_arn": alerting.topic_arn,
        "dashboard": dashboard.dashboard_name,
        "endpoints": endpoints,
        "kms_key_arn": encryption.key_arn,
        "vpc_id": network.vpc_id,
        "private_subnet_ids": network.private_subnet_ids,
        "model_bucket": store.bucket_name,
        "image_repositories": store.repository_urls,
        **({"cluster_name": cluster.eks.cluster_name, "kubeconfig": cluster.eks.kubeconfig,
            "kserve_api_urls": api_urls} if cluster else {}),
    }


@dataclass(frozen=True)
class Platform:
    """What every deployment of a stack shares: its config, account, key, network, model store and alert topic."""
    cfg: StackConfig
    stack: str
    account_id: pulumi.Input[str]
    encryption: Encryption
    network: Network
    store: ModelStore
    topic_arn: pulumi.Output[str]
    invoke: pulumi.InvokeOptions
    """Data-source calls through the stack's provider (its region)."""


def stack_tags(cfg: StackConfig, stack: str) -> dict[str, str]:
    """On every AWS resource (provider default tags) and every node Karpenter launches (which those do not reach)."""
    return {**cfg.tags, STACK_TAG: stack, "managed-by": "pulumi"}


@dataclass(frozen=True)
class KubernetesPlatform:
    """The cluster, its add-ons, and what serving objects wait for (add-ons, and the GPU pools when declared)."""
    eks: EksCluster
    addons: ClusterAddons
    ready: list[pulumi.Resource]


def kubernetes_platform(p: Platform, opts: pulumi.ResourceOptions) -> KubernetesPlatform:
    """The EKS cluster, its node groups, Karpenter's GPU pools and the add-ons every KServe deployment needs."""
    cfg, c = p.cfg, p.cfg.cluster
    assert c is not None
    cluster = EksCluster(resource_name(p.stack), EksClusterArgs(
        cluster_name=resource_name(p.stack), kubernetes_version=c.kubernetes_version, region=cfg.region,
        subnet_ids=p.network.private_subnet_ids, kms_key_arn=p.encryption.key_arn,
        admin_role_arns=tuple(c.admin_role_arns),
        addon_versions={"vpc-cni": c.addons.vpc_cni, "coredns": c.addons.coredns, "kube-proxy": c.addons.kube_proxy,
                        "eks-pod-identity-agent": c.addons.eks_pod_identity_agent,
                        "aws-ebs-csi-driver": c.addons.aws_ebs_csi_driver,
                        "eks-node-monitoring-agent": c.addons.eks_node_monitoring_agent},
        public_access_cidrs=tuple(c.public_access_cidrs), log_retention_days=c.log_retention_days), opts=opts)
    groups = [NodeGroup(resource_name(p.stack, g.name), NodeGroupArgs(
        cluster_name=cluster.cluster_name, group_name=g.name, subnet_ids=p.network.private_subnet_ids,
        instance_types=tuple(g.instance_types), ami_type=g.ami_type, capacity_type=g.capacity_type,
        min_size=g.min_size, max_size=g.max_size, desired_size=g.desired_size, disk_size_gib=g.disk_size_gib,
        kms_key_arn=p.encryption.key_arn, gpu=g.gpu), opts=opts) for g in c.node_groups]
    kserve = [d for d in cfg.deployments if isinstance(d, KServeConfig)]
    # Components holding AWS and Kubernetes resources get both providers; each child picks its package's.
    addons = ClusterAddons(resource_name(p.stack), ClusterAddonsArgs(
        cluster_name=cluster.cluster_name, region=cfg.region, account_id=p.account_id, vpc_id=p.network.vpc_id,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        system_node_group=next(g.name for g in c.node_groups if not g.gpu),
        charts=ChartPins(**c.charts.model_dump(exclude={"karpenter", "grafana"})), alert_topic_arn=p.topic_arn,
        kms_key_arn=p.encryption.key_arn,
        alert_rules=tuple(rule for d in kserve for rule in slo_alert_rules(
            d.name, resource_name(p.stack, d.name), d.slo.p99_latency_ms, d.slo.error_rate_percent))),
        opts=pulumi.ResourceOptions(providers=[required(opts.provider), cluster.provider], depends_on=groups))
    system = next(g for g in c.node_groups if not g.gpu)
    Grafana(resource_name(p.stack), GrafanaArgs(
        chart_version=c.charts.grafana, namespace=PROMETHEUS_NAMESPACE, prometheus_url=PROMETHEUS_URL,
        node_selector={GROUP_LABEL: system.name}, after=list(addons.ready), dashboards={
            d.name: serving_dashboard(d.name, resource_name(p.stack, d.name),
                                      in_flight_query(resource_name(p.stack, d.name), d.name),
                                      required(d.autoscaling.target_concurrency)) for d in kserve}),
            opts=pulumi.ResourceOptions(provider=cluster.provider))
    if not c.gpu_pools:
        return KubernetesPlatform(cluster, addons, list(addons.ready))
    node_class = required(c.node_class)
    karpenter = Karpenter(resource_name(p.stack, "karpenter"), KarpenterArgs(
        cluster_name=resource_name(p.stack), cluster=cluster.cluster_name, region=cfg.region, account_id=p.account_id,
        chart_version=c.charts.karpenter, kms_key_arn=p.encryption.key_arn, ami_alias=node_class.ami_alias,
        disk_size_gib=node_class.disk_size_gib, system_node_group=system.name, node_tags=stack_tags(cfg, p.stack),
        controller_replicas=min(2, system.min_size), pools=tuple(GpuPool(
            name=g.name, instance_types=tuple(g.instance_types), capacity_types=tuple(g.capacity_types),
            gpu_limit=g.gpu_limit, cpu_limit=g.cpu_limit, consolidate_after=g.consolidate_after,
            expire_after=g.expire_after, max_disrupted_nodes=g.max_disrupted_nodes) for g in c.gpu_pools)),
        opts=pulumi.ResourceOptions(providers=[required(opts.provider), cluster.provider], depends_on=groups))
    return KubernetesPlatform(cluster, addons, [*addons.ready, karpenter])


def kserve_args(p: Platform, d: KServeConfig, k8s_platform: KubernetesPlatform,
                logging_ready: list[pulumi.Resource]) -> KServeDeploymentArgs:
    cfg, c, cluster = p.cfg, p.cfg.cluster, k8s_platform.eks
    assert c is not None
    name = resource_name(p.stack, d.name)
    canary = d.rollout if isinstance(d.rollout, Canary) else None
    candidate = canary.candidate if canary else None
    image_uri = pulumi.Output.concat(p.store.repository_urls[d.image.repository], d.image.reference)
    return KServeDeploymentArgs(
        service=KServeServiceArgs(
            name=d.name, namespace=name,
            image_uri=image_uri, model=ModelRef(d.model.uri, d.model.bucket, d.model.prefix),
            candidate=ModelRef(candidate.uri, candidate.bucket, candidate.prefix) if candidate else None,
            canary_percent=canary.percent if canary else 0, gpus=d.compute.gpus, cpu=d.compute.cpu,
            memory=d.compute.memory, node_group=d.compute.node_group, min_replicas=d.autoscaling.min,
            max_replicas=d.autoscaling.max, target_concurrency=required(d.autoscaling.target_concurrency),
            scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds, region=cfg.region,
            kms_key_arn=p.encryption.key_arn, oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer, load_balancer_cidrs=p.network.load_balancer_cidrs,
            prometheus_url=k8s_platform.addons.prometheus_url,
            spread_across_zones=cfg.is_prod, certificate_arn=c.ingress_certificate_arn),
        vpc_id=p.network.vpc_id, load_balancer_subnet_ids=p.network.load_balancer_subnet_ids,
        backend_cidrs=p.network.private_cidrs, deletion_protection=cfg.is_prod, after=k8s_platform.ready,
        gateway=gateway_args(cfg, name, d.model.triton_model_name, p.encryption, logging_ready),
        base_url=f"https://{d.name}.{c.ingress_domain}" if c.ingress_domain else None,
        capture=CaptureSinkArgs(
            namespace=name, image_uri=image_uri, bucket=cfg.model_store.bucket, prefix=captured_files_prefix(name),
            sample_percent=d.data_capture.sample_percent, kms_key_arn=p.encryption.key_arn,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
            serving_label=ISVC_LABEL, node_selector={GROUP_LABEL: next(g.name for g in c.node_groups if not g.gpu)})
        if d.data_capture.enabled else None,
        drift=drift_args(p, d, name))


def served(model: ModelArtifact) -> ServedModel:
    return ServedModel(model_data_url=model.uri, triton_model_name=model.triton_model_name, model_sha256=model.sha256)


def component_hosts(p: Platform, opts: pulumi.ResourceOptions) -> dict[str, SageMakerEndpoint]:
    """The endpoints inference components run on, by endpoint group: deployments naming the same `endpoint` share
    one, and its instances (rules.shared_endpoints_agree checks they agree on what an endpoint sets once)."""
    groups: dict[str, list[SageMakerConfig]] = {}
    for d in p.cfg.deployments:
        if isinstance(d, SageMakerConfig) and d.hosting == "inference_components":
            groups.setdefault(d.endpoint_group, []).append(d)
    return {group: SageMakerEndpoint(resource_name(p.stack, group), host_args(p, group, members), opts=opts)
            for group, members in groups.items()}


def host_args(p: Platform, group: str, members: list[SageMakerConfig]) -> SageMakerEndpointArgs:
    cfg, first = p.cfg, members[0]
    capture = first.data_capture if len(members) == 1 and first.data_capture.enabled else None
    repositories = sorted({d.image.repository for d in members})
    return SageMakerEndpointArgs(
        endpoint_name=resource_name(p.stack, group), image_uri=None,
        repository_arns=[p.store.repository_arns[r] for r in repositories], bucket_name=cfg.model_store.bucket,
        model_prefixes=sorted({d.model.prefix for d in members}),
        variants=[Variant(name=PRIMARY_VARIANT, instance_type=first.compute.instance_type,
                          instance_count=first.compute.instance_count, model=None)],
        kms_key_arn=p.encryption.key_arn, account_id=p.account_id, region=cfg.region, vpc_id=p.network.vpc_id,
        vpc_cidr=p.network.vpc_cidr, subnet_ids=p.network.private_subnet_ids,
        startup_health_check_timeout_seconds=first.compute.startup_health_check_timeout_seconds,
        model_download_timeout_seconds=first.compute.model_download_timeout_seconds,
        inference_ami_version=first.compute.inference_ami_version,
        data_capture_percent=capture.sample_percent if capture else None,
        managed_instances=managed_instances(members))


def sagemaker_args(p: Platform, d: SageMakerConfig, logging_ready: list[pulumi.Resource],
                   hosts: dict[str, SageMakerEndpoint]) -> SageMakerDeploymentArgs:
    cfg, name = p.cfg, resource_name(p.stack, d.name)
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
    endpoint_name = resource_name(p.stack, d.endpoint_group)
    image_uri = pulumi.Output.concat(p.store.repository_urls[d.image.repository], d.image.reference)
    return SageMakerDeploymentArgs(
        alarms=EndpointAlarmsArgs(
            endpoint_name=endpoint_name, variant_name=PRIMARY_VARIANT, topic_arn=p.topic_arn,
            p99_latency_ms=d.slo.p99_latency_ms, error_rate_percent=d.slo.error_rate_percent,
            client_error_rate_percent=d.slo.client_error_rate_percent, gpus_per_instance=gpus,
            inference_component_name=name if hosted else None),
        component=component_args(p, d, name, hosts[d.endpoint_group], image_uri) if hosted else None,
        endpoint=None if hosted else SageMakerEndpointArgs(
            endpoint_name=name, image_uri=image_uri,
            repository_arns=[p.store.repository_arns[d.image.repository]], bucket_name=cfg.model_store.bucket,
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
            endpoint_name=name, variant_name=PRIMARY_VARIANT, min_capacity=d.autoscaling.min,
            max_capacity=d.autoscaling.max, invocations_per_instance_per_minute=d.target_invocations_per_minute(),
            concurrent_requests_per_instance=d.autoscaling.target_concurrency,
            backlog_per_instance=d.async_inference.backlog_per_instance if d.mode == "async" else None,
            gpus_per_instance=gpus, scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds=d.autoscaling.scale_out_cooldown_seconds),
        gateway=replace(gateway_args(cfg, name, d.model.triton_model_name, p.encryption, logging_ready),
                        async_route=d.mode == "async"),
        drift=drift_args(p, d, endpoint_name))


def drift_args(p: Platform, d: SageMakerConfig | KServeConfig, capturing: str) -> DriftMonitorArgs | None:
    """The drift job over the captures of `capturing` (a SageMaker endpoint, or a KServe deployment's namespace,
    whose capture sink writes the same layout)."""
    if not d.drift.enabled:
        return None
    return DriftMonitorArgs(
        deployment=d.name, bucket_name=p.cfg.model_store.bucket, capture_prefix=captured_files_prefix(capturing),
        baseline_key=(d.drift.baseline_uri or "").split("/", 3)[3], code_path=str(Path(drift.__file__).parent),
        kms_key_arn=p.encryption.key_arn, topic_arn=p.topic_arn, account_id=p.account_id,
        schedule_minutes=d.drift.schedule_minutes, psi_alarm_threshold=d.drift.psi_alarm_threshold,
        prediction_psi_alarm_threshold=d.drift.prediction_psi_alarm_threshold,
        log_retention_days=p.cfg.logs.retention_days, on_alarm=retraining_target(d.drift.on_alarm, p.invoke))


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
        per_instance = max(1, sagemaker_gpus(d.compute.instance_type) // max(1, d.component.accelerators))
        return math.ceil(copies / per_instance)

    return ManagedInstances(min_instances=sum(instances(d, d.autoscaling.min) for d in members),
                            max_instances=max(1, sum(instances(d, d.autoscaling.max) for d in members)))


def component_args(p: Platform, d: SageMakerConfig, name: str, host: SageMakerEndpoint,
                   image_uri: pulumi.Input[str]) -> InferenceComponentArgs:
    rolling = d.rollout if isinstance(d.rollout, Rolling) else None
    return InferenceComponentArgs(
        component_name=name, host=host, variant_name=PRIMARY_VARIANT, model=served(d.model), image_uri=image_uri,
        accelerators=d.component.accelerators, cpu_cores=d.component.cpu_cores,
        min_memory_mb=d.component.min_memory_mb, copies=d.component.copies, min_copies=d.autoscaling.min,
        max_copies=d.autoscaling.max, concurrency_per_copy=d.autoscaling.target_concurrency,
        invocations_per_copy_per_minute=d.target_invocations_per_minute(),
        batch_percent=rolling.batch_percent if rolling else 100, bake_seconds=rolling.bake_minutes * 60 if rolling else 0,
        rollback_batch_percent=rolling.rollback_batch_percent if rolling else None,
        timeout_seconds=rolling.timeout_minutes * 60 if rolling and rolling.timeout_minutes else None,
        scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds,
        scale_out_cooldown_seconds=d.autoscaling.scale_out_cooldown_seconds,
        tags={**stack_tags(p.cfg, p.stack), **({COLD_START_TAG: "true"} if d.component.tolerates_cold_start else {})})


def sagemaker_outputs(cfg: StackConfig, deployment: SageMakerDeployment) -> dict[str, Any]:
    return {
        "api_url": deployment.api_url,
        "endpoint_name": deployment.endpoint_name,
        "invoke_url": pulumi.Output.concat("https://runtime.sagemaker.", cfg.region, ".amazonaws.com/endpoints/",
                                           deployment.endpoint_name, "/invocations"),
        "alarms": deployment.alarm_names,
    }


def gateway_args(cfg: StackConfig, api_name: str, model_name: str, encryption: Encryption,
                 logging_ready: list[pulumi.Resource]) -> InferenceApiArgs:
    """The same front door for every backend: auth, tiers, schema, logs, WAF in prod, custom domain."""
    return InferenceApiArgs(
        api_name=api_name, region=cfg.region, model_name=model_name,
        authorization=cfg.gateway.authorization, cognito_user_pool_arn=cfg.gateway.cognito_user_pool_arn,
        tiers=[ApiTierSpec(t.name, t.rate_per_second, t.burst, t.quota_per_day) for t in cfg.gateway.tiers],
        kms_key_arn=encryption.key_arn, max_body_bytes=cfg.gateway.max_body_bytes,
        log_retention_days=cfg.gateway.access_log_retention_days, enable_waf=cfg.is_prod,
        waf_rate_limit_per_ip=cfg.gateway.waf_rate_limit_per_ip, domain_name=cfg.gateway.domain_name,
        certificate_arn=cfg.gateway.certificate_arn, logging_ready=tuple(logging_ready))


def required(value: T | None) -> T:
    """A value the config rules already require here (infra/config/rules.py); None would be a bug, not a default."""
    if value is None:
        raise ValueError("a value validated as required is missing")
    return value


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
