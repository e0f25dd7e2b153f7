"""NodeGroup: an EKS managed node group in private subnets, GPU or system (CPU, for controllers).

Resources: the node role with only the managed policies a node needs (worker, ECR read, CNI), a launch template
(IMDSv2 required; an encrypted gp3 root volume large enough for serving images), and the node group. GPU groups use
an NVIDIA AMI, carry the label `mlserve.io/node-group=<name>` plus `nvidia.com/gpu.present=true` and the taint
`nvidia.com/gpu=true:NoSchedule`, so only pods that tolerate it (the serving pods, the device plugin, DCGM) land
there. The desired size is left to whoever scales the group after creation (`ignore_changes`); GPU capacity
that follows load comes from Karpenter's pools instead (components/karpenter.py). EKS node auto-repair is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from .names import GROUP_LABEL
from .policy_document import assume_role_policy

NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy")
GPU_TAINT = aws.eks.NodeGroupTaintArgs(key="nvidia.com/gpu", value="true", effect="NO_SCHEDULE")


@dataclass(frozen=True)
class NodeGroupArgs:
    cluster_name: pulumi.Input[str]
    group_name: str
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    instance_types: tuple[str, ...]
    ami_type: str
    capacity_type: str
    min_size: int
    max_size: int
    desired_size: int
    disk_size_gib: int
    kms_key_arn: pulumi.Input[str]
    gpu: bool
    partition: str = "aws"
    tags: dict[str, str] = field(default_factory=dict)
    """On the instances, volumes and network interfaces EKS launches: a managed node group's own tags stay on the
    group, so without these the budget never sees the nodes."""


class NodeGroup(pulumi.ComponentResource):
    node_group_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:compute:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(f"{name}-node-role", assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
                            opts=child)
        for policy in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=role.name,
                                         policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}", opts=child)

        # Bottlerocket keeps images on its data volume (/dev/xvdb); AL2023 on the root volume.
        device = "/dev/xvdb" if args.ami_type.startswith("BOTTLEROCKET") else "/dev/xvda"
        template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required",
                # Hop limit 1 keeps every pod away from the node role's credentials: pods get their own roles
                # (IRSA, Pod Identity), host-network agents (CNI, kube-proxy) are one hop away, and the controllers
                # that once read the VPC and region from metadata get them from their chart values.
                http_put_response_hop_limit=1),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=device, ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=args.disk_size_gib, volume_type="gp3", encrypted="true",
                    kms_key_id=args.kms_key_arn, delete_on_termination="true"))],
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=dict(args.tags))
                                for kind in ("instance", "volume", "network-interface")] if args.tags else None,
            opts=child)

        labels = {GROUP_LABEL: args.group_name}
        if args.gpu:
            labels["nvidia.com/gpu.present"] = "true"
        group = aws.eks.NodeGroup(
            f"{name}-node-group", cluster_name=args.cluster_name, node_group_name=args.group_name,
            node_role_arn=role.arn, subnet_ids=args.subnet_ids, instance_types=list(args.instance_types),
            ami_type=args.ami_type, capacity_type=args.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.min_size, max_size=args.max_size, desired_size=args.desired_size),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # EKS replaces nodes that the node monitoring agent (a pinned add-on) reports unhealthy.
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id, version=template.latest_version.apply(str)),
            labels=labels, taints=[GPU_TAINT] if args.gpu else None,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]))

        self.node_group_name = group.node_group_name
        self.role_arn = role.arn
        self.register_outputs({"node_group_name": group.node_group_name, "role_arn": role.arn})
