"""A rule is one small function; this turns it into a real CrossGuard policy.

`resource_rule` checks one resource of the listed types; `stack_rule` sees every resource (for rules that relate
resources, like "every endpoint has a latency alarm"). A check yields violation messages; the fix is part of the
rule, so every report says what to change. Each rule reads its config through `settings(args)`, which applies the
defaults the Pulumi CLI would apply from the schema (it does not, outside the CLI), strict values by default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

# Every rule understands these settings; the per-stack config files set them (policies/config/<stack>.json).
COMMON_SCHEMA: dict[str, Any] = {
    "environment": {"type": "string", "enum": ["dev", "prod"], "default": "prod",
                    "description": "Which rules of prod apply; prod (the strict one) unless config says dev"},
}

ResourceCheck = Callable[[Mapping[str, Any], dict[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Any], dict[str, Any]], Iterable[tuple[str, str | None]]]


@dataclass(frozen=True)
class Rule:
    policy: ResourceValidationPolicy | StackValidationPolicy
    fix: str
    types: tuple[str, ...] = ()
    schema: dict[str, Any] = field(default_factory=dict)


REGISTRY: list[Rule] = []


def settings(config: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> dict[str, Any]:
    merged = {key: spec.get("default") for key, spec in {**COMMON_SCHEMA, **schema}.items()}
    merged.update({k: v for k, v in (config or {}).items() if k != "enforcementLevel"})
    return merged


def _schema(extra: Mapping[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={**COMMON_SCHEMA, **extra})


def resource_rule(name: str, *, types: Sequence[str], description: str, fix: str,
                  severity: Severity = Severity.HIGH, schema: Mapping[str, Any] | None = None):
    """Register `check(props, settings) -> messages` as a resource policy for the given resource types."""
    schema = dict(schema or {})

    def wrap(check: ResourceCheck) -> ResourceCheck:
        def validate(args: ResourceValidationArgs, report_violation) -> None:
            if args.resource_type not in types:
                return
            for message in check(args.props, settings(args.get_config(), schema)):
                report_violation(f"{message}\nFix: {fix}")

        REGISTRY.append(Rule(ResourceValidationPolicy(
            name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=_schema(schema), severity=severity, remediation_steps=fix), fix, tuple(types), schema))
        return check

    return wrap


def stack_rule(name: str, *, description: str, fix: str, severity: Severity = Severity.HIGH,
               schema: Mapping[str, Any] | None = None):
    """Register `check(resources, settings) -> (message, urn)` pairs as a stack policy."""
    schema = dict(schema or {})

    def wrap(check: StackCheck) -> StackCheck:
        def validate(args: StackValidationArgs, report_violation) -> None:
            for message, urn in check(args.resources, settings(args.get_config(), schema)):
                report_violation(f"{message}\nFix: {fix}", urn)

        REGISTRY.append(Rule(StackValidationPolicy(
            name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=_schema(schema), severity=severity, remediation_steps=fix), fix, (), schema))
        return check

    return wrap


# --- helpers shared by rules ------------------------------------------------------------------------------------

def policy_statements(document: Any) -> list[dict[str, Any]]:
    """Statements of an IAM-style policy given as JSON text or a mapping."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    return [dict(s) for s in as_list(document.get("Statement", []))]


def as_list(value: Any) -> list[Any]:
    """Props arrive as the SDK's proxies: any non-string Sequence is a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def of_type(resources: Sequence[Any], *types: str) -> list[Any]:
    return [r for r in resources if r.resource_type in types]


def is_prod(config: Mapping[str, Any]) -> bool:
    return config.get("environment", "prod") == "prod"
