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


@resource_rule("trust-policy-scoped", types=["aws:iam/role:Role"],
               description="Role trust policies name who may assume them.",
               fix="Trust a service principal with an aws:SourceAccount condition, or an OIDC provider with a "
                   "StringEquals condition on '<issuer>:sub' = 'system:serviceaccount:<namespace>:<name>'.")
def trust_policy_scoped(props, config):
    for statement in _allows(props.get("assumeRolePolicy")):
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
            yield f"statement {statement.get('Sid', '?')} lets anyone assume the role"
            continue
        if isinstance(principal, dict) and principal.get("Federated"):
            subjects = {k: v for c in (statement.get("Condition") or {}).values() for k, v in c.items()
                        if k.endswith(":sub")}
            exact = (statement.get("Condition") or {}).get("StringEquals", {})
            if not subjects or not any(k.endswith(":sub") for k in exact):
                yield "an OIDC trust has no StringEquals condition on the service account subject"
            elif not all(str(v).startswith("system:serviceaccount:") for v in as_list(next(iter(subjects.values())))):
                yield f"the OIDC subject {subjects} does not name a service account"
