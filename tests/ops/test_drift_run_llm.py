"""drift run for a language model: `infra.ops drift run` reads its captures as OpenAI bodies (payload kind openai),
as its scheduled job does (MLSERVE_PAYLOAD_KIND=openai), from the KServe deployment's capture prefix."""

import json
from datetime import UTC, datetime

from drift.__main__ import main as drift_main
from drift.baseline import build_baseline
from drift.capture import request_features
from drift.job import MAX_PSI_METRIC, NAMESPACE
from infra.ops.__main__ import main
from tests.drift.test_job import requests
from tests.drift.test_llm_features import capture_line, traffic, write_reference
from tests.harness import dump_yaml
from tests.ops.llm_folder import BUCKET, DEPLOYMENT, STACK, llm_raw

BASELINE_KEY = f"{DEPLOYMENT}/baseline/baseline.json"
PREFIX = f"data-capture/mlserve-{STACK}-{DEPLOYMENT}/mlserve-{STACK}-{DEPLOYMENT}/primary/"


def watched_stack(tmp_path):
    raw = llm_raw()
    raw["mlserve:deployments"][0].update(
        data_capture={"enabled": True, "sample_percent": 10},
        drift={"enabled": True, "baseline_uri": f"s3://{BUCKET}/{BASELINE_KEY}", "psi_alarm_threshold": 0.2})
    path = tmp_path / "Pulumi.llm.yaml"
    path.write_text(dump_yaml(raw))
    return path


def run(stack_file):
    return main(["drift", "run", "--stack", STACK, "--config-file", str(stack_file), "--deployment", DEPLOYMENT])


def captures(aws, pairs):
    now = datetime.now(UTC)
    aws.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{now:%Y/%m/%d/%H}/capture.jsonl",
                      Body="\n".join(capture_line(request, response, streamed) for request, response, streamed in pairs))


def test_an_llm_deployments_captures_are_read_as_openai_bodies_and_published(aws, tmp_path, capsys):
    stack_file = watched_stack(tmp_path)
    aws.s3.create_bucket(Bucket=BUCKET)
    write_reference(tmp_path, traffic(range(500)))
    baseline = tmp_path / "baseline.json"
    assert drift_main(["baseline", "--payload", "openai", "--reference", str(tmp_path / "requests.jsonl"),
                       "--responses", str(tmp_path / "responses.jsonl"), "--out", str(baseline)]) == 0
    aws.s3.put_object(Bucket=BUCKET, Key=BASELINE_KEY, Body=baseline.read_bytes())
    captures(aws, traffic(range(500, 700), extra_chars=400))  # prompts 400 characters longer than the reference's
    capsys.readouterr()

    assert run(stack_file) == 0
    out = capsys.readouterr().out
    prompt_chars = next(line for line in out.splitlines() if line.startswith("prompt.chars"))
    assert prompt_chars.endswith("DRIFT") and "n=200" in prompt_chars
    assert "(OpenAI request and response bodies)" in out
    metrics = aws.cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=MAX_PSI_METRIC)["Metrics"]
    assert [m["Dimensions"] for m in metrics] == [[{"Name": "Deployment", "Value": DEPLOYMENT}]]


def test_a_tensor_baseline_is_refused_for_an_llm_deployment(aws, tmp_path, capsys):
    stack_file = watched_stack(tmp_path)
    aws.s3.create_bucket(Bucket=BUCKET)
    tensor = build_baseline([request_features(r) for r in requests(100, 0.0, 1)])
    aws.s3.put_object(Bucket=BUCKET, Key=BASELINE_KEY, Body=json.dumps(tensor))
    captures(aws, traffic(range(50)))
    assert run(stack_file) == 1
    out = capsys.readouterr().out
    assert f"was built from tensor payloads, but the drift job of {DEPLOYMENT} reads openai payloads" in out
