"""`mlserve:phase`: a new stack's first `pulumi up` declares only the stores; `all` declares everything.

Planned offline with the real program (tests/harness.py): phase one holds exactly the stores and what watches them,
each resource as phase all declares it (so switching to all adds, never replaces), and the policy pack passes it.
"""

import json

import pytest

from infra.config.errors import ConfigError
from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests.harness import config_of, plan_config, raw_config, stack_plan

STORE_COMPONENTS = {"mlserve:security:Encryption", "mlserve:storage:ModelStore", "mlserve:observability:Alerting",
                    "mlserve:storage:ModelAudit", "mlserve:cost:StackBudget"}
# With mlserve:ci, the deploy path comes with phase one so that CI runs the second up; an in-VPC runner brings the VPC.
CI_COMPONENTS = {"github": {"mlserve:ci:CiAccess"},
                 "codebuild": {"mlserve:ci:CiAccess", "mlserve:ci:InVpcDeployer", "mlserve:network:Network"}}
SERVING_TYPES = ("aws:sagemaker", "aws-native:sagemaker", "aws:apigateway", "aws:eks", "aws:lambda",
                 "aws:appautoscaling", "aws:lb", "kubernetes:")


def phase_one(stack: str):
    raw = raw_config(stack)
    raw["mlserve:phase"] = "stores"
    return plan_config(raw, stack)


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request):
    return request.param


@pytest.fixture(scope="module")
def stores_plan(stack):
    return phase_one(stack)


def top_component(plan, resource) -> str:
    """The type of the outermost component a resource belongs to (its own type if it has no parent)."""
    by_urn = {r.urn: r for r in plan.resources}
    while resource.parent and resource.parent in by_urn:
        resource = by_urn[resource.parent]
    return resource.type


def test_phase_one_declares_only_the_stores_and_what_watches_them(stack, stores_plan):
    cfg = config_of(raw_config(stack), stack)
    tops = {top_component(stores_plan, r) for r in stores_plan.resources if not r.type.startswith("pulumi:providers:")}
    ci = CI_COMPONENTS[cfg.ci.runner] if cfg.ci else set()
    assert tops == STORE_COMPONENTS | ci  # dev and prod both have a budget
    assert not [r.type for r in stores_plan.resources if r.type.startswith(SERVING_TYPES)]
    networked = {top_component(stores_plan, r) for r in stores_plan.resources if r.type.startswith("aws:ec2")}
    assert networked <= {"mlserve:network:Network", "mlserve:ci:InVpcDeployer"}
    kinds = {r.type for r in stores_plan.resources}
    assert {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:s3/bucket:Bucket", "aws:ecr/repository:Repository",
            "aws:cloudtrail/trail:Trail", "aws:sns/topic:Topic"} <= kinds
    buckets = {r.inputs.get("bucket") for r in stores_plan.resources if r.type == "aws:s3/bucket:Bucket"}
    model_bucket = config_of(raw_config(stack), stack).model_store.bucket
    assert model_bucket in buckets
    repositories = {r.inputs["name"] for r in stores_plan.resources if r.type == "aws:ecr/repository:Repository"}
    assert repositories == {f"mlserve-{stack}/triton"}


def test_phase_one_outputs_name_where_to_push_and_release(stack, stores_plan):
    outputs = stores_plan.as_json()["outputs"]
    assert set(outputs) == {"region", "alert_topic_arn", "kms_key_arn", "model_bucket", "image_repositories"}
    assert list(outputs["image_repositories"]) == [f"mlserve-{stack}/triton"]


def test_phase_all_keeps_every_phase_one_resource_as_it_was(stack, stores_plan):
    """Switching to all only adds: each store has the same URN and inputs, so nothing is replaced or renamed."""
    everything = {r["urn"]: r for r in stack_plan(stack).as_json()["resources"]}
    stores = [r for r in stores_plan.as_json()["resources"] if not r["type"].startswith("pulumi:providers:")]
    for resource in stores:
        assert resource["urn"] in everything, resource["urn"]
        assert json.dumps(resource, sort_keys=True) == json.dumps(everything[resource["urn"]], sort_keys=True)
    assert len(everything) > 3 * len(stores)


def test_the_policy_pack_passes_phase_one(stack, stores_plan):
    plan = json.loads(json.dumps(stores_plan.as_json()))
    assert evaluate(plan, load_policy_config(CONFIG_DIR / f"{stack}.json")) == []


def test_the_checked_in_stacks_are_in_phase_all():
    for name in ("dev", "prod"):
        assert config_of(raw_config(name), name).phase == "all"


def test_a_phase_that_does_not_exist_is_one_clear_error():
    raw = raw_config("dev")
    raw["mlserve:phase"] = "store"
    with pytest.raises(ConfigError) as refused:
        config_of(raw, "dev")
    assert "mlserve:phase: given 'store'; allowed: 'stores' or 'all'" in refused.value.render()
