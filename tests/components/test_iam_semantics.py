"""What IAM grants mean at run time, beyond the policy grammar (parliament, moto) the other tests check."""

import fnmatch
import json

import pytest

from tests.harness import stack_account, stack_plan

ACCOUNT = stack_account("prod")


def statements(plan):
    for r in plan.resources:
        text = r.inputs.get("policy")
        if isinstance(text, str) and '"Statement"' in text and r.type == "aws:iam/rolePolicy:RolePolicy":
            for s in json.loads(text)["Statement"]:
                if s.get("Effect") == "Allow":
                    actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                    resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                    yield r.name, actions, resources, s.get("Condition", {})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_a_role_may_read_it_may_also_list_so_a_missing_key_is_404_not_403(stack):
    # S3 answers GetObject on a missing key with 403 AccessDenied unless the caller may also ListBucket there (S3
    # API reference, GetObject: "Permissions"); code that treats a missing object as a miss (the engine store, the
    # drift job's baseline) would otherwise read a denial. So every read grant comes with the list of its prefix.
    policies: dict[str, list] = {}
    for name, actions, resources, conditions in statements(stack_plan(stack)):
        policies.setdefault(name, []).append((actions, resources, conditions))
    unlisted = []
    for name, grants in policies.items():
        listed = [(res, cond) for actions, res, cond in grants if "s3:ListBucket" in actions]
        for actions, resources, _ in grants:
            if "s3:GetObject" not in actions:
                continue
            for arn in resources:
                bucket, _, key = arn.removeprefix("arn:aws:s3:::").partition("/")
                covered = any(f"arn:aws:s3:::{bucket}" in res and any(
                    fnmatch.fnmatchcase(key, pattern) or pattern == key
                    for pattern in cond.get("StringLike", {}).get("s3:prefix", []))
                    for res, cond in listed)
                if not covered:
                    unlisted.append(f"{name}: {arn}")
    assert unlisted == []


def statements_by_sid(plan, policy_name_suffix: str) -> dict:
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith(policy_name_suffix)]
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_the_load_balancer_controller_may_open_only_security_groups_of_its_vpc():
    import iam_actions

    plan = stack_plan("prod")
    statement = statements_by_sid(plan, "-lb-controller")["OpenPodsToTheBalancer"]
    vpc_id = plan.outputs["vpc_id"]
    assert statement["Condition"] == {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{vpc_id}"}}
    for action in statement["Action"]:  # a key the action does not carry would never match: deny everything
        assert "ec2:Vpc" in iam_actions.actions["ec2"][action.split(":")[1]]["condition_keys"]


def test_the_flow_logs_role_trusts_only_this_account_s_flow_logs():
    plan = stack_plan("prod")
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("-flow-logs")]
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                  "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc-flow-log/*"}}


@pytest.mark.parametrize("policy,sid,service", [
    ("-reranker-serving-role", "DecryptModels", "s3"), ("-reranker-serving-role", "EncryptBuiltEngines", "s3"),
    ("-reranker-drift", "DecryptCaptures", "s3"), ("-resnet50-drift", "DecryptCaptures", "s3"),
    ("-reranker-capture-sink", "EncryptCaptures", "s3"), ("-alertmanager", "EncryptForTheTopic", "sns")])
def test_roles_use_the_stack_key_only_through_the_service_that_calls_kms(policy, sid, service):
    statement = statements_by_sid(stack_plan("prod"), policy)[sid]
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": f"{service}.us-east-1.amazonaws.com"}}
