"""The controls a security reviewer checks, on the objects and AWS resources the stacks declare (issue: guardrails).

Each test reads the recorded plan, the same input the policy pack and the scanners get.
"""

import ipaddress
import json

import boto3
import iam_actions
import pytest
from moto import mock_aws

from components.model_audit import settings_change_pattern
from tests.harness import policy_json, stack_plan

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVING_PORT, AGENT_PORT = 8080, 9081  # the serving container; KServe v0.20.0's agent (schemas/kserve)


def subnets(plan, kind: str) -> list[dict]:
    return [s.inputs for s in plan.of_type("aws:ec2/subnet:Subnet") if f"-{kind}-" in s.name]


def admitted_on(policy: dict, port: int, address: str) -> bool:
    """NetworkPolicy semantics for one ingress rule set: does any rule admit `address` on `port`?"""
    for rule in policy.get("ingress", []):
        if not any(p["port"] == port for p in rule.get("ports", [{"port": port}])):
            continue
        for source in rule.get("from", []):
            block = source.get("ipBlock")
            if block and ipaddress.ip_address(address) in ipaddress.ip_network(block["cidr"]) and not any(
                    ipaddress.ip_address(address) in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
    return False


def test_only_the_gateways_path_reaches_the_serving_port():
    plan = stack_plan("prod")
    # Pods and nodes get addresses in the private subnets (VPC CNI); nothing but load balancers is in the lb ones.
    pod_and_node_ranges = [s["cidrBlock"] for s in subnets(plan, "private")]
    balancer_ranges = [s["cidrBlock"] for s in subnets(plan, "lb")]
    other = [s["cidrBlock"] for s in subnets(plan, "public")]
    policies = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in plan.of_type(NETWORK_POLICY)}
    # Each track admits the load balancer on the port its predictor Service targets: the logged stable track only
    # through KServe's agent (so no request skips capture), the canary on the serving port.
    for name, port in (("reranker-from-load-balancer", AGENT_PORT), ("reranker-canary-from-load-balancer",
                                                                     SERVING_PORT)):
        for cidr in pod_and_node_ranges + other:
            first_host = str(next(ipaddress.ip_network(cidr).hosts()))
            assert not admitted_on(policies[name], port, first_host), f"{cidr} reaches the pods directly"
        for cidr in balancer_ranges:
            host = str(next(ipaddress.ip_network(cidr).hosts()))
            assert admitted_on(policies[name], port, host)
            assert not admitted_on(policies[name], AGENT_PORT + SERVING_PORT - port, host), f"{name}: one port only"
    assert not any("ipBlock" in source for rule in policies["reranker-serving"]["ingress"] for source in rule["from"])

    groups = {g.urn: g for g in plan.of_type("aws:ec2/securityGroup:SecurityGroup")}
    nlb = next(lb for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer") if lb.inputs["loadBalancerType"] ==
               "network")
    # The NLB: a group with no inbound rule, not applied to PrivateLink traffic: only the VPC link gets in.
    assert nlb.inputs["enforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"
    (nlb_group,) = nlb.property_dependencies["securityGroups"]
    assert not groups[nlb_group].inputs.get("ingress")
    assert not [r for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                if r.property_dependencies["securityGroupId"] == [nlb_group]]
    # The ALB: its group (named in the Ingress) admits the listener port from the NLB's group, nothing else.
    ingress = next(r for r in plan.resources if r.type.endswith(":Ingress")).inputs["metadata"]["annotations"]
    (alb_group,) = [g for g in groups.values() if g.id == ingress["alb.ingress.kubernetes.io/security-groups"]]
    assert "alb.ingress.kubernetes.io/inbound-cidrs" not in ingress
    assert not alb_group.inputs.get("ingress")
    rules = [r for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.property_dependencies["securityGroupId"] == [alb_group.urn]]
    assert [(r.inputs["fromPort"], r.property_dependencies["referencedSecurityGroupId"]) for r in rules] == [
        (443, [nlb_group])]
    assert not any("cidrIpv4" in r.inputs for r in rules)
    # ...and the ALB sits in the load-balancer subnets, so its addresses are the ones the pods admit.
    assert set(ingress["alb.ingress.kubernetes.io/subnets"].split(",")) == {
        s.id for s in plan.of_type("aws:ec2/subnet:Subnet") if "-lb-" in s.name}


def test_network_policies_are_enforced_by_the_vpc_cni():
    (cni,) = [a for a in stack_plan("prod").of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_every_serving_namespace_denies_by_default_and_enforces_restricted_pod_security():
    plan = stack_plan("prod")
    namespaces = [n.inputs["metadata"] for n in plan.of_type("kubernetes:core/v1:Namespace")
                  if n.inputs["metadata"]["labels"].get("mlserve.io/deployment")]
    assert namespaces
    policies = [p.inputs for p in plan.of_type(NETWORK_POLICY)]
    for namespace in namespaces:
        assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        (deny,) = [p for p in policies if p["metadata"]["namespace"] == namespace["name"]
                   and p["spec"]["podSelector"] == {}]
        assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_serving_pods_meet_pod_security_restricted_and_restart_when_hung():
    plan = stack_plan("prod")
    for isvc in (r.inputs for r in plan.resources if r.type.endswith(":InferenceService")):
        predictor = isvc["spec"]["predictor"]
        pod = predictor["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert predictor["automountServiceAccountToken"] is False
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(predictor)
        assert not [v for v in predictor["volumes"] if "hostPath" in v]
        container = predictor["model"]["securityContext"]
        assert container["allowPrivilegeEscalation"] is False and container["capabilities"] == {"drop": ["ALL"]}
        assert container["readOnlyRootFilesystem"] is True
        assert {m["mountPath"] for m in predictor["model"]["volumeMounts"]} >= {"/tmp"}
        assert predictor["model"]["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    (runtime,) = [r.inputs for r in plan.resources if r.type.endswith(":ServingRuntime")]
    assert runtime["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    accounts = {a.inputs["metadata"]["name"]: a.inputs for a in plan.of_type("kubernetes:core/v1:ServiceAccount")
                if "eks.amazonaws.com/role-arn" in a.inputs["metadata"]["annotations"]
                and a.inputs["metadata"]["namespace"].startswith("mlserve-prod-")}
    assert set(accounts) == {"reranker", "capture-sink"}  # the serving pods and the capture sink
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    (sink,) = [d.inputs["spec"]["template"]["spec"] for d in plan.of_type("kubernetes:apps/v1:Deployment")
               if d.inputs["metadata"]["name"] == "capture-sink"]
    assert sink["securityContext"]["runAsNonRoot"] is True and sink["automountServiceAccountToken"] is False
    (container,) = sink["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    kserve = next(r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kserve")
    storage = kserve.inputs["values"]["kserve"]["storage"]["containerSecurityContext"]
    assert storage["allowPrivilegeEscalation"] is False and storage["capabilities"] == {"drop": ["ALL"]}


def test_no_node_lets_pods_reach_instance_metadata_credentials():
    for template in stack_plan("prod").of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (node_class,) = [r.inputs for r in stack_plan("prod").resources if r.type.endswith(":EC2NodeClass")]
    assert node_class["spec"]["metadataOptions"]["httpPutResponseHopLimit"] == 1


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_load_balancers_are_protected_from_deletion_in_prod_only(stack):
    plan = stack_plan(stack)
    prod = stack == "prod"
    for balancer in plan.of_type("aws:lb/loadBalancer:LoadBalancer"):
        assert balancer.inputs["enableDeletionProtection"] is prod
    for ingress in (r for r in plan.resources if r.type.endswith(":Ingress")):
        attributes = ingress.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
        assert f"deletion_protection.enabled={str(prod).lower()}" in attributes.split(",")


def test_waf_logs_what_it_blocks_without_credentials_encrypted_and_kept():
    plan = stack_plan("prod")
    groups = {g.id: g.inputs for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    acls = plan.of_type("aws:wafv2/webAcl:WebAcl")
    configs = plan.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert len(configs) == len(acls) >= 1
    for config in configs:
        (destination,) = config.inputs["logDestinationConfigs"]
        group = groups[destination.split(":log-group:")[1]]
        assert group["name"].startswith("aws-waf-logs-") and group["kmsKeyId"] and group["retentionInDays"] == 365
        redacted = {f["singleHeader"]["name"] for f in config.inputs["redactedFields"]}
        assert redacted == {"authorization", "x-api-key"}
        kept = config.inputs["loggingFilter"]["filters"][0]
        assert {c["actionCondition"]["action"] for c in kept["conditions"]} == {"BLOCK", "COUNT"}


def test_drift_logs_keep_the_stacks_retention():
    groups = [g.inputs for g in stack_plan("prod").of_type("aws:cloudwatch/logGroup:LogGroup")
              if g.inputs.get("name", "").endswith("-drift")]
    assert len(groups) == 2 and all(g["retentionInDays"] == 365 for g in groups)  # SageMaker's and KServe's


def test_load_balancer_controller_has_no_waf_or_shield_rights_and_scoped_reads():
    plan = stack_plan("prod")
    release = next(r for r in plan.of_type("kubernetes:helm.sh/v3:Release")
                   if r.inputs["name"] == "aws-load-balancer-controller").inputs["values"]
    assert (release["enableShield"], release["enableWaf"], release["enableWafv2"]) == (False, False, False)
    (policy,) = [policy_json(p) for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith(
        "-lb-controller")]
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("wafv2:", "waf-regional:", "shield:", "cognito-idp:"))}
    (describe,) = [s for s in policy["Statement"] if "acm:DescribeCertificate" in s["Action"]]
    assert describe["Resource"] == ["arn:aws:acm:us-east-1:123456789012:certificate/*"]


# -- least privilege, judged by AWS's own Service Authorization Reference (the iam-actions package's data) --

def actions_on_any_resource(document: dict) -> set[str]:
    found = set()
    for statement in document["Statement"]:
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if statement.get("Effect") == "Allow" and "*" in resources:
            actions = statement["Action"]
            found |= {actions} if isinstance(actions, str) else set(actions)
    return found


def scopable(action: str) -> list[str] | None:
    """Resource types AWS lets a policy name for this action; None when the reference does not know it."""
    service, name = action.split(":")
    entry = iam_actions.actions.get(service, {}).get(name)
    return None if entry is None else list(entry["resources"])


def test_a_scopable_action_on_any_resource_is_caught():
    assert scopable("acm:DescribeCertificate") == ["certificate"]
    assert scopable("ec2:DescribeSubnets") == []
    assert actions_on_any_resource({"Statement": [{"Effect": "Allow", "Action": "acm:DescribeCertificate",
                                                   "Resource": "*"}]}) == {"acm:DescribeCertificate"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_actions_granted_on_any_resource_are_only_those_aws_cannot_scope(stack):
    plan = stack_plan(stack)
    offenders = {}
    for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy") + plan.of_type("aws:iam/policy:Policy"):
        for action in actions_on_any_resource(policy_json(policy)):
            kinds = scopable(action)
            if kinds is None or kinds:
                offenders[f"{policy.name}: {action}"] = kinds
    assert offenders == {}, "scope these to their resources (None: not in the reference, check it by hand)"


# -- the model store as evidence --

def model_store_audit(plan, type_token: str) -> list:
    """The model store's audit resources (the CI source bucket's own audit, `mlserve-<stack>-ci-*`, aside)."""
    return [r for r in plan.of_type(type_token) if "-ci-" not in r.name]


def test_every_model_object_call_is_recorded_by_an_encrypted_validated_trail():
    plan = stack_plan("prod")
    (trail,) = model_store_audit(plan, "aws:cloudtrail/trail:Trail")
    inputs = trail.inputs
    assert inputs["enableLogFileValidation"] is True and inputs["kmsKeyId"] == plan.outputs["kms_key_arn"]
    selectors = {s["name"]: {f["field"]: f for f in s["fieldSelectors"]} for s in inputs["advancedEventSelectors"]}
    objects = selectors["model-objects"]
    assert objects["resources.type"]["equals"] == ["AWS::S3::Object"]
    assert objects["resources.ARN"]["startsWiths"] == [f"arn:aws:s3:::{plan.outputs['model_bucket']}/"]
    assert "readOnly" not in objects  # reads too: who downloaded a model is evidence
    (bucket,) = [b for b in model_store_audit(plan, "aws:s3/bucket:Bucket") if b.name.endswith("-audit")]
    assert bucket.inputs["bucket"] == f"{plan.outputs['model_bucket']}-audit"
    assert bucket.inputs["objectLockEnabled"] is True
    (lock,) = model_store_audit(plan, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "GOVERNANCE", "days": 365}
    (policy,) = [policy_json(p) for p in model_store_audit(plan, "aws:s3/bucketPolicy:BucketPolicy")
                 if p.name.endswith("-audit")]
    writers = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert all(s["Condition"] == {"StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/"
                                                                    "mlserve-prod-model-store"}} for s in writers)


def test_the_stack_key_lets_cloudtrail_encrypt_only_this_accounts_trails():
    (key,) = stack_plan("prod").of_type("aws:kms/key:Key")
    (statement,) = [s for s in policy_json(key)["Statement"] if s["Sid"] == "CloudTrailEncryptsTrailsOfThisAccount"]
    assert statement["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:123456789012:trail/*"}


def cloudtrail_event(bucket: str, status: str) -> dict:
    """An event as EventBridge delivers a CloudTrail record of `PutBucketVersioning` (AWS's documented shape)."""
    return {"version": "0", "id": "6f5b0c1a-1d7e-4c0b-9d2e-7a1b2c3d4e5f", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.s3", "account": "123456789012", "time": "2026-12-03T07:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {
                "eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": "PutBucketVersioning",
                "awsRegion": "us-east-1", "userIdentity": {"type": "AssumedRole"},
                "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.us-east-1.amazonaws.com",
                                      "VersioningConfiguration": {"Status": status}},
                "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True}}


@mock_aws
def test_suspending_versioning_on_the_model_bucket_alerts():
    plan = stack_plan("prod")
    bucket = plan.outputs["model_bucket"]
    (rule,) = [r for r in model_store_audit(plan, "aws:cloudwatch/eventRule:EventRule")
               if r.name.endswith("-settings-changed")]
    assert json.loads(rule.inputs["eventPattern"]) == settings_change_pattern(bucket)
    (target,) = [t for t in model_store_audit(plan, "aws:cloudwatch/eventTarget:EventTarget")
                 if t.name.endswith("-settings-changed")]
    assert target.inputs["arn"] == plan.outputs["alert_topic_arn"]
    # moto routes events by the rule's pattern (it has no TestEventPattern): a queue stands in for the topic.
    events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule.id, EventPattern=rule.inputs["eventPattern"])
    events.put_targets(Rule=rule.id, Targets=[{"Id": "alerts", "Arn": queue_arn}])
    events.put_events(Entries=[{"Source": e["source"], "DetailType": e["detail-type"], "Detail": json.dumps(e["detail"])}
                               for e in (cloudtrail_event("someone-elses-bucket", "Suspended"),
                                         cloudtrail_event(bucket, "Suspended"))])
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert detail["requestParameters"]["bucketName"] == bucket
    assert detail["requestParameters"]["VersioningConfiguration"] == {"Status": "Suspended"}
