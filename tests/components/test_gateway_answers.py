"""What the gateway tells a client when the model or the service says no, and what it sends to AWS.

The statuses, error members and header names come from botocore's sagemaker-runtime model (what SageMaker answers
and reads), never restated: a header the gateway sends must be a member of the operation, in that location."""

import re

import botocore.session
import pytest

from components.inference_api import OVERLOAD_RETRY_SECONDS
from tests.harness import front_constant, stack_plan

RUNTIME = botocore.session.get_session().get_service_model("sagemaker-runtime")
INTEGRATION = "aws:apigateway/integration:Integration"
INTEGRATION_RESPONSE = "aws:apigateway/integrationResponse:IntegrationResponse"


def operation_for(uri: str):
    """The sagemaker-runtime operation an API Gateway AWS integration URI calls (`...:runtime.sagemaker:path/...`)."""
    path = "/" + uri.split(":runtime.sagemaker:path/", 1)[1]
    for name in RUNTIME.operation_names:
        op = RUNTIME.operation_model(name)
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", op.http["requestUri"])
        if op.http["method"] == "POST" and re.fullmatch(pattern, path):
            return op
    raise AssertionError(f"no sagemaker-runtime operation at {path}")


def headers_of(shape) -> dict[str, str]:
    return {m.serialization["name"].lower(): name for name, m in shape.members.items()
            if m.serialization.get("location") == "header"}


def error_status(op, code: str) -> str:
    (shape,) = [e for e in op.error_shapes if e.name == code]
    return str(shape.metadata["error"]["httpStatusCode"])


def sagemaker_integrations():
    plan = stack_plan("prod")  # prod: the realtime route and a KServe one; the async route is asserted below too
    return plan, [i for i in plan.of_type(INTEGRATION) if i.inputs["type"] == "AWS"]


def test_every_header_sent_to_sagemaker_is_a_member_of_its_operation_in_the_header():
    plan, integrations = sagemaker_integrations()
    from tests.components.test_sagemaker_async import async_plan  # the async route's integration
    integrations += [i for i in async_plan().of_type(INTEGRATION) if i.inputs["type"] == "AWS"]
    operations = set()
    for integration in integrations:
        op = operation_for(integration.inputs["uri"])
        operations.add(op.name)
        accepted = headers_of(op.input_shape)
        for key in integration.inputs.get("requestParameters", {}):
            header = key.removeprefix("integration.request.header.")
            assert header.lower() in accepted, f"{op.name} reads no header {header} (it reads {sorted(accepted)})"
    assert operations == {"InvokeEndpoint", "InvokeEndpointAsync"}


def test_the_async_route_names_the_content_type_as_invoke_endpoint_async_reads_it():
    from tests.components.test_sagemaker_async import async_plan
    (integration,) = [i for i in async_plan().of_type(INTEGRATION) if i.inputs["type"] == "AWS"
                      and i.inputs["uri"].endswith("/async-invocations")]
    accepted = headers_of(operation_for(integration.inputs["uri"]).input_shape)
    content_type = next(h for h, member in accepted.items() if member == "ContentType")
    mapped = {k.removeprefix("integration.request.header.").lower(): v
              for k, v in integration.inputs["requestParameters"].items()}
    assert mapped[content_type] == "method.request.header.Content-Type"  # x-amzn-sagemaker-content-type
    assert "content-type" not in mapped


def test_headers_passed_back_from_sagemaker_are_members_of_its_answer():
    plan, integrations = sagemaker_integrations()
    (invoke,) = integrations
    op = operation_for(invoke.inputs["uri"])
    answered = headers_of(op.output_shape)
    for response in plan.of_type(INTEGRATION_RESPONSE):
        if response.inputs.get("selectionPattern") is None and response.parent and "resnet50" in response.urn:
            for source in (response.inputs.get("responseParameters") or {}).values():
                header = source.removeprefix("integration.response.header.")
                assert header.lower() in answered


def answers_of(plan, model: str) -> dict[str, dict]:
    return {r.inputs["statusCode"]: r.inputs for r in plan.of_type(INTEGRATION_RESPONSE)
            if f"-{model}-infer-" in r.urn and "async" not in r.name}


@pytest.mark.parametrize("model,backend", [("resnet50", "sagemaker"), ("reranker", "kserve")])
def test_each_backend_status_leaves_by_exactly_one_answer_of_its_class(model, backend):
    answers = answers_of(stack_plan("prod"), model)
    for status in range(400, 600):
        chosen = [a for a in answers.values() if a.get("selectionPattern") and
                  re.fullmatch(a["selectionPattern"], str(status))]
        assert len(chosen) == 1, f"{backend} {status}: {[a['statusCode'] for a in chosen]}"
        leaves = chosen[0]["statusCode"]
        if chosen[0].get("responseTemplates"):
            continue  # SageMaker's ModelError: the template below decides
        assert leaves[0] == str(status)[0] or (status >= 500 and leaves == "502"), (status, leaves)


def test_a_container_error_through_sagemaker_keeps_its_status_and_message_and_overload_its_retry_after():
    invoke = operation_for(sagemaker_integrations()[1][0].inputs["uri"])
    answers = answers_of(stack_plan("prod"), "resnet50")
    model_error = answers[error_status(invoke, "ModelError")]  # 424
    assert model_error["selectionPattern"] == "424"
    template = model_error["responseTemplates"]["application/json"]
    members = set(RUNTIME.shape_for("ModelError").members)
    used = set(re.findall(r"\$input\.path\('\$\.(\w+)'\)", template))
    assert used == {"OriginalStatusCode", "OriginalMessage"} and used <= members
    assert "#set($context.responseOverride.status = 429)" in template
    assert f"$context.responseOverride.header.Retry-After = \"{OVERLOAD_RETRY_SECONDS}\"" in template
    assert "#set($context.responseOverride.status = $status)" in template  # any other 4xx as the container said
    assert "#else#set($context.responseOverride.status = 502)" in template
    not_ready = answers[error_status(invoke, "ModelNotReadyException")]  # 429: no copy ready (waking from zero)
    assert not_ready["responseParameters"] == {"method.response.header.Retry-After": f"'{OVERLOAD_RETRY_SECONDS}'"}


def test_the_cluster_s_overload_answer_keeps_429_and_its_retry_after():
    answers = answers_of(stack_plan("prod"), "reranker")
    assert answers["429"]["selectionPattern"] == "429"
    assert answers["429"]["responseParameters"] == {
        "method.response.header.Retry-After": "integration.response.header.Retry-After"}


def test_the_gateway_restores_the_front_s_own_retry_after():
    assert str(OVERLOAD_RETRY_SECONDS) == front_constant("OVERLOAD_RETRY_AFTER")


def test_a_binary_async_input_carries_its_json_header_length_as_the_realtime_route_does():
    from tests.components.test_sagemaker_async import async_plan
    integrations = {i.inputs["uri"].rsplit("/", 1)[-1]: i.inputs["requestParameters"]
                    for i in async_plan().of_type(INTEGRATION) if i.inputs["type"] == "AWS"}
    header = "integration.request.header.X-Amzn-SageMaker-Custom-Attributes"
    assert integrations["async-invocations"][header] == integrations["invocations"][header] == \
        "method.request.header.Inference-Header-Content-Length"
