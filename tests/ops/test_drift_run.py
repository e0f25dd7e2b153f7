"""drift run: the scheduled job's computation on demand, with names taken from the stack config."""

import json
from datetime import UTC, datetime

from drift.baseline import build_baseline
from drift.capture import request_features
from drift.job import NAMESPACE
from infra.ops.__main__ import main
from tests.drift.test_job import PREFIX, requests
from tests.drift.test_stats import capture_line


def test_drift_run_reads_the_stack_capture_prefix_and_publishes(aws, capsys):
    aws.s3.create_bucket(Bucket="mlserve-dev-models")
    baseline = build_baseline([request_features(r) for r in requests(400, 0.0, 1)])
    aws.s3.put_object(Bucket="mlserve-dev-models", Key="resnet50/baseline/baseline.json", Body=json.dumps(baseline))
    now = datetime.now(UTC)
    aws.s3.put_object(Bucket="mlserve-dev-models", Key=f"{PREFIX}{now:%Y/%m/%d/%H}/capture.jsonl",
                      Body="\n".join(capture_line(r) for r in requests(200, 0.8, 2)))

    assert main(["drift", "run", "--stack", "dev", "--deployment", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "input.mean" in out and "DRIFT" in out and "published 2 metric(s)" in out
    assert aws.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]


def test_drift_run_on_an_empty_window_says_so(aws, capsys):
    aws.s3.create_bucket(Bucket="mlserve-dev-models")
    baseline = build_baseline([request_features(r) for r in requests(100, 0.0, 1)])
    aws.s3.put_object(Bucket="mlserve-dev-models", Key="resnet50/baseline/baseline.json", Body=json.dumps(baseline))
    assert main(["drift", "run", "--stack", "dev", "--deployment", "resnet50"]) == 1
    assert "no captured requests in the window" in capsys.readouterr().out
