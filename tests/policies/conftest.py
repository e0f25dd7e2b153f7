import copy
import json

import pytest

from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests.harness import plan_config, stack_plan


def plan_json(stack: str) -> dict:
    """A fresh copy of the real program's plan for a checked-in stack, in the JSON shape policies receive."""
    return copy.deepcopy(json.loads(json.dumps(stack_plan(stack).as_json())))


def plan_json_for(raw: dict, stack: str) -> dict:
    return json.loads(json.dumps(plan_config(raw, stack).as_json()))


def violations(plan: dict, stack: str | None = None, rule: str | None = None):
    found = evaluate(plan, load_policy_config(CONFIG_DIR / f"{stack or plan['stack']}.json"))
    return [v for v in found if rule is None or v.rule == rule]


def resources(plan: dict, type_token: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == type_token]


@pytest.fixture(params=["dev", "prod"])
def stack(request):
    return request.param


@pytest.fixture(scope="module")
def prod_plan():
    return plan_json("prod")


@pytest.fixture
def plan(prod_plan):
    """A copy of the recorded prod plan to edit (planned once per module)."""
    return copy.deepcopy(prod_plan)


def refused(plan: dict, rule: str, stack: str | None = None) -> list[tuple]:
    """(resource name, message without the fix, level) of each violation of `rule`."""
    return [(v.urn.rsplit("::", 1)[1], v.message.split("\nFix: ")[0], v.level)
            for v in violations(plan, stack=stack, rule=rule)]


def as_dev(plan: dict) -> dict:
    """The same plan judged as dev's (with dev's policy config)."""
    plan["stack"] = "dev"
    return plan
