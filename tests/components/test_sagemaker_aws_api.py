"""Replay the declared SageMaker endpoint, scaling and alarms as boto3 calls: AWS's API model, then moto."""

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.models import FakeEndpointConfig

from tests import aws_replay as replay
from tests.harness import rollback_alarm_names, stack_plan

REGION = "us-east-1"


def requests_of(plan):
    """Every SageMaker request the plan implies: a variant's models and blue/green updates, or (dev) an endpoint of
    inference components, each component's model, creation and rolling update."""
    models = {m.inputs.get("name") or m.name: m for m in plan.of_type("aws:sagemaker/model:Model")}
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    endpoint = plan.one("aws:sagemaker/endpoint:Endpoint")
    config_name = endpoint.inputs["endpointConfigName"]
    components = [c.inputs for c in plan.of_type("aws-native:sagemaker:InferenceComponent")]
    served = [v["modelName"] for v in config.inputs["productionVariants"] if "modelName" in v] + [
        c["specification"]["modelName"] for c in components]
    return {
        "models": [("sagemaker", "CreateModel", replay.create_model(m.inputs, name))
                   for name in served for m in plan.of_type("aws:sagemaker/model:Model") if name.startswith(m.name)],
        "config": ("sagemaker", "CreateEndpointConfig", replay.create_endpoint_config(config.inputs, config_name)),
        "endpoint": ("sagemaker", "CreateEndpoint", replay.create_endpoint(endpoint.inputs)),
        "update": [("sagemaker", "UpdateEndpoint", replay.update_endpoint(endpoint.inputs))]
        if "deploymentConfig" in endpoint.inputs else [],
        "components": [("sagemaker", "CreateInferenceComponent", replay.create_inference_component(c))
                       for c in components],
        "component_updates": [("sagemaker", "UpdateInferenceComponent", {
            "InferenceComponentName": c["inferenceComponentName"], "Specification": replay.pascal(c["specification"]),
            "RuntimeConfig": replay.pascal(c["runtimeConfig"]),
            **({"DeploymentConfig": replay.pascal(c["deploymentConfig"])} if "deploymentConfig" in c else {})})
            for c in components],
        "target": ("application-autoscaling", "RegisterScalableTarget",
                   replay.register_scalable_target(plan.one("aws:appautoscaling/target:Target").inputs)),
        "policies": [("application-autoscaling", "PutScalingPolicy", replay.put_scaling_policy(p.inputs, p.name))
                     for p in plan.of_type("aws:appautoscaling/policy:Policy")],
        "alarms": [("cloudwatch", "PutMetricAlarm", replay.put_metric_alarm(a.inputs))
                   for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")],
        "_models": models,
    }


def flat(requests):
    for key, value in requests.items():
        if key.startswith("_"):
            continue
        yield from value if isinstance(value, list) else [value]


def test_every_declared_request_is_valid_against_the_aws_api_model(stack):
    requests = list(flat(requests_of(stack_plan(stack))))
    assert len(requests) >= 10
    for service, operation, params in requests:
        replay.assert_valid_request(service, operation, params)


def test_the_api_model_check_catches_values_aws_rejects():
    _, _, endpoint = requests_of(stack_plan("prod"))["endpoint"]
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    broken = {**endpoint, "DeploymentConfig": {**endpoint["DeploymentConfig"], "BlueGreenUpdatePolicy": {
        **endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"],
        "TrafficRoutingConfiguration": {**routing, "Type": "SLOW", "WaitIntervalInSeconds": 7200}}}}
    problems = "\n".join(replay.api_violations("sagemaker", "CreateEndpoint", broken))
    assert "'SLOW' is not one of ['ALL_AT_ONCE', 'CANARY', 'LINEAR']" in problems
    assert "7200 is above the maximum 3600" in problems


@pytest.fixture
def moto_accepts_gpu_instances(monkeypatch):
    # moto's hard-coded instance list rejects ml.g5/g6/p4d/p5; the real list is checked above against botocore's
    # model (ProductionVariantInstanceType), so only this one moto check is patched.
    monkeypatch.setattr(FakeEndpointConfig, "validate_instance_type", lambda self, instance_type: None)


@mock_aws
def test_declared_endpoint_scaling_and_alarms_are_accepted_by_moto(stack, moto_accepts_gpu_instances):
    plan = stack_plan(stack)
    requests = requests_of(plan)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    for _, _, params in requests["models"]:
        sagemaker.create_model(**params)
    assert len(sagemaker.list_models()["Models"]) == len(requests["models"])
    if requests["components"]:
        # moto 5.2.5 models no inference components: its CreateEndpointConfig requires a ModelName per variant, it
        # has no CreateInferenceComponent, and its scalable dimensions predate sagemaker:inference-component. Dev's
        # endpoint, component and scaling are checked against botocore's API model above (and in
        # test_inference_components); moto takes its models and alarms here.
        assert stack == "dev"
    else:
        sagemaker.create_endpoint_config(**requests["config"][2])
        sagemaker.create_endpoint(**requests["endpoint"][2])
        described = sagemaker.describe_endpoint_config(EndpointConfigName=requests["config"][2]["EndpointConfigName"])
        assert described["DataCaptureConfig"]["EnableCapture"] is True
        assert described["KmsKeyId"].startswith("arn:aws:kms:")
        assert described["ProductionVariants"][0]["InstanceType"] == requests["config"][2]["ProductionVariants"][0][
            "InstanceType"]

        scaling = boto3.client("application-autoscaling", region_name=REGION)
        scaling.register_scalable_target(**requests["target"][2])
        for _, _, params in requests["policies"]:
            scaling.put_scaling_policy(**params)
        (target,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (4, 12)
        assert len(scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]) == 2

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for _, _, params in requests["alarms"]:
        cloudwatch.put_metric_alarm(**params)
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    guards = {f"mlserve-{stack}-resnet50-{role}" for role in ("p99-latency", "5xx-rate")}
    assert guards <= {a["AlarmName"] for a in alarms}
    if stack == "prod":  # dev's single copy has no rolling policy, so no rollback alarms to name
        assert set(rollback_alarm_names(plan, f"mlserve-{stack}-resnet50")) == guards
