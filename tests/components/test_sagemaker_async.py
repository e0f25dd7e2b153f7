"""mode: async on a SageMaker deployment: the queue, its S3 locations and topics, scaling to and from zero, the
gateway route that queues a request; checked on the plan, against botocore's API model, and by the pack."""

import functools
import json

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.models import FakeEndpointConfig

from components.names import async_prefix
from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests import aws_replay as replay
from tests.harness import config_of, edited, plan_config, policy_json

ENDPOINT = "mlserve-prod-resnet50"


def to_async(raw, **scaling):
    d = raw["mlserve:deployments"][0]
    d["mode"] = "async"
    d["async_inference"] = {"max_concurrent_invocations_per_instance": 2, "backlog_per_instance": 3}
    d["autoscaling"]["min"] = 0
    d["autoscaling"].pop("max_rps_per_instance_at_slo", None)
    d["autoscaling"].update(scaling)


@functools.cache
def async_plan():
    """Prod's resnet50 as an async endpoint, planned once per session (other modules read its gateway too)."""
    return plan_config(edited("prod", to_async), "prod")


@pytest.fixture(scope="module")
def plan():
    return async_plan()


def test_requests_queue_with_inputs_and_results_in_the_model_bucket_encrypted_and_announced(plan):
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs["asyncInferenceConfig"]
    output = config["outputConfig"]
    bucket = plan.outputs["model_bucket"]
    assert output["s3OutputPath"] == f"s3://{bucket}/async/{ENDPOINT}/output/"
    assert output["s3FailurePath"] == f"s3://{bucket}/async/{ENDPOINT}/failure/"
    assert output["kmsKeyId"] == plan.outputs["kms_key_arn"]
    topics = {t.inputs["name"]: t.inputs for t in plan.of_type("aws:sns/topic:Topic") if "async" in t.name}
    assert set(topics) == {f"{ENDPOINT}-async-success", f"{ENDPOINT}-async-error"}
    assert all(t["kmsMasterKeyId"] == plan.outputs["kms_key_arn"] for t in topics.values())
    notify = output["notificationConfig"]
    assert notify["successTopic"].endswith(f":{ENDPOINT}-async-success")
    assert notify["errorTopic"].endswith(f":{ENDPOINT}-async-error")
    assert config["clientConfig"] == {"maxConcurrentInvocationsPerInstance": 2}
    request = replay.create_endpoint_config(plan.one(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs, "config")
    request["AsyncInferenceConfig"] = replay.pascal(config, {"includeInferenceResponseIns": "IncludeInferenceResponseIn"})
    replay.assert_valid_request("sagemaker", "CreateEndpointConfig", request)


@mock_aws
def test_moto_accepts_the_async_endpoint_and_keeps_its_queue_settings(plan, monkeypatch):
    # moto's hard-coded instance list rejects ml.g5 (a real type, checked against botocore's model elsewhere).
    monkeypatch.setattr(FakeEndpointConfig, "validate_instance_type", lambda self, instance_type: None)
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    (model,) = plan.of_type("aws:sagemaker/model:Model")
    sagemaker.create_model(**replay.create_model(model.inputs, config["productionVariants"][0]["modelName"]))
    endpoint = replay.create_endpoint(plan.one("aws:sagemaker/endpoint:Endpoint").inputs)
    request = replay.create_endpoint_config(config, endpoint["EndpointConfigName"].rsplit("/", 1)[-1])
    request["AsyncInferenceConfig"] = replay.pascal(config["asyncInferenceConfig"],
                                                    {"includeInferenceResponseIns": "IncludeInferenceResponseIn"})
    sagemaker.create_endpoint_config(**request)
    sagemaker.create_endpoint(**{**endpoint, "EndpointConfigName": request["EndpointConfigName"]})
    described = sagemaker.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])[
        "AsyncInferenceConfig"]
    assert described["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 2}
    assert described["OutputConfig"]["S3OutputPath"].endswith(f"/async/{ENDPOINT}/output/")


def test_the_execution_role_reads_only_async_inputs_writes_only_results_and_notifies_only_its_topics(plan):
    (role,) = [policy_json(p) for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-execution")]
    statements = {s["Sid"]: s for s in role["Statement"]}
    bucket = f"arn:aws:s3:::{plan.outputs['model_bucket']}"
    assert statements["ReadAsyncInputs"]["Resource"] == [f"{bucket}/{async_prefix(ENDPOINT, 'input')}*"]
    assert statements["WriteAsyncResults"]["Resource"] == [f"{bucket}/{async_prefix(ENDPOINT, p)}*"
                                                           for p in ("output", "failure")]
    notify = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs[
        "asyncInferenceConfig"]["outputConfig"]["notificationConfig"]
    assert sorted(statements["NotifyAsyncResults"]["Resource"]) == sorted([notify["successTopic"],
                                                                           notify["errorTopic"]])


def test_it_scales_on_the_queue_to_zero_and_a_backlog_without_capacity_wakes_the_first_instance(plan):
    target = plan.one("aws:appautoscaling/target:Target").inputs
    assert target["minCapacity"] == 0
    policies = {p.name.rsplit("-", 1)[1]: p for p in plan.of_type("aws:appautoscaling/policy:Policy")}
    assert set(policies) == {"backlog", "wake", "gpu"}
    backlog = policies["backlog"].inputs["targetTrackingScalingPolicyConfiguration"]
    assert backlog["targetValue"] == 3
    assert backlog["customizedMetricSpecification"]["metricName"] == "ApproximateBacklogSizePerInstance"
    wake = policies["wake"].inputs["stepScalingPolicyConfiguration"]
    assert wake["adjustmentType"] == "ChangeInCapacity" and wake["stepAdjustments"][0]["scalingAdjustment"] == 1
    (declared,) = [a for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                   if a.name.endswith("-backlog-without-capacity")]
    alarm = declared.inputs
    assert alarm["metricName"] == "HasBacklogWithoutCapacity" and alarm["dimensions"] == {"EndpointName": ENDPOINT}
    assert declared.property_dependencies["alarmActions"] == [policies["wake"].urn]
    assert alarm["alarmActions"][0].startswith("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:")
    replay.assert_valid_request("cloudwatch", "PutMetricAlarm", replay.put_metric_alarm(alarm))
    replay.assert_valid_request("application-autoscaling", "PutScalingPolicy",
                                replay.put_scaling_policy(policies["wake"].inputs, "wake"))
    replay.assert_valid_request("application-autoscaling", "PutScalingPolicy",
                                replay.put_scaling_policy(policies["backlog"].inputs, "backlog"))


def test_the_gateway_queues_a_request_naming_its_s3_input_and_answers_where_the_result_will_be(plan):
    (method,) = [m.inputs for m in plan.of_type("aws:apigateway/method:Method") if m.name.endswith("-infer-async")]
    assert method["requestParameters"]["method.request.header.X-Amzn-SageMaker-InputLocation"] is True
    assert method["apiKeyRequired"] is True and method["authorization"] == "AWS_IAM"
    (integration,) = [i.inputs for i in plan.of_type("aws:apigateway/integration:Integration")
                      if i.inputs["uri"].endswith("/async-invocations")]
    assert integration["uri"] == f"arn:aws:apigateway:us-east-1:runtime.sagemaker:path/endpoints/{ENDPOINT}/" \
                                 "async-invocations"
    replay.assert_valid_request("apigateway", "PutIntegration", {
        "restApiId": "a1b2c3d4e5", "resourceId": "abc123", "httpMethod": "POST", "type": "AWS",
        "uri": integration["uri"], "requestParameters": integration["requestParameters"]})
    (role,) = [policy_json(p) for p in plan.of_type("aws:iam/rolePolicy:RolePolicy")
               if p.name.endswith("-invoke-async")]
    assert role["Statement"] == [{"Sid": "QueueOnThisEndpointOnly", "Effect": "Allow",
                                  "Action": ["sagemaker:InvokeEndpointAsync"],
                                  "Resource": [f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"]}]
    (accepted,) = [r.inputs for r in plan.of_type("aws:apigateway/integrationResponse:IntegrationResponse")
                   if r.name.endswith("-infer-async-202")]
    assert accepted["responseParameters"]["method.response.header.X-Amzn-SageMaker-OutputLocation"] == \
        "integration.response.header.X-Amzn-SageMaker-OutputLocation"


def test_the_pack_accepts_an_async_prod_endpoint_that_scales_to_zero(plan):
    found = evaluate(json.loads(json.dumps(plan.as_json())), load_policy_config(CONFIG_DIR / "prod.json"))
    assert found == []


@pytest.mark.parametrize("edit,path,fragment", [
    (lambda r: r["mlserve:deployments"][0]["autoscaling"].update(min=0), "mlserve:deployments[0].autoscaling.min",
     "mode: async can"),
    (lambda r: to_async(r, max_rps_per_instance_at_slo=100), "mlserve:deployments[0].autoscaling",
     "scales on its queue"),
    (lambda r: (to_async(r), r["mlserve:deployments"][0].update(rollout={
        "strategy": "shadow", "sample_percent": 10, "candidate": r["mlserve:deployments"][0]["model"]})),
     "mlserve:deployments[0].rollout.strategy", "with mode: async"),
])
def test_what_async_cannot_do_is_refused_with_the_key(edit, path, fragment):
    from infra.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        config_of(edited("prod", edit), "prod")
    found = {i.path: i for i in refused.value.issues}
    assert fragment in found[path].allowed, refused.value.render()
