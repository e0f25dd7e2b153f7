"""Prod's minimum capacity on every scaler: prod-endpoint-capacity judges SageMaker variants (and their managed
instance scaling), scalable targets, inference components, KServe InferenceServices and KEDA ScaledObjects;
prod-gpu-capacity-warm judges every managed node group and static Karpenter pools. Each case edits the recorded prod
plan so that the weakness sits on a kind the rules once skipped; the same edit relabelled as dev is not refused."""

import copy
import json

import pytest
from pulumi_policy import EnforcementLevel

from tests.harness import edited
from tests.policies.conftest import as_dev, plan_json_for, refused, resources

INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
COMPONENT = "aws-native:sagemaker:InferenceComponent"


CAPACITY = "prod-endpoint-capacity"
WARM = "prod-gpu-capacity-warm"


def predictor(plan, track="stable"):
    return next(r for r in resources(plan, INFERENCE_SERVICE) if r["name"].endswith(track))["inputs"]["spec"][
        "predictor"]


def scaled_object(plan, track="stable"):
    return next(r for r in resources(plan, SCALED_OBJECT) if r["name"].endswith(f"{track}-scaler"))["inputs"]["spec"]


@pytest.mark.parametrize("weaken,urn,fragment", [
    (lambda p: scaled_object(p).update(minReplicaCount=1), "mlserve-prod-reranker-stable-scaler",
     "KEDA may scale reranker down to 1"),
    (lambda p: scaled_object(p).pop("minReplicaCount"), "mlserve-prod-reranker-stable-scaler",
     "KEDA may scale reranker down to 0"),
    (lambda p: scaled_object(p).update(idleReplicaCount=0), "mlserve-prod-reranker-stable-scaler",
     "idle"),
    (lambda p: scaled_object(p, "canary").update(minReplicaCount=0), "mlserve-prod-reranker-canary-scaler",
     "KEDA may scale reranker-canary down to 0"),
    (lambda p: predictor(p).update(minReplicas=1), "mlserve-prod-reranker-stable",
     "InferenceService reranker may scale down to 1"),
    (lambda p: predictor(p, "canary").update(minReplicas=0), "mlserve-prod-reranker-canary",
     "InferenceService reranker-canary may scale down to 0"),
    (lambda p: resources(p, ENDPOINT_CONFIG)[0]["inputs"]["productionVariants"][0].update(
        managedInstanceScaling={"status": "ENABLED", "minInstanceCount": 1, "maxInstanceCount": 12}),
     "mlserve-prod-resnet50-config", "managed instance scaling may take variant primary down to 1"),
])
def test_every_serving_scaler_keeps_prods_minimum(plan, weaken, urn, fragment):
    weaken(plan)
    found = refused(plan, CAPACITY)
    assert [u for u, _, _ in found] == [urn], found
    assert fragment in found[0][1]
    assert found[0][2] == EnforcementLevel.MANDATORY
    assert refused(as_dev(plan), CAPACITY, stack="dev") == [], "dev may run one replica"


def test_a_canary_track_may_run_one_replica_but_never_zero(plan):
    assert predictor(plan, "canary")["minReplicas"] == 1 and scaled_object(plan, "canary")["minReplicaCount"] == 1
    assert refused(plan, CAPACITY) == []


@pytest.mark.parametrize("weaken,fragment", [
    (lambda g: g["scalingConfig"].update(minSize=0), "node group system may scale to zero"),
    (lambda g: (g.update(instanceTypes=["g5.2xlarge"]), g["scalingConfig"].update(minSize=0)),
     "the GPU node group system may scale to zero"),
    (lambda g: (g.update(amiType="BOTTLEROCKET_x86_64_NVIDIA"), g["scalingConfig"].pop("minSize")),
     "the GPU node group system may scale to zero"),
])
def test_every_managed_node_group_keeps_a_node_in_prod(plan, weaken, fragment):
    weaken(resources(plan, NODE_GROUP)[0]["inputs"])
    found = refused(plan, WARM)
    assert [(u, m) for u, m, _ in found] == [("mlserve-prod-system-node-group", fragment)], found
    assert refused(as_dev(plan), WARM, stack="dev") == []


def test_a_static_karpenter_pool_of_zero_nodes_is_refused_in_prod(plan):
    """A NodePool has no minimum; `replicas` (alpha) makes it a static pool of exactly that many nodes."""
    spec = resources(plan, NODE_POOL)[0]["inputs"]["spec"]
    spec["replicas"] = 0
    assert [(u, m) for u, m, _ in refused(plan, WARM)] == [
        ("mlserve-prod-karpenter-gpu-a10g", "static NodePool gpu-a10g keeps 0 nodes (replicas) and never scales up")]
    spec["replicas"] = 2
    assert refused(plan, WARM) == []


def to_components(raw, tolerates_cold_start=True, copies=4, low=0):
    d = raw["mlserve:deployments"][0]
    d["hosting"] = "inference_components"
    # Scaling to zero: an update may meet one copy, where no rolling batch is 5-50% of the copies.
    d["rollout"] = {"strategy": "all_at_once"} if low < 4 else {
        "strategy": "rolling", "batch_percent": 25, "bake_minutes": 5, "rollback_batch_percent": 50,
        "timeout_minutes": 90}
    d["inference_component"] = {"accelerators": 1, "cpu_cores": 4, "min_memory_mb": 16384, "copies": copies,
                      "tolerates_cold_start": tolerates_cold_start}
    d["autoscaling"].update({"min": low})


@pytest.fixture(scope="module")
def component_plan():
    return plan_json_for(edited("prod", to_components), "prod")


def test_an_inference_component_s_copies_keep_prods_minimum_unless_it_tolerates_the_cold_start(component_plan):
    plan = copy.deepcopy(component_plan)
    assert refused(plan, CAPACITY) == []  # zero copies, tolerated by the tag
    (component,) = resources(plan, COMPONENT)
    component["inputs"]["runtimeConfig"]["copyCount"] = 1
    assert [m for _, m, _ in refused(plan, CAPACITY)] == [
        "inference component mlserve-prod-resnet50 starts 1 copy(ies)"]
    component["inputs"]["runtimeConfig"]["copyCount"] = 0
    assert refused(plan, CAPACITY) == []  # tolerated: it may start from zero as it may scale to zero
    component["inputs"]["tags"] = [t for t in component["inputs"]["tags"] if t["key"] != "mlserve:tolerates-cold-start"]
    found = [m for _, m, _ in refused(plan, CAPACITY)]
    assert "inference component mlserve-prod-resnet50 starts 0 copy(ies)" in found
    assert "autoscaling may scale inference-component/mlserve-prod-resnet50 down to 0" in " ".join(found)


def test_managed_instance_scaling_to_zero_follows_the_components_copies(component_plan):
    """On an endpoint of inference components SageMaker keeps the instances the copies need: the copies' floor
    (judged on their scalable target) is the endpoint's."""
    plan = copy.deepcopy(component_plan)
    (variant,) = resources(plan, ENDPOINT_CONFIG)[0]["inputs"]["productionVariants"]
    assert variant["managedInstanceScaling"]["minInstanceCount"] == 0
    assert refused(plan, CAPACITY) == []
    variant["managedInstanceScaling"]["minInstanceCount"] = 1
    assert [m for _, m, _ in refused(plan, CAPACITY)] == [
        "managed instance scaling may take variant primary down to 1 instance(s)"]


def test_scaler_levels_follow_the_existing_pattern_prod_mandatory_dev_not_applied():
    from policies.check import CONFIG_DIR, load_policy_config

    for rule in (CAPACITY, WARM):
        assert load_policy_config(CONFIG_DIR / "prod.json")[rule] == {"enforcementLevel": "mandatory",
                                                                      "environment": "prod"}
        assert load_policy_config(CONFIG_DIR / "dev.json")[rule]["environment"] == "dev"


def test_the_rules_say_a_karpenter_pool_has_no_minimum():
    from policies.rules import availability, cluster

    assert "NodePool has no minimum" in (cluster.prod_gpu_capacity_warm.__doc__ or "")
    assert "NodePool" in (availability.prod_endpoint_capacity.__doc__ or "")


def test_the_prod_plan_as_checked_in_keeps_every_minimum(plan):
    assert refused(plan, CAPACITY) == [] and refused(plan, WARM) == []
    assert json.dumps(scaled_object(plan)["minReplicaCount"]) == "2.0"
