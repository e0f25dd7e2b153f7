"""The offline plan: the main job on the embedded default."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.plan.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def test_plan_json_has_the_policy_pack_shape(tmp_path, capsys):
    out = tmp_path / "prod.json"
    assert main(["--stack", "prod", "--json", str(out), "--quiet"]) == 0
    plan = json.loads(out.read_text())
    assert plan["stack"] == "prod" and set(plan) >= {"stack", "resources", "outputs"}
    for resource in plan["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "custom", "inputs", "propertyDependencies",
                                 "provider", "dependencies", "aliases"}
    bucket = next(r for r in plan["resources"] if r["type"] == "aws:s3/bucketVersioning:BucketVersioning"
                  and r["name"].endswith("-models"))
    assert "versioningConfiguration" in bucket["inputs"]  # engine camelCase, not versioning_configuration
    assert bucket["parent"] == "urn:pulumi:prod::mlserve::mlserve:storage:ModelStore::mlserve-prod"
    assert plan["outputs"]["model_bucket"] == "mlserve-prod-models"
    model = next(r for r in plan["resources"] if r["type"] == "aws:sagemaker/model:Model")
    subnet_urns = [u for u in model["propertyDependencies"]["vpcConfig"] if "aws:ec2/subnet:Subnet" in u]
    assert len(subnet_urns) == 3


def test_preview_mode_keeps_computed_values_unknown(tmp_path):
    out = tmp_path / "dev.json"
    assert main(["--stack", "dev", "--json", str(out), "--quiet", "--preview"]) == 0
    plan = json.loads(out.read_text())
    flow_log = next(r for r in plan["resources"] if r["type"] == "aws:ec2/flowLog:FlowLog")
    assert flow_log["inputs"]["iamRoleArn"] == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def test_make_plan_command_prints_the_dev_tree_and_counts():
    # `make plan` as the README gives it (the virtualenv taken as set up: -o skips its stamp).
    result = subprocess.run(["make", "-o", ".venv/.installed", "plan", f"PY={sys.executable}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "mlserve-dev (pulumi:pulumi:Stack)" in result.stdout
    assert "mlserve:network:Network mlserve-dev" in result.stdout
    assert "aws:ec2/natGateway:NatGateway" in result.stdout
    assert re.search(r"dev: \d+ resources, \d+ components", result.stdout)
    assert "Monthly cost (priced lines, us-east-1 list prices of" in result.stdout  # the estimate's summary line
    from infra.cost import declared_from_plan, estimate, load_table
    from infra.cost.report import summary
    from tests.harness import stack_plan
    # the summary is the estimate of the very plan make plan wrote (python -m infra.cost --plan)
    # and it names the command that prints the table of that very plan, as this checkout runs it
    assert summary(estimate(declared_from_plan(stack_plan("dev").as_json()), load_table("us-east-1"), stack="dev"),
                   ".venv/bin/python -m infra.cost --plan build/dev.plan.json") in result.stdout


def test_a_govcloud_stack_is_refused_with_a_clear_config_error(tmp_path):
    """ARNs are built for the `aws` partition: a us-gov-west-1 (or China) stack fails config, not its first `up`."""
    import yaml

    for region, partition in (("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")):
        stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
        stack["config"]["mlserve:region"] = region
        path = tmp_path / f"Pulumi.{region}.yaml"
        path.write_text(yaml.safe_dump(stack, sort_keys=False))
        run = subprocess.run([sys.executable, "-m", "infra.plan", "--config-file", str(path), "--quiet"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, run.stdout
        assert "region" in run.stderr and repr(partition) in run.stderr and region in run.stderr
        assert "Traceback" not in run.stderr + run.stdout


@pytest.fixture(scope="module")
def written_dev_plans(tmp_path_factory) -> list[Path]:
    """Dev's plan as `python -m infra.plan --json` writes it, from two processes under different hash seeds: written
    once for the tests of this file that read what the CLI writes."""
    written = []
    for seed in ("1", "2"):
        out = tmp_path_factory.mktemp("plans") / f"dev-{seed}.json"
        subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "dev", "--json", str(out), "--quiet"],
                       cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed},
                       timeout=120)
        written.append(out)
    return written


def test_the_same_program_writes_the_same_plan_byte_for_byte(written_dev_plans):
    # The mock engine registers resources in an order that varies between processes (string hashing among other
    # things): two runs under different hash seeds must still write identical JSON.
    first, second = written_dev_plans
    assert first.read_bytes() == second.read_bytes()


def test_the_policy_pack_accepts_the_plan_infra_plan_writes(written_dev_plans):
    from policies.check import main as check

    assert check(["--plan", str(written_dev_plans[0])]) == 0


def test_json_to_an_unwritable_path_fails_before_planning_in_one_line(tmp_path, capsys, monkeypatch):
    import infra.plan.__main__ as plan_cli

    def no_plan(*args, **kwargs):
        raise AssertionError("planned before checking where the plan goes")

    monkeypatch.setattr(plan_cli, "plan_stack", no_plan)
    missing = tmp_path / "no-such-dir" / "dev.plan.json"
    assert main(["--stack", "dev", "--json", str(missing), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"cannot write the plan to {missing}: the directory {missing.parent} does "
                                         f"not exist (create it: mkdir -p {missing.parent})"]
    assert main(["--stack", "dev", "--json", str(tmp_path), "--quiet"]) == 1
    assert capsys.readouterr().err.splitlines() == [f"cannot write the plan to {tmp_path}: it is a directory (name "
                                                    "a file, e.g. build/dev.plan.json)"]


def test_the_tree_puts_every_resource_under_its_parent_whatever_the_order():
    from infra.plan.__main__ import build_tree
    from tests.harness import stack_plan

    plan = stack_plan("dev")
    tree = build_tree(plan)

    def depth_of(node, label: str, depth: int = 0) -> int | None:
        if str(node.label).endswith(label):
            return depth
        for child in node.children:
            found = depth_of(child, label, depth + 1)
            if found is not None:
                return found
        return None

    nested = [r for r in plan.resources if r.parent and any(p.urn == r.parent and not p.custom for p in plan.resources)]
    assert nested, "the dev stack has components with children"
    for resource in nested[:20]:
        parent = next(p for p in plan.resources if p.urn == resource.parent)
        assert depth_of(tree, f"{resource.type} {resource.name}") == depth_of(tree, f"{parent.type}[/] {parent.name}") + 1
