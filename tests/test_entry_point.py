"""The path `pulumi up` takes: the language host runs infra/__main__.py and the engine delivers the config.

The engine passes every key as a string (structured values JSON-encoded, secrets decrypted and listed as secret
keys); here the same strings are derived from each stack file and handed to the SDK the way the CLI's
PULUMI_CONFIG does, then the entry point itself runs under the mock engine.
"""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest
import yaml

from infra.plan import run
from tests.harness import stack_plan
from tests.test_plan_cli import ROOT

SECRET_KEY = "mlserve:alerting"  # as if set with `pulumi config set --secret --path alerting.emails[0] ...`


def engine_config(stack: str) -> dict[str, str]:
    """PULUMI_CONFIG as the CLI builds it from the stack file: strings stay, everything else is JSON text."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}


def entry_point_plan(stack: str, config: dict[str, str]):
    pulumi.runtime.set_all_config(config, [SECRET_KEY] if SECRET_KEY in config else [])
    try:
        region = config["mlserve:region"]

        def program() -> dict:
            runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")  # exports; returns nothing
            return {}

        return run(program, stack=stack, region=region)
    finally:
        pulumi.runtime.set_all_config({})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_entry_point_declares_what_the_offline_plan_records(stack):
    via_engine = entry_point_plan(stack, engine_config(stack))
    offline = stack_plan(stack)
    assert {r.urn: r.as_json()["inputs"] for r in via_engine.resources} == \
        {r.urn: r.as_json()["inputs"] for r in offline.resources}


def test_a_config_error_on_the_engine_path_ends_with_the_offline_message_and_no_traceback():
    config = engine_config("dev")
    config["mlserve:region"] = "us-gov-west-1"
    with pytest.raises(pulumi.RunError) as raised:
        entry_point_plan("dev", config)
    message = str(raised.value)
    assert "mlserve:region" in message and "'aws-us-gov'" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
