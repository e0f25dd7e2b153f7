"""`python -m policies.check --stack prod` (or `--plan FILE.json`): the policy pack, without the Pulumi CLI.

Evaluates every rule as the CLI's analyzer does: properties deserialized by the policy SDK and wrapped so that reading
a value unknown at preview raises (the analyzer then reports that rule as advisory for the resource), per-rule
enforcement levels and settings from the stack's policy config (what `--policy-pack-config` passes), resource
rules on every resource, stack rules on all of them. Exits 1 on any mandatory violation.

The policy config is `policies/config/<stack>.json` where the stack has its own, else the file of its level,
`policies/config/<mlserve:environment>.json` (dev.json or prod.json); the first line says which was used.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy
from rich.console import Console
from rich.markup import escape

from .pack import PACK_NAME, all_rules

CONFIG_DIR = Path(__file__).resolve().parent / "config"
PROJECT_ROOT = CONFIG_DIR.parents[1]


class NoPolicyConfig(Exception):
    """No config file judges this stack: one line that says what to add."""


def environment_of(stack: str, root: Path = PROJECT_ROOT) -> str | None:
    """`mlserve:environment` as `Pulumi.<stack>.yaml` states it, read without validating the rest of the file."""
    from infra.config import ConfigError
    from infra.config.loader import namespace_values, read_stack_file, stack_file

    path = stack_file(stack, root)
    if not path.is_file():
        return None
    try:
        value = namespace_values(read_stack_file(path)).get("environment")
    except ConfigError:  # a broken file is reported when it is validated; here it only names no level
        return None
    return value if isinstance(value, str) else None


def policy_config_for(stack: str, environment: str | None = None, config_dir: Path = CONFIG_DIR) -> tuple[Path, str]:
    """The config file that judges `stack`, and why: its own `<stack>.json`, else its level's `<environment>.json`
    (`environment` as validated, or read from the stack file)."""
    own = config_dir / f"{stack}.json"
    if own.is_file():
        return own, f"{_shown(own)} (the stack's own)"
    environment = environment or environment_of(stack)
    if environment is None:
        raise NoPolicyConfig(f"no {_shown(own)} and no Pulumi.{stack}.yaml naming its mlserve:environment: add one "
                             "of them, or pass --policy-config")
    level = config_dir / f"{environment}.json"
    if not level.is_file():
        raise NoPolicyConfig(f"no {_shown(own)} and no {_shown(level)} for its mlserve:environment {environment!r}")
    return level, (f"{_shown(level)} ({stack} has no {own.name} of its own: judged by its mlserve:environment, "
                   f"{environment})")


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


@dataclass(frozen=True)
class Violation:
    rule: str
    level: EnforcementLevel
    urn: str
    message: str


def load_policy_config(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    return json.loads(path.read_text())


def enforcement(name: str, default: EnforcementLevel, config: dict[str, Any]) -> EnforcementLevel:
    entry = config.get(name, config.get("all"))
    if isinstance(entry, str):
        return EnforcementLevel(entry)
    if isinstance(entry, dict) and "enforcementLevel" in entry:
        return EnforcementLevel(entry["enforcementLevel"])
    return default


def _options(parent: str | None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
                                 parent=parent)


def _props(resource: dict[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(resource["inputs"]))


def _run(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(result: Any) -> None:
    await result


def _stack_resources(plan: dict[str, Any]) -> list[PolicyResource]:
    by_urn = {r["urn"]: PolicyResource(r["type"], _props(r), r["urn"], r["name"], _options(r.get("parent")), None,
                                       None, [], {}) for r in plan["resources"]}
    for raw in plan["resources"]:
        resource = by_urn[raw["urn"]]
        resource.parent = by_urn.get(raw.get("parent") or "")
        for prop, urns in (raw.get("propertyDependencies") or {}).items():
            resource.property_dependencies[prop] = [by_urn[u] for u in urns if u in by_urn]
            resource.dependencies.extend(by_urn[u] for u in urns if u in by_urn)
    return list(by_urn.values())


def evaluate(plan: dict[str, Any], policy_config: dict[str, Any]) -> list[Violation]:
    violations: list[Violation] = []
    stack_resources = _stack_resources(plan)
    for rule in all_rules():
        policy = rule.policy
        level = enforcement(policy.name, policy.enforcement_level or EnforcementLevel.ADVISORY, policy_config)
        if level == EnforcementLevel.DISABLED:
            continue
        settings = {k: v for k, v in (policy_config.get(policy.name) or {}).items() if k != "enforcementLevel"} \
            if isinstance(policy_config.get(policy.name), dict) else {}

        def report_for(urn_default: str, name: str = policy.name, level: EnforcementLevel = level):
            def report(message: str, urn: str | None = None) -> None:
                violations.append(Violation(name, level, urn or urn_default, message))
            return report

        if isinstance(policy, ResourceValidationPolicy):
            for resource in plan["resources"]:
                if rule.types and resource["type"] not in rule.types:
                    continue
                args = ResourceValidationArgs(resource["type"], _props(resource), resource["urn"], resource["name"],
                                              _options(resource.get("parent")), None, settings)
                try:
                    _run(policy.validate(args, report_for(resource["urn"])))
                except UnknownValueError as unknown:
                    violations.append(Violation(policy.name, EnforcementLevel.ADVISORY, resource["urn"],
                                                f"can't run during preview: {unknown.message}"))
        else:
            try:
                _run(policy.validate(StackValidationArgs(stack_resources, settings), report_for("")))
            except UnknownValueError as unknown:
                violations.append(Violation(policy.name, EnforcementLevel.ADVISORY, "",
                                            f"can't run during preview: {unknown.message}"))
    return violations


def render(violations: Iterable[Violation], stack: str, console: Console) -> None:
    violations = list(violations)
    rules = {r.policy.name: r for r in all_rules()}
    if not violations:
        console.print(f"[green]{stack}: all {len(rules)} rules of {PACK_NAME} pass[/]")
        return
    for name in sorted({v.rule for v in violations}):
        group = [v for v in violations if v.rule == name]
        color = "red" if group[0].level == EnforcementLevel.MANDATORY else "yellow"
        console.print(f"[{color}]{name}[/] {escape('[' + group[0].level.value + ']')} "
                      f"{escape(rules[name].policy.description)}",
                      soft_wrap=True, highlight=False)
        for violation in group:
            detail, _, fix = violation.message.partition("\nFix: ")
            console.print(f"  - {violation.urn or '(stack)'}", soft_wrap=True, highlight=False, markup=False)
            console.print(f"    {detail}", soft_wrap=True, highlight=False, markup=False)
            if fix:
                console.print(f"    Fix: {fix}", soft_wrap=True, highlight=False, markup=False)
    mandatory = sum(v.level == EnforcementLevel.MANDATORY for v in violations)
    console.print(f"{stack}: {mandatory} mandatory, {len(violations) - mandatory} advisory violation(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.check", description=(__doc__ or "").splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="plan this stack offline (Pulumi.<stack>.yaml) and check it")
    source.add_argument("--config-file", type=Path, help="any stack file (the stack is named after it)")
    source.add_argument("--plan", type=Path, help="a plan written by `python -m infra.plan --json`")
    parser.add_argument("--policy-config", type=Path,
                        help="per-rule levels and settings (default: policies/config/<stack>.json, else the file of "
                             "the stack's mlserve:environment)")
    parser.add_argument("--preview", action="store_true", help="with --stack: values AWS computes stay unknown")
    args = parser.parse_args(argv)
    console = Console(width=160)

    environment = None
    if args.plan:
        try:
            plan = json.loads(args.plan.read_text())
        except (OSError, json.JSONDecodeError) as error:
            print(f"cannot read plan {args.plan}: {error}", file=sys.stderr)
            return 2
        if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list):
            print(f"{args.plan} is not a plan written by `python -m infra.plan --json`", file=sys.stderr)
            return 2
    else:
        from infra.config import ConfigError, load_named
        from infra.plan import plan_stack

        try:
            name, cfg = load_named(args.stack, args.config_file)
        except ConfigError as error:
            print(error.render(), file=sys.stderr)
            return 1
        plan, environment = plan_stack(cfg, name, preview=args.preview).as_json(), cfg.environment
    stack = plan.get("stack", "?")
    if args.policy_config:
        if not args.policy_config.is_file():
            print(f"policy config {args.policy_config} not found", file=sys.stderr)
            return 2
        config_path, why = args.policy_config, f"{args.policy_config} (given)"
    else:
        try:
            config_path, why = policy_config_for(stack, environment)
        except NoPolicyConfig as error:
            print(f"{stack}: {error}", file=sys.stderr)
            return 2
    console.print(f"policy config: {why}", soft_wrap=True, highlight=False, markup=False)
    violations = evaluate(plan, load_policy_config(config_path))
    render(violations, stack, console)
    return 1 if any(v.level == EnforcementLevel.MANDATORY for v in violations) else 0


if __name__ == "__main__":
    sys.exit(main())
