"""drift.on_alarm: an EventBridge rule on the deployment's drift alarms entering ALARM starts retraining (a
SageMaker Pipeline, a Step Functions state machine or an HTTPS webhook) with a role that may do only that; and the
prediction-drift alarm beside the input one."""

import json

import boto3
import pytest
from moto import mock_aws

from infra.config import ConfigError
from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests import aws_replay as replay
from tests.harness import config_of, edited, plan_config, stack_account

NAME = "mlserve-dev-resnet50"
ACCOUNT = stack_account("dev")  # the targets live in the stack's own account
PIPELINE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/resnet50-retrain"
MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:resnet50-retrain"
# Pulumi's wire format for a secret value (pulumi.runtime.rpc's special signature key and secret signature).
SECRET_SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ci/retrain-webhook-AbCdEf"


def with_trigger(on_alarm, prediction_threshold=0.25):
    def edit(raw):
        raw["mlserve:deployments"][0]["drift"].update(on_alarm=on_alarm,
                                                      prediction_psi_alarm_threshold=prediction_threshold)
    return edited("dev", edit)


@pytest.fixture(scope="module")
def pipeline_plan():
    return plan_config(with_trigger({"kind": "sagemaker_pipeline", "pipeline_arn": PIPELINE}))


def alarm_event(alarm: str, state: str) -> dict:
    """An alarm state change as CloudWatch sends it to EventBridge (the documented "Single Metric Alarm" shape)."""
    return {"version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": f"{ACCOUNT}", "time": "2026-12-03T10:00:00Z",
            "region": "us-east-1", "resources": [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}"],
            "detail": {"alarmName": alarm, "configuration": {
                "description": "Inputs of resnet50 drifted from the baseline (max PSI over features)",
                "metrics": [{"id": "m1", "metricStat": {"metric": {
                    "dimensions": {"Deployment": "resnet50"}, "name": "MaxPopulationStabilityIndex",
                    "namespace": "mlserve/Drift"}, "period": 3600, "stat": "Maximum"}, "returnData": True}]},
                "previousState": {"reason": "Threshold Crossed", "timestamp": "2026-12-03T09:00:00.000+0000",
                                  "value": "OK" if state == "ALARM" else "ALARM"},
                "state": {"reason": "Threshold Crossed: 2 out of the last 2 datapoints were greater than the "
                                    "threshold (0.2)", "timestamp": "2026-12-03T10:00:00.000+0000", "value": state}}}


def test_a_prediction_drift_alarm_watches_the_predictions_max_psi(pipeline_plan):
    alarms = {a.inputs["name"]: a.inputs for a in pipeline_plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    prediction = alarms[f"{NAME}-prediction-drift"]
    assert (prediction["metricName"], prediction["namespace"]) == ("MaxPredictionStabilityIndex", "mlserve/Drift")
    assert prediction["threshold"] == 0.25 and prediction["treatMissingData"] == "breaching"
    assert alarms[f"{NAME}-input-drift"]["metricName"] == "MaxPopulationStabilityIndex"
    replay.assert_valid_request("cloudwatch", "PutMetricAlarm", replay.put_metric_alarm(prediction))
    body = json.loads(pipeline_plan.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    (drift,) = [w["properties"] for w in body["widgets"] if "drift" in w["properties"]["title"]]
    assert [m[1] for m in drift["metrics"]] == ["MaxPopulationStabilityIndex", "MaxPredictionStabilityIndex"]


def test_the_rule_starts_the_pipeline_with_a_role_that_may_only_start_it(pipeline_plan):
    (rule,) = [r for r in pipeline_plan.of_type("aws:cloudwatch/eventRule:EventRule") if r.name.endswith("-retrain")]
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [f"{NAME}-input-drift", f"{NAME}-prediction-drift"], "state": {"value": ["ALARM"]}}}
    (target,) = [t.inputs for t in pipeline_plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
                 if t.inputs["arn"] == PIPELINE]
    (role,) = [r for r in pipeline_plan.of_type("aws:iam/role:Role") if r.name == f"{NAME}-retrain"]
    assert f":role/{NAME}-retrain-" in target["roleArn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": f"{ACCOUNT}"}}
    (policy,) = [p for p in pipeline_plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{NAME}-retrain"]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert (statement["Action"], statement["Resource"]) == (["sagemaker:StartPipelineExecution"], [PIPELINE])
    replay.assert_valid_request("events", "PutTargets", {"Rule": rule.id, "Targets": [{
        "Id": "retrain", "Arn": target["arn"], "RoleArn": target["roleArn"], "SageMakerPipelineParameters": {
            "PipelineParameterList": []}, "RetryPolicy": replay.pascal(target["retryPolicy"])}]})


@mock_aws
def test_the_pattern_matches_only_this_deployments_drift_alarms_going_into_alarm(pipeline_plan):
    (rule,) = [r for r in pipeline_plan.of_type("aws:cloudwatch/eventRule:EventRule") if r.name.endswith("-retrain")]
    # moto routes events by the rule's pattern (it has no TestEventPattern): a queue stands in for the pipeline.
    events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="retrain")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="retrain", EventPattern=rule.inputs["eventPattern"])
    events.put_targets(Rule="retrain", Targets=[{"Id": "retrain", "Arn": queue_arn}])
    sent = [alarm_event(f"{NAME}-input-drift", "OK"), alarm_event(f"{NAME}-p99-latency", "ALARM"),
            alarm_event("mlserve-dev-other-input-drift", "ALARM"), alarm_event(f"{NAME}-prediction-drift", "ALARM"),
            alarm_event(f"{NAME}-input-drift", "INSUFFICIENT_DATA")]
    events.put_events(Entries=[{"Source": e["source"], "DetailType": e["detail-type"], "Detail": json.dumps(e["detail"]),
                                "Resources": e["resources"]} for e in sent])
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert [json.loads(m["Body"])["detail"]["alarmName"] for m in messages] == [f"{NAME}-prediction-drift"]


def test_a_state_machine_target_may_only_start_that_machine():
    plan = plan_config(with_trigger({"kind": "step_functions", "state_machine_arn": MACHINE}, None))
    assert not [a for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                if a.inputs["name"].endswith("-prediction-drift")]
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{NAME}-retrain"]
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Action"] == ["states:StartExecution"]
    assert [t.inputs["arn"] for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
            if t.name.endswith("-retrain")] == [MACHINE]


def test_a_webhook_goes_through_an_api_destination_whose_key_stays_secret_under_the_stack_key():
    plan = plan_config(with_trigger({"kind": "https", "url": "https://ci.example.com/hooks/retrain",
                                     "api_key_secret_arn": SECRET, "header": "X-Ci-Token"}))
    connection = plan.one("aws:cloudwatch/eventConnection:EventConnection")
    assert connection.inputs["authorizationType"] == "API_KEY"
    assert connection.inputs["kmsKeyIdentifier"] == plan.outputs["kms_key_arn"]
    # The engine sees the parameters wrapped as a secret (Pulumi's secret signature): encrypted in state, never plain.
    auth = connection.inputs["authParameters"]
    assert auth[SECRET_SIG_KEY] == SECRET_SIG and auth["value"]["apiKey"]["key"] == "X-Ci-Token"
    destination = plan.one("aws:cloudwatch/eventApiDestination:EventApiDestination").inputs
    assert (destination["invocationEndpoint"], destination["httpMethod"]) == (
        "https://ci.example.com/hooks/retrain", "POST")
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{NAME}-retrain"]
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Action"] == ["events:InvokeApiDestination"]
    key = plan.one("aws:kms/key:Key").inputs
    assert key["tags"] == {"EventBridgeApiDestinations": "true"}  # EventBridge's opt-in to a customer key
    replay.assert_valid_request("events", "CreateConnection", {
        "Name": "retrain", "AuthorizationType": "API_KEY", "KmsKeyIdentifier": connection.inputs["kmsKeyIdentifier"],
        "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "X-Ci-Token", "ApiKeyValue": "redacted"}}})
    assert evaluate(json.loads(json.dumps(plan.as_json())), load_policy_config(CONFIG_DIR / "dev.json")) == []


@pytest.mark.parametrize("drift,path,fragment", [
    ({"on_alarm": {"kind": "step_functions", "state_machine_arn": MACHINE.replace("us-east-1", "eu-west-1")}},
     "mlserve:deployments[0].drift.on_alarm.state_machine_arn", "an ARN in the stack's region us-east-1"),
    ({"enabled": False, "on_alarm": {"kind": "sagemaker_pipeline", "pipeline_arn": PIPELINE}},
     "mlserve:deployments[0].drift.on_alarm", "unset while drift.enabled is false"),
    ({"on_alarm": {"kind": "lambda", "function_arn": "x"}}, "mlserve:deployments[0].drift.on_alarm.kind",
     "https"),
])
def test_what_cannot_be_triggered_is_refused_with_the_key(drift, path, fragment):
    with pytest.raises(ConfigError) as refused:
        config_of(edited("dev", lambda raw: raw["mlserve:deployments"][0]["drift"].update(drift)), "dev")
    found = {i.path: i for i in refused.value.issues}
    assert path in found and fragment in str(found[path].allowed), refused.value.render()
