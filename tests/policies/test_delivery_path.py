"""The pack on the deploy path: GitHub trusts are exact, the build in the VPC is hardened, a private cluster is
deployed from inside its VPC."""

import json

import pytest

from components.ci_access import GITHUB_ISSUER
from tests.harness import edited
from tests.policies.conftest import plan_json, plan_json_for, refused, resources

SUB, AUD = f"{GITHUB_ISSUER}:sub", f"{GITHUB_ISSUER}:aud"


@pytest.fixture(scope="module")
def dev_plan():
    return plan_json("dev")


def with_trust(plan: dict, role_name: str, condition: dict) -> dict:
    (role,) = [r for r in resources(plan, "aws:iam/role:Role") if r["inputs"].get("name") == role_name]
    document = json.loads(role["inputs"]["assumeRolePolicy"])
    document["Statement"][0]["Condition"] = condition
    role["inputs"]["assumeRolePolicy"] = json.dumps(document)
    return plan


@pytest.mark.parametrize("condition, fragment", [
    ({"StringLike": {AUD: "sts.amazonaws.com", SUB: "repo:acme/mlserve:*"}}, "matched with StringLike"),
    ({"StringEquals": {AUD: "sts.amazonaws.com", SUB: "repo:acme/*:environment:dev"}}, "is not one repository's"),
    ({"StringEquals": {AUD: "sts.amazonaws.com"}}, "any repository's workflow could assume the role"),
    ({"StringEquals": {SUB: "repo:acme/mlserve:environment:dev"}}, f"without StringEquals {AUD} = sts.amazonaws.com"),
    ({"StringEquals": {AUD: "sts.amazonaws.com", SUB: "repo:acme/mlserve:workflow:deploy"}}, "is not one repository's"),
])
def test_a_github_trust_that_is_not_exact_is_refused(dev_plan, condition, fragment):
    plan = with_trust(json.loads(json.dumps(dev_plan)), "mlserve-dev-deploy", condition)
    found = refused(plan, "trust-policy-scoped")
    assert {name for name, _, _ in found} == {"mlserve-dev-ci-deploy"}
    assert any(fragment in message for _, message, _ in found), found


@pytest.mark.parametrize("subject", ["repo:acme/mlserve:ref:refs/heads/main", "repo:acme/mlserve:environment:dev",
                                     "repo:acme/mlserve:pull_request"])
def test_one_repository_s_branch_environment_or_pull_requests_pass(dev_plan, subject):
    plan = with_trust(json.loads(json.dumps(dev_plan)), "mlserve-dev-deploy",
                      {"StringEquals": {AUD: "sts.amazonaws.com", SUB: subject}})
    assert refused(plan, "trust-policy-scoped") == []


BUILD_BREAKS = {
    "runs outside the VPC": lambda p: p["inputs"].pop("vpcConfig"),
    "runs privileged": lambda p: p["inputs"]["environment"].update(privilegedMode=True),
    "keeps PULUMI_ACCESS_TOKEN in plain text": lambda p: p["inputs"]["environment"]["environmentVariables"].append(
        {"name": "PULUMI_ACCESS_TOKEN", "value": "pul-0123", "type": "PLAINTEXT"}),
    "runs the buildspec of whatever source": lambda p: p["inputs"]["source"].pop("buildspec"),
    "AWS-managed key": lambda p: p["inputs"].pop("encryptionKey"),
    "does not log to a log group the stack declares": lambda p: p["inputs"]["logsConfig"]["cloudwatchLogs"].update(
        status="DISABLED"),
    "a log group the stack does not declare": lambda p: p["inputs"]["logsConfig"]["cloudwatchLogs"].update(
        groupName="/somewhere/else"),
    "writes its logs to S3 unencrypted": lambda p: p["inputs"]["logsConfig"].update(
        s3Logs={"status": "ENABLED", "location": "bucket/logs", "encryptionDisabled": True}),
}


@pytest.mark.parametrize("fragment", sorted(BUILD_BREAKS))
def test_each_weakness_of_the_deploy_build_is_named(plan, fragment):
    (project,) = resources(plan, "aws:codebuild/project:Project")
    BUILD_BREAKS[fragment](project)
    found = refused(plan, "ci-build-hardened")
    assert len(found) == 1 and fragment in found[0][1] and found[0][0] == "mlserve-prod-ci-deploy", found


def test_prod_s_private_cluster_deployed_from_github_s_runners_is_refused():
    raw = edited("prod", lambda r: r["mlserve:ci"].update(runner="github"))
    found = refused(plan_json_for(raw, "prod"), "private-cluster-deployed-in-vpc")
    assert [(name, level.value) for name, _, level in found] == [("mlserve-prod-cluster", "mandatory")]
    assert "answers only inside its VPC" in found[0][1] and "mlserve-prod-deploy" in found[0][1]


def test_a_stack_without_ci_or_without_a_private_cluster_is_not_judged_by_it(plan, dev_plan):
    raw = edited("prod", lambda r: r.pop("mlserve:ci"))
    assert refused(plan_json_for(raw, "prod"), "private-cluster-deployed-in-vpc") == []
    assert refused(dev_plan, "private-cluster-deployed-in-vpc") == []
    assert refused(plan, "private-cluster-deployed-in-vpc") == [] and refused(plan, "ci-build-hardened") == []
