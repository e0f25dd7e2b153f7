"""The payload kind switch: a deployment's drift job reads `tensor` (the default) or `openai` bodies, from its
environment (what DriftMonitor sets) or `--payload`; baselines record their kind and a job refuses the other kind's
in one clear line; the LLM baseline CLI says what is wrong with its files the same way."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from drift.__main__ import main
from drift.baseline import BaselineError, build_baseline
from drift.capture import request_features
from drift.job import PAYLOAD_ENV, DriftJob, handler
from tests.drift.test_job import requests
from tests.drift.test_llm_features import capture_line, chat_request, chat_stream, rows_of, traffic

BUCKET = "mlserve-prod-models"
PREFIX = "data-capture/mlserve-prod-assistant/mlserve-prod-assistant/primary/"
ENV = {"MLSERVE_BUCKET": BUCKET, "MLSERVE_CAPTURE_PREFIX": PREFIX, "MLSERVE_BASELINE_KEY": "b.json",
       "MLSERVE_DEPLOYMENT": "assistant", "MLSERVE_WINDOW_MINUTES": "60", "MLSERVE_METRIC_NAMESPACE": "mlserve/Drift"}


def tensor_baseline():
    return build_baseline([request_features(r) for r in requests(100, 0.0, 1)])


def openai_baseline(n=100):
    return build_baseline([row for request, response, streamed in traffic(range(n))
                           for row in rows_of(request, response, streamed)], payload="openai")


def test_the_job_reads_its_payload_kind_from_the_environment_and_refuses_an_unknown_one():
    assert DriftJob.from_environment(ENV).payload == "tensor"
    assert DriftJob.from_environment({**ENV, PAYLOAD_ENV: "openai"}).payload == "openai"
    with pytest.raises(ValueError, match="payload kind 'llm' is not one of tensor, openai"):
        DriftJob.from_environment({**ENV, PAYLOAD_ENV: "llm"})


def test_the_drift_monitor_sets_the_variable_the_job_reads_and_only_for_an_llm():
    """The component under Pulumi's mock engine: an openai deployment's function carries the kind; a tensor one's
    environment is as it was before the switch existed."""
    from components.drift_monitor import DriftMonitor, DriftMonitorArgs
    from infra.plan.engine import run

    def plan(kind):
        args = DriftMonitorArgs(deployment="assistant", bucket_name=BUCKET, capture_prefix=PREFIX,
                                baseline_key="assistant/baseline/baseline.json", code_path="drift",
                                kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/k", topic_arn="arn:aws:sns:t",
                                account_id="111122223333", payload_kind=kind)
        declared = run(lambda: (DriftMonitor("mlserve-prod-assistant", args), {})[1], stack="prod",
                       region="us-east-1")
        (function,) = [r for r in declared.resources if r.type == "aws:lambda/function:Function"]
        return function.inputs["environment"]["variables"]

    llm = plan("openai")
    assert llm[PAYLOAD_ENV] == "openai" and DriftJob.from_environment(llm).payload == "openai"
    tensor = plan("tensor")
    assert PAYLOAD_ENV not in tensor and DriftJob.from_environment(tensor).payload == "tensor"


def test_baselines_record_their_kind_and_one_without_it_is_a_tensor_baseline():
    assert tensor_baseline()["payload"] == "tensor" and openai_baseline()["payload"] == "openai"
    assert all(spec.get("optional") for spec in openai_baseline()["features"].values())
    assert not any(spec.get("optional") for spec in tensor_baseline()["features"].values())


@mock_aws
def test_a_job_refuses_the_other_kinds_baseline_in_one_line():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(tensor_baseline()))
    with pytest.raises(BaselineError) as refused:
        DriftJob(BUCKET, PREFIX, "b.json", "assistant", payload="openai").run(s3, cloudwatch)
    assert str(refused.value) == (
        f"s3://{BUCKET}/b.json was built from tensor payloads, but the drift job of assistant reads openai payloads "
        f"({PAYLOAD_ENV}): build the baseline with `python -m drift baseline --payload openai`")
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(openai_baseline()))
    with pytest.raises(BaselineError, match="was built from openai payloads, but the drift job of assistant reads "
                                            "tensor payloads"):
        DriftJob(BUCKET, PREFIX, "b.json", "assistant").run(s3, cloudwatch)
    older = {key: value for key, value in tensor_baseline().items() if key != "payload"}  # before the switch
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(older))
    with pytest.raises(BaselineError, match="was built from tensor payloads"):
        DriftJob(BUCKET, PREFIX, "b.json", "assistant", payload="openai").run(s3, cloudwatch)
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=b"\x89PNG")
    with pytest.raises(BaselineError, match="b.json is not JSON"):
        DriftJob(BUCKET, PREFIX, "b.json", "assistant").run(s3, cloudwatch)


@mock_aws
def test_the_lambda_handler_says_a_refusal_in_one_line_and_returns_it(monkeypatch, capsys):
    for name, value in {**ENV, PAYLOAD_ENV: "openai", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(tensor_baseline()))
    result = handler({}, None)
    assert "was built from tensor payloads" in result["error"]
    assert capsys.readouterr().err.splitlines() == [f"drift: {result['error']}"]


@mock_aws
def test_the_cli_runs_an_llm_deployment_and_says_what_it_skipped_and_could_not_compare(monkeypatch, capsys):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(openai_baseline(500)))
    hello = chat_request([{"role": "user", "content": "Hello"}], max_tokens=256, temperature=0.0, stream=True)
    lines = [capture_line(hello, chat_stream(["Hi", "!"], include_usage=False), streamed=True)] * 20 + ["[1, 2]"]
    now = datetime.now(UTC) - timedelta(seconds=1)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{now:%Y/%m/%d/%H}/c.jsonl", Body="\n".join(lines))
    run = ["run", "--bucket", BUCKET, "--capture-prefix", PREFIX, "--baseline-key", "b.json",
           "--deployment", "assistant", "--payload", "openai"]
    assert main(run) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"drift: skipped s3://{BUCKET}/{PREFIX}{now:%Y/%m/%d/%H}/c.jsonl, line 21: not a SageMaker capture record "
        "(a JSON object)",
        "drift: skipped 1 of 21 capture line(s) in the window: not openai bodies",
        # streams without usage have no token counts: compared are the other features, the absent ones named
        "drift: not compared, no captured value in the window: output:completion.tokens, prompt.tokens"]
    assert "prompt.chars" in out and "n=20" in out
    assert main(run[:-1] + ["tensor"]) == 1
    assert "was built from openai payloads" in capsys.readouterr().err


@mock_aws
def test_a_window_of_nothing_but_unreadable_lines_says_so_with_the_first_reason():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(openai_baseline()))
    now = datetime.now(UTC)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{now:%Y/%m/%d/%H}/c.jsonl", Body="{not json\n{nor this")
    said: list[str] = []
    with pytest.raises(BaselineError, match=r"no readable captured requests in the window: all 2 line\(s\) were "
                                            r"skipped \(the first: s3://.*c\.jsonl, line 1: not JSON"):
        DriftJob(BUCKET, PREFIX, "b.json", "assistant", payload="openai").run(
            s3, boto3.client("cloudwatch", region_name="us-east-1"), end=now + timedelta(seconds=1), say=said.append)
    assert said[-1] == "drift: skipped 2 of 2 capture line(s) in the window: not openai bodies"


def write(path, bodies):
    path.write_text("\n".join(json.dumps(body) for body in bodies))
    return str(path)


def test_the_llm_baseline_cli_refuses_what_it_cannot_pair_or_read(tmp_path, capsys):
    pairs = traffic(range(60))
    requests_file = write(tmp_path / "requests.jsonl", [request for request, _, _ in pairs])
    responses_file = write(tmp_path / "responses.jsonl", [response for _, response, _ in pairs])
    out = str(tmp_path / "baseline.json")
    base = ["baseline", "--payload", "openai", "--reference", requests_file, "--out", out]
    assert main(base) == 0  # requests alone: the request features
    assert "output:error" not in json.loads((tmp_path / "baseline.json").read_text())["features"]
    assert main([*base, "--responses", responses_file, "--output", "p=classes"]) == 2
    assert "--output names a tensor output" in capsys.readouterr().err
    short = write(tmp_path / "short.jsonl", [response for _, response, _ in pairs[:59]])
    assert main([*base, "--responses", short]) == 1
    assert capsys.readouterr().err.strip() == (
        f"drift: {requests_file} has 60 request(s) and {short} 59 response(s): give the server's response to each "
        "request, in the same order")
    odd = write(tmp_path / "odd.jsonl", [response for _, response, _ in pairs[:59]] + [{"outputs": []}])
    assert main([*base, "--responses", odd]) == 1
    assert capsys.readouterr().err.strip() == (
        f"drift: {odd}, line 60: the response is neither an OpenAI completion (no 'choices') nor an error object")
    tensor = write(tmp_path / "tensor.jsonl", requests(60, 0.0, 1))
    assert main(["baseline", "--payload", "openai", "--reference", tensor, "--out", out]) == 1
    assert "line 1: the request is not an OpenAI chat or completions body" in capsys.readouterr().err
