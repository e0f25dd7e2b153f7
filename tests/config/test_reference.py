"""docs/configuration.md's reference is the models' own: generated, complete, and current."""

import inspect

from pydantic import BaseModel

from infra.config import models
from infra.config.reference import DOC, doc_section, render


def test_every_field_of_every_config_model_says_what_it_means():
    undescribed = [f"{model.__name__}.{name}" for _, model in inspect.getmembers(models, inspect.isclass)
                   if issubclass(model, BaseModel) and model.__module__ == models.__name__
                   for name, field in model.model_fields.items() if not field.description]
    assert undescribed == []


def test_the_doc_reference_is_what_the_models_render():
    assert doc_section(DOC.read_text()) == render(), \
        "run `python -m infra.config.reference --write` and commit docs/configuration.md"


def test_a_key_is_a_row_with_its_type_default_meaning_and_limits():
    reference = render()
    assert "| `availability_zones` | int | **required** | How many AZs the VPC spans | >= 2; <= 3 |" in reference
    assert "| `mlserve:account_id` | str (optional) |  | The AWS account the stack deploys to" in reference
    assert "| `mlserve:network` | [NetworkConfig](#networkconfig) | **required** | The VPC |  |" in reference
    assert "### NetworkConfig\n" in reference


def test_the_reference_names_every_key_of_the_checked_in_stacks():
    reference = render()
    for key in ("`mlserve:deployments`", "`gpu_pools`", "`max_rps_per_instance_at_slo`", "`retention_days`",
                "`target_concurrency`", "`ami_alias`"):
        assert key in reference
