"""Each rule passes on what the real program declares and fails when config or recorded properties break it."""

import json

import pytest
from pulumi_policy import EnforcementLevel

from policies.pack import all_rules
from tests.harness import edited
from tests.policies.conftest import plan_json, plan_json_for, resources, violations


def deployment(raw):
    return raw["mlserve:deployments"][0]


def test_both_stacks_pass_every_rule(stack):
    assert violations(plan_json(stack)) == []


def set_policy(plan, type_token, statement, name_suffix=""):
    (policy,) = [r for r in resources(plan, type_token) if r["name"].endswith(name_suffix)]
    document = json.loads(policy["inputs"]["policy"])
    document["Statement"].append(statement)
    policy["inputs"]["policy"] = json.dumps(document)


# Each case: (rule, stack, how to break it). Breaking by recorded properties models a hand edit of a component.
PROPERTY_BREAKS = {
    "kms-key-rotation": lambda p: resources(p, "aws:kms/key:Key")[0]["inputs"].update(enableKeyRotation=False),
    "s3-bucket-kms-encryption": lambda p: resources(
        p, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[0][
        "inputs"]["rules"][0]["applyServerSideEncryptionByDefault"].update(sseAlgorithm="AES256"),
    "sagemaker-endpoint-config-kms": lambda p: resources(
        p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]["inputs"].pop("kmsKeyArn"),
    "log-group-kms-retention": lambda p: resources(p, "aws:cloudwatch/logGroup:LogGroup")[0]["inputs"].pop(
        "kmsKeyId"),
    "sns-topic-kms": lambda p: resources(p, "aws:sns/topic:Topic")[0]["inputs"].pop("kmsMasterKeyId"),
    "ecr-repository-hardened": lambda p: resources(p, "aws:ecr/repository:Repository")[0]["inputs"].update(
        imageTagMutability="MUTABLE"),
    "sagemaker-model-in-vpc": lambda p: resources(p, "aws:sagemaker/model:Model")[0]["inputs"].pop("vpcConfig"),
    "no-world-ingress": lambda p: resources(p, "aws:ec2/securityGroup:SecurityGroup")[0]["inputs"].update(
        ingress=[{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]),
    "iam-no-wildcard-action": lambda p: set_policy(p, "aws:iam/rolePolicy:RolePolicy", {
        "Sid": "Broad", "Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::mlserve-x/*"]},
        "-execution"),
    "iam-no-wildcard-resource-on-write": lambda p: set_policy(p, "aws:iam/rolePolicy:RolePolicy", {
        "Sid": "Anywhere", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["*"]}, "-execution"),
    "no-broad-managed-policy": lambda p: resources(p, "aws:iam/role:Role")[0]["inputs"].update(
        managedPolicyArns=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]),
    "trust-policy-scoped": lambda p: resources(p, "aws:iam/role:Role")[0]["inputs"].update(assumeRolePolicy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
         "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.x"}}]})),
    "prod-endpoint-capacity": lambda p: resources(
        p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]["inputs"]["productionVariants"][0].update(
        initialInstanceCount=1),
    "prod-endpoints-span-zones": lambda p: resources(p, "aws:sagemaker/model:Model")[0][
        "propertyDependencies"].update(vpcConfig=[u for u in resources(p, "aws:sagemaker/model:Model")[0][
            "propertyDependencies"]["vpcConfig"] if "us-east-1a" in u or "Subnet" not in u]),
    "endpoint-latency-and-error-alarms": lambda p: p["resources"].remove(next(a for a in resources(
        p, "aws:cloudwatch/metricAlarm:MetricAlarm") if a["inputs"]["name"].endswith("-p99-latency"))),
    "alarms-notify": lambda p: [a["inputs"].update(alarmActions=[]) for a in resources(
        p, "aws:cloudwatch/metricAlarm:MetricAlarm") if a["inputs"]["name"].endswith("-gpu-memory")],
    "required-tags": lambda p: resources(p, "pulumi:providers:aws")[0]["inputs"].update(
        defaultTags=json.dumps({"tags": {"owner": "ml-platform"}})),
    "api-routes-authenticated": lambda p: resources(p, "aws:apigateway/method:Method")[0]["inputs"].update(
        authorization="NONE"),
    "api-throttling": lambda p: resources(p, "aws:apigateway/methodSettings:MethodSettings")[0]["inputs"][
        "settings"].pop("throttlingRateLimit"),
    "api-access-logs": lambda p: resources(p, "aws:apigateway/stage:Stage")[0]["inputs"].pop("accessLogSettings"),
    "prod-api-waf": lambda p: resources(p, "aws:wafv2/webAclAssociation:WebAclAssociation")[0][
        "propertyDependencies"].update(resourceArn=[]),
    "images-pinned": lambda p: resources(p, "aws:sagemaker/model:Model")[0]["inputs"]["primaryContainer"].update(
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlserve/triton:latest"),
    "eks-private-endpoint": lambda p: resources(p, "aws:eks/cluster:Cluster")[0]["inputs"]["vpcConfig"].update(
        endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]),
    "eks-secrets-encrypted": lambda p: resources(p, "aws:eks/cluster:Cluster")[0]["inputs"].pop("encryptionConfig"),
    "eks-control-plane-logs": lambda p: resources(p, "aws:eks/cluster:Cluster")[0]["inputs"].update(
        enabledClusterLogTypes=["api"]),
    "node-imdsv2-encrypted-disk": lambda p: resources(p, "aws:ec2/launchTemplate:LaunchTemplate")[0]["inputs"][
        "metadataOptions"].update(httpTokens="optional"),
    "prod-gpu-capacity-warm": lambda p: resources(p, "aws:eks/nodeGroup:NodeGroup")[0]["inputs"][
        "scalingConfig"].update(minSize=0),
    "gpu-node-pool-guarded": lambda p: resources(p, "kubernetes:karpenter.sh/v1:NodePool")[0]["inputs"]["spec"][
        "disruption"].update(budgets=[{"nodes": "10%"}]),
    "karpenter-interruption-queue": lambda p: [r["inputs"].update(eventPattern="{}") for r in resources(
        p, "aws:cloudwatch/eventRule:EventRule") if "spot" in r["name"]],
    "sqs-queue-kms": lambda p: resources(p, "aws:sqs/queue:Queue")[0]["inputs"].pop("kmsMasterKeyId"),
    "serving-pods-restricted": lambda p: resources(p, INFERENCE_SERVICE)[0]["inputs"]["spec"]["predictor"][
        "model"]["securityContext"].update(readOnlyRootFilesystem=False),
    "serving-namespace-restricted": lambda p: [n["inputs"]["metadata"]["labels"].update(
        {"pod-security.kubernetes.io/enforce": "baseline"}) for n in resources(p, "kubernetes:core/v1:Namespace")
        if "mlserve.io/deployment" in n["inputs"]["metadata"]["labels"]],
    "serving-namespace-default-deny": lambda p: p["resources"].remove(next(
        r for r in resources(p, NETWORK_POLICY) if r["name"].endswith("-default-deny"))),
    "serving-only-through-gateway": lambda p: next(
        r for r in resources(p, NETWORK_POLICY) if r["name"].endswith("-network-policy"))["inputs"]["spec"][
        "ingress"][0].update({"from": [{"ipBlock": {"cidr": "10.50.0.0/16"}}]}),
    "eks-network-policies-enforced": lambda p: [a["inputs"].pop("configurationValues") for a in resources(
        p, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "vpc-cni"],
    "s3-versioned-and-tls-only": lambda p: next(r for r in resources(p, "aws:s3/bucketVersioning:BucketVersioning")
                                                if r["name"].endswith("-models"))["inputs"][
        "versioningConfiguration"].update(status="Suspended"),
    "model-store-audited": lambda p: resources(p, "aws:cloudtrail/trail:Trail")[0]["inputs"].update(
        enableLogFileValidation=False),
    "vpc-flow-logs": lambda p: resources(p, "aws:ec2/flowLog:FlowLog")[0]["inputs"].update(trafficType="REJECT"),
    "waf-logging": lambda p: p["resources"].remove(resources(
        p, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")[0]),
    "lb-deletion-protection": lambda p: resources(p, "aws:lb/loadBalancer:LoadBalancer")[0]["inputs"].update(
        enableDeletionProtection=False),
    "ci-build-hardened": lambda p: resources(p, "aws:codebuild/project:Project")[0]["inputs"][
        "environment"].update(privilegedMode=True),
    "private-cluster-deployed-in-vpc": lambda p: p["resources"].remove(
        resources(p, "aws:codebuild/project:Project")[0]),
    # Mutations of the recorded plan for what the stack file usually drives (the config cases below).
    "progressive-rollout-with-rollback": lambda p: resources(p, "aws:sagemaker/endpoint:Endpoint")[0][
        "inputs"].pop("deploymentConfig"),
    "prod-data-capture": lambda p: resources(p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0][
        "inputs"].pop("dataCaptureConfig"),
    "instance-type-allowlist": lambda p: resources(
        p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]["inputs"]["productionVariants"][0].update(
        instanceType="ml.c5.xlarge"),
    "gpu-budget": lambda p: ([t["inputs"].update(maxCapacity=40) for t in resources(
        p, "aws:appautoscaling/target:Target") if t["inputs"]["serviceNamespace"] == "sagemaker"],
        resources(p, "aws:budgets/budget:Budget")[0]["inputs"].update(limitAmount="100000.00")),
    "monthly-budget": lambda p: resources(p, "aws:budgets/budget:Budget")[0]["inputs"].update(limitAmount="1000.00"),
}
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

CONFIG_BREAKS = {
    "progressive-rollout-with-rollback": lambda r: deployment(r).update(rollout={"strategy": "all_at_once"}),
    "prod-data-capture": lambda r: (deployment(r)["data_capture"].update(enabled=False),
                                    deployment(r)["drift"].update(enabled=False)),
    "instance-type-allowlist": lambda r: deployment(r)["compute"].update(instance_type="ml.p4d.24xlarge"),
    # 40 instances of one GPU: over the GPU budget; the money budget raised so only the GPU rule speaks
    "gpu-budget": lambda r: (deployment(r)["autoscaling"].update(max=40), r["mlserve:budget"].update(monthly_usd=100_000)),
    "monthly-budget": lambda r: r["mlserve:budget"].update(monthly_usd=1000),
}


def test_every_rule_has_a_breaking_case():
    from tests.policies.test_llm_rules import LLM_BREAKS  # the rules only a language model's plan can break

    llm_only = set(LLM_BREAKS) - set(PROPERTY_BREAKS)
    assert {r.policy.name for r in all_rules()} == set(PROPERTY_BREAKS) | llm_only
    assert set(PROPERTY_BREAKS) >= set(CONFIG_BREAKS)


@pytest.mark.parametrize("rule", sorted(PROPERTY_BREAKS))
def test_each_mutation_of_the_prod_plan_is_refused_by_its_rule_alone_naming_the_resource(rule):
    """The mutation test: a weakened prod plan per rule. If a rule stopped firing, its mutation would pass (and
    fail here); if another rule fired too, the two would overlap and a test of one would prove nothing."""
    plan = plan_json("prod")
    PROPERTY_BREAKS[rule](plan)
    found = violations(plan)
    assert {v.rule for v in found} == {rule}, [f"{v.rule}: {v.message.splitlines()[0]}" for v in found]
    urns = {r["urn"] for r in plan["resources"]}
    assert all(v.urn in urns for v in found), "each refusal names a declared resource"


@pytest.mark.parametrize("rule", sorted(PROPERTY_BREAKS))
def test_rule_fails_when_recorded_properties_break_it(rule):
    plan = plan_json("prod")
    PROPERTY_BREAKS[rule](plan)
    found = violations(plan, rule=rule)
    assert found, f"{rule} did not fire"
    assert all(v.level == EnforcementLevel.MANDATORY for v in found)
    assert all("Fix: " in v.message for v in found)
    assert all(v.urn.startswith("urn:pulumi:prod::mlserve::") for v in found)


@pytest.mark.parametrize("rule", sorted(CONFIG_BREAKS))
def test_rule_fails_when_stack_config_breaks_it(rule):
    plan = plan_json_for(edited("prod", CONFIG_BREAKS[rule]), "prod")
    found = violations(plan, rule=rule)
    assert found and all(v.level == EnforcementLevel.MANDATORY for v in found)


def test_a_kserve_runtime_image_on_latest_is_refused():
    plan = plan_json("prod")
    runtime = resources(plan, "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime")[0]
    runtime["inputs"]["spec"]["containers"][0]["image"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:latest"
    [found] = violations(plan, rule="images-pinned")
    assert "uses 'latest'" in found.message and found.urn.endswith("reranker-runtime")


def test_a_kserve_deployment_without_slo_alerts_fails_the_alarm_rule():
    plan = plan_json("prod")
    prometheus = next(r for r in resources(plan, "kubernetes:helm.sh/v3:Release") if r["inputs"]["name"] == "prometheus")
    groups = prometheus["inputs"]["values"]["serverFiles"]["alerting_rules.yml"]["groups"]
    groups[0]["rules"] = [r for r in groups[0]["rules"] if not r["alert"].endswith("-error-rate")]
    [found] = violations(plan, rule="endpoint-latency-and-error-alarms")
    assert "InferenceService reranker has no Prometheus alert for ['error-rate']" in found.message
    groups[0]["rules"] = []
    prometheus["inputs"]["values"]["alertmanager"]["config"]["receivers"] = []
    assert violations(plan, rule="endpoint-latency-and-error-alarms")


def test_the_public_endpoint_is_refused_in_prod_even_for_listed_cidrs():
    plan = plan_json("prod")
    resources(plan, "aws:eks/cluster:Cluster")[0]["inputs"]["vpcConfig"].update(
        endpointPublicAccess=True, publicAccessCidrs=["203.0.113.0/24"])
    [found] = violations(plan, rule="eks-private-endpoint")
    assert "the public endpoint is on in prod" in found.message
    plan["stack"] = "dev"  # the same listed CIDR is allowed in dev
    assert violations(plan, stack="dev", rule="eks-private-endpoint") == []


def test_prod_is_stricter_than_dev():
    """The same weakness is mandatory in prod, advisory or not applicable in dev."""
    dev_plan = plan_json_for(edited("dev", CONFIG_BREAKS["prod-data-capture"]), "dev")
    assert violations(dev_plan, rule="prod-data-capture") == []
    prod_plan = plan_json_for(edited("prod", CONFIG_BREAKS["prod-data-capture"]), "prod")
    assert violations(prod_plan, rule="prod-data-capture")

    dev_plan = plan_json("dev")
    PROPERTY_BREAKS["prod-endpoint-capacity"](dev_plan)
    assert violations(dev_plan, rule="prod-endpoint-capacity") == []

    dev_plan = plan_json("dev")  # dev's model is an inference component: its update policy is the component's
    for resource in dev_plan["resources"]:
        if resource["type"] in ("aws:sagemaker/endpoint:Endpoint", "aws-native:sagemaker:InferenceComponent"):
            resource["inputs"].pop("deploymentConfig", None)
        if resource["type"] == "aws-native:sagemaker:InferenceComponent":
            resource["inputs"]["runtimeConfig"] = {"copyCount": 2}  # one copy cannot roll: nothing to advise
    advice = violations(dev_plan, rule="progressive-rollout-with-rollback")
    assert advice and all(v.level == EnforcementLevel.ADVISORY for v in advice)


def test_a_trust_policy_scoped_to_a_service_account_passes():
    plan = plan_json("prod")
    resources(plan, "aws:iam/role:Role")[0]["inputs"]["assumeRolePolicy"] = json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"},
            "Condition": {"StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/X:sub":
                                           "system:serviceaccount:resnet50:resnet50-predictor",
                                           "oidc.eks.us-east-1.amazonaws.com/id/X:aud": "sts.amazonaws.com"}}}]})
    assert violations(plan, rule="trust-policy-scoped") == []


def test_image_pinned_by_digest_passes_even_in_a_mutable_repository():
    plan = plan_json("prod")
    resources(plan, "aws:ecr/repository:Repository")[0]["inputs"]["imageTagMutability"] = "MUTABLE"
    assert violations(plan, rule="images-pinned") == []  # prod pins a digest
    dev = plan_json("dev")
    resources(dev, "aws:ecr/repository:Repository")[0]["inputs"]["imageTagMutability"] = "MUTABLE"
    assert violations(dev, rule="images-pinned")  # dev pins a tag: only an immutable repository makes it a pin


def test_unknown_values_at_preview_downgrade_to_advisory_like_the_analyzer():
    from infra.config import load_stack
    from infra.plan import plan_stack

    preview = json.loads(json.dumps(plan_stack(load_stack("prod"), "prod", preview=True).as_json()))
    found = violations(preview)
    assert found and all(v.level == EnforcementLevel.ADVISORY for v in found)
    assert all("can't run during preview" in v.message for v in found)


def test_dev_api_key_routes_pass_but_an_open_route_fails():
    dev = plan_json("dev")
    assert violations(dev, rule="api-routes-authenticated") == []  # dev: API key alone is allowed
    resources(dev, "aws:apigateway/method:Method")[0]["inputs"]["apiKeyRequired"] = False
    assert violations(dev, rule="api-routes-authenticated")


def node_pool(plan):
    return resources(plan, "kubernetes:karpenter.sh/v1:NodePool")[0]["inputs"]["spec"]


@pytest.mark.parametrize("break_it,fragment", [
    (lambda spec: spec["template"]["spec"].update(taints=[]), "no nvidia.com/gpu:NoSchedule taint"),
    (lambda spec: spec["limits"].pop("nvidia.com/gpu"), "no nvidia.com/gpu limit"),
    (lambda spec: spec["template"]["spec"]["requirements"][1].update(values=["spot"]), "cannot launch on-demand"),
    (lambda spec: spec["disruption"].pop("budgets"), "no disruption budget caps drains at one node"),
    (lambda spec: spec["disruption"].update(budgets=[{"nodes": "1", "schedule": "0 9 * * *", "duration": "8h"}]),
     "no disruption budget caps drains at one node"),
])
def test_each_weakness_of_a_gpu_pool_is_named(break_it, fragment):
    plan = plan_json("prod")
    break_it(node_pool(plan))
    [found] = violations(plan, rule="gpu-node-pool-guarded")
    assert fragment in found.message


def test_spot_first_with_on_demand_fallback_passes_in_prod_and_spot_only_passes_in_dev():
    plan = plan_json("prod")
    node_pool(plan)["template"]["spec"]["requirements"][1]["values"] = ["spot", "on-demand"]
    assert violations(plan, rule="gpu-node-pool-guarded") == []
    node_pool(plan)["template"]["spec"]["requirements"][1]["values"] = ["spot"]
    plan["stack"] = "dev"
    assert violations(plan, stack="dev", rule="gpu-node-pool-guarded") == []


def test_node_pools_without_the_interruption_queue_or_its_spot_rule_fail():
    plan = plan_json("prod")
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:sqs/queue:Queue"]
    [found] = violations(plan, rule="karpenter-interruption-queue")
    assert "no declared SQS queue" in found.message
    plan = plan_json("prod")
    plan["resources"] = [r for r in plan["resources"] if not r["name"].endswith("-spot-interruption")]
    [found] = violations(plan, rule="karpenter-interruption-queue")
    assert "EC2 Spot Instance Interruption Warning" in found.message


def test_at_preview_a_network_policy_open_to_the_vpc_is_still_refused():
    """The ALB's group id is unknown at preview; the NetworkPolicy's CIDRs are not, and they are judged first."""
    from infra.config import load_stack
    from infra.plan import plan_stack

    preview = json.loads(json.dumps(plan_stack(load_stack("prod"), "prod", preview=True).as_json()))
    PROPERTY_BREAKS["serving-only-through-gateway"](preview)
    found = violations(preview, rule="serving-only-through-gateway")
    assert any(v.level == EnforcementLevel.MANDATORY and "10.50.0.0/16" in v.message for v in found), found
