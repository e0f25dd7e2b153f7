"""The platform in one screen: validated stack config in, components out.

Only here and in the args layer (`infra/deployment_args.py`: each deployment's config to its component's args;
`infra/cluster_args.py`: the cluster block's; `infra/platform.py`: what they share) does configuration become
component args. Nothing is declared at import time: `declare` is called by `infra/__main__.py` under the
Pulumi CLI and by the offline plan and tests under the mock engine.
Each deployment is one component (SageMakerDeployment or KServeDeployment) that owns its alarms, scaling, gateway
and drift; `declare` builds the shared platform and loops over the deployments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.alerting import BUDGETS_PUBLISHER, DEFAULT_PUBLISHERS, Alerting, AlertingArgs
from components.api_gateway_account import ApiGatewayAccount
from components.budget import StackBudget, StackBudgetArgs
from components.ci_access import CI_PATH, CiAccess, CiAccessArgs, CodeBuildTarget, ci_role_name
from components.cluster_addons import ClusterAddons
from components.dashboard import Dashboard, DashboardArgs, DeploymentPanel
from components.eks_cluster import EksCluster
from components.encryption import BUDGETS, CLOUDWATCH_ALARMS, EVENTS, LOGS, Encryption, EncryptionArgs
from components.grafana import Grafana
from components.in_vpc_deployer import (
    InVpcDeployer,
    InVpcDeployerArgs,
    deploy_log_group_name,
    deploy_project_name,
    deploy_source_bucket,
)
from components.karpenter import Karpenter
from components.kserve_deployment import KServeDeployment
from components.model_audit import ModelAudit, ModelAuditArgs
from components.model_store import ModelStore, ModelStoreArgs
from components.names import (
    KARPENTER_DISCOVERY_TAG,
    PRIMARY_VARIANT,
    STACK_TAG,
    deployment_name,
    endpoint_name,
    image_repository_name,
    resource_name,
)
from components.network import Network, NetworkArgs
from components.node_group import NodeGroup
from components.sagemaker_deployment import SageMakerDeployment
from components.sagemaker_endpoint import SageMakerEndpoint
from infra.cluster_args import (
    addons_args,
    cluster_of,
    eks_cluster_args,
    grafana_args,
    karpenter_args,
    node_group_args,
)
from infra.config import StackConfig
from infra.config.models import HttpsRetraining
from infra.config.models import SageMakerDeployment as SageMakerConfig
from infra.deployment_args import host_args, kserve_args, sagemaker_args, sagemaker_outputs
from infra.platform import KubernetesPlatform, StackBase, stack_tags, validated

SECRET_SAFE_KEYS = frozenset({"mlserve:alerting"})


def declare(cfg: StackConfig, stack: str) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (the caller exports them)."""
    provider = aws.Provider("aws", region=cfg.region, allowed_account_ids=[cfg.account_id] if cfg.account_id else None,
                            default_tags=aws.ProviderDefaultTagsArgs(tags=stack_tags(cfg, stack)))
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
    store = ModelStore(resource_name(stack), ModelStoreArgs(
        bucket_name=cfg.model_store.bucket, kms_key_arn=encryption.key_arn,
        image_repositories=tuple(sorted({image_repository_name(stack, d.image.repository) for d in cfg.deployments})),
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
    # With `mlserve:ci`, CI deploys from the second up on: its roles, and an in-VPC runner with the VPC it runs in,
    # come with the first (docs/ci-deploy.md).
    in_vpc_ci = cfg.ci is not None and cfg.ci.runner == "codebuild"
    network = Network(resource_name(stack), NetworkArgs(
        cidr=cfg.network.cidr, availability_zones=zones, nat_gateway_per_az=cfg.is_prod, region=cfg.region,
        account_id=account_id,
        kms_key_arn=encryption.key_arn, flow_log_retention_days=cfg.network.flow_log_retention_days,
        private_subnet_tags={KARPENTER_DISCOVERY_TAG: resource_name(stack)} if cfg.cluster and cfg.cluster.gpu_pools
        else {}), opts=with_provider) if cfg.phase == "all" or in_vpc_ci else None
    ci = deploy_path(cfg, stack, account_id, encryption.key_arn, alerting.topic_arn, network, with_provider) \
        if cfg.ci else None
    if cfg.phase == "stores":
        # A new stack's first up: the stores the image is pushed to and the model released into, and what watches
        # them; nothing that serves (docs/first-deployment.md). `mlserve:phase: all` declares the rest.
        return {"region": cfg.region, "alert_topic_arn": alerting.topic_arn, "kms_key_arn": encryption.key_arn,
                "model_bucket": store.bucket_name, "image_repositories": store.repository_urls}
    assert network is not None
    # Every deployment's API logs its stages: the account's CloudWatch role must exist before any stage does (one
    # stack per account and region manages it; the others rely on it).
    logging_ready: list[pulumi.Resource] = [ApiGatewayAccount(resource_name(stack), opts=with_provider)] \
        if cfg.gateway.account_settings == "manage" else []
    base = StackBase(cfg, stack, account_id, encryption, network, store, alerting.topic_arn, invoke)
    cluster = kubernetes_platform(base, with_provider, (ci.access.deploy_role_arn,) if ci else ()) \
        if cfg.cluster else None
    if ci and ci.runner and cluster:
        ci.runner.admit_to_cluster_api(cluster.eks.security_group_id)

    hosts = inference_component_hosts(base, sagemaker_opts)
    endpoints, api_urls, panels, key_ids, key_values = {}, {}, [], {}, {}
    for d in cfg.deployments:
        name = deployment_name(stack, d.name)
        deployment: SageMakerDeployment | KServeDeployment
        if isinstance(d, SageMakerConfig):
            deployment = SageMakerDeployment(name, sagemaker_args(base, d, logging_ready, hosts),
                                             opts=sagemaker_opts)
            endpoints[d.name] = sagemaker_outputs(cfg, deployment)
            panels.append(DeploymentPanel(
                name=d.name, endpoint_name=endpoint_name(stack, d.endpoint_group), variant_name=PRIMARY_VARIANT,
                inference_component_name=name if d.hosting == "inference_components" else None, api_name=name,
                drift=d.drift.enabled, prediction_drift=d.drift.prediction_psi_alarm_threshold is not None))
        else:  # KServe: the gateway on the dashboard; model latency, GPUs and replicas in Prometheus (DCGM, Triton)
            assert cluster is not None, "config validation requires a cluster for KServe deployments"
            both = pulumi.ResourceOptions(providers=[provider, cluster.eks.provider])
            deployment = KServeDeployment(name, kserve_args(base, d, cluster, logging_ready), opts=both)
            api_urls[d.name] = deployment.api_url
            panels.append(DeploymentPanel(name=d.name, api_name=name, drift=d.drift.enabled,
                                          prediction_drift=d.drift.prediction_psi_alarm_threshold is not None))
        key_ids.update({f"{d.name}/{t}": k for t, k in deployment.api_key_ids.items()})
        key_values.update({f"{d.name}/{t}": v for t, v in deployment.api_key_values.items()})
    dashboard = Dashboard(resource_name(stack), DashboardArgs(
        dashboard_name=resource_name(stack), region=cfg.region, deployments=panels), opts=with_provider)

    return {
        "region": cfg.region,
        "alert_topic_arn": alerting.topic_arn,
        "dashboard": dashboard.dashboard_name,
        "endpoints": endpoints,
        "api_key_ids": key_ids,
        "api_key_values": pulumi.Output.secret(key_values),
        "kms_key_arn": encryption.key_arn,
        "vpc_id": network.vpc_id,
        "private_subnet_ids": network.private_subnet_ids,
        "model_bucket": store.bucket_name,
        "image_repositories": store.repository_urls,
        **({"cluster_name": cluster.eks.cluster_name, "kubeconfig": cluster.eks.kubeconfig,
            "kserve_api_urls": api_urls} if cluster else {}),
    }


def kubernetes_platform(p: StackBase, opts: pulumi.ResourceOptions,
                        deployers: tuple[pulumi.Input[str], ...] = ()) -> KubernetesPlatform:
    """The EKS cluster, its node groups, the add-ons every KServe deployment needs, Grafana and Karpenter's GPU
    pools; `deployers`: roles that administer the cluster beside the config's admins (CI's deploy role)."""
    cluster = EksCluster(resource_name(p.stack), eks_cluster_args(p, deployers), opts=opts)
    groups = [NodeGroup(resource_name(p.stack, g.name), node_group_args(p, g, cluster), opts=opts)
              for g in cluster_of(p).node_groups]
    # Components holding AWS and Kubernetes resources get both providers; each child picks its package's.
    both = pulumi.ResourceOptions(providers=[validated(opts.provider), cluster.provider], depends_on=groups)
    addons = ClusterAddons(resource_name(p.stack), addons_args(p, cluster), opts=both)
    Grafana(resource_name(p.stack), grafana_args(p, addons), opts=pulumi.ResourceOptions(provider=cluster.provider))
    if not cluster_of(p).gpu_pools:
        return KubernetesPlatform(cluster, addons, list(addons.ready))
    karpenter = Karpenter(resource_name(p.stack, "karpenter"), karpenter_args(p, cluster), opts=both)
    return KubernetesPlatform(cluster, addons, [*addons.ready, karpenter])


@dataclass(frozen=True)
class DeployPath:
    access: CiAccess
    runner: InVpcDeployer | None


def deploy_path(cfg: StackConfig, stack: str, account_id: pulumi.Input[str], key_arn: pulumi.Input[str],
                topic_arn: pulumi.Input[str], network: Network | None, opts: pulumi.ResourceOptions) -> DeployPath:
    """How GitHub Actions deploys the stack (`mlserve:ci`): roles trusted by exactly one job, and with runner
    codebuild the build in the private subnets that runs `pulumi up`, its source bucket audited as the model
    store is: who uploaded what was deployed (docs/ci-deploy.md)."""
    ci = validated(cfg.ci)
    runner = None
    if ci.runner == "codebuild":
        net = validated(network)
        source = deploy_source_bucket(stack, validated(cfg.account_id))
        runner = InVpcDeployer(resource_name(stack, "ci"), InVpcDeployerArgs(
            stack=stack, project_name=deploy_project_name(stack), account_id=account_id, region=cfg.region,
            source_bucket_name=source,
            vpc_id=net.vpc_id, subnet_ids=net.private_subnet_ids, kms_key_arn=key_arn,
            log_group_name=deploy_log_group_name(stack), log_retention_days=cfg.logs.retention_days,
            deploy_role_arn=pulumi.Output.concat("arn:aws:iam::", account_id, f":role{CI_PATH}",
                                                 ci_role_name(stack, "deploy")),
            backend_url=ci.backend_url, pulumi_version=ci.pulumi_version,
            access_token_secret_arn=ci.access_token_secret_arn, force_destroy=not cfg.is_prod), opts=opts)
        ModelAudit(resource_name(stack, "ci"), ModelAuditArgs(
            trail_name=resource_name(stack, "ci-source"), model_bucket_name=source,
            model_bucket_arn=runner.source_bucket_arn, kms_key_arn=key_arn, account_id=account_id, region=cfg.region,
            alert_topic_arn=topic_arn, retention_days=cfg.logs.retention_days, object_lock=cfg.is_prod,
            force_destroy=not cfg.is_prod), opts=opts)
    backend = ci.backend_url.removeprefix("s3://").split("/")[0].split("?")[0] \
        if ci.backend_url.startswith("s3://") else None
    access = CiAccess(resource_name(stack, "ci"), CiAccessArgs(
        stack=stack, account_id=account_id, region=cfg.region, repository=ci.repository, environment=ci.environment,
        manage_oidc_provider=ci.github_oidc_provider == "manage", kms_key_arn=key_arn,
        secrets_key_alias=ci.secrets_key_alias, state_bucket=backend,
        codebuild=CodeBuildTarget(runner.role_arn, runner.project_arn, runner.source_bucket_arn, runner.log_group_arn)
        if runner else None), opts=opts)
    return DeployPath(access, runner)


def inference_component_hosts(p: StackBase, opts: pulumi.ResourceOptions) -> dict[str, SageMakerEndpoint]:
    """The endpoints inference components run on, by endpoint group: deployments naming the same `endpoint` share
    one, and its instances (rules.shared_endpoints_agree checks they agree on what an endpoint sets once)."""
    groups: dict[str, list[SageMakerConfig]] = {}
    for d in p.cfg.deployments:
        if isinstance(d, SageMakerConfig) and d.hosting == "inference_components":
            groups.setdefault(d.endpoint_group, []).append(d)
    return {group: SageMakerEndpoint(endpoint_name(p.stack, group), host_args(p, group, members), opts=opts)
            for group, members in groups.items()}
