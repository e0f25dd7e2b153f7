"""The path `pulumi up` takes: the language host runs infra/__main__.py and the engine delivers the config.

The engine passes every key as a string (maps and lists JSON-encoded with their secrets decrypted, the secret keys
listed); here the same strings are derived from each stack file and handed to the SDK the way the CLI's
PULUMI_CONFIG does, then the entry point itself runs under the mock engine.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

from infra.config import ConfigError, from_engine, load_stack
from infra.config.loader import encrypted_of, secure_leaves
from infra.plan import plan_stack, run
from infra.plan.model import UNKNOWN_MARKER
from tests.harness import stack_plan
from tests.test_plan_cli import ROOT

SECRET_KEY = "mlserve:alerting"  # as if set with `pulumi config set --secret --path alerting.emails[0] ...`
CIPHERTEXT = "v1:Ab3dEf9+c2VjcmV0:Qk1nZ0h1bUt4bGZ3V2g="  # the shape `pulumi config set --secret` stores


def decrypted(value: Any, plaintext: dict[str, str]) -> Any:
    """What the engine does to a `{secure: ...}` leaf before the program sees it."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return plaintext[value["secure"]]
    if isinstance(value, dict):
        return {k: decrypted(v, plaintext) for k, v in value.items()}
    if isinstance(value, list):
        return [decrypted(v, plaintext) for v in value]
    return value


def engine_view(stack_yaml: str, plaintext: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS as the CLI builds them from a stack file's text."""
    raw = yaml.safe_load(stack_yaml)["config"]
    secret = sorted(k for k, v in raw.items() if "{'secure':" in repr(v))
    config = {}
    for key, value in raw.items():
        value = decrypted(value, plaintext or {})
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config, secret


DECRYPTED = "ml-platform-oncall@example.com"  # what the secrets provider gives back for a checked-in secret


def engine_config(stack: str) -> dict[str, str]:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    leaves = [c for v in yaml.safe_load(text)["config"].values() for _, c in secure_leaves(v)]
    return engine_view(text, dict.fromkeys(leaves, DECRYPTED))[0]


def concealed(value: Any) -> bool:
    """An input the offline plan records as a secret whose value it does not know (an encrypted config value)."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig and \
        value.get("value") == UNKNOWN_MARKER


def known_as_offline(engine: Any, offline: Any) -> Any:
    """The engine's inputs with each secret the offline plan could not know replaced by the offline record (the
    engine has the plaintext, still wrapped as a secret)."""
    if concealed(offline):
        assert isinstance(engine, dict) and engine.get(rpc._special_sig_key) == rpc._special_secret_sig, engine
        return offline
    if isinstance(engine, dict) and isinstance(offline, dict):
        return {k: known_as_offline(v, offline.get(k)) for k, v in engine.items()}
    if isinstance(engine, list) and isinstance(offline, list) and len(engine) == len(offline):
        return [known_as_offline(e, o) for e, o in zip(engine, offline, strict=True)]
    return engine


def entry_point_plan(stack: str, config: dict[str, str], secret_keys: list[str] | None = None):
    pulumi.runtime.set_all_config(config, secret_keys if secret_keys is not None else
                                  [SECRET_KEY] if SECRET_KEY in config else [])
    try:
        def program() -> dict:
            exported: dict[str, Any] = {}
            export, pulumi.export = pulumi.export, exported.__setitem__  # what the engine would get as outputs
            try:
                runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
            finally:
                pulumi.export = export
            return exported

        return run(program, stack=stack, region=config["mlserve:region"], account_id=config.get("mlserve:account_id"))
    finally:
        pulumi.runtime.set_all_config({}, [])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_entry_point_declares_the_resources_and_outputs_the_offline_plan_records(stack):
    via_engine = entry_point_plan(stack, engine_config(stack)).as_json()
    offline = stack_plan(stack).as_json()
    by_urn = {r["urn"]: r for r in offline["resources"]}
    assert {r["urn"]: known_as_offline(r, by_urn.get(r["urn"])) for r in via_engine["resources"]} == by_urn
    assert via_engine["outputs"] == offline["outputs"] and set(offline["outputs"]) >= {"region", "alert_topic_arn"}


def test_a_config_error_on_the_engine_path_ends_with_the_offline_message_and_no_traceback(tmp_path: Path):
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("mlserve:region: us-east-1", "mlserve:region: us-gov-west-1")
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    with pytest.raises(ConfigError) as offline:
        load_stack("dev", tmp_path)
    with pytest.raises(pulumi.RunError) as raised:
        entry_point_plan("dev", engine_view(text)[0])
    assert str(raised.value) == offline.value.render()
    assert "mlserve:region" in str(raised.value) and "'aws-us-gov'" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


# Pulumi.dev.yaml after these commands, stored the way the CLI stores them (docs of `pulumi config set`: under
# --path, "true"/"false" become booleans and integers numbers; --type string keeps text; --secret stores `secure:`):
#   pulumi config set --path 'mlserve:deployments[0].autoscaling.max' 3
#   pulumi config set --path 'mlserve:deployments[0].drift.enabled' false
#   pulumi config set --path 'mlserve:deployments[0].data_capture.enabled' false
#   pulumi config set --path 'mlserve:deployments[0].drift.schedule_minutes' --type string 120
#   pulumi config set --path 'mlserve:deployments[0].rollout.strategy' all_at_once
#   pulumi config set --path 'mlserve:tags.cost-center' 4410
#   pulumi config set --path 'mlserve:network.availability_zones' 3
#   pulumi config set --secret --path 'mlserve:alerting.emails[0]' oncall@example.com
def set_with_path(stack_yaml: str) -> str:
    document = yaml.safe_load(stack_yaml)
    config = document["config"]
    deployment = config["mlserve:deployments"][0]
    deployment["autoscaling"]["max"] = 3
    deployment["drift"]["enabled"] = False
    deployment["data_capture"]["enabled"] = False
    deployment["drift"]["schedule_minutes"] = "120"
    deployment["rollout"]["strategy"] = "all_at_once"
    config["mlserve:tags"]["cost-center"] = 4410
    config["mlserve:network"]["availability_zones"] = 3
    config["mlserve:alerting"]["emails"][0] = {"secure": CIPHERTEXT}
    return yaml.safe_dump(document, sort_keys=False)


def test_values_set_with_config_set_path_are_read_as_the_user_meant_them():
    config, secret_keys = engine_view(set_with_path((ROOT / "Pulumi.dev.yaml").read_text()),
                                      {CIPHERTEXT: "oncall@example.com"})
    assert secret_keys == [SECRET_KEY]
    assert json.loads(config["mlserve:tags"])["cost-center"] == 4410  # a number on the wire
    cfg = from_engine(config, "dev")
    deployment = cfg.deployments[0]
    assert (deployment.autoscaling.max, deployment.drift.enabled, deployment.data_capture.enabled,
            deployment.drift.schedule_minutes) == (3, False, False, 120)
    assert cfg.tags["cost-center"] == "4410" and cfg.network.availability_zones == 3
    assert cfg.alerting.emails == ["oncall@example.com"]


def test_a_top_level_string_stays_text_and_typed_scalars_arrive_as_the_cli_stores_them():
    config = engine_config("dev")
    config["mlserve:environment"] = "dev"  # `pulumi config set mlserve:environment dev`: always a string
    network = json.loads(config["mlserve:network"])
    network["availability_zones"] = "2"  # a value typed into the YAML as text
    config["mlserve:network"] = json.dumps(network)
    assert from_engine(config, "dev").network.availability_zones == 2
    config["mlserve:model_store"] = '{"bucket": "0123"'  # broken JSON: reported, not guessed at
    with pytest.raises(ConfigError) as raised:
        from_engine(config, "dev")
    assert "mlserve:model_store" in raised.value.render()


def test_an_encrypted_value_offline_is_an_unknown_secret_named_by_its_key_path(tmp_path: Path, capsys):
    (tmp_path / "Pulumi.dev.yaml").write_text(set_with_path((ROOT / "Pulumi.dev.yaml").read_text()))
    cfg = load_stack("dev", tmp_path)
    assert [secret.path for secret in encrypted_of(cfg)] == ["mlserve:alerting.emails[0]"]
    (warning,) = capsys.readouterr().err.splitlines()
    assert "mlserve:alerting.emails[0] is encrypted" in warning and "--stack dev" in warning
    (subscription,) = [r for r in plan_stack(cfg, "dev").resources if r.name.endswith("-email-0")]
    assert concealed(subscription.as_json()["inputs"]["endpoint"])


def test_a_secret_alert_address_stays_secret_in_state_and_other_secret_keys_are_warned_about(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    config = engine_config("dev")
    plan = entry_point_plan("dev", config, secret_keys=[SECRET_KEY, "mlserve:tags"])
    subscriptions = [r for r in plan.resources if r.type == "aws:sns/topicSubscription:TopicSubscription"]
    assert subscriptions and all(r.as_json()["inputs"]["endpoint"].get(pulumi.runtime.rpc._special_sig_key) ==
                                 pulumi.runtime.rpc._special_secret_sig for r in subscriptions)
    assert len(warnings) == 1 and warnings[0].startswith("mlserve:tags is stored as a secret")
