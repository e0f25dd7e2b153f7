"""rollout status|promote|rollback against moto, with guard alarms that fire mid-rollout."""

import datetime

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from components.names import async_prefix
from infra.ops import demo_account
from infra.ops.__main__ import main
from infra.ops.demo import ab_stack_file
from infra.ops.report import OpsError
from infra.ops.rollout import Rollout, describe, print_status, shifted
from tests.aws_replay import api_violations
from tests.ops.conftest import DEV_ENDPOINT, REGION, ab_endpoint

pytestmark = pytest.mark.usefixtures("allow_gpu_instance_types")


def rollout(clients, sleep=lambda seconds: None):
    return Rollout(clients, DEV_ENDPOINT, Console(width=160), sleep=sleep, poll_seconds=1)


def test_shifted_keeps_the_others_in_proportion():
    assert shifted({"a": 60, "b": 20, "c": 20}, "c", 60) == {"a": 30.0, "b": 10.0, "c": 60.0}


def test_promote_ends_with_all_traffic_on_the_new_variant(aws):
    ab_endpoint(aws)
    assert rollout(aws).promote("candidate", [25, 50], bake_seconds=3)
    assert describe(aws, DEV_ENDPOINT).weights() == {"primary": 0.0, "candidate": 100.0}


def test_a_canary_whose_alarm_fires_is_rolled_back_to_the_starting_weights(aws):
    ab_endpoint(aws)
    steps_seen = []

    def alarm_fires_during_the_first_bake(_seconds):
        steps_seen.append(describe(aws, DEV_ENDPOINT).weights()["candidate"])
        aws.cloudwatch.set_alarm_state(AlarmName=f"{DEV_ENDPOINT}-5xx-rate", StateValue="ALARM",
                                       StateReason="5xx above SLO")

    promoted = rollout(aws, sleep=alarm_fires_during_the_first_bake).promote("candidate", [25, 50], bake_seconds=60)

    assert promoted is False
    assert steps_seen == [25.0]  # the alarm was seen on the first step; the 50% step never happened
    assert describe(aws, DEV_ENDPOINT).weights() == {"primary": 90.0, "candidate": 10.0}


def test_promote_refuses_to_start_while_a_guard_alarm_fires(aws):
    ab_endpoint(aws)
    aws.cloudwatch.set_alarm_state(AlarmName=f"{DEV_ENDPOINT}-p99-latency", StateValue="ALARM", StateReason="slow")
    with pytest.raises(OpsError, match="already in ALARM: mlserve-dev-resnet50-p99-latency"):
        rollout(aws).promote("candidate", [10], bake_seconds=0)
    assert describe(aws, DEV_ENDPOINT).weights() == {"primary": 90.0, "candidate": 10.0}


def test_promote_names_the_variants_when_given_an_unknown_one(aws):
    ab_endpoint(aws)
    with pytest.raises(OpsError, match="no variant 'canidate'; it has: candidate, primary"):
        rollout(aws).promote("canidate", [10], bake_seconds=0)


def test_rollback_sends_all_traffic_to_the_primary_variant(aws):
    ab_endpoint(aws, weights=(("primary", 50.0), ("candidate", 50.0)))
    assert rollout(aws).rollback(None) == "all traffic on primary"
    assert describe(aws, DEV_ENDPOINT).weights() == {"primary": 100.0, "candidate": 0.0}


class UpdateEndpointFromTheApiModel:
    """moto has no UpdateEndpoint: this proxy patches only that call (checked against botocore's API model and
    applied to moto's endpoint); every other call goes to moto."""

    def __init__(self, client):
        self._client, self.requests = client, []

    def __getattr__(self, name):
        return getattr(self._client, name)

    def update_endpoint(self, **params):
        assert api_violations("sagemaker", "UpdateEndpoint", params) == []
        self.requests.append(params)
        from moto.sagemaker.models import sagemaker_backends

        endpoint = sagemaker_backends["123456789012"]["us-east-1"].endpoints[params["EndpointName"]]
        endpoint.endpoint_config_name = params["EndpointConfigName"]
        return {"EndpointArn": endpoint.arn}


def test_rollback_of_a_single_variant_endpoint_returns_to_its_previous_configuration(aws):
    ab_endpoint(aws, weights=(("primary", 1.0),))
    # The newer configuration the last `pulumi up` applied.
    aws.sagemaker.create_endpoint_config(EndpointConfigName=f"{DEV_ENDPOINT}-config-2", ProductionVariants=[{
        "VariantName": "primary", "ModelName": f"{DEV_ENDPOINT}-primary", "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge"}])
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends["123456789012"]["us-east-1"].endpoints[DEV_ENDPOINT].endpoint_config_name = \
        f"{DEV_ENDPOINT}-config-2"
    proxy = UpdateEndpointFromTheApiModel(aws.sagemaker)
    aws.inject("sagemaker", proxy)

    assert rollout(aws).rollback(None) == f"back on {DEV_ENDPOINT}-config-1"
    assert proxy.requests == [{"EndpointName": DEV_ENDPOINT, "EndpointConfigName": f"{DEV_ENDPOINT}-config-1",
                               "RetainAllVariantProperties": True, "RetainDeploymentConfig": True}]


@pytest.fixture
def ab_stack(tmp_path):
    """The dev stack file with its model on a plain endpoint beside a candidate (dev itself uses a component)."""
    return ["--stack", "dev", "--config-file", str(ab_stack_file(tmp_path)), "--deployment", "resnet50"]


def test_cli_status_shows_weights_and_guard_alarms(aws, capsys, ab_stack):
    ab_endpoint(aws)
    assert main(["rollout", "status", *ab_stack]) == 0
    out = capsys.readouterr().out
    assert "mlserve-dev-resnet50: InService" in out and "candidate" in out and "(10%)" in out
    assert "guard alarm mlserve-dev-resnet50-5xx-rate: OK" in out
    assert "guard alarm mlserve-dev-resnet50-service-unhealthy: MISSING" in out  # moto has no PutCompositeAlarm


def test_cli_promote_and_rollback_print_what_they_did(aws, capsys, ab_stack):
    ab_endpoint(aws)
    assert main(["rollout", "promote", *ab_stack, "--variant", "candidate", "--steps", "50",
                 "--bake-seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "set weights candidate=50, primary=50 (promote step 50% to candidate)" in out
    assert "promoted: candidate takes 100% of mlserve-dev-resnet50" in out
    assert main(["rollout", "rollback", *ab_stack]) == 0
    assert "rolled back: all traffic on primary" in capsys.readouterr().out


def test_cli_status_of_an_endpoint_not_deployed_exits_2(aws, capsys, ab_stack):
    assert main(["rollout", "status", *ab_stack]) == 2
    assert "has `pulumi up` created it" in capsys.readouterr().err


def stub_component(clients, desired: int, current: int, status: str = "InService") -> Stubber:
    """moto 5.2.5 has no inference components: SageMaker's answers come from botocore's Stubber, which checks our
    requests and these responses against the API model."""
    client = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(client)
    now = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    stubber.add_response("describe_inference_component", {
        "InferenceComponentName": DEV_ENDPOINT, "InferenceComponentArn": f"arn:aws:sagemaker:{REGION}:"
        f"{demo_account.ACCOUNT}:inference-component/{DEV_ENDPOINT}", "EndpointName": DEV_ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{demo_account.ACCOUNT}:endpoint/{DEV_ENDPOINT}",
        "InferenceComponentStatus": status, "CreationTime": now, "LastModifiedTime": now,
        "RuntimeConfig": {"DesiredCopyCount": desired, "CurrentCopyCount": current},
        "LastDeploymentConfig": {"RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100}, "WaitIntervalInSeconds": 0}}},
        {"InferenceComponentName": DEV_ENDPOINT})
    stubber.add_response("describe_endpoint", {
        "EndpointName": DEV_ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{demo_account.ACCOUNT}:endpoint/"
        f"{DEV_ENDPOINT}", "EndpointStatus": "InService", "CreationTime": now, "LastModifiedTime": now,
        "ProductionVariants": [{"VariantName": "primary", "CurrentInstanceCount": current,
                                "DesiredInstanceCount": desired}]}, {"EndpointName": DEV_ENDPOINT})
    stubber.activate()
    clients.inject("sagemaker", client)
    return stubber


def test_cli_status_of_dev_shows_its_component_scaled_to_zero_and_its_guard_alarms(aws, capsys, monkeypatch):
    demo_account.guard_alarms(aws, DEV_ENDPOINT, dimensions={"InferenceComponentName": DEV_ENDPOINT})
    stubber = stub_component(aws, desired=0, current=0)
    monkeypatch.setattr("infra.ops.__main__.Clients", lambda region, endpoint_url: aws)
    assert main(["rollout", "status", "--stack", "dev", "--deployment", "resnet50"]) == 0
    stubber.assert_no_pending_responses()
    out = " ".join(capsys.readouterr().out.split())
    assert "mlserve-dev-resnet50: InService · on endpoint mlserve-dev-resnet50" in out
    assert "scaled to zero: the first request fails (NoCapacityInvocationFailures)" in out
    assert "policy: rolling, 100 capacity percent per batch" in out
    assert "guard alarm mlserve-dev-resnet50-5xx-rate: OK" in out


def test_an_inference_component_is_not_promoted_by_weights(aws, capsys):
    assert main(["rollout", "promote", "--stack", "dev", "--deployment", "resnet50", "--variant", "x"]) == 2
    assert "is an inference component: a new model version rolls out through `pulumi up`" in capsys.readouterr().err


def test_status_of_an_async_endpoint_says_where_results_go(aws):
    # moto's DescribeEndpoint leaves out AsyncInferenceConfig; AWS's answer, checked against the API model, instead.
    client = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(client)
    now = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    where = f"s3://mlserve-dev-models/{async_prefix(DEV_ENDPOINT, 'output')}"
    stubber.add_response("describe_endpoint", {
        "EndpointName": DEV_ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{demo_account.ACCOUNT}:endpoint/"
        f"{DEV_ENDPOINT}", "EndpointConfigName": f"{DEV_ENDPOINT}-config-1", "EndpointStatus": "InService",
        "CreationTime": now, "LastModifiedTime": now,
        "ProductionVariants": [{"VariantName": "primary", "CurrentWeight": 1.0, "CurrentInstanceCount": 0}],
        "AsyncInferenceConfig": {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}, "OutputConfig": {
            "S3OutputPath": where, "S3FailurePath": where.replace("/output/", "/failure/")}}},
        {"EndpointName": DEV_ENDPOINT})
    stubber.activate()
    aws.inject("sagemaker", client)
    console = Console(width=300, record=True)
    print_status(describe(aws, DEV_ENDPOINT), {}, console)
    assert (f"async: results to s3://mlserve-dev-models/async/{DEV_ENDPOINT}/output/, failures to "
            f"s3://mlserve-dev-models/async/{DEV_ENDPOINT}/failure/; at most 4 in flight per instance") in \
        console.export_text()


def test_status_of_a_rolling_update_in_progress_says_rolling_with_its_batches(aws):
    # An update made with a RollingUpdatePolicy replaces the fleet batch by batch: status once called it blue/green.
    client = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(client)
    now = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
    stubber.add_response("describe_endpoint", {
        "EndpointName": DEV_ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{demo_account.ACCOUNT}:endpoint/"
        f"{DEV_ENDPOINT}", "EndpointConfigName": f"{DEV_ENDPOINT}-config-1", "EndpointStatus": "Updating",
        "CreationTime": now, "LastModifiedTime": now,
        "ProductionVariants": [{"VariantName": "primary", "CurrentWeight": 1.0, "CurrentInstanceCount": 4}],
        "PendingDeploymentSummary": {"EndpointConfigName": f"{DEV_ENDPOINT}-config-2", "ProductionVariants": [
            {"VariantName": "primary", "VariantStatus": [{"Status": "Baking", "StartTime": now}]}]},
        "LastDeploymentConfig": {"RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25}, "WaitIntervalInSeconds": 300}}},
        {"EndpointName": DEV_ENDPOINT})
    stubber.activate()
    aws.inject("sagemaker", client)
    state = describe(aws, DEV_ENDPOINT)
    assert state.deployment == (f"rolling update in progress to {DEV_ENDPOINT}-config-2 (primary: Baking) "
                                "(policy: rolling, 25 capacity percent per batch, 300 s bake)")
