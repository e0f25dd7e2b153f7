"""The offline runner: exit codes, messages that name the resource and the fix, and the config files."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from policies.check import CONFIG_DIR, main, policy_config_for
from policies.pack import all_rules
from tests.policies.conftest import plan_json, resources

ROOT = Path(__file__).resolve().parents[2]


def test_clean_stacks_exit_0(stack, capsys):
    assert main(["--stack", stack]) == 0
    assert f"{stack}: all {len(all_rules())} rules" in capsys.readouterr().out


def test_a_mandatory_violation_exits_1_naming_the_resource_and_the_fix(tmp_path):
    plan = plan_json("prod")
    resources(plan, "aws:sns/topic:Topic")[0]["inputs"].pop("kmsMasterKeyId")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = subprocess.run([sys.executable, "-m", "policies.check", "--plan", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    out = result.stdout
    assert "sns-topic-kms [mandatory] SNS topics are KMS-encrypted." in out
    assert "  - urn:pulumi:prod::mlserve::mlserve:observability:Alerting$aws:sns/topic:Topic::mlserve-prod-alerts" in out
    assert "    kmsMasterKeyId is not set" in out
    assert "    Fix: Set kms_master_key_id to the stack key" in out
    assert "prod: 1 mandatory, 0 advisory violation(s)" in out


def test_a_file_that_is_not_a_plan_is_refused_cleanly(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    assert main(["--plan", str(path)]) == 2
    assert "is not a plan written by" in capsys.readouterr().err


def test_policy_config_files_name_every_rule_and_fit_its_schema(stack):
    config = json.loads((CONFIG_DIR / f"{stack}.json").read_text())
    assert set(config) == {r.policy.name for r in all_rules()}
    for rule in all_rules():
        entry = config[rule.policy.name]
        assert entry["environment"] == stack
        schema = {"type": "object", "properties": {**rule.policy.config_schema.properties,
                                                   "enforcementLevel": {"enum": ["advisory", "mandatory", "disabled"]}},
                  "additionalProperties": False}
        jsonschema.validate(entry, schema)


def test_prod_config_makes_every_rule_mandatory():
    config = json.loads((CONFIG_DIR / "prod.json").read_text())
    assert {entry["enforcementLevel"] for entry in config.values()} == {"mandatory"}


def test_pack_entry_point_only_assembles():
    source = (ROOT / "policies" / "__main__.py").read_text()
    assert "PolicyPack(" in source and "def " not in source


def test_a_new_stack_without_its_own_policy_config_is_judged_by_its_environment_and_says_so(tmp_path):
    staging = tmp_path / "Pulumi.staging.yaml"
    staging.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    result = subprocess.run([sys.executable, "-m", "policies.check", "--config-file", str(staging)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first == ("policy config: policies/config/dev.json (staging has no staging.json of its own: judged by "
                     "its mlserve:environment, dev)")
    # Judged as prod (what a missing config used to mean, silently), dev's scale-to-zero would be refused.
    assert "prod-endpoint-capacity" not in result.stdout
    as_prod = subprocess.run([sys.executable, "-m", "policies.check", "--config-file", str(staging),
                              "--policy-config", str(CONFIG_DIR / "prod.json")], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert as_prod.returncode == 1 and "prod-endpoint-capacity [mandatory]" in as_prod.stdout


def test_the_level_file_follows_the_environment_and_a_stack_s_own_file_wins():
    assert policy_config_for("dev") == (CONFIG_DIR / "dev.json", "policies/config/dev.json (the stack's own)")
    path, why = policy_config_for("live", "prod")
    assert path == CONFIG_DIR / "prod.json" and why.endswith("judged by its mlserve:environment, prod)")


def test_a_plan_of_a_stack_with_no_config_and_no_stack_file_is_refused_in_one_line(tmp_path, capsys):
    plan = plan_json("dev")
    plan["stack"] = "qa"
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(plan))
    assert main(["--plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("qa: no policies/config/qa.json and no Pulumi.qa.yaml naming its mlserve:environment: "
                           "add one of them, or pass --policy-config")
    assert main(["--plan", str(path), "--policy-config", str(CONFIG_DIR / "dev.json")]) == 0
    assert f"policy config: {CONFIG_DIR / 'dev.json'} (given)" in capsys.readouterr().out
