"""Replay the declared EKS cluster, node groups, launch templates, access entries and add-ons as boto3 requests:
checked against AWS's API model (enums such as amiType, taint effects, log types; required members), then moto for the
calls it implements (CreateCluster, CreateNodegroup, CreateLaunchTemplate; it has no add-ons or access entries)."""

import boto3
from moto import mock_aws

from infra.config.loader import load_stack
from tests import aws_replay as replay
from tests.harness import stack_plan

REGION = "us-east-1"


def create_cluster(inputs):
    vpc = inputs["vpcConfig"]
    return {"name": inputs["name"], "version": inputs["version"], "roleArn": inputs["roleArn"],
            "resourcesVpcConfig": {"subnetIds": vpc["subnetIds"], "endpointPrivateAccess": vpc["endpointPrivateAccess"],
                                   "endpointPublicAccess": vpc["endpointPublicAccess"],
                                   **({"publicAccessCidrs": vpc["publicAccessCidrs"]}
                                      if vpc.get("publicAccessCidrs") else {})},
            "logging": {"clusterLogging": [{"types": inputs["enabledClusterLogTypes"], "enabled": True}]},
            "encryptionConfig": [{"resources": inputs["encryptionConfig"]["resources"],
                                  "provider": {"keyArn": inputs["encryptionConfig"]["provider"]["keyArn"]}}],
            "accessConfig": inputs["accessConfig"]}


def create_nodegroup(inputs, template_id):
    scaling = {k: int(v) for k, v in inputs["scalingConfig"].items()}
    request = {"clusterName": inputs["clusterName"], "nodegroupName": inputs["nodeGroupName"],
               "nodeRole": inputs["nodeRoleArn"], "subnets": inputs["subnetIds"], "amiType": inputs["amiType"],
               "capacityType": inputs["capacityType"], "instanceTypes": inputs["instanceTypes"],
               "scalingConfig": scaling, "labels": inputs["labels"],
               "updateConfig": {"maxUnavailable": int(inputs["updateConfig"]["maxUnavailable"])},
               "nodeRepairConfig": inputs["nodeRepairConfig"],
               "launchTemplate": {"id": template_id}}
    if inputs.get("taints"):
        request["taints"] = inputs["taints"]
    return request


def create_launch_template(inputs, name):
    metadata = inputs["metadataOptions"]
    return {"LaunchTemplateName": name, "LaunchTemplateData": {
        "MetadataOptions": {"HttpTokens": metadata["httpTokens"], "HttpEndpoint": metadata["httpEndpoint"],
                            "HttpPutResponseHopLimit": int(metadata["httpPutResponseHopLimit"])},
        "BlockDeviceMappings": [{"DeviceName": m["deviceName"], "Ebs": {
            "VolumeSize": int(m["ebs"]["volumeSize"]), "VolumeType": m["ebs"]["volumeType"],
            "Encrypted": m["ebs"]["encrypted"] == "true", "KmsKeyId": m["ebs"]["kmsKeyId"],
            "DeleteOnTermination": m["ebs"]["deleteOnTermination"] == "true"}} for m in inputs["blockDeviceMappings"]]}}


def requests_of(plan):
    cluster = plan.one("aws:eks/cluster:Cluster")
    templates = plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    groups = plan.of_type("aws:eks/nodeGroup:NodeGroup")
    return {
        "cluster": ("eks", "CreateCluster", create_cluster(cluster.inputs)),
        "templates": [("ec2", "CreateLaunchTemplate", create_launch_template(t.inputs, t.name)) for t in templates],
        "groups": [("eks", "CreateNodegroup", create_nodegroup(g.inputs, "lt-0123456789abcdef0")) for g in groups],
        "access": [("eks", "CreateAccessEntry", {k: v for k, v in e.inputs.items() if k in
                                                 ("clusterName", "principalArn", "type")})
                   for e in plan.of_type("aws:eks/accessEntry:AccessEntry")] + [
            ("eks", "AssociateAccessPolicy", {"clusterName": a.inputs["clusterName"],
                                              "principalArn": a.inputs["principalArn"],
                                              "policyArn": a.inputs["policyArn"],
                                              "accessScope": a.inputs["accessScope"]})
            for a in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")],
        "addons": [("eks", "CreateAddon", {k: v for k, v in a.inputs.items() if k in (
            "clusterName", "addonName", "addonVersion", "serviceAccountRoleArn", "resolveConflicts")})
                   for a in plan.of_type("aws:eks/addon:Addon")],
    }


def test_every_declared_eks_request_is_valid_against_the_aws_api_model():
    requests = requests_of(stack_plan("prod"))
    flat = [requests["cluster"], *requests["templates"], *requests["groups"], *requests["access"],
            *requests["addons"]]
    # cluster, system template + group, (admin, CI's deploy role) x (entry + association) + node entry, add-ons
    assert len(flat) == 1 + 1 + 1 + 5 + 6
    for service, operation, params in flat:
        replay.assert_valid_request(service, operation, params)


def test_the_api_model_check_catches_a_wrong_taint_effect_and_ami_type():
    _, _, group = requests_of(stack_plan("prod"))["groups"][0]
    broken = {**group, "amiType": "AL2023_NVIDIA", "taints": [{**group.get("taints", [{}])[0], "effect": "NoSchedule"}]}
    problems = "\n".join(replay.api_violations("eks", "CreateNodegroup", broken))
    assert "'AL2023_NVIDIA' is not one of" in problems and "'NoSchedule' is not one of" in problems


@mock_aws
def test_moto_accepts_the_cluster_node_groups_and_launch_templates():
    requests = requests_of(stack_plan("prod"))
    eks, ec2 = boto3.client("eks", region_name=REGION), boto3.client("ec2", region_name=REGION)
    for _, _, params in requests["templates"]:
        ec2.create_launch_template(**params)
    _, _, cluster = requests["cluster"]
    eks.create_cluster(**cluster)
    for _, _, params in requests["groups"]:
        eks.create_nodegroup(**params)
    described = eks.describe_cluster(name=cluster["name"])["cluster"]
    assert described["resourcesVpcConfig"]["endpointPublicAccess"] is False
    system = eks.describe_nodegroup(clusterName=cluster["name"], nodegroupName="system")["nodegroup"]
    zones = load_stack("prod").network.availability_zones  # a system node in each zone (a config rule)
    assert system["amiType"] == "AL2023_x86_64_STANDARD" and system["scalingConfig"]["minSize"] == zones
