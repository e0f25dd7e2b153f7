"""Drift of the predictions: a classifier's class shares and a regressor's values, from captured responses, with
the same PSI and KS as the inputs, published as their own maximum for the prediction-drift alarm."""

import json
import random
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from drift.__main__ import main
from drift.baseline import build_baseline
from drift.capture import CaptureFormatError, parse_capture_lines, prediction_features, request_features
from drift.job import MAX_PREDICTION_PSI_METRIC, MAX_PSI_METRIC, NAMESPACE, DriftJob
from tests.drift.test_stats import request

BUCKET = "mlserve-dev-models"
PREFIX = "data-capture/mlserve-dev-resnet50/mlserve-dev-resnet50/primary/"
CLASSES = 4


def response(scores, name="probabilities"):
    return {"model_name": "resnet50", "outputs": [{"name": name, "shape": [len(scores) // CLASSES, CLASSES],
                                                    "datatype": "FP32", "data": scores}]}


def one_hot(label):
    return [0.9 if k == label else 0.1 / (CLASSES - 1) for k in range(CLASSES)]


def traffic(n, shares, seed):
    """n requests with inputs from one distribution and predicted classes drawn with the given shares."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        label = rng.choices(range(CLASSES), weights=shares)[0]
        pairs.append((request([rng.gauss(0, 1) for _ in range(16)]), response(one_hot(label))))
    return pairs


def capture_line(pair):
    body, answer = pair
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(body),
                          "encoding": "JSON"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": json.dumps(answer),
                           "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-12-03T10:00:00Z"}, "eventVersion": "0"})


def baseline_of(pairs):
    rows = [request_features(body) for body, _ in pairs]
    rows += [row for _, answer in pairs for row in prediction_features(answer, {"probabilities": "classes"})]
    return build_baseline(rows, outputs={"probabilities": "classes"}, classes={"probabilities": CLASSES})


def test_a_class_output_is_binned_one_bin_per_class_with_the_reference_shares():
    baseline = baseline_of(traffic(1000, [0.7, 0.1, 0.1, 0.1], seed=1))
    feature = baseline["features"]["output:probabilities.class"]
    assert feature["kind"] == "classes" and feature["edges"] == [0.5, 1.5, 2.5]
    assert feature["proportions"][0] == pytest.approx(0.7, abs=0.04)
    assert baseline["outputs"] == {"probabilities": "classes"} and baseline["reference_count"] == 1000


def test_a_batch_of_samples_gives_one_prediction_each_and_a_regressor_its_mean():
    batch = response(one_hot(2) + one_hot(0) + one_hot(3))
    assert prediction_features(batch, {"probabilities": "classes"}) == [
        {"output:probabilities.class": 2.0}, {"output:probabilities.class": 0.0}, {"output:probabilities.class": 3.0}]
    regression = {"outputs": [{"name": "price", "shape": [2, 1], "datatype": "FP32", "data": [[3.0], [5.0]]}]}
    assert prediction_features(regression, {"price": "values"}) == [{"output:price.mean": 4.0}]


@mock_aws
def test_shifted_class_shares_raise_prediction_psi_while_the_inputs_stay_put():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="b.json", Body=json.dumps(baseline_of(traffic(1000, [0.7, 0.1, 0.1, 0.1], 1))))
    now = datetime.now(UTC)
    captured = traffic(400, [0.25, 0.25, 0.25, 0.25], seed=2)  # same inputs, predictions spread out
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{now:%Y/%m/%d/%H}/c.jsonl",
                  Body="\n".join(capture_line(p) for p in captured))
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    results = DriftJob(BUCKET, PREFIX, "b.json", "resnet50").run(s3, cloudwatch, end=now + timedelta(seconds=1))

    by_feature = {r.feature: r for r in results}
    # PSI of (0.7, .1, .1, .1) -> (.25, .25, .25, .25): 0.45 ln(0.357) + 3 x 0.15 ln(2.5) = 0.876 (about, sampled)
    assert by_feature["output:probabilities.class"].psi == pytest.approx(0.876, abs=0.15)
    assert by_feature["output:probabilities.class"].count == 400
    assert max(r.psi for r in results if not r.is_prediction) < 0.1
    metrics = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    assert {MAX_PSI_METRIC, MAX_PREDICTION_PSI_METRIC} <= metrics


def test_a_capture_without_the_response_is_refused_with_its_place():
    line = json.dumps({"captureData": {"endpointInput": {"data": json.dumps(request([1.0])), "encoding": "JSON"}}})
    with pytest.raises(CaptureFormatError) as refused:
        parse_capture_lines([line], "s3://b/k.jsonl", {"probabilities": "classes"})
    assert str(refused.value) == ("s3://b/k.jsonl, line 1: no captureData.endpointOutput.data (not a SageMaker "
                                  "capture of the response; capture Output too)")


def test_the_cli_builds_a_baseline_that_watches_predictions(tmp_path, capsys):
    pairs = traffic(100, [0.4, 0.3, 0.2, 0.1], seed=3)
    (tmp_path / "requests.jsonl").write_text("\n".join(json.dumps(b) for b, _ in pairs))
    (tmp_path / "responses.jsonl").write_text("\n".join(json.dumps(a) for _, a in pairs))
    out = tmp_path / "baseline.json"
    assert main(["baseline", "--reference", str(tmp_path / "requests.jsonl"), "--responses",
                 str(tmp_path / "responses.jsonl"), "--output", "probabilities=classes", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["features"]["output:probabilities.class"]["edges"] == [0.5, 1.5, 2.5]
    assert main(["baseline", "--reference", str(tmp_path / "requests.jsonl"), "--output", "p=labels",
                 "--responses", str(tmp_path / "responses.jsonl"), "--out", str(out)]) == 2
    assert "--output must be NAME=classes or NAME=values, got 'p=labels'" in capsys.readouterr().err
