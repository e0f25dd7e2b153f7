"""The dashboard shows only metrics the stack produces; the drift job is scheduled, scoped and alarmed."""

import json

from tests.harness import policy_json, stack_plan

# Metrics each namespace publishes for the resources mlserve declares (AWS docs) and for our drift job.
PUBLISHED = {
    "AWS/SageMaker": {"ModelLatency", "Invocations", "Invocation4XXErrors", "Invocation5XXErrors",
                      "InvocationsPerInstance", "OverheadLatency", "NoCapacityInvocationFailures"},
    "/aws/sagemaker/Endpoints": {"GPUUtilization", "GPUMemoryUtilization", "CPUUtilization", "MemoryUtilization"},
    "/aws/sagemaker/InferenceComponents": {"GPUUtilizationNormalized", "GPUMemoryUtilizationNormalized",
                                           "CPUUtilizationNormalized", "MemoryUtilizationNormalized"},
    "AWS/ApiGateway": {"Count", "Latency", "IntegrationLatency", "4XXError", "5XXError"},
    "mlserve/Drift": {"MaxPopulationStabilityIndex", "PopulationStabilityIndex", "KolmogorovSmirnovStatistic",
                      "MaxPredictionStabilityIndex"},
}


def test_dashboard_names_only_metrics_of_declared_resources(stack, plan):
    body = json.loads(plan.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    endpoints = {e.inputs["name"] for e in plan.of_type("aws:sagemaker/endpoint:Endpoint")}
    components = {c.inputs["inferenceComponentName"] for c in plan.of_type("aws-native:sagemaker:InferenceComponent")}
    apis = {a.inputs["name"] for a in plan.of_type("aws:apigateway/restApi:RestApi")}
    stages = {s.inputs["stageName"] for s in plan.of_type("aws:apigateway/stage:Stage")}
    seen = set()
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], dict):  # a math expression over the ids above
                continue
            namespace, name, *rest = metric
            dimensions = dict(zip(rest[:-1:2], rest[1:-1:2], strict=True))
            assert name in PUBLISHED[namespace], (namespace, name)
            if "EndpointName" in dimensions:
                assert dimensions["EndpointName"] in endpoints and dimensions["VariantName"] == "primary"
            if "InferenceComponentName" in dimensions:
                assert dimensions["InferenceComponentName"] in components
            if "ApiName" in dimensions:
                assert dimensions["ApiName"] in apis and dimensions["Stage"] in stages
            seen.add(name)
    hosting = {"dev": {"GPUUtilizationNormalized", "NoCapacityInvocationFailures"},  # an inference component
               "prod": {"GPUUtilization", "InvocationsPerInstance"}}[stack]
    assert {"ModelLatency", "Invocation5XXErrors", "Latency", "5XXError", "MaxPopulationStabilityIndex",
            *hosting} <= seen


def test_drift_job_runs_on_the_configured_schedule_and_reads_only_its_captures(stack, plan):
    endpoint = f"mlserve-{stack}-resnet50"
    [rule] = [r.inputs for r in plan.of_type("aws:cloudwatch/eventRule:EventRule") if r.name == f"{endpoint}-drift"]
    assert rule["scheduleExpression"] == {"dev": "rate(60 minutes)", "prod": "rate(30 minutes)"}[stack]
    [function] = [f.inputs for f in plan.of_type("aws:lambda/function:Function") if f.name == f"{endpoint}-drift"]
    env = function["environment"]["variables"]
    assert env["MLSERVE_CAPTURE_PREFIX"] == f"data-capture/{endpoint}/{endpoint}/primary/"
    assert env["MLSERVE_BASELINE_KEY"] == "resnet50/baseline/baseline.json"
    assert function["handler"] == "drift.job.handler"
    statements = {s["Sid"]: s for s in policy_json(
        [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{endpoint}-drift"][0])["Statement"]}
    assert statements["ReadCapturesAndBaseline"]["Resource"] == [
        f"arn:aws:s3:::mlserve-{stack}-models/data-capture/{endpoint}/{endpoint}/primary/*",
        f"arn:aws:s3:::mlserve-{stack}-models/resnet50/baseline/baseline.json"]
    assert statements["PublishDriftMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "mlserve/Drift"}}


def test_drift_alarm_fires_on_the_configured_psi_and_on_silence(plan):
    (alarm,) = [a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                if a.inputs["name"].endswith("-resnet50-input-drift")]
    assert alarm["metricName"] == "MaxPopulationStabilityIndex" and alarm["threshold"] == 0.2
    assert alarm["treatMissingData"] == "breaching"


def test_drift_code_is_packaged_as_the_drift_package(plan):
    (function,) = [f for f in plan.of_type("aws:lambda/function:Function") if f.name.endswith("-resnet50-drift")]
    code = function.as_json()["inputs"]["code"]  # the engine's archive encoding
    assert code["4dabf18193072939515e22adb298388d"] == "0def7320c3a5731c473e5ecbe6d01bc7"
    assert code["assets"]["drift"]["path"].endswith("/drift")


def test_every_deployment_has_a_gateway_panel_and_kserve_no_sagemaker_panels():
    plan = stack_plan("prod")
    titles = [w["properties"]["title"] for w in json.loads(
        plan.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])["widgets"]]
    assert {"resnet50: gateway", "reranker: gateway", "resnet50: model latency"} <= set(titles)
    # KServe's model metrics are in Grafana; its drift job publishes to CloudWatch like SageMaker's.
    assert [t for t in titles if t.startswith("reranker:")] == ["reranker: gateway",
                                                               "reranker: drift (PSI, max over features)"]
