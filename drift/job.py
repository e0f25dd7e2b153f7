"""The scheduled drift job: read the window's captured requests from S3, compare with the baseline, publish metrics.

Runs as the Lambda handler `drift.job.handler` (EventBridge schedule) and from `python -m drift run`.

The job reads one payload kind, `MLSERVE_PAYLOAD_KIND` (DriftMonitorArgs.payload_kind): `tensor` (v2 inference
bodies, the default) or `openai` (an LLM's OpenAI-compatible bodies, drift/llm.py). It refuses a baseline built from
the other kind: their features have nothing in common, and comparing them would only say "missing". In `openai`
mode a capture line that is not an OpenAI body is counted and skipped, each said on stderr with its file, line and
reason; a `tensor` capture line that cannot be read stops the run, as it always has.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .baseline import DEFAULT_PAYLOAD, PAYLOAD_KINDS, BaselineError, FeatureDrift, compare, payload_kind
from .capture import OUTPUT_PREFIX, CaptureFormatError, parse_capture_lines
from .llm import CaptureRead, read_capture_lines

NAMESPACE = "mlserve/Drift"  # the default; DriftMonitor passes components.names.DRIFT_METRIC_NAMESPACE (a test pins them)
PSI_METRIC = "PopulationStabilityIndex"
MAX_PSI_METRIC = "MaxPopulationStabilityIndex"
MAX_PREDICTION_PSI_METRIC = "MaxPredictionStabilityIndex"
KS_METRIC = "KolmogorovSmirnovStatistic"
PAYLOAD_ENV = "MLSERVE_PAYLOAD_KIND"  # components/drift_monitor.py sets it for a non-default kind (a test pins it)
REPORTED_SKIPS = 5
"""Skipped lines said one by one; beyond that only counted (a window of a misconfigured client has thousands)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class DriftJob:
    bucket: str
    capture_prefix: str  # <destination prefix><endpoint>/<variant>/ (SageMaker adds yyyy/mm/dd/hh/)
    baseline_key: str
    deployment: str
    window_minutes: int = 60
    namespace: str = NAMESPACE
    payload: str = DEFAULT_PAYLOAD  # what the captured bodies are: "tensor" or "openai"

    def __post_init__(self) -> None:
        if self.payload not in PAYLOAD_KINDS:
            raise ValueError(f"payload kind {self.payload!r} is not one of {', '.join(PAYLOAD_KINDS)} "
                             f"({PAYLOAD_ENV}, or --payload)")

    @classmethod
    def from_environment(cls, env=os.environ) -> DriftJob:
        return cls(bucket=env["MLSERVE_BUCKET"], capture_prefix=env["MLSERVE_CAPTURE_PREFIX"],
                   baseline_key=env["MLSERVE_BASELINE_KEY"], deployment=env["MLSERVE_DEPLOYMENT"],
                   window_minutes=int(env.get("MLSERVE_WINDOW_MINUTES", "60")),
                   namespace=env.get("MLSERVE_METRIC_NAMESPACE", NAMESPACE),
                   payload=env.get(PAYLOAD_ENV, DEFAULT_PAYLOAD))

    def hour_prefixes(self, end: datetime) -> list[str]:
        start = end - timedelta(minutes=self.window_minutes)
        hour = start.replace(minute=0, second=0, microsecond=0)
        prefixes = []
        while hour <= end:
            prefixes.append(f"{self.capture_prefix}{hour:%Y/%m/%d/%H}/")
            hour += timedelta(hours=1)
        return prefixes

    def read_window(self, s3, end: datetime, outputs: dict[str, str] | None = None) -> CaptureRead:
        """The window's rows, and (openai) the lines skipped as not OpenAI bodies."""
        start = end - timedelta(minutes=self.window_minutes)
        read = CaptureRead()
        paginator = s3.get_paginator("list_objects_v2")
        for prefix in self.hour_prefixes(end):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if not start <= item["LastModified"] <= end:
                        continue
                    lines = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read().decode("utf-8")
                    source = f"s3://{self.bucket}/{item['Key']}"
                    if self.payload == "openai":
                        read_capture_lines(lines.splitlines(), source, into=read)
                    else:
                        read.rows += parse_capture_lines(lines.splitlines(), source, outputs)
        return read

    def load_baseline(self, s3) -> dict:
        """The baseline, refused unless it is one and of this job's payload kind."""
        body = s3.get_object(Bucket=self.bucket, Key=self.baseline_key)["Body"].read()
        where = f"s3://{self.bucket}/{self.baseline_key}"
        try:
            baseline = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BaselineError(f"{where} is not JSON (not an mlserve drift baseline)") from None
        if not isinstance(baseline, dict):
            raise BaselineError(f"{where} is not an mlserve drift baseline (a JSON object)")
        if payload_kind(baseline) != self.payload:
            raise BaselineError(
                f"{where} was built from {payload_kind(baseline)} payloads, but the drift job of {self.deployment} "
                f"reads {self.payload} payloads ({PAYLOAD_ENV}): build the baseline with `python -m drift baseline "
                f"--payload {self.payload}`")
        return baseline

    def run(self, s3, cloudwatch, end: datetime | None = None,
            say: Callable[[str], None] = _stderr) -> list[FeatureDrift]:
        end = end or datetime.now(UTC)
        baseline = self.load_baseline(s3)
        read = self.read_window(s3, end, baseline.get("outputs"))
        for problem in read.skipped[:REPORTED_SKIPS]:
            say(f"drift: skipped {problem}")
        if read.skipped:
            lines = len(read.skipped) + sum(1 for row in read.rows if not _is_prediction_row(row))
            say(f"drift: skipped {len(read.skipped)} of {lines} capture line(s) in the window: not {self.payload} "
                f"bodies")
        if not read.rows and read.skipped:
            raise BaselineError(f"no readable captured requests in the window: all {len(read.skipped)} line(s) "
                                f"were skipped (the first: {read.skipped[0]})")
        results = compare(baseline, read.rows)
        missing = sorted(set(baseline["features"]) - {r.feature for r in results})
        if missing:
            say(f"drift: not compared, no captured value in the window: {', '.join(missing)}")
        publish(cloudwatch, self.deployment, results, end, self.namespace)
        return results


def _is_prediction_row(row: dict[str, float]) -> bool:
    return any(r.startswith(OUTPUT_PREFIX) for r in row)


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


def handler(event, context):
    """The Lambda entry point. A baseline or capture the job cannot use is one line in the log and an `error` in
    the result, not a raised exception: a raise would be retried twice by Lambda's asynchronous invocation (with
    the same outcome) and logged as a traceback; the drift alarms already say it, as missing data is breaching."""
    import boto3

    try:
        job = DriftJob.from_environment()
        results = job.run(boto3.client("s3"), boto3.client("cloudwatch"))
    except (BaselineError, CaptureFormatError) as error:
        _stderr(f"drift: {error}")
        return {"error": str(error)}
    return {"features": [r.__dict__ for r in results]}
