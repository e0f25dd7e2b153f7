"""Karpenter: GPU nodes that appear when serving pods are pending and leave when they are empty.

Resources, in the order a node's life needs them:
- the interruption queue (SQS, encrypted with the stack key, 5-minute retention as upstream) and the EventBridge rules
  upstream routes to it (spot interruption, rebalance recommendation, instance state change, AWS Health scheduled
  events, capacity-reservation interruption), with a queue policy that accepts only those rules, over TLS;
- the node role (worker, CNI, ECR pull: no SSM shell on GPU nodes) and its EKS access entry (EC2_LINUX);
- the controller role: upstream's reference policy (karpenter-provider-aws v1.14.1, CloudFormation) scoped to this
  cluster's tags, account and region, minus what mlserve does not use (zonal shift, capacity reservations,
  placement groups), plus the stack key for the encrypted queue and volumes. It reaches the pod through EKS Pod
  Identity: the trust names one fixed service principal instead of the cluster's OIDC issuer, the association is an
  AWS resource that names namespace and service account, and the agent (a pinned add-on) already runs;
- the `karpenter-crd` and `karpenter` charts (same pin; CRDs through their own chart so that upgrades update them),
  on the system node group, with node repair on (acting on the node monitoring agent's conditions);
- an EC2NodeClass, shared, and one for each pool that sizes its own disk (private subnets and the cluster security
  group found by tag, a pinned AMI alias, IMDSv2 with hop limit 1, encrypted gp3 volume with the stack key, the
  stack's tags on everything it launches) and one NodePool per GPU pool (GPU taint, the label KServe pods select
  on, limits, consolidation when empty, a disruption budget).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .names import (
    GROUP_LABEL,
    KARPENTER_DISCOVERY_TAG,
    KARPENTER_NAMESPACE,
    KARPENTER_SERVICE_ACCOUNT,
    MODEL_CACHE_HOST_PATH,
    MODEL_CACHE_NODE_LABEL,
)
from .policy_document import Statement, assume_role_policy, render

NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
NODE_CLASS = "gpu"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
# Upstream's rules (cloudformation.yaml at v1.14.1): what the controller learns about a node before it goes away.
INTERRUPTION_EVENTS = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "capacity-reservation-interruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}


@dataclass(frozen=True)
class GpuPool:
    """One NodePool: which GPU instances, bought how, and how many at most."""
    name: str  # also the `mlserve.io/node-group` label the pool's nodes carry
    instance_types: tuple[str, ...]  # families ("g5") or exact types ("g5.2xlarge")
    capacity_types: tuple[str, ...]  # "on-demand", "spot"
    gpu_limit: int
    cpu_limit: int
    consolidate_after: str = "10m"
    expire_after: str = "720h"
    max_disrupted_nodes: int = 1
    disk_size_gib: int | None = None  # its own EC2NodeClass with this root volume; None: the shared one
    model_cache: bool = False
    """Its nodes keep language models on local disk (KServe's local-model agent runs on them)."""


def node_class_name(pool: GpuPool) -> str:
    """The shared class (`gpu`), or the pool's own when it sizes its disk or keeps a model cache (language models)."""
    return f"{NODE_CLASS}-{pool.name}" if pool.disk_size_gib or pool.model_cache else NODE_CLASS


# KServe's local-model agent is non-root (distroless) and its chart mounts the node folder as a hostPath it would
# create root-owned: the folder must exist writable first, as upstream's own model-cache e2e makes it
# (.github/workflows/e2e-test-modelcache.yaml at v0.20.0: `mkdir -p -m=777 /models`). AL2023 nodes run a MIME part
# of type text/x-shellscript before joining (Karpenter merges it with its own nodeadm part).
MODEL_CACHE_USER_DATA = (
    'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="MLSERVE"\n\n--MLSERVE\n'
    'Content-Type: text/x-shellscript; charset="us-ascii"\n\n#!/bin/bash\n'
    f"mkdir -p -m 0777 {MODEL_CACHE_HOST_PATH}\n--MLSERVE--\n")


@dataclass(frozen=True)
class KarpenterArgs:
    cluster_name: str  # known when the program runs: the controller policy's condition keys contain it
    cluster: pulumi.Input[str]  # the cluster's name as an output, so that everything here waits for the cluster
    region: str
    account_id: pulumi.Input[str]
    chart_version: str
    kms_key_arn: pulumi.Input[str]
    ami_alias: str  # "al2023@v20260818" or "bottlerocket@v1.x.y"
    disk_size_gib: int
    pools: tuple[GpuPool, ...]
    system_node_group: str
    node_tags: dict[str, str] = field(default_factory=dict)  # provider default tags do not reach launched nodes
    controller_replicas: int = 2
    partition: str = "aws"


def controller_statements(cluster_name: str, region: str, account_id: pulumi.Input[str], node_role_arn: pulumi.Input[str],
                          queue_arn: pulumi.Input[str], kms_key_arn: pulumi.Input[str],
                          partition: str = "aws") -> list[Statement]:
    """Upstream's controller policy for this cluster; tests/kubernetes/test_karpenter.py proves it allows nothing
    that upstream's reference does not, except the stack-key statements (upstream assumes AWS-managed keys)."""
    def ec2(resource: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"arn:{partition}:ec2:{region}:", account_id, f":{resource}")

    owned = f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}"
    requested = f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}"
    launched = [ec2(r) for r in ("fleet/*", "instance/*", "volume/*", "network-interface/*", "launch-template/*",
                                 "spot-instances-request/*")]
    profiles = pulumi.Output.concat(f"arn:{partition}:iam::", account_id, ":instance-profile/*")
    return [
        Statement(sid="AllowScopedEC2InstanceAccessActions", actions=["ec2:RunInstances", "ec2:CreateFleet"],
                  resources=[f"arn:{partition}:ec2:{region}::image/*", f"arn:{partition}:ec2:{region}::snapshot/*",
                             ec2("security-group/*"), ec2("subnet/*")]),
        Statement(sid="AllowScopedEC2LaunchTemplateAccessActions", actions=["ec2:RunInstances", "ec2:CreateFleet"],
                  resources=[ec2("launch-template/*")],
                  conditions={"StringEquals": {owned: "owned"},
                              "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}),
        Statement(sid="AllowScopedEC2InstanceActionsWithTags",
                  actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"], resources=launched,
                  conditions={"StringEquals": {requested: "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name},
                              "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}),
        Statement(sid="AllowScopedResourceCreationTagging", actions=["ec2:CreateTags"], resources=launched,
                  conditions={"StringEquals": {
                      requested: "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                      "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                              "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}),
        Statement(sid="AllowScopedResourceTagging", actions=["ec2:CreateTags"], resources=[ec2("instance/*")],
                  conditions={"StringEquals": {owned: "owned"},
                              "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                              "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                              "ForAllValues:StringEquals": {
                                  "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}),
        Statement(sid="AllowScopedDeletion", actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                  resources=[ec2("instance/*"), ec2("launch-template/*")],
                  conditions={"StringEquals": {owned: "owned"},
                              "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}),
        Statement(sid="AllowPassingInstanceRole", actions=["iam:PassRole"], resources=[node_role_arn],
                  conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        Statement(sid="AllowScopedInstanceProfileCreationActions", actions=["iam:CreateInstanceProfile"],
                  resources=[profiles],
                  conditions={"StringEquals": {requested: "owned",
                                               "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                                               "aws:RequestTag/topology.kubernetes.io/region": region},
                              "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}),
        Statement(sid="AllowScopedInstanceProfileTagActions", actions=["iam:TagInstanceProfile"], resources=[profiles],
                  conditions={"StringEquals": {owned: "owned", "aws:ResourceTag/topology.kubernetes.io/region": region,
                                               requested: "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                                               "aws:RequestTag/topology.kubernetes.io/region": region},
                              "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                             "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}),
        Statement(sid="AllowScopedInstanceProfileActions", actions=[
            "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
                  resources=[profiles],
                  conditions={"StringEquals": {owned: "owned", "aws:ResourceTag/topology.kubernetes.io/region": region},
                              "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}),
        Statement(sid="AllowAPIServerEndpointDiscovery", actions=["eks:DescribeCluster"], resources=[
            pulumi.Output.concat(f"arn:{partition}:eks:{region}:", account_id, f":cluster/{cluster_name}")]),
        Statement(sid="AllowInterruptionQueueActions",
                  actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"], resources=[queue_arn]),
        Statement(sid="AllowRegionalReadActions", actions=[
            "ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
            "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
            "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
                  conditions={"StringEquals": {"aws:RequestedRegion": region}}),
        Statement(sid="AllowSSMReadActions", actions=["ssm:GetParameter"],
                  resources=[f"arn:{partition}:ssm:{region}::parameter/aws/service/*"]),
        Statement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"]),
        Statement(sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"]),
        Statement(sid="AllowInstanceProfileReadActions", actions=["iam:GetInstanceProfile"], resources=[profiles]),
        # Beyond upstream: the queue and the node volumes use the stack's key, not AWS-managed ones.
        Statement(sid="StackKeyReadsTheInterruptionQueue", actions=["kms:Decrypt"], resources=[kms_key_arn],
                  conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}}),
        Statement(sid="StackKeyEncryptsNodeVolumes", actions=[
            "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
            "kms:DescribeKey"], resources=[kms_key_arn],
                  conditions={"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}}),
        Statement(sid="StackKeyGrantsForNodeVolumes", actions=["kms:CreateGrant"], resources=[kms_key_arn],
                  conditions={"Bool": {"kms:GrantIsForAWSResource": "true"},
                              "StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}}),
    ]


def node_pool_spec(pool: GpuPool) -> dict:
    """The NodePool's spec: what KServe's GPU pods need, bought the way the pool says, within its limits."""
    families = all("." not in t for t in pool.instance_types)
    return {
        "template": {
            "metadata": {"labels": {GROUP_LABEL: pool.name, "nvidia.com/gpu.present": "true",
                                    **(dict([MODEL_CACHE_NODE_LABEL]) if pool.model_cache else {})}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class_name(pool)},
                "taints": [GPU_TAINT],
                "requirements": [
                    {"key": "karpenter.k8s.aws/instance-family" if families else "node.kubernetes.io/instance-type",
                     "operator": "In", "values": list(pool.instance_types)},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                "expireAfter": pool.expire_after,
                # Expiry and repair drain through PodDisruptionBudgets; this bounds how long one may hold a node.
                "terminationGracePeriod": "1h",
            },
        },
        "limits": {"cpu": str(pool.cpu_limit), "nvidia.com/gpu": str(pool.gpu_limit)},
        # Only empty nodes go: moving a loaded GPU pod means a cold start (model download, engine warm-up).
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": pool.consolidate_after,
                       "budgets": [{"nodes": str(pool.max_disrupted_nodes)}]},
    }


def node_class_spec(role_name: pulumi.Input[str], cluster_name: str, ami_alias: str, disk_size_gib: int,
                    kms_key_arn: pulumi.Input[str], tags: dict[str, str], user_data: str | None = None) -> dict:
    # Bottlerocket keeps images on its data volume (/dev/xvdb); AL2023 on the root volume.
    bottlerocket = ami_alias.startswith("bottlerocket@")
    return {
        "role": role_name,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}],
        # EKS tags the cluster security group it creates with this reserved key; nothing else can carry it.
        "securityGroupSelectorTerms": [{"tags": {"aws:eks:cluster-name": cluster_name}}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1,
                            "httpTokens": "required"},
        "blockDeviceMappings": [{
            "deviceName": "/dev/xvdb" if bottlerocket else "/dev/xvda", "rootVolume": not bottlerocket,
            "ebs": {"volumeSize": f"{disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True,
                    "kmsKeyID": kms_key_arn, "deleteOnTermination": True}}],
        "tags": tags,
        **({"userData": user_data} if user_data else {}),
    }


class Karpenter(pulumi.ComponentResource):
    queue_name: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    controller_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:compute:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        queue = aws.sqs.Queue(f"{name}-interruptions", name=args.cluster_name, message_retention_seconds=300,
                              kms_master_key_id=args.kms_key_arn, kms_data_key_reuse_period_seconds=300, opts=child)
        rules = []
        for key, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{key}", description=f"{detail_type} -> Karpenter",
                                            event_pattern=json.dumps({"source": [source],
                                                                      "detail-type": [detail_type]}), opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{key}", rule=rule.name, arn=queue.arn,
                                       target_id="KarpenterInterruptionQueueTarget", opts=child)
            rules.append(rule.arn)
        aws.sqs.QueuePolicy(f"{name}-interruptions", queue_url=queue.id, policy=render(
            Statement(sid="EventBridgeRulesOnly", actions=["sqs:SendMessage"], resources=[queue.arn],
                      principals={"Service": "events.amazonaws.com"},
                      conditions={"ArnEquals": {"aws:SourceArn": rules}}),
            Statement(sid="DenyHTTP", effect="Deny", actions=["sqs:*"], resources=[queue.arn], principals={"AWS": "*"},
                      conditions={"Bool": {"aws:SecureTransport": "false"}})), opts=child)

        node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
                                 opts=child)
        for policy in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=node_role.name,
                                         policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}", opts=child)
        access = aws.eks.AccessEntry(f"{name}-nodes", cluster_name=args.cluster, principal_arn=node_role.arn,
                                     type="EC2_LINUX", opts=child)

        controller_role = aws.iam.Role(f"{name}-controller", assume_role_policy=render(Statement(
            sid="EksPodIdentity", actions=["sts:AssumeRole", "sts:TagSession"], resources=(),
            principals={"Service": "pods.eks.amazonaws.com"},
            conditions={"StringEquals": {"aws:SourceAccount": args.account_id}})), opts=child)
        controller_policy = aws.iam.RolePolicy(f"{name}-controller", role=controller_role.id, policy=render(
            *controller_statements(args.cluster_name, args.region, args.account_id, node_role.arn, queue.arn,
                                   args.kms_key_arn, args.partition)), opts=child)
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-controller", cluster_name=args.cluster, namespace=KARPENTER_NAMESPACE,
            service_account=KARPENTER_SERVICE_ACCOUNT, role_arn=controller_role.arn, opts=child)

        def release(key: str, values: dict, depends_on: list) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{key}", name=key, chart=f"oci://public.ecr.aws/karpenter/{key}", version=args.chart_version,
                namespace=KARPENTER_NAMESPACE, values=values, skip_crds=key == "karpenter", atomic=True,
                cleanup_on_fail=True, timeout=600, opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))

        crds = release("karpenter-crd", {}, [])
        controller = release("karpenter", {
            "replicas": args.controller_replicas,
            # Prometheus scrapes it (pool usage against limits, disruptions: see ClusterAddons' GPU rules).
            "podAnnotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
            "serviceAccount": {"create": True, "name": KARPENTER_SERVICE_ACCOUNT},
            "nodeSelector": {"kubernetes.io/os": "linux", GROUP_LABEL: args.system_node_group},
            "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}},
            "settings": {"clusterName": args.cluster, "interruptionQueue": queue.name,
                         "featureGates": {"nodeRepair": True}},
        }, [crds, identity, controller_policy, access])

        sizes = {NODE_CLASS: (args.disk_size_gib, None), **{
            node_class_name(p): (p.disk_size_gib or args.disk_size_gib, MODEL_CACHE_USER_DATA if p.model_cache else None)
            for p in args.pools if node_class_name(p) != NODE_CLASS}}
        node_classes = {class_name: k8s.apiextensions.CustomResource(
            f"{name}-node-class" if class_name == NODE_CLASS else f"{name}-node-class-{class_name}",
            api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=class_name),
            spec=node_class_spec(node_role.name, args.cluster_name, args.ami_alias, disk, args.kms_key_arn,
                                 args.node_tags, user_data),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, controller]))
            for class_name, (disk, user_data) in sizes.items()}
        for pool in args.pools:
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}", api_version="karpenter.sh/v1", kind="NodePool",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=pool.name), spec=node_pool_spec(pool),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node_classes[node_class_name(pool)]]))

        self.queue_name = queue.name
        self.node_role_arn = node_role.arn
        self.controller_role_arn = controller_role.arn
        self.register_outputs({"queue_name": queue.name, "node_role_arn": node_role.arn,
                               "controller_role_arn": controller_role.arn})
