"""`python -m infra.ops profile` against the real local Triton (started with the serving image's own venv)."""

import json
from pathlib import Path

import pytest

from infra.ops.__main__ import main
from infra.ops.profile import LEGEND, Step, choose, config_lines, in_flight
from serving_image import local_server

SERVING_PYTHON = Path(__file__).resolve().parents[2] / ".venv-serving" / "bin" / "python"


@pytest.fixture(scope="module")
def server():
    if not SERVING_PYTHON.exists():
        pytest.fail("the serving venv is missing: run `make serving-setup` (make test does it)")
    with local_server.running(python=str(SERVING_PYTHON)) as running:
        yield running


def test_a_sweep_against_the_local_server_writes_the_report_and_the_line_to_paste(server, tmp_path, capsys):
    report = tmp_path / "profile.json"
    code = main(["profile", "--stack", "dev", "--deployment", "resnet50", "--url", f"http://{server.url}",
                 "--concurrency", "1", "4", "--seconds", "1.5", "--p99-ms", "2000", "--report", str(report)])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out
    assert LEGEND in out  # what each column means, with the lines
    assert "profile: warning: 127.0.0.1 is a server on this machine" in captured.err
    document = json.loads(report.read_text())
    assert [s["concurrency"] for s in document["steps"]] == [1, 4]
    assert all(s["requests"] > 0 and s["errors"] == 0 and s["p50_ms"] <= s["p99_ms"] for s in document["steps"])
    assert document["binary"] is True and document["chosen"]["throughput_rps"] > 0
    rps = document["chosen"]["throughput_rps"]
    import re

    printed = re.search(r"'mlserve:deployments\[0\]\.autoscaling\.max_rps_per_instance_at_slo' ([\d.]+)", out)
    assert printed and abs(float(printed.group(1)) - rps) <= 0.06, out


def test_an_slo_no_step_can_meet_exits_1_and_says_so(server, capsys):
    code = main(["profile", "--stack", "dev", "--deployment", "resnet50", "--url", f"http://{server.url}",
                 "--concurrency", "2", "--seconds", "0.5", "--p99-ms", "0.001", "--json-tensors"])
    assert code == 1
    assert "no step met p99 <= 0.001 ms" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--url", "127.0.0.1:8080"], "--url must start with http"),
    (["--url", "http://127.0.0.1:9", "--seconds", "500"], "--seconds must be in"),
    (["--url", "http://127.0.0.1:9", "--header", "no-colon"], "--header must be NAME:VALUE"),
    (["--url", "http://127.0.0.1:9"], "cannot reach http://127.0.0.1:9"),
])
def test_bad_arguments_are_refused_with_exit_2(argv, message, capsys):
    assert main(["profile", "--stack", "dev", "--deployment", "resnet50", "--seconds", "0.5", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_chosen_point_is_the_fastest_within_the_slo_and_kserve_gets_its_in_flight_count():
    fast_but_slow_tail = Step(16, requests=1000, seconds=2.0, latencies_ms=[30.0] * 980 + [400.0] * 20)
    within = Step(8, requests=800, seconds=2.0, latencies_ms=[20.0] * 800)  # 400 req/s at 20 ms
    assert choose([Step(1, 100, 0, 1.0, [5.0] * 100), within, fast_but_slow_tail], p99_ms=100) is within
    assert in_flight(within) == pytest.approx(8.0)  # Little's law: 400 req/s x 0.020 s
    assert config_lines("prod", 1, "kserve", within) == [
        "pulumi config set --stack prod --path 'mlserve:deployments[1].autoscaling.target_concurrency' 8"]


def test_the_inputs_can_come_from_the_models_spec_where_the_server_has_no_metadata_route(server, tmp_path, capsys):
    report = tmp_path / "profile.json"
    code = main(["profile", "--stack", "dev", "--deployment", "resnet50", "--url", f"http://{server.url}",
                 "--concurrency", "2", "--seconds", "0.5", "--p99-ms", "2000", "--report", str(report),
                 "--spec", str(local_server.SAMPLE / "spec.json")])
    assert code == 0, capsys.readouterr().out
    assert json.loads(report.read_text())["steps"][0]["errors"] == 0
    assert main(["profile", "--stack", "dev", "--deployment", "resnet50", "--url", f"http://{server.url}",
                 "--spec", str(tmp_path / "missing.json"), "--seconds", "0.5"]) == 2
    assert "not a model spec.json" in capsys.readouterr().err


@pytest.mark.parametrize("latencies,p,expected", [([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 99, 4), ([4, 1, 3, 2], 25, 1),
                                                  ([10.0] * 99 + [500.0], 99, 10.0), ([10.0] * 99 + [500.0], 100, 500)])
def test_percentiles_are_nearest_rank_as_the_serving_bench_reports_them(latencies, p, expected):
    # One definition across the tools: the p-th percentile of n latencies is the ceil(p/100 * n)-th smallest (a
    # latency that was observed); the bench (bench/serving.py) reports the same.
    assert Step(concurrency=1, latencies_ms=latencies).percentile(p) == expected


def test_a_local_measurement_is_said_not_to_be_the_deployments_instance_type():
    from infra.ops.profile import local_measurement_warning
    from tests.harness import config_of, raw_config

    dev, prod = config_of(raw_config("dev"), "dev"), config_of(raw_config("prod"), "prod")
    assert local_measurement_warning("http://127.0.0.1:8080", dev, dev.deployments[0]) == (
        "127.0.0.1 is a server on this machine, not the deployment's ml.g5.xlarge: these figures measure this "
        "machine's hardware, and resnet50's scaling needs them measured on that instance type (a test endpoint or "
        "pod of the deployment, through its URL); use them to compare, not to paste")
    reranker = next(d for d in prod.deployments if d.backend == "kserve")
    warning = local_measurement_warning("http://localhost:8080", prod, reranker)
    assert warning and warning.startswith(
        "localhost is a server on this machine, not the deployment's GPU nodes of node group 'gpu-a10g' "
        "(g5.2xlarge, g6.2xlarge, 1 GPU per replica)")
    gateway = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    assert local_measurement_warning(gateway, prod, prod.deployments[0]) is None


def test_profile_warns_before_it_measures_a_local_server(capsys):
    assert main(["profile", "--stack", "dev", "--deployment", "resnet50", "--url", "http://127.0.0.1:9",
                 "--seconds", "0.5"]) == 2  # nothing listens there: the warning comes first all the same
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("profile: warning: 127.0.0.1 is a server on this machine, not the deployment's "
                             "ml.g5.xlarge")
