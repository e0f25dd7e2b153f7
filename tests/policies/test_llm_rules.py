"""The rules for language models, on the LLM example's plan: each passes as declared, and each weakening is refused
by its rule alone (mandatory when judged as prod, advice in dev)."""

import copy
from functools import cache
from pathlib import Path

import pytest
from pulumi_policy import EnforcementLevel

from infra.config.loader import read_stack_file
from tests.policies.conftest import plan_json_for, resources, violations

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "Pulumi.llm-kserve.yaml"
RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
SCALER = "kubernetes:keda.sh/v1alpha1:ScaledObject"
INTEGRATION = "aws:apigateway/integration:Integration"


def _vllm_env(plan) -> list[dict]:
    return resources(plan, RUNTIME)[0]["inputs"]["spec"]["containers"][0]["env"]


def _waiting_trigger(plan) -> dict:
    return next(t for t in resources(plan, SCALER)[0]["inputs"]["spec"]["triggers"]
                if "num_requests_waiting" in t["metadata"]["query"])


def _chat_integration(plan) -> dict:
    return next(r for r in resources(plan, INTEGRATION) if r["inputs"]["uri"].endswith("/v1/chat/completions"))


def _alert_rules(plan) -> list[dict]:
    release = next(r for r in resources(plan, "kubernetes:helm.sh/v3:Release") if r["name"].endswith("-prometheus"))
    return release["inputs"]["values"]["serverFiles"]["alerting_rules.yml"]["groups"][0]["rules"]


LLM_BREAKS = {
    "llm-runtime-offline": lambda p: _vllm_env(p).remove(next(e for e in _vllm_env(p) if e["name"] == "HF_HUB_OFFLINE")),
    # A scaler on CPU instead of vLLM's queue.
    "llm-scales-on-queue": lambda p: resources(p, SCALER)[0]["inputs"]["spec"].update(triggers=[
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}]),
    "llm-answers-stream": lambda p: _chat_integration(p)["inputs"].update(responseTransferMode="BUFFERED"),
    "endpoint-latency-and-error-alarms": lambda p: _alert_rules(p).remove(
        next(r for r in _alert_rules(p) if r["alert"].endswith("-ttft-p99"))),
}


@cache
def _plan() -> dict:
    return plan_json_for(read_stack_file(EXAMPLE), "llm-kserve")


def plan_as(stack: str) -> dict:
    plan = copy.deepcopy(_plan())
    plan["stack"] = stack
    return plan


def test_the_llm_example_passes_every_llm_rule_in_dev_and_prod():
    for stack in ("dev", "prod"):
        assert [v.rule for v in violations(plan_as(stack)) if v.rule in LLM_BREAKS] == []


@pytest.mark.parametrize("rule", sorted(LLM_BREAKS))
def test_each_weakening_is_refused_in_prod_by_its_rule_alone(rule):
    before = {(v.rule, v.urn) for v in violations(plan_as("prod"))}
    plan = plan_as("prod")
    LLM_BREAKS[rule](plan)
    new = [v for v in violations(plan) if (v.rule, v.urn) not in before]
    assert {v.rule for v in new} == {rule}, [f"{v.rule}: {v.message.splitlines()[0]}" for v in new]
    assert all(v.level == EnforcementLevel.MANDATORY and "Fix: " in v.message for v in new)


@pytest.mark.parametrize("rule", sorted(set(LLM_BREAKS) - {"endpoint-latency-and-error-alarms"}))
def test_dev_gets_the_same_finding_as_advice(rule):
    plan = plan_as("dev")
    LLM_BREAKS[rule](plan)
    found = violations(plan, rule=rule)
    assert found and all(v.level == EnforcementLevel.ADVISORY for v in found)


def test_the_pack_knows_a_vllm_runtime_by_what_it_runs_not_by_its_name():
    plan = plan_as("prod")
    resources(plan, RUNTIME)[0]["inputs"]["metadata"]["name"] = "renamed"
    next(r for r in resources(plan, "kubernetes:serving.kserve.io/v1beta1:InferenceService"))[
        "inputs"]["spec"]["predictor"]["model"]["runtime"] = "renamed"
    resources(plan, SCALER)[0]["inputs"]["spec"]["triggers"] = []
    assert violations(plan, rule="llm-scales-on-queue")
