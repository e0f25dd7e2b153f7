"""Least privilege: no wildcard actions, no wildcard resources on writes, no broad managed policies."""

import re

from ..framework import as_list, policy_statements, resource_rule

POLICY_TYPES = ["aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/userPolicy:UserPolicy",
                "aws:iam/groupPolicy:GroupPolicy"]
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List|BatchGet)[A-Za-z]*$")


def _allows(document):
    return [s for s in policy_statements(document) if s.get("Effect") == "Allow"]


@resource_rule("iam-no-wildcard-action", types=POLICY_TYPES, description="IAM policies name their actions.",
               fix="List the exact actions the workload calls (for example s3:GetObject), not '*' or 'service:*'.")
def iam_no_wildcard_action(props, config):
    for statement in _allows(props.get("policy")):
        wild = [a for a in as_list(statement.get("Action")) if a == "*" or a.endswith(":*")]
        if wild:
            yield f"statement {statement.get('Sid', '?')} allows {wild}"


@resource_rule("iam-no-wildcard-resource-on-write", types=POLICY_TYPES,
               description="IAM policies scope write actions to resources.",
               fix="Name the ARNs the action writes to. Only actions without resource-level permissions may use "
                   "'*' (list them in this rule's exempt_actions config, with a condition where one exists).",
               schema={"exempt_actions": {"type": "array", "items": {"type": "string"},
                                          "default": ["cloudwatch:PutMetricData"]}})
def iam_no_wildcard_resource_on_write(props, config):
    exempt = set(config["exempt_actions"])
    for statement in _allows(props.get("policy")):
        if "*" not in as_list(statement.get("Resource")):
            continue
        writes = [a for a in as_list(statement.get("Action")) if not READ_ONLY.match(a) and a not in exempt]
        if writes:
            yield f"statement {statement.get('Sid', '?')} allows {writes} on every resource"


@resource_rule("no-broad-managed-policy", types=["aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                                                 "aws:iam/role:Role", "aws:iam/policyAttachment:PolicyAttachment"],
               description="Workload roles carry no *FullAccess or administrator managed policy.",
               fix="Replace the managed policy with an inline policy naming the actions and resources needed.")
def no_broad_managed_policy(props, config):
    arns = as_list(props.get("policyArn")) + as_list(props.get("managedPolicyArns"))
    for arn in arns:
        if isinstance(arn, str) and (arn.endswith("FullAccess") or arn.endswith("/AdministratorAccess")):
            yield f"{arn} is attached"


GITHUB_ISSUER = "token.actions.githubusercontent.com"
# The subjects of GitHub Actions tokens a role may trust: one repository's job in one environment, on one branch, or
# its pull requests (forks get no token). Nothing else: no wildcard, no other claim form (GitHub's
# "About security hardening with OpenID Connect").
GITHUB_SUBJECT = re.compile(r"^repo:[A-Za-z0-9-]+/[A-Za-z0-9_.-]+:"
                            r"(environment:[A-Za-z0-9_. -]+|ref:refs/heads/[A-Za-z0-9_./-]+|pull_request)$")


def _github_trust(statement) -> list[str]:
    """What is wrong with a GitHub Actions trust: the audience and the subject must be exact (StringEquals)."""
    conditions = statement.get("Condition") or {}
    exact = conditions.get("StringEquals") or {}
    problems = []
    if exact.get(f"{GITHUB_ISSUER}:aud") != "sts.amazonaws.com":
        problems.append(f"a GitHub Actions trust without StringEquals {GITHUB_ISSUER}:aud = sts.amazonaws.com")
    loose = sorted({f"{operator} {key}" for operator, keys in conditions.items() if operator != "StringEquals"
                    for key in keys if key.startswith(f"{GITHUB_ISSUER}:")})
    if loose:
        problems.append(f"a GitHub Actions trust matched with {', '.join(loose)}: only StringEquals is exact")
    subjects = as_list(exact.get(f"{GITHUB_ISSUER}:sub"))
    if not subjects:
        problems.append(f"a GitHub Actions trust without StringEquals {GITHUB_ISSUER}:sub: any repository's "
                        "workflow could assume the role")
    for subject in subjects:
        if not GITHUB_SUBJECT.match(str(subject)) or any(c in str(subject) for c in "*?"):
            problems.append(f"the GitHub Actions subject {subject!r} is not one repository's environment, branch "
                            "or pull requests")
    return problems


@resource_rule("trust-policy-scoped", types=["aws:iam/role:Role"],
               description="Role trust policies name who may assume them.",
               fix="Trust a service principal with an aws:SourceAccount condition; an EKS OIDC provider with a "
                   "StringEquals condition on '<issuer>:sub' = 'system:serviceaccount:<namespace>:<name>'; GitHub's "
                   "with StringEquals on token.actions.githubusercontent.com:aud = sts.amazonaws.com and :sub = "
                   "'repo:<owner>/<repo>:environment:<name>' (or ':ref:refs/heads/<branch>', ':pull_request').")
def trust_policy_scoped(props, config):
    for statement in _allows(props.get("assumeRolePolicy")):
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
            yield f"statement {statement.get('Sid', '?')} lets anyone assume the role"
            continue
        if isinstance(principal, dict) and principal.get("Federated") and (
                str(principal.get("Federated")).endswith(f"oidc-provider/{GITHUB_ISSUER}") or any(
                    key.startswith(f"{GITHUB_ISSUER}:") for keys in (statement.get("Condition") or {}).values()
                    for key in keys)):
            yield from _github_trust(statement)
            continue
        if isinstance(principal, dict) and principal.get("Federated"):
            subjects = {k: v for c in (statement.get("Condition") or {}).values() for k, v in c.items()
                        if k.endswith(":sub")}
            exact = (statement.get("Condition") or {}).get("StringEquals", {})
            if not subjects or not any(k.endswith(":sub") for k in exact):
                yield "an OIDC trust has no StringEquals condition on the service account subject"
            elif not all(str(v).startswith("system:serviceaccount:") for v in as_list(next(iter(subjects.values())))):
                yield f"the OIDC subject {subjects} does not name a service account"
