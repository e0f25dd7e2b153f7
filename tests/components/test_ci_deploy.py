"""The deploy path (`mlserve:ci`): who may assume what, what the build in the VPC may do, and what it runs.

Prod's cluster API is private: its deploy job starts a CodeBuild build in the private subnets, which assumes the
deploy role; dev's job assumes the deploy role itself. Each role trusts exactly one subject.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
import yaml

from components.ci_access import CI_PATH, GITHUB_ISSUER
from components.in_vpc_deployer import buildspec
from infra.config.models import CiConfig
from tests.harness import config_of, edited, plan_config, raw_config, stack_account, stack_plan

ROOT = Path(__file__).resolve().parents[2]


def role(plan, name: str):
    (found,) = [r for r in plan.of_type("aws:iam/role:Role") if r.inputs.get("name") == name]
    return found


def trust(plan, name: str) -> list[dict]:
    return json.loads(role(plan, name).inputs["assumeRolePolicy"])["Statement"]


def inline(plan, role_name: str) -> list[dict]:
    return [s for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role_name
            for s in json.loads(p.inputs["policy"])["Statement"]]


def arn_of(r, account: str) -> str:
    kind = {"aws:iam/role:Role": "role", "aws:iam/policy:Policy": "policy",
            "aws:iam/instanceProfile:InstanceProfile": "instance-profile"}[r.type]
    return f"arn:aws:iam::{account}:{kind}{r.inputs.get('path') or '/'}{r.inputs['name']}"


def github_condition(subject: str) -> dict:
    return {"StringEquals": {f"{GITHUB_ISSUER}:aud": "sts.amazonaws.com", f"{GITHUB_ISSUER}:sub": subject}}


def test_prod_s_job_may_only_start_the_build_and_only_the_build_may_deploy():
    plan, account = stack_plan("prod"), stack_account("prod")
    (start,) = trust(plan, "mlserve-prod-start")
    assert start["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert start["Condition"] == github_condition("repo:acme/mlserve:environment:production")
    (deploy,) = trust(plan, "mlserve-prod-deploy")
    assert deploy["Principal"] == {"AWS": f"arn:aws:iam::{account}:role{CI_PATH}mlserve-prod-runner"}
    (runner,) = trust(plan, "mlserve-prod-runner")
    assert runner["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assumed = [s for s in inline(plan, "mlserve-prod-runner") if "sts:AssumeRole" in s["Action"]]
    assert [s["Resource"] for s in assumed] == [[f"arn:aws:iam::{account}:role{CI_PATH}mlserve-prod-deploy"]]
    # The job's role: upload, start and follow that one build; nothing else.
    actions = sorted(a for s in inline(plan, "mlserve-prod-start") for a in s["Action"])
    assert actions == ["codebuild:BatchGetBuilds", "codebuild:StartBuild", "kms:GenerateDataKey",
                       "logs:GetLogEvents", "s3:PutObject"]
    assert not [a for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.inputs["role"] in ("mlserve-prod-start", "mlserve-prod-runner")]
    assert "mlserve-prod-preview" not in {r.inputs.get("name") for r in plan.of_type("aws:iam/role:Role")}


def test_dev_s_job_deploys_itself_and_pull_requests_only_preview():
    plan = stack_plan("dev")
    assert [s["Condition"] for s in trust(plan, "mlserve-dev-deploy")] == [
        github_condition("repo:acme/mlserve:environment:dev")]
    assert [s["Condition"] for s in trust(plan, "mlserve-dev-preview")] == [
        github_condition("repo:acme/mlserve:pull_request")]
    attached = {a.inputs["role"]: a.inputs["policyArn"] for a in
                plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "-ci-" in a.name}
    assert attached == {"mlserve-dev-deploy": "arn:aws:iam::aws:policy/PowerUserAccess",
                        "mlserve-dev-preview": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    (decrypt, lock) = inline(plan, "mlserve-dev-preview")
    assert decrypt["Action"] == ["kms:Decrypt"] and decrypt["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mlserve-pulumi-secrets"}}
    assert lock["Resource"] == ["arn:aws:s3:::mlserve-pulumi-state-210987654321-us-east-1/.pulumi/locks/*"]
    assert not plan.of_type("aws:codebuild/project:Project")
    (provider,) = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs == {"url": f"https://{GITHUB_ISSUER}", "clientIdLists": ["sts.amazonaws.com"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_deploy_may_write_iam_on_every_name_the_stack_declares_and_never_on_the_ci_identities(stack):
    plan, account = stack_plan(stack), stack_account(stack)
    grants = [(a, r) for s in inline(plan, f"mlserve-{stack}-deploy") if s["Effect"] == "Allow"
              for a in s["Action"] for r in s["Resource"]]

    def may(action: str, arn: str) -> bool:
        return any(a == action and fnmatch.fnmatchcase(arn, r) for a, r in grants)

    declared = [r for r in plan.resources if r.type in ("aws:iam/role:Role", "aws:iam/policy:Policy",
                                                         "aws:iam/instanceProfile:InstanceProfile")]
    ci = [r for r in declared if r.inputs.get("path") == CI_PATH]
    assert {r.inputs["name"] for r in ci} >= {f"mlserve-{stack}-deploy"}
    for r in declared:
        action = {"aws:iam/role:Role": "iam:PutRolePolicy", "aws:iam/policy:Policy": "iam:CreatePolicyVersion",
                  "aws:iam/instanceProfile:InstanceProfile": "iam:AddRoleToInstanceProfile"}[r.type]
        assert may(action, arn_of(r, account)) == (r not in ci), arn_of(r, account)
    assert not may("iam:PassRole", f"arn:aws:iam::{account}:role{CI_PATH}mlserve-{stack}-deploy")


def test_the_build_runs_in_the_private_subnets_reaches_the_cluster_api_and_administers_the_cluster():
    plan, account = stack_plan("prod"), stack_account("prod")
    (project,) = plan.of_type("aws:codebuild/project:Project")
    vpc = project.inputs["vpcConfig"]
    assert sorted(vpc["subnets"]) == sorted(plan.outputs["private_subnet_ids"]) and vpc["vpcId"] == plan.outputs["vpc_id"]
    (group,) = vpc["securityGroupIds"]
    build_group = plan.by_id(group)
    assert not build_group.inputs.get("ingress") and [
        (e["protocol"], e["fromPort"], e["toPort"]) for e in build_group.inputs["egress"]] == [("tcp", 443, 443)]
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    (admitted,) = [r for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                   if r.inputs.get("referencedSecurityGroupId") == group]
    assert (admitted.inputs["fromPort"], admitted.inputs["toPort"]) == (443, 443)
    assert admitted.property_dependencies["securityGroupId"] == [cluster.urn]
    deploy_arn = f"arn:aws:iam::{account}:role{CI_PATH}mlserve-prod-deploy"
    assert deploy_arn in [e.inputs["principalArn"] for e in plan.of_type("aws:eks/accessEntry:AccessEntry")]
    env = {v["name"]: v for v in project.inputs["environment"]["environmentVariables"]}
    assert env["DEPLOY_ROLE_ARN"]["value"] == deploy_arn and env["STACK"]["value"] == "prod"
    assert project.inputs["environment"]["privilegedMode"] is False and project.inputs["concurrentBuildLimit"] == 1


def test_the_build_logs_to_its_encrypted_group_and_its_sources_are_audited():
    plan = stack_plan("prod")
    (project,) = plan.of_type("aws:codebuild/project:Project")
    group = project.inputs["logsConfig"]["cloudwatchLogs"]["groupName"]
    (logs,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.inputs["name"] == group]
    assert logs.inputs["kmsKeyId"] == plan.outputs["kms_key_arn"] and logs.inputs["retentionInDays"] == 365
    assert project.inputs["encryptionKey"] == plan.outputs["kms_key_arn"]
    source = project.inputs["source"]["location"].split("/")[0]
    assert source == f"mlserve-prod-ci-{stack_account('prod')}"
    trails = [t for t in plan.of_type("aws:cloudtrail/trail:Trail")
              if f"arn:aws:s3:::{source}/" in json.dumps(t.inputs["advancedEventSelectors"])]
    assert len(trails) == 1 and trails[0].inputs["enableLogFileValidation"] is True


def test_the_buildspec_installs_the_pinned_cli_checked_against_its_checksums_and_gates_with_the_pack():
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned and CiConfig.model_fields["pulumi_version"].default == pinned.group(1)
    (project,) = stack_plan("prod").of_type("aws:codebuild/project:Project")
    spec = project.inputs["source"]["buildspec"]
    assert spec == buildspec(pinned.group(1))
    commands = [c for phase in json.loads(spec)["phases"].values() for c in phase["commands"]]
    cli = f"pulumi-v{pinned.group(1)}-linux-x64.tar.gz"
    assert commands.index(f"grep ' {cli}$' checksums.txt | sha256sum --check --strict -") < \
        next(i for i, c in enumerate(commands) if c.startswith(f"tar -xzf {cli}"))
    pack = next(i for i, c in enumerate(commands) if c.startswith(".venv/bin/python -m policies.check"))
    up = next(i for i, c in enumerate(commands) if c.startswith("pulumi up"))
    assert pack < up and "--policy-pack policies" in commands[up] and "--yes" in commands[up]
    assert yaml.safe_load(spec) == json.loads(spec)  # CodeBuild reads the buildspec as YAML


def test_ci_roles_are_declared_with_the_first_up_so_ci_can_run_the_second():
    def stores(raw):
        raw["mlserve:phase"] = "stores"
    prod = plan_config(edited("prod", stores), "prod")
    assert {"mlserve-prod-start", "mlserve-prod-deploy", "mlserve-prod-runner"} <= {
        r.inputs.get("name") for r in prod.of_type("aws:iam/role:Role")}
    assert prod.of_type("aws:codebuild/project:Project") and prod.of_type("aws:ec2/vpc:Vpc")
    assert not prod.of_type("aws:eks/cluster:Cluster")
    dev = plan_config(edited("dev", stores), "dev")
    assert "mlserve-dev-deploy" in {r.inputs.get("name") for r in dev.of_type("aws:iam/role:Role")}
    assert not dev.of_type("aws:ec2/vpc:Vpc")  # a job-run deploy needs no VPC of its own yet
    # The same resources in both phases: switching to `all` changes none of them.
    full = {r.urn: r.as_json() for r in stack_plan("prod").resources}
    assert all(full[r.urn] == r.as_json() for r in prod.resources if "mlserve:ci:" in r.urn
               and "cluster-api" not in r.urn)


def test_ci_needs_the_account_and_a_token_for_a_pulumi_cloud_build():
    raw = raw_config("dev")
    raw.pop("mlserve:account_id")
    with pytest.raises(Exception, match="set mlserve:account_id too"):
        config_of(raw)
    raw = edited("prod", lambda r: r["mlserve:ci"].update(backend_url="https://api.pulumi.com"))
    with pytest.raises(Exception, match="needs access_token_secret_arn"):
        config_of(raw)
    token = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mlserve/pulumi-token-AbCdEf"
    raw["mlserve:ci"]["access_token_secret_arn"] = token
    plan = plan_config(raw, "prod")
    (project,) = plan.of_type("aws:codebuild/project:Project")
    env = {v["name"]: v for v in project.inputs["environment"]["environmentVariables"]}
    assert env["PULUMI_ACCESS_TOKEN"] == {"name": "PULUMI_ACCESS_TOKEN", "value": token, "type": "SECRETS_MANAGER"}
    assert any(s["Action"] == ["secretsmanager:GetSecretValue"] and s["Resource"] == [token]
               for s in inline(plan, "mlserve-prod-runner"))


def test_a_second_stack_in_the_account_uses_the_existing_oidc_provider():
    raw = edited("dev", lambda r: r["mlserve:ci"].update(github_oidc_provider="existing"))
    plan = plan_config(raw, "dev")
    assert not plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    (statement,) = trust(plan, "mlserve-dev-deploy")
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::{stack_account('dev')}:oidc-provider/{GITHUB_ISSUER}"}
