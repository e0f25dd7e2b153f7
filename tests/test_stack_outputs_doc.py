"""docs/outputs.md's table of stack outputs is what the program returns: generated from the plans, and current."""

import dataclasses

import pytest

from infra.config.loader import available_stacks
from infra.plan.outputs import DOC, UndescribedOutput, doc_section, render
from tests.harness import stack_plan


def plans():
    return {stack: stack_plan(stack) for stack in available_stacks()}


def test_the_doc_is_what_the_plans_render():
    assert doc_section(DOC.read_text()) == render(plans()), \
        "run `python -m infra.plan.outputs --write` and commit docs/outputs.md"


def test_each_output_is_a_row_with_its_stacks_and_whether_it_is_secret():
    table = render(plans())
    assert "| `model_bucket` | dev, prod | no | string |" in table
    assert "| `kubeconfig` | prod | yes | string |" in table
    assert "| `endpoints.<deployment>.api_url` | dev, prod | no | string |" in table
    assert "| `kserve_api_urls` | prod | no | map of deployment to string |" in table
    assert '"model_bucket": "mlserve-prod-models"' in table and '"kubeconfig": "[secret]"' in table


def test_an_output_without_a_meaning_is_refused_by_name():
    prod = stack_plan("prod")
    extra = dataclasses.replace(prod, outputs={**prod.outputs, "usage_plan_ids": {"resnet50": "p1"}})
    with pytest.raises(UndescribedOutput, match="usage_plan_ids"):
        render({"prod": extra})
    nested = dict(prod.outputs["endpoints"]["resnet50"], stream_url="https://...")
    extra = dataclasses.replace(prod, outputs={**prod.outputs, "endpoints": {"resnet50": nested}})
    with pytest.raises(UndescribedOutput, match="stream_url"):
        render({"prod": extra})


def test_clients_get_each_deployments_key_ids_and_the_keys_as_a_secret():
    prod = stack_plan("prod")
    assert set(prod.outputs["api_key_ids"]) == {"resnet50/standard", "resnet50/batch", "reranker/standard",
                                                "reranker/batch"}  # every deployment, every tier of the stack file
    assert prod.outputs["api_key_values"] == "[secret]"
