"""What the scan reads is the whole prod plan: every Kubernetes object, one file each, none overwriting another, and
the objects rendered for KServe as the API server would accept them."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.harness import config_of, raw_config, stack_plan
from tests.kubernetes.schemas import builtin_errors
from tests.scan.manifests import NOT_RENDERED, declared_objects, kind_of, predictors, rendered_objects, write_manifests

CLUSTER = config_of(raw_config("prod"), "prod").cluster
assert CLUSTER is not None, "prod runs a cluster"
KUBERNETES_VERSION = CLUSTER.kubernetes_version


def test_every_object_rendered_is_written_to_a_file_of_its_own(tmp_path):
    written = write_manifests(tmp_path)
    rendered = rendered_objects()
    assert len(written) == len(set(written)) == len(rendered) == len(list(tmp_path.iterdir()))


def test_objects_that_share_a_pulumi_resource_name_are_all_written(tmp_path):
    """The capture sink's ServiceAccount, Deployment, Service and NetworkPolicy share one Pulumi name."""
    plan = stack_plan("prod")
    shared = Counter(r.name for r in plan.resources if r.type.startswith("kubernetes:"))
    assert any(count > 1 for count in shared.values()), "no shared name left: this test no longer tests anything"
    write_manifests(tmp_path)
    written = {p.name for p in tmp_path.iterdir()}
    assert {"networkpolicy-mlserve-prod-reranker-capture-sink.yaml", "deployment-mlserve-prod-reranker-capture-sink.yaml",
            "service-mlserve-prod-reranker-capture-sink.yaml",
            "serviceaccount-mlserve-prod-reranker-capture-sink.yaml"} <= written


def test_every_kind_the_plan_declares_is_scanned_or_left_out_for_a_stated_reason():
    plan = stack_plan("prod")
    declared = {kind_of(r) for r in plan.resources if r.type.startswith("kubernetes:")}
    scanned = {o["kind"] for o in rendered_objects()}
    assert declared - scanned <= set(NOT_RENDERED)
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ScaledObject", "NetworkPolicy"} <= scanned
    assert all(len(reason) > 40 for reason in NOT_RENDERED.values())


def test_a_logged_predictor_is_rendered_with_the_agent_and_the_others_without():
    rendered = predictors(stack_plan("prod"))
    assert {p.logger for p in rendered} == {True, False}, "prod should have a track with a logger and one without"
    for p in rendered:
        names = [c["name"] for c in p.deployment["spec"]["template"]["spec"]["containers"]]
        assert names == (["kserve-container", "agent"] if p.logger else ["kserve-container"])


@pytest.mark.parametrize("obj", [o for p in predictors(stack_plan("prod")) for o in (p.deployment, p.service)],
                         ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_the_objects_rendered_for_kserve_pass_the_strict_kubernetes_schema(obj):
    assert builtin_errors(obj, KUBERNETES_VERSION) == []


def test_secrets_are_written_as_the_api_server_gets_them():
    """Pulumi's secret envelope is unwrapped: a scanner reads the object, not the engine's wire format."""
    secrets = [o for o in declared_objects(stack_plan("prod")) if o["kind"] == "Secret"]
    assert secrets and all("4dabf18193072939515e22adb298388d" not in str(s) for s in secrets)
