"""The SageMaker deployment as declared: least-privilege role, endpoint config, blue/green rollout, scaling, alarms."""

import json

import pytest

from tests.harness import edited, plan_config, policy_json, rollback_alarm_names

ACCOUNTS = {"dev": "210987654321", "prod": "123456789012"}  # each stack file's account_id
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# Actions without resource-level permissions in IAM: "*" is their only form (each is argued in the component).
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "ec2:DescribeNetworkInterfaces",
                     "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"}


def execution_policy(plan):
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-execution")]
    return {s["Sid"]: s for s in policy_json(policy)["Statement"]}


def deployment(raw):
    return raw["mlserve:deployments"][0]


def test_execution_role_has_no_wildcard_action_and_reads_only_the_model_prefix(stack, plan):
    statements = execution_policy(plan)
    for statement in statements.values():
        assert all("*" not in action for action in statement["Action"]), statement
        if "*" in statement["Resource"]:
            assert set(statement["Action"]) <= NO_RESOURCE_LEVEL, statement
    prefix = {"dev": "resnet50/925ccfc0e86ea74c/", "prod": "resnet50/7/"}[stack]
    assert statements["ReadThisModel"]["Resource"] == [f"arn:aws:s3:::mlserve-{stack}-models/{prefix}*"]
    assert statements["ListThisModel"]["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    assert statements["WriteDataCapture"]["Resource"] == [
        f"arn:aws:s3:::mlserve-{stack}-models/data-capture/mlserve-{stack}-resnet50/*"]
    assert statements["PullServingImage"]["Resource"] == [
        f"arn:aws:ecr:us-east-1:{ACCOUNTS[stack]}:repository/mlserve-{stack}/triton"]
    execution_role = [r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("-execution")][0]
    attached = [a for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.property_dependencies.get("role") == [execution_role.urn]]
    assert attached == []  # no managed policy at all, *FullAccess or other


def test_model_runs_the_pinned_image_in_private_subnets_isolated(stack, plan):
    model = plan.one("aws:sagemaker/model:Model").inputs
    image = model["primaryContainer"]["image"]
    assert image.startswith(f"{ACCOUNTS[stack]}.dkr.ecr.us-east-1.amazonaws.com/mlserve-{stack}/triton")
    digest = "sha256:4b7e1c9a2d3f5e6b8a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"
    assert image.endswith({"dev": ":26.04-trt10-r1", "prod": f"@{digest}"}[stack])
    assert model["primaryContainer"]["environment"]["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "resnet50"
    assert model["enableNetworkIsolation"] is True
    assert all("-private-" in plan.by_id(subnet).name for subnet in model["vpcConfig"]["subnets"])


def test_data_capture_is_on_and_encrypted_with_the_stack_key(stack, plan):
    config = plan.one(CONFIG).inputs
    capture = config["dataCaptureConfig"]
    assert capture["enableCapture"] is True
    assert capture["initialSamplingPercentage"] == {"dev": 5, "prod": 10}[stack]
    assert capture["kmsKeyId"] == config["kmsKeyArn"] == plan.outputs["kms_key_arn"]
    (variant,) = config["productionVariants"]
    assert variant["containerStartupHealthCheckTimeoutInSeconds"] >= 600  # engine builds at first start


def test_canary_percent_and_bake_time_flow_from_config():
    raw = edited("prod", lambda r: deployment(r)["rollout"].update(percent=10, bake_minutes=20))
    routing = plan_config(raw, "prod").one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert routing["trafficRoutingConfiguration"] == {
        "type": "CANARY", "waitIntervalInSeconds": 1200, "canarySize": {"type": "CAPACITY_PERCENT", "value": 10}}
    assert routing["terminationWaitInSeconds"] == 600
    assert routing["maximumExecutionTimeoutInSeconds"] == 2 * 1200 + 1800


def test_linear_rollout_steps_per_config():
    raw = edited("prod", lambda r: deployment(r).update(
        rollout={"strategy": "linear", "step_percent": 25, "step_bake_minutes": 10}))
    routing = plan_config(raw, "prod").one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert routing["trafficRoutingConfiguration"]["linearStepSize"] == {"type": "CAPACITY_PERCENT", "value": 25}
    assert routing["maximumExecutionTimeoutInSeconds"] == 4 * 600 + 1800


def test_rollback_alarms_exist_and_notify_the_alert_topic(stack, plan):
    alarms = {a.inputs["name"]: a.inputs for a in plan.of_type(ALARM) if "EndpointAlarms" in a.urn}
    names = [f"mlserve-{stack}-resnet50-p99-latency", f"mlserve-{stack}-resnet50-5xx-rate"]
    if stack == "prod":  # dev's single copy updates all at once: the API takes rollback alarms only when rolling
        assert rollback_alarm_names(plan, f"mlserve-{stack}-resnet50") == names
    topic = plan.outputs["alert_topic_arn"]
    for alarm in alarms.values():
        assert alarm["actionsEnabled"] is True and alarm["alarmActions"] == [topic]
        assert alarm["treatMissingData"] == "notBreaching"
    latency = alarms[names[0]]
    assert latency["extendedStatistic"] == "p99"
    assert latency["threshold"] == {"dev": 250_000, "prod": 120_000}[stack]  # ModelLatency is in microseconds
    rate = alarms[names[1]]
    assert rate["threshold"] == {"dev": 2, "prod": 0.5}[stack]
    assert {q["id"] for q in rate["metricQueries"]} == {"errors", "invocations", "rate"}


def test_alert_topic_is_encrypted(plan):
    assert plan.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == plan.outputs["kms_key_arn"]


def test_autoscaling_bounds_match_config_and_scale_in_is_slower(stack, plan):
    target = plan.one("aws:appautoscaling/target:Target").inputs
    # Dev's model is an inference component whose copies scale to zero; prod's a variant of at least 4 instances.
    assert (target["minCapacity"], target["maxCapacity"]) == {"dev": (0, 2), "prod": (4, 12)}[stack]
    assert target["resourceId"] == {"dev": "inference-component/mlserve-dev-resnet50",
                                    "prod": "endpoint/mlserve-prod-resnet50/variant/primary"}[stack]
    policies = {p.name.rsplit("-", 1)[1]: p.inputs["targetTrackingScalingPolicyConfiguration"]
                for p in plan.of_type("aws:appautoscaling/policy:Policy") if p.inputs["policyType"] != "StepScaling"}
    # measured capacity at the SLO x 60 s x (1 - headroom)
    assert policies["invocations"]["targetValue"] == {"dev": 180 * 60 * 70 // 100, "prod": 240 * 60 * 60 // 100}[stack]
    if stack == "prod":
        assert policies["gpu"]["customizedMetricSpecification"]["metricName"] == "GPUUtilization"
    for policy in policies.values():
        assert policy["scaleInCooldown"] > policy["scaleOutCooldown"]


def test_shadow_rollout_declares_a_shadow_variant_with_the_sampled_share():
    def edit(raw):
        candidate = dict(deployment(raw)["model"], uri="s3://mlserve-prod-models/resnet50/8/model.tar.gz")
        deployment(raw)["rollout"] = {"strategy": "shadow", "sample_percent": 20, "candidate": candidate}

    plan = plan_config(edited("prod", edit), "prod")
    (shadow,) = plan.one(CONFIG).inputs["shadowProductionVariants"]
    assert shadow["variantName"] == "shadow" and shadow["initialVariantWeight"] == pytest.approx(0.2)
    models = {m.name.rsplit("-", 1)[1]: m.inputs for m in plan.of_type("aws:sagemaker/model:Model")}
    assert models["shadow"]["primaryContainer"]["modelDataUrl"].endswith("/resnet50/8/model.tar.gz")
    reads = execution_policy(plan)["ReadThisModel"]["Resource"]
    assert reads == ["arn:aws:s3:::mlserve-prod-models/resnet50/7/*", "arn:aws:s3:::mlserve-prod-models/resnet50/8/*"]


def test_ab_variants_split_traffic_by_weight():
    def edit(raw):
        challenger = dict(deployment(raw)["model"], uri="s3://mlserve-prod-models/resnet50-int8/1/model.tar.gz")
        deployment(raw)["ab_variants"] = [{"name": "int8", "model": challenger, "weight_percent": 20}]

    variants = plan_config(edited("prod", edit), "prod").one(CONFIG).inputs["productionVariants"]
    weights = {v["variantName"]: v["initialVariantWeight"] for v in variants}
    assert weights == pytest.approx({"primary": 0.8, "int8": 0.2})


def test_stack_outputs_name_the_endpoint_and_its_url(stack, plan):
    endpoint = plan.outputs["endpoints"]["resnet50"]
    assert endpoint["endpoint_name"] == f"mlserve-{stack}-resnet50"
    assert endpoint["invoke_url"] == (f"https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/"
                                      f"mlserve-{stack}-resnet50/invocations")
    json.dumps(plan.outputs)


def rolling(raw, **changes):
    deployment(raw).update(rollout={"strategy": "rolling", "batch_percent": 25, "bake_minutes": 10, **changes})


def test_a_rolling_rollout_replaces_the_fleet_in_batches_guarded_by_the_same_alarms():
    plan = plan_config(edited("prod", lambda r: rolling(r, rollback_batch_percent=50)), "prod")
    config = plan.one(ENDPOINT).inputs["deploymentConfig"]
    assert "blueGreenUpdatePolicy" not in config
    assert config["rollingUpdatePolicy"] == {
        "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 25}, "waitIntervalInSeconds": 600,
        "maximumExecutionTimeoutInSeconds": 4 * 600 + 1800,  # four batches of 25%, each baked, plus start-up time
        "rollbackMaximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 50}}
    assert [a["alarmName"] for a in config["autoRollbackConfiguration"]["alarms"]] == [
        "mlserve-prod-resnet50-p99-latency", "mlserve-prod-resnet50-5xx-rate"]


def test_a_rolling_rollout_is_a_valid_update_endpoint_request_and_the_pack_accepts_it():
    from policies.check import CONFIG_DIR, evaluate, load_policy_config
    from tests import aws_replay as replay

    plan = plan_config(edited("prod", lambda r: rolling(r, timeout_minutes=90)), "prod")
    endpoint = plan.one(ENDPOINT).inputs
    assert endpoint["deploymentConfig"]["rollingUpdatePolicy"]["maximumExecutionTimeoutInSeconds"] == 5400
    replay.assert_valid_request("sagemaker", "UpdateEndpoint", replay.update_endpoint(endpoint))
    found = evaluate(json.loads(json.dumps(plan.as_json())), load_policy_config(CONFIG_DIR / "prod.json"))
    assert [v for v in found if v.rule == "progressive-rollout-with-rollback"] == []


def test_a_measured_concurrency_target_tracks_concurrent_requests_at_high_resolution():
    def concurrency(raw):
        scaling = deployment(raw)["autoscaling"]
        scaling.pop("max_rps_per_instance_at_slo", None)
        scaling.pop("target_invocations_per_instance", None)
        scaling["target_concurrency"] = 6

    plan = plan_config(edited("prod", concurrency), "prod")
    policies = {p.name.rsplit("-", 1)[1]: p for p in plan.of_type("aws:appautoscaling/policy:Policy")}
    assert set(policies) == {"concurrency", "gpu"}  # the one-minute invocations policy is not declared beside it
    tracking = policies["concurrency"].inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 6
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == \
        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    from tests import aws_replay as replay

    replay.assert_valid_request("application-autoscaling", "PutScalingPolicy",
                                replay.put_scaling_policy(policies["concurrency"].inputs, "concurrency"))
