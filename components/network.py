"""Network: a VPC whose private subnets reach AWS services through endpoints, with flow logs.

Public subnets hold only NAT gateways; workloads run in the private subnets. Internal load balancers get their own
small private subnets, so that "from a load balancer" is an address range a NetworkPolicy can name: no node or pod
ever has an address there. One NAT gateway in dev to save money, one per AZ in prod so a zone outage takes only its zone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from .policy_document import Statement, assume_role_policy, render

# Interface endpoints that serving needs without a route to the internet.
INTERFACE_ENDPOINT_SERVICES = (
    "ecr.api", "ecr.dkr", "sagemaker.api", "sagemaker.runtime", "logs", "monitoring", "sts",
)


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    availability_zones: Sequence[str]
    nat_gateway_per_az: bool
    region: str
    account_id: pulumi.Input[str]
    """The flow-logs role trusts only this account's flow logs."""
    kms_key_arn: pulumi.Input[str]
    flow_log_retention_days: int = 90
    endpoint_services: tuple[str, ...] = INTERFACE_ENDPOINT_SERVICES
    private_subnet_tags: dict[str, str] = field(default_factory=dict)  # e.g. Karpenter's discovery tag


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str], list[str]]:
    """Split the VPC into 16 equal blocks: private subnets take the first, public the last (smaller need), and the
    block after the private ones is cut in four for the load-balancer subnets (a /22 each in a /16)."""
    network = ipaddress.ip_network(cidr)
    blocks = list(network.subnets(new_prefix=network.prefixlen + 4))
    private = [str(b) for b in blocks[:zones]]
    public = [str(b) for b in blocks[-zones:]]
    balancers = [str(b) for b in list(blocks[zones].subnets(prefixlen_diff=2))[:zones]]
    return private, public, balancers


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    load_balancer_subnet_ids: list[pulumi.Output[str]]
    load_balancer_cidrs: list[str]
    private_cidrs: list[str]
    endpoint_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = args.availability_zones
        private_cidrs, public_cidrs, balancer_cidrs = subnet_cidrs(args.cidr, len(zones))

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_support=True, enable_dns_hostnames=True,
                          tags={"Name": name}, opts=child)
        # The default security group allows all traffic between its members: strip every rule from it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)], opts=child)
        public_subnets, private_subnets, balancer_subnets, private_route_tables, nat_gateways = [], [], [], [], []
        for index, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}", vpc_id=vpc.id, cidr_block=public_cidrs[index], availability_zone=zone,
                map_public_ip_on_launch=False, tags={"Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"},
                opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_routes.id,
                                          opts=child)
            public_subnets.append(public)
            if args.nat_gateway_per_az or index == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", opts=child)
                nat_gateways.append(aws.ec2.NatGateway(f"{name}-nat-{zone}", allocation_id=eip.id, subnet_id=public.id,
                                                       opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))
            nat = nat_gateways[index] if args.nat_gateway_per_az else nat_gateways[0]
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}", vpc_id=vpc.id, cidr_block=private_cidrs[index], availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{zone}", **args.private_subnet_tags}, opts=child)
            routes = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}", vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)], opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=private.id, route_table_id=routes.id,
                                          opts=child)
            private_subnets.append(private)
            private_route_tables.append(routes)
            balancers = aws.ec2.Subnet(
                f"{name}-lb-{zone}", vpc_id=vpc.id, cidr_block=balancer_cidrs[index], availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-lb-{zone}", "kubernetes.io/role/internal-elb": "1"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-lb-{zone}", subnet_id=balancers.id, route_table_id=routes.id,
                                          opts=child)
            balancer_subnets.append(balancers)

        # Model pulls from S3 stay on the AWS network and cost no NAT data processing.
        aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
                            vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_route_tables],
                            opts=child)
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints", vpc_id=vpc.id, description="HTTPS from inside the VPC to AWS interface endpoints",
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443,
                                                      cidr_blocks=[args.cidr], description="HTTPS from the VPC")],
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                    cidr_blocks=[args.cidr], description="Replies within the VPC")],
            opts=child)
        for service in args.endpoint_services:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}", vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}", vpc_endpoint_type="Interface",
                private_dns_enabled=True, subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[endpoint_sg.id], opts=child)

        self._flow_logs(name, args, vpc, child)

        self.vpc_id = vpc.id
        self.vpc_cidr = args.cidr
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.load_balancer_subnet_ids = [s.id for s in balancer_subnets]
        self.load_balancer_cidrs = balancer_cidrs
        self.private_cidrs = private_cidrs
        self.endpoint_security_group_id = endpoint_sg.id
        self.register_outputs({
            "vpc_id": vpc.id,
            "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids,
            "load_balancer_subnet_ids": self.load_balancer_subnet_ids,
            "nat_gateway_count": len(nat_gateways),
        })

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, child: pulumi.ResourceOptions) -> None:
        log_group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", retention_in_days=args.flow_log_retention_days,
                                            kms_key_id=args.kms_key_arn, opts=child)
        # The confused-deputy guard AWS documents for the flow-logs service (VPC User Guide, "IAM role for
        # publishing flow logs to CloudWatch Logs"): only this account's flow logs may assume the role.
        role = aws.iam.Role(f"{name}-flow-logs", assume_role_policy=assume_role_policy(
            "vpc-flow-logs.amazonaws.com", {
                "StringEquals": {"aws:SourceAccount": args.account_id},
                "ArnLike": {"aws:SourceArn": pulumi.Output.concat(
                    f"arn:aws:ec2:{args.region}:", args.account_id, ":vpc-flow-log/*")}}), opts=child)
        aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=render(Statement(
            sid="WriteFlowLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
        )), opts=child)
        aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                        log_destination=log_group.arn, iam_role_arn=role.arn, max_aggregation_interval=60, opts=child)
