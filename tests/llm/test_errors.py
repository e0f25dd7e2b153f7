"""A client's mistake gets a 4xx with a JSON error message from vLLM itself, never a 5xx (a 5xx would page the
on-call and count against the error SLO for what is the caller's fault)."""

from __future__ import annotations

import pytest

from .client import call

USER = [{"role": "user", "content": "hi"}]

# (case, route, body, the status vLLM 0.32.0 answers): seen on the real server, each a client error.
CASES = [
    ("body not JSON", "/v1/chat/completions", b"not json{", 400),
    ("empty body", "/v1/chat/completions", b"", 400),
    ("body a JSON array", "/v1/chat/completions", b"[1, 2]", 400),
    ("messages a string", "/v1/chat/completions", {"messages": "hello", "max_tokens": 4}, 400),
    ("max_tokens a word", "/v1/chat/completions", {"messages": USER, "max_tokens": "abc"}, 400),
    ("max_tokens negative", "/v1/chat/completions", {"messages": USER, "max_tokens": -1}, 400),
    ("missing messages", "/v1/chat/completions", {"max_tokens": 4}, 400),
    ("empty messages", "/v1/chat/completions", {"messages": [], "max_tokens": 4}, 400),
    ("unknown model", "/v1/chat/completions", {"model": "no-such-model", "messages": USER, "max_tokens": 4}, 404),
    ("max_tokens beyond max_model_len", "/v1/chat/completions", {"messages": USER, "max_tokens": 100_000}, 400),
    ("n zero", "/v1/chat/completions", {"messages": USER, "max_tokens": 2, "n": 0}, 400),
    ("top_p above 1", "/v1/chat/completions", {"messages": USER, "max_tokens": 2, "top_p": 2}, 400),
    ("temperature a word", "/v1/chat/completions", {"messages": USER, "temperature": "hot"}, 400),
    ("an empty stop string", "/v1/chat/completions", {"messages": USER, "max_tokens": 2, "stop": [""]}, 400),
    ("logit_bias out of the vocabulary", "/v1/chat/completions",
     {"messages": USER, "max_tokens": 2, "logit_bias": {"999999": 1}}, 400),
    ("tool_choice without tools", "/v1/chat/completions", {"messages": USER, "max_tokens": 2, "tool_choice": "required"},
     400),
    ("a chat template in the request", "/v1/chat/completions",
     {"messages": USER, "max_tokens": 2, "chat_template": "{{ raise_exception(1) }}"}, 400),
    ("stream_options without stream", "/v1/chat/completions",
     {"messages": USER, "max_tokens": 2, "stream_options": {"include_usage": True}}, 400),
    ("completions: body not JSON", "/v1/completions", b"xx", 400),
    ("completions: missing prompt", "/v1/completions", {"max_tokens": 4}, 400),
    ("completions: max_tokens beyond max_model_len", "/v1/completions", {"prompt": "hi", "max_tokens": 100_000}, 400),
    ("completions: a token id out of the vocabulary", "/v1/completions", {"prompt": [99999], "max_tokens": 2}, 400),
    ("completions: prompt beyond max_model_len", "/v1/completions", {"prompt": "the " * 2000, "max_tokens": 4}, 400),
]


@pytest.mark.parametrize(("case", "route", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_a_malformed_request_gets_a_4xx_with_a_json_error(llm_server, case, route, body, status):
    if isinstance(body, dict):
        body = {"model": llm_server.served_model_name, **body}
    answer = call(llm_server, "POST", route, body)
    assert 400 <= answer.status < 500, f"{case}: {answer}"
    assert answer.status == status, f"{case}: {answer}"
    error = answer.json()["error"]
    assert isinstance(error["message"], str) and error["message"], answer
    assert error["code"] == status


def test_a_body_that_is_not_utf8_gets_a_400_in_fastapis_shape_not_openais(llm_server):
    """Seen: vLLM leaves this one to FastAPI, whose error is {"detail": ...}, not {"error": {...}}."""
    answer = call(llm_server, "POST", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\xff"}]}')
    assert answer.status == 400, answer
    assert isinstance(answer.json()["detail"], str)


def test_a_body_that_is_not_declared_json_gets_a_400(llm_server):
    answer = call(llm_server, "POST", "/v1/chat/completions",
                  b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}', content_type="text/plain")
    assert answer.status == 400, answer
    assert "application/json" in answer.json()["error"]["message"]


def test_prompt_and_max_tokens_together_beyond_max_model_len_are_cut_to_fit_not_refused(llm_server):
    """Seen: vLLM 0.32 refuses max_tokens beyond max_model_len, but a prompt plus max_tokens beyond it is answered,
    the output cut at the context's end (finish_reason "length")."""
    answer = call(llm_server, "POST", "/v1/completions",
                  {"model": llm_server.served_model_name, "prompt": "the " * 300, "max_tokens": 500,
                   "ignore_eos": True})
    assert answer.status == 200, answer
    body = answer.json()
    assert body["usage"]["total_tokens"] == llm_server.max_model_len
    assert body["choices"][0]["finish_reason"] == "length"


LENIENT = [
    ("a role it does not know", {"messages": [{"role": "wizard", "content": "hi"}]}, True),
    ("a message without content", {"messages": [{"role": "user"}]}, True),
    ("no model (the one served is used)", {"messages": USER}, False),
]


@pytest.mark.parametrize(("case", "body", "named"), LENIENT, ids=[c[0] for c in LENIENT])
def test_what_vllm_accepts_although_the_openai_api_would_not(llm_server, case, body, named):
    """Seen with vLLM 0.32.0: answered 200. A gateway request schema that wants these refused must refuse them
    itself."""
    body = {**({"model": llm_server.served_model_name} if named else {}), "max_tokens": 2, **body}
    answer = call(llm_server, "POST", "/v1/chat/completions", body)
    assert answer.status == 200, f"{case}: {answer}"
    assert answer.json()["model"] == llm_server.served_model_name
