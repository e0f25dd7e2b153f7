"""Names AWS makes unique, checked across every stack that shares an account (or, for S3, the world).

A plan is one stack; a collision is between stacks: two stacks in one account and region that both create a load
balancer named `mlserve-reranker`, or both manage API Gateway's account settings, pass every per-stack check and fail
on the second `pulumi up` (DuplicateLoadBalancerName, RepositoryAlreadyExistsException, a setting silently
overwritten). Stacks pinned to different accounts (`account_id`, the provider's `allowed_account_ids`) never
collide except on global names; stacks that name no account are assumed to share one.

Every named AWS resource counts as unique in its account and region unless `NARROWER` says AWS scopes its name more
tightly (each entry says how); a type missing there is checked, so a new resource is covered by default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .model import Plan
from .sdk_schema import autoname_property

UNSPECIFIED_ACCOUNT = "(no account_id: assumed shared)"

GLOBAL = {"aws:s3/bucket:Bucket": "bucket"}
"""S3 bucket names are unique across all accounts in the partition."""

IAM_TYPES = ("aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/instanceProfile:InstanceProfile",
             "aws:iam/user:User", "aws:iam/group:Group", "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
"""IAM is global to the account: a role's name is taken in every region at once, an OIDC provider's URL too (GitHub's,
`token.actions.githubusercontent.com`, is one per account: `mlserve:ci.github_oidc_provider: existing` elsewhere)."""

SINGLETONS = {
    "aws:apigateway/account:Account": "API Gateway's CloudWatch role setting (one per account and region)",
}

NAME_PROPERTY = {
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": "alarmName",
    "aws-native:sagemaker:InferenceComponent": "inferenceComponentName",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "url",
}
"""Types whose name is not the input the provider auto-names (or that have none)."""

NARROWER = {
    "aws:apigateway/restApi:RestApi": "REST API names need not be unique; the id is",
    "aws:apigateway/apiKey:ApiKey": "API key names need not be unique; the id is",
    "aws:apigateway/usagePlan:UsagePlan": "usage plan names need not be unique; the id is",
    "aws:apigateway/vpcLink:VpcLink": "VPC link names need not be unique; the id is",
    "aws:apigateway/model:Model": "unique within its REST API",
    "aws:apigateway/requestValidator:RequestValidator": "unique within its REST API",
    "aws:apigateway/authorizer:Authorizer": "unique within its REST API",
    "aws:ec2/securityGroup:SecurityGroup": "unique within its VPC (each stack has its own)",
    "aws:iam/rolePolicy:RolePolicy": "unique within its role",
    "aws:eks/nodeGroup:NodeGroup": "unique within its cluster",
    "aws:appautoscaling/policy:Policy": "unique within its scalable target",
}


@dataclass(frozen=True)
class StackPlan:
    stack: str
    account_id: str | None
    region: str
    plan: Plan


@dataclass(frozen=True)
class Collision:
    scope: str
    kind: str
    name: str
    stacks: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} in {self.scope}: declared by {', '.join(self.stacks)}"


def claimed_names(stack: StackPlan) -> Iterable[tuple[str, str, str]]:
    """(scope, kind, name) for every name the stack takes where AWS allows it once."""
    account = stack.account_id or UNSPECIFIED_ACCOUNT
    for r in stack.plan.resources:
        if not r.custom or r.type.startswith("pulumi:providers:"):
            continue
        if r.type in SINGLETONS:
            yield f"account {account}, {stack.region}", SINGLETONS[r.type], "(the account's)"
            continue
        if r.type in GLOBAL:
            yield "the aws partition", r.type, r.inputs.get(GLOBAL[r.type], "")
            continue
        if r.type.startswith("kubernetes:"):
            # Elastic Load Balancing names what the controller makes after this annotation: same namespace as NLBs.
            name = ((r.inputs.get("metadata") or {}).get("annotations") or {}).get(
                "alb.ingress.kubernetes.io/load-balancer-name")
            if r.type.endswith(":Ingress") and isinstance(name, str):
                yield f"account {account}, {stack.region}", "aws:lb/loadBalancer:LoadBalancer", name
            continue
        if not r.type.startswith(("aws:", "aws-native:")) or r.type in NARROWER:
            continue
        prop = NAME_PROPERTY.get(r.type) or autoname_property(r.type)
        name = r.inputs.get(prop) if prop else None
        if not isinstance(name, str):
            continue
        scope = f"account {account}" if r.type in IAM_TYPES else f"account {account}, {stack.region}"
        yield scope, r.type, name


def collisions(stacks: Iterable[StackPlan]) -> list[Collision]:
    """Every name two declarations claim in one scope. Stacks without an account id share one account with each
    other and with every named account (the worst case: nothing stops them being deployed there)."""
    stacks = list(stacks)
    named = {s.account_id for s in stacks if s.account_id}
    claims: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for s in stacks:
        accounts = [s.account_id] if s.account_id else sorted(named) + [None]
        for account in accounts:
            for scope, kind, name in claimed_names(StackPlan(s.stack, account, s.region, s.plan)):
                claims[(scope, kind, name)].append(s.stack)
    found = [Collision(scope, kind, name, tuple(sorted(set(who)) if len(set(who)) > 1 else who))
             for (scope, kind, name), who in claims.items() if len(who) > 1]
    return sorted(found, key=lambda c: (c.scope, c.kind, c.name))
