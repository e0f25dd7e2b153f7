"""The OpenAI-compatible routes of an LLM deployment's API: what InferenceApi declares instead of the v2 route.

`POST /chat/completions`, `POST /completions`, `GET /models` under the stage (`v1`), so a client's base URL is the
stage URL (`https://<api>.execute-api.<region>.amazonaws.com/v1`), as OpenAI's SDKs expect.

- KServe: HTTP_PROXY through the VPC link to vLLM, with `responseTransferMode: STREAM`: tokens reach the client as vLLM
  writes them. API Gateway streams only proxy integrations (HTTP_PROXY, AWS_PROXY), for at most 15 minutes, with a
  5-minute idle timeout on Regional APIs and 2 MB/s after the first 10 MB (API Gateway's response streaming docs);
  the integration timeout is the streaming maximum (900,000 ms, pulumi_aws's Integration documentation). Statuses
  pass through as vLLM answers them: its 400 for a malformed request stays a 400.
- SageMaker: InvokeEndpoint (an AWS integration, which API Gateway does not stream) to vLLM's `/invocations`, which
  routes by body shape (messages: chat; prompt: completion). The request schema refuses `"stream": true` there with a
  message pointing at InvokeEndpointWithResponseStream; `GET /models` is answered by the gateway itself (MOCK).

Request bodies are validated at the edge against a schema that names the served model, so a wrong model or a
malformed body is a 400 before any GPU sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import vllm

STREAM_TIMEOUT_MS = 900_000
"""The longest a streamed integration may run (pulumi_aws Integration: 900,000 ms when STREAM)."""
ROUTES = {route.removeprefix("/v1/"): method for route, method in vllm.ROUTES.items()}
"""Path under the stage (the stage is OpenAI's /v1) -> method: vLLM's routes."""
MAX_MESSAGES = 1024


@dataclass(frozen=True)
class OpenAiRequestShape:
    served_model: str
    streaming: bool
    """False: the backend answers in one piece (SageMaker through the gateway), so `stream: true` is refused."""
    max_body_bytes: int


def _stream_property(shape: OpenAiRequestShape) -> dict:
    if shape.streaming:
        return {"type": "boolean"}
    return {"type": "boolean", "enum": [False],
            "description": "streamed answers: InvokeEndpointWithResponseStream (this route answers in one piece)"}


def chat_schema(shape: OpenAiRequestShape) -> dict:
    """OpenAI's chat request, as much as the edge can refuse cheaply (draft 4: API Gateway's validator)."""
    content = {"type": ["string", "array", "null"]}
    message = {"type": "object", "required": ["role"], "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": content}}
    return {"$schema": "http://json-schema.org/draft-04/schema#", "title": "ChatCompletionRequest", "type": "object",
            "required": ["model", "messages"], "properties": {
                "model": {"type": "string", "enum": [shape.served_model]},
                "messages": {"type": "array", "minItems": 1, "maxItems": MAX_MESSAGES, "items": message},
                **_common_properties(shape)}}


def completion_schema(shape: OpenAiRequestShape) -> dict:
    return {"$schema": "http://json-schema.org/draft-04/schema#", "title": "CompletionRequest", "type": "object",
            "required": ["model", "prompt"], "properties": {
                "model": {"type": "string", "enum": [shape.served_model]},
                "prompt": {"type": ["string", "array"], "minLength": 1, "minItems": 1},
                **_common_properties(shape)}}


def _common_properties(shape: OpenAiRequestShape) -> dict:
    return {"stream": _stream_property(shape),
            "max_tokens": {"type": ["integer", "null"], "minimum": 1},
            "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 16}}


def models_answer(served_model: str) -> str:
    """`GET /models` as vLLM answers it (an OpenAI list), for a backend the gateway cannot ask."""
    return json.dumps({"object": "list", "data": [{"id": served_model, "object": "model", "owned_by": "mlserve"}]})
