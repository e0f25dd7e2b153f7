"""The GitHub Actions workflow users get: valid against GitHub's schema, clean under zizmor, and it does what the docs
say: the stacks come from the stack files, each job reaches AWS only through a role its stack declares for exactly
that job, and prod's private cluster is deployed by a build inside its VPC."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.ci_access import GITHUB_ISSUER
from infra.config.loader import available_stacks, load_stack
from tests.harness import stack_plan

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "mlserve.yml"
ZIZMOR = ROOT / ".venv-scan" / "bin" / "zizmor"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def load_stacks_module():
    spec = importlib.util.spec_from_file_location("ci_stacks", ROOT / ".github" / "stacks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STACKS = load_stacks_module()


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def jobs() -> dict[str, Any]:
    return workflow()["jobs"]


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def test_workflow_validates_against_the_github_workflow_schema():
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("persona", ["regular", "pedantic", "auditor"])
def test_zizmor_pinned_finds_nothing(persona):
    if not ZIZMOR.exists():
        pytest.fail("zizmor is not installed: run `make scan-setup` (make test does it)")
    pinned = re.search(r"^zizmor==(\S+)", (ROOT / "tests" / "scan" / "requirements.txt").read_text(), re.M)
    version = subprocess.run([str(ZIZMOR), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert pinned and version.split() == ["zizmor", pinned.group(1)]
    result = subprocess.run([str(ZIZMOR), "--offline", "--persona", persona, "--format", "json",
                             str(WORKFLOW.parent)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_tag_beside_it_and_checkouts_keep_no_credentials():
    lines = [line for line in WORKFLOW.read_text().splitlines() if re.match(r"^\s+(- )?uses:", line)]
    assert lines
    for line in lines:
        reference, _, comment = line.split("uses:", 1)[1].partition("#")
        assert PINNED.match(reference.strip()), line
        assert re.fullmatch(r"v\d+\.\d+\.\d+", comment.strip()), line
    for job in jobs().values():
        for checkout in steps_using(job, "actions/checkout"):
            assert checkout["with"]["persist-credentials"] is False


def test_permissions_are_granted_per_job_and_only_what_each_needs():
    assert workflow()["permissions"] == {}
    granted = {name: job["permissions"] for name, job in jobs().items()}
    assert all(p.get("contents") == "read" for p in granted.values())
    assert {n for n, p in granted.items() if "id-token" in p} == {"preview", "deploy", "deploy-prod"}
    assert {n for n, p in granted.items() if "pull-requests" in p} == {"preview", "cost"}
    assert all(set(p) <= {"contents", "id-token", "pull-requests"} and set(p.values()) <= {"read", "write"}
               and p.get("contents") != "write" for p in granted.values())
    for name, job in jobs().items():  # a job that can reach AWS says which role, and nothing else does
        creds = steps_using(job, "aws-actions/configure-aws-credentials")
        assert bool(creds) == ("id-token" in granted[name]), name


def test_the_matrices_are_the_stack_files_judged_by_their_policy_config():
    rows = STACKS.rows()
    assert [r["stack"] for r in rows] == available_stacks() == ["dev", "prod"]
    matrices = STACKS.matrices(rows)
    assert [r["stack"] for r in matrices["preview"]] == ["dev"]  # prod's cluster API is private: no runner preview
    assert [r["stack"] for r in matrices["deploy"]] == ["dev"] and [r["stack"] for r in matrices["deploy_prod"]] \
        == ["prod"]
    test = jobs()["test"]
    (step,) = [s for s in test["steps"] if s.get("id") == "stacks"]
    assert step["run"] == '.venv/bin/python .github/stacks.py >> "$GITHUB_OUTPUT"'
    for output, job in (("preview", "preview"), ("deploy", "deploy"), ("deploy_prod", "deploy-prod")):
        assert test["outputs"][output] == f"${{{{ steps.stacks.outputs.{output} }}}}"
        assert jobs()[job]["strategy"]["matrix"] == {"include": f"${{{{ fromJSON(needs.test.outputs.{output}) }}}}"}
        assert f"needs.test.outputs.{output} != '[]'" in jobs()[job]["if"]


def test_a_new_stack_joins_the_matrices_judged_by_its_environment(tmp_path):
    for stack in ("dev", "prod"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text((ROOT / f"Pulumi.{stack}.yaml").read_text())
    (tmp_path / "Pulumi.staging.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    rows = {r["stack"]: r for r in STACKS.rows(tmp_path)}
    assert rows["staging"]["policy_config"] == "policies/config/dev.json"
    assert rows["staging"]["role"].endswith(":role/mlserve-ci/mlserve-staging-deploy")
    assert [r["stack"] for r in STACKS.matrices(list(rows.values()))["deploy"]] == ["dev", "staging"]


def test_a_stack_file_that_does_not_validate_stops_the_matrix_in_one_message(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text().replace(
        "runner: github", "runner: laptop"))
    result = subprocess.run([sys.executable, str(ROOT / ".github" / "stacks.py"), "--root", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1 and "mlserve:ci.runner" in result.stderr and "Traceback" not in result.stderr


def trust_subject(stack: str, role_arn: str) -> str:
    name = role_arn.rsplit("/", 1)[1]
    (role,) = [r for r in stack_plan(stack).of_type("aws:iam/role:Role") if r.inputs.get("name") == name]
    assert role_arn == f"arn:aws:iam::{role_arn.split(':')[4]}:role{role.inputs['path']}{name}"
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    return statement["Condition"]["StringEquals"][f"{GITHUB_ISSUER}:sub"]


@pytest.mark.parametrize("row", STACKS.rows(), ids=lambda r: r["stack"])
def test_each_job_assumes_a_role_its_stack_declares_for_exactly_that_job(row):
    ci = load_stack(row["stack"]).ci
    assert ci is not None
    repository = ci.repository
    assert trust_subject(row["stack"], row["role"]) == f"repo:{repository}:environment:{row['github_environment']}"
    if "preview_role" in row:
        assert trust_subject(row["stack"], row["preview_role"]) == f"repo:{repository}:pull_request"
    deploy = jobs()["deploy-prod" if row["environment"] == "prod" else "deploy"]
    assert deploy["environment"] == "${{ matrix.github_environment }}"  # the subject the role trusts
    (creds,) = steps_using(deploy, "aws-actions/configure-aws-credentials")
    assert creds["with"] == {"role-to-assume": "${{ matrix.role }}", "aws-region": "${{ matrix.region }}"}


def test_pull_requests_test_check_policies_and_preview_with_the_pack_and_the_stack_s_policy_config():
    test, preview = jobs()["test"], jobs()["preview"]
    commands = [step.get("run") for step in test["steps"]]
    assert {"make lint", "make test", "make policy"} <= set(commands)
    assert "github.event.pull_request.head.repo.full_name == github.repository" in preview["if"]  # forks: no token
    assert "environment" not in preview  # its token's subject is repo:<repo>:pull_request
    (creds,) = steps_using(preview, "aws-actions/configure-aws-credentials")
    assert creds["with"]["role-to-assume"] == "${{ matrix.preview_role }}"
    (pulumi,) = steps_using(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"] == "${{ matrix.policy_config }}"
    assert pulumi["with"]["cloud-url"] == "${{ matrix.backend_url }}"


def test_main_deploys_dev_stacks_then_prod_stacks_and_prod_runs_pulumi_in_its_vpc():
    deploy, prod = jobs()["deploy"], jobs()["deploy-prod"]
    assert set(prod["needs"]) == {"test", "deploy"} and "!failure()" in prod["if"]
    (row,) = STACKS.matrices(STACKS.rows())["deploy_prod"]
    assert row["runner"] == "codebuild" and row["github_environment"] == "production"
    for job in (deploy, prod):
        (pulumi,) = steps_using(job, "pulumi/actions")
        assert pulumi["if"] == "matrix.runner == 'github'" and pulumi["with"]["command"] == "up"
        assert pulumi["with"]["policyPackConfigs"] == "${{ matrix.policy_config }}"
        (upload,) = [s for s in job["steps"] if "git archive" in s.get("run", "")]
        (build,) = steps_using(job, "aws-actions/aws-codebuild-run-build")
        assert upload["if"] == build["if"] == "matrix.runner == 'codebuild'"
        assert upload["env"] == {"SOURCE_BUCKET": "${{ matrix.source_bucket }}", "COMMIT": "${{ github.sha }}"}
        assert 'aws s3 cp source.zip "s3://$SOURCE_BUCKET/$COMMIT.zip"' in upload["run"]
        assert build["with"]["source-location-override"] == "${{ matrix.source_bucket }}/${{ github.sha }}.zip"
        assert build["with"]["project-name"] == "${{ matrix.project }}" and build["with"]["disable-github-env-vars"]
    # What the build is and may read is what prod's plan declares.
    (project,) = stack_plan("prod").of_type("aws:codebuild/project:Project")
    assert project.inputs["name"] == row["project"] and project.inputs["source"]["location"].startswith(
        f"{row['source_bucket']}/")


def test_pull_requests_get_the_cost_of_every_stack_and_its_change_as_one_comment():
    job = jobs()["cost"]
    assert job["if"] == "github.event_name == 'pull_request'" and job["permissions"]["pull-requests"] == "write"
    assert not steps_using(job, "aws-actions/configure-aws-credentials")  # offline: no AWS
    (checkout,) = steps_using(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the base commit is estimated too
    (estimate,) = [s for s in job["steps"] if ".ci/cost-comment" in s.get("run", "")]
    assert estimate["env"] == {"BASE_SHA": "${{ github.event.pull_request.base.sha }}"}
    assert estimate["run"] == '.ci/cost-comment "$BASE_SHA" > cost.md'
    (comment,) = steps_using(job, "marocchino/sticky-pull-request-comment")
    assert comment["with"] == {"header": "mlserve-cost", "path": "cost.md"}
    script = (ROOT / ".ci" / "cost-comment").read_text()
    assert "-m infra.cost --stack" in script and "-m infra.cost diff" in script


def test_the_cli_the_jobs_install_is_the_sdk_the_project_pins():
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned and {r["pulumi_version"] for r in STACKS.rows() if "pulumi_version" in r} == {pinned.group(1)}
    for name in ("preview", "deploy", "deploy-prod"):
        (pulumi,) = steps_using(jobs()[name], "pulumi/actions")
        assert pulumi["with"]["pulumi-version"] == "${{ matrix.pulumi_version }}"
