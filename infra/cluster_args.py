"""How the cluster block of the stack config becomes the args of the components KServe deployments run on: the EKS
cluster, its managed node groups, the add-ons, Grafana and Karpenter's GPU pools. Pure mapping, nothing declared."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.cluster_addons import ChartPins, ClusterAddons, ClusterAddonsArgs, ModelCachePool, ModelCacheReads
from components.eks_cluster import EksCluster, EksClusterArgs
from components.grafana import GrafanaArgs
from components.grafana_dashboard import llm_dashboard, serving_dashboard
from components.karpenter import GpuPool, KarpenterArgs
from components.names import GROUP_LABEL, PROMETHEUS_NAMESPACE, PROMETHEUS_URL, deployment_name, resource_name
from components.node_group import NodeGroupArgs
from components.prometheus_queries import (
    in_flight_query,
    llm_slo_alert_rules,
    slo_alert_rules,
    vllm_kv_cache_query,
    vllm_waiting_query,
)
from infra.config.models import Canary, ClusterConfig, NodeGroupConfig
from infra.config.models import KServeDeployment as KServeConfig
from infra.config.rules import CONTAINER_AND_IMAGE_GIB
from infra.platform import StackBase, stack_tags, validated


def cluster_of(p: StackBase) -> ClusterConfig:
    return validated(p.cfg.cluster)


def system_group(p: StackBase) -> NodeGroupConfig:
    """The node group without GPUs (config rules require one): controllers, Prometheus, Grafana run there."""
    return validated(cluster_of(p).system_group())


def kserve_deployments(p: StackBase) -> list[KServeConfig]:
    return [d for d in p.cfg.deployments if isinstance(d, KServeConfig)]


def eks_cluster_args(p: StackBase, deployers: Sequence[pulumi.Input[str]]) -> EksClusterArgs:
    """`deployers`: roles that administer the cluster beside the config's admins (CI's deploy role)."""
    c = cluster_of(p)
    return EksClusterArgs(
        cluster_name=resource_name(p.stack), kubernetes_version=c.kubernetes_version, region=p.cfg.region,
        subnet_ids=p.network.private_subnet_ids, kms_key_arn=p.encryption.key_arn,
        admin_role_arns=(*c.admin_role_arns, *deployers),
        addon_versions={"vpc-cni": c.addons.vpc_cni, "coredns": c.addons.coredns, "kube-proxy": c.addons.kube_proxy,
                        "eks-pod-identity-agent": c.addons.eks_pod_identity_agent,
                        "aws-ebs-csi-driver": c.addons.aws_ebs_csi_driver,
                        "eks-node-monitoring-agent": c.addons.eks_node_monitoring_agent},
        public_access_cidrs=tuple(c.public_access_cidrs), log_retention_days=c.log_retention_days)


def node_group_args(p: StackBase, g: NodeGroupConfig, cluster: EksCluster) -> NodeGroupArgs:
    return NodeGroupArgs(
        cluster_name=cluster.cluster_name, group_name=g.name, subnet_ids=p.network.private_subnet_ids,
        instance_types=tuple(g.instance_types), ami_type=g.ami_type, capacity_type=g.capacity_type,
        min_size=g.min_size, max_size=g.max_size, desired_size=g.desired_size, disk_size_gib=g.disk_size_gib,
        kms_key_arn=p.encryption.key_arn, gpu=g.gpu, tags=stack_tags(p.cfg, p.stack))


def addons_args(p: StackBase, cluster: EksCluster) -> ClusterAddonsArgs:
    """The add-ons, with every KServe deployment's SLO alerts for Prometheus."""
    c = cluster_of(p)
    return ClusterAddonsArgs(
        cluster_name=cluster.cluster_name, region=p.cfg.region, account_id=p.account_id, vpc_id=p.network.vpc_id,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        system_node_group=system_group(p).name,
        charts=ChartPins(**c.charts.model_dump(exclude={"karpenter", "grafana"})), alert_topic_arn=p.topic_arn,
        kms_key_arn=p.encryption.key_arn, tags=stack_tags(p.cfg, p.stack),
        alert_rules=tuple(rule for d in kserve_deployments(p) for rule in alert_rules(p, d)),
        model_cache_pools=tuple(ModelCachePool(pool, cache_gib) for pool, cache_gib in model_cache_pools(p).items()),
        model_cache_reads=ModelCacheReads(p.cfg.model_store.bucket, tuple(sorted(
            m.key for d in kserve_deployments(p) if d.is_llm
            for m in (d.model, *([d.rollout.candidate] if isinstance(d.rollout, Canary) and d.rollout.candidate
                                 else []))))) if model_cache_pools(p) else None)


def model_cache_pools(p: StackBase) -> dict[str, int]:
    """The GPU pools that serve language models, with what their nodes' disk leaves for cached weights."""
    c = cluster_of(p)
    llm_pools = {d.compute.node_group for d in kserve_deployments(p) if d.is_llm}
    return {g.name: c.pool_disk_gib(g) - CONTAINER_AND_IMAGE_GIB for g in c.gpu_pools if g.name in llm_pools}


def alert_rules(p: StackBase, d: KServeConfig) -> list[dict]:
    namespace = deployment_name(p.stack, d.name)
    if d.is_llm:
        return llm_slo_alert_rules(d.name, namespace, validated(d.slo.ttft_p99_ms), validated(d.slo.itl_p99_ms),
                                   d.slo.p99_latency_ms, d.slo.error_rate_percent)
    return slo_alert_rules(d.name, namespace, d.slo.p99_latency_ms, d.slo.error_rate_percent)


def dashboard(p: StackBase, d: KServeConfig) -> dict:
    namespace = deployment_name(p.stack, d.name)
    if d.llm is not None:
        return llm_dashboard(d.name, namespace, vllm_waiting_query(namespace, d.name),
                             vllm_kv_cache_query(namespace, d.name), d.llm.scale_at_waiting,
                             d.llm.scale_at_kv_cache_percent)
    return serving_dashboard(d.name, namespace, in_flight_query(namespace, d.name),
                             validated(d.autoscaling.target_concurrency))


def grafana_args(p: StackBase, addons: ClusterAddons) -> GrafanaArgs:
    """Grafana on the system nodes, one dashboard per KServe deployment."""
    return GrafanaArgs(
        chart_version=cluster_of(p).charts.grafana, namespace=PROMETHEUS_NAMESPACE, prometheus_url=PROMETHEUS_URL,
        node_selector={GROUP_LABEL: system_group(p).name}, after=list(addons.ready),
        dashboards={d.name: dashboard(p, d) for d in kserve_deployments(p)})


def karpenter_args(p: StackBase, cluster: EksCluster) -> KarpenterArgs:
    c = cluster_of(p)
    node_class, system = validated(c.node_class), system_group(p)
    return KarpenterArgs(
        cluster_name=resource_name(p.stack), cluster=cluster.cluster_name, region=p.cfg.region,
        account_id=p.account_id, chart_version=c.charts.karpenter, kms_key_arn=p.encryption.key_arn,
        ami_alias=node_class.ami_alias, disk_size_gib=node_class.disk_size_gib, system_node_group=system.name,
        node_tags=stack_tags(p.cfg, p.stack), controller_replicas=min(2, system.min_size), pools=tuple(GpuPool(
            name=g.name, instance_types=tuple(g.instance_types), capacity_types=tuple(g.capacity_types),
            gpu_limit=g.gpu_limit, cpu_limit=g.cpu_limit, consolidate_after=g.consolidate_after,
            expire_after=g.expire_after, max_disrupted_nodes=g.max_disrupted_nodes, disk_size_gib=g.disk_size_gib,
            model_cache=g.name in model_cache_pools(p)) for g in c.gpu_pools))
