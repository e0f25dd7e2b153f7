"""`python -m infra.ops verify`: the smoke test after `pulumi up`.

AWS is moto, holding what `pulumi up` leaves for the dev stack (made here from the stack's plan, through the real
APIs; moto's missing pieces stood in where noted). Inference goes to the real local Triton (the serving image's own
venv, as tests/ops/test_profile.py runs it) behind a stand-in for API Gateway's part: the stage path and the API key
check (403 without it); the request validator and the integration are not stood in (the front's own 400 answers
the malformed request). KServe's side: moto's elbv2 and a stand-in Kubernetes API (tests/ops/kube_api_stub.py).
"""

import copy
import datetime
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from components.names import load_balancer_name
from infra.config.loader import load_stack
from infra.ops.__main__ import main
from infra.ops.release import release_model
from infra.ops.report import Check
from infra.ops.verify import SCALING_POLICY, SCALING_TARGET, KubernetesObjects, find_gateway, owned, verify
from serving_image import local_server
from tests.harness import stack_plan
from tests.ops.conftest import REGION, SAMPLE_MODEL, config_from, dev_raw, platform
from tests.ops.kube_api_stub import KubeState, serve, use_stub

SERVING_PYTHON = Path(__file__).resolve().parents[2] / ".venv-serving" / "bin" / "python"
ACCOUNT = "210987654321"
API = "mlserve-dev-resnet50"
KEY = "k" * 40
OTHER_SUFFIX = "0a1b2c3"  # AWS's generated suffix is not the plan's: verify matches by the logical name


def resubfixed(name: str) -> str:
    return name[:-7] + OTHER_SUFFIX


@pytest.fixture(scope="module")
def server():
    if not SERVING_PYTHON.exists():
        pytest.fail("the serving venv is missing: run `make serving-setup` (make test does it)")
    with local_server.running(python=str(SERVING_PYTHON)) as running:
        yield running


class StandInGateway:
    """API Gateway's part verify depends on, in front of the local server: the stage path and the API key."""

    def __init__(self, upstream: str, key: str):
        self.upstream, self.key = upstream, key
        self.require_key, self.broken_binary = True, False
        self.requests: list[dict[str, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # quiet
                pass

            def answer(self, status, headers, body):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.requests.append({k.lower(): v for k, v in self.headers.items()})
                if gateway.require_key and self.headers.get("x-api-key") != gateway.key:
                    return self.answer(403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}')
                if not self.path.startswith("/v1/"):
                    return self.answer(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
                if gateway.broken_binary and self.headers.get("Inference-Header-Content-Length"):
                    return self.answer(502, {"Content-Type": "application/json"}, b'{"message":"Bad gateway"}')
                passed = {k: v for k, v in self.headers.items()
                          if k.lower() in ("content-type", "inference-header-content-length")}
                request = urllib.request.Request(f"{gateway.upstream}{self.path[3:]}", data=body, headers=passed,
                                                 method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, headers, answer = response.status, response.headers, response.read()
                except urllib.error.HTTPError as error:
                    status, headers, answer = error.code, error.headers, error.read()
                self.answer(status, {k: v for k, v in headers.items()
                                     if k.lower() in ("content-type", "inference-header-content-length")}, answer)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def stage_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_port}/v1"

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def gateway(server):
    stand_in = StandInGateway(f"http://{server.url}", KEY)
    yield stand_in
    stand_in.close()


@pytest.fixture
def account(aws, monkeypatch, allow_gpu_instance_types):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    return aws


def dev_resources():
    return owned(stack_plan("dev"), {API})


def api_with_key(clients) -> None:
    """The deployment's REST API, its v1 stage and the first tier's key in its usage plan."""
    gateway = clients.apigateway
    api = gateway.create_rest_api(name=API, binaryMediaTypes=["application/octet-stream"])["id"]
    root = gateway.get_resources(restApiId=api)["items"][0]["id"]
    gateway.put_method(restApiId=api, resourceId=root, httpMethod="POST", authorizationType="NONE",
                       apiKeyRequired=True)
    gateway.put_integration(restApiId=api, resourceId=root, httpMethod="POST", type="MOCK")
    gateway.create_deployment(restApiId=api, stageName="v1")
    key = gateway.create_api_key(name=f"{API}-internal", enabled=True, value=KEY)["id"]
    plan_id = gateway.create_usage_plan(name=f"{API}-internal", apiStages=[{"apiId": api, "stage": "v1"}])["id"]
    gateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key, keyType="API_KEY")


def stand_up(clients, resources) -> None:
    """What `pulumi up` leaves of the dev stack that verify reads, made through the APIs (moto)."""
    from moto.cloudwatch.models import cloudwatch_backends

    platform(clients)  # the bucket and the repository with the image
    release_model(load_stack("dev"), "dev", "resnet50", SAMPLE_MODEL, clients)
    api_with_key(clients)
    for r in resources:
        inputs = r.inputs
        if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm":
            clients.cloudwatch.put_metric_alarm(
                AlarmName=inputs["name"], Namespace="AWS/SageMaker", MetricName="ModelLatency", Statistic="Average",
                Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                AlarmActions=list(inputs.get("alarmActions") or []), OKActions=list(inputs.get("okActions") or []),
                ActionsEnabled=inputs.get("actionsEnabled", True) is not False)
        elif r.type == "aws:cloudwatch/compositeAlarm:CompositeAlarm":  # moto has no PutCompositeAlarm
            cloudwatch_backends[ACCOUNT][REGION].put_metric_alarm(
                name=inputs["alarmName"], namespace="", metric_name="", comparison_operator="", evaluation_periods=1,
                period=60, threshold=0.0, statistic="", description="", dimensions=[],
                alarm_actions=list(inputs["alarmActions"]), ok_actions=list(inputs["okActions"]),
                rule=inputs["alarmRule"], actions_enabled=True)
        elif r.type == "aws:cloudwatch/eventRule:EventRule" and inputs.get("scheduleExpression"):
            name = resubfixed(inputs["name"])
            clients.events.put_rule(Name=name, ScheduleExpression=inputs["scheduleExpression"], State="ENABLED")
            clients.events.put_targets(Rule=name, Targets=[{"Id": "drift", "Arn": f"arn:aws:lambda:{REGION}:"
                                                            f"{ACCOUNT}:function:{API}-drift"}])
        elif r.type == "aws:sagemaker/endpoint:Endpoint":
            role = f"arn:aws:iam::{ACCOUNT}:role/{API}-sagemaker"
            clients.sagemaker.create_model(ModelName=f"{API}-host", ExecutionRoleArn=role)
            clients.sagemaker.create_endpoint_config(EndpointConfigName=f"{API}-config", ProductionVariants=[{
                "VariantName": "primary", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1,
                "ModelName": f"{API}-host"}])
            clients.sagemaker.create_endpoint(EndpointName=inputs["name"], EndpointConfigName=f"{API}-config")


def stub_scaling(clients, resources, leave_out: str | None = None) -> Stubber:
    """Application Auto Scaling as AWS answers it for what the plan registers (moto rejects the inference-component
    dimension); the Stubber also checks verify's requests against the API model."""
    client = boto3.client("application-autoscaling", region_name=REGION)
    stubber = Stubber(client)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for target in (r for r in resources if r.type == SCALING_TARGET):
        where = {"ServiceNamespace": target.inputs["serviceNamespace"], "ResourceId": target.inputs["resourceId"],
                 "ScalableDimension": target.inputs["scalableDimension"]}
        stubber.add_response("describe_scalable_targets", {"ScalableTargets": [{
            **where, "MinCapacity": int(target.inputs["minCapacity"]), "MaxCapacity": int(target.inputs["maxCapacity"]),
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                       "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint", "CreationTime": now}]},
            {"ServiceNamespace": where["ServiceNamespace"], "ResourceIds": [where["ResourceId"]],
             "ScalableDimension": where["ScalableDimension"]})
        policies = [{**where, "PolicyARN": f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:1:resource/"
                     f"sagemaker/{where['ResourceId']}:policyName/{resubfixed(p.inputs['name'])}",
                     "PolicyName": resubfixed(p.inputs["name"]), "PolicyType": p.inputs["policyType"],
                     "CreationTime": now}
                    for p in resources if p.type == SCALING_POLICY and p.inputs["resourceId"] == where["ResourceId"]
                    and not (leave_out and p.inputs["name"].startswith(leave_out))]
        stubber.add_response("describe_scaling_policies", {"ScalingPolicies": policies}, where)
    stubber.activate()
    clients.inject("application_autoscaling", client)
    return stubber


@pytest.fixture
def stood_up(account):
    resources = dev_resources()
    stand_up(account, resources)
    return account, resources


def run_verify(clients, gateway, **kwargs):
    return verify(load_stack("dev"), "dev", clients, urls={"resnet50": gateway.stage_url}, plan=stack_plan("dev"),
                  **kwargs)["resnet50"]


def failures(checks):
    return [(c.area, c.subject, c.detail) for c in checks if c.status != "pass"]


def test_a_stack_as_pulumi_up_left_it_passes_every_check(stood_up, gateway):
    clients, resources = stood_up
    stubber = stub_scaling(clients, resources)
    checks = run_verify(clients, gateway)
    assert failures(checks) == []
    by_area = {}
    for c in checks:
        by_area.setdefault(c.area, []).append(c.subject)
    assert by_area["gateway"] == ["JSON inference", "binary inference", "malformed request", "no credentials"]
    assert sorted(by_area["alarm"]) == sorted(
        f"{API}-{role}" for role in ("p99-latency", "5xx-rate", "4xx-rate", "gpu-utilization", "gpu-memory",
                                     "service-unhealthy", "input-drift", "no-capacity"))
    assert by_area["scaling target"] == [f"inference-component/{API} sagemaker:inference-component:DesiredCopyCount"]
    assert sorted(by_area["scaling policy"]) == [f"{API}-invocations", f"{API}-wake"]
    assert by_area["schedule"] == [f"{API}-drift-{OTHER_SUFFIX}"] and by_area["endpoint"] == [API]
    binary = next(c for c in checks if c.subject == "binary inference")
    assert binary.detail == "200, outputs {'logits': [1, 10]}"
    malformed = next(c for c in checks if c.subject == "malformed request")
    assert malformed.detail.startswith("400")
    # every request but the one meant to go without credentials carried the stack's key
    assert [r.get("x-api-key") for r in gateway.requests] == [KEY, KEY, KEY, None]
    stubber.assert_no_pending_responses()


def break_alarm(clients):
    clients.cloudwatch.delete_alarms(AlarmNames=[f"{API}-p99-latency"])


def mute_alarm(clients):
    clients.cloudwatch.disable_alarm_actions(AlarmNames=[f"{API}-5xx-rate"])


def stop_drift(clients):
    clients.events.disable_rule(Name=f"{API}-drift-{OTHER_SUFFIX}")


def strip_alarm_actions(clients):
    clients.cloudwatch.put_metric_alarm(
        AlarmName=f"{API}-gpu-memory", Namespace="AWS/SageMaker", MetricName="GPUMemoryUtilization",
        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold")


@pytest.mark.parametrize("breakage, area, subject, detail", [
    (break_alarm, "alarm", f"{API}-p99-latency", "not in CloudWatch"),
    (mute_alarm, "alarm", f"{API}-5xx-rate", "its actions are disabled"),
    (strip_alarm_actions, "alarm", f"{API}-gpu-memory", "it does not notify sns mlserve-dev-alerts"),
    (stop_drift, "schedule", f"{API}-drift-{OTHER_SUFFIX}", "state DISABLED"),
])
def test_what_is_missing_or_muted_in_aws_fails_by_name(stood_up, gateway, breakage, area, subject, detail):
    clients, resources = stood_up
    breakage(clients)
    stub_scaling(clients, resources)
    assert failures(run_verify(clients, gateway)) == [(area, subject, detail)]


def test_a_scaling_policy_that_is_not_attached_fails(stood_up, gateway):
    clients, resources = stood_up
    stub_scaling(clients, resources, leave_out=f"{API}-wake")
    assert failures(run_verify(clients, gateway)) == [("scaling policy", f"{API}-wake", "not attached")]


def test_a_gateway_that_breaks_binary_tensors_or_lets_anyone_in_fails(stood_up, gateway):
    clients, resources = stood_up
    gateway.broken_binary, gateway.require_key = True, False
    stub_scaling(clients, resources)
    failed = {(area, subject): detail for area, subject, detail in failures(run_verify(clients, gateway))}
    assert set(failed) == {("gateway", "binary inference"), ("gateway", "no credentials")}
    assert failed[("gateway", "binary inference")].startswith("502")
    assert failed[("gateway", "no credentials")].startswith("200")


def test_without_the_api_the_gateway_check_fails_and_the_rest_still_runs(account):
    resources = dev_resources()
    stub_scaling(account, resources)
    platform(account)
    release_model(load_stack("dev"), "dev", "resnet50", SAMPLE_MODEL, account)
    checks = verify(load_stack("dev"), "dev", account, plan=stack_plan("dev"))["resnet50"]
    assert ("gateway", API, "no such REST API") in failures(checks)
    assert ("alarm", f"{API}-p99-latency", "not in CloudWatch") in failures(checks)


def test_the_cli_exits_1_naming_each_failure_and_0_when_all_pass(stood_up, gateway, capsys, monkeypatch):
    clients, resources = stood_up
    from infra.ops import __main__ as cli

    real = cli.Clients

    def with_scaling(region, endpoint_url):
        made = real(region, endpoint_url)
        stub_scaling(made, resources)
        return made

    monkeypatch.setattr(cli, "Clients", with_scaling)
    argv = ["verify", "--stack", "dev", "--url", f"resnet50={gateway.stage_url}"]
    assert main(argv) == 0
    assert capsys.readouterr().out.rstrip().endswith("verify: all 17 checks passed")
    clients.cloudwatch.delete_alarms(AlarmNames=[f"{API}-gpu-utilization"])
    assert main(argv) == 1
    assert capsys.readouterr().out.rstrip().endswith(
        f"verify: 16 passed, 1 failed: resnet50: alarm {API}-gpu-utilization")


@pytest.mark.parametrize("argv, message", [
    (["--url", "resnet50=ftp://x"], "--url must be DEPLOYMENT=http(s)://"),
    (["--url", "bert=http://127.0.0.1:9"], "--url names 'bert', which is not a deployment being verified"),
    (["--deployment", "bert"], "no deployment 'bert' in this stack"),
    (["--header", "no-colon"], "--header must be NAME:VALUE"),
])
def test_bad_input_is_one_line_and_exit_2(aws, argv, message, capsys):
    assert main(["verify", "--stack", "dev", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_stack_in_phase_stores_has_nothing_to_verify(aws, tmp_path, capsys):
    raw = dev_raw()
    raw["mlserve:phase"] = "stores"
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(yaml.safe_dump({"config": raw}))
    assert main(["verify", "--stack", "dev", "--config-file", str(stack_file)]) == 2
    assert "mlserve:phase is stores: nothing serves yet" in capsys.readouterr().err


def test_jwt_without_a_token_says_how_to_pass_one(account):
    raw = dev_raw()
    raw["mlserve:gateway"]["authorization"] = "jwt"
    raw["mlserve:gateway"]["cognito_user_pool_arn"] = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_abc"
    api_with_key(account)
    cfg = config_from(raw)
    found = find_gateway(account, cfg, "dev", cfg.deployments[0], None, {})
    assert isinstance(found, Check) and found.status == "fail"
    assert found.detail == "gateway.authorization is jwt and no token was given"
    assert found.fix == "--header 'Authorization: Bearer <a token from the user pool>'"


# ---- KServe: the ALB's targets and KEDA's scalers (prod's reranker) ------------------------------------------------

RERANKER = "mlserve-prod-reranker"
ALB_NAME = load_balancer_name(RERANKER, "alb")


@pytest.fixture
def kube(tmp_path, monkeypatch):
    resources = owned(stack_plan("prod"), {RERANKER})
    ingress = next(r for r in resources if r.type.endswith(":Ingress")).inputs
    state = KubeState(RERANKER, {k: copy.deepcopy(ingress[k]) for k in ("apiVersion", "kind", "metadata", "spec")},
                      [])
    for scaler in (r for r in resources if r.type.endswith(":ScaledObject")):
        meta = scaler.inputs["metadata"]
        state.objects[f"/apis/keda.sh/v1alpha1/namespaces/{meta['namespace']}/scaledobjects/{meta['name']}"] = {
            **copy.deepcopy(scaler.inputs), "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    server = serve(state)
    use_stub(server, tmp_path, monkeypatch)
    yield state, resources
    server.shutdown()
    server.server_close()


def load_balancers(clients, resources, stopped_pod: bool = False) -> None:
    """The ALB the load balancer controller makes from the Ingress (pods as IP targets) and the PrivateLink NLB's
    target group (the ALB as its target), as elbv2 holds them."""
    ec2 = clients.ec2
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.50.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]
               ["SubnetId"] for i, z in enumerate("ab")]
    ingress = next(r for r in resources if r.type.endswith(":Ingress")).inputs
    alb_name = ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-name"]
    alb = clients.elbv2.create_load_balancer(Name=alb_name, Subnets=subnets, Scheme="internal",
                                             Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    pods = clients.elbv2.create_target_group(Name="k8s-reranker-predictor", Protocol="HTTP", Port=8080, VpcId=vpc,
                                             TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    clients.elbv2.create_listener(LoadBalancerArn=alb, Protocol="HTTP", Port=80,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": pods}])
    clients.elbv2.register_targets(TargetGroupArn=pods, Targets=[{"Id": "10.50.0.10", "Port": 8080},
                                                                 {"Id": "10.50.1.11", "Port": 8080}])
    if stopped_pod:  # a node that went away under a registered target
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]
        clients.elbv2.register_targets(TargetGroupArn=pods, Targets=[{"Id": instance["InstanceId"], "Port": 8080}])
        ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    group = next(r for r in resources if r.type == "aws:lb/targetGroup:TargetGroup").inputs
    nlb_group = clients.elbv2.create_target_group(Name=group["name"], Protocol="TCP", Port=int(group["port"]),
                                                  VpcId=vpc, TargetType="alb")["TargetGroups"][0]["TargetGroupArn"]
    clients.elbv2.register_targets(TargetGroupArn=nlb_group, Targets=[{"Id": alb, "Port": int(group["port"])}])


def kserve_checks(clients):
    return verify(load_stack("prod"), "prod", clients, ["reranker"], http=False, plan=stack_plan("prod"),
                  kube=KubernetesObjects)["reranker"]


def test_kserve_targets_healthy_and_scalers_ready_pass(aws, kube):
    state, resources = kube
    load_balancers(aws, resources)
    checks = [c for c in kserve_checks(aws) if c.area in ("targets", "scaling")]
    assert [(c.area, c.status) for c in checks] == [("targets", "pass")] * 2 + [("scaling", "pass")] * 2
    assert {c.subject for c in checks if c.area == "targets"} == {
        f"ALB {ALB_NAME} / k8s-reranker-predictor", f"target group {ALB_NAME}"}
    assert all(c.detail in ("2 healthy", "1 healthy", "Ready") for c in checks)


def test_an_unhealthy_pod_target_and_a_scaler_that_is_not_ready_fail(aws, kube):
    state, resources = kube
    load_balancers(aws, resources, stopped_pod=True)
    path = next(p for p in state.objects if p.endswith("/scaledobjects/reranker"))
    state.objects[path]["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
                                                     "message": "Prometheus query failed"}]}
    failed = {(c.area, c.subject): c.detail for c in kserve_checks(aws) if c.status == "fail"
              and c.area in ("targets", "scaling")}
    assert failed[("targets", f"ALB {ALB_NAME} / k8s-reranker-predictor")].endswith(
        "unused Target.InvalidState")
    assert failed[("scaling", f"ScaledObject {RERANKER}/reranker")] == \
        "not Ready: ScaledObjectCheckFailed Prometheus query failed"
    assert len(failed) == 2


def test_kserve_without_its_load_balancer_says_the_controller_has_not_made_it(aws, kube):
    failed = {(c.area, c.subject): c.detail for c in kserve_checks(aws) if c.status == "fail"}
    assert failed[("targets", f"ALB {ALB_NAME}")].startswith("no such load balancer")


def test_an_async_deployment_gets_no_inference_but_its_refusals_are_checked(gateway):
    from infra.ops.profile import metadata_from_spec
    from infra.ops.verify import Gateway, check_gateway

    checks = check_gateway(Gateway(gateway.stage_url, "resnet50", {"x-api-key": KEY}),
                           metadata_from_spec(SAMPLE_MODEL / "spec.json"), asynchronous=True)
    assert [(c.subject, c.status) for c in checks] == [
        ("JSON inference", "unverified"), ("binary inference", "unverified"),
        ("malformed request", "pass"), ("no credentials", "pass")]
    assert len(gateway.requests) == 2  # only the two refusals were sent


def test_a_sagemaker_mode_binary_answer_is_read_from_its_media_type_parameter():
    # Through InvokeEndpoint only Content-Type comes back: the front moves the JSON header's length into it.
    import json as _json

    import numpy as np

    from infra.ops.verify import _outputs_of

    header = _json.dumps({"model_name": "m", "outputs": [{"name": "scores", "datatype": "FP32", "shape": [1, 2],
                                                          "parameters": {"binary_data_size": 8}}]}).encode()
    body = header + np.array([[0.25, 0.75]], dtype=np.float32).tobytes()
    content_type = f"application/vnd.sagemaker-triton.binary+json;json-header-size={len(header)}"
    assert _outputs_of(200, {"Content-Type": content_type}, body, binary=True) == {"scores": [1, 2]}
