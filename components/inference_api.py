"""InferenceApi: the authenticated, throttled, logged front door of one deployment.

`POST /v2/models/<model>/infer` (the KServe v2 / Triton request shape), validated at the edge against a JSON schema;
or, for a language model, the OpenAI-compatible routes (components/openai_routes.py), streamed from KServe.
A SageMaker deployment is integrated straight into `InvokeEndpoint` with a role that may invoke only that endpoint;
a KServe deployment through a VPC link to its private load balancer (`PrivateHttpBackend`). No Lambda in the hot
path either way. Every route needs an API key (usage plans meter and throttle per tier) and, per config, IAM or a
Cognito JWT. Access logs are JSON in a KMS-encrypted log group; prod gets a WAF web ACL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from .openai_routes import (
    ROUTES,
    STREAM_TIMEOUT_MS,
    OpenAiRequestShape,
    chat_schema,
    completion_schema,
    models_answer,
)
from .policy_document import Statement, assume_role_policy, render

# Binary tensors (Triton's binary extension): the JSON header, then the raw tensor bytes; the header's length travels
# in Inference-Header-Content-Length (KServe v2) or in the media type's json-header-size parameter (SageMaker mode).
# API Gateway passes bodies through untouched only for a binary media type, in both directions: the SageMaker-mode
# front answers binary tensors as application/vnd.sagemaker-triton.binary+json (serving_image/front.py).
BINARY_MEDIA_TYPES = ("application/octet-stream", "application/vnd.sagemaker-triton.binary+json")
HEADER_LENGTH = "Inference-Header-Content-Length"
RETRY_AFTER = "Retry-After"
OVERLOAD_RETRY_SECONDS = 1
"""What the front answers with its 429 (serving_image/front.py); SageMaker's ModelError drops the container's headers,
so the gateway restores it (a test pins the two)."""
# InvokeEndpointAsync's own header names (botocore's sagemaker-runtime model: the members' locationName).
ASYNC_INPUT = "X-Amzn-SageMaker-InputLocation"
ASYNC_CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
MODEL_ERROR_STATUS = "424"
"""InvokeEndpoint's ModelError: the container answered an error; its body carries OriginalStatusCode and
OriginalMessage (botocore's sagemaker-runtime model)."""
MODEL_NOT_READY_STATUS = "429"
"""InvokeEndpoint's ModelNotReadyException (no copy ready yet, e.g. an inference component waking from zero)."""
OTHER_CLIENT_ERRORS = {"sagemaker": r"4([01]\d|2[0-35-8]|[3-9]\d)", "http": r"4([01]\d|2[0-8]|[3-9]\d)"}
"""Every 4xx but the ones answered on their own (424 and 429 from SageMaker, 429 from the cluster): selection
patterns must not overlap, since API Gateway picks no particular one of several that match."""
SERVER_ERRORS = r"5\d{2}"
# A container's error through SageMaker: its own 4xx (429 with the front's Retry-After), anything else a 502.
MODEL_ERROR_TEMPLATE = (
    "#set($status = $input.path('$.OriginalStatusCode'))\n"
    "#if($status == 429)#set($context.responseOverride.status = 429)"
    f"#set($context.responseOverride.header.{RETRY_AFTER} = \"{OVERLOAD_RETRY_SECONDS}\")\n"
    "#elseif($status >= 400 && $status < 500)#set($context.responseOverride.status = $status)\n"
    "#else#set($context.responseOverride.status = 502)#end\n"
    "$input.path('$.OriginalMessage')")
# Config's authorization -> API Gateway's authorization type, for every route.
AUTHORIZATION_TYPES = {"api_key": "NONE", "iam": "AWS_IAM", "jwt": "COGNITO_USER_POOLS"}
V2_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
                "FP64", "BYTES", "BF16"]
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "apiKeyId": "$context.identity.apiKeyId",
    "caller": "$context.identity.caller", "requestTime": "$context.requestTime", "method": "$context.httpMethod",
    "path": "$context.resourcePath", "status": "$context.status", "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integration.latency", "integrationStatus": "$context.integration.status",
    "error": "$context.error.message", "validationError": "$context.error.validationErrorString",
    "wafResponse": "$context.wafResponseCode", "bytes": "$context.responseLength",
}


@dataclass(frozen=True)
class ApiTierSpec:
    name: str
    rate_per_second: float
    burst: int
    quota_per_day: int


@dataclass(frozen=True)
class SageMakerBackend:
    endpoint_name: pulumi.Input[str]
    endpoint_arn: pulumi.Input[str]
    inference_component_name: str | None = None
    """Set: every call names this component (X-Amzn-SageMaker-Inference-Component)."""


@dataclass(frozen=True)
class PrivateHttpBackend:
    """A service in the VPC behind a REST API VPC link (an NLB). `base_url`'s host is what TLS verifies."""
    vpc_link_id: pulumi.Input[str]
    base_url: pulumi.Input[str]  # https://reranker.ml.example.internal (no path)


@dataclass(frozen=True)
class InferenceApiArgs:
    api_name: str
    region: str
    model_name: str
    authorization: Literal["api_key", "iam", "jwt"]
    tiers: list[ApiTierSpec]
    kms_key_arn: pulumi.Input[str]
    max_body_bytes: int
    log_retention_days: int = 90
    enable_waf: bool = True
    waf_rate_limit_per_ip: int = 2000
    cognito_user_pool_arn: str | None = None
    domain_name: str | None = None
    certificate_arn: str | None = None
    stage_name: str = "v1"
    logging_ready: Sequence[pulumi.Resource] = ()
    """What must exist before a stage may log: the account's CloudWatch role (ApiGatewayAccount)."""
    async_route: bool = False
    """SageMaker async endpoints: `POST .../infer-async` calls InvokeEndpointAsync with the caller's S3 input."""
    openai: OpenAiRequestShape | None = None
    """A language model: the OpenAI-compatible routes instead of the v2 one."""
    tags: dict[str, str] = field(default_factory=dict)
    """On the REST API, beside the provider's: what it is expected to carry (names.USAGE_TAG)."""


@dataclass(frozen=True)
class Answer:
    """One way an integration's answer leaves the gateway: which backend statuses (a selection pattern; None: the
    default), the status the client sees, the headers it carries, and a mapping template where the body needs one."""
    key: str
    status: str
    pattern: str | None
    headers: tuple[str, ...] = ()
    mapped: dict[str, str] = field(default_factory=dict)
    template: str | None = None


def answers(backend: SageMakerBackend | PrivateHttpBackend) -> list[Answer]:
    """Keep the class of every answer: a client error stays a 4xx with the container's message, overload stays 429
    with Retry-After, a server error is a 502; so the gateway's 4xx/5xx metrics and alarms mean what they say."""
    def passed(*headers: str) -> dict[str, str]:
        return {f"method.response.header.{h}": f"integration.response.header.{h}" for h in headers}

    if isinstance(backend, PrivateHttpBackend):
        # The answer's content type (JSON, or binary with its header length) from the cluster's front, as it is.
        return [Answer("200", "200", None, ("Content-Type", HEADER_LENGTH), passed("Content-Type", HEADER_LENGTH)),
                Answer("429", "429", "429", (RETRY_AFTER,), passed(RETRY_AFTER)),
                Answer("400", "400", OTHER_CLIENT_ERRORS["http"]),
                Answer("502", "502", SERVER_ERRORS)]
    return [Answer("200", "200", None, ("Content-Type",), passed("Content-Type")),
            # The container answered an error: InvokeEndpoint wraps it as ModelError, whose body says its status.
            # (Method and integration responses are one per status: the template overrides this one's every time.)
            Answer("model-error", MODEL_ERROR_STATUS, MODEL_ERROR_STATUS, (RETRY_AFTER,), template=MODEL_ERROR_TEMPLATE),
            Answer("429", "429", MODEL_NOT_READY_STATUS, (RETRY_AFTER,),
                   {f"method.response.header.{RETRY_AFTER}": f"'{OVERLOAD_RETRY_SECONDS}'"}),
            Answer("400", "400", OTHER_CLIENT_ERRORS["sagemaker"]),
            Answer("502", "502", SERVER_ERRORS)]


def request_schema(max_body_bytes: int) -> dict:
    """The v2 inference request as a JSON schema (draft 4, what API Gateway validates with)."""
    # A JSON number plus its comma takes at least 2 bytes: no valid body under the limit has more elements.
    max_elements = max_body_bytes // 2
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 256},
        "shape": {"type": "array", "minItems": 1, "maxItems": 8, "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": V2_DATATYPES},
        "data": {"type": "array", "minItems": 1, "maxItems": max_elements},
        "parameters": {"type": "object"}}}
    return {"$schema": "http://json-schema.org/draft-04/schema#", "title": "InferRequest", "type": "object",
            "required": ["inputs"], "properties": {
                "id": {"type": "string", "maxLength": 128},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "minItems": 1, "maxItems": 16, "items": tensor},
                "outputs": {"type": "array", "maxItems": 16, "items": {
                    "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}}


def route_parts(method: aws.apigateway.Method, integration: aws.apigateway.Integration,
                responses: list[aws.apigateway.IntegrationResponse]) -> dict[str, list]:
    """The inputs of one route (method, integration, integration responses) that a stage snapshots."""
    return {
        "method": [method.http_method, method.authorization, method.authorizer_id, method.api_key_required,
                   method.request_models, method.request_parameters, method.request_validator_id],
        "integration": [integration.type, integration.uri, integration.connection_type, integration.connection_id,
                        integration.credentials, integration.integration_http_method, integration.request_parameters,
                        integration.request_templates, integration.passthrough_behavior,
                        integration.timeout_milliseconds, integration.tls_config],
        "responses": [[r.status_code, r.selection_pattern, r.response_templates, r.response_parameters]
                      for r in responses],
    }


def digest(parts: dict) -> pulumi.Output[str]:
    """A digest of every input a stage snapshots. A REST API deployment is a frozen copy of the API: when any of these
    changes (an integration URI after `cluster.ingress_domain` moves, a schema, an authorizer), only a new
    deployment makes the stage serve it. Resource ids alone would not change on an in-place update."""
    return pulumi.Output.json_dumps(parts).apply(lambda text: hashlib.sha256(text.encode()).hexdigest())


def configuration_fingerprint(api: aws.apigateway.RestApi, model: aws.apigateway.Model,
                              validator: aws.apigateway.RequestValidator,
                              method: aws.apigateway.Method, integration: aws.apigateway.Integration,
                              responses: list[aws.apigateway.IntegrationResponse]) -> pulumi.Output[str]:
    """The v2 route's digest (see `digest`)."""
    return digest({
        "model": [model.name, model.content_type, model.schema],
        "validator": [validator.validate_request_body, validator.validate_request_parameters],
        **route_parts(method, integration, responses),
        "api": [api.binary_media_types],
    })


class InferenceApi(pulumi.ComponentResource):
    api_id: pulumi.Output[str]
    invoke_url: pulumi.Output[str]
    stage_arn: pulumi.Output[str]

    def __init__(self, name: str, args: InferenceApiArgs, backend: SageMakerBackend | PrivateHttpBackend,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:edge:InferenceApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        api = aws.apigateway.RestApi(f"{name}-api", name=args.api_name, api_key_source="HEADER",
                                     description=f"Inference for {args.model_name}",
                                     endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(
                                         types="REGIONAL"),
                                     disable_execute_api_endpoint=bool(args.domain_name),
                                     binary_media_types=list(BINARY_MEDIA_TYPES), tags=dict(args.tags) or None,
                                     opts=child)
        authorizer_id = None
        if args.authorization == "jwt":
            if not args.cognito_user_pool_arn:
                raise ValueError(f"{args.api_name}: JWT authorization needs a Cognito user pool ARN")
            authorizer_id = aws.apigateway.Authorizer(
                f"{name}-jwt", rest_api=api.id, type="COGNITO_USER_POOLS", name="cognito",
                provider_arns=[args.cognito_user_pool_arn], identity_source="method.request.header.Authorization",
                opts=child).id
        if args.openai:
            routes, triggers = self._openai_routes(name, args, args.openai, backend, api, authorizer_id)
            route_paths = {path.replace("/", "-"): f"{path}/{verb}" for path, verb in ROUTES.items()}
        else:
            routes, triggers = self._v2_routes(name, args, backend, api, authorizer_id)
            route_paths = {route: f"v2/models/{args.model_name}/{route}/POST"
                           for route in ["infer", *(["infer-async"] if args.async_route else [])]}
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment", rest_api=api.id, triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=routes))
        access_logs = aws.cloudwatch.LogGroup(f"{name}-access", retention_in_days=args.log_retention_days,
                                              kms_key_id=args.kms_key_arn, opts=child)
        stage = aws.apigateway.Stage(
            f"{name}-stage", rest_api=api.id, deployment=deployment.id, stage_name=args.stage_name,
            xray_tracing_enabled=True,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn, format=json.dumps(ACCESS_LOG_FORMAT)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.logging_ready)))
        tier_rate = sum(t.rate_per_second for t in args.tiers)
        tier_burst = sum(t.burst for t in args.tiers)
        for route, route_path in route_paths.items():
            aws.apigateway.MethodSettings(
                f"{name}-{route}-settings", rest_api=api.id, stage_name=stage.stage_name,
                method_path=route_path,
                settings=aws.apigateway.MethodSettingsSettingsArgs(
                    metrics_enabled=True, logging_level="ERROR", data_trace_enabled=False,
                    throttling_rate_limit=tier_rate, throttling_burst_limit=tier_burst),
                opts=child)

        self.api_keys: dict[str, pulumi.Output[str]] = {}
        """Each tier's API key id (what `aws apigateway get-api-key` takes)."""
        self.api_key_values: dict[str, pulumi.Output[str]] = {}
        """Each tier's key itself, a secret: what a client sends as x-api-key."""
        for tier in args.tiers:
            plan = aws.apigateway.UsagePlan(
                f"{name}-{tier.name}", name=f"{args.api_name}-{tier.name}",
                api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=api.id, stage=stage.stage_name)],
                throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                    rate_limit=tier.rate_per_second, burst_limit=tier.burst),
                quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(limit=tier.quota_per_day, period="DAY"),
                opts=child)
            key = aws.apigateway.ApiKey(f"{name}-{tier.name}", name=f"{args.api_name}-{tier.name}", enabled=True,
                                        opts=child)
            aws.apigateway.UsagePlanKey(f"{name}-{tier.name}", key_id=key.id, key_type="API_KEY",
                                        usage_plan_id=plan.id, opts=child)
            self.api_keys[tier.name] = key.id
            self.api_key_values[tier.name] = pulumi.Output.secret(key.value)

        if args.enable_waf:
            self._web_acl(name, args, stage)
        invoke_url = stage.invoke_url
        if args.domain_name:
            domain = aws.apigateway.DomainName(
                f"{name}-domain", domain_name=args.domain_name, regional_certificate_arn=args.certificate_arn,
                security_policy="TLS_1_2",
                endpoint_configuration=aws.apigateway.DomainNameEndpointConfigurationArgs(types="REGIONAL"),
                opts=child)
            aws.apigateway.BasePathMapping(f"{name}-mapping", rest_api=api.id, stage_name=stage.stage_name,
                                           domain_name=domain.domain_name, opts=child)
            invoke_url = pulumi.Output.concat("https://", args.domain_name)

        self.api_id = api.id
        self.stage_arn = stage.arn
        # An OpenAI client's base URL is the stage's; a v2 client posts to the model's infer route.
        self.invoke_url = invoke_url if args.openai else pulumi.Output.concat(
            invoke_url, f"/v2/models/{args.model_name}/infer")
        self.register_outputs({"api_id": api.id, "invoke_url": self.invoke_url, "api_key_ids": self.api_keys})

    def _answers(self, prefix: str, api, resource, method, integration,
                 route_answers: list[Answer]) -> list[aws.apigateway.IntegrationResponse]:
        """A method and an integration response per way an answer may leave (see `answers`)."""
        responses = []
        for answer in route_answers:
            method_response = aws.apigateway.MethodResponse(
                f"{prefix}-{answer.key}", rest_api=api.id, resource_id=resource.id,
                http_method=method.http_method, status_code=answer.status,
                response_parameters={f"method.response.header.{h}": False for h in answer.headers} or None,
                opts=pulumi.ResourceOptions(parent=self))
            responses.append(aws.apigateway.IntegrationResponse(
                f"{prefix}-{answer.key}", rest_api=api.id, resource_id=resource.id,
                http_method=method.http_method, status_code=method_response.status_code,
                selection_pattern=answer.pattern, response_parameters=answer.mapped or None,
                # Templates are chosen by the request's Accept: the same one for JSON and binary clients.
                response_templates={media: answer.template for media in ("application/json", *BINARY_MEDIA_TYPES)}
                if answer.template else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[integration, method_response])))
        return responses

    def _openai_routes(self, name, args: InferenceApiArgs, shape: OpenAiRequestShape,
                       backend: SageMakerBackend | PrivateHttpBackend, api,
                       authorizer_id) -> tuple[list[pulumi.Resource], dict[str, pulumi.Output[str]]]:
        """The OpenAI-compatible routes (components/openai_routes.py): what a stage deployment snapshots, and its
        digest."""
        child = pulumi.ResourceOptions(parent=self)
        validator = aws.apigateway.RequestValidator(f"{name}-body", rest_api=api.id, name="body",
                                                    validate_request_body=True, opts=child)
        chat = aws.apigateway.Resource(f"{name}-chat", rest_api=api.id, parent_id=api.root_resource_id,
                                       path_part="chat", opts=child)
        resources = {
            "chat/completions": aws.apigateway.Resource(f"{name}-chat-completions", rest_api=api.id, parent_id=chat.id,
                                                        path_part="completions", opts=child),
            "completions": aws.apigateway.Resource(f"{name}-completions", rest_api=api.id,
                                                   parent_id=api.root_resource_id, path_part="completions", opts=child),
            "models": aws.apigateway.Resource(f"{name}-models", rest_api=api.id, parent_id=api.root_resource_id,
                                              path_part="models", opts=child)}
        schemas = {"chat/completions": ("ChatCompletionRequest", chat_schema(shape)),
                   "completions": ("CompletionRequest", completion_schema(shape))}
        invoke = self._invoke_role(name, backend) if isinstance(backend, SageMakerBackend) else None
        routes: list[pulumi.Resource] = []
        parts: dict[str, dict] = {"validator": {"body": [validator.validate_request_body]}}
        for path, verb in ROUTES.items():
            key, resource = path.replace("/", "-"), resources[path]
            request_model = None
            if path in schemas:
                title, schema = schemas[path]
                request_model = aws.apigateway.Model(f"{name}-{key}-request", rest_api=api.id, name=title,
                                                     content_type="application/json", schema=json.dumps(schema),
                                                     opts=child)
            method = aws.apigateway.Method(
                f"{name}-{key}", rest_api=api.id, resource_id=resource.id, http_method=verb,
                authorization=AUTHORIZATION_TYPES[args.authorization], authorizer_id=authorizer_id,
                api_key_required=True, request_validator_id=validator.id if request_model else None,
                request_models={"application/json": request_model.name} if request_model else None, opts=child)
            responses: list[aws.apigateway.IntegrationResponse] = []
            if isinstance(backend, PrivateHttpBackend):
                # A proxy: vLLM's statuses, headers and streamed body pass as they are.
                integration = aws.apigateway.Integration(
                    f"{name}-{key}", rest_api=api.id, resource_id=resource.id, http_method=method.http_method,
                    type="HTTP_PROXY", integration_http_method=verb, connection_type="VPC_LINK",
                    connection_id=backend.vpc_link_id, uri=pulumi.Output.concat(backend.base_url, "/v1/", path),
                    response_transfer_mode="STREAM", timeout_milliseconds=STREAM_TIMEOUT_MS,
                    tls_config=aws.apigateway.IntegrationTlsConfigArgs(insecure_skip_verification=False),
                    opts=child)
            elif request_model is None:
                # SageMaker has no GET: the gateway answers the model list itself.
                integration = aws.apigateway.Integration(
                    f"{name}-{key}", rest_api=api.id, resource_id=resource.id, http_method=method.http_method,
                    type="MOCK", request_templates={"application/json": '{"statusCode": 200}'}, opts=child)
                responses = self._answers(f"{name}-{key}", api, resource, method, integration, [Answer(
                    "200", "200", None, template=models_answer(shape.served_model))])
            else:
                assert invoke is not None
                role, role_policy = invoke
                integration = aws.apigateway.Integration(
                    f"{name}-{key}", rest_api=api.id, resource_id=resource.id, http_method=method.http_method,
                    type="AWS", integration_http_method="POST", credentials=role.arn,
                    passthrough_behavior="WHEN_NO_TEMPLATES", timeout_milliseconds=29_000,
                    uri=pulumi.Output.concat("arn:aws:apigateway:", args.region, ":runtime.sagemaker:path/endpoints/",
                                             backend.endpoint_name, "/invocations"),
                    request_parameters={
                        "integration.request.header.Content-Type": "'application/json'",
                        **({"integration.request.header.X-Amzn-SageMaker-Inference-Component":
                            f"'{backend.inference_component_name}'"} if backend.inference_component_name else {})},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]))
                responses = self._answers(f"{name}-{key}", api, resource, method, integration, answers(backend))
            routes += [method, integration, *responses]
            parts[path] = {"model": [request_model.schema] if request_model else [],
                           **route_parts(method, integration, responses),
                           "streaming": [integration.response_transfer_mode]}
        # A refused body says why, in OpenAI's error shape, instead of API Gateway's bare "Invalid request body".
        aws.apigateway.Response(
            f"{name}-bad-body", rest_api_id=api.id, response_type="BAD_REQUEST_BODY", status_code="400",
            response_templates={"application/json": json.dumps({"error": {
                "message": "the request is not a valid request for this model: $context.error.validationErrorString",
                "type": "invalid_request_error", "code": 400}})}, opts=child)
        return routes, {"configuration": digest(parts)}

    def _invoke_role(self, name: str, backend: SageMakerBackend) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The role API Gateway calls InvokeEndpoint as: this endpoint only."""
        role = aws.iam.Role(f"{name}-invoke", assume_role_policy=assume_role_policy("apigateway.amazonaws.com"),
                            opts=pulumi.ResourceOptions(parent=self))
        role_policy = aws.iam.RolePolicy(f"{name}-invoke", role=role.id, policy=render(Statement(
            sid="InvokeThisEndpointOnly", actions=["sagemaker:InvokeEndpoint"], resources=[backend.endpoint_arn])),
            opts=pulumi.ResourceOptions(parent=self))
        return role, role_policy

    def _v2_routes(self, name, args: InferenceApiArgs, backend: SageMakerBackend | PrivateHttpBackend, api,
                   authorizer_id) -> tuple[list[pulumi.Resource], dict[str, pulumi.Output[str]]]:
        """`POST /v2/models/<model>/infer` (and `infer-async`): what a stage deployment snapshots, and its digest."""
        child = pulumi.ResourceOptions(parent=self)
        parent_id = api.root_resource_id
        model_resource_id = parent_id
        for part in ("v2", "models", args.model_name, "infer"):
            model_resource_id = parent_id
            resource = aws.apigateway.Resource(f"{name}-{part}", rest_api=api.id, parent_id=parent_id, path_part=part,
                                               opts=child)
            parent_id = resource.id
        schema = request_schema(args.max_body_bytes)
        model = aws.apigateway.Model(f"{name}-infer-request", rest_api=api.id, name="InferRequest",
                                     content_type="application/json", schema=json.dumps(schema), opts=child)
        validator = aws.apigateway.RequestValidator(f"{name}-body", rest_api=api.id, name="body",
                                                    validate_request_body=True, opts=child)

        method = aws.apigateway.Method(
            f"{name}-infer", rest_api=api.id, resource_id=resource.id, http_method="POST",
            authorization=AUTHORIZATION_TYPES[args.authorization],
            authorizer_id=authorizer_id, api_key_required=True, request_validator_id=validator.id,
            # JSON bodies are validated against the schema; binary ones carry their JSON header inside the body,
            # which the container's front checks (a malformed one is a 400 from there, passed through).
            request_models={"application/json": model.name},
            request_parameters={"method.request.header.Content-Type": False,
                                f"method.request.header.{HEADER_LENGTH}": False}, opts=child)

        integration = self._integration(name, args, backend, api, resource, method)
        responses = self._answers(f"{name}-infer", api, resource, method, integration, answers(backend))
        # A refused body says why, in JSON, instead of API Gateway's bare "Invalid request body".
        aws.apigateway.Response(
            f"{name}-bad-body", rest_api_id=api.id, response_type="BAD_REQUEST_BODY", status_code="400",
            response_templates={"application/json": json.dumps({
                "error": "the request is not a valid v2 inference request",
                "detail": "$context.error.validationErrorString"})}, opts=child)

        triggers = {"configuration": configuration_fingerprint(api, model, validator, method, integration, responses)}
        routes: list[pulumi.Resource] = [method, integration, *responses]
        if args.async_route:
            if not isinstance(backend, SageMakerBackend):
                raise ValueError(f"{args.api_name}: the async route exists only for a SageMaker async endpoint")
            async_parts = self._async_route(name, args, backend, api, model_resource_id, authorizer_id)
            routes += async_parts
            triggers["async"] = pulumi.Output.json_dumps([
                [r.request_parameters for r in async_parts if isinstance(r, aws.apigateway.Method)],
                [[r.uri, r.request_parameters, r.credentials] for r in async_parts
                 if isinstance(r, aws.apigateway.Integration)]])
        return routes, triggers

    def _integration(self, name, args: InferenceApiArgs, backend: SageMakerBackend | PrivateHttpBackend, api, resource,
                     method) -> aws.apigateway.Integration:
        # Spread into two Integration calls; a misspelt key fails there as an unexpected keyword.
        common: dict[str, Any] = dict(rest_api=api.id, resource_id=resource.id, http_method=method.http_method,
                      integration_http_method="POST", passthrough_behavior="WHEN_NO_TEMPLATES",
                      timeout_milliseconds=29_000)
        # The client's content type goes on (JSON, or binary); the binary header's length goes as the v2 header to
        # KServe, and as SageMaker's custom attributes (the only other header InvokeEndpoint hands the container).
        length_header = HEADER_LENGTH if isinstance(backend, PrivateHttpBackend) else \
            "X-Amzn-SageMaker-Custom-Attributes"
        common["request_parameters"] = {
            "integration.request.header.Content-Type": "method.request.header.Content-Type",
            f"integration.request.header.{length_header}": f"method.request.header.{HEADER_LENGTH}"}
        if isinstance(backend, PrivateHttpBackend):
            # Through the VPC link to the NLB in front of the cluster's ALB; TLS is verified against base_url's host.
            return aws.apigateway.Integration(
                f"{name}-infer", type="HTTP", connection_type="VPC_LINK", connection_id=backend.vpc_link_id,
                uri=pulumi.Output.concat(backend.base_url, "/v2/models/", args.model_name, "/infer"),
                tls_config=aws.apigateway.IntegrationTlsConfigArgs(insecure_skip_verification=False),
                opts=pulumi.ResourceOptions(parent=self), **common)
        role, role_policy = self._invoke_role(name, backend)
        if backend.inference_component_name:
            common["request_parameters"] = {
                **common["request_parameters"],
                "integration.request.header.X-Amzn-SageMaker-Inference-Component":
                    f"'{backend.inference_component_name}'"}
        return aws.apigateway.Integration(
            f"{name}-infer", type="AWS", credentials=role.arn,
            uri=pulumi.Output.concat("arn:aws:apigateway:", args.region, ":runtime.sagemaker:path/endpoints/",
                                     backend.endpoint_name, "/invocations"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]), **common)

    def _async_route(self, name, args: InferenceApiArgs, backend: SageMakerBackend, api, parent_id,
                     authorizer_id) -> list[pulumi.Resource]:
        """`POST /v2/models/<model>/infer-async`: the caller has put the input in S3 and names it in
        X-Amzn-SageMaker-InputLocation (required: the gateway refuses a request without it); the answer is 202 with
        the inference id and where the result (or the failure) will be written."""
        child = pulumi.ResourceOptions(parent=self)
        resource = aws.apigateway.Resource(f"{name}-infer-async", rest_api=api.id, parent_id=parent_id,
                                           path_part="infer-async", opts=child)
        validator = aws.apigateway.RequestValidator(f"{name}-async-headers", rest_api=api.id, name="async-headers",
                                                    validate_request_parameters=True, opts=child)
        method = aws.apigateway.Method(
            f"{name}-infer-async", rest_api=api.id, resource_id=resource.id, http_method="POST",
            authorization=AUTHORIZATION_TYPES[args.authorization],
            authorizer_id=authorizer_id, api_key_required=True, request_validator_id=validator.id,
            request_parameters={f"method.request.header.{ASYNC_INPUT}": True,
                                "method.request.header.Content-Type": False,
                                f"method.request.header.{HEADER_LENGTH}": False}, opts=child)
        role = aws.iam.Role(f"{name}-invoke-async", assume_role_policy=assume_role_policy("apigateway.amazonaws.com"),
                            opts=child)
        role_policy = aws.iam.RolePolicy(f"{name}-invoke-async", role=role.id, policy=render(Statement(
            sid="QueueOnThisEndpointOnly", actions=["sagemaker:InvokeEndpointAsync"],
            resources=[backend.endpoint_arn])), opts=child)
        integration = aws.apigateway.Integration(
            f"{name}-infer-async", rest_api=api.id, resource_id=resource.id, http_method=method.http_method,
            type="AWS", integration_http_method="POST", credentials=role.arn, passthrough_behavior="WHEN_NO_TEMPLATES",
            uri=pulumi.Output.concat("arn:aws:apigateway:", args.region, ":runtime.sagemaker:path/endpoints/",
                                     backend.endpoint_name, "/async-invocations"),
            request_parameters={f"integration.request.header.{ASYNC_INPUT}": f"method.request.header.{ASYNC_INPUT}",
                                f"integration.request.header.{ASYNC_CONTENT_TYPE}":
                                    "method.request.header.Content-Type",
                                # A binary input's JSON header length, as on the realtime route: the container
                                # reads it from the custom attributes (the only header SageMaker hands it).
                                "integration.request.header.X-Amzn-SageMaker-Custom-Attributes":
                                    f"method.request.header.{HEADER_LENGTH}"},
            timeout_milliseconds=29_000, opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]))
        parts: list[pulumi.Resource] = [method, integration]
        locations = [f"X-Amzn-SageMaker-{h}" for h in ("OutputLocation", "FailureLocation")]
        for status, pattern in (("202", None), ("400", "4\\d{2}"), ("502", SERVER_ERRORS)):
            method_response = aws.apigateway.MethodResponse(
                f"{name}-infer-async-{status}", rest_api=api.id, resource_id=resource.id,
                http_method=method.http_method, status_code=status,
                response_parameters={f"method.response.header.{h}": False for h in locations}
                if status == "202" else None, opts=child)
            parts.append(aws.apigateway.IntegrationResponse(
                f"{name}-infer-async-{status}", rest_api=api.id, resource_id=resource.id,
                http_method=method.http_method, status_code=method_response.status_code, selection_pattern=pattern,
                response_parameters={f"method.response.header.{h}": f"integration.response.header.{h}"
                                     for h in locations} if status == "202" else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[integration, method_response])))
        return parts

    def _web_acl(self, name: str, args: InferenceApiArgs, stage: aws.apigateway.Stage) -> None:
        def visibility(metric: str):
            return aws.wafv2.WebAclRuleVisibilityConfigArgs(cloudwatch_metrics_enabled=True, metric_name=metric,
                                                            sampled_requests_enabled=True)

        def managed(priority: int, group: str, count_only: tuple[str, ...] = ()):
            overrides = [aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
                name=rule, action_to_use=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
                    count=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()))
                for rule in count_only]
            return aws.wafv2.WebAclRuleArgs(
                name=group, priority=priority,
                override_action=aws.wafv2.WebAclRuleOverrideActionArgs(none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                        vendor_name="AWS", name=group, rule_action_overrides=overrides or None)),
                visibility_config=visibility(group))

        acl = aws.wafv2.WebAcl(
            f"{name}-waf", scope="REGIONAL", description=f"Edge protection for {args.api_name}",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=[
                aws.wafv2.WebAclRuleArgs(
                    name="rate-per-ip", priority=0,
                    action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                    statement=aws.wafv2.WebAclRuleStatementArgs(
                        rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                            limit=args.waf_rate_limit_per_ip, aggregate_key_type="IP")),
                    visibility_config=visibility("rate-per-ip")),
                # Its SizeRestrictions_BODY blocks bodies over 8 KB, i.e. every image; the request schema and
                # API Gateway's 10 MiB ceiling bound the body instead.
                managed(1, "AWSManagedRulesCommonRuleSet", count_only=("SizeRestrictions_BODY",)),
                managed(2, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=f"{args.api_name}-waf", sampled_requests_enabled=True),
            opts=pulumi.ResourceOptions(parent=self))
        aws.wafv2.WebAclAssociation(f"{name}-waf", resource_arn=stage.arn, web_acl_arn=acl.arn,
                                    opts=pulumi.ResourceOptions(parent=self))
        # What WAF refused or would refuse (BLOCK, COUNT): the allowed requests are already in the access log.
        # Credentials never reach the log. WAF accepts only log groups named `aws-waf-logs-*`.
        waf_logs = aws.cloudwatch.LogGroup(
            f"{name}-waf-logs", name=f"aws-waf-logs-{args.api_name}", retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn, opts=pulumi.ResourceOptions(parent=self))
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-waf-logs", resource_arn=acl.arn, log_destination_configs=[waf_logs.arn],
            redacted_fields=[aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header))
                for header in ("authorization", "x-api-key")],
            logging_filter=aws.wafv2.WebAclLoggingConfigurationLoggingFilterArgs(
                default_behavior="DROP", filters=[aws.wafv2.WebAclLoggingConfigurationLoggingFilterFilterArgs(
                    behavior="KEEP", requirement="MEETS_ANY", conditions=[
                        aws.wafv2.WebAclLoggingConfigurationLoggingFilterFilterConditionArgs(
                            action_condition=aws.wafv2.WebAclLoggingConfigurationLoggingFilterFilterConditionActionConditionArgs(
                                action=action)) for action in ("BLOCK", "COUNT")])]),
            opts=pulumi.ResourceOptions(parent=self))
