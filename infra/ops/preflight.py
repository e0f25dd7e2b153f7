"""Preflight: what makes a GPU deployment fail late, checked before `pulumi up`.

A `pulumi up` that hits a quota, a missing artifact or an unscanned image fails after the network, roles and model
are already replaced, often an hour into a blue/green rollout. Each check here answers in seconds:

- quotas: SageMaker "<type> for endpoint usage" per instance type, against what the stack needs at max capacity
  *during a blue/green update* (SageMaker runs a full green fleet beside the blue one), minus what other endpoints in
  the account already use; EC2 G/P vCPU quotas for GPU node groups at max size and Karpenter GPU pools at their CPU
  limit (per capacity type they may buy). A type with no quota in the region is a type the region does not offer for
  endpoints. Language models (runtime vllm) are counted the same way, and their rows name them as such.
- artifacts: every model the stack serves exists in S3 with the sha256 the config expects. A language model's folder:
  its release manifest (`<uri>mlserve-manifest.json`) has the config's sha256, and every file it lists is in S3 at its
  size (HeadObject). A 403 is said as what it may be: without s3:ListBucket, S3 answers 403 for a missing key too.
- images: the serving image tag or digest exists in ECR and its scan found nothing critical.
- instance types: EC2 GPU node group and pool types (or families) are offered in the region's AZs.
- AMI: the node class's pinned alias resolves to an NVIDIA image for the cluster's Kubernetes version (SSM).
- EKS add-ons: every pinned add-on version is one EKS offers for the cluster's Kubernetes version (the builds cannot
  be listed offline, so a pin is only known good once EKS has said so).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, replace

from botocore.exceptions import ClientError

from components.names import deployment_name, endpoint_name, image_repository_name
from components.weights_manifest import MANIFEST
from infra.config.models import (
    Canary,
    KServeDeployment,
    ModelArtifact,
    Rolling,
    SageMakerDeployment,
    ServingImage,
    Shadow,
    StackConfig,
)

from .clients import Clients
from .report import Check

# EC2 On-Demand / Spot vCPU quotas by instance family letter (Service Quotas, service code "ec2").
EC2_VCPU_QUOTAS = {
    ("g", "ON_DEMAND"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("p", "ON_DEMAND"): ("L-417A185B", "Running On-Demand P instances"),
    ("g", "SPOT"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("p", "SPOT"): ("L-7212CCBC", "All P Spot Instance Requests"),
}
RELEASE_FIX = "python -m infra.ops release-model --stack {stack} --deployment {deployment} --model-dir DIR"
RELEASE_LLM_FIX = RELEASE_FIX + " --llm"


@dataclass(frozen=True)
class EndpointNeed:
    instance_type: str
    instances: int
    why: str


def _served_name(d: SageMakerDeployment | KServeDeployment) -> str:
    """A deployment as the quota rows name it: a language model's GPUs are said to be an LLM's (vLLM)."""
    return f"{d.name} (LLM, vLLM)" if d.is_llm else d.name


def endpoint_needs(cfg: StackConfig, stack: str) -> dict[str, EndpointNeed]:
    """Instances per SageMaker instance type at max capacity while an update runs: blue/green runs a second fleet
    (2x), a rolling update one batch beside the fleet."""
    totals: dict[str, int] = defaultdict(int)
    reasons: dict[str, list[str]] = defaultdict(list)
    for d in cfg.deployments:
        if not isinstance(d, SageMakerDeployment):
            continue
        if d.hosting == "inference_components":
            # Instances follow the copies: enough GPUs for max copies, plus room for one update batch of copies.
            per_instance = d.copies_per_instance()
            copies = d.autoscaling.max
            batch = math.ceil(copies * (d.rollout.batch_percent if isinstance(d.rollout, Rolling) else 100) / 100)
            instances = math.ceil((copies + batch) / per_instance)
            totals[d.compute.instance_type] += instances
            reasons[d.compute.instance_type].append(f"{_served_name(d)}: {copies} copies + a batch of {batch}, "
                                                    f"{per_instance} per instance")
            continue
        fleet = max(d.autoscaling.max, d.compute.instance_count) + sum(v.instance_count for v in d.ab_variants)
        if isinstance(d.rollout, Shadow):
            fleet += d.compute.instance_count
        if isinstance(d.rollout, Rolling):
            # A rolling update replaces the fleet in place: one extra batch at a time, not a second fleet.
            batch = math.ceil(fleet * d.rollout.batch_percent / 100)
            totals[d.compute.instance_type] += fleet + batch
            reasons[d.compute.instance_type].append(f"{_served_name(d)}: {fleet} + a rolling batch of {batch}")
            continue
        totals[d.compute.instance_type] += 2 * fleet
        reasons[d.compute.instance_type].append(f"{_served_name(d)}: 2 x {fleet}")
    return {t: EndpointNeed(t, n, ", ".join(reasons[t])) for t, n in totals.items()}


def sagemaker_endpoint_quotas(clients: Clients) -> dict[str, float]:
    """Applied quota values by instance type, from the 'ml.x.y for endpoint usage' quotas."""
    values: dict[str, float] = {}
    for page in clients.service_quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page["Quotas"]:
            name = quota["QuotaName"]
            if name.startswith("ml.") and name.endswith(" for endpoint usage"):
                values[name.removesuffix(" for endpoint usage")] = quota["Value"]
    return values


def instances_in_use(clients: Clients, exclude: set[str]) -> dict[str, int]:
    """Instances other endpoints in this account and region run now, by type: they count against the same quota."""
    used: dict[str, int] = defaultdict(int)
    for page in clients.sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            if summary["EndpointName"] in exclude:
                continue
            endpoint = clients.sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
            config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            types = {v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]}
            for variant in endpoint.get("ProductionVariants", []):
                if types.get(variant["VariantName"]):
                    used[types[variant["VariantName"]]] += variant.get("CurrentInstanceCount", 0)
    return used


def check_endpoint_quotas(cfg: StackConfig, stack: str, clients: Clients) -> list[Check]:
    needs = endpoint_needs(cfg, stack)
    if not needs:
        return []
    try:
        quotas = sagemaker_endpoint_quotas(clients)
    except ClientError as error:
        reason = f"Service Quotas did not answer for sagemaker: {error.response['Error'].get('Code')}"
        return [Check("quota", f"{n.instance_type} for endpoint usage", "unverified", reason,
                      "grant servicequotas:ListServiceQuotas, or check the console's Service Quotas page")
                for n in needs.values()]
    # This stack's own endpoints (a shared inference-component endpoint carries its group's name) are replaced,
    # not added to, by the update.
    ours = {endpoint_name(stack, d.endpoint_group) if isinstance(d, SageMakerDeployment) else deployment_name(stack, d.name)
            for d in cfg.deployments}
    used = instances_in_use(clients, ours)
    checks = []
    for need in needs.values():
        subject = f"{need.instance_type} for endpoint usage"
        if need.instance_type not in quotas:
            checks.append(Check("quota", subject, "fail", f"{cfg.region} has no such quota: the region does not offer "
                                f"{need.instance_type} for endpoints", "choose an instance type the region offers"))
            continue
        available = quotas[need.instance_type] - used.get(need.instance_type, 0)
        detail = (f"need {need.instances} ({need.why}, max capacity during blue/green), quota "
                  f"{quotas[need.instance_type]:g}, in use elsewhere {used.get(need.instance_type, 0)}")
        ok = available >= need.instances
        checks.append(Check("quota", subject, "pass" if ok else "fail", detail, "" if ok else
                            f"request an increase to {need.instances + used.get(need.instance_type, 0)} "
                            f"(aws service-quotas request-service-quota-increase --service-code sagemaker ...)"))
    return checks


def check_node_group_quotas(cfg: StackConfig, clients: Clients) -> list[Check]:
    """vCPUs of GPU node groups at max size and of Karpenter GPU pools at their CPU limit against the EC2 G/P
    quotas; every type (or, for a pool of families, some type of each family) offered in the network's AZs."""
    if not cfg.cluster:
        return []
    groups = [g for g in cfg.cluster.node_groups if g.gpu]
    pools = cfg.cluster.gpu_pools
    if not groups and not pools:
        return []
    types = sorted({t for g in groups for t in g.instance_types} | {t for p in pools for t in p.instance_types
                                                                    if "." in t})
    families = sorted({t for p in pools for t in p.instance_types if "." not in t})
    vcpus = {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"]
             for t in clients.ec2.describe_instance_types(InstanceTypes=types)["InstanceTypes"]} if types else {}
    offered: dict[str, set[str]] = defaultdict(set)
    # A family is offered where any of its sizes is: list the region's offerings and match here (no wildcards).
    filters = [] if families else [{"Name": "instance-type", "Values": types}]
    for page in clients.ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone", Filters=filters):
        for offering in page["InstanceTypeOfferings"]:
            instance_type = offering["InstanceType"]
            for subject in (instance_type, instance_type.split(".")[0]):
                if subject in types or subject in families:
                    offered[subject].add(offering["Location"])
    checks = []
    for subject in types + families:
        zones = sorted(offered.get(subject, ()))
        ok = len(zones) >= cfg.network.availability_zones
        checks.append(Check("offering", subject, "pass" if ok else "fail",
                            f"offered in {len(zones)} AZ(s) of {cfg.region}: {', '.join(zones) or 'none'}; the "
                            f"network spans {cfg.network.availability_zones}",
                            "" if ok else "add another instance type or family, or pick one offered widely"))
    need: dict[tuple[str, str], int] = defaultdict(int)
    why: dict[tuple[str, str], list[str]] = defaultdict(list)
    serves: dict[tuple[str, str], list[str]] = defaultdict(list)
    served = defaultdict(list)  # node group or pool -> the deployments on it, a language model said as such
    for d in cfg.deployments:
        if isinstance(d, KServeDeployment):
            served[d.compute.node_group].append(_served_name(d))
    for group in groups:
        key = (group.instance_types[0][0], group.capacity_type)
        need[key] += group.max_size * max(vcpus.get(t, 0) for t in group.instance_types)
        why[key].append(f"node group {group.name} at max size")
        serves[key] += served[group.name]
    for pool in pools:
        # Karpenter never holds more vCPUs in a pool than its CPU limit, whichever capacity type it buys.
        for capacity in pool.capacity_types:
            key = (pool.instance_types[0][0], "SPOT" if capacity == "spot" else "ON_DEMAND")
            need[key] += pool.cpu_limit
            why[key].append(f"GPU pool {pool.name} at its cpu_limit")
            serves[key] += served[pool.name]
    for (family, capacity), vcpu_need in sorted(need.items()):
        code, name = EC2_VCPU_QUOTAS[(family, capacity)]
        try:
            quota = clients.service_quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
        except ClientError as error:
            checks.append(Check("quota", name, "unverified", f"Service Quotas did not answer for ec2 {code}: "
                                f"{error.response['Error'].get('Code')}", "check the console's Service Quotas page"))
            continue
        ok = quota >= vcpu_need
        on = serves[(family, capacity)]
        checks.append(Check("quota", name, "pass" if ok else "fail",
                            f"need {vcpu_need} vCPUs ({', '.join(why[(family, capacity)])}), quota {quota:g}"
                            + (f"; for {', '.join(on)}" if on else ""),
                            "" if ok else f"request an increase to {vcpu_need} vCPUs (ec2 {code})"))
    return checks


def ami_parameter(ami_alias: str, kubernetes_version: str) -> str:
    """The SSM parameter Karpenter resolves a pinned alias through for NVIDIA instances (its amifamily package)."""
    family, version = ami_alias.split("@", 1)
    if family == "bottlerocket":
        return f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}-nvidia/x86_64/{version.lstrip('v')}/image_id"
    return (f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/x86_64/nvidia/"
            f"amazon-eks-node-al2023-x86_64-nvidia-{kubernetes_version}-{version}/image_id")


def check_node_class_ami(cfg: StackConfig, clients: Clients) -> list[Check]:
    """A pinned alias that does not exist for this Kubernetes version leaves every GPU pod Pending."""
    if not cfg.cluster or not cfg.cluster.node_class or not cfg.cluster.gpu_pools:
        return []
    alias, kubernetes = cfg.cluster.node_class.ami_alias, cfg.cluster.kubernetes_version
    parameter = ami_parameter(alias, kubernetes)
    try:
        image = clients.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as error:
        code = error.response["Error"].get("Code")
        if code == "ParameterNotFound":
            return [Check("ami", alias, "fail", f"no NVIDIA image for Kubernetes {kubernetes}: {parameter} does not "
                          "exist", "pin a release published for this Kubernetes version (mlserve:cluster."
                          "node_class.ami_alias)")]
        return [Check("ami", alias, "unverified", f"SSM did not answer for {parameter}: {code}",
                      "grant ssm:GetParameter on parameter/aws/service/*")]
    return [Check("ami", alias, "pass", f"{parameter} -> {image}")]


EKS_ADDONS = {"vpc_cni": "vpc-cni", "coredns": "coredns", "kube_proxy": "kube-proxy",
              "eks_pod_identity_agent": "eks-pod-identity-agent", "aws_ebs_csi_driver": "aws-ebs-csi-driver",
              "eks_node_monitoring_agent": "eks-node-monitoring-agent"}


def check_addon_versions(cfg: StackConfig, clients: Clients) -> list[Check]:
    """Each pinned EKS add-on version against DescribeAddonVersions for the cluster's Kubernetes version."""
    if not cfg.cluster:
        return []
    checks = []
    kubernetes = cfg.cluster.kubernetes_version
    for field_name, addon in EKS_ADDONS.items():
        pinned = getattr(cfg.cluster.addons, field_name)
        offered: list[str] = []
        default = ""
        for page in clients.eks.get_paginator("describe_addon_versions").paginate(
                addonName=addon, kubernetesVersion=kubernetes):
            for info in page["addons"]:
                for version in info["addonVersions"]:
                    offered.append(version["addonVersion"])
                    if any(c.get("defaultVersion") and c.get("clusterVersion") == kubernetes
                           for c in version.get("compatibilities", [])):
                        default = version["addonVersion"]
        ok = pinned in offered
        newest = max(offered, key=_addon_version_key) if offered else "none"
        checks.append(Check("eks add-on", addon, "pass" if ok else "fail",
                            f"pinned {pinned}; EKS offers {len(offered)} version(s) for Kubernetes {kubernetes} "
                            f"(newest {newest}, default {default or 'none'})",
                            "" if ok else f"set mlserve:cluster.addons.{field_name} to one EKS offers, e.g. {newest}"))
    return checks


def _addon_version_key(version: str) -> tuple[int, ...]:
    """`v1.23.0-eksbuild.2` -> (1, 23, 0, 2), so builds order numerically."""
    return tuple(int(part) for part in version.lstrip("v").replace("-eksbuild.", ".").split(".") if part.isdigit())


def s3_sha256(clients: Clients, bucket: str, key: str) -> tuple[str, str]:
    """The object's sha256 and where it came from: its `sha256` metadata (written by release-model) or its bytes."""
    head = clients.s3.head_object(Bucket=bucket, Key=key)
    if head.get("Metadata", {}).get("sha256"):
        return head["Metadata"]["sha256"], "metadata"
    digest = hashlib.sha256()
    for chunk in clients.s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest(), "content"


MISSING_CODES = ("404", "NoSuchKey", "NoSuchBucket", "NotFound")
DENIED_CODES = ("403", "AccessDenied", "Forbidden")


def unreadable(code: str | None, bucket: str, prefix: str) -> tuple[str, str]:
    """The detail and fix for an object S3 would not show: a 403 may be a missing key (S3 answers 403, not 404, to a
    caller without s3:ListBucket), so it is said as such, not as either."""
    if code in DENIED_CODES:
        return (f"cannot read it: {code} (S3 answers 403 for a missing key too, unless the caller may "
                "s3:ListBucket): missing, or not readable with these credentials",
                f"grant s3:GetObject and s3:ListBucket on s3://{bucket}/{prefix}* (a missing key then says 404), "
                "or run preflight with a role that has them")
    return f"cannot read it: {code}", "grant s3:GetObject on the prefix"


def check_artifacts(cfg: StackConfig, stack: str, clients: Clients) -> list[Check]:
    checks = []
    for d in cfg.deployments:
        artifacts: list[ModelArtifact] = [d.model]
        if isinstance(d, SageMakerDeployment):
            artifacts += [v.model for v in d.ab_variants]
        if isinstance(d.rollout, Shadow | Canary) and d.rollout.candidate:  # a KServe canary serves its candidate too
            artifacts.append(d.rollout.candidate)
        for artifact in artifacts:
            if artifact.format == "safetensors":
                checks += check_weights_folder(artifact, RELEASE_LLM_FIX.format(stack=stack, deployment=d.name),
                                               clients)
                continue
            fix = RELEASE_FIX.format(stack=stack, deployment=d.name)
            try:
                sha, source = s3_sha256(clients, artifact.bucket, artifact.key)
            except ClientError as error:
                code = error.response["Error"].get("Code")
                if code in MISSING_CODES:
                    checks.append(Check("artifact", artifact.uri, "fail", "not found in S3", fix))
                else:
                    detail, grant = unreadable(code, artifact.bucket, artifact.prefix)
                    checks.append(Check("artifact", artifact.uri, "fail", detail, grant))
                continue
            ok = sha == artifact.sha256
            checks.append(Check("artifact", artifact.uri, "pass" if ok else "fail",
                                f"sha256 {sha[:16]}… ({source}) " + ("matches" if ok else
                                f"differs from the config's {artifact.sha256[:16]}…"),
                                "" if ok else f"release the intended files, or set the config to what is there: {fix}"))
    return checks


def human_size(size: int) -> str:
    return f"{size / (1 << 30):.2f} GiB" if size >= 1 << 30 else f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 \
        else f"{size} B"


def _names(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_weights_folder(artifact: ModelArtifact, fix: str, clients: Clients) -> list[Check]:
    """A language model's release: its manifest at `<uri>mlserve-manifest.json` with the config's sha256, and every
    file the manifest lists in S3 at its size (HeadObject; a sha256 in the object's metadata must be the manifest's
    too). Two rows: the manifest, then the files."""
    bucket, prefix = artifact.bucket, artifact.key
    key = prefix + MANIFEST
    subject = f"s3://{bucket}/{key}"
    try:
        body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response["Error"].get("Code")
        if code in MISSING_CODES:
            return [Check("artifact", subject, "fail", "no release manifest: the folder was never released, or "
                          "its release did not finish (the manifest is written last)", fix)]
        detail, grant = unreadable(code, bucket, prefix)
        return [Check("artifact", subject, "fail", detail, grant)]
    sha = hashlib.sha256(body).hexdigest()
    if sha != artifact.sha256:
        return [Check("artifact", subject, "fail", f"sha256 {sha[:16]}… differs from the config's model.sha256 "
                      f"{artifact.sha256[:16]}…: another release is at this uri; its files were not checked",
                      f"set model.uri and model.sha256 to what release-model printed, or release again: {fix}")]
    try:
        files = json.loads(body)["files"]
        listed = {name: int(meta["size"]) for name, meta in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return [Check("artifact", subject, "fail", "not an mlserve release manifest (JSON with files: name -> size, "
                      "sha256)", fix)]
    checks = [Check("artifact", subject, "pass", f"sha256 {sha[:16]}… matches; lists {len(listed)} file(s), "
                    f"{human_size(sum(listed.values()))}")]
    missing, resized, changed, denied, other = [], [], [], [], []
    for name, size in listed.items():
        try:
            head = clients.s3.head_object(Bucket=bucket, Key=prefix + name)
        except ClientError as error:
            code = str(error.response["Error"].get("Code"))
            if code in MISSING_CODES:
                missing.append(name)
            elif code in DENIED_CODES:
                denied.append(name)
            else:
                other.append(f"{name} ({code})")
            continue
        if head.get("ContentLength") != size:
            resized.append(f"{name} ({head.get('ContentLength')} B in S3, {size} B in the manifest)")
        elif head.get("Metadata", {}).get("sha256") not in (None, files[name].get("sha256")):
            changed.append(name)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_names(missing)}")
    if resized:
        problems.append(f"{len(resized)} at another size: {_names(resized)}")
    if changed:
        problems.append(f"{len(changed)} with another sha256 in their metadata: {_names(changed)}")
    if denied:
        problems.append(f"{len(denied)} answered 403 (missing, or not readable: without s3:ListBucket S3 answers "
                        f"403 for a missing key too): {_names(denied)}")
    if other:
        problems.append(f"{len(other)} unreadable: {_names(other)}")
    folder = f"s3://{bucket}/{prefix}"
    if not problems:
        checks.append(Check("weights", folder, "pass", f"all {len(listed)} file(s) of the manifest in S3 at their "
                            f"sizes ({human_size(sum(listed.values()))})"))
        return checks
    grant = unreadable("403", bucket, prefix)[1] if denied and not (missing or resized or changed) else fix
    checks.append(Check("weights", folder, "fail", f"of {len(listed)} file(s): " + "; ".join(problems), grant))
    return checks


def check_images(cfg: StackConfig, stack: str, clients: Clients) -> list[Check]:
    checks, seen = [], set()
    for d in cfg.deployments:
        image: ServingImage = d.image
        repository = image_repository_name(stack, image.repository)
        if (repository, image.reference) in seen:
            continue
        seen.add((repository, image.reference))
        subject = f"{repository}{image.reference}"
        image_id = {"imageDigest": image.digest} if image.digest else {"imageTag": image.tag}
        push_fix = "build and push it (docs/serving-image.md), then pin its digest"
        try:
            clients.ecr.describe_images(repositoryName=repository, imageIds=[image_id])
        except ClientError as error:
            code = error.response["Error"].get("Code")
            detail = {"RepositoryNotFoundException": "the ECR repository does not exist yet",
                      "ImageNotFoundException": "no such image in the repository"}.get(code, f"cannot read it: {code}")
            fix = (push_fix if code == "ImageNotFoundException" else
                   (STORES_CREATE if cfg.phase == "stores" else STORES_FIRST) + ", then push"
                   if code == "RepositoryNotFoundException" else "grant ecr:DescribeImages")
            checks.append(Check("image", subject, "fail", detail, fix))
            continue
        try:
            findings = clients.ecr.describe_image_scan_findings(repositoryName=repository, imageId=image_id)
        except ClientError as error:
            checks.append(Check("image scan", subject, "unverified",
                                f"no scan result ({error.response['Error'].get('Code')})",
                                f"aws ecr start-image-scan --repository-name {repository} --image-id ..."))
            continue
        status = findings.get("imageScanStatus", {}).get("status", "UNKNOWN")
        counts = findings.get("imageScanFindings", {}).get("findingSeverityCounts", {})
        if status not in ("COMPLETE", "ACTIVE"):
            checks.append(Check("image scan", subject, "unverified", f"scan status {status}", "wait for the scan"))
        elif counts.get("CRITICAL", 0):
            checks.append(Check("image scan", subject, "fail", f"{counts['CRITICAL']} critical finding(s): {counts}",
                                "rebuild on a patched base image, push, and pin the new digest"))
        else:
            checks.append(Check("image scan", subject, "pass", f"scan {status}, no critical findings {counts or ''}"))
    return checks


def serving_checks(cfg: StackConfig, stack: str, clients: Clients) -> list[Check]:
    """What the stack's serving part (`mlserve:phase: all`) needs before its `pulumi up`."""
    kserve = [d for d in cfg.deployments if isinstance(d, KServeDeployment)]
    checks = check_endpoint_quotas(cfg, stack, clients) + check_node_group_quotas(cfg, clients) + \
        check_node_class_ami(cfg, clients) + check_addon_versions(cfg, clients)
    if kserve and not cfg.cluster:  # the config rules refuse this already; kept so a bypass cannot pass silently
        checks.append(Check("cluster", stack, "fail", "kserve deployments without a cluster", "add mlserve:cluster"))
    return checks + check_artifacts(cfg, stack, clients) + check_images(cfg, stack, clients)


STORES_CREATE = "this phase-one `pulumi up` creates it"
STORES_FIRST = "a new stack's first up is phase one: `pulumi config set mlserve:phase stores`, `pulumi up`"


@dataclass(frozen=True)
class Stores:
    """What of the stack's stores exists in the account, and whether anything of its serving part does."""
    bucket: str
    bucket_state: str  # "exists", "free", "taken", or "unknown: <code>"
    repositories: tuple[str, ...]
    missing_repositories: tuple[str, ...]
    serving: tuple[str, ...]  # the stack's REST APIs that exist (every deployment has one, declared in phase all)
    unread: tuple[str, ...] = ()  # what AWS would not say, and why

    @property
    def created(self) -> bool:
        return self.bucket_state == "exists" and not self.missing_repositories


def stores_of(cfg: StackConfig, stack: str, clients: Clients) -> Stores:
    bucket = cfg.model_store.bucket
    try:
        clients.s3.head_bucket(Bucket=bucket)
        state = "exists"
    except ClientError as error:
        code = str(error.response["Error"].get("Code"))
        state = {"404": "free", "NoSuchBucket": "free", "NotFound": "free", "403": "taken"}.get(code, f"unknown: {code}")
    repositories = tuple(sorted({image_repository_name(stack, d.image.repository) for d in cfg.deployments}))
    missing, unread = [], []
    for repository in repositories:
        try:
            clients.ecr.describe_repositories(repositoryNames=[repository])
        except ClientError as error:
            code = error.response["Error"].get("Code")
            if code != "RepositoryNotFoundException":
                unread.append(f"ECR repository {repository} ({code}; grant ecr:DescribeRepositories)")
                continue
            missing.append(repository)
    apis = {deployment_name(stack, d.name) for d in cfg.deployments}
    try:
        serving = sorted(api["name"] for page in clients.apigateway.get_paginator("get_rest_apis").paginate()
                         for api in page.get("items", []) if api.get("name") in apis)
    except ClientError as error:
        serving = []
        unread.append(f"the stack's REST APIs ({error.response['Error'].get('Code')}; grant apigateway:GET on "
                      "/restapis)")
    return Stores(bucket, state, repositories, tuple(missing), tuple(serving), tuple(unread))


def _todo(check: Check) -> str:
    return f"{check.area} {check.subject}: {check.detail}"


def phase_checks(cfg: StackConfig, stack: str, stores: Stores, serving: list[Check]) -> list[Check]:
    """Which phase the stack is in, whether its next `pulumi up` can run, and what the next phase still needs."""
    subject = f"mlserve:phase {cfg.phase}"
    what = f"the stack key, bucket {stores.bucket}, repositories {', '.join(stores.repositories)}"
    checks = []
    if stores.bucket_state == "taken":
        checks.append(Check("bucket", stores.bucket, "fail", "the name is taken: another account owns it (bucket names "
                            "are global), or this one may not read it", "choose another mlserve:model_store.bucket "
                            "(and the model URIs in it)"))
    elif stores.bucket_state.startswith("unknown"):
        checks.append(Check("bucket", stores.bucket, "unverified", f"S3 did not say whether it exists "
                            f"({stores.bucket_state})", "grant s3:ListBucket on it"))
    checks += [Check("phase", "what exists", "unverified", f"could not read {what_}", "") for what_ in stores.unread]
    if cfg.phase == "stores":
        if stores.serving:
            checks.append(Check("phase", subject, "fail", f"the stack already serves ({', '.join(stores.serving)}): a "
                                "phase-stores up would delete everything but the stores",
                                f"pulumi config set --stack {stack} mlserve:phase all"))
        elif stores.created:
            checks.append(Check("phase", subject, "pass", f"phase one is applied: {what} exist"))
        else:
            checks.append(Check("phase", subject, "pass", f"phase one: this `pulumi up` creates {what}; then push the "
                                "image and release the model"))
        missing = [c for c in serving if c.status != "pass"]
        switch = (f"pulumi config set --stack {stack} mlserve:phase all, preflight again, then pulumi up "
                  f"--stack {stack}")
        if stores.created and not missing:
            checks.append(Check("next phase", "mlserve:phase all", "pass", "ready: the image is pushed, the model "
                                "released, the quotas suffice", switch))
        else:
            checks.append(Check("next phase", "mlserve:phase all", "todo", "before it: " + (
                "; ".join(_todo(c) for c in missing) if missing else "apply phase one"),
                "the rows marked TODO; then " + switch))
        # What phase all needs is not needed by this up: listed, never failing it.
        return checks + [c if c.status == "pass" else replace(c, status="todo") for c in serving]
    if stores.bucket_state == "free" or (stores.missing_repositories and not stores.serving):
        checks.append(Check("phase", subject, "fail", f"the stores do not exist yet ({what}): this up would declare "
                            "endpoints whose image and model are not there, and fail", STORES_FIRST +
                            ", push the image, release the model, then `pulumi config set mlserve:phase all`"))
    else:
        checks.append(Check("phase", subject, "pass", "the stores exist: this `pulumi up` declares everything"))
    return checks + serving


def preflight(cfg: StackConfig, stack: str, clients: Clients) -> list[Check]:
    """The phase and what its `pulumi up` needs; in phase stores, also what phase all will need (as TODO)."""
    return phase_checks(cfg, stack, stores_of(cfg, stack, clients), serving_checks(cfg, stack, clients))
