"""Workloads stay private: models in the VPC, no world-open ingress."""

from ..framework import as_list, resource_rule

WORLD = {"0.0.0.0/0", "::/0"}


@resource_rule("sagemaker-model-in-vpc", types=["aws:sagemaker/model:Model"],
               description="SageMaker models run in private subnets with network isolation.",
               fix="Give the Model a vpc_config (private subnets, its own security group) and "
                   "enable_network_isolation=True.")
def sagemaker_model_in_vpc(props, config):
    vpc = props.get("vpcConfig") or {}
    if not as_list(vpc.get("subnets")) or not as_list(vpc.get("securityGroupIds")):
        yield "the model has no vpcConfig with subnets and security groups"
    if props.get("enableNetworkIsolation") is not True:
        yield "enableNetworkIsolation is not true: the container can reach the network"


@resource_rule("no-world-ingress", types=["aws:ec2/securityGroup:SecurityGroup",
                                          "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                                          "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                                          "aws:ec2/securityGroupRule:SecurityGroupRule"],
               description="No security group admits traffic from the whole internet.",
               fix="Admit only the load balancer's security group or the VPC CIDR.")
def no_world_ingress(props, config):
    rules = as_list(props.get("ingress"))
    if props.get("type") == "ingress" or "cidrIpv4" in props or "cidrIpv6" in props:
        rules.append(props)
    for rule in rules:
        cidrs = set(as_list(rule.get("cidrBlocks"))) | set(as_list(rule.get("ipv6CidrBlocks")))
        cidrs |= {c for c in (rule.get("cidrIpv4"), rule.get("cidrIpv6")) if c}
        if cidrs & WORLD:
            yield f"ingress on ports {rule.get('fromPort')}-{rule.get('toPort')} is open to {sorted(cidrs & WORLD)}"
