"""Karpenter as the prod plan declares it, checked against upstream's own reference (the v1.14.1 CloudFormation
template in schemas/karpenter/), AWS's API models, moto's EventBridge, and the KServe objects that need its nodes."""

from __future__ import annotations

import fnmatch
import json
import re

import boto3
import pytest
import yaml
from moto import mock_aws

from components.names import KARPENTER_DISCOVERY_TAG, KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT
from tests import aws_replay as replay
from tests.harness import stack_plan
from tests.kubernetes.schemas import SCHEMAS, custom_resource_errors

ACCOUNT, REGION, CLUSTER = "123456789012", "us-east-1", "mlserve-prod"
# What the controller policy may hold beyond upstream: the stack key for the encrypted queue and node volumes
# (upstream's template uses an SQS-managed key and the account's default EBS key).
BEYOND_UPSTREAM = {"StackKeyReadsTheInterruptionQueue", "StackKeyEncryptsNodeVolumes", "StackKeyGrantsForNodeVolumes"}


class _CloudFormation(yaml.SafeLoader):
    pass


for _tag in ("!Sub", "!GetAtt", "!Ref"):
    _CloudFormation.add_constructor(_tag, lambda loader, node, tag=_tag: {tag: loader.construct_scalar(node)})


def upstream_template() -> dict:
    return yaml.load((SCHEMAS / "karpenter" / "reference-cloudformation.yaml").read_text(), Loader=_CloudFormation)


def upstream_statements(node_role_arn: str, queue_arn: str) -> list[dict]:
    values = {"ClusterName": CLUSTER, "AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
              "AWS::URLSuffix": "amazonaws.com", "KarpenterNodeRole.Arn": node_role_arn,
              "KarpenterInterruptionQueue.Arn": queue_arn}
    statements = []
    for resource in upstream_template()["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and "Controller" in resource["Properties"]["ManagedPolicyName"]["!Sub"]:
            text = re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], resource["Properties"]["PolicyDocument"]["!Sub"])
            statements += json.loads(text)["Statement"]
    return statements


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def plan_resource(plan, type_token, name_suffix):
    (found,) = [r for r in plan.of_type(type_token) if r.name.endswith(name_suffix)]
    return found


def arn(plan, type_token, name_suffix) -> str:
    """The ARN the mock engine answered for a resource: what the policies reference."""
    resource = plan_resource(plan, type_token, name_suffix)
    if type_token == "aws:sqs/queue:Queue":
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{resource.inputs['name']}"
    return f"arn:aws:iam::{ACCOUNT}:role/{resource.id}"


def controller_policy(plan) -> dict:
    return json.loads(plan_resource(plan, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller").inputs["policy"])


def covered_by(statement: dict, action: str, resource: str, upstream: list[dict]) -> bool:
    """Some upstream statement allows this action on this resource under conditions no stricter than ours."""
    ours = statement.get("Condition", {})
    for candidate in upstream:
        if candidate["Effect"] != "Allow" or action not in listed(candidate["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in listed(candidate["Resource"])):
            continue
        if all(set(listed(ours.get(op, {}).get(key, []))) and
               set(listed(ours.get(op, {}).get(key, []))) <= set(listed(values))
               for op, keys in candidate.get("Condition", {}).items() for key, values in keys.items()):
            return True
    return False


def test_the_controller_policy_allows_nothing_upstream_does_not_except_the_stack_key():
    plan = stack_plan("prod")
    upstream = upstream_statements(arn(plan, "aws:iam/role:Role", "karpenter-node-role"),
                                   arn(plan, "aws:sqs/queue:Queue", "karpenter-interruptions"))
    ours = controller_policy(plan)["Statement"]
    beyond = [(s["Sid"], a, r) for s in ours if s["Sid"] not in BEYOND_UPSTREAM
              for a in listed(s["Action"]) for r in listed(s["Resource"]) if not covered_by(s, a, r, upstream)]
    assert beyond == []
    stack_key = plan.one("aws:kms/key:Key")
    extra = [s for s in ours if s["Sid"] in BEYOND_UPSTREAM]
    assert len(extra) == 3 and all(s["Resource"] == [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{stack_key.id}"]
                                   and s["Condition"]["StringEquals"]["kms:ViaService"] for s in extra)


def test_the_subset_check_catches_a_broader_action_resource_or_condition():
    plan = stack_plan("prod")
    upstream = upstream_statements(arn(plan, "aws:iam/role:Role", "karpenter-node-role"),
                                   arn(plan, "aws:sqs/queue:Queue", "karpenter-interruptions"))
    deletion = next(s for s in controller_policy(plan)["Statement"] if s["Sid"] == "AllowScopedDeletion")
    assert covered_by(deletion, "ec2:TerminateInstances", deletion["Resource"][0], upstream)
    assert not covered_by(deletion, "ec2:DeleteVolume", deletion["Resource"][0], upstream)
    assert not covered_by(deletion, "ec2:TerminateInstances", f"arn:aws:ec2:us-west-2:{ACCOUNT}:instance/*", upstream)
    unscoped = {**deletion, "Condition": {"StringLike": deletion["Condition"]["StringLike"]}}
    assert not covered_by(unscoped, "ec2:TerminateInstances", deletion["Resource"][0], upstream)


def test_the_controller_keeps_every_upstream_action_it_needs():
    """Least privilege, not less: only zonal shift (off in mlserve's chart settings) is left out."""
    plan = stack_plan("prod")
    ours = {a for s in controller_policy(plan)["Statement"] for a in listed(s["Action"])}
    upstream = {a for s in upstream_statements("x", "y") for a in listed(s["Action"])}
    assert upstream - ours == {"arc-zonal-shift:GetManagedResource"}


def test_the_controller_reaches_its_role_through_pod_identity_for_exactly_its_service_account():
    plan = stack_plan("prod")
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == \
           (KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT)
    role = plan_resource(plan, "aws:iam/role:Role", "karpenter-controller")
    assert association.property_dependencies["roleArn"] == [role.urn]
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    chart = plan_resource(plan, "kubernetes:helm.sh/v3:Release", "karpenter-karpenter").inputs
    assert chart["namespace"] == KARPENTER_NAMESPACE
    assert chart["values"]["serviceAccount"]["name"] == KARPENTER_SERVICE_ACCOUNT
    replay.assert_valid_request("eks", "CreatePodIdentityAssociation", {
        k: association.inputs[k] for k in ("clusterName", "namespace", "serviceAccount")} | {"roleArn": "arn:x"})


def test_the_chart_runs_on_system_nodes_and_names_the_queue_and_cluster():
    plan = stack_plan("prod")
    chart = plan_resource(plan, "kubernetes:helm.sh/v3:Release", "karpenter-karpenter").inputs
    crds = plan_resource(plan, "kubernetes:helm.sh/v3:Release", "karpenter-karpenter-crd").inputs
    assert chart["chart"] == "oci://public.ecr.aws/karpenter/karpenter" and chart["skipCrds"] is True
    assert crds["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd" and crds["version"] == chart["version"]
    settings = chart["values"]["settings"]
    assert settings["clusterName"] == CLUSTER and settings["interruptionQueue"] == CLUSTER
    assert settings["featureGates"] == {"nodeRepair": True}
    assert chart["values"]["nodeSelector"]["mlserve.io/node-group"] == "system"


def test_nodes_join_through_an_ec2_linux_access_entry_with_a_minimal_role():
    plan = stack_plan("prod")
    entry = plan_resource(plan, "aws:eks/accessEntry:AccessEntry", "karpenter-nodes")
    role = plan_resource(plan, "aws:iam/role:Role", "karpenter-node-role")
    assert entry.inputs["type"] == "EC2_LINUX" and entry.property_dependencies["principalArn"] == [role.urn]
    attached = {a.inputs["policyArn"].rsplit("/", 1)[1] for a in plan.of_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.name.startswith("mlserve-prod-karpenter-")}
    assert attached == {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly"}


def upstream_rules() -> dict[str, dict]:
    return {name: r["Properties"]["EventPattern"] for name, r in upstream_template()["Resources"].items()
            if r["Type"] == "AWS::Events::Rule"}


def test_the_interruption_rules_are_upstreams_and_target_the_encrypted_queue():
    plan = stack_plan("prod")
    queue = plan_resource(plan, "aws:sqs/queue:Queue", "karpenter-interruptions")
    assert queue.inputs["kmsMasterKeyId"] and queue.inputs["messageRetentionSeconds"] == 300
    patterns = [json.loads(r.inputs["eventPattern"]) for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
                if r.name.startswith("mlserve-prod-karpenter-")]
    assert sorted(map(json.dumps, patterns)) == sorted(json.dumps(p) for p in upstream_rules().values())
    # Each of upstream's rules sends its events to the queue, once.
    rules = {r.urn for r in plan.of_type("aws:cloudwatch/eventRule:EventRule") if r.name.startswith("mlserve-prod-karpenter-")}
    targets = [t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if "karpenter" in t.name]
    assert sorted(t.property_dependencies["rule"][0] for t in targets) == sorted(rules)
    assert len(rules) == len(upstream_rules()) and all(t.property_dependencies["arn"] == [queue.urn] for t in targets)
    queue_policy = json.loads(plan.one("aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])["Statement"]
    send, deny = queue_policy
    assert send["Principal"] == {"Service": "events.amazonaws.com"} and send["Action"] == ["sqs:SendMessage"]
    assert sorted(send["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{r.id}" for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
        if r.name.startswith("mlserve-prod-karpenter-"))
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_queue_rules_and_targets_are_valid_requests_for_the_aws_api_model():
    plan = stack_plan("prod")
    queue = plan_resource(plan, "aws:sqs/queue:Queue", "karpenter-interruptions").inputs
    replay.assert_valid_request("sqs", "CreateQueue", {"QueueName": queue["name"], "Attributes": {
        "KmsMasterKeyId": queue["kmsMasterKeyId"], "MessageRetentionPeriod": "300",
        "KmsDataKeyReusePeriodSeconds": "300"}})
    for rule in (r for r in plan.of_type("aws:cloudwatch/eventRule:EventRule") if "karpenter" in r.name):
        replay.assert_valid_request("events", "PutRule", {"Name": rule.id, "EventPattern": rule.inputs["eventPattern"],
                                                          "Description": rule.inputs["description"]})
    for target in (t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if "karpenter" in t.name):
        replay.assert_valid_request("events", "PutTargets", {"Rule": target.inputs["rule"], "Targets": [
            {"Id": target.inputs["targetId"], "Arn": target.inputs["arn"]}]})
    role = plan_resource(plan, "aws:iam/role:Role", "karpenter-controller")
    replay.assert_valid_request("iam", "CreateRole", {"RoleName": role.id,
                                                      "AssumeRolePolicyDocument": role.inputs["assumeRolePolicy"]})
    replay.assert_valid_request("iam", "PutRolePolicy", {"RoleName": role.id, "PolicyName": "karpenter",
                                                         "PolicyDocument": json.dumps(controller_policy(plan))})


SPOT_WARNING = {"version": "0", "id": "1e5527d7-bb36-4607-3370-4164db56a40e", "source": "aws.ec2",
                "detail-type": "EC2 Spot Instance Interruption Warning", "account": ACCOUNT,
                "time": "2026-11-23T12:00:00Z", "region": REGION,
                "resources": [f"arn:aws:ec2:{REGION}b:instance/i-0b662ef9931388ba0"],
                "detail": {"instance-id": "i-0b662ef9931388ba0", "instance-action": "terminate"}}


@mock_aws
def test_a_recorded_spot_warning_reaches_the_queue_through_the_declared_rule():
    plan = stack_plan("prod")
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=CLUSTER)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for rule in (r for r in plan.of_type("aws:cloudwatch/eventRule:EventRule") if "karpenter" in r.name):
        events.put_rule(Name=rule.id, EventPattern=rule.inputs["eventPattern"])
        events.put_targets(Rule=rule.id, Targets=[{"Id": "KarpenterInterruptionQueueTarget", "Arn": queue_arn}])
    # moto routes events by the rules' patterns: exactly one rule (the spot one) matches the warning.
    events.put_events(Entries=[{"Source": SPOT_WARNING["source"], "DetailType": SPOT_WARNING["detail-type"],
                                "Detail": json.dumps(SPOT_WARNING["detail"])},
                               {"Source": "aws.ec2", "DetailType": "EC2 AMI State Change",
                                "Detail": json.dumps({"ImageId": "ami-0123456789abcdef0", "State": "available"})}])
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    body = json.loads(message["Body"])
    assert body["detail-type"] == SPOT_WARNING["detail-type"]
    assert body["detail"]["instance-id"] == "i-0b662ef9931388ba0"


def custom_objects(plan, kind):
    return [dict(r.inputs) for r in plan.resources if r.type.endswith(f":{kind}")]


def test_the_node_class_finds_private_subnets_and_the_cluster_security_group_and_hardens_nodes():
    plan = stack_plan("prod")
    [node_class] = custom_objects(plan, "EC2NodeClass")
    spec = node_class["spec"]
    discovery = spec["subnetSelectorTerms"][0]["tags"]
    tagged = [s for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"].get(KARPENTER_DISCOVERY_TAG)]
    assert discovery == {KARPENTER_DISCOVERY_TAG: CLUSTER}
    assert len(tagged) == 3 and all("-private-" in s.name and s.inputs["tags"][KARPENTER_DISCOVERY_TAG] == CLUSTER
                                    for s in tagged)
    assert spec["securityGroupSelectorTerms"] == [{"tags": {"aws:eks:cluster-name": plan.one(
        "aws:eks/cluster:Cluster").inputs["name"]}}]
    assert spec["metadataOptions"]["httpTokens"] == "required" and spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    [volume] = spec["blockDeviceMappings"]
    assert volume["ebs"]["encrypted"] is True and volume["ebs"]["kmsKeyID"].endswith(plan.one("aws:kms/key:Key").id)
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260818"}]
    assert spec["tags"]["mlserve:stack"] == "prod" and spec["tags"]["cost-center"] == "cc-4410"
    assert custom_resource_errors(node_class) == []


def test_the_strict_schema_catches_a_misspelt_node_pool_field():
    pool = custom_objects(stack_plan("prod"), "NodePool")[0]
    broken = {**pool, "spec": {**pool["spec"], "disruption": {**pool["spec"]["disruption"], "consolidateAfer": "5m"}}}
    assert any("consolidateAfer" in e for e in custom_resource_errors(broken))
    wrong_policy = {**pool, "spec": {**pool["spec"], "disruption": {**pool["spec"]["disruption"],
                                                                      "consolidationPolicy": "WhenIdle"}}}
    assert custom_resource_errors(wrong_policy)


def pools_by_name(plan) -> dict[str, dict]:
    return {p["metadata"]["name"]: p["spec"] for p in custom_objects(plan, "NodePool")}


def test_prod_gpu_limits_cover_every_kserve_deployment_at_max_replicas():
    """Counted from the declared objects: each InferenceService's max replicas x GPUs, stable and canary alike,
    against the GPU limit of the pool its nodeSelector names."""
    plan = stack_plan("prod")
    pools = pools_by_name(plan)
    needed: dict[str, int] = {}
    for isvc in custom_objects(plan, "InferenceService"):
        predictor = isvc["spec"]["predictor"]
        pool = predictor["nodeSelector"]["mlserve.io/node-group"]
        gpus = int(predictor["model"]["resources"]["limits"]["nvidia.com/gpu"])
        needed[pool] = needed.get(pool, 0) + int(predictor["maxReplicas"]) * gpus
    assert needed and set(needed) <= set(pools)
    for pool, gpus in needed.items():
        assert gpus <= int(pools[pool]["limits"]["nvidia.com/gpu"]), pool
        taints = pools[pool]["template"]["spec"]["taints"]
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in taints


def test_serving_pods_tolerate_the_pool_taint_and_select_its_label():
    plan = stack_plan("prod")
    pools = pools_by_name(plan)
    for isvc in custom_objects(plan, "InferenceService"):
        predictor = isvc["spec"]["predictor"]
        labels = pools[predictor["nodeSelector"]["mlserve.io/node-group"]]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in predictor["nodeSelector"].items())
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]


@pytest.mark.parametrize("stack", ["prod"])
def test_prod_pools_buy_on_demand_and_drain_one_node_at_a_time(stack):
    for spec in pools_by_name(stack_plan(stack)).values():
        capacity = next(r for r in spec["template"]["spec"]["requirements"] if r["key"] == "karpenter.sh/capacity-type")
        assert "on-demand" in capacity["values"]
        assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m",
                                      "budgets": [{"nodes": "1"}]}
