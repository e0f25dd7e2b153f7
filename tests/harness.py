"""One way to run the program in tests: for a named stack, or for any config dict, under Pulumi's mock engine."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import yaml

from infra.config import StackConfig, validate
from infra.config.loader import read_stack_file, stack_file
from infra.plan import Plan, plan_stack


def raw_config(stack: str) -> dict[str, Any]:
    """A fresh, mutable copy of a stack file's `config:` block."""
    return copy.deepcopy(read_stack_file(stack_file(stack)))


def edited(stack: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = raw_config(stack)
    edit(raw)
    return raw


def config_of(raw: dict[str, Any], stack: str = "test") -> StackConfig:
    return validate(raw, f"Pulumi.{stack}.yaml")


def plan_config(raw: dict[str, Any], stack: str = "dev", preview: bool = False) -> Plan:
    return plan_stack(config_of(raw, stack), stack, preview=preview)


@cache
def _stack_plan(stack: str) -> Plan:
    return plan_config(raw_config(stack), stack)


def stack_plan(stack: str) -> Plan:
    """The plan of a checked-in stack, computed once per test session (treat it as read-only)."""
    return _stack_plan(stack)


def policy_json(resource) -> dict[str, Any]:
    """An IAM/key/bucket policy input, parsed."""
    return json.loads(resource.inputs["policy"])


def dump_yaml(raw: dict[str, Any]) -> str:
    return yaml.safe_dump({"config": raw}, sort_keys=False)


def rollback_alarm_names(plan: Plan, deployment: str) -> list[str]:
    """The alarms that roll a deployment's update back: its inference component's, or else its endpoint's."""
    updated = [r for r in plan.resources if r.type == "aws-native:sagemaker:InferenceComponent"
               and r.inputs["inferenceComponentName"] == deployment] or \
              [r for r in plan.resources if r.type == "aws:sagemaker/endpoint:Endpoint" and r.inputs["name"] == deployment]
    if not updated:
        raise KeyError(f"no endpoint or inference component named {deployment}")
    return [a["alarmName"] for a in updated[0].inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]


def stack_account(stack: str) -> str:
    """The account a checked-in stack file pins (`account_id`): the plan's ARNs carry it."""
    account = config_of(raw_config(stack), stack).account_id
    assert account, f"Pulumi.{stack}.yaml names no account_id"
    return account


def front_constant(name: str) -> str:
    """A module-level string of serving_image/front.py, read from its source: the serving image is a package of its
    own (its dependencies are not in this world), and what it answers is pinned by tests here, not imported."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[1] / "serving_image" / "front.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"serving_image/front.py has no module-level {name}")


def small_cluster(min_size: int = 1, **overrides) -> dict[str, Any]:
    """A cluster block for a dev stack under test: a managed GPU group and a system group, with prod's own pinned
    Kubernetes version, add-on builds and chart versions (one set of pins, the checked-in one)."""
    prod = raw_config("prod")["mlserve:cluster"]
    return {
        "kubernetes_version": prod["kubernetes_version"], "admin_role_arns": list(prod["admin_role_arns"]),
        "addons": dict(prod["addons"]), "charts": dict(prod["charts"]),
        "node_groups": [{"name": "gpu", "instance_types": ["g5.2xlarge"], "min_size": min_size, "max_size": 4,
                         "desired_size": max(min_size, 1)},
                        {"name": "system", "gpu": False, "ami_type": "AL2023_x86_64_STANDARD",
                         "instance_types": ["m6i.xlarge"], "min_size": 3, "max_size": 4, "desired_size": 3}],
        **overrides,
    }
