"""verify: the smoke test after `pulumi up`: each deployment answers through its gateway and is watched.

Per deployment:

- gateway: the REST API the stack declared (`mlserve-<stack>-<deployment>`), its stage URL (or the custom domain) and
  the API key of the first tier; a v2 JSON inference and a binary-tensor inference answered 200 with every output
  the model's spec names, in its shape; a malformed request answered 4xx (not an auth or routing error); a request
  without credentials refused (401/403). Requests are shaped from the released model's own `spec.json` (read from
  the model tarball in S3, or `--spec`), as `infra.ops profile` shapes them. `gateway.authorization: iam` signs
  each request with the caller's credentials; `jwt` needs `--header 'Authorization: Bearer <token>'`.
- what the program declares for the deployment, read from the stack's offline plan (the same program, so the names
  are the ones `pulumi up` created): every CloudWatch alarm exists with its actions enabled and pointing where the
  plan points them (the alert topic, a scaling policy); every Application Auto Scaling target is registered with the
  planned bounds and every scaling policy is attached; the drift schedule's EventBridge rule is ENABLED with its
  schedule and a target; a SageMaker endpoint is InService;
- KServe: the ALB the Ingress names and the PrivateLink NLB's target group have every target healthy (elbv2
  DescribeTargetHealth); each KEDA ScaledObject is Ready (through the Kubernetes API, `KUBECONFIG`).

Exit 0 when no check fails, 1 naming each that failed. An async SageMaker deployment's inferences are not sent (its
answers come through S3): they show as UNVERIFIED, its gateway's refusals are still checked. Names the provider
generates (`<name>-<7 hex>`) are matched by their prefix, as the plan cannot know the suffix AWS got.
"""

from __future__ import annotations

import json
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from components.names import deployment_name, endpoint_name
from infra.config.models import KServeDeployment, SageMakerDeployment, StackConfig

from .clients import Clients
from .profile import Target as Gateway  # what profile loads: a stage URL, the model, credentials, SigV4
from .report import Check, OpsError

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
RULE = "aws:cloudwatch/eventRule:EventRule"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
ALB_NAME_ANNOTATION = "alb.ingress.kubernetes.io/load-balancer-name"
AUTONAME = re.compile(r"-[0-9a-f]{7}$")
MALFORMED = b'{"inputs": "not a list of tensors"}'
TIMEOUT_SECONDS = 60


# ---- the plan: what the program declares for a deployment -------------------------------------------------------

def owned(plan, names: set[str]) -> list:
    """The plan's resources inside a component named one of `names` (a deployment, or the endpoint it runs on)."""
    by_urn = {r.urn: r for r in plan.resources}

    def inside(resource) -> bool:
        parent = by_urn.get(resource.parent or "")
        while parent is not None:
            if not parent.custom and parent.name in names:
                return True
            parent = by_urn.get(parent.parent or "")
        return False

    return [r for r in plan.resources if r.custom and inside(r)]


def _planned_name(resource, key: str = "name") -> str:
    return str(resource.inputs.get(key) or "")


def _autonamed(resource, planned: str) -> bool:
    return planned.startswith(f"{resource.name}-") and bool(AUTONAME.search(planned)) and \
        len(planned) == len(resource.name) + 8


def _same_name(resource, planned: str, actual: str) -> bool:
    """The name AWS has is the planned one, or, where the provider generated it, the same logical name with the
    suffix AWS got."""
    if actual == planned:
        return True
    return _autonamed(resource, planned) and actual.startswith(f"{resource.name}-") and \
        bool(AUTONAME.search(actual)) and len(actual) == len(planned)


def _action_key(arn: str) -> tuple[str, str]:
    """An alarm action compared by what it names, not by ids the plan cannot know: the SNS topic's name, the scaling
    policy's resource and name (without a generated suffix)."""
    parts = arn.split(":")
    service = parts[2] if len(parts) > 2 else arn
    if service == "autoscaling" and "policyName/" in arn:
        resource = arn.split(":resource/", 1)[1] if ":resource/" in arn else ""
        resource, _, policy = resource.partition(":policyName/")
        return service, f"{resource}:{AUTONAME.sub('', policy)}"
    return service, AUTONAME.sub("", parts[-1])


# ---- AWS checks, one function per kind ----------------------------------------------------------------------------

def check_alarms(clients: Clients, resources: list) -> list[Check]:
    planned = [r for r in resources if r.type in (ALARM, COMPOSITE)]
    if not planned:
        return []
    names = {r.urn: _planned_name(r, "alarmName" if r.type == COMPOSITE else "name") for r in planned}
    found: dict[str, dict] = {}
    for page in clients.cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=_common_prefix(list(names.values())), AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            found[alarm["AlarmName"]] = alarm
    checks = []
    for resource in planned:
        name = names[resource.urn]
        actual = next((a for n, a in found.items() if _same_name(resource, name, n)), None)
        if actual is None:
            checks.append(Check("alarm", name, "fail", "not in CloudWatch", "pulumi up, or look for a failed update"))
            continue
        wanted = {_action_key(a) for a in resource.inputs.get("alarmActions") or []}
        has = {_action_key(a) for a in actual.get("AlarmActions", [])}
        problems = []
        if resource.inputs.get("actionsEnabled", True) and not actual.get("ActionsEnabled", True):
            problems.append("its actions are disabled")
        if wanted - has:
            problems.append("it does not notify " + ", ".join(f"{s} {n}" for s, n in sorted(wanted - has)))
        checks.append(Check("alarm", actual["AlarmName"], "fail" if problems else "pass",
                            "; ".join(problems) if problems else
                            f"{actual.get('StateValue', '?')}, actions on: " + (", ".join(
                                f"{s} {n}" for s, n in sorted(has)) or "none (as declared)"),
                            "aws cloudwatch enable-alarm-actions, or pulumi up" if problems else ""))
    return checks


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def check_scaling(clients: Clients, resources: list) -> list[Check]:
    checks = []
    for target in (r for r in resources if r.type == SCALING_TARGET):
        namespace, resource_id = target.inputs["serviceNamespace"], target.inputs["resourceId"]
        dimension = target.inputs["scalableDimension"]
        subject = f"{resource_id} {dimension}"
        registered = clients.application_autoscaling.describe_scalable_targets(
            ServiceNamespace=namespace, ResourceIds=[resource_id], ScalableDimension=dimension)["ScalableTargets"]
        if not registered:
            checks.append(Check("scaling target", subject, "fail", "not registered with Application Auto Scaling",
                                "pulumi up (the endpoint or inference component must exist first)"))
            continue
        bounds = (registered[0]["MinCapacity"], registered[0]["MaxCapacity"])
        planned = (int(target.inputs["minCapacity"]), int(target.inputs["maxCapacity"]))
        checks.append(Check("scaling target", subject, "pass" if bounds == planned else "fail",
                            f"min {bounds[0]}, max {bounds[1]}" + ("" if bounds == planned else
                                                                  f"; the stack declares {planned[0]}..{planned[1]}"),
                            "" if bounds == planned else "pulumi up (someone changed it by hand)"))
        policies = clients.application_autoscaling.describe_scaling_policies(
            ServiceNamespace=namespace, ResourceId=resource_id, ScalableDimension=dimension)["ScalingPolicies"]
        for policy in (r for r in resources if r.type == SCALING_POLICY and r.inputs.get("resourceId") == resource_id
                       and r.inputs.get("scalableDimension") == dimension):
            name = _planned_name(policy)
            actual = next((p for p in policies if _same_name(policy, name, p["PolicyName"])), None)
            kind = policy.inputs.get("policyType", "")
            ok = actual is not None and actual.get("PolicyType") == kind
            checks.append(Check("scaling policy", AUTONAME.sub("", name), "pass" if ok else "fail",
                                f"{kind} on {resource_id}" if ok else
                                ("not attached" if actual is None else f"is {actual.get('PolicyType')}, not {kind}"),
                                "" if ok else "pulumi up"))
    return checks


def check_schedules(clients: Clients, resources: list) -> list[Check]:
    """The drift job's schedule (and any other scheduled rule the deployment declares): enabled, on schedule,
    with a target."""
    checks = []
    for rule in (r for r in resources if r.type == RULE and r.inputs.get("scheduleExpression")):
        planned, schedule = _planned_name(rule), rule.inputs["scheduleExpression"]
        prefix = f"{rule.name}-" if _autonamed(rule, planned) else planned
        rules = [r for page in clients.events.get_paginator("list_rules").paginate(NamePrefix=prefix)
                 for r in page["Rules"] if _same_name(rule, planned, r["Name"])]
        subject = AUTONAME.sub("", planned)
        if not rules:
            checks.append(Check("schedule", subject, "fail", "no such EventBridge rule", "pulumi up"))
            continue
        actual = rules[0]
        targets = clients.events.list_targets_by_rule(Rule=actual["Name"])["Targets"]
        problems = [p for p, bad in ((f"state {actual.get('State')}", actual.get("State") != "ENABLED"),
                                     (f"schedule {actual.get('ScheduleExpression')}, declared {schedule}",
                                      actual.get("ScheduleExpression") != schedule),
                                     ("no target", not targets)) if bad]
        checks.append(Check("schedule", actual["Name"], "fail" if problems else "pass",
                            "; ".join(problems) if problems else f"ENABLED, {schedule}, {len(targets)} target(s)",
                            f"aws events enable-rule --name {actual['Name']}, or pulumi up" if problems else ""))
    return checks


def check_endpoints(clients: Clients, resources: list) -> list[Check]:
    checks = []
    for endpoint in (r for r in resources if r.type == ENDPOINT):
        name = _planned_name(endpoint)
        try:
            status = clients.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except ClientError as error:
            if error.response["Error"].get("Code") != "ValidationException":
                raise
            checks.append(Check("endpoint", name, "fail", "no such SageMaker endpoint", "pulumi up"))
            continue
        checks.append(Check("endpoint", name, "pass" if status == "InService" else "fail", status,
                            "" if status == "InService" else "wait for it, or read its FailureReason"))
    return checks


def check_target_health(clients: Clients, resources: list) -> list[Check]:
    """KServe: the ALB the Ingress names (targets: the serving pods) and the NLB's target group (target: that ALB)."""
    elbv2, checks = clients.elbv2, []
    groups: list[tuple[str, str]] = []  # (subject, target group ARN)
    for ingress in (r for r in resources if r.type == INGRESS):
        alb = ((ingress.inputs.get("metadata") or {}).get("annotations") or {}).get(ALB_NAME_ANNOTATION)
        if not alb:
            continue
        try:
            arn = elbv2.describe_load_balancers(Names=[alb])["LoadBalancers"][0]["LoadBalancerArn"]
        except ClientError as error:
            if error.response["Error"].get("Code") != "LoadBalancerNotFound":
                raise
            checks.append(Check("targets", f"ALB {alb}", "fail", "no such load balancer: the load balancer "
                                "controller has not made it", "kubectl describe ingress (its events say why)"))
            continue
        groups += [(f"ALB {alb} / {g['TargetGroupName']}", g["TargetGroupArn"])
                   for g in elbv2.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]]
    for group in (r for r in resources if r.type == TARGET_GROUP):
        name = _planned_name(group)
        try:
            found = elbv2.describe_target_groups(Names=[name])["TargetGroups"]
        except ClientError as error:
            if error.response["Error"].get("Code") != "TargetGroupNotFound":
                raise
            checks.append(Check("targets", f"target group {name}", "fail", "no such target group", "pulumi up"))
            continue
        groups.append((f"target group {name}", found[0]["TargetGroupArn"]))
    for subject, arn in groups:
        health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        states = [(t["Target"]["Id"], t["TargetHealth"]["State"], t["TargetHealth"].get("Reason", "")) for t in health]
        bad = [s for s in states if s[1] != "healthy"]
        ok = bool(states) and not bad
        checks.append(Check("targets", subject, "pass" if ok else "fail",
                            f"{len(states)} healthy" if ok else "no targets" if not states else
                            "; ".join(f"{i} {state} {reason}".strip() for i, state, reason in bad),
                            "" if ok else "kubectl get pods, and the target group's health check path"))
    return checks


class KubeObjects(Protocol):
    def get(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict | None: ...


class KubernetesObjects:
    """KubeObjects over the official client and `KUBECONFIG` (as `rollout` reaches the cluster)."""

    def __init__(self, context: str | None = None):
        from .kserve_rollout import KubernetesApi

        self.custom = KubernetesApi(context).custom

    def get(self, group, version, namespace, plural, name):
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self.custom.get_namespaced_custom_object(group, version, namespace, plural, name))  # type: ignore[arg-type]
        except ApiException as error:
            if error.status == 404:
                return None
            raise OpsError(f"the Kubernetes API answered {error.status} for {plural}/{name}: {error.reason}") from None


def check_scaled_objects(kube: Callable[[], KubeObjects], resources: list) -> list[Check]:
    scalers = [r for r in resources if r.type == SCALED_OBJECT]
    if not scalers:
        return []
    api, checks = kube(), []
    for scaler in scalers:
        metadata = scaler.inputs.get("metadata") or {}
        name, namespace = metadata.get("name", ""), metadata.get("namespace", "")
        found = api.get("keda.sh", "v1alpha1", namespace, "scaledobjects", name)
        if found is None:
            checks.append(Check("scaling", f"ScaledObject {namespace}/{name}", "fail", "not in the cluster",
                                "pulumi up"))
            continue
        ready = next((c for c in (found.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        ok = ready.get("status") == "True"
        checks.append(Check("scaling", f"ScaledObject {namespace}/{name}", "pass" if ok else "fail",
                            "Ready" if ok else f"not Ready: {ready.get('reason') or 'no Ready condition'} "
                            f"{ready.get('message') or ''}".strip(), "" if ok else "kubectl describe scaledobject"))
    return checks


# ---- the gateway ---------------------------------------------------------------------------------------------

def find_gateway(clients: Clients, cfg: StackConfig, stack: str, d, base_url: str | None,
                 headers: dict[str, str]) -> Gateway | Check:
    """The deployment's API, its URL and key, as `pulumi up` made them; a failed Check when it is not there."""
    name = deployment_name(stack, d.name)
    apis = [a for page in clients.apigateway.get_paginator("get_rest_apis").paginate()
            for a in page.get("items", []) if a.get("name") == name]
    if not apis:
        return Check("gateway", name, "fail", "no such REST API", "pulumi up")
    api = apis[0]
    if base_url is None:
        stages = [s["stageName"] for s in clients.apigateway.get_stages(restApiId=api["id"]).get("item", [])]
        if not stages:
            return Check("gateway", name, "fail", "the API has no stage", "pulumi up")
        stage = "v1" if "v1" in stages else stages[0]
        base_url = f"https://{cfg.gateway.domain_name}" if cfg.gateway.domain_name else \
            f"https://{api['id']}.execute-api.{cfg.region}.amazonaws.com/{stage}"
    credentials = dict(headers)
    if cfg.gateway.authorization == "jwt" and not any(k.lower() == "authorization" for k in credentials):
        return Check("gateway", name, "fail", "gateway.authorization is jwt and no token was given",
                     "--header 'Authorization: Bearer <a token from the user pool>'")
    key_name = f"{name}-{cfg.gateway.tiers[0].name}"
    keys = [k for k in clients.apigateway.get_api_keys(nameQuery=key_name, includeValues=True).get("items", [])
            if k.get("name") == key_name]
    if not keys or not keys[0].get("value"):
        return Check("gateway", key_name, "fail", "no such API key", "pulumi up")
    if not keys[0].get("enabled", True):
        return Check("gateway", key_name, "fail", "the API key is disabled", "pulumi up")
    credentials.setdefault("x-api-key", keys[0]["value"])
    return Gateway(base_url, d.model.triton_model_name, credentials,
                   cfg.region if cfg.gateway.authorization == "iam" else None)


def model_metadata(clients: Clients, d, spec: Path | None) -> dict[str, Any]:
    """The v2 metadata of the released model: from `--spec`, or from the spec.json inside the model tarball."""
    from .profile import metadata_from_spec, spec_metadata

    if spec is not None:
        try:
            return metadata_from_spec(spec)
        except ValueError as error:
            raise OpsError(str(error)) from None
    body = clients.s3.get_object(Bucket=d.model.bucket, Key=d.model.key)["Body"]
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.name == "spec.json" else None
                if handle is not None:
                    return spec_metadata(json.loads(handle.read()))
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as error:
        raise OpsError(f"{d.model.uri}: cannot read its spec.json ({error}); pass --spec") from None
    raise OpsError(f"{d.model.uri} has no spec.json (not released by release-model?); pass --spec")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _expected_outputs(metadata: dict[str, Any]) -> dict[str, list[int]]:
    return {o["name"]: [1 if d == -1 else d for d in o["shape"]] for o in metadata["outputs"]}


def _json_header_size(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "json-header-size" and value.strip().isdigit():
            return value.strip()
    return None


def _outputs_of(status: int, headers: dict[str, str], body: bytes, binary: bool) -> dict[str, list[int]]:
    """Output name -> shape as the server answered (raises ValueError on an answer that is not v2)."""
    import tritonclient.http as httpclient

    lower = {k.lower(): v for k, v in headers.items()}
    # KServe's v2 header, or SageMaker mode's media-type parameter (the front moves it there: Content-Type
    # application/vnd.sagemaker-triton.binary+json;json-header-size=N, the only header InvokeEndpoint passes back).
    length = lower.get("inference-header-content-length") or _json_header_size(lower.get("content-type", ""))
    if binary or length:
        result = httpclient.InferResult.from_response_body(body, header_length=int(length) if length else None)
        shapes = {}
        for output in result.get_response().get("outputs", []):
            array = result.as_numpy(output["name"])
            if array is None:
                raise ValueError(f"output {output['name']} carries no data")
            shapes[output["name"]] = list(array.shape)
        return shapes
    document = json.loads(body)
    outputs = {}
    for output in document["outputs"]:
        count = 1
        for dim in output["shape"]:
            count *= dim
        if len(output.get("data", [])) != count:
            raise ValueError(f"output {output['name']} has {len(output.get('data', []))} values for shape "
                             f"{output['shape']}")
        outputs[output["name"]] = list(output["shape"])
    return outputs


ASYNC_NOT_SENT = ("an async endpoint answers through infer-async (input and result in S3): verify sends no "
                  "inference to it")


def check_gateway(gateway: Gateway, metadata: dict[str, Any], asynchronous: bool = False) -> list[Check]:
    from .profile import Target, request_body, signer

    sign = signer(Target(gateway.base_url, gateway.model, sigv4_region=gateway.sigv4_region))
    expected = _expected_outputs(metadata)
    checks = []
    if asynchronous:
        checks += [Check("gateway", label, "unverified", ASYNC_NOT_SENT, "docs/sagemaker.md: the async route")
                   for label in ("JSON inference", "binary inference")]
    try:
        for label, binary in () if asynchronous else (("JSON inference", False), ("binary inference", True)):
            body, content = request_body(metadata, 1, binary)
            # A binary answer crosses API Gateway untouched only when the request accepts a binary media type.
            accept = {"Accept": "application/octet-stream"} if binary else {}
            status, headers, answer = _post(gateway.infer_url, body,
                                            {**gateway.headers, **accept, **sign(body, content)})
            if status != 200:
                checks.append(Check("gateway", label, "fail", f"{status}: {answer[:200]!r}",
                                    "rollout status; the endpoint's logs"))
                continue
            try:
                shapes = _outputs_of(status, headers, answer, binary)
            except (ValueError, KeyError, TypeError) as error:
                checks.append(Check("gateway", label, "fail", f"200, but not a v2 answer: {error}", ""))
                continue
            ok = shapes == expected
            checks.append(Check("gateway", label, "pass" if ok else "fail", f"200, outputs {shapes}" +
                                ("" if ok else f"; the model's spec says {expected}"),
                                "" if ok else "the deployed model is not the released one: rollout status"))
        content = {"Content-Type": "application/json"}
        status, _, answer = _post(gateway.infer_url, MALFORMED, {**gateway.headers, **sign(MALFORMED, content)})
        ok = 400 <= status < 500 and status not in (401, 403, 404, 429)
        checks.append(Check("gateway", "malformed request", "pass" if ok else "fail",
                            f"{status}: {answer[:120].decode(errors='replace')}",
                            "" if ok else "the request validator or the front should refuse it with a 4xx"))
        body, content = request_body(metadata, 1, False)
        status, _, answer = _post(gateway.infer_url, body, content)
        ok = status in (401, 403)
        checks.append(Check("gateway", "no credentials", "pass" if ok else "fail",
                            f"{status}: {answer[:120].decode(errors='replace')}",
                            "" if ok else "the API must require its key (and signature or token)"))
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        checks.append(Check("gateway", gateway.infer_url, "fail", f"cannot reach it: {reason}",
                            "from inside the network the API is reachable from, or pass --url"))
    return checks


# ---- per deployment ------------------------------------------------------------------------------------------

@dataclass
class Verify:
    cfg: StackConfig
    stack: str
    clients: Clients
    plan: Any
    kube: Callable[[], KubeObjects]
    headers: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    spec: Path | None = None
    http: bool = True
    _seen: set[str] = field(default_factory=set)

    def deployment(self, d) -> list[Check]:
        names = {deployment_name(self.stack, d.name)}
        if isinstance(d, SageMakerDeployment):
            names.add(endpoint_name(self.stack, d.endpoint_group))
        # A shared endpoint's own alarms and scaling are checked once, with its first deployment.
        resources = [r for r in owned(self.plan, names) if r.urn not in self._seen]
        self._seen |= {r.urn for r in resources}
        checks: list[Check] = []
        if self.http:
            gateway = find_gateway(self.clients, self.cfg, self.stack, d, self.urls.get(d.name), self.headers)
            if isinstance(gateway, Check):
                checks.append(gateway)
            else:
                checks += check_gateway(gateway, model_metadata(self.clients, d, self.spec),
                                        asynchronous=isinstance(d, SageMakerDeployment) and d.mode == "async")
        checks += check_endpoints(self.clients, resources) + check_alarms(self.clients, resources) + \
            check_scaling(self.clients, resources) + check_schedules(self.clients, resources)
        if isinstance(d, KServeDeployment):
            checks += check_target_health(self.clients, resources) + check_scaled_objects(self.kube, resources)
        return checks


def verify(cfg: StackConfig, stack: str, clients: Clients, deployments: Iterable[str] = (), *,
           kube: Callable[[], KubeObjects] = KubernetesObjects, headers: dict[str, str] | None = None,
           urls: dict[str, str] | None = None, spec: Path | None = None, http: bool = True,
           plan=None) -> dict[str, list[Check]]:
    """Checks per deployment name. `plan`: the stack's offline plan (computed here when not given)."""
    if cfg.phase != "all":
        raise OpsError(f"mlserve:phase is {cfg.phase}: nothing serves yet; verify after the phase-all `pulumi up`")
    wanted = list(deployments) or [d.name for d in cfg.deployments]
    unknown = [n for n in wanted if n not in {d.name for d in cfg.deployments}]
    if unknown:
        raise OpsError(f"no deployment {unknown[0]!r} in this stack; it has: "
                       f"{', '.join(d.name for d in cfg.deployments)}")
    unknown_urls = [n for n in urls or {} if n not in wanted]
    if unknown_urls:
        raise OpsError(f"--url names {unknown_urls[0]!r}, which is not a deployment being verified")
    if plan is None:
        from infra.plan import plan_stack

        plan = plan_stack(cfg, stack)
    run = Verify(cfg, stack, clients, plan, kube, dict(headers or {}), dict(urls or {}), spec, http)
    return {d.name: run.deployment(d) for d in cfg.deployments if d.name in wanted}
