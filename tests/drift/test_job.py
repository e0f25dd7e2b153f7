"""The drift job end to end against moto: captures in S3, a baseline, metrics in CloudWatch."""

import json
import random
from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from drift.baseline import build_baseline
from drift.capture import request_features
from drift.job import MAX_PSI_METRIC, NAMESPACE, DriftJob
from tests.drift.test_stats import capture_line, request

BUCKET = "mlserve-dev-models"
PREFIX = "data-capture/mlserve-dev-resnet50/mlserve-dev-resnet50/primary/"


def requests(n, mean, seed):
    rng = random.Random(seed)
    return [request([rng.gauss(mean, 1) for _ in range(32)]) for _ in range(n)]


@mock_aws
def test_job_reads_the_window_and_publishes_drift_per_feature():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    baseline = build_baseline([request_features(r) for r in requests(500, 0.0, 1)])
    s3.put_object(Bucket=BUCKET, Key="resnet50/baseline/baseline.json", Body=json.dumps(baseline))
    now = datetime.now(UTC)
    key = f"{PREFIX}{now:%Y/%m/%d/%H}/capture-1.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(capture_line(r) for r in requests(200, 0.5, 2)))

    job = DriftJob(bucket=BUCKET, capture_prefix=PREFIX, baseline_key="resnet50/baseline/baseline.json",
                   deployment="resnet50", window_minutes=60)
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    results = job.run(s3, cloudwatch, end=now + timedelta(seconds=1))

    assert {r.feature for r in results} == {"input.mean", "input.std"}
    assert next(r for r in results if r.feature == "input.mean").psi > 0.2
    metrics = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    names = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in metrics}
    assert (MAX_PSI_METRIC, (("Deployment", "resnet50"),)) in names
    assert ("PopulationStabilityIndex", (("Deployment", "resnet50"), ("Feature", "input.mean"))) in names


def test_window_covers_every_hour_folder_it_spans():
    job = DriftJob(bucket=BUCKET, capture_prefix=PREFIX, baseline_key="b.json", deployment="d", window_minutes=90)
    end = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    assert job.hour_prefixes(end) == [f"{PREFIX}2026/11/22/08/", f"{PREFIX}2026/11/22/09/", f"{PREFIX}2026/11/22/10/"]
