"""Pulumi.yaml as the CLI reads it: valid against the CLI's own project schema, and consistent with the code."""

from __future__ import annotations

import json
import re

import yaml
from jsonschema import Draft202012Validator

from infra.config.models import StackConfig
from tests.test_plan_cli import ROOT

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
SCHEMA = json.loads((ROOT / "schemas" / "pulumi" / "project.json").read_text())


def test_the_project_file_is_valid_against_the_schema_the_cli_uses():
    Draft202012Validator.check_schema(SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(SCHEMA).iter_errors(PROJECT)]
    assert errors == []


def test_the_schema_catches_a_broken_project_file():
    validator = Draft202012Validator(SCHEMA)
    misspelt_runtime = {**PROJECT, "runtime": {"name": "python", "option": {"virtualenv": ".venv"}}}
    map_typed_key = {**PROJECT, "config": {"network": {"type": "object"}}}
    assert [e.absolute_path[0] for e in validator.iter_errors(misspelt_runtime)] == ["runtime"]
    assert [e.absolute_path[0] for e in validator.iter_errors(map_typed_key)] == ["config"]


def test_the_runtime_options_name_the_virtualenv_that_make_setup_creates():
    options = PROJECT["runtime"]["options"]
    assert options["toolchain"] == "pip"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^VENV\s*[?:]?=\s*{re.escape(options['virtualenv'])}\s*$", makefile, re.M)
    assert PROJECT["main"] == "infra/" and (ROOT / "infra" / "__main__.py").is_file()


def test_declared_config_keys_are_the_models_scalar_keys_with_their_descriptions():
    declared = {key: value for key, value in PROJECT["config"].items() if ":" not in key}
    assert set(declared) == {"environment", "region", "account_id"}
    for key, declaration in declared.items():
        field = StackConfig.model_fields[key]
        assert declaration == {"type": "string", "description": field.description}


def test_every_data_file_the_estimator_reads_is_installed_with_it():
    """A non-editable install carries only what package-data names: the cost estimator's JSON (prices, the EKS
    calendar) must all be named, or `python -m infra.cost` fails outside a checkout."""
    import tomllib
    from fnmatch import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["infra.cost"]
    folder = ROOT / "infra" / "cost"
    data = [p.relative_to(folder).as_posix() for p in folder.rglob("*.json")]
    assert data and [f for f in data if not any(fnmatch(f, pattern) for pattern in patterns)] == []
