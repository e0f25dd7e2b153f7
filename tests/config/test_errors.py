"""Bad stack files: every error listed at once, key path as written, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import ConfigError, load_file
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
    assert "mlserve:deployments[0].autoscaling.min: given nothing (the key is missing)" in text


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
