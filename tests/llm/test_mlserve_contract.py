"""What mlserve renders for vLLM, checked against the real vLLM: the engine flags parse with vLLM's own parser, the
SageMaker contract (/ping, /invocations) is served, and the HTTP series the error alert reads carries the labels the
query selects on."""

from __future__ import annotations

import re

import pytest

from components import vllm
from components.model_servers import SAGEMAKER_MODEL_DIR, VllmEngine, sagemaker_vllm_env, vllm_args

from .client import call, metrics


def vllm_parser():
    pytest.importorskip("vllm", reason="needs vLLM: run in .venv-llm (make test-llm)")
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


@pytest.mark.parametrize("dtype", vllm.DTYPES)
@pytest.mark.parametrize("quantization", ("none", *vllm.QUANTIZATIONS))
def test_every_engine_setting_mlserve_offers_is_a_flag_vllm_takes(dtype, quantization):
    engine = VllmEngine("assistant", 8192, 2, 0.85, dtype, quantization, 64, 16)
    parsed = vllm_parser().parse_args(vllm_args(engine, "/mnt/models", 8080))
    assert (parsed.model_tag, parsed.served_model_name, parsed.port) == ("/mnt/models", ["assistant"], 8080)
    assert (parsed.max_model_len, parsed.tensor_parallel_size, parsed.gpu_memory_utilization) == (8192, 2, 0.85)
    assert (parsed.dtype, parsed.quantization, parsed.max_num_seqs) == (
        dtype, None if quantization == "none" else quantization, 64)


def test_the_sagemaker_environment_is_the_same_flags_as_the_entrypoint_turns_it():
    # vLLM's sagemaker-entrypoint.sh: SM_VLLM_FOO_BAR=v -> --foo-bar v, then `vllm serve --port 8080 ...`.
    env = sagemaker_vllm_env(VllmEngine("assistant", 4096, 1, 0.9, "bfloat16", "awq", 32, 8))
    argv = ["--port", "8080"]
    for key, value in env.items():
        if key.startswith("SM_VLLM_"):
            argv += ["--" + key.removeprefix("SM_VLLM_").lower().replace("_", "-"), value]
    parsed = vllm_parser().parse_args(argv)
    assert (parsed.model, parsed.port, parsed.quantization, parsed.max_model_len) == (
        SAGEMAKER_MODEL_DIR, 8080, "awq", 4096)


def test_the_server_answers_sagemakers_ping_and_invocations(llm_server):
    assert call(llm_server, "GET", "/ping").status == 200
    answer = call(llm_server, "POST", "/invocations", {
        "model": llm_server.served_model_name, "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 4})
    assert answer.status == 200, answer
    assert answer.json()["object"] == "chat.completion"
    completion = call(llm_server, "POST", "/invocations", {
        "model": llm_server.served_model_name, "prompt": "Once upon a time", "max_tokens": 4})
    assert completion.status == 200 and completion.json()["object"] == "text_completion", completion


def test_the_http_series_the_error_alert_reads_is_labelled_as_the_query_selects(llm_server):
    call(llm_server, "POST", "/v1/chat/completions", {"model": "no-such-model", "messages": [
        {"role": "user", "content": "x"}]})
    call(llm_server, "POST", "/v1/chat/completions", {"model": llm_server.served_model_name, "messages": [
        {"role": "user", "content": "hello there"}], "max_tokens": 2})
    labels = [lab for lab, _ in metrics(llm_server).get(vllm.HTTP_REQUESTS, [])]
    chat = [lab for lab in labels if 'handler="/v1/chat/completions"' in lab]
    assert chat, labels
    statuses = {s for lab in chat for s in re.findall(r'status="(\w+)"', lab)}
    assert {"2xx", "4xx"} <= statuses, chat


def test_every_vllm_setting_the_pods_get_by_environment_is_one_vllm_reads():
    # A misspelt VLLM_* variable is silently ignored: each one mlserve sets must be in vLLM's own table (vllm/envs.py).
    pytest.importorskip("vllm", reason="needs vLLM: run in .venv-llm (make test-llm)")
    import vllm.envs

    from components.model_servers import VLLM_ENV

    names = [e["name"] for e in VLLM_ENV if e["name"].startswith("VLLM_")]
    assert {"VLLM_NO_USAGE_STATS", "VLLM_CACHE_ROOT", "VLLM_HTTP_TIMEOUT_KEEP_ALIVE"} <= set(names)
    assert [n for n in names if n not in vllm.envs.environment_variables] == []
