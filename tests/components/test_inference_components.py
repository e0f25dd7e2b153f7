"""hosting: inference_components: the model as a SageMaker inference component (aws-native) with copies that scale,
to zero where allowed; checked on the plan, against botocore's API model, and by the pack."""

import json

import pytest

from infra.config import ConfigError
from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests import aws_replay as replay
from tests.harness import config_of, edited, plan_config, stack_account, stack_plan

NAME = "mlserve-prod-resnet50"
COMPONENT = "aws-native:sagemaker:InferenceComponent"


ROLLING = {"strategy": "rolling", "batch_percent": 25, "bake_minutes": 5, "rollback_batch_percent": 50,
           "timeout_minutes": 90}


def to_components(raw, tolerates_cold_start=True, rollout=ROLLING, **autoscaling):
    """Prod's resnet50 as 4 copies of 1 GPU between 4 and 12 rolling in batches of 25% (a whole copy at the
    fewest copies autoscaling may leave), or as given."""
    d = raw["mlserve:deployments"][0]
    d["hosting"] = "inference_components"
    d["rollout"] = dict(rollout)
    d["inference_component"] = {"accelerators": 1, "cpu_cores": 4, "min_memory_mb": 16384, "copies": 4,
                      "tolerates_cold_start": tolerates_cold_start}
    d["autoscaling"].update({"min": 4, **autoscaling})


def to_idle_components(raw, tolerates_cold_start=True):
    """The same model scaling to zero copies when idle: an update may meet one copy, so it replaces them at once."""
    to_components(raw, tolerates_cold_start, rollout={"strategy": "all_at_once"}, min=0)


@pytest.fixture(scope="module")
def plan():
    return plan_config(edited("prod", to_components), "prod")


@pytest.fixture(scope="module")
def idle_plan():
    return plan_config(edited("prod", to_idle_components), "prod")


def as_json(plan):
    return json.loads(json.dumps(plan.as_json()))


def test_the_model_is_a_component_with_its_reservation_copies_and_a_guarded_rolling_update(plan):
    (component,) = [r for r in plan.resources if r.type == COMPONENT]
    inputs = component.inputs
    assert (inputs["endpointName"], inputs["variantName"], inputs["inferenceComponentName"]) == (NAME, "primary", NAME)
    spec = inputs["specification"]
    (model,) = plan.of_type("aws:sagemaker/model:Model")
    assert spec["modelName"] == model.inputs.get("name", spec["modelName"])
    assert spec["computeResourceRequirements"] == {"numberOfAcceleratorDevicesRequired": 1,
                                                   "numberOfCpuCoresRequired": 4, "minMemoryRequiredInMb": 16384}
    assert inputs["runtimeConfig"] == {"copyCount": 4}
    update = inputs["deploymentConfig"]
    rolling = update["rollingUpdatePolicy"]
    assert rolling["maximumBatchSize"] == {"type": "CAPACITY_PERCENT", "value": 25}
    assert rolling["rollbackMaximumBatchSize"] == {"type": "CAPACITY_PERCENT", "value": 50}
    assert (rolling["waitIntervalInSeconds"], rolling["maximumExecutionTimeoutInSeconds"]) == (300, 5400)
    assert [a["alarmName"] for a in update["autoRollbackConfiguration"]["alarms"]] == [
        f"{NAME}-p99-latency", f"{NAME}-5xx-rate"]
    assert {"key": "mlserve:tolerates-cold-start", "value": "true"} in inputs["tags"]
    assert {"key": "owner", "value": "ml-platform"} in inputs["tags"]
    request = replay.pascal({k: v for k, v in inputs.items() if k != "deploymentConfig"})
    replay.assert_valid_request("sagemaker", "CreateInferenceComponent", request)
    # The update policy travels with each update of the component (a new model version).
    replay.assert_valid_request("sagemaker", "UpdateInferenceComponent", {
        "InferenceComponentName": NAME, "Specification": request["Specification"],
        "RuntimeConfig": request["RuntimeConfig"], "DeploymentConfig": replay.pascal(update)})


def test_the_endpoint_holds_no_model_and_scales_its_instances_with_the_copies(idle_plan):
    plan = idle_plan
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs
    (variant,) = config["productionVariants"]
    assert "modelName" not in variant
    assert variant["managedInstanceScaling"] == {"status": "ENABLED", "minInstanceCount": 0, "maxInstanceCount": 12}
    assert variant["routingConfigs"] == [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}]
    assert ":role/mlserve-prod-resnet50-execution" in config["executionRoleArn"]
    request = replay.create_endpoint_config(config, "config")
    assert request["ProductionVariants"][0]["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    replay.assert_valid_request("sagemaker", "CreateEndpointConfig", request)
    assert "deploymentConfig" not in plan.one("aws:sagemaker/endpoint:Endpoint").inputs  # the component's instead


def _alarm_fires(alarm: dict, datapoints: list[float]) -> bool:
    """CloudWatch's rule for a static threshold (the alarm's own comparison, over its evaluation periods; missing data
    per treat_missing_data): a worked reading of the alarm as declared, not of how mlserve builds it."""
    compare = {"GreaterThanOrEqualToThreshold": lambda v, t: v >= t, "GreaterThanThreshold": lambda v, t: v > t}[
        alarm["comparisonOperator"]]
    window = datapoints[-int(alarm["evaluationPeriods"]):]
    if not window:
        return alarm.get("treatMissingData") == "breaching"
    return all(compare(v, alarm["threshold"]) for v in window)


def _step(policy: dict, breach: float, capacity: int, low: int, high: int) -> int:
    """Application Auto Scaling's step policy: the adjustment whose interval (bounds relative to the alarm's threshold,
    lower inclusive) holds the breach, as a ChangeInCapacity, clamped to the target's min and max."""
    config = policy["stepScalingPolicyConfiguration"]
    assert config["adjustmentType"] == "ChangeInCapacity"
    for step in config["stepAdjustments"]:
        lower = float(step.get("metricIntervalLowerBound", "-inf"))
        upper = float(step.get("metricIntervalUpperBound", "inf"))
        if lower <= breach < upper:
            return max(low, min(high, capacity + int(step["scalingAdjustment"])))
    return capacity


def test_a_request_that_finds_no_copy_brings_one_back_and_none_stays_at_zero(idle_plan):
    plan = idle_plan
    target = plan.one("aws:appautoscaling/target:Target").inputs
    (alarm,) = [a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name.endswith("-no-capacity")]
    wake = next(p.inputs for p in plan.of_type("aws:appautoscaling/policy:Policy") if p.name.endswith("-wake"))
    low, high = target["minCapacity"], target["maxCapacity"]
    # One request found no copy in the last minute: the alarm fires and the copy count goes from 0 to 1.
    assert _alarm_fires(alarm, [1.0])
    assert _step(wake, 1.0 - alarm["threshold"], 0, low, high) == 1
    # Idle (no failures, or no data at all): the alarm stays quiet and nothing starts.
    assert not _alarm_fires(alarm, [0.0]) and not _alarm_fires(alarm, [])


def test_copies_scale_to_zero_and_the_wake_alarm_drives_the_step_policy(idle_plan):
    plan = idle_plan
    target = plan.one("aws:appautoscaling/target:Target").inputs
    assert target["resourceId"] == f"inference-component/{NAME}"
    assert target["scalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["minCapacity"], target["maxCapacity"]) == (0, 12)
    policies = {p.name.rsplit("-", 1)[1]: p for p in plan.of_type("aws:appautoscaling/policy:Policy")}
    assert set(policies) == {"invocations", "wake"}
    tracking = policies["invocations"].inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == \
        "SageMakerInferenceComponentInvocationsPerCopy"
    (alarm,) = [a for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name.endswith("-no-capacity")]
    assert alarm.inputs["metricName"] == "NoCapacityInvocationFailures"
    assert alarm.inputs["dimensions"] == {"InferenceComponentName": NAME}
    assert alarm.property_dependencies["alarmActions"] == [policies["wake"].urn]
    replay.assert_valid_request("application-autoscaling", "RegisterScalableTarget",
                                replay.register_scalable_target(target))
    replay.assert_valid_request("application-autoscaling", "PutScalingPolicy",
                                replay.put_scaling_policy(policies["invocations"].inputs, "invocations"))


def test_alarms_and_the_gateway_address_the_component(plan):
    latency = next(a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                   if a.inputs["name"] == f"{NAME}-p99-latency")
    assert latency["dimensions"] == {"InferenceComponentName": NAME}
    (integration,) = [i for i in plan.of_type("aws:apigateway/integration:Integration") if i.inputs["type"] == "AWS"]
    assert integration.inputs["requestParameters"][
        "integration.request.header.X-Amzn-SageMaker-Inference-Component"] == f"'{NAME}'"


def test_an_all_at_once_component_sends_no_rolling_policy_the_api_would_refuse():
    # SageMaker takes a rolling batch of 5-50% of the copy count; all_at_once once became CAPACITY_PERCENT 100.
    (component,) = [r for r in stack_plan("dev").resources if r.type == COMPONENT]
    assert "deploymentConfig" not in component.inputs
    assert component.inputs["runtimeConfig"] == {"copyCount": 1}


def test_the_host_role_may_write_the_component_s_own_container_logs():
    # SageMaker writes a component's container output to /aws/sagemaker/InferenceComponents/<name>, not the
    # endpoint's group, with the endpoint's execution role.
    plan = stack_plan("dev")
    (logs,) = [s for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") for s in json.loads(p.inputs["policy"])[
        "Statement"] if s.get("Sid") == "WriteEndpointLogs"]
    prefix = f"arn:aws:logs:us-east-1:{stack_account('dev')}:log-group:/aws/sagemaker"
    assert logs["Resource"] == [f"{prefix}/Endpoints/mlserve-dev-resnet50:*",
                                f"{prefix}/InferenceComponents/mlserve-dev-resnet50:*"]


def test_the_pack_allows_zero_copies_in_prod_only_when_the_deployment_tolerates_the_cold_start(idle_plan):
    # Tolerating the cold start also excuses the all-at-once update: at one copy no batch is 5-50% of the copies.
    assert evaluate(as_json(idle_plan), load_policy_config(CONFIG_DIR / "prod.json")) == []
    hand_edited = as_json(idle_plan)
    for resource in hand_edited["resources"]:
        if resource["type"] == COMPONENT:
            resource["inputs"]["tags"] = [t for t in resource["inputs"]["tags"]
                                          if t["key"] != "mlserve:tolerates-cold-start"]
    refused = {v.rule: v for v in evaluate(hand_edited, load_policy_config(CONFIG_DIR / "prod.json"))}
    assert set(refused) == {"prod-endpoint-capacity", "progressive-rollout-with-rollback"}
    assert "inference-component/mlserve-prod-resnet50 down to 0" in refused["prod-endpoint-capacity"].message


@pytest.mark.parametrize("edit,path,fragment", [
    (lambda r: to_idle_components(r, tolerates_cold_start=False), "mlserve:deployments[0].autoscaling.min",
     "tolerates_cold_start"),
    # The API's batch is 5-50% of the copies an update meets: scaling to zero leaves one copy to update.
    (lambda r: to_components(r, min=0), "mlserve:deployments[0].rollout.strategy",
     "an update meets the copy count autoscaling left"),
    (lambda r: (to_components(r), r["mlserve:deployments"][0].update(
        rollout={"strategy": "canary", "percent": 10, "bake_minutes": 5})),
     "mlserve:deployments[0].rollout.strategy", "rolling or all_at_once"),
    (lambda r: (to_components(r), r["mlserve:deployments"][0]["inference_component"].update(accelerators=2)),
     "mlserve:deployments[0].inference_component.accelerators", "at most 1"),
])
def test_what_components_cannot_do_is_refused_with_the_key(edit, path, fragment):
    with pytest.raises(ConfigError) as refused:
        config_of(edited("prod", edit), "prod")
    found = {i.path: i for i in refused.value.issues}
    assert fragment in found[path].allowed, refused.value.render()


def test_copies_per_instance_is_one_home_for_how_many_copies_an_instance_holds():
    """The host's managed instances (deployment_args) and preflight's quota count both read it: packed by GPU."""
    def copies(instance_type: str, accelerators: int) -> int:
        def edit(raw):
            d = raw["mlserve:deployments"][0]
            d["compute"]["instance_type"] = instance_type
            d["inference_component"]["accelerators"] = accelerators
        return config_of(edited("dev", edit), "dev").deployments[0].copies_per_instance()

    assert copies("ml.g5.12xlarge", 1) == 4 and copies("ml.g5.12xlarge", 2) == 2 and copies("ml.g5.12xlarge", 3) == 1
    assert copies("ml.g5.xlarge", 1) == 1 and copies("ml.g5.48xlarge", 0) == 8  # no GPU asked: packed as if one each
