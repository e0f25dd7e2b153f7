"""One component per deployment, and a real stack created before it existed moves under it without a replacement."""

from __future__ import annotations

import re

DEPLOYMENT_TYPES = ("mlserve:serving:SageMakerDeployment", "mlserve:serving:KServeDeployment")


def test_each_deployment_is_one_component(plan, stack):
    from tests.harness import raw_config

    declared = {r.name for r in plan.resources if r.type in DEPLOYMENT_TYPES}
    assert declared == {f"mlserve-{stack}-{d['name']}" for d in raw_config(stack)["mlserve:deployments"]}


def test_moved_children_alias_their_old_place_at_the_stack_root(plan):
    deployments = {r.urn for r in plan.resources if r.type in DEPLOYMENT_TYPES}
    children = [r for r in plan.resources if r.parent in deployments]
    assert children
    for child in children:
        assert {"noParent": True} in child.aliases, child.urn


def test_the_aliases_lead_back_to_the_urns_of_the_flat_layout(plan):
    """The engine derives a grandchild's alias from its parent's: dropping the deployment from each type chain.
    Those old URNs must be distinct and not collide with another resource, or the engine would refuse the move."""
    moved = [r for r in plan.resources if any(f"{t}$" in r.urn for t in DEPLOYMENT_TYPES)]
    old = [re.sub(r"mlserve:serving:(SageMaker|KServe)Deployment\$", "", r.urn) for r in moved]
    assert len(old) == len(set(old))
    assert not set(old) & {r.urn for r in plan.resources}
