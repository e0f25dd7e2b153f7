"""Names AWS makes unique per account and region (or per partition) are claimed once across the stacks.

Supported layouts (docs/accounts.md): one account per environment, each stack pinned by `account_id`; and more
stacks in one account, where every account-unique name carries the stack and one stack manages the account's API
Gateway settings. Planning dev, prod and a third stack in dev's account side by side proves both."""

import json

import pytest

from infra.plan.unique_names import StackPlan, collisions
from tests.harness import config_of, plan_config, raw_config, stack_plan


def sandbox_config() -> dict:
    """A feature stack in dev's account: its own bucket (global names), relying on dev's account settings and on
    the GitHub OIDC provider dev manages."""
    raw = json.loads(json.dumps(raw_config("dev")).replace("mlserve-dev-models", "mlserve-sandbox-models"))
    raw["mlserve:gateway"]["account_settings"] = "existing"
    raw["mlserve:ci"]["github_oidc_provider"] = "existing"
    return raw


@pytest.fixture(scope="module")
def stacks() -> list[StackPlan]:
    sandbox = sandbox_config()
    found = []
    for name, raw, plan in (("dev", raw_config("dev"), stack_plan("dev")), ("prod", raw_config("prod"),
                            stack_plan("prod")), ("sandbox", sandbox, plan_config(sandbox, "sandbox"))):
        cfg = config_of(raw, name)
        found.append(StackPlan(name, cfg.account_id, cfg.region, plan))
    return found


def test_dev_prod_and_a_third_stack_in_devs_account_claim_no_name_twice(stacks):
    assert stacks[0].account_id == stacks[2].account_id != stacks[1].account_id
    assert [str(c) for c in collisions(stacks)] == []


def test_the_nlb_and_the_alb_of_a_kserve_deployment_have_their_own_names(stacks):
    # ELB names are unique across NLBs and ALBs: both were once `mlserve-prod-reranker` (DuplicateLoadBalancerName).
    prod = stacks[1].plan
    (nlb,) = prod.of_type("aws:lb/loadBalancer:LoadBalancer")
    (ingress,) = prod.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    alb = ingress.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-name"]
    assert nlb.inputs["name"] != alb
    assert max(len(nlb.inputs["name"]), len(alb)) <= 32


def test_stacks_that_name_no_account_are_checked_as_sharing_one(stacks):
    unpinned = [StackPlan(s.stack, None, s.region, s.plan) for s in stacks[:2]]
    found = {(c.kind, c.stacks) for c in collisions(unpinned)}
    assert ("API Gateway's CloudWatch role setting (one per account and region)", ("dev", "prod")) in found


def test_a_second_stack_managing_the_account_settings_in_the_same_account_collides(stacks):
    dev, _, sandbox = stacks
    found = {(c.kind, c.stacks) for c in collisions([dev, StackPlan("sandbox", dev.account_id, dev.region, dev.plan)])}
    assert ("API Gateway's CloudWatch role setting (one per account and region)", ("dev", "sandbox")) in found
    assert collisions([dev, sandbox]) == []


def test_a_second_stack_managing_github_s_oidc_provider_in_the_same_account_collides(stacks):
    dev, _, sandbox = stacks
    managing = raw_config("dev")
    managing["mlserve:ci"]["github_oidc_provider"] = "manage"
    twin = json.loads(json.dumps(managing).replace("mlserve-dev-models", "mlserve-twin-models"))
    twin["mlserve:gateway"]["account_settings"] = "existing"
    found = collisions([dev, StackPlan("twin", dev.account_id, dev.region, plan_config(twin, "twin"))])
    assert [(c.kind, c.name, c.stacks) for c in found] == [
        ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "https://token.actions.githubusercontent.com",
         ("dev", "twin"))]
