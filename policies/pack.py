"""The pack's identity and its policies, shared by `__main__` (the CLI's analyzer) and `check` (the offline runner)."""

from pulumi_policy import Policy

from . import rules  # noqa: F401  (registers every rule)
from .framework import REGISTRY, Rule

PACK_NAME = "mlserve-guardrails"


def all_rules() -> list[Rule]:
    return list(REGISTRY)


def all_policies() -> list[Policy]:
    return [rule.policy for rule in REGISTRY]
