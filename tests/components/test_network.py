import ipaddress

from components.network import subnet_cidrs
from tests.harness import stack_plan

NAT = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"


def test_dev_has_one_nat_gateway_and_prod_one_per_az():
    assert len(stack_plan("dev").of_type(NAT)) == 1
    prod = stack_plan("prod")
    nats = prod.of_type(NAT)
    assert len(nats) == 3
    nat_subnets = [prod.by_id(n.inputs["subnetId"]) for n in nats]
    assert all("-public-" in s.name for s in nat_subnets)
    nat_zones = {s.inputs["availabilityZone"] for s in nat_subnets}
    assert nat_zones == {"us-east-1a", "us-east-1b", "us-east-1c"}


def test_each_private_subnet_routes_through_a_nat_in_its_own_zone_in_prod():
    prod = stack_plan("prod")
    for table in (t for t in prod.of_type("aws:ec2/routeTable:RouteTable") if "-private-rt-" in t.name):
        zone = table.name.rsplit("-rt-", 1)[1]
        (route,) = table.inputs["routes"]
        assert prod.by_id(route["natGatewayId"]).name == f"mlserve-prod-nat-{zone}"


def test_vpc_spans_two_zones_in_dev_and_three_in_prod(stack, plan):
    zones = {s.inputs["availabilityZone"] for s in plan.of_type(SUBNET)}
    assert len(zones) == {"dev": 2, "prod": 3}[stack]
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in plan.of_type(SUBNET))


def test_private_subnets_reach_aws_services_through_endpoints(plan):
    endpoints = {e.inputs["serviceName"].split("us-east-1.")[1]: e for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(endpoints) == {"s3", "ecr.api", "ecr.dkr", "sagemaker.api", "sagemaker.runtime", "logs", "monitoring",
                              "sts"}
    assert endpoints["s3"].inputs["vpcEndpointType"] == "Gateway"
    assert all(e.inputs["privateDnsEnabled"] for k, e in endpoints.items() if k != "s3")


def test_flow_logs_go_to_an_encrypted_log_group_with_retention(stack, plan):
    flow_log = plan.one("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    (group,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name.endswith("-flow-logs")]
    assert flow_log.inputs["logDestination"].endswith(":log-group:" + group.id)
    assert group.inputs["kmsKeyId"] == plan.outputs["kms_key_arn"]
    assert group.inputs["retentionInDays"] == {"dev": 30, "prod": 365}[stack]


def test_default_security_group_has_no_rules(plan):
    sg = plan.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not sg.inputs.get("ingress") and not sg.inputs.get("egress")


def test_subnet_cidrs_do_not_overlap():
    private, public, balancers = subnet_cidrs("10.50.0.0/16", 3)
    assert private == ["10.50.0.0/20", "10.50.16.0/20", "10.50.32.0/20"]
    assert public == ["10.50.208.0/20", "10.50.224.0/20", "10.50.240.0/20"]
    assert balancers == ["10.50.48.0/22", "10.50.52.0/22", "10.50.56.0/22"]
    every = [ipaddress.ip_network(c) for c in private + public + balancers]
    assert not any(a.overlaps(b) for i, a in enumerate(every) for b in every[i + 1:])


def test_children_are_parented_to_the_network_component(plan):
    (network,) = plan.of_type("mlserve:network:Network")
    children = plan.children_of(network.urn)
    assert {c.type for c in children} >= {"aws:ec2/vpc:Vpc", SUBNET, NAT, "aws:ec2/flowLog:FlowLog"}
    assert all(c.urn.startswith("urn:pulumi:") and "mlserve:network:Network$" in c.urn for c in children)
