"""Rules that relate several fields. Each names the key the user must change.

They run once the file is structurally valid (types, ranges, known keys), so each rule can trust its inputs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache

import botocore.session

from ..aws_facts import GPUS, gpu_memory_gib, sagemaker_gpus
from .errors import MISSING, ConfigIssue, did_you_mean, key_path
from .models import (
    GPU_EC2_FAMILIES,
    GPU_SAGEMAKER_FAMILIES,
    REQUIRED_TAGS,
    SAGEMAKER_MAX_BAKE_MINUTES,
    AllAtOnce,
    BlueGreen,
    Canary,
    KServeDeployment,
    Linear,
    Rolling,
    SageMakerDeployment,
    Shadow,
    StackConfig,
)


@lru_cache(maxsize=1)
def sagemaker_instance_types() -> frozenset[str]:
    """The endpoint instance types the SageMaker API accepts, from botocore's own service model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)

Rule = Callable[[StackConfig], Iterator[ConfigIssue]]


@lru_cache(maxsize=1)
def sagemaker_inference_amis() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInferenceAmiVersion").enum)


def sagemaker_inference_ami_exists(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        if isinstance(d, SageMakerDeployment) and d.compute.inference_ami_version not in sagemaker_inference_amis():
            yield ConfigIssue(key_path(("deployments", i, "compute", "inference_ami_version")),
                              d.compute.inference_ami_version,
                              "one of " + ", ".join(sorted(sagemaker_inference_amis()))
                              + did_you_mean(d.compute.inference_ami_version, sagemaker_inference_amis()))


def region_in_the_aws_partition(cfg: StackConfig) -> Iterator[ConfigIssue]:
    """The components build ARNs for the commercial `aws` partition; a GovCloud or China stack would get ARNs
    that AWS rejects at the first `pulumi up`. Refused here, by botocore's own partition data, until ARNs are
    derived from the provider's partition."""
    try:
        partition = botocore.session.get_session().get_partition_for_region(cfg.region)
    except Exception:  # noqa: BLE001 botocore raises several kinds for a region it does not know
        partition = "unknown"
    if partition != "aws":
        yield ConfigIssue(key_path(("region",)), cfg.region,
                          f"a region of the commercial `aws` partition (this one is in {partition!r}: mlserve builds "
                          f"ARNs as arn:aws:..., so GovCloud and China regions are not supported yet)")


def required_tags(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for tag in REQUIRED_TAGS:
        if not cfg.tags.get(tag, "").strip():
            yield ConfigIssue(key_path(("tags", tag)), cfg.tags.get(tag, MISSING),
                              "a non-empty value (cost and ownership reporting)")


def unique_names(cfg: StackConfig) -> Iterator[ConfigIssue]:
    groups = {
        "deployments": [d.name for d in cfg.deployments],
        "gateway.tiers": [t.name for t in cfg.gateway.tiers],
        "cluster.node_groups": [g.name for g in cfg.cluster.node_groups] if cfg.cluster else [],
    }
    for where, names in groups.items():
        seen = Counter(names)
        for index, name in enumerate(names):
            if seen[name] > 1:
                yield ConfigIssue(key_path((*where.split("."), index, "name")), name,
                                  f"a name used once in {where} (also used at another index)")


def models_live_in_the_stack_bucket(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        if d.model.bucket != cfg.model_store.bucket:
            yield ConfigIssue(key_path(("deployments", i, "model", "uri")), d.model.uri,
                              f"an s3://{cfg.model_store.bucket}/... URI (the stack's model_store.bucket), so the "
                              "serving role can be scoped to it")


def prod_network_spans_three_zones(cfg: StackConfig) -> Iterator[ConfigIssue]:
    if cfg.is_prod and cfg.network.availability_zones < 3:
        yield ConfigIssue(key_path(("network", "availability_zones")), cfg.network.availability_zones,
                          "3 in prod (one NAT gateway and one subnet pair per zone)")


def system_nodes_in_every_zone(cfg: StackConfig) -> Iterator[ConfigIssue]:
    """Prometheus' and Alertmanager's volumes are EBS, which lives in one zone: their pods run only on a system node
    in that zone. A system group smaller than the zones leaves a zone without one (and the managed group's zone
    rebalancing moves nodes between zones), so alerting would stop, Pending, with no alert to say so."""
    cluster = cfg.cluster
    if cluster is None:
        return
    zones, group = cfg.network.availability_zones, cluster.system_group()
    if group is not None and group.min_size < zones:
        yield ConfigIssue(key_path(("cluster", "node_groups", cluster.node_groups.index(group), "min_size")),
                          group.min_size, f"at least {zones} (network.availability_zones), so each zone can hold a "
                          "system node: Prometheus' and Alertmanager's EBS volumes are zonal, and their pods stay "
                          "Pending while their volume's zone has none")


def prod_names_its_account(cfg: StackConfig) -> Iterator[ConfigIssue]:
    if cfg.is_prod and cfg.account_id is None:
        yield ConfigIssue(key_path(("account_id",)), MISSING,
                          "the 12-digit id of prod's own account: a change with other credentials is then refused "
                          "before it touches anything")


def _component_bounds(cfg: StackConfig, i: int, d: SageMakerDeployment) -> Iterator[ConfigIssue]:
    scaling, hosted = d.autoscaling, d.inference_component
    if scaling.min == 0 and cfg.is_prod and not hosted.tolerates_cold_start:
        yield ConfigIssue(key_path(("deployments", i, "autoscaling", "min")), 0,
                          "at least 2 copies in prod, or 0 with inference_component.tolerates_cold_start: true (after idle, the "
                          "first requests fail while an instance starts)")
    elif cfg.is_prod and scaling.min == 1:
        yield ConfigIssue(key_path(("deployments", i, "autoscaling", "min")), 1,
                          "at least 2 copies in prod (two instances in two zones), or 0 with "
                          "inference_component.tolerates_cold_start")
    if d.mode == "async" or d.ab_variants or isinstance(d.rollout, Shadow):
        yield ConfigIssue(key_path(("deployments", i, "hosting")), d.hosting,
                          "endpoint with mode: async, ab_variants or a shadow rollout (mlserve declares inference "
                          "components for realtime single-model deployments)")
    if not isinstance(d.rollout, (AllAtOnce, Rolling)):
        yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), d.rollout.strategy,
                          "rolling or all_at_once with inference components (an inference component updates its copies in "
                          "batches; there is no blue/green fleet)")
    if not scaling.min <= hosted.copies <= scaling.max:
        yield ConfigIssue(key_path(("deployments", i, "inference_component", "copies")), hosted.copies,
                          f"between autoscaling.min ({scaling.min}) and autoscaling.max ({scaling.max})")
    gpus = sagemaker_gpus(d.compute.instance_type)
    if hosted.accelerators > gpus and d.compute.instance_type in sagemaker_instance_types():
        yield ConfigIssue(key_path(("deployments", i, "inference_component", "accelerators")), hosted.accelerators,
                          f"at most {gpus}: the GPUs of one {d.compute.instance_type}")


def capacity_bounds(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        scaling = d.autoscaling
        if scaling.min > scaling.max:
            yield ConfigIssue(key_path(("deployments", i, "autoscaling", "min")), scaling.min,
                              f"at most autoscaling.max ({scaling.max})")
        if isinstance(d, SageMakerDeployment) and d.hosting == "inference_components":
            yield from _component_bounds(cfg, i, d)
            continue
        queued = isinstance(d, SageMakerDeployment) and d.mode == "async"
        if cfg.is_prod and scaling.min < 2 and not queued:
            yield ConfigIssue(key_path(("deployments", i, "autoscaling", "min")), scaling.min,
                              "at least 2 in prod: a realtime endpoint needs two instances in two zones to survive one")
        if scaling.min == 0 and isinstance(d, SageMakerDeployment) and not queued:
            yield ConfigIssue(key_path(("deployments", i, "autoscaling", "min")), 0,
                              "at least 1: a realtime production variant cannot scale to zero (mode: async can: its "
                              "requests wait in the queue while the first instance starts)")
        if queued and isinstance(d, SageMakerDeployment):
            if d.ab_variants:
                yield ConfigIssue(key_path(("deployments", i, "ab_variants")), [v.name for v in d.ab_variants],
                                  "an empty list with mode: async (mlserve splits live traffic only for realtime)")
            if isinstance(d.rollout, Shadow):
                yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), "shadow",
                                  "canary, linear, blue_green, rolling or all_at_once with mode: async")
        if isinstance(d, SageMakerDeployment):
            count = d.compute.instance_count
            if not scaling.min <= count <= scaling.max:
                yield ConfigIssue(key_path(("deployments", i, "compute", "instance_count")), count,
                                  f"between autoscaling.min ({scaling.min}) and autoscaling.max ({scaling.max})")


# What SageMaker sets once per endpoint (its production variant and config), so every component on it must agree.
ENDPOINT_SETTINGS = ("instance_type", "inference_ami_version", "startup_health_check_timeout_seconds",
                     "model_download_timeout_seconds")


def shared_endpoints_agree(cfg: StackConfig) -> Iterator[ConfigIssue]:
    names = {d.name for d in cfg.deployments}
    groups: dict[str, list[tuple[int, SageMakerDeployment]]] = {}
    for i, d in enumerate(cfg.deployments):
        if not isinstance(d, SageMakerDeployment) or d.endpoint is None:
            continue
        if d.hosting != "inference_components":
            yield ConfigIssue(key_path(("deployments", i, "endpoint")), d.endpoint,
                              "unset, or hosting: inference_components (only inference components share an endpoint)")
            continue
        if d.endpoint != d.name and d.endpoint in names:
            yield ConfigIssue(key_path(("deployments", i, "endpoint")), d.endpoint,
                              "a name no other deployment has (the endpoint would take that deployment's name)")
        groups.setdefault(d.endpoint, []).append((i, d))
    for group, members in groups.items():
        first_index, first = members[0]
        for i, d in members[1:]:
            for setting in ENDPOINT_SETTINGS:
                if getattr(d.compute, setting) != getattr(first.compute, setting):
                    yield ConfigIssue(key_path(("deployments", i, "compute", setting)), getattr(d.compute, setting),
                                      f"{getattr(first.compute, setting)!r}, as deployments[{first_index}] on the "
                                      f"shared endpoint {group!r} (one production variant serves every inference component)")
        if len(members) > 1 and cfg.is_prod:
            for i, _ in members:
                yield ConfigIssue(key_path(("deployments", i, "endpoint")), group,
                                  "unset in prod (an endpoint per deployment): prod captures every model's traffic "
                                  "(policy prod-data-capture), and SageMaker captures per endpoint, not per "
                                  "inference component, so the models on a shared endpoint could not be told apart")
        elif len(members) > 1:
            for i, d in members:
                for part, on in (("data_capture", d.data_capture.enabled), ("drift", d.drift.enabled)):
                    if on:
                        yield ConfigIssue(key_path(("deployments", i, part, "enabled")), True,
                                          f"false on the shared endpoint {group!r}: SageMaker captures per endpoint, "
                                          "so the captures of its models would mix (and drift with them); give the "
                                          "deployment an endpoint of its own to capture")


def gpu_models_get_gpus(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        needs_gpu = d.needs_gpu or d.model.format == "tensorrt_plan"
        if not needs_gpu:
            continue
        if isinstance(d, SageMakerDeployment) and not d.compute.instance_type.startswith(GPU_SAGEMAKER_FAMILIES):
            yield ConfigIssue(key_path(("deployments", i, "compute", "instance_type")), d.compute.instance_type,
                              "a GPU instance family (" + ", ".join(f + "*" for f in GPU_SAGEMAKER_FAMILIES) +
                              ") because the model needs a GPU (needs_gpu or format tensorrt_plan)")
        if isinstance(d, KServeDeployment) and d.compute.gpus < 1:
            yield ConfigIssue(key_path(("deployments", i, "compute", "gpus")), d.compute.gpus,
                              "at least 1 because the model needs a GPU (needs_gpu or format tensorrt_plan)")


def kserve_needs_a_cluster(cfg: StackConfig) -> Iterator[ConfigIssue]:
    groups: dict[str, bool] = {g.name: g.gpu for g in cfg.cluster.node_groups} if cfg.cluster else {}
    groups.update({pool.name: True for pool in cfg.cluster.gpu_pools} if cfg.cluster else {})
    for i, d in enumerate(cfg.deployments):
        if not isinstance(d, KServeDeployment):
            continue
        if cfg.cluster is None:
            yield ConfigIssue(key_path(("deployments", i, "backend")), "kserve",
                              "'sagemaker', or 'kserve' once mlserve:cluster is configured")
            continue
        gpu = groups.get(d.compute.node_group)
        if gpu is None:
            yield ConfigIssue(key_path(("deployments", i, "compute", "node_group")), d.compute.node_group,
                              "one of the cluster's GPU pools or node groups: " + ", ".join(sorted(groups))
                              + did_you_mean(d.compute.node_group, groups))
        elif d.compute.gpus > 0 and not gpu:
            yield ConfigIssue(key_path(("deployments", i, "compute", "node_group")), d.compute.node_group,
                              "a node group with gpu: true, since the deployment asks for GPUs")
        if d.autoscaling.target_concurrency is None and not d.is_llm:
            yield ConfigIssue(key_path(("deployments", i, "autoscaling", "target_concurrency")), MISSING,
                              "in-flight requests per replica at the p99 SLO (what KEDA scales on), e.g. 8")
        if d.autoscaling.min == 0 and cfg.is_prod:
            yield ConfigIssue(key_path(("deployments", i, "autoscaling", "min")), 0,
                              "at least 1 in prod (pods scaled away while a GPU node starts fail requests)")


def progressive_rollout_fits_capacity(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        rollout = d.rollout
        if isinstance(rollout, Shadow) and isinstance(d, KServeDeployment):
            yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), "shadow",
                              "all_at_once or canary for kserve (shadow traffic is a SageMaker feature here)")
        if isinstance(rollout, Canary) and isinstance(d, KServeDeployment) and rollout.candidate is None:
            yield ConfigIssue(key_path(("deployments", i, "rollout", "candidate")), MISSING,
                              "the model under test (uri, format, sha256): a kserve canary serves it beside `model`")
        if isinstance(rollout, Canary) and isinstance(d, SageMakerDeployment):
            if rollout.candidate is not None:
                yield ConfigIssue(key_path(("deployments", i, "rollout", "candidate")), rollout.candidate.uri,
                                  "no candidate for sagemaker: change `model` and the blue/green canary shifts to it")
            if rollout.percent == 0:
                yield ConfigIssue(key_path(("deployments", i, "rollout", "percent")), 0,
                                  "1-50 for sagemaker (0 is the kserve rollback setting)")
        if isinstance(rollout, (Linear, BlueGreen, Rolling)) and isinstance(d, KServeDeployment):
            yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), rollout.strategy,
                              "all_at_once or canary for kserve (step the canary's percent instead)")
        if not isinstance(d, SageMakerDeployment) or not isinstance(rollout, (Canary, Linear, Rolling)):
            continue
        if d.hosting == "inference_components":
            continue  # a component rolls its copies in batches on the running instances; no second fleet to fit
        count = d.compute.instance_count
        step, field = {Canary: ("percent", "percent"), Linear: ("step_percent", "step_percent"),
                       Rolling: ("batch_percent", "batch_percent")}[type(rollout)]
        step = getattr(rollout, step)
        if count < 2:
            yield ConfigIssue(key_path(("deployments", i, "compute", "instance_count")), count,
                              f"at least 2 for a {rollout.strategy} rollout: the first step runs on its own instance "
                              "beside the old fleet, and SageMaker allows at most 50% of the variant there")
            continue
        first_step_instances = math.ceil(count * step / 100)
        if first_step_instances * 2 > count:
            yield ConfigIssue(key_path(("deployments", i, "rollout", field)), step,
                              f"a step of at most 50% of {count} instances (this one is {first_step_instances} "
                              f"instances once rounded up); lower the percent or add instances")


def _by_size(instance_type: str) -> tuple[int, str]:
    """ml.g5.xlarge < ml.g5.2xlarge < ml.g5.12xlarge: the size's multiplier, then the name."""
    size = instance_type.rsplit(".", 1)[-1]
    digits = size[:len(size) - len(size.lstrip("0123456789"))]
    return (int(digits) if digits else (0 if "xlarge" in size else -1), size)


def sagemaker_instance_types_exist(cfg: StackConfig) -> Iterator[ConfigIssue]:
    known = sagemaker_instance_types()
    for i, d in enumerate(cfg.deployments):
        if isinstance(d, SageMakerDeployment) and d.compute.instance_type not in known:
            given = d.compute.instance_type
            family = given.rsplit(".", 1)[0]
            sizes = sorted((t for t in known if t.startswith(family + ".")), key=_by_size)
            yield ConfigIssue(key_path(("deployments", i, "compute", "instance_type")), given,
                              "a SageMaker endpoint instance type" + did_you_mean(given, known)
                              + (f"; the {family} family: {', '.join(sizes)}" if sizes else ""))


def autoscaling_target(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        if not isinstance(d, SageMakerDeployment):
            continue
        scaling = d.autoscaling
        given = [k for k in ("target_invocations_per_instance", "max_rps_per_instance_at_slo", "target_concurrency")
                 if getattr(scaling, k) is not None]
        if d.mode == "async":
            if given:
                yield ConfigIssue(key_path(("deployments", i, "autoscaling")), given,
                                  "none of these with mode: async: it scales on its queue "
                                  "(async_inference.backlog_per_instance)")
            continue
        if len(given) != 1:
            yield ConfigIssue(key_path(("deployments", i, "autoscaling")), given or MISSING,
                              "exactly one of target_invocations_per_instance (per minute), "
                              "max_rps_per_instance_at_slo (measured; mlserve keeps headroom_percent free) or "
                              "target_concurrency (measured in-flight requests per instance, tracked at high "
                              "resolution)")


GUARDRAIL_EXCLUSIONS = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html"
COMPONENT_ROLLING_POLICY = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRollingUpdatePolicy.html"


def documented_api_limits(cfg: StackConfig) -> Iterator[ConfigIssue]:
    """Limits the SageMaker API documents but botocore's model does not carry (it knows only `min: 1` for a batch):
    the API accepts such a request and then fails the update, or silently does something else."""
    for i, d in enumerate(cfg.deployments):
        if not isinstance(d, SageMakerDeployment):
            continue
        rollout = d.rollout
        # An update meets whatever count autoscaling left: the smallest it may leave must still hold a batch.
        fewest = max(1, d.autoscaling.min)
        if isinstance(rollout, Rolling) and d.hosting == "inference_components" \
                and min(d.inference_component.copies, fewest) * rollout.batch_percent < 100:
            yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), "rolling",
                              f"all_at_once, or copies and autoscaling.min of at least "
                              f"{math.ceil(100 / rollout.batch_percent)} for batches of {rollout.batch_percent}%: an "
                              f"update meets the copy count autoscaling left, and a batch must be a whole copy and "
                              f"5-50% of that count ({COMPONENT_ROLLING_POLICY})")
        if isinstance(rollout, Rolling) and d.ab_variants:
            yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), "rolling",
                              "canary, linear or blue_green with ab_variants: SageMaker does not roll multi-variant "
                              f"endpoints and falls back to all-at-once blue/green without a bake ({GUARDRAIL_EXCLUSIONS})")
        if isinstance(rollout, (Canary, Linear, BlueGreen, Rolling)) and d.compute.instance_type.startswith("ml.inf1."):
            yield ConfigIssue(key_path(("deployments", i, "rollout", "strategy")), rollout.strategy,
                              "all_at_once on Inf1 instances: SageMaker applies no deployment guardrails there and "
                              f"falls back to all-at-once blue/green without a bake ({GUARDRAIL_EXCLUSIONS})")


def sagemaker_bake_fits_the_api(cfg: StackConfig) -> Iterator[ConfigIssue]:
    for i, d in enumerate(cfg.deployments):
        if not isinstance(d, SageMakerDeployment):
            continue
        rollout = d.rollout
        field = {Canary: "bake_minutes", BlueGreen: "bake_minutes", Linear: "step_bake_minutes"}.get(type(rollout))
        if field and getattr(rollout, field) > SAGEMAKER_MAX_BAKE_MINUTES:
            yield ConfigIssue(key_path(("deployments", i, "rollout", field)), getattr(rollout, field),
                              f"at most {SAGEMAKER_MAX_BAKE_MINUTES} (SageMaker waits at most 3600 s per step)")
        if d.ab_variants and isinstance(rollout, Shadow):
            yield ConfigIssue(key_path(("deployments", i, "ab_variants")), [v.name for v in d.ab_variants],
                              "an empty list with a shadow rollout (a shadow test and an A/B test at once "
                              "cannot be read apart)")


def gateway_and_drift_are_complete(cfg: StackConfig) -> Iterator[ConfigIssue]:
    gateway = cfg.gateway
    if gateway.authorization == "jwt" and not gateway.cognito_user_pool_arn:
        yield ConfigIssue(key_path(("gateway", "cognito_user_pool_arn")), MISSING,
                          "the ARN of the Cognito user pool that issues the JWTs (authorization: jwt)")
    if bool(gateway.domain_name) != bool(gateway.certificate_arn):
        yield ConfigIssue(key_path(("gateway", "certificate_arn")), gateway.certificate_arn or MISSING,
                          "set together with gateway.domain_name (an ACM certificate for that name)")
    if gateway.domain_name and len(cfg.deployments) > 1:
        # Each deployment has its own API, and a custom domain maps to one API here.
        yield ConfigIssue(key_path(("gateway", "domain_name")), gateway.domain_name,
                          f"no custom domain while the stack has {len(cfg.deployments)} deployments (one API each); "
                          "use the invoke URLs, or split the stack")
    for i, d in enumerate(cfg.deployments):
        trigger = d.drift.on_alarm
        if not d.drift.enabled:
            for key, value in (("on_alarm", trigger), ("prediction_psi_alarm_threshold",
                                                       d.drift.prediction_psi_alarm_threshold)):
                if value is not None:
                    yield ConfigIssue(key_path(("deployments", i, "drift", key)), "set",
                                      "unset while drift.enabled is false (nothing would alarm)")
            continue
        if trigger is not None:
            arn_key = {"sagemaker_pipeline": "pipeline_arn", "step_functions": "state_machine_arn",
                       "https": "api_key_secret_arn"}[trigger.kind]
            arn = getattr(trigger, arn_key)
            if arn.split(":")[3] != cfg.region:
                yield ConfigIssue(key_path(("deployments", i, "drift", "on_alarm", arn_key)), arn,
                                  f"an ARN in the stack's region {cfg.region} (an EventBridge rule's targets, and "
                                  "the secret read at deploy time, are in its own region)")
        if not d.data_capture.enabled:
            yield ConfigIssue(key_path(("deployments", i, "data_capture", "enabled")), False,
                              "true when drift.enabled (drift is computed from captured requests)")
        if not d.drift.baseline_uri:
            yield ConfigIssue(key_path(("deployments", i, "drift", "baseline_uri")), MISSING,
                              "the s3://.../baseline.json written by `python -m drift baseline` from reference data")
        elif not d.drift.baseline_uri.startswith(f"s3://{cfg.model_store.bucket}/"):
            yield ConfigIssue(key_path(("deployments", i, "drift", "baseline_uri")), d.drift.baseline_uri,
                              f"a URI in the stack's bucket s3://{cfg.model_store.bucket}/")


def certificates_in_the_stack_region(cfg: StackConfig) -> Iterator[ConfigIssue]:
    """ACM certificates are regional: the KServe ALBs' listener and API Gateway's REGIONAL custom domain take only
    a certificate of their own region, and AWS refuses another at `pulumi up`, after the rest has been created."""
    arns = [(("gateway", "certificate_arn"), cfg.gateway.certificate_arn, "the API's regional custom domain")]
    if cfg.cluster is not None:
        arns.append((("cluster", "ingress_certificate_arn"), cfg.cluster.ingress_certificate_arn,
                     "the KServe load balancers' HTTPS listener"))
    for loc, arn, user in arns:
        region = arn.split(":")[3] if arn else cfg.region
        if region != cfg.region:
            yield ConfigIssue(key_path(loc), arn,
                              f"a certificate in the stack's region {cfg.region} (mlserve:region); this one is in "
                              f"{region}, and {user} can use only a certificate of its own region: request or "
                              f"import it in {cfg.region} with ACM")


def cluster_is_private_and_sized(cfg: StackConfig) -> Iterator[ConfigIssue]:
    cluster = cfg.cluster
    if cluster is None:
        return
    for j, cidr in enumerate(cluster.public_access_cidrs):
        if cidr.endswith("/0"):
            yield ConfigIssue(key_path(("cluster", "public_access_cidrs", j)), cidr,
                              "a specific CIDR (an office or VPN range); never the whole internet")
    if cfg.is_prod and cluster.public_access_cidrs:
        yield ConfigIssue(key_path(("cluster", "public_access_cidrs")), cluster.public_access_cidrs,
                          "an empty list in prod: the API endpoint is private (reach it through the VPC)")
    if int(cfg.network.cidr.split("/")[1]) > 21:
        # The load-balancer subnets are 1/64 of the VPC each; an ALB needs a /27 or larger.
        yield ConfigIssue(key_path(("network", "cidr")), cfg.network.cidr,
                          "a /21 or larger VPC with a cluster: its load-balancer subnets (1/64 of the VPC each) "
                          "must hold an ALB, which needs a /27")
    if cluster.system_group() is None:
        yield ConfigIssue(key_path(("cluster", "node_groups")), [g.name for g in cluster.node_groups],
                          "also a CPU node group (gpu: false) for the controllers (KServe, KEDA, cert-manager, ...)")
    if cfg.is_prod and not cluster.ingress_certificate_arn:
        yield ConfigIssue(key_path(("cluster", "ingress_certificate_arn")), MISSING,
                          "an ACM certificate ARN in prod: the KServe load balancers serve HTTPS only")
    if bool(cluster.ingress_certificate_arn) != bool(cluster.ingress_domain):
        given = "ingress_certificate_arn" if cluster.ingress_certificate_arn else "ingress_domain"
        missing = "ingress_domain" if given == "ingress_certificate_arn" else "ingress_certificate_arn"
        yield ConfigIssue(key_path(("cluster", missing)), MISSING,
                          f"set together with {given}: the certificate must cover *.<ingress_domain>")
    proxy_minor = ".".join(cluster.addons.kube_proxy.lstrip("v").split(".")[:2])
    if proxy_minor != cluster.kubernetes_version:
        yield ConfigIssue(key_path(("cluster", "addons", "kube_proxy")), cluster.addons.kube_proxy,
                          f"a v{cluster.kubernetes_version}.x build: kube-proxy must match the control plane's "
                          f"minor version (kubernetes_version {cluster.kubernetes_version})")
    for j, group in enumerate(cluster.node_groups):
        where = ("cluster", "node_groups", j)
        if not group.min_size <= group.desired_size <= group.max_size:
            yield ConfigIssue(key_path((*where, "desired_size")), group.desired_size,
                              f"between min_size ({group.min_size}) and max_size ({group.max_size})")
        if not group.gpu:
            continue
        for k, instance_type in enumerate(group.instance_types):
            if not instance_type.startswith(GPU_EC2_FAMILIES):
                yield ConfigIssue(key_path((*where, "instance_types", k)), instance_type,
                                  "a GPU family: " + ", ".join(f + "*" for f in GPU_EC2_FAMILIES))
        if group.ami_type == "AL2023_x86_64_STANDARD":
            yield ConfigIssue(key_path((*where, "ami_type")), group.ami_type,
                              "AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA (they carry the NVIDIA driver)")
        if group.min_size == 0 and (cfg.is_prod or not group.allow_scale_to_zero):
            yield ConfigIssue(key_path((*where, "min_size")), 0,
                              "at least 1 in prod; in dev 0 only with allow_scale_to_zero: true "
                              "(a cold GPU node takes minutes and the first requests fail)")
        if cfg.is_prod and group.capacity_type == "SPOT":
            yield ConfigIssue(key_path((*where, "capacity_type")), "SPOT",
                              "ON_DEMAND in prod (spot GPU capacity is often unavailable and gets reclaimed)")


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("4", "500m") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def gpu_pools_fit_their_deployments(cfg: StackConfig) -> Iterator[ConfigIssue]:
    """Karpenter never launches past a pool's limits: pods beyond them stay Pending, at the busiest moment."""
    cluster = cfg.cluster
    if cluster is None:
        return
    if cluster.gpu_pools and cluster.node_class is None:
        yield ConfigIssue(key_path(("cluster", "node_class")), MISSING,
                          "an EC2NodeClass (ami_alias, disk_size_gib) for the GPU pools to launch from")
    group_names = {g.name for g in cluster.node_groups}
    seen: set[str] = set()
    for j, pool in enumerate(cluster.gpu_pools):
        where = ("cluster", "gpu_pools", j)
        if pool.name in group_names or pool.name in seen:
            yield ConfigIssue(key_path((*where, "name")), pool.name,
                              "a name no other GPU pool or managed node group uses (pods select nodes by it)")
        seen.add(pool.name)
        exact = [t for t in pool.instance_types if "." in t]
        if exact and len(exact) != len(pool.instance_types):
            yield ConfigIssue(key_path((*where, "instance_types")), pool.instance_types,
                              "either instance families (g5, g6) or exact types (g5.2xlarge), not both")
        for k, instance_type in enumerate(pool.instance_types):
            if not (instance_type.split(".")[0] + ".").startswith(GPU_EC2_FAMILIES):
                yield ConfigIssue(key_path((*where, "instance_types", k)), instance_type, "a GPU family or type: "
                                  + ", ".join(f.rstrip(".") for f in GPU_EC2_FAMILIES) + " (these have NVIDIA GPUs)")
        if len(set(pool.capacity_types)) != len(pool.capacity_types):
            yield ConfigIssue(key_path((*where, "capacity_types")), pool.capacity_types, "each capacity type once")
        if cfg.is_prod and "on-demand" not in pool.capacity_types:
            yield ConfigIssue(key_path((*where, "capacity_types")), pool.capacity_types,
                              "a list with on-demand in prod ([on-demand], or [spot, on-demand] for spot first with "
                              "an on-demand fallback): spot GPU capacity is often unavailable and gets reclaimed")
        if cfg.is_prod and pool.max_disrupted_nodes > 1:
            yield ConfigIssue(key_path((*where, "max_disrupted_nodes")), pool.max_disrupted_nodes,
                              "1 in prod: draining two GPU nodes at once can take a deployment below its minimum")
        users = [(i, d) for i, d in enumerate(cfg.deployments)
                 if isinstance(d, KServeDeployment) and d.compute.node_group == pool.name]
        # A replica must fit one node: a pod asking for more GPUs than any type of the pool has stays Pending.
        most_gpus = max((n for t, n in GPUS.items() for wanted in pool.instance_types
                         if t == wanted or t.split(".")[0] == wanted), default=0)
        for i, d in users:
            if most_gpus and d.compute.gpus > most_gpus:
                yield ConfigIssue(key_path(("deployments", i, "compute", "gpus")), d.compute.gpus,
                                  f"at most {most_gpus}, the most GPUs one node of pool {pool.name!r} has "
                                  f"({', '.join(pool.instance_types)}); or add a larger type to "
                                  f"cluster.gpu_pools[{j}].instance_types")
        gpus_needed, cpus_needed = 0, 0.0
        for i, d in users:
            # During a canary the candidate track scales up to max too (KServeService): count both.
            tracks = 2 if isinstance(d.rollout, Canary) and d.rollout.candidate and d.rollout.percent > 0 else 1
            gpus_needed += d.autoscaling.max * d.compute.gpus * tracks
            cpus_needed += d.autoscaling.max * cpu_cores(d.compute.cpu) * tracks
            if gpus_needed > pool.gpu_limit:
                room = pool.gpu_limit - (gpus_needed - d.autoscaling.max * d.compute.gpus * tracks)
                most = max(room, 0) // (d.compute.gpus * tracks) if d.compute.gpus else d.autoscaling.max
                yield ConfigIssue(
                    key_path(("deployments", i, "autoscaling", "max")), d.autoscaling.max,
                    f"at most {most}: pool {pool.name!r} may hold {pool.gpu_limit} GPUs (gpu_limit), and "
                    f"{d.autoscaling.max} replicas x {d.compute.gpus} GPU(s)"
                    + (" x 2 tracks (stable and canary)" if tracks == 2 else "")
                    + f" bring the pool's deployments to {gpus_needed}; or raise cluster.gpu_pools[{j}].gpu_limit")
        if cpus_needed > pool.cpu_limit:
            yield ConfigIssue(key_path((*where, "cpu_limit")), pool.cpu_limit,
                              f"at least {math.ceil(cpus_needed)}: the pool's deployments request that many vCPUs "
                              "at max replicas (and nodes hold more than their pods request)")




TENSOR_MAX_LATENCY_MS = 60_000
"""InvokeEndpoint answers within 60 s (botocore's InvokeEndpoint documentation); a tensor model is held to that."""
CONTAINER_AND_IMAGE_GIB = 80
"""What a GPU node's disk holds besides the weights: the vLLM image twice during an image bump (containerd keeps the
compressed layers and the unpacked snapshot of each), vLLM's /tmp (compile caches, up to 20 GiB), the NVIDIA AMI's
own files and logs."""


def _llm_capacity(cfg: StackConfig, d) -> tuple[str | None, int]:
    """The smallest GPU one replica may land on (its memory is what the weights must fit) and its GPUs per replica."""
    if isinstance(d, SageMakerDeployment):
        return d.compute.instance_type, d.inference_component.accelerators
    pools = {p.name: p for p in cfg.cluster.gpu_pools} if cfg.cluster else {}
    groups = {g.name: g for g in cfg.cluster.node_groups} if cfg.cluster else {}
    types = list(pools[d.compute.node_group].instance_types) if d.compute.node_group in pools else \
        list(groups[d.compute.node_group].instance_types) if d.compute.node_group in groups else []
    # gpu_memory_gib reads the family, so a pool of families (g6e) and one of exact types (g6e.2xlarge) both work.
    sized = [t for t in types if gpu_memory_gib(t)]
    return min(sized, key=gpu_memory_gib, default=None), d.compute.gpus


def llm_deployments_are_complete(cfg: StackConfig) -> Iterator[ConfigIssue]:
    """A language model is served by vLLM from a safetensors folder, held to token-level SLOs, on GPUs whose memory
    holds its weights with room for the KV cache; a tensor model keeps the tensor path's limits."""
    for i, d in enumerate(cfg.deployments):
        at = ("deployments", i)
        if not d.is_llm:
            if d.llm is not None:
                yield ConfigIssue(key_path((*at, "runtime")), d.runtime, "vllm, since llm (engine settings) is set")
            if d.model.format == "safetensors":
                yield ConfigIssue(key_path((*at, "runtime")), d.runtime,
                                  "vllm: a safetensors folder is a language model's weights, served by vLLM")
            if d.slo.p99_latency_ms > TENSOR_MAX_LATENCY_MS:
                yield ConfigIssue(key_path((*at, "slo", "p99_latency_ms")), d.slo.p99_latency_ms,
                                  f"at most {TENSOR_MAX_LATENCY_MS} for a tensor model (a request is answered within "
                                  "60 s); longer only for runtime vllm, whose answers stream")
            for key in ("ttft_p99_ms", "itl_p99_ms"):
                if getattr(d.slo, key) is not None:
                    yield ConfigIssue(key_path((*at, "slo", key)), getattr(d.slo, key),
                                      "unset for a tensor model (token latencies are runtime vllm's)")
            continue
        if d.llm is None:
            yield ConfigIssue(key_path((*at, "llm")), MISSING, "vLLM's engine settings (weights_gib, max_model_len, "
                              "tensor_parallel, ...): docs/llm.md")
            continue
        if d.model.format != "safetensors":
            yield ConfigIssue(key_path((*at, "model", "format")), d.model.format,
                              "safetensors: vLLM serves a Hugging Face folder (config.json, tokenizer, *.safetensors)")
        elif not d.model.uri.endswith("/"):
            yield ConfigIssue(key_path((*at, "model", "uri")), d.model.uri,
                              "the weights folder, ending in / (s3://bucket/llm/assistant/v3/)")
        for key in ("ttft_p99_ms", "itl_p99_ms"):
            if getattr(d.slo, key) is None:
                yield ConfigIssue(key_path((*at, "slo", key)), MISSING,
                                  "a p99 in milliseconds: runtime vllm is held to time to first token and inter-token "
                                  "latency (`python -m infra.ops profile` measures both)")
        if not d.needs_gpu:
            yield ConfigIssue(key_path((*at, "needs_gpu")), False, "true: mlserve serves language models on GPUs")
        if isinstance(d, SageMakerDeployment):
            if d.hosting != "inference_components":
                yield ConfigIssue(key_path((*at, "hosting")), d.hosting,
                                  "inference_components: a language model is an inference component (its GPUs reserved per copy; "
                                  "its answers stream through InvokeEndpointWithResponseStream)")
            if d.mode != "realtime":
                yield ConfigIssue(key_path((*at, "mode")), d.mode,
                                  "realtime: an LLM's answer streams back in the request")
        instance_type, gpus = _llm_capacity(cfg, d)
        tp_key = (*at, "inference_component", "accelerators") if isinstance(d, SageMakerDeployment) else (*at, "compute", "gpus")
        if d.llm.tensor_parallel != gpus:
            yield ConfigIssue(key_path((*at, "llm", "tensor_parallel")), d.llm.tensor_parallel,
                              f"{gpus}, the GPUs of one replica ({key_path(tp_key)}): vLLM shards the model over "
                              "exactly the GPUs it is given")
        if instance_type and gpus:
            usable = gpus * gpu_memory_gib(instance_type) * d.llm.gpu_memory_utilization
            if d.llm.weights_gib >= usable:
                yield ConfigIssue(key_path((*at, "llm", "weights_gib")), d.llm.weights_gib,
                                  f"less than {usable:.0f} GiB, what {gpus} GPU(s) of {gpu_memory_gib(instance_type)} "
                                  f"GiB at gpu_memory_utilization {d.llm.gpu_memory_utilization:g} hold (the "
                                  f"smallest GPU this deployment may land on); the KV cache needs the rest. Use "
                                  f"bigger GPUs, more of them (tensor_parallel) or quantized weights")
        if isinstance(d, KServeDeployment) and cfg.cluster and cfg.cluster.node_class:
            if not cfg.cluster.node_class.ami_alias.startswith("al2023@"):
                yield ConfigIssue(key_path(("cluster", "node_class", "ami_alias")), cfg.cluster.node_class.ami_alias,
                                  f"an al2023@ alias while {d.name!r} serves a language model: its pool's nodes "
                                  "prepare the model cache's folder with a shell step, which Bottlerocket does not run")
            pools = {p.name: p for p in cfg.cluster.gpu_pools}
            pool = pools.get(d.compute.node_group)
            # The node-local cache keeps one copy; a new version downloads beside it during a canary.
            needed = math.ceil(2 * d.llm.weights_gib) + CONTAINER_AND_IMAGE_GIB
            if pool and (disk := cfg.cluster.pool_disk_gib(pool)) < needed:
                where = ("cluster", "gpu_pools", list(pools).index(pool.name), "disk_size_gib")
                yield ConfigIssue(key_path(where), disk,
                                  f"at least {needed} GiB for {d.name!r}: two versions of its {d.llm.weights_gib:g} "
                                  f"GiB of weights in the node's model cache, plus {CONTAINER_AND_IMAGE_GIB} GiB for "
                                  "the vLLM image and the system")


RULES: tuple[Rule, ...] = (
    region_in_the_aws_partition,
    required_tags,
    unique_names,
    models_live_in_the_stack_bucket,
    prod_network_spans_three_zones,
    system_nodes_in_every_zone,
    prod_names_its_account,
    capacity_bounds,
    shared_endpoints_agree,
    gpu_models_get_gpus,
    kserve_needs_a_cluster,
    progressive_rollout_fits_capacity,
    cluster_is_private_and_sized,
    gpu_pools_fit_their_deployments,
    sagemaker_instance_types_exist,
    sagemaker_inference_ami_exists,
    autoscaling_target,
    sagemaker_bake_fits_the_api,
    documented_api_limits,
    gateway_and_drift_are_complete,
    certificates_in_the_stack_region,
    llm_deployments_are_complete,
)


def check(cfg: StackConfig) -> list[ConfigIssue]:
    return [issue for rule in RULES for issue in rule(cfg)]
