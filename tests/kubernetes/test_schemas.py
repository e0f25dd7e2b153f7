"""Every Kubernetes object the prod plan and the LLM example declare validates strictly against its real schema."""

from functools import cache
from pathlib import Path

import pytest

from infra.config.loader import read_stack_file
from tests.harness import config_of, plan_config, raw_config, stack_plan
from tests.kubernetes.schemas import CRD_FILES, builtin_errors, crd_schema, custom_resource_errors, unwrap_secrets

KUBERNETES_VERSION = config_of(raw_config("prod"), "prod").cluster.kubernetes_version


def is_custom(resource) -> bool:
    group = resource.type.split(":")[1].rsplit("/", 1)[0]
    return (group, resource.type.split(":")[2]) in CRD_FILES


def kubernetes_objects(plan):
    return [r for r in plan.resources if r.custom and r.type.startswith("kubernetes:")
            and r.type != "kubernetes:helm.sh/v3:Release"]


@cache
def llm_plan():
    """A language model on KServe (vLLM, the node-local model cache): kinds prod does not declare."""
    example = Path(__file__).resolve().parents[2] / "examples" / "Pulumi.llm-kserve.yaml"
    return plan_config(read_stack_file(example), "llm-kserve")


def all_objects():
    return [*kubernetes_objects(stack_plan("prod")), *kubernetes_objects(llm_plan())]


def as_object(resource):
    """The object exactly as recorded (secrets as sent): nothing filtered, so a key the engine would not send fails."""
    return unwrap_secrets(dict(resource.inputs))


def test_prod_declares_builtin_and_custom_objects():
    types = {r.type for r in kubernetes_objects(stack_plan("prod"))}
    assert {"kubernetes:serving.kserve.io/v1beta1:InferenceService", "kubernetes:keda.sh/v1alpha1:ScaledObject",
            "kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"} <= types
    assert {"kubernetes:core/v1:Namespace", "kubernetes:networking.k8s.io/v1:Ingress",
            "kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:networking.k8s.io/v1:NetworkPolicy"} <= types


@pytest.mark.parametrize("resource", [r for r in all_objects() if not is_custom(r)], ids=lambda r: r.urn)
def test_builtin_objects_pass_the_strict_kubernetes_schema(resource):
    assert builtin_errors(as_object(resource), KUBERNETES_VERSION) == []


@pytest.mark.parametrize("resource", [r for r in all_objects() if is_custom(r)], ids=lambda r: r.urn)
def test_custom_resources_pass_their_crd_schema_strictly(resource):
    assert custom_resource_errors(as_object(resource)) == []


def test_the_llm_example_declares_the_model_cache_kinds():
    types = {r.type for r in kubernetes_objects(llm_plan())}
    assert {"kubernetes:serving.kserve.io/v1alpha1:LocalModelCache",
            "kubernetes:serving.kserve.io/v1alpha1:LocalModelNodeGroup"} <= types
    assert all(is_custom(r) for r in kubernetes_objects(llm_plan()) if ":serving.kserve.io/" in r.type)


def test_the_strict_checks_catch_a_misspelt_field():
    """The validators are not vacuous: a typo in an InferenceService or an Ingress fails."""
    isvc = next(r for r in stack_plan("prod").resources if r.type.endswith(":InferenceService"))
    broken = as_object(isvc)
    broken["spec"] = {"predictor": {**broken["spec"]["predictor"], "minReplica": 2}}
    assert any("minReplica" in e for e in custom_resource_errors(broken))
    ingress = next(r for r in stack_plan("prod").resources if r.type.endswith(":Ingress"))
    typo = as_object(ingress)
    typo["spec"] = {**typo["spec"], "ingressClass": "alb"}
    assert builtin_errors(typo, KUBERNETES_VERSION)
    assert crd_schema("keda.sh", "ScaledObject", "v1alpha1")["properties"]["spec"]["additionalProperties"] is False
