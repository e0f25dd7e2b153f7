"""PrivateLink: a REST API VPC link to a private Application Load Balancer, and nothing else reaching that ALB.

API Gateway's REST VPC links reach only Network Load Balancers, and the KServe ALB is made by the AWS Load Balancer
Controller. So: an internal NLB in the load-balancer subnets with one TCP listener whose target group has the ALB
itself as its target (target type `alb`), and the VPC link to that NLB. TLS passes through the NLB and ends at the
ALB, whose certificate API Gateway verifies.

Why only the gateway gets through: the NLB's security group has no inbound rule at all, and the NLB does not apply
inbound rules to PrivateLink traffic, so the VPC link (a PrivateLink endpoint) is its only possible sender; the ALB's
security group admits the serving port only from the NLB's group. Anything else in the VPC that tries the ALB or the
NLB is dropped, so IAM auth, WAF and throttling at the gateway cannot be bypassed from inside the VPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .names import load_balancer_name


@dataclass(frozen=True)
class PrivateLinkArgs:
    name: str
    """What the NLB (`<name>-nlb`) and its target group (`<name>-alb`: its target is the ALB) are named after."""
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The load-balancer subnets: the ALB must be placed there too."""
    backend_cidrs: Sequence[str]
    """Where the ALB's targets (pod IPs) live: the ALB may send only there, on `target_ports`."""
    port: int
    """The ALB listener's port: 443 (HTTPS) or 80."""
    target_ports: Sequence[int]
    """The pod ports the ALB's targets listen on (the serving port, or KServe's agent's when it logs requests)."""
    deletion_protection: bool
    """Prod: a `pulumi destroy` or a mistaken replacement cannot remove the front door's load balancer."""


class PrivateLink(pulumi.ComponentResource):
    vpc_link_id: pulumi.Output[str]
    nlb_dns_name: pulumi.Output[str]
    alb_security_group_id: pulumi.Output[str]
    """Give it to the ALB (the Ingress's `security-groups` annotation): it admits only the NLB."""

    def __init__(self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:edge:PrivateLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._args, self._name = args, name
        nlb_group = aws.ec2.SecurityGroup(
            f"{name}-nlb", vpc_id=args.vpc_id, egress=[],
            description="VPC link NLB: no inbound rules (PrivateLink traffic only), out only to its ALB", opts=child)
        alb_group = aws.ec2.SecurityGroup(
            f"{name}-alb", vpc_id=args.vpc_id, description="KServe ALB: in only from the VPC link NLB",
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=port, to_port=port,
                                                    cidr_blocks=list(args.backend_cidrs),
                                                    description="To the serving pods")
                    for port in args.target_ports], opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-alb-from-nlb", security_group_id=alb_group.id, referenced_security_group_id=nlb_group.id,
            ip_protocol="tcp", from_port=args.port, to_port=args.port, description="From the VPC link NLB",
            opts=child)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nlb-to-alb", security_group_id=nlb_group.id, referenced_security_group_id=alb_group.id,
            ip_protocol="tcp", from_port=args.port, to_port=args.port, description="To the ALB (and health checks)",
            opts=child)
        self._nlb = aws.lb.LoadBalancer(
            f"{name}-nlb", name=load_balancer_name(args.name, "nlb"), load_balancer_type="network", internal=True,
            subnets=args.subnet_ids, security_groups=[nlb_group.id],
            enforce_security_group_inbound_rules_on_private_link_traffic="off",
            enable_cross_zone_load_balancing=True, enable_deletion_protection=args.deletion_protection, opts=child)
        # TCP listener: NLB access logs exist only for TLS listeners, so the ALB's access logs are the record.
        self._target_group = aws.lb.TargetGroup(
            f"{name}-alb-target", name=load_balancer_name(args.name, "alb"), target_type="alb", protocol="TCP", port=args.port,
            vpc_id=args.vpc_id, health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTPS" if args.port == 443 else "HTTP", path="/v2/health/ready", port=str(args.port)),
            opts=child)
        link = aws.apigateway.VpcLink(f"{name}-vpc-link", name=args.name, target_arn=self._nlb.arn, opts=child)
        self.vpc_link_id = link.id
        self.nlb_dns_name = self._nlb.dns_name
        self.alb_security_group_id = alb_group.id
        self.register_outputs({"vpc_link_id": link.id, "nlb_dns_name": self._nlb.dns_name,
                               "alb_security_group_id": alb_group.id})

    def attach(self, alb_arn: pulumi.Input[str]) -> None:
        """Register the ALB (made later, by the controller) and open the listener once it is a target."""
        name, args = self._name, self._args
        attachment = aws.lb.TargetGroupAttachment(f"{name}-alb", target_group_arn=self._target_group.arn,
                                                  target_id=alb_arn, port=args.port,
                                                  opts=pulumi.ResourceOptions(parent=self))
        aws.lb.Listener(f"{name}-listener", load_balancer_arn=self._nlb.arn, port=args.port, protocol="TCP",
                        default_actions=[aws.lb.ListenerDefaultActionArgs(
                            type="forward", target_group_arn=self._target_group.arn)],
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]))
