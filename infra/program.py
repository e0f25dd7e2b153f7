"""The platform in one screen: validated stack config in, components out.

This is the only place that maps configuration to component args. It declares nothing at import time: `declare`
is called by `infra/__main__.py` under the Pulumi CLI and by the offline plan and tests under the mock engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

import drift
from components.alerting import Alerting, AlertingArgs
from components.api_gateway_account import ApiGatewayAccount
from components.cluster_addons import ChartPins, ClusterAddons, ClusterAddonsArgs
from components.dashboard import Dashboard, DashboardArgs, DeploymentPanel
from components.drift_monitor import DriftMonitor, DriftMonitorArgs
from components.eks_cluster import EksCluster, EksClusterArgs
from components.encryption import Encryption, EncryptionArgs
from components.endpoint_alarms import EndpointAlarms, EndpointAlarmsArgs
from components.endpoint_autoscaling import EndpointAutoscaling, EndpointAutoscalingArgs
from components.inference_api import ApiTierSpec, InferenceApi, InferenceApiArgs, PrivateHttpBackend, SageMakerBackend
from components.kserve_service import KServeService, KServeServiceArgs, ModelRef, slo_alert_rules
from components.model_store import ModelStore, ModelStoreArgs
from components.network import Network, NetworkArgs
from components.node_group import NodeGroup, NodeGroupArgs
from components.private_link import PrivateLink, PrivateLinkArgs
from components.sagemaker_endpoint import SageMakerEndpoint, SageMakerEndpointArgs, TrafficShift, Variant
from infra.aws_facts import sagemaker_gpus
from infra.config import StackConfig
from infra.config.models import (
    AllAtOnce,
    BlueGreen,
    Canary,
    KServeDeployment,
    Linear,
    ModelArtifact,
    SageMakerDeployment,
    Shadow,
)
from infra.naming import resource_name

PRIMARY_VARIANT = "primary"


def declare(cfg: StackConfig, stack: str) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (the caller exports them)."""
    provider = aws.Provider("aws", region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(
        tags={**cfg.tags, "mlserve:stack": stack, "managed-by": "pulumi"}))
    with_provider = pulumi.ResourceOptions(provider=provider)
    invoke = pulumi.InvokeOptions(provider=provider)
    account_id = aws.get_caller_identity(opts=invoke).account_id
    zones = aws.get_availability_zones(state="available", opts=invoke).names[: cfg.network.availability_zones]

    encryption = Encryption(resource_name(stack), EncryptionArgs(
        alias=resource_name(stack), account_id=account_id, region=cfg.region,
        deletion_window_days=30 if cfg.is_prod else 7, node_volumes=cfg.cluster is not None), opts=with_provider)

    network = Network(resource_name(stack), NetworkArgs(
        cidr=cfg.network.cidr, availability_zones=zones, nat_gateway_per_az=cfg.is_prod, region=cfg.region,
        kms_key_arn=encryption.key_arn, flow_log_retention_days=cfg.network.flow_log_retention_days),
        opts=with_provider)

    store = ModelStore(resource_name(stack), ModelStoreArgs(
        bucket_name=cfg.model_store.bucket, kms_key_arn=encryption.key_arn,
        image_repositories=tuple(sorted({d.image.repository for d in cfg.deployments})),
        noncurrent_version_days=cfg.model_store.noncurrent_version_days, force_destroy=not cfg.is_prod),
        opts=with_provider)

    alerting = Alerting(resource_name(stack), AlertingArgs(
        topic_name=resource_name(stack, "alerts"), kms_key_arn=encryption.key_arn, account_id=account_id,
        emails=tuple(cfg.alerting.emails), https_webhooks=tuple(cfg.alerting.https_webhooks)), opts=with_provider)

    if any(isinstance(d, SageMakerDeployment) for d in cfg.deployments):
        ApiGatewayAccount(resource_name(stack), opts=with_provider)
    endpoints, panels = {}, []
    for deployment in cfg.deployments:
        if isinstance(deployment, SageMakerDeployment):
            endpoints[deployment.name] = sagemaker_deployment(
                cfg, stack, deployment, with_provider, account_id=account_id, encryption=encryption,
                network=network, store=store, topic_arn=alerting.topic_arn)
            panels.append(DeploymentPanel(
                name=deployment.name, endpoint_name=resource_name(stack, deployment.name),
                variant_name=PRIMARY_VARIANT, api_name=resource_name(stack, deployment.name),
                drift=deployment.drift.enabled))
        else:  # KServe: the gateway here; model latency, GPUs and replicas in Prometheus (DCGM, Triton)
            panels.append(DeploymentPanel(name=deployment.name, api_name=resource_name(stack, deployment.name)))
    cluster_outputs = kubernetes_platform(cfg, stack, with_provider, account_id=account_id, encryption=encryption,
                                          network=network, store=store, topic_arn=alerting.topic_arn) \
        if cfg.cluster else {}
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
        **cluster_outputs,
    }


def kubernetes_platform(cfg: StackConfig, stack: str, opts: pulumi.ResourceOptions, *, account_id, encryption: Encryption,
                        network: Network, store: ModelStore, topic_arn: pulumi.Output[str]) -> dict[str, Any]:
    """The EKS cluster, its node groups and add-ons, and every kserve deployment on it."""
    c = cfg.cluster
    cluster = EksCluster(resource_name(stack), EksClusterArgs(
        cluster_name=resource_name(stack), kubernetes_version=c.kubernetes_version, region=cfg.region,
        subnet_ids=network.private_subnet_ids, kms_key_arn=encryption.key_arn, admin_role_arns=tuple(c.admin_role_arns),
        addon_versions={"vpc-cni": c.addons.vpc_cni, "coredns": c.addons.coredns, "kube-proxy": c.addons.kube_proxy,
                        "eks-pod-identity-agent": c.addons.eks_pod_identity_agent,
                        "aws-ebs-csi-driver": c.addons.aws_ebs_csi_driver},
        public_access_cidrs=tuple(c.public_access_cidrs), log_retention_days=c.log_retention_days), opts=opts)
    groups = [NodeGroup(resource_name(stack, g.name), NodeGroupArgs(
        cluster_name=cluster.cluster_name, group_name=g.name, subnet_ids=network.private_subnet_ids,
        instance_types=tuple(g.instance_types), ami_type=g.ami_type, capacity_type=g.capacity_type,
        min_size=g.min_size, max_size=g.max_size, desired_size=g.desired_size, disk_size_gib=g.disk_size_gib,
        kms_key_arn=encryption.key_arn, gpu=g.gpu), opts=opts) for g in c.node_groups]
    kserve = [d for d in cfg.deployments if isinstance(d, KServeDeployment)]
    # Components holding AWS and Kubernetes resources get both providers; each child picks its package's.
    both = [opts.provider, cluster.provider]
    addons = ClusterAddons(resource_name(stack), ClusterAddonsArgs(
        cluster_name=cluster.cluster_name, region=cfg.region, account_id=account_id, vpc_id=network.vpc_id,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        system_node_group=next(g.name for g in c.node_groups if not g.gpu),
        charts=ChartPins(**c.charts.model_dump()), alert_topic_arn=topic_arn, kms_key_arn=encryption.key_arn,
        alert_rules=tuple(rule for d in kserve for rule in slo_alert_rules(
            d.name, resource_name(stack, d.name), d.slo.p99_latency_ms, d.slo.error_rate_percent))),
        opts=pulumi.ResourceOptions(providers=both, depends_on=groups))
    api_urls = {d.name: kserve_deployment(cfg, stack, d, opts, cluster=cluster, addons=addons, encryption=encryption,
                                          network=network, store=store) for d in kserve}
    return {"cluster_name": cluster.cluster_name, "kubeconfig": cluster.kubeconfig, "kserve_api_urls": api_urls}


def kserve_deployment(cfg: StackConfig, stack: str, d: KServeDeployment, opts: pulumi.ResourceOptions, *,
                      cluster: EksCluster, addons: ClusterAddons, encryption: Encryption, network: Network,
                      store: ModelStore) -> pulumi.Output[str]:
    """One model on the cluster, its VPC link and its gateway; returns the gateway's invoke URL."""
    c = cfg.cluster
    name = resource_name(stack, d.name)
    canary = d.rollout if isinstance(d.rollout, Canary) else None
    candidate = canary.candidate if canary else None
    service = KServeService(name, KServeServiceArgs(
        name=d.name, namespace=name,
        image_uri=pulumi.Output.concat(store.repository_urls[d.image.repository], d.image.reference),
        model=ModelRef(d.model.uri, d.model.bucket, d.model.prefix),
        candidate=ModelRef(candidate.uri, candidate.bucket, candidate.prefix) if candidate else None,
        canary_percent=canary.percent if canary else 0, gpus=d.compute.gpus, cpu=d.compute.cpu,
        memory=d.compute.memory, node_group=d.compute.node_group, min_replicas=d.autoscaling.min,
        max_replicas=d.autoscaling.max, target_concurrency=d.autoscaling.target_concurrency,
        scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds, region=cfg.region,
        kms_key_arn=encryption.key_arn, oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer, vpc_cidr=network.vpc_cidr, prometheus_url=addons.prometheus_url,
        spread_across_zones=cfg.is_prod, certificate_arn=c.ingress_certificate_arn),
        opts=pulumi.ResourceOptions(providers=[opts.provider, cluster.provider], depends_on=addons.ready))
    link = PrivateLink(name, PrivateLinkArgs(
        name=name, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids, alb_arn=service.alb_arn,
        port=service.alb_port), opts=opts)
    base_url = f"https://{d.name}.{c.ingress_domain}" if c.ingress_domain else \
        pulumi.Output.concat("http://", link.nlb_dns_name)
    api = InferenceApi(name, gateway_args(cfg, name, PrivateHttpBackend(link.vpc_link_id, base_url),
                                          d.model.triton_model_name, encryption), opts=opts)
    return api.invoke_url


def gateway_args(cfg: StackConfig, api_name: str, backend, model_name: str, encryption: Encryption) -> InferenceApiArgs:
    """The same front door for every backend: auth, tiers, schema, logs, WAF in prod, custom domain."""
    return InferenceApiArgs(
        api_name=api_name, region=cfg.region, backend=backend, model_name=model_name,
        authorization=cfg.gateway.authorization, cognito_user_pool_arn=cfg.gateway.cognito_user_pool_arn,
        tiers=[ApiTierSpec(t.name, t.rate_per_second, t.burst, t.quota_per_day) for t in cfg.gateway.tiers],
        kms_key_arn=encryption.key_arn, max_body_bytes=cfg.gateway.max_body_bytes,
        log_retention_days=cfg.gateway.access_log_retention_days, enable_waf=cfg.is_prod,
        waf_rate_limit_per_ip=cfg.gateway.waf_rate_limit_per_ip, domain_name=cfg.gateway.domain_name,
        certificate_arn=cfg.gateway.certificate_arn)


def traffic_shift(rollout) -> TrafficShift:
    """Map the config's rollout onto SageMaker's blue/green traffic routing."""
    if isinstance(rollout, Canary):
        return TrafficShift("CANARY", rollout.bake_minutes * 60, rollout.percent)
    if isinstance(rollout, Linear):
        return TrafficShift("LINEAR", rollout.step_bake_minutes * 60, rollout.step_percent)
    if isinstance(rollout, BlueGreen):
        return TrafficShift("ALL_AT_ONCE", rollout.bake_minutes * 60)
    assert isinstance(rollout, (AllAtOnce, Shadow))
    return TrafficShift("ALL_AT_ONCE", 0)


def max_execution_seconds(shift: TrafficShift) -> int:
    """Every step's bake plus half an hour for instances to start, within the API's 600-28800 s."""
    steps = {"CANARY": 2, "LINEAR": -(-100 // (shift.step_percent or 100)), "ALL_AT_ONCE": 1}[shift.kind]
    return min(28_800, max(600, steps * shift.wait_seconds + 1800))


def sagemaker_deployment(cfg: StackConfig, stack: str, d: SageMakerDeployment, opts: pulumi.ResourceOptions, *,
                         account_id: str, encryption: Encryption, network: Network, store: ModelStore,
                         topic_arn: pulumi.Output[str]) -> dict[str, Any]:
    endpoint_name = resource_name(stack, d.name)
    gpus = sagemaker_gpus(d.compute.instance_type)

    def variant(name: str, model: ModelArtifact, count: int, weight: float) -> Variant:
        return Variant(name=name, model_data_url=model.uri, triton_model_name=model.triton_model_name,
                       model_sha256=model.sha256, instance_type=d.compute.instance_type, instance_count=count,
                       weight=weight)

    primary_weight = 100 - sum(v.weight_percent for v in d.ab_variants)
    variants = [variant(PRIMARY_VARIANT, d.model, d.compute.instance_count, primary_weight / 100)]
    variants += [variant(v.name, v.model, v.instance_count, v.weight_percent / 100) for v in d.ab_variants]
    shadow = variant("shadow", d.rollout.candidate, d.compute.instance_count, d.rollout.sample_percent / 100) \
        if isinstance(d.rollout, Shadow) else None
    models = [d.model, *(v.model for v in d.ab_variants), *([d.rollout.candidate] if shadow else [])]

    alarms = EndpointAlarms(endpoint_name, EndpointAlarmsArgs(
        endpoint_name=endpoint_name, variant_name=PRIMARY_VARIANT, topic_arn=topic_arn,
        p99_latency_ms=d.slo.p99_latency_ms, error_rate_percent=d.slo.error_rate_percent,
        client_error_rate_percent=d.slo.client_error_rate_percent, gpus_per_instance=gpus), opts=opts)
    shift = traffic_shift(d.rollout)
    repository = d.image.repository
    endpoint = SageMakerEndpoint(endpoint_name, SageMakerEndpointArgs(
        endpoint_name=endpoint_name,
        image_uri=pulumi.Output.concat(store.repository_urls[repository], d.image.reference),
        repository_arn=store.repository_arns[repository], bucket_name=cfg.model_store.bucket,
        model_prefixes=sorted({m.prefix for m in models}), variants=variants, shadow=shadow, traffic_shift=shift,
        rollback_alarm_names=alarms.rollback_alarm_names, kms_key_arn=encryption.key_arn, account_id=account_id,
        region=cfg.region, vpc_id=network.vpc_id, vpc_cidr=network.vpc_cidr, subnet_ids=network.private_subnet_ids,
        startup_health_check_timeout_seconds=d.compute.startup_health_check_timeout_seconds,
        model_download_timeout_seconds=d.compute.model_download_timeout_seconds,
        data_capture_percent=d.data_capture.sample_percent if d.data_capture.enabled else None,
        termination_wait_seconds=600 if cfg.is_prod else 0, max_execution_seconds=max_execution_seconds(shift)),
        opts=opts)
    EndpointAutoscaling(endpoint_name, EndpointAutoscalingArgs(
        endpoint_name=endpoint.endpoint_name, variant_name=PRIMARY_VARIANT, min_capacity=d.autoscaling.min,
        max_capacity=d.autoscaling.max, invocations_per_instance_per_minute=d.target_invocations_per_minute(),
        gpus_per_instance=gpus, scale_in_cooldown_seconds=d.autoscaling.scale_in_cooldown_seconds,
        scale_out_cooldown_seconds=d.autoscaling.scale_out_cooldown_seconds), opts=opts)
    api = InferenceApi(endpoint_name, gateway_args(
        cfg, endpoint_name, SageMakerBackend(endpoint.endpoint_name, endpoint.endpoint_arn),
        d.model.triton_model_name, encryption), opts=opts)
    if d.drift.enabled:
        DriftMonitor(endpoint_name, DriftMonitorArgs(
            deployment=d.name, bucket_name=cfg.model_store.bucket,
            # SageMaker writes captures under <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/.
            capture_prefix=f"data-capture/{endpoint_name}/{endpoint_name}/{PRIMARY_VARIANT}/",
            baseline_key=d.drift.baseline_uri.split("/", 3)[3], code_path=str(Path(drift.__file__).parent),
            kms_key_arn=encryption.key_arn, topic_arn=topic_arn, schedule_minutes=d.drift.schedule_minutes,
            psi_alarm_threshold=d.drift.psi_alarm_threshold), opts=opts)
    return {
        "api_url": api.invoke_url,
        "endpoint_name": endpoint.endpoint_name,
        "invoke_url": pulumi.Output.concat("https://runtime.sagemaker.", cfg.region, ".amazonaws.com/endpoints/",
                                           endpoint.endpoint_name, "/invocations"),
        "alarms": alarms.alarm_names,
    }
