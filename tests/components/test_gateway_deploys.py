"""A stage serves what the config says: a backend change redeploys it, and its logging role exists first."""

from __future__ import annotations

from tests.harness import edited, plan_config, stack_plan

DEPLOYMENT = "aws:apigateway/deployment:Deployment"


def triggers(plan) -> dict[str, str]:
    """Deployment triggers by API (the component's name)."""
    return {r.name.removesuffix("-deployment"): r.inputs["triggers"]["configuration"] for r in plan.of_type(DEPLOYMENT)}


def set_ingress_domain(raw):
    raw["mlserve:cluster"]["ingress_domain"] = "inference.example.internal"


def test_a_new_ingress_domain_redeploys_the_kserve_stage_only():
    before, after = triggers(stack_plan("prod")), triggers(plan_config(edited("prod", set_ingress_domain), "prod"))
    assert before["mlserve-prod-reranker"] != after["mlserve-prod-reranker"]
    assert before["mlserve-prod-resnet50"] == after["mlserve-prod-resnet50"]


def test_a_new_request_limit_or_authorization_redeploys_every_stage():
    def smaller_bodies(raw):
        raw["mlserve:gateway"]["max_body_bytes"] = 1_048_576

    before, after = triggers(stack_plan("prod")), triggers(plan_config(edited("prod", smaller_bodies), "prod"))
    assert all(before[api] != after[api] for api in before)


def test_the_same_config_keeps_the_same_deployment():
    assert triggers(stack_plan("prod")) == triggers(plan_config(edited("prod", lambda raw: None), "prod"))


def kserve_only(raw):
    raw["mlserve:deployments"] = [d for d in raw["mlserve:deployments"] if d.get("backend") == "kserve"]


def test_a_kserve_only_stack_declares_the_logging_role_before_its_stages():
    plan = plan_config(edited("prod", kserve_only), "prod")
    assert not plan.of_type("aws:sagemaker/endpoint:Endpoint")
    account = plan.one("aws:apigateway/account:Account")
    stages = plan.of_type("aws:apigateway/stage:Stage")
    assert stages and all(account.urn in stage.dependencies for stage in stages)


def test_an_llm_stage_redeploys_when_its_routes_change_and_only_then():
    from pathlib import Path

    from infra.config.loader import read_stack_file

    example = Path(__file__).resolve().parents[2] / "examples" / "Pulumi.llm-kserve.yaml"

    def llm_triggers(edit):
        raw = read_stack_file(example)
        edit(raw)
        return triggers(plan_config(raw, "llm-kserve"))["mlserve-llm-kserve-assistant"]

    same = llm_triggers(lambda raw: None)
    assert llm_triggers(lambda raw: None) == same
    # A new served name changes the request schemas (the model they accept): the stage must serve them.
    assert llm_triggers(lambda raw: raw["mlserve:deployments"][0]["llm"].update(served_model_name="chat")) != same
    # A new ingress domain changes where the proxy integrations go.
    assert llm_triggers(lambda raw: raw["mlserve:cluster"].update(ingress_domain="llm.example.internal")) != same
    # A KEDA threshold is no part of the API.
    assert llm_triggers(lambda raw: raw["mlserve:deployments"][0]["llm"].update(scale_at_waiting=5)) == same
