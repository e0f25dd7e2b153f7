"""rollout status|promote|rollback against moto, with guard alarms that fire mid-rollout."""

import pytest
from rich.console import Console

from infra.ops.__main__ import main
from infra.ops.report import OpsError
from infra.ops.rollout import Rollout, describe, shifted
from tests.aws_replay import api_violations
from tests.ops.conftest import DEV_ENDPOINT, ab_endpoint

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


def test_cli_status_shows_weights_and_guard_alarms(aws, capsys):
    ab_endpoint(aws)
    assert main(["rollout", "status", "--stack", "dev", "--deployment", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "mlserve-dev-resnet50: InService" in out and "candidate" in out and "(10%)" in out
    assert "guard alarm mlserve-dev-resnet50-5xx-rate: OK" in out
    assert "guard alarm mlserve-dev-resnet50-service-unhealthy: MISSING" in out  # moto has no PutCompositeAlarm


def test_cli_promote_and_rollback_print_what_they_did(aws, capsys):
    ab_endpoint(aws)
    assert main(["rollout", "promote", "--stack", "dev", "--deployment", "resnet50", "--variant", "candidate",
                 "--steps", "50", "--bake-seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "set weights candidate=50, primary=50 (promote step 50% to candidate)" in out
    assert "promoted: candidate takes 100% of mlserve-dev-resnet50" in out
    assert main(["rollout", "rollback", "--stack", "dev", "--deployment", "resnet50"]) == 0
    assert "rolled back: all traffic on primary" in capsys.readouterr().out


def test_cli_status_of_an_endpoint_not_deployed_exits_2(aws, capsys):
    assert main(["rollout", "status", "--stack", "dev", "--deployment", "resnet50"]) == 2
    assert "has `pulumi up` created it" in capsys.readouterr().err
