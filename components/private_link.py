"""PrivateLink: a REST API VPC link to a private Application Load Balancer.

API Gateway's REST VPC links reach only Network Load Balancers, and the KServe ALB is made by the AWS Load Balancer
Controller. So: an internal NLB in the private subnets with one TCP listener whose target group has the ALB itself as
its target (target type `alb`), and the VPC link to that NLB. TLS passes through the NLB and ends at the ALB, whose
certificate API Gateway verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PrivateLinkArgs:
    name: str  # NLB and target group names: at most 32 characters
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    alb_arn: pulumi.Input[str]
    port: int  # the ALB listener's port: 443 (HTTPS) or 80


class PrivateLink(pulumi.ComponentResource):
    vpc_link_id: pulumi.Output[str]
    nlb_dns_name: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:edge:PrivateLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        nlb = aws.lb.LoadBalancer(f"{name}-nlb", name=args.name[:32], load_balancer_type="network", internal=True,
                                  subnets=args.subnet_ids, enable_cross_zone_load_balancing=True, opts=child)
        target_group = aws.lb.TargetGroup(
            f"{name}-alb-target", name=args.name[:32], target_type="alb", protocol="TCP", port=args.port,
            vpc_id=args.vpc_id, health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTPS" if args.port == 443 else "HTTP", path="/v2/health/ready", port=str(args.port)),
            opts=child)
        attachment = aws.lb.TargetGroupAttachment(f"{name}-alb", target_group_arn=target_group.arn,
                                                  target_id=args.alb_arn, port=args.port, opts=child)
        aws.lb.Listener(f"{name}-listener", load_balancer_arn=nlb.arn, port=args.port, protocol="TCP",
                        default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward",
                                                                          target_group_arn=target_group.arn)],
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]))
        link = aws.apigateway.VpcLink(f"{name}-vpc-link", name=args.name, target_arn=nlb.arn, opts=child)
        self.vpc_link_id = link.id
        self.nlb_dns_name = nlb.dns_name
        self.register_outputs({"vpc_link_id": link.id, "nlb_dns_name": nlb.dns_name})
