"""ClusterAddons: what a GPU inference cluster runs besides the models, as pinned Helm releases.

Resources (Helm v3 releases, chart versions from config, no hand-copied chart YAML):
- NVIDIA device plugin and DCGM exporter: tolerate the GPU taint and run only on GPU nodes (the device plugin
  crash-loops on CPU nodes); DCGM metrics are scraped by Prometheus.
- cert-manager (KServe's webhooks need certificates), KServe CRDs and controller (chart `kserve-resources` since
  v0.20) in Standard mode, KEDA.
- Prometheus: scrapes Triton's and DCGM's metrics; KEDA scales serving pods on what it reads; its alerting rules
  (each KServe deployment's SLOs) go through Alertmanager to the stack's SNS topic (IRSA role: publish to that topic).
- KServe's node-local model cache, when a GPU pool serves language models: the local-model controller and its
  node agent (charts `kserve-localmodel-crd`, `kserve-localmodel-resources`, same pin), the Jobs' namespace whose
  `default` service account (what KServe runs the download Jobs as) reads the cached models' prefixes through EKS
  Pod Identity, and a LocalModelNodeGroup per such pool whose volumes are the agent's folder on the pool's nodes.
  Each node then downloads a model once, and every replica scheduled there mounts it (KServeService declares the
  caches).
- AWS Load Balancer Controller with its own IRSA role: the internal ALB whose weighted target groups split traffic
  between a stable and a canary InferenceService.

Why Standard mode (named RawDeployment before v0.20): KEDA (autoscaling on a serving signal) works only in it, GPU
pods stay plain Deployments that the platform team already knows how to operate, and no Knative/Istio is needed. Its
cost is that KServe does not weigh traffic between revisions behind an Ingress; the split is therefore done by the
ALB (see KServeService and docs/kserve.md for why v0.20's `spec.canary` does not replace it).
Controllers run on the system node group, never on GPU nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .eks_cluster import irsa_trust_policy
from .names import (
    GROUP_LABEL,
    MODEL_CACHE_ACCOUNT,
    MODEL_CACHE_HOST_PATH,
    MODEL_CACHE_JOBS_NAMESPACE,
    MODEL_CACHE_NODE_LABEL,
    PROMETHEUS_URL,
)
from .policy_document import Statement, render, via_service

STORAGE_CLASS = "mlserve-encrypted-gp3"
"""The StorageClass every claim of the stack names (Prometheus's volume)."""

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_NODES = {"nvidia.com/gpu.present": "true"}
LB_CONTROLLER_SA = "aws-load-balancer-controller"
# GPU health, routed like the SLO alerts: DCGM's XID and frame-buffer gauges (dcgm-exporter's default counters),
# and Karpenter's pool usage against its limits (pods beyond a limit stay Pending).
GPU_HEALTH_RULES: tuple[dict, ...] = (
    # `node` is the scrape job's label (the pod's node); the exporter's own host label changed case after 4.8.2.
    {"alert": "gpu-xid-error", "expr": "max by (node, gpu, UUID) (DCGM_FI_DEV_XID_ERRORS) > 0",
     "labels": {"severity": "critical"},
     "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.node }} reported XID {{ $value }}",
                     "description": "An XID is an NVIDIA driver error (48: double-bit ECC, 79: fallen off the bus, "
                                    "...). The node monitoring agent marks the node AcceleratedHardwareReady=False "
                                    "and node repair replaces it; check that it did."}},
    {"alert": "gpu-memory-pressure", "for": "10m",
     "expr": "max by (node, gpu) (DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) > 0.95",
     "labels": {"severity": "warning"},
     "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.node }} has used over 95% of its memory "
                                "for 10 minutes: the next larger batch or a second model instance fails to allocate"}},
    {"alert": "gpu-pool-near-limit", "for": "15m",
     "expr": 'max by (nodepool) (karpenter_nodepools_usage{resource_type="nvidia.com/gpu"} / '
             'karpenter_nodepools_limit{resource_type="nvidia.com/gpu"}) >= 0.9',
     "labels": {"severity": "warning"},
     "annotations": {"summary": "GPU pool {{ $labels.nodepool }} holds {{ $value | humanizePercentage }} of its GPU "
                                "limit: pods beyond it stay Pending (raise gpu_limit or lower autoscaling.max)"}},
)
ALERTMANAGER_SA = "alertmanager"


@dataclass(frozen=True)
class ChartPins:
    nvidia_device_plugin: str
    dcgm_exporter: str
    cert_manager: str
    kserve: str
    keda: str
    aws_load_balancer_controller: str
    prometheus: str


@dataclass(frozen=True)
class ModelCacheReads:
    """What the download Jobs may read: the released language models' folders."""
    bucket: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class ModelCachePool:
    """A GPU pool whose nodes keep language models on local disk (a LocalModelNodeGroup named after the pool)."""
    name: str
    storage_gib: int
    """What the cache may hold on one node (the pool's disk less the image and the system)."""


@dataclass(frozen=True)
class ClusterAddonsArgs:
    cluster_name: pulumi.Input[str]
    region: str
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    system_node_group: str
    charts: ChartPins
    alert_topic_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    alert_rules: tuple[dict, ...] = ()  # Prometheus alerting rules (prometheus_queries.slo_alert_rules per deployment)
    model_cache_pools: tuple[ModelCachePool, ...] = ()
    """GPU pools serving language models: KServe's local model cache is installed for them; none: not installed."""
    model_cache_reads: ModelCacheReads | None = None
    """With model_cache_pools: the folders the download Jobs read."""
    tags: dict[str, str] = field(default_factory=dict)
    """On every AWS resource the add-ons create (the controller's load balancers, the volumes): the stack's tags, so
    its budget and cost allocation see them."""


def load_balancer_controller_policy(region: str, account_id: pulumi.Input[str], cluster_name: pulumi.Input[str],
                                    vpc_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """What the controller does, scoped: ELBv2 and security groups it creates carry the tag
    `elbv2.k8s.aws/cluster=<cluster>`, and it may change only resources with that tag."""
    arn = lambda service, resource: pulumi.Output.concat(f"arn:aws:{service}:{region}:", account_id, ":", resource)  # noqa: E731
    elb = lambda resource: arn("elasticloadbalancing", resource)  # noqa: E731
    owned_request = {"StringEquals": {"aws:RequestTag/elbv2.k8s.aws/cluster": cluster_name}}
    owned_resource = {"StringEquals": {"aws:ResourceTag/elbv2.k8s.aws/cluster": cluster_name}}
    balancers = [elb("loadbalancer/app/*"), elb("targetgroup/*")]
    return render(
        # Describe/List only: read-only calls that have no resource-level permissions.
        Statement(sid="Discover", actions=[
            "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
            "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags",
            "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
            "elasticloadbalancing:DescribeListenerAttributes", "elasticloadbalancing:DescribeSSLPolicies",
            "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeCapacityReservation",
            "acm:ListCertificates"]),
        # The reads that AWS can scope (the Service Authorization Reference lists a resource type for them).
        Statement(sid="ReadCertificates", actions=["acm:DescribeCertificate"], resources=[arn("acm", "certificate/*")]),
        Statement(sid="ReadThisVpc", actions=["ec2:GetSecurityGroupsForVpc"], resources=[pulumi.Output.concat(
            f"arn:aws:ec2:{region}:", account_id, ":vpc/", vpc_id)]),
        Statement(sid="ServiceLinkedRole", actions=["iam:CreateServiceLinkedRole"], resources=[pulumi.Output.concat(
            "arn:aws:iam::", account_id,
            ":role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing")],
                  conditions={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}),
        Statement(sid="SecurityGroupsInThisVpc", actions=["ec2:CreateSecurityGroup"],
                  resources=[arn("ec2", "security-group/*"), pulumi.Output.concat(
                      f"arn:aws:ec2:{region}:", account_id, ":vpc/", vpc_id)]),
        Statement(sid="TagNewSecurityGroups", actions=["ec2:CreateTags"], resources=[arn("ec2", "security-group/*")],
                  conditions={"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}),
        # Rules on the nodes' security group let the ALB reach pods: security groups of this cluster's VPC only.
        Statement(sid="OpenPodsToTheBalancer", actions=[
            "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                  resources=[arn("ec2", "security-group/*")], conditions={"ArnEquals": {"ec2:Vpc": pulumi.Output.concat(
                      f"arn:aws:ec2:{region}:", account_id, ":vpc/", vpc_id)}}),
        Statement(sid="ManageOwnSecurityGroups", actions=["ec2:DeleteSecurityGroup", "ec2:CreateTags",
                                                          "ec2:DeleteTags"],
                  resources=[arn("ec2", "security-group/*")], conditions=owned_resource),
        Statement(sid="CreateOwnBalancers", actions=[
            "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:AddTags"], resources=balancers, conditions=owned_request),
        Statement(sid="ManageOwnBalancers", actions=[
            "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
            "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
            "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                  resources=balancers, conditions=owned_resource),
        Statement(sid="ListenersAndRules", actions=[
            "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyListenerAttributes",
            "elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:RemoveListenerCertificates",
            "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule", "elasticloadbalancing:ModifyRule",
            "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                  resources=[elb("loadbalancer/app/*"), elb("listener/app/*"), elb("listener-rule/app/*")]),
    )


class ClusterAddons(pulumi.ComponentResource):
    prometheus_url: str

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:compute:ClusterAddons", name, None, opts)
        charts = args.charts
        system = {GROUP_LABEL: args.system_node_group}

        def release(key: str, chart: str, version: str, namespace: str, values: dict, repo: str | None = None,
                    depends_on: list | None = None) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{key}", name=key, chart=chart, version=version, namespace=namespace, create_namespace=True,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None, values=values,
                atomic=True, cleanup_on_fail=True, timeout=900,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []))

        release("nvidia-device-plugin", "nvidia-device-plugin", charts.nvidia_device_plugin, "nvidia-device-plugin",
                {"tolerations": [GPU_TOLERATION], "nodeSelector": GPU_NODES}, "https://nvidia.github.io/k8s-device-plugin")
        release("dcgm-exporter", "dcgm-exporter", charts.dcgm_exporter, "gpu-monitoring", {
            "tolerations": [GPU_TOLERATION], "nodeSelector": GPU_NODES, "serviceMonitor": {"enabled": False},
            "podAnnotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9400"}},
                "https://nvidia.github.io/dcgm-exporter/helm-charts")
        # Alertmanager publishes to the stack's (encrypted) SNS topic with its own IRSA role.
        alertmanager_role = aws.iam.Role(f"{name}-alertmanager", assume_role_policy=irsa_trust_policy(
            args.oidc_provider_arn, args.oidc_issuer, "monitoring", ALERTMANAGER_SA),
                                         opts=pulumi.ResourceOptions(parent=self))
        alertmanager_policy = aws.iam.RolePolicy(f"{name}-alertmanager", role=alertmanager_role.id, policy=render(
            Statement(sid="PublishAlerts", actions=["sns:Publish"], resources=[args.alert_topic_arn]),
            Statement(sid="EncryptForTheTopic", actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                      resources=[args.kms_key_arn], conditions=via_service("sns", args.kms_key_arn))),
            opts=pulumi.ResourceOptions(parent=self))
        # EKS marks no StorageClass default on clusters created at Kubernetes 1.30 or later: a claim that names none
        # stays Pending (on one upgraded from before, it gets gp2: unencrypted, untagged). Volumes
        # come from the EBS CSI driver, encrypted with the stack key and tagged as the stack (the driver's
        # `tagSpecification_<n>` parameters, docs/tagging.md at the pinned add-on's release).
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-encrypted-gp3", metadata={"name": STORAGE_CLASS}, provisioner="ebs.csi.aws.com",
            volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True, reclaim_policy="Delete",
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": args.kms_key_arn,
                        **{f"tagSpecification_{i}": f"{k}={v}" for i, (k, v) in enumerate(sorted(args.tags.items()),
                                                                                          start=1)}},
            opts=pulumi.ResourceOptions(parent=self))
        prometheus = release("prometheus", "prometheus", charts.prometheus, "monitoring", {
            "prometheus-pushgateway": {"enabled": False}, "prometheus-node-exporter": {"enabled": False},
            "server": {"retention": "15d", "nodeSelector": system,
                       "persistentVolume": {"size": "50Gi", "storageClass": STORAGE_CLASS}},
            "serverFiles": {"alerting_rules.yml": {"groups": [
                {"name": "mlserve-slo", "rules": list(args.alert_rules)},
                {"name": "mlserve-gpu-health", "rules": list(GPU_HEALTH_RULES)}]}},
            "alertmanager": {
                # The chart's default claim (2Gi) names no class: Pending on EKS, and no alert would leave.
                "enabled": True, "nodeSelector": system,
                "persistence": {"enabled": True, "size": "2Gi", "storageClass": STORAGE_CLASS},
                "serviceAccount": {"create": True, "name": ALERTMANAGER_SA,
                                   "annotations": {"eks.amazonaws.com/role-arn": alertmanager_role.arn}},
                "config": {
                    "route": {"receiver": "stack-topic", "group_by": ["alertname", "deployment"],
                              "group_wait": "30s", "repeat_interval": "4h"},
                    "receivers": [{"name": "stack-topic", "sns_configs": [{
                        "topic_arn": args.alert_topic_arn, "sigv4": {"region": args.region},
                        "subject": "mlserve: {{ .CommonLabels.alertname }}", "send_resolved": True}]}]}}},
                             "https://prometheus-community.github.io/helm-charts",
                             depends_on=[alertmanager_policy, storage_class])
        cert_manager = release("cert-manager", "cert-manager", charts.cert_manager, "cert-manager", {
            "crds": {"enabled": True}, "nodeSelector": system, "webhook": {"nodeSelector": system},
            "cainjector": {"nodeSelector": system}}, "https://charts.jetstack.io")
        keda = release("keda", "keda", charts.keda, "keda", {"nodeSelector": system}, "https://kedacore.github.io/charts")
        kserve_crd = release("kserve-crd", "oci://ghcr.io/kserve/charts/kserve-crd", charts.kserve, "kserve", {})
        kserve = release("kserve", "oci://ghcr.io/kserve/charts/kserve-resources", charts.kserve, "kserve", {"kserve": {
            "controller": {"deploymentMode": "Standard", "nodeSelector": system,
            # Ingresses are ours (KServeService): one internal ALB per deployment with the canary split.
            "gateway": {"disableIngressCreation": True}},
            # The storage initializer runs in the serving pods: Pod Security `restricted` applies to it too.
            "storage": {"containerSecurityContext": {
                "allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
                "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}}},
            **({"localmodel": {"enabled": True}} if args.model_cache_pools else {})}},
            depends_on=[cert_manager, kserve_crd])
        # What serving LLMs waits for: the cache's CRDs, controller and the Jobs' namespace.
        model_cache = self._model_cache(name, args, release, kserve) if args.model_cache_pools else []

        lb_role = aws.iam.Role(f"{name}-lb-controller", assume_role_policy=irsa_trust_policy(
            args.oidc_provider_arn, args.oidc_issuer, "kube-system", LB_CONTROLLER_SA),
                               opts=pulumi.ResourceOptions(parent=self))
        lb_policy = aws.iam.RolePolicy(f"{name}-lb-controller", role=lb_role.id, policy=load_balancer_controller_policy(
            args.region, args.account_id, args.cluster_name, args.vpc_id), opts=pulumi.ResourceOptions(parent=self))
        lb_controller = release("aws-load-balancer-controller", "aws-load-balancer-controller", charts.aws_load_balancer_controller,
                "kube-system", {
                    # Region and VPC given: the controller never needs instance metadata (hop limit 1 on nodes).
                    "clusterName": args.cluster_name, "region": args.region, "vpcId": args.vpc_id,
                    # No WAF or Shield on these internal ALBs (the API's WAF is at the gateway): no rights for them.
                    "enableShield": False, "enableWaf": False, "enableWafv2": False,
                    # The ALBs, target groups and security groups it makes carry the stack's tags (chart 3.5.0).
                    "defaultTags": dict(args.tags),
                    "nodeSelector": system, "serviceAccount": {"create": True, "name": LB_CONTROLLER_SA, "annotations": {
                        "eks.amazonaws.com/role-arn": lb_role.arn}}},
                "https://aws.github.io/eks-charts", depends_on=[lb_policy])

        self.prometheus_url = PROMETHEUS_URL
        # What serving resources wait for: the CRDs they use, the metrics they scale on, the ingress webhook.
        self.ready = [kserve, keda, prometheus, lb_controller, *model_cache]
        self.register_outputs({"load_balancer_controller_role_arn": lb_role.arn})

    def _model_cache(self, name: str, args: ClusterAddonsArgs, release,
                     kserve: k8s.helm.v3.Release) -> list[pulumi.Resource]:
        """KServe's local model cache for the pools that serve language models; returns what serving waits for."""
        crds = release("kserve-localmodel-crd", "oci://ghcr.io/kserve/charts/kserve-localmodel-crd", args.charts.kserve,
                       "kserve", {}, depends_on=[kserve])
        label, value = MODEL_CACHE_NODE_LABEL
        # The agent runs on the GPU pools' nodes (tainted): it downloads where models are served. (Its host folder is
        # fixed in the chart's DaemonSet: MODEL_CACHE_HOST_PATH.)
        agent = release("kserve-localmodel", "oci://ghcr.io/kserve/charts/kserve-localmodel-resources",
                        args.charts.kserve, "kserve", {"kserve": {"localmodelnode": {"controller": {
                            "nodeSelector": {label: value}, "tolerations": [GPU_TOLERATION]}}}},
                        depends_on=[crds])
        jobs = k8s.core.v1.Namespace(f"{name}-model-cache-jobs", metadata={
            "name": MODEL_CACHE_JOBS_NAMESPACE, "labels": {
                "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"}},
            opts=pulumi.ResourceOptions(parent=self))
        reads = args.model_cache_reads
        assert reads is not None, "model_cache_pools need model_cache_reads"
        # KServe builds the download Job's pod with no service account (localmodelnode controller, launchJob): it
        # runs as `default`, which gets the read role through EKS Pod Identity (the nodes have no S3 rights and no
        # instance metadata past hop 1).
        role = aws.iam.Role(f"{name}-model-cache", assume_role_policy=render(Statement(
            sid="EksPodIdentity", actions=["sts:AssumeRole", "sts:TagSession"], resources=(),
            principals={"Service": "pods.eks.amazonaws.com"},
            conditions={"StringEquals": {"aws:SourceAccount": args.account_id}})),
            opts=pulumi.ResourceOptions(parent=self))
        policy = aws.iam.RolePolicy(f"{name}-model-cache", role=role.id, policy=render(
            Statement(sid="ReadCachedModels", actions=["s3:GetObject"],
                      resources=[f"arn:aws:s3:::{reads.bucket}/{prefix}*" for prefix in reads.prefixes]),
            Statement(sid="ListCachedModels", actions=["s3:ListBucket"], resources=[f"arn:aws:s3:::{reads.bucket}"],
                      conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in reads.prefixes]}}),
            Statement(sid="DecryptModels", actions=["kms:Decrypt"], resources=[args.kms_key_arn],
                      conditions=via_service("s3", args.kms_key_arn))), opts=pulumi.ResourceOptions(parent=self))
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-model-cache", cluster_name=args.cluster_name, namespace=MODEL_CACHE_JOBS_NAMESPACE,
            service_account="default", role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[jobs, policy]))
        # What a LocalModelCache names: KServe reads its annotations for the Job's S3 environment (region, endpoint,
        # TLS), and only while it carries a role ARN (pkg/credentials: BuildServiceAccountEnvs).
        account = k8s.core.v1.ServiceAccount(f"{name}-model-cache-account", automount_service_account_token=False,
                                             metadata={"name": MODEL_CACHE_ACCOUNT, "namespace": MODEL_CACHE_JOBS_NAMESPACE,
                                                       "annotations": {
                                                           "eks.amazonaws.com/role-arn": role.arn,
                                                           "serving.kserve.io/s3-region": args.region,
                                                           "serving.kserve.io/s3-endpoint": f"s3.{args.region}.amazonaws.com",
                                                           "serving.kserve.io/s3-usehttps": "1"}},
                                             opts=pulumi.ResourceOptions(parent=self, depends_on=[jobs]))
        for pool in args.model_cache_pools:
            size = f"{pool.storage_gib}Gi"
            k8s.apiextensions.CustomResource(
                f"{name}-model-cache-{pool.name}", api_version="serving.kserve.io/v1alpha1", kind="LocalModelNodeGroup",
                metadata={"name": pool.name}, spec={
                    "storageLimit": size,
                    "persistentVolumeSpec": {
                        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size},
                        "local": {"path": MODEL_CACHE_HOST_PATH}, "storageClassName": "mlserve-local-models",
                        "persistentVolumeReclaimPolicy": "Retain",
                        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                            {"key": GROUP_LABEL, "operator": "In", "values": [pool.name]}]}]}}},
                    "persistentVolumeClaimSpec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                        "storageClassName": "mlserve-local-models"}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, agent]))
        return [crds, agent, jobs, identity, account]
