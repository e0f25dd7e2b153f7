"""The scheduled drift job: read the window's captured requests from S3, compare with the baseline, publish metrics.

Runs as the Lambda handler `drift.job.handler` (EventBridge schedule) and from `python -m drift run`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .baseline import FeatureDrift, compare
from .capture import parse_capture_lines

NAMESPACE = "mlserve/Drift"  # the default; DriftMonitor passes components.names.DRIFT_METRIC_NAMESPACE (a test pins them)
PSI_METRIC = "PopulationStabilityIndex"
MAX_PSI_METRIC = "MaxPopulationStabilityIndex"
MAX_PREDICTION_PSI_METRIC = "MaxPredictionStabilityIndex"
KS_METRIC = "KolmogorovSmirnovStatistic"


@dataclass(frozen=True)
class DriftJob:
    bucket: str
    capture_prefix: str  # <destination prefix><endpoint>/<variant>/ (SageMaker adds yyyy/mm/dd/hh/)
    baseline_key: str
    deployment: str
    window_minutes: int = 60
    namespace: str = NAMESPACE

    @classmethod
    def from_environment(cls, env=os.environ) -> DriftJob:
        return cls(bucket=env["MLSERVE_BUCKET"], capture_prefix=env["MLSERVE_CAPTURE_PREFIX"],
                   baseline_key=env["MLSERVE_BASELINE_KEY"], deployment=env["MLSERVE_DEPLOYMENT"],
                   window_minutes=int(env.get("MLSERVE_WINDOW_MINUTES", "60")),
                   namespace=env.get("MLSERVE_METRIC_NAMESPACE", NAMESPACE))

    def hour_prefixes(self, end: datetime) -> list[str]:
        start = end - timedelta(minutes=self.window_minutes)
        hour = start.replace(minute=0, second=0, microsecond=0)
        prefixes = []
        while hour <= end:
            prefixes.append(f"{self.capture_prefix}{hour:%Y/%m/%d/%H}/")
            hour += timedelta(hours=1)
        return prefixes

    def captured_rows(self, s3, end: datetime, outputs: dict[str, str] | None = None) -> list[dict[str, float]]:
        start = end - timedelta(minutes=self.window_minutes)
        rows = []
        paginator = s3.get_paginator("list_objects_v2")
        for prefix in self.hour_prefixes(end):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if not start <= item["LastModified"] <= end:
                        continue
                    body = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read().decode("utf-8")
                    rows += parse_capture_lines(body.splitlines(), f"s3://{self.bucket}/{item['Key']}", outputs)
        return rows

    def run(self, s3, cloudwatch, end: datetime | None = None) -> list[FeatureDrift]:
        end = end or datetime.now(UTC)
        baseline = json.loads(s3.get_object(Bucket=self.bucket, Key=self.baseline_key)["Body"].read())
        outputs = baseline.get("outputs") if isinstance(baseline, dict) else None
        results = compare(baseline, self.captured_rows(s3, end, outputs))
        publish(cloudwatch, self.deployment, results, end, self.namespace)
        return results


def publish(cloudwatch, deployment: str, results: list[FeatureDrift], when: datetime, namespace: str = NAMESPACE) -> None:
    """Per feature PSI and KS; the highest PSI of the inputs and, when the baseline watches outputs, of the
    predictions, which the two drift alarms watch."""
    data = []
    for metric, group in ((MAX_PSI_METRIC, [r for r in results if not r.is_prediction]),
                          (MAX_PREDICTION_PSI_METRIC, [r for r in results if r.is_prediction])):
        if group:
            data.append({"MetricName": metric, "Dimensions": [{"Name": "Deployment", "Value": deployment}],
                         "Timestamp": when, "Value": max(r.psi for r in group), "Unit": "None"})
    for result in results:
        dimensions = [{"Name": "Deployment", "Value": deployment}, {"Name": "Feature", "Value": result.feature}]
        data.append({"MetricName": PSI_METRIC, "Dimensions": dimensions, "Timestamp": when, "Value": result.psi,
                     "Unit": "None"})
        data.append({"MetricName": KS_METRIC, "Dimensions": dimensions, "Timestamp": when,
                     "Value": result.ks_statistic, "Unit": "None"})
    for start in range(0, len(data), 1000):  # PutMetricData takes at most 1000 values per call
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 1000])


def handler(event, context):  # pragma: no cover - thin Lambda adapter, the job itself is tested
    import boto3

    results = DriftJob.from_environment().run(boto3.client("s3"), boto3.client("cloudwatch"))
    return {"features": [r.__dict__ for r in results]}
