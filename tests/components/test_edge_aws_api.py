"""Replay the gateway stage, usage plans and every alarm against AWS's API model, then moto."""

import boto3
from moto import mock_aws

from tests import aws_replay as replay
from tests.harness import stack_plan

REGION = "us-east-1"


def test_stage_usage_plans_and_alarms_are_valid_against_the_aws_api_model(stack):
    plan = stack_plan(stack)
    for stage in plan.of_type("aws:apigateway/stage:Stage"):
        replay.assert_valid_request("apigateway", "CreateStage",
                                    replay.create_stage(stage.inputs, "a1b2c3d4e5", "dep123"))
        replay.assert_valid_request("apigateway", "UpdateStage",
                                    replay.update_stage_access_logs(stage.inputs, "a1b2c3d4e5"))
    for usage_plan in plan.of_type("aws:apigateway/usagePlan:UsagePlan"):
        replay.assert_valid_request("apigateway", "CreateUsagePlan",
                                    replay.create_usage_plan(usage_plan.inputs, "a1b2c3d4e5", "v1"))
    for alarm in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        replay.assert_valid_request("cloudwatch", "PutMetricAlarm", replay.put_metric_alarm(alarm.inputs))
    composite = plan.one("aws:cloudwatch/compositeAlarm:CompositeAlarm").inputs
    replay.assert_valid_request("cloudwatch", "PutCompositeAlarm", replay.put_composite_alarm(composite))


@mock_aws
def test_stage_usage_plans_and_alarms_are_accepted_by_moto(stack):
    plan = stack_plan(stack)
    gateway = boto3.client("apigateway", region_name=REGION)
    # One gateway (the SageMaker deployment's) replayed end to end; every stage is checked against the model above.
    (rest_api,) = [a for a in plan.of_type("aws:apigateway/restApi:RestApi") if a.name.endswith("resnet50-api")]
    api_id = gateway.create_rest_api(name=rest_api.inputs["name"])["id"]
    root = gateway.get_resources(restApiId=api_id)["items"][0]["id"]
    gateway.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    gateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="POST", type="MOCK")
    deployment = gateway.create_deployment(restApiId=api_id)["id"]
    (stage,) = [s.inputs for s in plan.of_type("aws:apigateway/stage:Stage") if s.name.endswith("resnet50-stage")]
    gateway.create_stage(**replay.create_stage(stage, api_id, deployment))
    gateway.update_stage(**replay.update_stage_access_logs(stage, api_id))
    described = gateway.get_stage(restApiId=api_id, stageName=stage["stageName"])
    assert described["accessLogSettings"]["destinationArn"] == stage["accessLogSettings"]["destinationArn"]

    for usage_plan in plan.of_type("aws:apigateway/usagePlan:UsagePlan"):
        created = gateway.create_usage_plan(**replay.create_usage_plan(usage_plan.inputs, api_id, stage["stageName"]))
        key = gateway.create_api_key(name=usage_plan.inputs["name"], enabled=True)
        gateway.create_usage_plan_key(usagePlanId=created["id"], keyId=key["id"], keyType="API_KEY")
    limits = {p["name"]: (p["throttle"]["rateLimit"], p["quota"]["limit"]) for p in gateway.get_usage_plans(
        limit=500)["items"]}
    assert limits == {p.inputs["name"]: (p.inputs["throttleSettings"]["rateLimit"], p.inputs["quotaSettings"]["limit"])
                      for p in plan.of_type("aws:apigateway/usagePlan:UsagePlan")}

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for alarm in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        cloudwatch.put_metric_alarm(**replay.put_metric_alarm(alarm.inputs))
    # moto 5.2 has no PutCompositeAlarm: the composite alarm is checked against the API model above only.
    described = cloudwatch.describe_alarms()
    # Dev's scaled-to-zero component has a wake alarm whose action adds a copy; every other alarm pages.
    wake = [a for a in described["MetricAlarms"] if a["AlarmName"].endswith("-no-capacity")]
    assert len(wake) == {"dev": 1, "prod": 0}[stack]
    assert all(a["AlarmActions"][0].startswith("arn:aws:autoscaling:") for a in wake)
    paging = [a for a in described["MetricAlarms"] if a not in wake]
    assert len(paging) == {"dev": 6, "prod": 7}[stack]  # prod: the KServe deployment's drift alarm too
    assert all(a["AlarmActions"] == [plan.outputs["alert_topic_arn"]] for a in paging)
