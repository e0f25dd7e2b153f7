"""The drift statistics flag a shifted sample, stay quiet on an unshifted one, and refuse bad input clearly."""

import base64
import json
import random

import pytest

from drift.baseline import BaselineError, build_baseline, compare
from drift.capture import CaptureFormatError, parse_capture_lines, request_features
from drift.stats import kolmogorov_survival, ks_2samp, proportions, psi, quantile_edges


def sample(n, mean=0.0, sd=1.0, seed=1):
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    reference = sample(5000, seed=1)
    edges = quantile_edges(reference)
    expected = proportions(reference, edges)
    assert psi(expected, proportions(sample(5000, seed=2), edges)) < 0.02
    assert psi(expected, proportions(sample(5000, mean=0.5, seed=3), edges)) > 0.2


def test_quantile_bins_hold_equal_shares_of_the_reference():
    reference = sample(10_000)
    shares = proportions(reference, quantile_edges(reference, 10))
    assert all(abs(s - 0.1) < 0.002 for s in shares)


def test_ks_matches_the_kolmogorov_distribution():
    assert kolmogorov_survival(1.358) == pytest.approx(0.05, abs=0.001)  # the classic 5% critical value
    assert kolmogorov_survival(1.628) == pytest.approx(0.01, abs=0.0005)
    statistic, pvalue = ks_2samp(sample(2000, seed=4), sample(2000, seed=5))
    assert statistic < 0.05 and pvalue > 0.05
    statistic, pvalue = ks_2samp(sample(2000, seed=4), sample(2000, mean=0.3, seed=5))
    assert statistic > 0.1 and pvalue < 1e-6


def request(values, name="input"):
    return {"inputs": [{"name": name, "shape": [len(values)], "datatype": "FP32", "data": values}]}


def capture_line(body, base64_encoded=False):
    text = json.dumps(body)
    data = base64.b64encode(text.encode()).decode() if base64_encoded else text
    return json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                                         "data": data,
                                                         "encoding": "BASE64" if base64_encoded else "JSON"}},
                       "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-11-22T12:00:00Z"},
                       "eventVersion": "0"})


def rows(n, mean=0.0, seed=0):
    rng = random.Random(seed)
    return [request_features(request([rng.gauss(mean, 1) for _ in range(64)])) for _ in range(n)]


def test_compare_flags_a_shifted_window_and_not_an_unshifted_one():
    baseline = build_baseline(rows(600, seed=1))
    quiet = compare(baseline, rows(300, seed=2))
    assert max(r.psi for r in quiet) < 0.1 and all(r.ks_pvalue > 0.01 for r in quiet)
    shifted = {r.feature: r for r in compare(baseline, rows(300, mean=0.4, seed=3))}
    assert shifted["input.mean"].psi > 0.2 and shifted["input.mean"].ks_pvalue < 1e-6


def test_capture_files_are_read_in_both_encodings():
    lines = [capture_line(request([1.0, 3.0])), capture_line(request([2.0, 2.0]), base64_encoded=True)]
    parsed = parse_capture_lines(lines, "s3://b/k.jsonl")
    assert parsed == [{"input.mean": 2.0, "input.std": 1.0}, {"input.mean": 2.0, "input.std": 0.0}]


@pytest.mark.parametrize("line,reason", [
    ("{not json", "line 2: not JSON"),
    (json.dumps({"eventVersion": "0"}), "line 2: no captureData.endpointInput.data"),
    (json.dumps({"captureData": {"endpointInput": {"data": "@@@", "encoding": "BASE64"}}}), "not valid base64"),
    (json.dumps({"captureData": {"endpointInput": {"data": "[1, 2]", "encoding": "JSON"}}}), "no 'inputs' list"),
    (capture_line(request(["a", "b"])), "non-numeric value 'a'"),
    (capture_line({"inputs": [{"name": "x", "data": []}]}), "has no values"),
])
def test_malformed_capture_lines_fail_with_file_line_and_reason(line, reason):
    with pytest.raises(CaptureFormatError) as caught:
        parse_capture_lines([capture_line(request([1.0])), line], "s3://bucket/data-capture/x.jsonl")
    assert "s3://bucket/data-capture/x.jsonl" in str(caught.value) and reason in str(caught.value)


def test_an_empty_window_is_an_error_not_a_quiet_result():
    with pytest.raises(BaselineError, match="no captured requests in the window"):
        compare(build_baseline(rows(100)), [])


def test_a_baseline_needs_enough_reference_data():
    with pytest.raises(BaselineError, match="too few"):
        build_baseline(rows(10))


def test_baseline_cli_writes_a_baseline_and_reports_bad_lines(tmp_path, capsys):
    from drift.__main__ import main

    reference = tmp_path / "reference.jsonl"
    reference.write_text("\n".join(json.dumps(request([random.random() for _ in range(8)])) for _ in range(60)))
    out = tmp_path / "baseline.json"
    assert main(["baseline", "--reference", str(reference), "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())["features"]) == {"input.mean", "input.std"}
    reference.write_text(reference.read_text() + "\n{oops")
    assert main(["baseline", "--reference", str(reference), "--out", str(out)]) == 1
    assert "line 61: not JSON" in capsys.readouterr().err
