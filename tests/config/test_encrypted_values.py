"""Encrypted values (`pulumi config set --secret` stores `{secure: v1:...}`) do not stop the offline tools.

Offline, such a value is a secret whose plaintext is unknown, as `pulumi preview` without the secrets provider sees
it: validation checks that it is there and says, in one warning line per key, what it could not check; the plan
records what is built from it as a secret of unknown value; the pack and the estimate run. With the Pulumi CLI,
`decrypt=True` (what the operator tools ask for) reads the plaintext through the stack's own secrets provider.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pulumi.runtime import rpc

from infra.config import ConfigError, load_stack
from infra.config.loader import encrypted_of, load_file, secure_leaves, warnings_of
from infra.plan import plan_stack
from infra.plan.model import UNKNOWN_MARKER
from policies.check import evaluate
from tests.harness import dump_yaml, edited, stack_plan
from tests.test_plan_cli import ROOT

CIPHERTEXT = "v1:3m0jvI0Ew8q8pR2T:Zq7Q2n0x0b7C5l9fQvYxw8m1H3kU0dJtW7sR6aB9eLk="


def secret_at(raw: dict, *loc) -> None:
    node = raw
    for part in loc[:-1]:
        node = node[part]
    node[loc[-1]] = {"secure": CIPHERTEXT}


def write(tmp_path: Path, raw: dict, stack: str = "dev") -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(dump_yaml(raw))
    return path


def is_unknown_secret(value) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig and \
        value.get("value") == UNKNOWN_MARKER


def test_the_checked_in_prod_stack_holds_an_encrypted_alert_address_and_the_pack_passes_on_it():
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    assert [loc for value in raw["config"].values() for loc, _ in secure_leaves(value)] == [("emails", 0)]
    assert raw["secretsprovider"].startswith("awskms://")  # what `pulumi stack init --secrets-provider` writes
    plan = stack_plan("prod")
    (email,) = [r for r in plan.resources if r.name == "mlserve-prod-email-0"]
    assert is_unknown_secret(email.as_json()["inputs"]["endpoint"])
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    about_it = [v for v in evaluate(plan.as_json(), config) if "email" in v.urn]
    assert about_it == []


def test_an_encrypted_address_loads_with_one_warning_line_naming_its_key(tmp_path, capsys):
    raw = edited("dev", lambda r: secret_at(r, "mlserve:alerting", "emails", 0))
    cfg = load_file(write(tmp_path, raw))
    (secret,) = encrypted_of(cfg)
    assert secret.path == "mlserve:alerting.emails[0]" and cfg.alerting.emails == [secret.stand_in]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: ") and "mlserve:alerting.emails[0] is encrypted" in line
    assert "`pulumi config get --path 'mlserve:alerting.emails[0]' --stack dev`" in line
    assert CIPHERTEXT not in line and secret.stand_in not in line


def test_what_is_built_from_an_encrypted_value_is_a_secret_of_unknown_value_and_outputs_hide_it(tmp_path):
    raw = edited("dev", lambda r: secret_at(r, "mlserve:model_store", "bucket"))
    cfg = load_file(write(tmp_path, raw))
    (secret,) = encrypted_of(cfg)
    plan = plan_stack(cfg, "dev")
    text = json.dumps(plan.as_json())
    assert secret.stand_in not in text  # every input that carried it is concealed, and so is the output
    concealed = [r.name for r in plan.of_type("aws:s3/bucket:Bucket")
                 if is_unknown_secret(r.as_json()["inputs"]["bucket"])]
    assert len(concealed) == 2  # the model bucket and its audit bucket, `<bucket>-audit`
    assert plan.outputs["model_bucket"] == "[secret]"


def test_presence_is_checked_and_a_rule_that_depends_on_the_value_is_named_as_not_checked(tmp_path, capsys):
    raw = edited("dev", lambda r: secret_at(r, "mlserve:model_store", "bucket"))
    cfg = load_file(write(tmp_path, raw))
    lines = capsys.readouterr().err.splitlines()
    assert cfg.model_store.bucket == encrypted_of(cfg)[0].stand_in
    # The model's URI must lie in the bucket: with the bucket unknown, that rule cannot judge, and says so.
    assert any("mlserve:deployments[0].model.uri: not checked offline" in line
               and "mlserve:model_store.bucket" in line and "<encrypted>" in line for line in lines), lines
    missing = edited("dev", lambda r: r["mlserve:model_store"].pop("bucket"))
    with pytest.raises(ConfigError) as raised:
        load_file(write(tmp_path, missing))
    assert [i.path for i in raised.value.issues] == ["mlserve:model_store.bucket"]


def test_an_encrypted_number_or_switch_is_refused_in_one_line(tmp_path):
    raw = edited("dev", lambda r: secret_at(r, "mlserve:network", "availability_zones"))
    with pytest.raises(ConfigError) as raised:
        load_file(write(tmp_path, raw))
    (issue,) = raised.value.issues
    assert issue.path == "mlserve:network.availability_zones" and "cannot be unknown offline" in issue.allowed


def test_the_offline_clis_run_on_a_stack_file_with_an_encrypted_value(tmp_path):
    raw = edited("dev", lambda r: secret_at(r, "mlserve:alerting", "emails", 0))
    path = write(tmp_path, raw)
    for module in ("infra.plan", "infra.cost"):
        args = ["--config-file", str(path)] + (["--quiet"] if module == "infra.plan" else ["--summary"])
        result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        assert "mlserve:alerting.emails[0] is encrypted" in result.stderr and "Traceback" not in result.stderr


def fake_pulumi(bin_dir: Path, body: str) -> None:
    """A `pulumi` on PATH that answers `config get` as the real CLI does (plaintext on stdout), and records argv."""
    script = bin_dir / "pulumi"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {bin_dir}/calls\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_with_the_pulumi_cli_the_operator_tools_read_the_plaintext_through_the_secrets_provider(
        tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_pulumi(bin_dir, "echo oncall@example.com")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    raw = edited("dev", lambda r: secret_at(r, "mlserve:alerting", "emails", 0))
    cfg = load_file(write(tmp_path, raw), decrypt=True)
    assert cfg.alerting.emails == ["oncall@example.com"] and encrypted_of(cfg) == ()
    assert capsys.readouterr().err == ""
    (call,) = (bin_dir / "calls").read_text().splitlines()
    assert call == f"config get --path mlserve:alerting.emails[0] --stack dev --cwd {tmp_path}"


def test_without_the_cli_or_its_credentials_the_tools_say_they_cannot_decrypt_and_which_command_to_run(
        tmp_path, monkeypatch, capsys):
    raw = edited("dev", lambda r: secret_at(r, "mlserve:alerting", "emails", 0))
    path = write(tmp_path, raw)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    cfg = load_file(path, decrypt=True)
    assert [s.path for s in encrypted_of(cfg)] == ["mlserve:alerting.emails[0]"]
    first = capsys.readouterr().err.splitlines()[0]
    assert "cannot decrypt mlserve:alerting.emails[0]: no Pulumi CLI on PATH" in first
    assert "`pulumi config get --path 'mlserve:alerting.emails[0]' --stack dev`" in first

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_pulumi(bin_dir, "echo 'error: failed to decrypt: AccessDeniedException: kms:Decrypt' >&2; exit 255")
    monkeypatch.setenv("PATH", str(bin_dir))
    load_file(path, decrypt=True)
    first = capsys.readouterr().err.splitlines()[0]
    assert "failed: error: failed to decrypt: AccessDeniedException: kms:Decrypt" in first


def test_warnings_name_the_stack_they_were_read_for():
    cfg = load_stack("prod")
    (line,) = warnings_of(cfg, "Pulumi.prod.yaml", "prod")
    assert line.startswith("Pulumi.prod.yaml: mlserve:alerting.emails[0] is encrypted")


def test_the_operator_tools_load_stacks_with_decryption(tmp_path, monkeypatch):
    from infra.ops.__main__ import build_parser, load

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_pulumi(bin_dir, "echo oncall@example.com")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    raw = edited("dev", lambda r: secret_at(r, "mlserve:alerting", "emails", 0))
    path = write(tmp_path, raw)
    args = build_parser().parse_args(["preflight", "--stack", "dev", "--config-file", str(path)])
    assert load(args).alerting.emails == ["oncall@example.com"]
