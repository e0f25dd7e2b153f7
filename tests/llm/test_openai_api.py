"""The OpenAI-compatible routes mlserve exposes (components.vllm.ROUTES), answered by the real vLLM server."""

from __future__ import annotations

import json

from components.vllm import ROUTES

from .client import call, stream

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}]}


def test_the_routes_are_the_ones_served(llm_server):
    assert set(ROUTES) == {"/v1/chat/completions", "/v1/completions", "/v1/models"}


def test_models_lists_the_served_model_name(llm_server):
    answer = call(llm_server, "GET", "/v1/models")
    assert answer.status == 200, answer
    models = answer.json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [llm_server.served_model_name]
    assert models["data"][0]["max_model_len"] == llm_server.max_model_len


def test_chat_completion_answers_a_message_with_token_counts(llm_server):
    answer = call(llm_server, "POST", "/v1/chat/completions",
                  {"model": llm_server.served_model_name, **CHAT, "max_tokens": 8, "ignore_eos": True})
    assert answer.status == 200, answer
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == llm_server.served_model_name
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    usage = body["usage"]
    # The chat template wraps both messages: more prompt tokens than the words in them.
    assert usage["prompt_tokens"] > 5 and usage["completion_tokens"] == 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_completion_answers_text_with_token_counts(llm_server):
    answer = call(llm_server, "POST", "/v1/completions",
                  {"model": llm_server.served_model_name, "prompt": "The quick brown fox", "max_tokens": 5,
                   "ignore_eos": True})
    assert answer.status == 200, answer
    body = answer.json()
    assert body["object"] == "text_completion"
    (choice,) = body["choices"]
    assert isinstance(choice["text"], str) and choice["text"]
    assert body["usage"]["completion_tokens"] == 5 and body["usage"]["prompt_tokens"] > 0


def test_streaming_chat_sends_content_chunks_then_usage_then_done(llm_server):
    status, events = stream(llm_server, "/v1/chat/completions",
                            {"model": llm_server.served_model_name, **CHAT, "max_tokens": 12, "ignore_eos": True,
                             "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200
    payloads = [data for _, data in events]
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, payloads
    chunks = [json.loads(data) for data in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) >= 2, payloads
    # With include_usage the last chunk before [DONE] carries the counts and no choice; no other chunk does.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12, chunks[-1]
    assert all(not c.get("usage") for c in chunks[:-1])
    assert [c["choices"][0]["finish_reason"] for c in content][-1] == "length"
