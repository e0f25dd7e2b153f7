"""`python -m infra.ops profile` for a language model: the CLI's wiring to infra/ops/profile_llm.py.

What is tested here is the wiring: the deployment's served model name, SLOs and limits reach the sweep, the request
carries the caller's headers and sizes, the report and the printed lines agree, and the lines to paste name the
deployment's keys. The server is a stand-in (tests/ops/openai_standin.py) whose pace is its own; what vLLM itself
measures is tests/llm's, against the real server in .venv-llm. The lines' logic is also checked on steps given
here as data (not measurements), with the recommendation worked out by hand.
"""

import json
import re

import pytest

from infra.ops.__main__ import llm_config_commands, main
from infra.ops.profile_llm import LEGEND, LlmStep, config_lines, recommend
from tests.harness import dump_yaml
from tests.ops.conftest import config_from, dev_raw
from tests.ops.llm_folder import DEPLOYMENT, EXAMPLE, STACK, llm_config, llm_raw
from tests.ops.openai_standin import running


def profile(*extra):
    return main(["profile", "--stack", STACK, "--config-file", str(EXAMPLE), "--deployment", DEPLOYMENT, *extra])


def test_a_sweep_sends_the_deployments_model_and_the_callers_sizes_and_prints_what_the_report_holds(tmp_path, capsys):
    report = tmp_path / "profile.json"
    with running(model=DEPLOYMENT) as server:  # llm.served_model_name unset: clients name the deployment
        code = profile("--url", server.url, "--header", "x-api-key:k-123", "--concurrency", "2", "1",
                       "--seconds", "0.4", "--max-requests", "6", "--prompt-tokens", "12", "--max-tokens", "5",
                       "--report", str(report))
        sent = list(server.requests)
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    assert "profile: warning: 127.0.0.1 is a server on this machine" in captured.err
    assert sent and all(r["body"]["model"] == "assistant" and r["x-api-key"] == "k-123" for r in sent)
    assert all(r["body"]["max_tokens"] == 5 and r["body"]["stream"] is True and r["body"]["ignore_eos"] is True
               and len(r["body"]["messages"][0]["content"].split()) == 12 for r in sent)
    document = json.loads(report.read_text())
    assert document["model"] == "assistant" and document["target"] == f"{server.url}/v1/chat/completions"
    assert (document["prompt_tokens"], document["max_tokens"]) == (12, 5)
    assert [s["concurrency"] for s in document["steps"]] == [1, 2]  # sorted
    assert all(s["requests"] > 0 and s["errors"] == 0 and s["mean_output_tokens"] == 5 for s in document["steps"])
    rec = document["recommendation"]
    assert rec["slo"] == {"ttft_p99_ms": 1500, "itl_p99_ms": 80}  # the deployment's slo.ttft_p99_ms and itl_p99_ms
    assert LEGEND in out
    assert len(re.findall(r"^concurrency +\d+: ", out, re.M)) == 2
    printed = re.search(r"pulumi config set --stack llm --path 'mlserve:deployments\[0\]\.llm\.tokens_per_second_at_slo'"
                        r" ([\d.]+)$", out, re.M)
    assert printed and float(printed.group(1)) == pytest.approx(rec["tokens_per_second"], abs=0.05), out
    # KServe scales a language model on vLLM's queue: the concurrency is said, not given to paste.
    assert f"# not to paste: {rec['concurrency']} streams per replica met the SLOs" in out
    assert "autoscaling.target_concurrency'" not in out
    assert "(measured on this machine, not on the deployment's instance type" in out


def test_slos_no_step_can_meet_exit_1_and_say_which(capsys):
    with running(model=DEPLOYMENT, gap_s=0.02) as server:
        code = profile("--url", server.url, "--concurrency", "1", "--seconds", "0.3", "--max-requests", "2",
                       "--max-tokens", "3", "--itl-p99-ms", "1")
    out = capsys.readouterr().out
    assert code == 1
    assert "no step met TTFT p99 <= 1500 ms and ITL p99 <= 1 ms without errors" in out
    assert "pulumi config set" not in out


def test_a_server_serving_another_model_answers_nothing_and_says_so(capsys):
    with running(model="some-other-model") as server:
        code = profile("--url", server.url, "--concurrency", "1", "--seconds", "0.2", "--max-requests", "2")
    warning, err = capsys.readouterr().err.splitlines()  # the local-server warning, then the one line
    assert code == 2 and warning.startswith("profile: warning:") and "Traceback" not in err
    assert f"no request to {server.url}/v1/chat/completions was answered (404:" in err
    assert "and 'assistant' the model it serves?" in err


@pytest.mark.parametrize("argv, message", [
    (["--sigv4"], "--sigv4: a tensor model's option(s); assistant is a language model (runtime vllm)"),
    (["--p99-ms", "100", "--batch", "4"], "--batch, --p99-ms: a tensor model's option(s)"),
    (["--prompt-tokens", "8000", "--max-tokens", "400"], "exceed the deployment's llm.max_model_len 8192"),
    (["--seconds", "500"], "--seconds must be in (0, 120]"),
    (["--max-tokens", "0"], "--max-tokens at least 1"),
])
def test_bad_arguments_for_a_language_model_exit_2_in_one_line(argv, message, capsys):
    assert profile("--url", "http://127.0.0.1:9", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_tensor_deployment_refuses_the_token_slos(capsys):
    assert main(["profile", "--stack", "dev", "--deployment", "resnet50", "--url", "http://127.0.0.1:9",
                 "--ttft-p99-ms", "100"]) == 2
    assert "--ttft-p99-ms are a language model's (runtime vllm); resnet50 is a tensor model" in capsys.readouterr().err


def given_steps():
    """Steps given as data (not measured): at concurrency 4 both p99s are within 1500/80 ms, at 8 the TTFT is not."""
    return [LlmStep(2, requests=20, seconds=2.0, output_tokens=2000, ttft_ms=[300.0] * 20, itl_ms=[20.0] * 400),
            LlmStep(4, requests=30, seconds=2.0, output_tokens=3000, ttft_ms=[700.0] * 30, itl_ms=[40.0] * 600),
            LlmStep(8, requests=40, seconds=2.0, output_tokens=4000, ttft_ms=[2000.0] * 40, itl_ms=[60.0] * 800)]


def test_the_lines_for_a_kserve_llm_paste_its_tokens_per_second_and_only_say_its_concurrency():
    rec = recommend(given_steps(), 1500, 80)
    assert (rec["concurrency"], rec["tokens_per_second"]) == (4, 1500.0)  # 3000 tokens / 2 s
    assert llm_config_commands("llm", 0, llm_config().deployments[0], config_lines(rec)) == [
        "# not to paste: 4 streams per replica met the SLOs, but KServe scales a language model on vLLM's waiting "
        "requests and KV-cache use (llm.scale_at_waiting, llm.scale_at_kv_cache_percent), not on "
        "autoscaling.target_concurrency",
        "pulumi config set --stack llm --path 'mlserve:deployments[0].llm.tokens_per_second_at_slo' 1500.0"]


def test_the_lines_for_a_sagemaker_llm_set_its_concurrency_and_remove_its_other_target():
    raw = dev_raw()
    d = raw["mlserve:deployments"][0]
    d.update(runtime="vllm", llm={"weights_gib": 8, "max_model_len": 4096}, drift={"enabled": False})
    d["model"] = {"uri": "s3://mlserve-dev-models/resnet50/0123456789abcdef/", "format": "safetensors",
                  "sha256": "0" * 64}
    d["slo"].update(ttft_p99_ms=1500, itl_p99_ms=80, p99_latency_ms=60000)
    deployment = config_from(raw).deployments[0]
    assert deployment.autoscaling.max_rps_per_instance_at_slo == 180  # dev's target, kept from the tensor model
    assert llm_config_commands("dev", 0, deployment, config_lines(recommend(given_steps(), 1500, 80))) == [
        "pulumi config set --stack dev --path 'mlserve:deployments[0].autoscaling.target_concurrency' 4",
        "pulumi config rm --stack dev --path 'mlserve:deployments[0].autoscaling.max_rps_per_instance_at_slo'  "
        "# exactly one autoscaling target",
        "pulumi config set --stack dev --path 'mlserve:deployments[0].llm.tokens_per_second_at_slo' 1500.0"]


def test_the_lines_for_the_sagemaker_llm_example_set_its_concurrency_per_copy():
    from infra.config.loader import read_stack_file
    from tests.harness import config_of

    cfg = config_of(read_stack_file(EXAMPLE.with_name("Pulumi.llm-sagemaker.yaml")), "llm-sagemaker")
    assert llm_config_commands("llm-sagemaker", 0, cfg.deployments[0],
                               config_lines(recommend(given_steps(), 1500, 80))) == [
        "pulumi config set --stack llm-sagemaker --path 'mlserve:deployments[0].autoscaling.target_concurrency' 4",
        "pulumi config set --stack llm-sagemaker --path 'mlserve:deployments[0].llm.tokens_per_second_at_slo' "
        "1500.0"]


def test_a_served_model_name_is_what_the_requests_name(tmp_path, capsys):
    raw = llm_raw()
    raw["mlserve:deployments"][0]["llm"]["served_model_name"] = "acme-chat"
    stack_file = tmp_path / "Pulumi.llm.yaml"
    stack_file.write_text(dump_yaml(raw))
    with running(model="acme-chat") as server:
        code = main(["profile", "--stack", STACK, "--config-file", str(stack_file), "--deployment", DEPLOYMENT,
                     "--url", server.url, "--concurrency", "1", "--seconds", "0.2", "--max-requests", "1",
                     "--max-tokens", "2"])
        assert {r["body"]["model"] for r in server.requests} == {"acme-chat"}
    assert code == 0, capsys.readouterr().out


@pytest.mark.parametrize("base,url", [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1/chat/completions"),
    ("https://abc.execute-api.us-east-1.amazonaws.com/v1", "https://abc.execute-api.us-east-1.amazonaws.com/v1/chat/completions"),
])
def test_a_server_url_and_an_openai_base_url_reach_the_same_route(base, url):
    # The gateway's stage URL is an OpenAI base URL (it ends in /v1, the stage): no /v1/v1.
    from infra.ops.profile_llm import LlmTarget

    assert LlmTarget(base, "assistant").chat_url == url
