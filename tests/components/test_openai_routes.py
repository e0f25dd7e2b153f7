"""The LLM front door: the edge refuses what vLLM would refuse, streams what can stream, within API Gateway's limits."""

from __future__ import annotations

import inspect
import json
import re

import jsonschema
import pulumi_aws as aws
import pytest

from components.openai_routes import STREAM_TIMEOUT_MS, OpenAiRequestShape, chat_schema, completion_schema
from tests.components.test_llm_kserve import plan

STREAMING = OpenAiRequestShape("assistant", streaming=True, max_body_bytes=6 << 20)
BUFFERED = OpenAiRequestShape("assistant", streaming=False, max_body_bytes=6 << 20)
CHAT = {"model": "assistant", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}


def accepts(schema: dict, body: dict) -> bool:
    return jsonschema.Draft4Validator(schema).is_valid(body)


def test_a_well_formed_chat_and_completion_pass_the_edge():
    assert accepts(chat_schema(STREAMING), {**CHAT, "stream": True, "temperature": 0.7})
    assert accepts(completion_schema(STREAMING), {"model": "assistant", "prompt": "Once", "max_tokens": 8})


@pytest.mark.parametrize("body", [
    {**CHAT, "model": "gpt-4"},                       # a model this API does not serve
    {k: v for k, v in CHAT.items() if k != "messages"},
    {**CHAT, "messages": "hello"},                    # the wrong JSON type
    {**CHAT, "messages": []},
    {**CHAT, "max_tokens": "abc"},
    {**CHAT, "max_tokens": 0},
    {**CHAT, "temperature": 3},
    {**CHAT, "messages": [{"content": "no role"}]},
])
def test_a_malformed_chat_request_is_refused_at_the_edge(body):
    assert not accepts(chat_schema(STREAMING), body)


def test_a_backend_that_answers_in_one_piece_refuses_stream_true():
    assert accepts(chat_schema(BUFFERED), {**CHAT, "stream": False})
    assert not accepts(chat_schema(BUFFERED), {**CHAT, "stream": True})
    assert accepts(chat_schema(STREAMING), {**CHAT, "stream": True})


def test_the_stream_timeout_is_the_longest_the_provider_allows_for_a_streamed_integration():
    doc = inspect.getdoc(aws.apigateway.IntegrationArgs.__init__) or ""
    (allowed,) = re.findall(r"([\d,]+) when `response_transfer_mode` is `STREAM`", doc)
    assert int(allowed.replace(",", "")) == STREAM_TIMEOUT_MS


def test_kserve_routes_proxy_to_vllm_and_stream_the_generations():
    integrations = {r.inputs["uri"].rsplit("/v1/", 1)[1]: r.inputs for r in plan().resources
                    if r.type == "aws:apigateway/integration:Integration"}
    assert set(integrations) == {"chat/completions", "completions", "models"}
    for path in ("chat/completions", "completions"):
        assert integrations[path]["type"] == "HTTP_PROXY" and integrations[path]["connectionType"] == "VPC_LINK"
        assert integrations[path]["responseTransferMode"] == "STREAM"
        assert integrations[path]["timeoutMilliseconds"] == STREAM_TIMEOUT_MS
    methods = [r.inputs for r in plan().resources if r.type == "aws:apigateway/method:Method"]
    assert len(methods) == 3 and all(m["apiKeyRequired"] for m in methods)


def test_the_edge_answers_a_refused_body_in_openais_error_shape():
    (response,) = [r.inputs for r in plan().resources if r.type == "aws:apigateway/response:Response"]
    body = json.loads(response["responseTemplates"]["application/json"])
    assert response["statusCode"] == "400" and body["error"]["type"] == "invalid_request_error"
