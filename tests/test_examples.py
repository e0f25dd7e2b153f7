"""examples/: every stack file a user starts from validates, plans, and passes the policy pack of its environment,
and declares what its name promises (as terraform-aws-modules keeps its examples deployable)."""

import json
from functools import cache
from pathlib import Path

import pytest

from infra.config import StackConfig
from infra.config.loader import read_stack_file
from infra.plan import Plan
from policies.check import CONFIG_DIR, evaluate, load_policy_config
from tests.harness import config_of, plan_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ("sagemaker-minimal", "kserve-canary", "shared-endpoint", "async", "llm-kserve", "llm-sagemaker")
# The only advice an example may draw, each named in the example's own comment.
ADVISED = {"shared-endpoint": {("instance-type-allowlist", "mlserve-shared-endpoint-shared-gpu-config")},
           "llm-sagemaker": {("instance-type-allowlist", "mlserve-llm-sagemaker-assistant-config")}}


@cache
def example(name: str) -> tuple[StackConfig, Plan]:
    raw = read_stack_file(EXAMPLES / f"Pulumi.{name}.yaml")
    return config_of(raw, name), plan_config(raw, name)


def test_every_example_file_is_tested_and_listed():
    files = {p.name for p in EXAMPLES.glob("Pulumi.*.yaml")}
    assert files == {f"Pulumi.{name}.yaml" for name in NAMES}
    listing = (EXAMPLES / "README.md").read_text()
    assert all(f"[`{file}`]({file})" in listing for file in files)


@pytest.mark.parametrize("name", NAMES)
def test_the_example_plans_and_the_pack_of_its_environment_refuses_nothing(name):
    cfg, plan = example(name)
    found = evaluate(json.loads(json.dumps(plan.as_json())), load_policy_config(CONFIG_DIR / f"{cfg.environment}.json"))
    assert {(v.rule, v.urn.rsplit("::", 1)[1]) for v in found} == ADVISED.get(name, set()), \
        [(v.rule, v.level, v.message) for v in found]
    assert all(v.level.value == "advisory" for v in found)


def test_the_minimal_example_is_one_endpoint_behind_one_api():
    cfg, plan = example("sagemaker-minimal")
    assert cfg.environment == "dev" and cfg.cluster is None
    (endpoint,) = plan.of_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["name"] == "mlserve-sagemaker-minimal-classifier"
    assert len(plan.of_type("aws:apigateway/restApi:RestApi")) == 1
    (target,) = plan.of_type("aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (1, 2)
    assert not any(r.type.startswith(("aws:eks/", "kubernetes:")) for r in plan.resources)


def test_the_kserve_example_splits_ninety_ten_at_the_alb_between_two_inference_services():
    _, plan = example("kserve-canary")
    services = {r.inputs["metadata"]["name"] for r in plan.resources if r.type.endswith(":InferenceService")}
    assert services == {"ranker", "ranker-canary"}
    (ingress,) = plan.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    action = json.loads(ingress.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.ranker-split"])
    assert {g["serviceName"]: g["weight"] for g in action["forwardConfig"]["targetGroups"]} == \
        {"ranker-predictor": 90, "ranker-canary-predictor": 10}
    assert plan.outputs["kserve_api_urls"]["ranker"].endswith("/v2/models/ranker/infer")


def test_the_shared_endpoint_example_puts_two_components_on_one_endpoint():
    _, plan = example("shared-endpoint")
    (endpoint,) = plan.of_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["name"] == "mlserve-shared-endpoint-shared-gpu"
    components = plan.of_type("aws-native:sagemaker:InferenceComponent")
    assert sorted(c.inputs["inferenceComponentName"] for c in components) == \
        ["mlserve-shared-endpoint-classifier", "mlserve-shared-endpoint-tagger"]
    assert {c.inputs["endpointName"] for c in components} == {"mlserve-shared-endpoint-shared-gpu"}


def test_the_async_example_queues_in_s3_and_scales_to_zero_in_prod():
    cfg, plan = example("async")
    assert cfg.environment == "prod" and cfg.account_id
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs["asyncInferenceConfig"]
    assert config["outputConfig"]["s3OutputPath"] == "s3://example-async-models/async/mlserve-async-segmenter/output/"
    assert config["clientConfig"] == {"maxConcurrentInvocationsPerInstance": 2}
    (target,) = plan.of_type("aws:appautoscaling/target:Target")
    assert target.inputs["minCapacity"] == 0
