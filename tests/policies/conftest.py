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
