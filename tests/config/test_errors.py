"""Bad stack files: every error listed at once, key path as written, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import ConfigError, StackConfig, load_file, validate
from infra.config.errors import PATTERN_FORMATS, nearest
from tests.harness import dump_yaml, edited

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "Pulumi.broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def render_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    return caught.value.render()


def test_missing_stack_file_lists_the_stacks_that_exist(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    text = render_error(tmp_path / "Pulumi.qa.yaml")
    assert "an existing stack file (stacks here: dev)" in text


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    text = render_error(write(tmp_path, "config:\n  mlserve:environment: dev\n  mlserve:tags: [owner\n"))
    assert "YAML at line 4, column 1" in text
    assert "valid YAML syntax" in text


def test_file_without_a_config_block_is_explained(tmp_path):
    assert "a mapping under the top-level key 'config:'" in render_error(write(tmp_path, "environment: dev\n"))


def test_typo_in_a_key_suggests_the_real_key(tmp_path):
    def edit(raw):
        raw["mlserve:deployments"][0]["autoscaling"]["mn"] = raw["mlserve:deployments"][0]["autoscaling"].pop("min")

    text = render_error(write(tmp_path, dump_yaml(edited("dev", edit))))
    assert "mlserve:deployments[0].autoscaling.mn: given 0; allowed: unknown key (did you mean 'min'?)" in text
    assert "mlserve:deployments[0].autoscaling.min: missing; expected: Fewest instances or replicas" in text


def test_a_renamed_key_is_refused_with_its_new_name(tmp_path):
    """A stack file from before the rename (component -> inference_component) is told what to write."""
    def edit(raw):
        d = raw["mlserve:deployments"][0]
        d["component"] = d.pop("inference_component")

    text = render_error(write(tmp_path, dump_yaml(edited("dev", edit))))
    assert "mlserve:deployments[0].component: given {" in text
    assert "allowed: this key is now named 'inference_component': rename it (docs/versions.md, Upgrading)" in text


def test_wrong_type_says_what_was_given(tmp_path):
    text = render_error(write(tmp_path, dump_yaml(edited(
        "dev", lambda r: r["mlserve:deployments"][0]["autoscaling"].update(max="lots")))))
    assert "mlserve:deployments[0].autoscaling.max: given 'lots'; allowed: a valid integer" in text


def test_every_error_in_the_file_is_listed_at_once(tmp_path):
    def edit(raw):
        raw["mlserve:deployments"][0]["autoscaling"]["min"] = -1
        raw["mlserve:deployments"][0]["rollout"] = {"strategy": "canary", "percent": 70, "bake_minutes": 5}
        raw["mlserve:network"]["cidr"] = "10.0.0.0/8"
        raw["mlserve:environment"] = "staging"

    text = render_error(write(tmp_path, dump_yaml(edited("dev", edit))))
    assert text.splitlines()[0].endswith("4 configuration errors")
    for path in ("mlserve:deployments[0].autoscaling.min", "mlserve:deployments[0].rollout.percent",
                 "mlserve:network.cidr", "mlserve:environment"):
        assert f"{path}: given" in text


def test_unknown_backend_lists_the_backends():
    from infra.config import validate

    with pytest.raises(ConfigError) as caught:
        validate(edited("dev", lambda r: r["mlserve:deployments"][0].update(backend="vertex")), "Pulumi.dev.yaml")
    assert "mlserve:deployments[0].backend: given 'vertex'; allowed: one of 'sagemaker', 'kserve'" in \
        caught.value.render()


def test_plan_cli_exits_1_with_the_message_and_no_traceback(tmp_path):
    broken = write(tmp_path, dump_yaml(edited("prod", lambda r: r["mlserve:deployments"][0]["autoscaling"].update(
        min=1))), "Pulumi.prod.yaml")
    result = subprocess.run([sys.executable, "-m", "infra.plan", "--config-file", str(broken)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "mlserve:deployments[0].autoscaling.min: given 1; allowed: at least 2 in prod" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def deployment(raw, index=0):
    return raw["mlserve:deployments"][index]


def issues_of(raw, stack="dev"):
    with pytest.raises(ConfigError) as caught:
        validate(raw, f"Pulumi.{stack}.yaml")
    return {issue.path: issue for issue in caught.value.issues}, caught.value.render()


@pytest.mark.parametrize("edit,path,suggested,not_suggested", [
    (lambda r: deployment(r)["compute"].update(instance_type="ml.g5.xlarg"),
     "mlserve:deployments[0].compute.instance_type", "(did you mean 'ml.g5.xlarge'?)", "ml.g5.12xlarge'"),
    (lambda r: deployment(r)["compute"].update(instance_type="ml.g5.2xlarg"),
     "mlserve:deployments[0].compute.instance_type", "(did you mean 'ml.g5.2xlarge'?)", "ml.g5.12xlarge'"),
    (lambda r: r.update({"mlserve:environment": "dve"}), "mlserve:environment", "(did you mean 'dev'?)", "'prod'?"),
    (lambda r: deployment(r).update(hosting="inference_component"), "mlserve:deployments[0].hosting",
     "(did you mean 'inference_components'?)", "'endpoint'?"),
    (lambda r: deployment(r)["compute"].update(inference_ami_version="al2023-ami-sagemaker-inference-gpu-4-l"),
     "mlserve:deployments[0].compute.inference_ami_version",
     "(did you mean 'al2023-ami-sagemaker-inference-gpu-4-1'?)", "gpu-3-1'?"),
])
def test_a_near_miss_suggests_the_nearest_value(edit, path, suggested, not_suggested):
    found, text = issues_of(edited("dev", edit))
    assert list(found) == [path], text  # and nothing that follows from it (an unknown type has no known GPUs)
    assert suggested in found[path].allowed and not_suggested not in found[path].allowed, text


def test_nearest_is_by_edits_and_offers_nothing_far():
    assert nearest("ml.g5.xlarg", ["ml.g5.12xlarge", "ml.g5.xlarge", "ml.g5.2xlarge"]) == ["ml.g5.xlarge"]
    assert nearest("ml.g5.3xlarge", ["ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.48xlarge"]) == \
        ["ml.g5.2xlarge", "ml.g5.4xlarge"]
    assert nearest("banana", ["dev", "prod"]) == []


def _patterns(node):
    if isinstance(node, dict):
        if "pattern" in node:
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_pattern_of_the_models_is_said_in_words_with_an_example():
    missing = sorted(set(_patterns(StackConfig.model_json_schema())) - set(PATTERN_FORMATS))
    assert missing == [], f"add these to infra/config/errors.py PATTERN_FORMATS: {missing}"
    assert all("e.g. " in text for text in PATTERN_FORMATS.values())


REGEX_MARKS = ("^", "$'", "\\d", "[a-z", "{64}", "should match pattern")


@pytest.mark.parametrize("edit,path,words", [
    (lambda r: deployment(r)["model"].update(sha256="abc"), "mlserve:deployments[0].model.sha256",
     "64 lowercase hexadecimal digits"),
    (lambda r: deployment(r).update(name="ResNet"), "mlserve:deployments[0].name", "e.g. resnet50"),
    (lambda r: r.update({"mlserve:region": "US East"}), "mlserve:region", "an AWS region name, e.g. us-east-1"),
    (lambda r: r.update({"mlserve:account_id": "2109876543"}), "mlserve:account_id", "a 12-digit AWS account id"),
    (lambda r: r["mlserve:network"].update(cidr="10.40.0.0/8"), "mlserve:network.cidr", "e.g. 10.40.0.0/16"),
    (lambda r: deployment(r)["compute"].update(instance_type="g5.xlarge"),
     "mlserve:deployments[0].compute.instance_type", "ml.<family>.<size>, e.g. ml.g5.xlarge"),
    (lambda r: deployment(r)["image"].update(tag=None, digest="sha256:abc"), "mlserve:deployments[0].image.digest",
     "sha256: and 64 lowercase hexadecimal digits"),
    (lambda r: r["mlserve:alerting"].update(emails=["oncall.example.com"]), "mlserve:alerting.emails[0]",
     "an email address, e.g. oncall@example.com"),
])
def test_a_pattern_is_explained_in_words_never_as_a_regular_expression(edit, path, words):
    found, text = issues_of(edited("dev", edit))
    assert path in found, text
    assert words in found[path].allowed, text
    assert not any(mark in text for mark in REGEX_MARKS), text


def test_a_missing_key_says_missing_never_given_none():
    found, text = issues_of(edited("dev", lambda r: deployment(r)["slo"].pop("p99_latency_ms")))
    assert "mlserve:deployments[0].slo.p99_latency_ms: missing; expected: p99 latency" in text
    # a key a rule requires, left unset
    found, text = issues_of(edited("prod", lambda r: (r["mlserve:cluster"].pop("ingress_certificate_arn"),
                                                      r["mlserve:cluster"].pop("ingress_domain"))), "prod")
    assert "mlserve:cluster.ingress_certificate_arn: missing; expected: an ACM certificate ARN in prod" in text
    # a key written without a value (`p99_latency_ms:`)
    found, text = issues_of(edited("dev", lambda r: deployment(r)["slo"].update(p99_latency_ms=None)))
    assert "mlserve:deployments[0].slo.p99_latency_ms: missing a value (empty, or null)" in text
    assert "None" not in text


@pytest.mark.parametrize("written,meant", [
    ("mlserv:gateway", "mlserve:gateway"),
    ("gateway", "mlserve:gateway"),
    ("mlsrve:gatway", "mlserve:gateway"),
    ("ml-serve:alerting", "mlserve:alerting"),
])
def test_a_key_outside_the_namespace_is_pointed_at_the_nearest_key(written, meant):
    found, text = issues_of(edited("dev", lambda r: r.update({written: r.pop(meant)})))
    assert written in found, text
    assert f"did you mean {meant!r}?" in found[written].allowed, text
    assert f"{meant}: missing" in text


def test_other_providers_keys_are_theirs():
    raw = edited("dev", lambda r: r.update({"aws:region": "us-east-1", "kubernetes:context": "dev",
                                            "pulumi:disable-default-providers": ["kubernetes"]}))
    assert validate(raw, "Pulumi.dev.yaml").region == "us-east-1"


def test_aws_region_other_than_mlserve_region_is_refused_naming_both():
    found, text = issues_of(edited("dev", lambda r: r.update({"aws:region": "eu-west-1"})))
    assert list(found) == ["aws:region"], text
    assert "aws:region: given 'eu-west-1'; allowed: us-east-1, as mlserve:region" in text
    assert "aws:region (eu-west-1)" in text and "mlserve:region (us-east-1)" in text
