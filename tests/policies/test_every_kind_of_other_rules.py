"""Other rules of the pack that read one kind while another kind of the plans carries the same property: each case puts
the weakness on the kind the rule once skipped, in the recorded prod plan (or dev's, where only dev declares it)."""

import pytest

from tests.policies.conftest import plan_json, refused, resources, violations

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
RELEASE = "kubernetes:helm.sh/v3:Release"
SUBNET = "aws:ec2/subnet:Subnet"


def one(plan, type_token):
    (resource,) = resources(plan, type_token)
    return resource["inputs"]


def sink_pod(plan):
    return one(plan, DEPLOYMENT)["spec"]["template"]["spec"]


def stable(plan):
    return next(r for r in resources(plan, INFERENCE_SERVICE) if r["name"].endswith("stable"))["inputs"]


def release(plan, name):
    return next(r for r in resources(plan, RELEASE) if r["inputs"]["name"] == name)["inputs"]


def gpu_node_group(group):
    group.update(amiType="AL2023_x86_64_NVIDIA", instanceTypes=["g5.2xlarge"],
                 taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}])


LATEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlserve-prod/triton:latest"

CASES = {
    # rule: [(what the edit shows, edit, resource refused, message fragment)]
    "no-world-ingress": [
        ("the emptied default security group", lambda p: one(p, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
         .update(ingress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]),
         "mlserve-prod-default-sg", "open to ['0.0.0.0/0']"),
    ],
    "alarms-notify": [
        ("a composite alarm", lambda p: one(p, "aws:cloudwatch/compositeAlarm:CompositeAlarm").update(alarmActions=[]),
         "mlserve-prod-resnet50-unhealthy", "no SNS topic in alarmActions"),
        ("a composite alarm", lambda p: one(p, "aws:cloudwatch/compositeAlarm:CompositeAlarm").update(
            actionsEnabled=False), "mlserve-prod-resnet50-unhealthy", "actionsEnabled is false"),
    ],
    "images-pinned": [
        ("the capture sink", lambda p: sink_pod(p)["containers"][0].update(image=LATEST),
         "mlserve-prod-reranker-capture-sink", "uses 'latest'"),
        ("an InferenceService's model container", lambda p: stable(p)["spec"]["predictor"]["model"].update(
            image=LATEST), "mlserve-prod-reranker-stable", "uses 'latest'"),
    ],
    "instance-type-allowlist": [
        ("a Karpenter pool", lambda p: one(p, NODE_POOL)["spec"]["template"]["spec"]["requirements"][0].update(
            values=["g5.2xlarge", "p5.48xlarge"]), "mlserve-prod-karpenter-gpu-a10g", "p5.48xlarge is not allowed"),
        ("a Karpenter pool", lambda p: one(p, NODE_POOL)["spec"]["template"]["spec"]["requirements"].pop(0),
         "mlserve-prod-karpenter-gpu-a10g", "may launch any instance type"),
    ],
    "serving-namespace-default-deny": [
        ("the capture sink", lambda p: one(p, DEPLOYMENT)["metadata"].update(namespace="elsewhere"),
         "mlserve-prod-reranker-capture-sink", "namespace elsewhere of Deployment capture-sink"),
    ],
    "gpu-node-pool-guarded": [
        ("a GPU managed node group", lambda p: (gpu_node_group(one(p, NODE_GROUP)), one(p, NODE_GROUP).pop("taints")),
         "mlserve-prod-system-node-group", "no nvidia.com/gpu:NoSchedule taint"),
        ("a GPU managed node group", lambda p: (gpu_node_group(one(p, NODE_GROUP)), one(p, NODE_GROUP).update(
            capacityType="SPOT")), "mlserve-prod-system-node-group", "cannot launch on-demand"),
        ("a GPU managed node group", lambda p: (gpu_node_group(one(p, NODE_GROUP)), one(p, NODE_GROUP).update(
            updateConfig={"maxUnavailable": 2})), "mlserve-prod-system-node-group", "updates drain 2 nodes at once"),
    ],
    "node-imdsv2-encrypted-disk": [
        ("a managed node group", lambda p: one(p, NODE_GROUP).pop("launchTemplate"),
         "mlserve-prod-system-node-group", "no launch template"),
        ("the EBS StorageClass", lambda p: one(p, STORAGE_CLASS)["parameters"].update(encrypted="false"),
         "mlserve-prod-encrypted-gp3", "not encrypted"),
    ],
    "required-tags": [
        ("Karpenter's nodes", lambda p: one(p, NODE_CLASS)["spec"]["tags"].pop("owner"),
         "mlserve-prod-karpenter-node-class", "lack ['owner']"),
        ("the node group's instances", lambda p: one(p, LAUNCH_TEMPLATE)["tagSpecifications"][0]["tags"].pop(
            "cost-center"), "mlserve-prod-system-launch-template", "instance tags lack ['cost-center']"),
        ("the node group's volumes", lambda p: one(p, LAUNCH_TEMPLATE).update(tagSpecifications=one(
            p, LAUNCH_TEMPLATE)["tagSpecifications"][:1]), "mlserve-prod-system-launch-template",
         "volume tags lack ['owner', 'cost-center']"),
        ("the controller's load balancers", lambda p: release(p, "aws-load-balancer-controller")["values"].pop(
            "defaultTags"), "mlserve-prod-aws-load-balancer-controller", "defaultTags lack ['owner', 'cost-center']"),
        ("the StorageClass's volumes", lambda p: one(p, STORAGE_CLASS).update(parameters={
            k: v for k, v in one(p, STORAGE_CLASS)["parameters"].items() if v != "owner=ml-platform"}),
         "mlserve-prod-encrypted-gp3", "tagSpecification_N lack ['owner']"),
    ],
    "prod-data-capture": [
        ("an InferenceService", lambda p: stable(p)["spec"]["predictor"].pop("logger"),
         "mlserve-prod-reranker-stable", "InferenceService reranker logs no requests"),
    ],
    "prod-endpoints-span-zones": [
        ("a managed node group", lambda p: next(r for r in resources(p, NODE_GROUP))["propertyDependencies"].update(
            subnetIds=[u for u in next(r for r in resources(p, NODE_GROUP))["propertyDependencies"]["subnetIds"]
                       if u.endswith("us-east-1a")]), "mlserve-prod-system-node-group", "in 1 zone(s)"),
        ("Karpenter's node class", lambda p: one(p, NODE_CLASS)["spec"].update(subnetSelectorTerms=[
            {"tags": {"Name": "mlserve-prod-private-us-east-1a"}}]), "mlserve-prod-karpenter-node-class",
         "in 1 zone(s)"),
    ],
}
PARAMS = [pytest.param(rule, edit, urn, fragment, id=f"{rule}: {what}: {fragment}")
          for rule, cases in CASES.items() for what, edit, urn, fragment in cases]


@pytest.mark.parametrize("rule,edit,urn,fragment", PARAMS)
def test_the_rule_judges_the_kind_it_once_skipped(plan, rule, edit, urn, fragment):
    assert refused(plan, rule) == []
    edit(plan)
    found = refused(plan, rule)
    assert [u for u, _, _ in found] == [urn], found
    assert fragment in found[0][1], found


def test_a_gpu_managed_node_group_as_mlserve_declares_it_passes(plan):
    gpu_node_group(one(plan, NODE_GROUP))
    assert refused(plan, "gpu-node-pool-guarded") == []


def test_a_canary_track_needs_no_logger_of_its_own(prod_plan):
    """The canary track serves the candidate beside the stable one, which captures (see the report)."""
    canary = next(r for r in resources(prod_plan, INFERENCE_SERVICE) if r["name"].endswith("canary"))
    assert "logger" not in canary["inputs"]["spec"]["predictor"]
    assert refused(prod_plan, "prod-data-capture") == []


def test_an_inference_component_without_the_owner_tags_is_refused_in_dev():
    plan = plan_json("dev")
    (component,) = resources(plan, "aws-native:sagemaker:InferenceComponent")
    assert violations(plan, rule="required-tags") == []
    component["inputs"]["tags"] = [t for t in component["inputs"]["tags"] if t["key"] != "cost-center"]
    [(urn, message, _)] = refused(plan, "required-tags")
    assert urn == "mlserve-dev-resnet50-component" and "lack ['cost-center']" in message
