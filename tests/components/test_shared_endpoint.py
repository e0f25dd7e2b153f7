"""Several deployments on one SageMaker endpoint (`endpoint:` group): one host endpoint with managed instances sized
for all of them, one model and one component per deployment, each with its own alarms, scaling and API."""

import copy
import json

import pytest

from infra.config import ConfigError
from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests import aws_replay as replay
from tests.harness import config_of, edited, plan_config

HOST = "mlserve-dev-shared-gpu"
COMPONENT = "aws-native:sagemaker:InferenceComponent"
SHA = "1f" * 32


def share(raw, **second):
    """resnet50 and a second model, tagger, as components on the 4-GPU endpoint `shared-gpu`."""
    first = raw["mlserve:deployments"][0]
    first.update(hosting="inference_components", endpoint="shared-gpu",
                 rollout={"strategy": "rolling", "batch_percent": 50, "bake_minutes": 5},
                 inference_component={"accelerators": 1, "cpu_cores": 4, "min_memory_mb": 16384, "copies": 2},
                 data_capture={"enabled": False}, drift={"enabled": False})
    first["compute"]["instance_type"] = "ml.g5.12xlarge"
    first["compute"]["instance_count"] = 1
    first["autoscaling"].update(min=2, max=6)  # a rolling batch of 50% is a whole copy at the fewest copies, 2
    first["inference_component"]["copies"] = 2  # a rolling batch of 50% must be a whole copy
    tagger = copy.deepcopy(first)
    bucket = first["model"]["uri"].split("/")[2]
    tagger.update(name="tagger", model={"uri": f"s3://{bucket}/tagger/1/model.tar.gz", "format": "onnx",
                                        "sha256": SHA, "triton_model_name": "tagger"})
    tagger["autoscaling"].update(min=2, max=4)
    tagger.update(second)
    raw["mlserve:deployments"].insert(1, tagger)


@pytest.fixture(scope="module")
def plan():
    return plan_config(edited("dev", share), "dev")


def test_one_host_endpoint_holds_no_model_and_is_sized_for_every_component_at_max(plan):
    (endpoint,) = plan.of_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["name"] == HOST
    (config,) = plan.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant,) = config.inputs["productionVariants"]
    assert "modelName" not in variant and variant["instanceType"] == "ml.g5.12xlarge"
    # 4 GPUs per instance, one per copy, each component on instances of its own (an upper bound): at max resnet50
    # needs 2 instances (6 copies), tagger 1 (4 copies); at min each needs 1 (2 copies each).
    assert variant["managedInstanceScaling"] == {"status": "ENABLED", "minInstanceCount": 2, "maxInstanceCount": 3}


def test_each_deployment_is_its_own_model_and_component_on_the_host(plan):
    components = {c.inputs["inferenceComponentName"]: c.inputs for c in plan.of_type(COMPONENT)}
    assert set(components) == {"mlserve-dev-resnet50", "mlserve-dev-tagger"}
    assert {c["endpointName"] for c in components.values()} == {HOST}
    models = {m.name: m.inputs for m in plan.of_type("aws:sagemaker/model:Model")}
    assert set(models) == {"mlserve-dev-resnet50-model", "mlserve-dev-tagger-model"}
    assert models["mlserve-dev-tagger-model"]["primaryContainer"]["environment"][
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "tagger"
    assert len({m["executionRoleArn"] for m in models.values()}) == 1  # the host's role runs both
    for name, inputs in components.items():
        request = replay.pascal({k: v for k, v in inputs.items() if k != "deploymentConfig"})
        replay.assert_valid_request("sagemaker", "CreateInferenceComponent", request)
        assert [a["alarmName"] for a in inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]] == [
            f"{name}-p99-latency", f"{name}-5xx-rate"]


def test_the_host_role_reads_exactly_the_models_on_it(plan):
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{HOST}-execution"]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["ReadThisModel"]["Resource"] == [
        "arn:aws:s3:::mlserve-dev-models/resnet50/925ccfc0e86ea74c/*", "arn:aws:s3:::mlserve-dev-models/tagger/1/*"]
    assert "WriteDataCapture" not in statements


def test_alarms_scaling_and_apis_are_per_component(plan):
    alarms = {a.inputs["name"]: a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for name in ("mlserve-dev-resnet50", "mlserve-dev-tagger"):
        assert alarms[f"{name}-p99-latency"]["dimensions"] == {"InferenceComponentName": name}
    targets = sorted(t.inputs["resourceId"] for t in plan.of_type("aws:appautoscaling/target:Target")
                     if t.inputs["serviceNamespace"] == "sagemaker")
    assert targets == ["inference-component/mlserve-dev-resnet50", "inference-component/mlserve-dev-tagger"]
    headers = sorted(i.inputs["requestParameters"]["integration.request.header.X-Amzn-SageMaker-Inference-Component"]
                     for i in plan.of_type("aws:apigateway/integration:Integration") if i.inputs["type"] == "AWS")
    assert headers == ["'mlserve-dev-resnet50'", "'mlserve-dev-tagger'"]
    body = json.loads(plan.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert "tagger: GPU (share of its reservation)" in titles


def test_the_pack_passes_the_shared_endpoint_and_flags_only_its_larger_instance_type(plan):
    found = evaluate(json.loads(json.dumps(plan.as_json())), load_policy_config(CONFIG_DIR / "dev.json"))
    # dev's allow-list stops at one GPU; and at max the 4-GPU instances ($7.09 an hour each) take the estimate over
    # dev's budget (advice in dev, a refusal in prod)
    assert sorted((v.rule, v.level.value) for v in found) == [("instance-type-allowlist", "advisory"),
                                                                ("monthly-budget", "advisory")]
    allowlist, budget = sorted(found, key=lambda v: v.rule)
    assert allowlist.message.startswith("ml.g5.12xlarge is not allowed here")
    assert "at maximum scale the stack is estimated at" in budget.message and "over its $2,500.00 budget" in budget.message


@pytest.mark.parametrize("stack,second,path,fragment", [
    ("prod", {}, "mlserve:deployments[1].endpoint", "unset in prod"),
    ("dev", {"compute": {"instance_type": "ml.g5.2xlarge", "instance_count": 1}},
     "mlserve:deployments[1].compute.instance_type", "'ml.g5.12xlarge', as deployments[0] on the shared endpoint"),
    ("dev", {"data_capture": {"enabled": True, "sample_percent": 5}}, "mlserve:deployments[1].data_capture.enabled",
     "captures of its models would mix"),
    ("dev", {"hosting": "endpoint"}, "mlserve:deployments[1].endpoint", "hosting: inference_components"),
    ("dev", {"endpoint": "resnet50"}, "mlserve:deployments[1].endpoint", "a name no other deployment has"),
])
def test_what_a_shared_endpoint_cannot_hold_is_refused_with_the_key(stack, second, path, fragment):
    with pytest.raises(ConfigError) as refused:
        config_of(edited(stack, lambda raw: share(raw, **second)), stack)
    found = {i.path: i for i in refused.value.issues}
    assert path in found and fragment in found[path].allowed, refused.value.render()
