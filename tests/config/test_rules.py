"""Every config rule, valid and invalid, with the message the user reads."""

import copy

import pytest

from infra.config import ConfigError
from tests.harness import config_of, edited, raw_config, small_cluster


def deployment(raw, index=0):
    return raw["mlserve:deployments"][index]


def endpoint_deployment(raw, index=0):
    """Dev's model as a plain endpoint (the stack serves it as an inference component): for the endpoint rules."""
    d = deployment(raw, index)
    for key in ("hosting", "inference_component", "endpoint"):
        d.pop(key, None)
    d["autoscaling"]["min"] = 1
    return d


def kserve_deployment(raw):
    d = copy.deepcopy(endpoint_deployment(copy.deepcopy(raw)))
    d.update(name="resnet50-k8s", backend="kserve", compute={"gpus": 1, "node_group": "gpu"})
    d["autoscaling"] = {"min": 1, "max": 2, "target_concurrency": 8}
    d["rollout"] = {"strategy": "canary", "percent": 10, "bake_minutes": 10, "candidate": {**d["model"]}}
    return d


def pool(raw, index=0):
    return raw["mlserve:cluster"]["gpu_pools"][index]


cluster = small_cluster


def errors_of(raw, stack):
    with pytest.raises(ConfigError) as caught:
        config_of(raw, stack)
    return {issue.path: issue for issue in caught.value.issues}, caught.value.render()


def test_checked_in_stacks_are_valid(stack):
    cfg = config_of(raw_config(stack), stack)
    assert cfg.environment == stack


def test_prod_is_multi_az_with_canary_and_dev_is_small():
    dev, prod = config_of(raw_config("dev"), "dev"), config_of(raw_config("prod"), "prod")
    assert (dev.network.availability_zones, prod.network.availability_zones) == (2, 3)
    assert prod.deployments[0].rollout.strategy == "canary"
    assert prod.deployments[0].autoscaling.min > dev.deployments[0].autoscaling.min


@pytest.mark.parametrize("stack_name,edit,path,fragment", [
    ("prod", lambda r: deployment(r, 1)["rollout"].pop("candidate"),
     "mlserve:deployments[1].rollout.candidate", "a kserve canary serves it beside `model`"),
    ("prod", lambda r: deployment(r)["rollout"].update(candidate=deployment(r)["model"]),
     "mlserve:deployments[0].rollout.candidate", "no candidate for sagemaker"),
    ("prod", lambda r: deployment(r, 1).update(rollout={"strategy": "linear", "step_percent": 10,
                                                        "step_bake_minutes": 5}),
     "mlserve:deployments[1].rollout.strategy", "all_at_once or canary for kserve"),
    ("prod", lambda r: deployment(r, 1)["autoscaling"].pop("target_concurrency"),
     "mlserve:deployments[1].autoscaling.target_concurrency", "in-flight requests per replica"),
    ("prod", lambda r: (r["mlserve:cluster"].pop("ingress_certificate_arn"), r["mlserve:cluster"].pop("ingress_domain")),
     "mlserve:cluster.ingress_certificate_arn", "an ACM certificate ARN in prod"),
    ("prod", lambda r: r["mlserve:cluster"].pop("ingress_domain"),
     "mlserve:cluster.ingress_domain", "set together with ingress_certificate_arn"),
    ("prod", lambda r: r["mlserve:gateway"].update(domain_name="api.example.com", certificate_arn=(
        "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555")),
     "mlserve:gateway.domain_name", "no custom domain while the stack has 2 deployments"),
    ("prod", lambda r: r["mlserve:cluster"]["node_groups"][0].update(
        gpu=True, ami_type="AL2023_x86_64_NVIDIA", instance_types=["g5.2xlarge"]),
     "mlserve:cluster.node_groups", "also a CPU node group (gpu: false)"),
    ("prod", lambda r: pool(r).update(instance_types=["m6i", "c7i"]),
     "mlserve:cluster.gpu_pools[0].instance_types[0]", "a GPU family or type: g5, g6"),
    ("prod", lambda r: pool(r).update(instance_types=["g5", "g6.2xlarge"]),
     "mlserve:cluster.gpu_pools[0].instance_types", "either instance families (g5, g6) or exact types"),
    ("prod", lambda r: pool(r).update(capacity_types=["spot"]),
     "mlserve:cluster.gpu_pools[0].capacity_types", "a list with on-demand in prod"),
    ("prod", lambda r: pool(r).update(max_disrupted_nodes=2),
     "mlserve:cluster.gpu_pools[0].max_disrupted_nodes", "1 in prod"),
    ("prod", lambda r: pool(r).update(name="system"),
     "mlserve:cluster.gpu_pools[0].name", "a name no other GPU pool or managed node group uses"),
    ("prod", lambda r: r["mlserve:cluster"].pop("node_class"),
     "mlserve:cluster.node_class", "an EC2NodeClass (ami_alias, disk_size_gib)"),
    ("prod", lambda r: r["mlserve:cluster"]["node_class"].update(ami_alias="al2023@latest"),
     "mlserve:cluster.node_class.ami_alias", "a pinned Karpenter AMI alias, al2023@v<date> or bottlerocket@v"),
    ("prod", lambda r: deployment(r, 1)["autoscaling"].update(max=5),
     "mlserve:deployments[1].autoscaling.max", "at most 4: pool 'gpu-a10g' may hold 8 GPUs (gpu_limit), and 5 "
                                               "replicas x 1 GPU(s) x 2 tracks (stable and canary)"),
    ("prod", lambda r: pool(r).update(cpu_limit=16),
     "mlserve:cluster.gpu_pools[0].cpu_limit", "at least 32"),
    ("prod", lambda r: deployment(r)["autoscaling"].update(min=1),
     "mlserve:deployments[0].autoscaling.min", "at least 2 in prod"),
    ("dev", lambda r: deployment(r)["autoscaling"].update(min=3, max=2),
     "mlserve:deployments[0].autoscaling.min", "at most autoscaling.max (2)"),
    ("dev", lambda r: endpoint_deployment(r)["autoscaling"].update(min=0),
     "mlserve:deployments[0].autoscaling.min", "mode: async can"),
    ("dev", lambda r: endpoint_deployment(r)["compute"].update(instance_count=5),
     "mlserve:deployments[0].compute.instance_count", "between autoscaling.min (1) and autoscaling.max (2)"),
    ("prod", lambda r: deployment(r)["rollout"].update(percent=60),
     "mlserve:deployments[0].rollout.percent", "less than or equal to 50"),
    ("prod", lambda r: deployment(r)["rollout"].update(percent=0),
     "mlserve:deployments[0].rollout.percent", "1-50 for sagemaker"),
    ("dev", lambda r: endpoint_deployment(r).update(rollout={"strategy": "canary", "percent": 10,
                                                             "bake_minutes": 5}),
     "mlserve:deployments[0].compute.instance_count", "at least 2 for a canary rollout"),
    ("prod", lambda r: (deployment(r)["compute"].update(instance_count=5), deployment(r)["autoscaling"].update(
        min=5), deployment(r)["rollout"].update(percent=50)),
     "mlserve:deployments[0].rollout.percent", "at most 50% of 5 instances"),
    ("dev", lambda r: deployment(r)["compute"].update(instance_type="ml.c5.xlarge"),
     "mlserve:deployments[0].compute.instance_type", "a GPU instance family"),
    ("dev", lambda r: r["mlserve:deployments"].append(kserve_deployment(r)),
     "mlserve:deployments[1].backend", "once mlserve:cluster is configured"),
    ("dev", lambda r: r["mlserve:deployments"].append(copy.deepcopy(deployment(r))),
     "mlserve:deployments[1].name", "a name used once in deployments"),
    ("dev", lambda r: deployment(r).update(name="ResNet_50"),
     "mlserve:deployments[0].name", "lowercase letters, digits and hyphens, starting with a letter"),
    ("dev", lambda r: r["mlserve:tags"].pop("cost-center"),
     "mlserve:tags.cost-center", "a non-empty value"),
    ("dev", lambda r: deployment(r)["model"].update(uri="s3://someone-elses-bucket/m/model.tar.gz"),
     "mlserve:deployments[0].model.uri", "the stack's model_store.bucket"),
    ("prod", lambda r: r["mlserve:network"].update(availability_zones=2),
     "mlserve:network.availability_zones", "3 in prod"),
    ("prod", lambda r: r["mlserve:cluster"]["node_groups"][0].update(min_size=2, desired_size=2),
     "mlserve:cluster.node_groups[0].min_size", "at least 3 (network.availability_zones)"),
    ("dev", lambda r: deployment(r)["image"].update(tag="latest"),
     "mlserve:deployments[0].image.tag", "tag 'latest' is mutable"),
    ("prod", lambda r: r.update({"mlserve:cluster": cluster(public_access_cidrs=["203.0.113.0/24"])}),
     "mlserve:cluster.public_access_cidrs", "an empty list in prod"),
    ("dev", lambda r: r.update({"mlserve:cluster": cluster(public_access_cidrs=["0.0.0.0/0"])}),
     "mlserve:cluster.public_access_cidrs[0]", "never the whole internet"),
    ("dev", lambda r: r.update({"mlserve:cluster": cluster(min_size=0)}),
     "mlserve:cluster.node_groups[0].min_size", "allow_scale_to_zero"),
    ("dev", lambda r: r.update({"mlserve:cluster": cluster(kubernetes_version="1.35")}),
     "mlserve:cluster.addons.kube_proxy", "a v1.35.x build"),
    ("prod", lambda r: r.update({"mlserve:cluster": cluster(min_size=0)}),
     "mlserve:cluster.node_groups[0].min_size", "at least 1 in prod"),
    ("dev", lambda r: (r.update({"mlserve:cluster": cluster()}),
                       r["mlserve:cluster"]["node_groups"][0].update(instance_types=["m5.xlarge"])),
     "mlserve:cluster.node_groups[0].instance_types[0]", "a GPU family"),
    ("prod", lambda r: (r.update({"mlserve:cluster": cluster()}),
                        r["mlserve:cluster"]["node_groups"][0].update(capacity_type="SPOT")),
     "mlserve:cluster.node_groups[0].capacity_type", "ON_DEMAND in prod"),
    ("dev", lambda r: (r.update({"mlserve:cluster": cluster()}), r["mlserve:deployments"].append(
        {**kserve_deployment(r), "compute": {"gpus": 1, "node_group": "cpu-pool"}})),
     "mlserve:deployments[1].compute.node_group", "one of the cluster's GPU pools or node groups: gpu, system"),
    ("dev", lambda r: (r.update({"mlserve:cluster": cluster()}), r["mlserve:deployments"].append(
        {**kserve_deployment(r), "compute": {"gpus": 0, "node_group": "gpu"}})),
     "mlserve:deployments[1].compute.gpus", "at least 1 because the model needs a GPU"),
    ("dev", lambda r: (r.update({"mlserve:cluster": cluster()}), r["mlserve:deployments"].append(
        {**kserve_deployment(r), "rollout": {"strategy": "shadow", "sample_percent": 5,
                                             "candidate": deployment(r)["model"]}})),
     "mlserve:deployments[1].rollout.strategy", "shadow traffic is a SageMaker feature"),
    ("dev", lambda r: deployment(r)["compute"].update(instance_type="ml.g5.3xlarge"),
     "mlserve:deployments[0].compute.instance_type", "a SageMaker endpoint instance type (did you mean "
     "'ml.g5.2xlarge', 'ml.g5.4xlarge' or 'ml.g5.8xlarge'?); the ml.g5 family: ml.g5.xlarge, ml.g5.2xlarge, ml.g5.4xlarge"),
    # ACM certificates are regional: one from another region is refused, naming both regions.
    ("dev", lambda r: r["mlserve:gateway"].update(domain_name="api.example.com", certificate_arn=(
        "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555")),
     "mlserve:gateway.certificate_arn", "a certificate in the stack's region us-east-1 (mlserve:region); this one "
     "is in eu-west-1"),
    ("prod", lambda r: r["mlserve:cluster"].update(ingress_certificate_arn=(
        "arn:aws:acm:us-west-2:123456789012:certificate/6f1c2b9e-3a47-4d8e-9b21-5c0e7a9d4f13")),
     "mlserve:cluster.ingress_certificate_arn", "a certificate in the stack's region us-east-1 (mlserve:region); "
     "this one is in us-west-2"),
    ("dev", lambda r: deployment(r)["autoscaling"].pop("max_rps_per_instance_at_slo"),
     "mlserve:deployments[0].autoscaling", "exactly one of target_invocations_per_instance"),
    ("dev", lambda r: deployment(r)["autoscaling"].update(target_invocations_per_instance=500),
     "mlserve:deployments[0].autoscaling", "exactly one of target_invocations_per_instance"),
    ("prod", lambda r: deployment(r)["rollout"].update(bake_minutes=90),
     "mlserve:deployments[0].rollout.bake_minutes", "at most 60 (SageMaker waits at most 3600 s per step)"),
    ("prod", lambda r: deployment(r).update(
        rollout={"strategy": "shadow", "sample_percent": 10, "candidate": deployment(r)["model"]},
        ab_variants=[{"name": "challenger", "model": deployment(r)["model"], "weight_percent": 10}]),
     "mlserve:deployments[0].ab_variants", "an empty list with a shadow rollout"),
    # Documented API limits botocore's model does not carry: the message cites the page that states them.
    ("dev", lambda r: deployment(r).update(rollout={"strategy": "rolling", "batch_percent": 50, "bake_minutes": 5}),
     "mlserve:deployments[0].rollout.strategy",
     "all_at_once, or copies and autoscaling.min of at least 2 for batches of 50%: an update meets the copy count "
     "autoscaling left, and a batch must be a whole copy and 5-50% of that count "
     "(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRollingUpdatePolicy.html)"),
    ("prod", lambda r: deployment(r).update(
        rollout={"strategy": "rolling", "batch_percent": 25, "bake_minutes": 5},
        ab_variants=[{"name": "challenger", "model": deployment(r)["model"], "weight_percent": 10}]),
     "mlserve:deployments[0].rollout.strategy", "SageMaker does not roll multi-variant endpoints and falls back to "
     "all-at-once blue/green without a bake (https://docs.aws.amazon.com/sagemaker/latest/dg/"
     "deployment-guardrails-exclusions.html)"),
])
def test_invalid_config_names_the_key_and_what_is_allowed(stack_name, edit, path, fragment):
    found, text = errors_of(edited(stack_name, edit), stack_name)
    assert path in found, text
    assert fragment in found[path].allowed, text
    assert f"{path}: given " in text or f"{path}: missing; expected: " in text
    assert "given None" not in text  # a key left unset is missing


def test_kserve_deployment_with_a_cluster_is_valid():
    def edit(raw):
        raw["mlserve:cluster"] = cluster()
        raw["mlserve:deployments"].append(kserve_deployment(raw))

    cfg = config_of(edited("dev", edit), "dev")
    assert cfg.deployments[1].backend == "kserve"
    assert cfg.cluster.node_groups[0].ami_type == "AL2023_x86_64_NVIDIA"


def test_dev_gpu_group_may_scale_to_zero_when_asked():
    def edit(raw):
        raw["mlserve:cluster"] = cluster(min_size=0)
        raw["mlserve:cluster"]["node_groups"][0]["allow_scale_to_zero"] = True

    assert config_of(edited("dev", edit), "dev").cluster.node_groups[0].min_size == 0


def test_the_checked_in_prod_pool_is_exactly_full_at_max_replicas_with_a_canary():
    """The limit is not vacuous: one more replica of the reranker is refused (the case above), this many pass."""
    prod = config_of(raw_config("prod"), "prod")
    assert (prod.deployments[1].autoscaling.max, prod.cluster.gpu_pools[0].gpu_limit) == (4, 8)


def test_dev_may_run_a_spot_only_pool_that_drains_two_nodes_at_once():
    def edit(raw):
        raw["mlserve:cluster"] = cluster(node_class={"ami_alias": "bottlerocket@v1.50.0"}, gpu_pools=[
            {"name": "gpu-spot", "instance_types": ["g6"], "capacity_types": ["spot"], "gpu_limit": 4,
             "cpu_limit": 64, "max_disrupted_nodes": 2}])
        raw["mlserve:deployments"].append({**kserve_deployment(raw), "compute": {"gpus": 1, "node_group": "gpu-spot"}})

    cfg = config_of(edited("dev", edit), "dev")
    assert cfg.cluster.gpu_pools[0].capacity_types == ["spot"]


def test_a_pool_limit_is_shared_by_the_deployments_that_select_it():
    def edit(raw):
        raw["mlserve:cluster"] = cluster(node_class={"ami_alias": "al2023@v20260818"}, gpu_pools=[
            {"name": "gpu-pool", "instance_types": ["g5.12xlarge"], "gpu_limit": 8, "cpu_limit": 96}])
        first = {**kserve_deployment(raw), "compute": {"gpus": 2, "node_group": "gpu-pool"},
                 "rollout": {"strategy": "all_at_once"}}
        first["autoscaling"] = {"min": 1, "max": 3, "target_concurrency": 8}
        raw["mlserve:deployments"] += [first, {**first, "name": "second"}]

    found, text = errors_of(edited("dev", edit), "dev")
    assert list(found) == ["mlserve:deployments[2].autoscaling.max"], text
    assert "at most 1: pool 'gpu-pool' may hold 8 GPUs" in found["mlserve:deployments[2].autoscaling.max"].allowed


def test_scaling_target_is_measured_capacity_less_headroom():
    prod = config_of(raw_config("prod"), "prod").deployments[0]
    assert prod.target_invocations_per_minute() == int(240 * 60 * 0.6)


def test_a_cluster_in_a_vpc_too_small_for_its_load_balancer_subnets_is_refused():
    found, text = errors_of(edited("prod", lambda r: r["mlserve:network"].update(cidr="10.50.0.0/22")), "prod")
    assert "/27" in found["mlserve:network.cidr"].allowed, text


@pytest.mark.parametrize("rollout,path,fragment", [
    ({"strategy": "rolling", "batch_percent": 60, "bake_minutes": 5}, "mlserve:deployments[0].rollout.batch_percent",
     "less than or equal to 50"),
    ({"strategy": "rolling", "batch_percent": 25, "bake_minutes": 90}, "mlserve:deployments[0].rollout.bake_minutes",
     "less than or equal to 60"),
    ({"strategy": "rolling", "batch_percent": 25, "bake_minutes": 5, "timeout_minutes": 5},
     "mlserve:deployments[0].rollout.timeout_minutes", "greater than or equal to 10"),
])
def test_a_rolling_rollout_outside_the_apis_limits_is_refused(rollout, path, fragment):
    found, text = errors_of(edited("prod", lambda r: deployment(r).update(rollout=rollout)), "prod")
    assert fragment in found[path].allowed, text


def test_a_rolling_batch_must_leave_half_the_fleet_serving_and_kserve_cannot_roll():
    def small_fleet(raw):
        deployment(raw).update(rollout={"strategy": "rolling", "batch_percent": 50, "bake_minutes": 5})
        deployment(raw)["compute"]["instance_count"] = 3
    found, text = errors_of(edited("prod", small_fleet), "prod")
    assert "at most 50% of 3 instances" in found["mlserve:deployments[0].rollout.batch_percent"].allowed, text
    found, text = errors_of(edited("prod", lambda r: r["mlserve:deployments"][1].update(
        rollout={"strategy": "rolling", "batch_percent": 25, "bake_minutes": 5})), "prod")
    assert "all_at_once or canary for kserve" in found["mlserve:deployments[1].rollout.strategy"].allowed, text


def test_autoscaling_takes_exactly_one_load_target_and_concurrency_is_one():
    def both(raw):
        deployment(raw)["autoscaling"]["target_concurrency"] = 4
    found, text = errors_of(edited("prod", both), "prod")
    assert "target_concurrency" in found["mlserve:deployments[0].autoscaling"].allowed, text


@pytest.mark.parametrize("types,gpus,refused", [
    (["g6e.xlarge"], 2, True),        # one L40S per node: a 2-GPU replica never fits
    (["g6e"], 2, False),               # the family has 4- and 8-GPU sizes Karpenter may launch
    (["g5.12xlarge"], 4, False),
    (["g5.12xlarge"], 8, True),
])
def test_a_replica_asking_for_more_gpus_than_any_node_of_its_pool_has_is_refused(types, gpus, refused):
    def edit(raw):
        raw["mlserve:cluster"] = cluster(node_class={"ami_alias": "al2023@v20260818"}, gpu_pools=[
            {"name": "gpu-pool", "instance_types": types, "gpu_limit": 64, "cpu_limit": 1024}])
        raw["mlserve:deployments"].append({**kserve_deployment(raw), "compute": {"gpus": gpus, "node_group": "gpu-pool"}})

    if not refused:
        assert config_of(edited("dev", edit), "dev").deployments[1].compute.gpus == gpus
        return
    found, text = errors_of(edited("dev", edit), "dev")
    assert "mlserve:deployments[1].compute.gpus" in found, text
