"""The gateway as declared: every route authenticated, throttled per tier, validated, logged, WAF in prod."""

import json

import jsonschema
import pytest

from components.inference_api import request_schema
from tests.harness import front_constant, policy_json, stack_account, stack_plan

METHOD = "aws:apigateway/method:Method"
MODELS = {"dev": ["resnet50"], "prod": ["resnet50", "reranker"]}


def apis(plan):
    """Each InferenceApi component (one per deployment) with its children by type; never empty."""
    def children(urn):
        kids = plan.children_of(urn)
        return lambda type_token: [c for c in kids if c.type == type_token]

    found = [(api, children(api.urn)) for api in plan.of_type("mlserve:edge:InferenceApi")]
    assert found, "the plan declares no InferenceApi"
    return found


def test_every_deployment_has_its_own_gateway(stack, plan):
    assert sorted(a.name for a, _ in apis(plan)) == sorted(f"mlserve-{stack}-{m}" for m in MODELS[stack])


def test_no_route_without_authorization(stack, plan):
    methods = plan.of_type(METHOD)
    assert methods
    for method in methods:
        assert method.inputs["apiKeyRequired"] is True
        assert method.inputs["authorization"] == {"dev": "NONE", "prod": "AWS_IAM"}[stack]  # + key, per config


def test_usage_plans_throttle_and_cap_each_tier_per_config(stack, plan):
    expected = {"dev": {"internal": (20, 40, 50000)},
                "prod": {"standard": (200, 400, 5000000), "batch": (50, 50, 1000000)}}[stack]
    for _, children in apis(plan):
        plans = {p.inputs["name"].rsplit("-", 1)[1]: p.inputs for p in children("aws:apigateway/usagePlan:UsagePlan")}
        assert {name: (p["throttleSettings"]["rateLimit"], p["throttleSettings"]["burstLimit"],
                       p["quotaSettings"]["limit"]) for name, p in plans.items()} == expected
        assert all(p["quotaSettings"]["period"] == "DAY" for p in plans.values())
        assert len(children("aws:apigateway/usagePlanKey:UsagePlanKey")) == len(expected)


def test_method_throttling_covers_the_tiers(stack, plan):
    paths = []
    for _, children in apis(plan):
        (settings,) = children("aws:apigateway/methodSettings:MethodSettings")
        paths.append(settings.inputs["methodPath"])
        assert settings.inputs["settings"]["throttlingRateLimit"] == {"dev": 20, "prod": 250}[stack]
        assert settings.inputs["settings"]["metricsEnabled"] is True
    assert sorted(paths) == sorted(f"v2/models/{m}/infer/POST" for m in MODELS[stack])


def test_access_logs_are_json_in_an_encrypted_log_group(plan):
    for _, children in apis(plan):
        (stage,) = [s.inputs for s in children("aws:apigateway/stage:Stage")]
        (group,) = [g for g in children("aws:cloudwatch/logGroup:LogGroup") if g.name.endswith("-access")]
        assert stage["accessLogSettings"]["destinationArn"].endswith(":log-group:" + group.id)
        assert json.loads(stage["accessLogSettings"]["format"])["requestId"] == "$context.requestId"
        assert group.inputs["kmsKeyId"] == plan.outputs["kms_key_arn"]
        assert stage["xrayTracingEnabled"] is True


def test_waf_is_associated_in_prod_only(stack, plan):
    associations = plan.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    if stack == "dev":
        assert associations == []
        return
    for _, children in apis(plan):
        (association,) = children("aws:wafv2/webAclAssociation:WebAclAssociation")
        (stage,) = children("aws:apigateway/stage:Stage")
        assert association.property_dependencies["resourceArn"] == [stage.urn]
        (acl,) = children("aws:wafv2/webAcl:WebAcl")
        rules = {r["name"]: r for r in acl.inputs["rules"]}
        assert rules["rate-per-ip"]["statement"]["rateBasedStatement"] == {"limit": 3000, "aggregateKeyType": "IP"}
        common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managedRuleGroupStatement"]
        assert common["ruleActionOverrides"][0]["name"] == "SizeRestrictions_BODY"  # images are larger than 8 KB


def test_integration_role_can_invoke_only_its_endpoint(stack, plan):
    (integration,) = [i.inputs for i in plan.of_type("aws:apigateway/integration:Integration")
                      if i.inputs["type"] == "AWS"]
    assert integration["uri"] == (f"arn:aws:apigateway:us-east-1:runtime.sagemaker:path/endpoints/"
                                  f"mlserve-{stack}-resnet50/invocations")
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-invoke")]
    (statement,) = policy_json(policy)["Statement"]
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == [f"arn:aws:sagemaker:us-east-1:{stack_account(stack)}:endpoint/mlserve-{stack}-resnet50"]


def test_kserve_deployment_is_reached_through_a_vpc_link_with_tls_verified():
    plan = stack_plan("prod")
    (integration,) = [i.inputs for i in plan.of_type("aws:apigateway/integration:Integration")
                      if i.inputs["type"] == "HTTP"]
    link = plan.one("aws:apigateway/vpcLink:VpcLink")
    assert integration["connectionType"] == "VPC_LINK" and integration["connectionId"] == link.id
    assert integration["uri"] == "https://reranker.ml.prod.example.com/v2/models/reranker/infer"
    assert integration["tlsConfig"] == {"insecureSkipVerification": False}
    nlb = plan.one("aws:lb/loadBalancer:LoadBalancer")
    assert link.property_dependencies["targetArn"] == [nlb.urn]
    assert nlb.inputs["internal"] is True and nlb.inputs["loadBalancerType"] == "network"
    balancer_subnets = {s.id for s in plan.of_type("aws:ec2/subnet:Subnet") if "-lb-" in s.name}
    assert set(nlb.inputs["subnets"]) == balancer_subnets
    target_group = plan.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (target_group["targetType"], target_group["port"]) == ("alb", 443)
    attachment = plan.one("aws:lb/targetGroupAttachment:TargetGroupAttachment").inputs
    ingress = next(r for r in plan.resources if r.type.endswith(":Ingress")).inputs["metadata"]["annotations"]
    name = ingress["alb.ingress.kubernetes.io/load-balancer-name"]
    assert attachment["targetId"].startswith(f"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/"
                                             f"{name}/")  # the controller's ALB, looked up by the name it was given
    assert set(ingress["alb.ingress.kubernetes.io/subnets"].split(",")) == balancer_subnets
    assert plan.outputs["kserve_api_urls"]["reranker"].endswith("/v1/v2/models/reranker/infer")


def test_bad_request_body_gets_a_clear_400(plan):
    for _, children in apis(plan):
        (response,) = [r.inputs for r in children("aws:apigateway/response:Response")]
        assert response["responseType"] == "BAD_REQUEST_BODY" and response["statusCode"] == "400"
        assert "$context.error.validationErrorString" in response["responseTemplates"]["application/json"]


VALID = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.2, 0.3]}]}


@pytest.mark.parametrize("body,why", [
    ({}, "'inputs' is a required property"),
    ({"inputs": []}, "should be non-empty"),
    ({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}, "is not one of"),
    ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "'data' is a required property"),
    ({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}, "less than the minimum"),
    ({"inputs": [{"name": "x", "shape": [600], "datatype": "FP32", "data": [0] * 600}]}, "is too long"),
])
def test_request_schema_refuses_malformed_inference_requests(body, why):
    schema = request_schema(max_body_bytes=1024)  # at most 512 elements
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(VALID)
    errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(body)]
    assert any(why in e for e in errors), errors


def test_declared_schema_is_the_rendered_one(plan):
    for _, children in apis(plan):
        (model,) = children("aws:apigateway/model:Model")
        assert json.loads(model.inputs["schema"]) == request_schema(6 * 1024 * 1024)
        (method,) = children(METHOD)
        assert method.inputs["requestModels"] == {"application/json": "InferRequest"}


def test_every_alarm_notifies_the_alert_topic(plan):
    topic = plan.outputs["alert_topic_arn"]
    alarms = plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") + plan.of_type(
        "aws:cloudwatch/compositeAlarm:CompositeAlarm")
    # A wake alarm (no copy of a scaled-to-zero component served a request) adds a copy instead: it pages no one.
    wake = [a for a in alarms if a.name.endswith("-no-capacity")]
    # 5 endpoint alarms, service-unhealthy, and a drift alarm per deployment with drift (prod: the KServe one too)
    assert len(alarms) - len(wake) == 6 + len([a for a in alarms if a.name.endswith("-drift")])
    assert len([a for a in alarms if a.name.endswith("-drift")]) == (2 if plan.stack == "prod" else 1)
    for alarm in alarms:
        if alarm in wake:
            (policy,) = alarm.property_dependencies["alarmActions"]
            assert policy.endswith("-wake") and "appautoscaling/policy" in policy
            continue
        assert alarm.inputs["actionsEnabled"] is True and alarm.inputs["alarmActions"] == [topic], alarm.name


def test_composite_alarm_combines_latency_and_errors(stack, plan):
    composite = plan.one("aws:cloudwatch/compositeAlarm:CompositeAlarm").inputs
    assert composite["alarmRule"] == (f'ALARM("mlserve-{stack}-resnet50-p99-latency") OR '
                                      f'ALARM("mlserve-{stack}-resnet50-5xx-rate")')


def test_outputs_give_the_gateway_url(stack, plan):
    assert plan.outputs["endpoints"]["resnet50"]["api_url"].endswith(".amazonaws.com/v1/v2/models/resnet50/infer")


def test_binary_tensors_pass_the_gateway_with_their_header_length_for_each_backend():
    from moto import mock_aws

    from tests import aws_replay as replay

    plan = stack_plan("prod")
    for api in plan.of_type("aws:apigateway/restApi:RestApi"):
        # Binary bodies pass untouched both ways: what KServe clients send, and what the SageMaker-mode front answers
        # binary tensors as (a text type would be re-encoded as UTF-8 and corrupted).
        assert api.inputs["binaryMediaTypes"] == ["application/octet-stream", front_constant("SAGEMAKER_BINARY")]
    for integration in plan.of_type("aws:apigateway/integration:Integration"):
        mapped = integration.inputs["requestParameters"]
        assert mapped["integration.request.header.Content-Type"] == "method.request.header.Content-Type"
        # KServe gets the v2 header; SageMaker's InvokeEndpoint hands the container only its custom attributes.
        target = ("Inference-Header-Content-Length" if integration.inputs["type"] == "HTTP"
                  else "X-Amzn-SageMaker-Custom-Attributes")
        assert mapped[f"integration.request.header.{target}"] == \
            "method.request.header.Inference-Header-Content-Length"
        replay.assert_valid_request("apigateway", "PutIntegration", {
            "restApiId": "a1b2c3d4e5", "resourceId": "abc123", "httpMethod": "POST",
            "type": integration.inputs["type"], "requestParameters": mapped})
    answers = [r.inputs for r in plan.of_type("aws:apigateway/integrationResponse:IntegrationResponse")
               if r.inputs["statusCode"] == "200"]
    assert all(a["responseParameters"]["method.response.header.Content-Type"] ==
               "integration.response.header.Content-Type" for a in answers)
    with mock_aws():
        import boto3

        gateway = boto3.client("apigateway", region_name="us-east-1")
        (rest_api,) = [a.inputs for a in plan.of_type("aws:apigateway/restApi:RestApi")
                       if a.inputs["name"].endswith("reranker")]
        created = gateway.create_rest_api(name=rest_api["name"], binaryMediaTypes=rest_api["binaryMediaTypes"])
        # moto 5.2 accepts but does not keep binaryMediaTypes: the declared value is asserted above.
        root = gateway.get_resources(restApiId=created["id"])["items"][0]["id"]
        (method,) = [m.inputs for m in plan.of_type("aws:apigateway/method:Method") if "reranker" in m.urn]
        gateway.put_method(restApiId=created["id"], resourceId=root, httpMethod="POST", authorizationType="NONE",
                           requestParameters=method["requestParameters"])
        (integration,) = [i.inputs for i in plan.of_type("aws:apigateway/integration:Integration")
                          if i.inputs["type"] == "HTTP"]
        gateway.put_integration(restApiId=created["id"], resourceId=root, httpMethod="POST", type="HTTP",
                                integrationHttpMethod="POST", uri=integration["uri"],
                                requestParameters=integration["requestParameters"])
        stored = gateway.get_integration(restApiId=created["id"], resourceId=root, httpMethod="POST")
        assert stored["requestParameters"] == integration["requestParameters"]
