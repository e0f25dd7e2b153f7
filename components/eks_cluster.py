"""EksCluster: a private EKS control plane that the rest of the KServe path is built on.

Resources: the control-plane log group (KMS, retention), the cluster role, the cluster (private endpoint, public only
for listed CIDRs, secrets envelope-encrypted with the stack key, every log type, API authentication mode), an access
entry with cluster-admin for each admin role, the IRSA OIDC provider, the managed add-ons at pinned versions (the EBS
CSI driver with its own IRSA role), and a Kubernetes provider built from the cluster (token through `aws eks
get-token`, so no credentials are stored). The kubeconfig output is a secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .policy_document import Statement, assume_role_policy, render, via_service

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


# The VPC CNI enforces NetworkPolicy only with its network policy agent on; without it every policy is ignored.
ADDON_CONFIGURATION = {"vpc-cni": json.dumps({"enableNetworkPolicy": "true"})}


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str
    kubernetes_version: str
    region: str
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]  # private subnets
    kms_key_arn: pulumi.Input[str]
    admin_role_arns: tuple[pulumi.Input[str], ...]
    addon_versions: dict[str, str]  # EKS add-on name -> version
    public_access_cidrs: tuple[str, ...] = ()
    log_retention_days: int = 90
    partition: str = "aws"
    tags: dict[str, str] = field(default_factory=dict)


def oidc_issuer_of(identities: Sequence[aws.eks.outputs.ClusterIdentity] | None) -> str:
    """EKS always reports one OIDC issuer for a cluster; its absence means a broken API answer, not a default."""
    issuer = (identities or [None])[0]
    url = issuer.oidcs[0].issuer if issuer and issuer.oidcs else None
    if not url:
        raise ValueError("the EKS cluster reports no OIDC issuer")
    return url


def irsa_trust_policy(oidc_provider_arn: pulumi.Input[str], issuer: pulumi.Input[str], namespace: str,
                      service_account: str) -> pulumi.Output[str]:
    """Trust for exactly one service account: StringEquals on the token's subject and audience."""
    host = pulumi.Output.from_input(issuer).apply(lambda url: url.removeprefix("https://"))
    return render(Statement(
        sid="TrustServiceAccount", actions=["sts:AssumeRoleWithWebIdentity"], resources=(),
        principals={"Federated": oidc_provider_arn},
        conditions={"StringEquals": {
            host.apply(lambda h: f"{h}:sub"): f"system:serviceaccount:{namespace}:{service_account}",
            host.apply(lambda h: f"{h}:aud"): "sts.amazonaws.com"}}))


class EksCluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    security_group_id: pulumi.Output[str]
    """The cluster security group EKS creates: what admits a client inside the VPC to the private API."""

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:compute:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # EKS writes to /aws/eks/<name>/cluster; creating it first sets retention and encryption.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs", name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn, opts=child)

        role = aws.iam.Role(f"{name}-cluster-role", assume_role_policy=assume_role_policy("eks.amazonaws.com"),
                            opts=child)
        aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy", role=role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/AmazonEKSClusterPolicy", opts=child)
        # Envelope encryption of secrets: the control plane asks the stack key for data keys.
        aws.iam.RolePolicy(f"{name}-cluster-kms", role=role.id, policy=render(Statement(
            sid="EnvelopeEncryptSecrets", actions=["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
            resources=[args.kms_key_arn])), opts=child)

        cluster = aws.eks.Cluster(
            f"{name}-cluster", name=args.cluster_name, version=args.kubernetes_version, role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids, endpoint_private_access=True,
                endpoint_public_access=bool(args.public_access_cidrs),
                public_access_cidrs=list(args.public_access_cidrs) or None),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"], provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.kms_key_arn)),
            enabled_cluster_log_types=LOG_TYPES,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]))

        for index, admin in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(f"{name}-admin-{index}", cluster_name=cluster.name, principal_arn=admin,
                                        type="STANDARD", opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}", cluster_name=cluster.name, principal_arn=admin, policy_arn=CLUSTER_ADMIN,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]))

        issuer = cluster.identities.apply(oidc_issuer_of)
        oidc = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"],
                                             opts=child)

        ebs_role = aws.iam.Role(f"{name}-ebs-csi", assume_role_policy=irsa_trust_policy(
            oidc.arn, issuer, "kube-system", "ebs-csi-controller-sa"), opts=child)
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi", role=ebs_role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy", opts=child)
        # Volumes encrypted with the stack key (the add-ons' StorageClass): the three actions the driver's install
        # guide lists for encrypted volumes (docs/install.md at v1.64.0), on this key only, through EC2 only.
        aws.iam.RolePolicy(f"{name}-ebs-csi-kms", role=ebs_role.id, policy=render(
            Statement(sid="GrantsForVolumes", actions=["kms:CreateGrant"], resources=[args.kms_key_arn],
                      conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            Statement(sid="EncryptVolumes", actions=["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext"],
                      resources=[args.kms_key_arn], conditions=via_service("ec2", args.kms_key_arn))), opts=child)
        for addon, version in sorted(args.addon_versions.items()):
            aws.eks.Addon(
                f"{name}-{addon}", cluster_name=cluster.name, addon_name=addon, addon_version=version,
                service_account_role_arn=ebs_role.arn if addon == "aws-ebs-csi-driver" else None,
                configuration_values=ADDON_CONFIGURATION.get(addon),
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", opts=child)

        kubeconfig = pulumi.Output.json_dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "mlserve",
            "clusters": [{"name": "eks", "cluster": {
                "server": cluster.endpoint,
                "certificate-authority-data": cluster.certificate_authority.apply(lambda ca: ca.data)}}],
            "contexts": [{"name": "mlserve", "context": {"cluster": "eks", "user": "aws"}}],
            "users": [{"name": "aws", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                "args": ["eks", "get-token", "--cluster-name", cluster.name, "--region", args.region]}}}],
        })
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=child)
        self.cluster_name = cluster.name
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer
        self.security_group_id = cluster.vpc_config.cluster_security_group_id
        self.register_outputs({"cluster_name": cluster.name, "oidc_provider_arn": oidc.arn,
                               "kubeconfig": self.kubeconfig})
