"""The GitHub Actions workflow users get: valid against GitHub's schema, and it does what the README says."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "mlserve.yml"


def test_workflow_validates_against_the_github_workflow_schema():
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_test_check_policies_and_preview_each_stack_with_the_pack():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    commands = [step.get("run") for step in jobs["test"]["steps"]]
    assert "make test" in commands and "make policy" in commands
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    (pulumi,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"


def test_main_deploys_dev_then_prod_behind_an_environment_approval():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert jobs["deploy-prod"]["needs"] == "deploy-dev"
    assert jobs["deploy-prod"]["environment"] == "production"
    for job in ("deploy-dev", "deploy-prod"):
        (pulumi,) = [s for s in jobs[job]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policies"


def test_pull_requests_get_the_cost_of_every_stack_and_its_change_as_one_comment():
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["cost"]
    assert job["if"] == "github.event_name == 'pull_request'" and job["permissions"]["pull-requests"] == "write"
    assert not any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])  # offline: no AWS
    (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["fetch-depth"] == 0  # the base commit is estimated too
    (estimate,) = [s for s in job["steps"] if ".ci/cost-comment" in s.get("run", "")]
    assert '"${{ github.event.pull_request.base.sha }}"' in estimate["run"] and "> cost.md" in estimate["run"]
    (comment,) = [s for s in job["steps"] if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@")]
    assert comment["with"] == {"header": "mlserve-cost", "path": "cost.md"}
    script = (ROOT / ".ci" / "cost-comment").read_text()
    assert "-m infra.cost --stack" in script and "-m infra.cost diff" in script
