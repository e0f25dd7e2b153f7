"""rollout for KServe: read and set the ALB split through the Kubernetes API, roll back on a firing SLO alert.

The official client talks HTTP to a stand-in API server on 127.0.0.1 (tests/ops/kube_api_stub.py) built from what
the prod plan declares: the Ingress and the two InferenceServices."""

import copy
import json

import pytest
from rich.console import Console

from infra.ops.kserve_rollout import KServeRollout, KubernetesApi
from infra.ops.report import OpsError
from tests.harness import stack_plan
from tests.ops.kube_api_stub import KubeState, serve, use_stub

NAMESPACE = "mlserve-prod-reranker"
KEY = "alb.ingress.kubernetes.io/actions.reranker-split"


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    plan = stack_plan("prod")
    ingress = copy.deepcopy(next(r for r in plan.resources if r.type.endswith(":Ingress")).inputs)
    isvcs = [copy.deepcopy(r.inputs) for r in plan.resources if r.type.endswith(":InferenceService")]
    for isvc in isvcs:
        isvc["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    state = KubeState(NAMESPACE, {k: ingress[k] for k in ("apiVersion", "kind", "metadata", "spec")}, isvcs)
    server = serve(state)
    use_stub(server, tmp_path, monkeypatch)
    yield state
    server.shutdown()
    server.server_close()


def rollout(sleep=lambda s: None):
    return KServeRollout(KubernetesApi(), "reranker", NAMESPACE, Console(width=160), sleep=sleep, poll_seconds=1)


def split_of(state):
    groups = json.loads(state.ingress["metadata"]["annotations"][KEY])["forwardConfig"]["targetGroups"]
    return {g["serviceName"]: g["weight"] for g in groups}


def test_reads_the_declared_split(cluster):
    assert rollout().split().canary_percent == 10


def test_rollback_sends_everything_to_stable_through_a_patch(cluster):
    rollout().rollback()
    assert split_of(cluster) == {"reranker-predictor": 100, "reranker-canary-predictor": 0}
    content_type, body = cluster.patches[0]
    assert content_type.startswith("application/") and set(body["metadata"]["annotations"]) == {KEY}


def test_promote_ends_at_100_percent_on_the_canary(cluster):
    assert rollout().promote([25, 50], bake_seconds=2)
    assert split_of(cluster) == {"reranker-predictor": 0, "reranker-canary-predictor": 100}
    assert [json.loads(b["metadata"]["annotations"][KEY])["forwardConfig"]["targetGroups"][1]["weight"]
            for _, b in cluster.patches] == [25, 50, 100]
    assert cluster.queries[0] == 'ALERTS{alertstate="firing",deployment="reranker"}'


def test_a_firing_slo_alert_rolls_the_split_back_to_where_it_started(cluster):
    def alert_fires(_seconds):
        cluster.firing = ["reranker-error-rate"]

    assert rollout(sleep=alert_fires).promote([25, 50], bake_seconds=60) is False
    assert split_of(cluster) == {"reranker-predictor": 90, "reranker-canary-predictor": 10}


def test_status_lists_both_inference_services_with_their_share(cluster, capsys):
    rollout().status()
    out = capsys.readouterr().out
    assert "reranker-canary" in out and "90%" in out and "10%" in out and "SLO alerts firing: none" in out


def test_no_canary_is_a_clear_error(cluster):
    del cluster.ingress["metadata"]["annotations"][KEY]
    with pytest.raises(OpsError, match="runs no canary"):
        rollout().rollback()


def test_cli_rollout_of_a_kserve_deployment_goes_through_the_kubernetes_api(cluster, capsys):
    from infra.ops.__main__ import main

    assert main(["rollout", "status", "--stack", "prod", "--deployment", "reranker"]) == 0
    assert "reranker-canary" in capsys.readouterr().out
    assert main(["rollout", "rollback", "--stack", "prod", "--deployment", "reranker"]) == 0
    assert "set split reranker 100% / reranker-canary 0% (rollback)" in capsys.readouterr().out
    assert split_of(cluster) == {"reranker-predictor": 100, "reranker-canary-predictor": 0}


def test_cli_without_kubernetes_access_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    from infra.ops.__main__ import main

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert main(["rollout", "status", "--stack", "prod", "--deployment", "reranker"]) == 2
    err = capsys.readouterr().err
    assert "no Kubernetes access" in err and "Traceback" not in err


def test_an_alert_that_fires_after_the_last_poll_of_a_bake_still_stops_the_promotion(cluster):
    """The bake looks once more when its time is up (as the SageMaker loop always did): no blind step to 100%."""
    sleeps = []

    def alert_fires_during_the_last_sleep(seconds):
        sleeps.append(seconds)
        if sum(sleeps) >= 2:
            cluster.firing = ["reranker-p99-latency"]

    assert rollout(sleep=alert_fires_during_the_last_sleep).promote([25], bake_seconds=2) is False
    weights = [json.loads(b["metadata"]["annotations"][KEY])["forwardConfig"]["targetGroups"][1]["weight"]
               for _, b in cluster.patches]
    assert 100 not in weights and split_of(cluster) == {"reranker-predictor": 90, "reranker-canary-predictor": 10}
