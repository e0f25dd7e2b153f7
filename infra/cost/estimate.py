"""From declared resources to monthly cost lines at three capacities: the autoscalers' floor, the counts the stack
file configures, and the autoscalers' ceiling.

It reads what the plan declares (the same resources the policy pack sees), so `python -m infra.cost` and the pack's
budget rule cannot disagree. Every declared resource ends up in exactly one place: a cost line (priced or not), the
usage-based list (billed by traffic or storage the plan cannot know), or the free list. A type the estimator does
not know is reported as such, never counted as zero.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from components.names import (
    DEPLOYMENT_LABEL,
    GROUP_LABEL,
    TRACK_LABEL,
    USAGE_TAG,
    alb_split_annotation,
    deployment_of,
    parse_usage_tag,
    predictor_name,
    split_weights,
)
from infra import aws_facts

from .eks_calendar import EksCalendar, load_calendar
from .model import (
    CENTS,
    DEFAULT_REQUEST_KB,
    DEFAULT_RESPONSE_KB,
    SCENARIOS,
    SHARED,
    Assumptions,
    Counts,
    Declared,
    Estimate,
    Line,
    Replica,
    TokenCost,
)
from .table import Price, PriceTable

# ---- what the plan declares -----------------------------------------------------------------------------------

# Types with no charge of their own: configuration, IAM, networking plumbing, Kubernetes objects (they run on the
# nodes priced below), and children whose cost is counted on their parent (an inference component on its endpoint).
FREE_PREFIXES = ("aws:iam/", "kubernetes:", "pulumi:providers:", "mlserve:", "random:")
FREE_TYPES = frozenset({
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:ec2/launchTemplate:LaunchTemplate", "aws:kms/alias:Alias",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning", "aws:sns/topicPolicy:TopicPolicy",
    "aws:sns/topicSubscription:TopicSubscription", "aws:sqs/queuePolicy:QueuePolicy",
    "aws:apigateway/account:Account", "aws:apigateway/apiKey:ApiKey", "aws:apigateway/deployment:Deployment",
    "aws:apigateway/integration:Integration", "aws:apigateway/integrationResponse:IntegrationResponse",
    "aws:apigateway/method:Method", "aws:apigateway/methodResponse:MethodResponse",
    "aws:apigateway/methodSettings:MethodSettings", "aws:apigateway/model:Model",
    "aws:apigateway/requestValidator:RequestValidator", "aws:apigateway/resource:Resource",
    "aws:apigateway/response:Response", "aws:apigateway/stage:Stage", "aws:apigateway/usagePlan:UsagePlan",
    "aws:apigateway/usagePlanKey:UsagePlanKey", "aws:apigateway/vpcLink:VpcLink",
    "aws:appautoscaling/policy:Policy", "aws:appautoscaling/target:Target",
    "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget",
    "aws:lambda/permission:Permission", "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "aws:eks/addon:Addon",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation", "aws:lb/listener:Listener",
    "aws:lb/targetGroup:TargetGroup", "aws:lb/targetGroupAttachment:TargetGroupAttachment",
    "aws:wafv2/webAclAssociation:WebAclAssociation",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "aws:ec2/flowLog:FlowLog",
    "aws:sagemaker/model:Model", "aws:sagemaker/endpoint:Endpoint", "aws-native:sagemaker:InferenceComponent",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
})
# Billed by use (requests, GB stored, invocations, events) that a plan cannot know: listed, not estimated.
USAGE_BASED_TYPES = frozenset({
    "aws:lambda/function:Function", "aws:s3/bucket:Bucket", "aws:sqs/queue:Queue", "aws:sns/topic:Topic",
    "aws:cloudtrail/trail:Trail", "aws:ecr/repository:Repository",
    "aws:cloudwatch/eventConnection:EventConnection", "aws:cloudwatch/eventApiDestination:EventApiDestination",
    "aws:budgets/budget:Budget", "aws:costexplorer/costAllocationTag:CostAllocationTag",
    "aws:codebuild/project:Project",
})

SAGEMAKER_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SERVERLESS_VARIANT = "SageMaker serverless variant"
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
INFERENCE_COMPONENT = "aws-native:sagemaker:InferenceComponent"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any, default: float | Decimal = 0) -> Decimal:
    return Decimal(str(value if value is not None else default))


def _stack_of(urn: str) -> str:
    return urn.split("::")[0].removeprefix("urn:pulumi:")


class _Context:
    def __init__(self, resources: Sequence[Declared], table: PriceTable, assumptions: Assumptions,
                 calendar: EksCalendar):
        self.resources = resources
        self.table = table
        self.assumptions = assumptions
        self.calendar = calendar
        self.by_urn = {r.urn: r for r in resources}
        self.lines: list[Line] = []
        self.usage: Counter[str] = Counter()
        self.replicas: dict[str, Replica] = {}
        """What one serving replica of each deployment runs on (its stable track's, where it has two)."""

    @cached_property
    def traffic(self) -> dict[str, _Traffic]:
        """Each deployment's expected traffic, by its API's usage tag: read once for every line that needs it."""
        return _traffic(self)

    def traffic_of(self, group: str) -> _Traffic:
        """A deployment's traffic, or the assumptions' where its API states none."""
        return self.traffic.get(group, _default_traffic(self.assumptions))

    def replica(self, group: str, replica: Replica, *, preferred: bool = True) -> None:
        if preferred or group not in self.replicas:
            self.replicas[group] = replica

    def of_type(self, type_token: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_token]

    def group_of(self, resource: Declared) -> str:
        """The deployment a resource belongs to: its Kubernetes label, or the serving component above it."""
        label = _map(_map(resource.props.get("metadata")).get("labels")).get(DEPLOYMENT_LABEL)
        if label:
            return str(label)
        parent = resource.parent
        while parent:
            owner = self.by_urn.get(parent)
            if owner is None:
                break
            if owner.type.startswith("mlserve:serving:") and owner.type.endswith("Deployment"):
                return deployment_of(_stack_of(owner.urn), owner.name) or owner.name
            parent = owner.parent
        return SHARED

    def add(self, resource: Declared | None, item: str, key: str, quantity: Counts, *, spot: bool = False,
            note: str = "", group: str | None = None) -> None:
        grouped = group if group is not None else (self.group_of(resource) if resource else SHARED)
        self.lines.append(Line(grouped, item, key, quantity, self.table.price(key), spot, note))

    def dearest(self, prefix: str, types: Iterable[str]) -> tuple[str, Price | None]:
        """The instance type a pool is priced at: the dearest it allows, or the first unpriced one (then unpriced)."""
        candidates = [str(t) for t in types]
        priced = [(t, self.table.price(f"{prefix}{t}")) for t in candidates]
        missing = [t for t, p in priced if p is None]
        if missing or not priced:
            return (missing[0] if missing else "?"), None
        return max(((t, p) for t, p in priced if p is not None), key=lambda tp: tp[1].usd)


def _endpoint_of(ctx: _Context, config: Declared) -> str:
    """The endpoint an endpoint configuration serves (its own name where no endpoint names it)."""
    for endpoint in ctx.of_type(ENDPOINT):
        if endpoint.props.get("endpointConfigName") == config.props.get("name"):
            return str(endpoint.props.get("name"))
    return str(config.props.get("name"))


def _config_groups(ctx: _Context, config: Declared) -> list[str]:
    """The deployments an endpoint configuration serves: its own, or, for a host endpoint of inference components
    (which sits outside the deployments), the deployments of the components on it."""
    group = ctx.group_of(config)
    if group != SHARED:
        return [group]
    endpoint = _endpoint_of(ctx, config)
    hosted = sorted({ctx.group_of(c) for c in ctx.of_type(INFERENCE_COMPONENT)
                     if str(c.props.get("endpointName")) == endpoint})
    return hosted or [group]


def _sagemaker(ctx: _Context) -> None:
    """Instances behind every endpoint variant: the scalable target's bounds, or managed instance scaling's."""
    bounds = {}
    for target in ctx.of_type(SCALABLE_TARGET):
        if target.props.get("scalableDimension") == "sagemaker:variant:DesiredInstanceCount":
            bounds[str(target.props.get("resourceId"))] = (_num(target.props.get("minCapacity")),
                                                           _num(target.props.get("maxCapacity")))
    copies: dict[str, list[tuple[str, int]]] = defaultdict(list)  # endpoint: (group, GPUs a copy reserves)
    for component in ctx.of_type(INFERENCE_COMPONENT):
        needs = _map(_map(component.props.get("specification")).get("computeResourceRequirements"))
        copies[str(component.props.get("endpointName"))].append(
            (ctx.group_of(component), int(_num(needs.get("numberOfAcceleratorDevicesRequired"), 0))))
    for config in ctx.of_type(SAGEMAKER_CONFIG):
        endpoint = _endpoint_of(ctx, config)
        group = ", ".join(_config_groups(ctx, config))
        for shadow, key in ((False, "productionVariants"), (True, "shadowProductionVariants")):
            for variant in _list(config.props.get(key)):
                variant = _map(variant)
                instance_type = variant.get("instanceType")
                name = variant.get("variantName")
                if not instance_type:  # serverless: billed per request duration, listed with the usage-based
                    ctx.usage[SERVERLESS_VARIANT] += 1
                    continue
                initial = _num(variant.get("initialInstanceCount"), 1)
                managed = _map(variant.get("managedInstanceScaling"))
                if managed.get("status") == "ENABLED":
                    counts = Counts(_num(managed.get("minInstanceCount")), initial,
                                    _num(managed.get("maxInstanceCount"), initial))
                    note = "inference components: managed instance scaling"
                elif not shadow and f"endpoint/{endpoint}/variant/{name}" in bounds:
                    low, high = bounds[f"endpoint/{endpoint}/variant/{name}"]
                    counts, note = Counts(low, initial, high), "autoscaling"
                else:
                    counts, note = Counts.same(initial), "shadow: fixed count" if shadow else "fixed count"
                ctx.add(config, f"SageMaker {instance_type} ({endpoint}/{name})",
                        f"sagemaker-hosting:{instance_type}", counts, note=note, group=group)
                if not shadow:
                    _sagemaker_replicas(ctx, group, str(instance_type), copies.get(endpoint, []))


def _sagemaker_replicas(ctx: _Context, group: str, instance_type: str, copies: list[tuple[str, int]]) -> None:
    """A replica on SageMaker: the variant's instance, or one copy of an inference component on it (an instance
    holds as many copies as its GPUs allow)."""
    key = f"sagemaker-hosting:{instance_type}"
    if not copies:
        ctx.replica(group, Replica(instance_type, key, ctx.table.price(key)), preferred=False)
        return
    for component_group, accelerators in copies:
        per_instance = max(1, aws_facts.gpus(instance_type) // accelerators) if accelerators else 1
        described = instance_type + (f" ({per_instance} copies an instance)" if per_instance > 1 else "")
        ctx.replica(component_group, Replica(described, key, ctx.table.price(key), per_instance), preferred=False)


def _node_groups(ctx: _Context) -> None:
    for group in ctx.of_type(NODE_GROUP):
        scaling = _map(group.props.get("scalingConfig"))
        instance_type, _ = ctx.dearest("ec2:", _list(group.props.get("instanceTypes")))
        spot = group.props.get("capacityType") == "SPOT"
        nodes = Counts(_num(scaling.get("minSize")), _num(scaling.get("desiredSize")), _num(scaling.get("maxSize")))
        ctx.add(group, f"node group {group.props.get('nodeGroupName')}: {instance_type}"
                       f"{' (spot)' if spot else ''}", f"ec2:{instance_type}", nodes, spot=spot, group=SHARED)
        _volumes(ctx, group, f"node group {group.props.get('nodeGroupName')}", _launch_template_gb(ctx, group), nodes)


def _launch_template_gb(ctx: _Context, group: Declared) -> Decimal | None:
    """GB of EBS per node of a managed node group: its launch template's volumes, or its own disk size."""
    if group.props.get("diskSize"):
        return _num(group.props.get("diskSize"))
    used = set(group.inputs_from.get("launchTemplate", ()))
    templates = [t for t in ctx.of_type(LAUNCH_TEMPLATE) if t.urn in used] if used else ctx.of_type(LAUNCH_TEMPLATE)
    if len(templates) != 1:  # without the dependency, only a single template in the plan is unambiguous
        return None
    sizes = [_map(_map(m).get("ebs")).get("volumeSize") for m in _list(templates[0].props.get("blockDeviceMappings"))]
    return sum((_num(x) for x in sizes if x is not None), Decimal(0))


def _requirement(pool: Declared, key: str) -> list[str]:
    template = _map(_map(_map(pool.props.get("spec")).get("template")).get("spec"))
    for req in _list(template.get("requirements")):
        req = _map(req)
        if req.get("key") == key and req.get("operator") == "In":
            return [str(v) for v in _list(req.get("values"))]
    return []


def _nodes(replicas: Decimal, gpus: int, per_node: int) -> Decimal:
    """Nodes for the replicas when each node holds `per_node` GPUs and each replica `gpus` of them (whole replicas
    only: a 4-GPU node holds one 3-GPU replica)."""
    return Decimal(math.ceil(replicas / (per_node // gpus)))


@dataclass(frozen=True)
class _PoolChoice:
    """The types a replica of `gpus` GPUs can run on in a pool, priced: min takes the cheapest node that fits it,
    max the dearest per GPU (the most a GPU of that pool can cost)."""
    cheapest: str
    cheapest_price: Price | None
    dearest: str
    dearest_price: Price | None


def _pool_choice(ctx: _Context, types: Sequence[str], gpus: int) -> _PoolChoice | None:
    fits = [t for t in types if aws_facts.gpus(t) >= gpus]
    if not fits:
        return None
    priced = {t: ctx.table.price(f"ec2:{t}") for t in fits}
    missing = [t for t, p in priced.items() if p is None]
    if missing:  # a type the table lacks could be the cheapest or the dearest: both bounds stay unpriced
        return _PoolChoice(missing[0], None, missing[0], None)
    known = {t: p for t, p in priced.items() if p is not None}
    cheapest = min(known, key=lambda t: (known[t].usd, t))
    dearest = max(known, key=lambda t: (known[t].usd / aws_facts.gpus(t), t))
    return _PoolChoice(cheapest, known[cheapest], dearest, known[dearest])


def _karpenter(ctx: _Context) -> None:
    """GPU nodes Karpenter launches for KServe replicas. A pool that allows several types is a range: at min and
    configured the replicas run on the cheapest type that fits one, at max on the dearest per GPU, and the pool's
    GPU limit caps the GPUs it may hold (shared by the deployments on it, in plan order). A pool mixing GPU counts
    is handled per type: a node holds as many whole replicas as its GPUs allow."""
    pools = {}
    for pool in ctx.of_type(NODE_POOL):
        labels = _map(_map(_map(_map(pool.props.get("spec")).get("template")).get("metadata")).get("labels"))
        pools[str(labels.get(GROUP_LABEL) or _map(pool.props.get("metadata")).get("name"))] = pool
    scalers = {}
    for scaled in ctx.of_type(SCALED_OBJECT):
        meta, spec = _map(scaled.props.get("metadata")), _map(scaled.props.get("spec"))
        target = _map(spec.get("scaleTargetRef")).get("name")
        scalers[(meta.get("namespace"), target)] = (_num(spec.get("minReplicaCount"), 0),
                                                    _num(spec.get("maxReplicaCount"), 100))
    managed = {str(_map(g.props.get("labels")).get(GROUP_LABEL) or g.props.get("nodeGroupName")): g
                for g in ctx.of_type(NODE_GROUP)}
    room: dict[str, Decimal | None] = {}
    for service in ctx.of_type(INFERENCE_SERVICE):
        meta = _map(service.props.get("metadata"))
        predictor = _map(_map(service.props.get("spec")).get("predictor"))
        resources = _map(_map(predictor.get("model")).get("resources"))
        gpus = int(_num(_map(resources.get("limits")).get("nvidia.com/gpu")
                        or _map(resources.get("requests")).get("nvidia.com/gpu")))
        pool_name = str(_map(predictor.get("nodeSelector")).get(GROUP_LABEL, ""))
        track = _map(meta.get("labels")).get(TRACK_LABEL, meta.get("name"))
        if gpus and pool_name in managed and pool_name not in pools:  # its nodes are priced with the node group
            node_type, _ = ctx.dearest("ec2:", _list(managed[pool_name].props.get("instanceTypes")))
            ctx.replica(ctx.group_of(service), Replica(node_type, f"ec2:{node_type}", ctx.table.price(
                f"ec2:{node_type}"), max(1, aws_facts.gpus(node_type) // gpus),
                managed[pool_name].props.get("capacityType") == "SPOT"), preferred=track == "stable")
        if gpus == 0 or pool_name not in pools:
            continue  # on the system nodes, or on a managed node group priced above
        pool = pools[pool_name]
        name = str(meta.get("name"))
        if (meta.get("namespace"), predictor_name(name)) in scalers:
            low, high = scalers[(meta.get("namespace"), predictor_name(name))]
        else:
            low = _num(predictor.get("minReplicas"), 1)
            high = max(low, _num(predictor.get("maxReplicas"), 0))
        capacity = _requirement(pool, "karpenter.sh/capacity-type")
        spot = bool(capacity) and "on-demand" not in capacity
        label = f"{name} ({track}), pool {pool_name}{' (spot)' if spot else ''}"
        allowed = _requirement(pool, "node.kubernetes.io/instance-type")
        absent = [t for t in allowed if f"ec2:{t}" in ctx.table.not_offered]  # Karpenter launches the rest only
        choice = _pool_choice(ctx, [t for t in allowed if t not in absent], gpus)
        if choice is None:
            ctx.add(service, f"GPU nodes for {label}: no type of the pool fits {gpus} GPUs"
                             + (f" in {ctx.table.region}" if absent else ""), "ec2:?", Counts.same(high), spot=spot,
                    note="the pool cannot place these replicas"
                         + (f" ({', '.join(absent)} not offered in {ctx.table.region})" if absent else ""))
            continue
        # One replica runs where min puts it: on the cheapest type that fits, sharing a node with as many as fit.
        ctx.replica(ctx.group_of(service), Replica(choice.cheapest, f"ec2:{choice.cheapest}", choice.cheapest_price,
                                                   aws_facts.gpus(choice.cheapest) // gpus, spot),
                    preferred=track == "stable")
        if pool_name not in room:
            limit = _map(_map(pool.props.get("spec")).get("limits")).get("nvidia.com/gpu")
            room[pool_name] = None if limit is None else _num(limit)
        small, large = aws_facts.gpus(choice.cheapest), aws_facts.gpus(choice.dearest)
        most = _nodes(high, gpus, large)
        note = "Karpenter launches these for the replicas; min and configured on the cheapest type that fits, max " \
               "on the dearest per GPU" + (f" ({', '.join(absent)} not offered in {ctx.table.region}, left out)"
                                          if absent else "")
        left = room[pool_name]
        if left is not None:
            capped = min(most, Decimal(int(left) // large))
            room[pool_name] = left - capped * large
            if capped < most:
                note += f"; max capped by the pool's GPU limit ({_map(_map(pool.props.get('spec')).get('limits')).get('nvidia.com/gpu')})"
            most = capped
        nodes_low = _nodes(low, gpus, small)
        types = choice.cheapest if choice.cheapest == choice.dearest else f"{choice.cheapest} .. {choice.dearest}"
        ctx.lines.append(Line(ctx.group_of(service), f"GPU nodes {types}: {label}", f"ec2:{choice.cheapest}",
                              Counts(nodes_low, nodes_low, most), choice.cheapest_price, spot, note,
                              max_key=f"ec2:{choice.dearest}", max_price=choice.dearest_price))
        _volumes(ctx, service, f"root volumes of {label}", _node_class_volume_gb(ctx, pool),
                 Counts(nodes_low, nodes_low, most))


def _node_class_volume_gb(ctx: _Context, pool: Declared) -> Decimal | None:
    """The root volume the pool's EC2NodeClass gives each node, in GB (Karpenter's `volumeSize`, e.g. `200Gi`)."""
    ref = _map(_map(_map(_map(pool.props.get("spec")).get("template")).get("spec")).get("nodeClassRef"))
    for node_class in ctx.of_type(NODE_CLASS):
        if _map(node_class.props.get("metadata")).get("name") == ref.get("name"):
            sizes = [_gib(_map(m.get("ebs")).get("volumeSize"))
                     for m in map(_map, _list(_map(node_class.props.get("spec")).get("blockDeviceMappings")))]
            return sum((x for x in sizes if x is not None), Decimal(0))
    return None


GIB = Decimal(2**30)
QUANTITY_BYTES = {"Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": GIB, "Ti": Decimal(2**40),
                  "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12)}
"""Kubernetes quantity suffixes in bytes: binary (Ki, Mi, Gi, Ti) and decimal (k, M, G, T); AWS bills storage per
GB-month of 2^30 bytes."""


def _gib(quantity: Any) -> Decimal | None:
    """A size in GiB: a Kubernetes quantity (`200Gi`, `1Ti`, `200G` = 186.26 GiB) or a bare number of GiB (an EBS
    volumeSize), or None when unreadable."""
    text = str(quantity or "")
    if text.isdigit():
        return Decimal(text)
    for suffix in sorted(QUANTITY_BYTES, key=len, reverse=True):  # Gi before G
        number = text[: -len(suffix)]
        if text.endswith(suffix) and number.replace(".", "", 1).isdigit() and not number.endswith("."):
            return Decimal(number) * QUANTITY_BYTES[suffix] / GIB  # 2.5Gi is a quantity too
    return None


def _volumes(ctx: _Context, owner: Declared, item: str, gb_per_node: Decimal | None, nodes: Counts) -> None:
    """The gp3 EBS volumes of the nodes (billed per GB-month whatever the instance does)."""
    if gb_per_node is None:
        ctx.add(owner, f"EBS gp3: {item} (size unknown)", "ebs:gp3", nodes, note="volume size not in the plan")
        return
    ctx.add(owner, f"EBS gp3: {item} ({gb_per_node} GB each)", "ebs:gp3",
            Counts(*(nodes.get(s) * gb_per_node for s in SCENARIOS)), note="GB-months of the nodes' volumes")


XRAY_RESERVOIR_PER_SECOND = Decimal(1)
XRAY_FIXED_RATE = Decimal("0.05")
"""X-Ray's default sampling rule (the X-Ray guide, "Configuring sampling rules"): the first request each second,
then 5% of the rest; the reservoir is shared by everything the rule samples (API Gateway's guide)."""


def _xray(ctx: _Context) -> None:
    """Traces recorded by the API stages with active tracing, under the account's default sampling rule (the plan
    declares no other): one reservoir across the stages, then the fixed rate; each stage's share by its traffic."""
    traced = [(stage, ctx.traffic_of(ctx.group_of(stage)).requests_per_second)
              for stage in ctx.of_type("aws:apigateway/stage:Stage") if stage.props.get("xrayTracingEnabled")]
    total = sum((rps for _, rps in traced), Decimal(0))
    if not total:
        return
    per_second = min(total, XRAY_RESERVOIR_PER_SECOND) + XRAY_FIXED_RATE * max(total - XRAY_RESERVOIR_PER_SECOND, 0)
    hours = ctx.assumptions.hours_per_month
    for stage, rps in traced:
        millions = per_second * rps / total * 3600 * hours / Decimal(1_000_000)
        ctx.add(stage, f"X-Ray traces of stage {stage.props.get('stageName')} (millions; its {rps.normalize():f} "
                       f"req/s's share of what the stages' {total.normalize():f} req/s record)", "xray:traces",
                Counts.same(millions),
                note="the account's Default sampling rule as AWS sets it (1 a second, shared with whatever else "
                     "uses it, then 5% of the rest); the free tier not deducted")


@dataclass(frozen=True)
class _Traffic:
    """One deployment's expected traffic (its API's usage tag, else the assumptions' requests per second)."""
    requests_per_second: Decimal
    request_kb: Decimal
    response_kb: Decimal
    stated: bool

    def million_requests(self, hours: Decimal) -> Decimal:
        return self.requests_per_second * 3600 * hours / Decimal(1_000_000)

    def gb_per_hour(self, kb: Decimal) -> Decimal:
        return self.requests_per_second * 3600 * kb / Decimal(1024 * 1024)

    def describe(self) -> str:
        return (f"{self.requests_per_second.normalize():f}/s, {self.request_kb.normalize():f} KB in, "
                f"{self.response_kb.normalize():f} KB out"
                + ("" if self.stated else " (assumed)"))


def _default_traffic(a: Assumptions) -> _Traffic:
    """A deployment's traffic where its API states none: the assumptions' requests per second."""
    return _Traffic(a.requests_per_second, DEFAULT_REQUEST_KB, DEFAULT_RESPONSE_KB, False)


def _traffic(ctx: _Context) -> dict[str, _Traffic]:
    by_group = {}
    for api in ctx.of_type("aws:apigateway/restApi:RestApi"):
        stated = parse_usage_tag(_map(api.props.get("tags")).get(USAGE_TAG, ""))
        by_group[ctx.group_of(api)] = _Traffic(
            _num(stated.get("requests_per_second", ctx.assumptions.requests_per_second)),
            _num(stated.get("request_kb", DEFAULT_REQUEST_KB)), _num(stated.get("response_kb", DEFAULT_RESPONSE_KB)),
            bool(stated))
    return by_group


TOKENS_KEY = "tokens_per_second_at_slo"


def _tokens(ctx: _Context) -> list[TokenCost]:
    """Per language model (its API's usage tag names its tokens/s, or says `unmeasured`): a million output tokens'
    cost on one replica."""
    found = []
    for api in ctx.of_type("aws:apigateway/restApi:RestApi"):
        tag = str(_map(api.props.get("tags")).get(USAGE_TAG, ""))
        if f"{TOKENS_KEY}=" not in tag:
            continue
        group = ctx.group_of(api)
        found.append(TokenCost(group, _measured(tag), ctx.replicas.get(group)))
    return sorted(found, key=lambda t: t.group)


def _measured(tag: str) -> Decimal | None:
    """The tag's tokens per second as written (exact), or None where it says `unmeasured` or is not a positive
    number."""
    for part in tag.split():
        key, _, value = part.partition("=")
        if key == TOKENS_KEY:
            try:
                number = Decimal(value)
            except InvalidOperation:
                return None
            return number if number.is_finite() and number > 0 else None
    return None


def _fixed(ctx: _Context) -> None:
    a = ctx.assumptions
    for cluster in ctx.of_type(EKS_CLUSTER):
        _control_plane(ctx, cluster)
    for count_type, item, key in (("aws:ec2/natGateway:NatGateway", "NAT gateways", "nat-gateway"),
                                  ("aws:ec2/eip:Eip", "public IPv4 addresses", "vpc:public-ipv4")):
        found = ctx.of_type(count_type)
        if found:
            ctx.add(None, item, key, Counts.same(len(found)), group=SHARED)
    _kms(ctx)
    endpoints = ctx.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    if ctx.of_type("aws:ec2/natGateway:NatGateway"):
        bypass = sorted({str(e.props.get("serviceName", "")).split(".", 3)[-1] for e in endpoints})
        ctx.add(None, f"NAT gateways: data processed ({a.nat_gb_per_month.normalize():f} GB a month assumed, "
                      f"--nat-gb)", "nat-gateway:data", Counts.same(a.nat_gb_per_month), group=SHARED,
                note="public registries' images for new nodes and pods, the in-VPC deployer's downloads, AWS APIs "
                     "without an endpoint; "
                     + (f"endpoints keep {', '.join(bypass)} off it" if bypass else "the plan has no VPC endpoints"))
    interface = [e for e in endpoints if e.props.get("vpcEndpointType") == "Interface"]
    if interface:
        zones = sum(max(1, len(_list(e.props.get("subnetIds")))) for e in interface)
        ctx.add(None, f"interface VPC endpoints ({len(interface)} x their zones)", "vpc-endpoint:interface",
                Counts.same(zones), group=SHARED, note="gateway endpoints (S3) are free")
    for balancer in ctx.of_type("aws:lb/loadBalancer:LoadBalancer"):
        kind = "application" if balancer.props.get("loadBalancerType", "application") == "application" else "network"
        ctx.add(balancer, f"{kind} load balancer {balancer.props.get('name')}", f"elb:{kind}", Counts.same(1))
        _capacity_units(ctx, balancer, kind, ctx.traffic_of(ctx.group_of(balancer)))
    albs: dict[str, Declared] = {}
    for ingress in ctx.of_type(INGRESS):
        meta, spec = _map(ingress.props.get("metadata")), _map(ingress.props.get("spec"))
        annotations = _map(meta.get("annotations"))
        if spec.get("ingressClassName") == "alb" or annotations.get("kubernetes.io/ingress.class") == "alb":
            shared_name = annotations.get("alb.ingress.kubernetes.io/group.name") or \
                f"{meta.get('namespace')}/{meta.get('name')}"
            albs.setdefault(str(shared_name), ingress)
    for alb_name, ingress in albs.items():
        ctx.add(ingress, f"application load balancer for ingress {alb_name}", "elb:application", Counts.same(1),
                note="created by the AWS Load Balancer Controller")
        _capacity_units(ctx, ingress, "application", ctx.traffic_of(ctx.group_of(ingress)))
    for acl in ctx.of_type("aws:wafv2/webAcl:WebAcl"):
        t = ctx.traffic_of(ctx.group_of(acl))
        ctx.add(acl, "WAF web ACL", "waf:web-acl", Counts.same(1))
        ctx.add(acl, f"WAF rules ({len(_list(acl.props.get('rules')))})", "waf:rule",
                Counts.same(len(_list(acl.props.get("rules")))))
        ctx.add(acl, f"WAF requests (millions at {t.describe()})", "waf:requests",
                Counts.same(t.million_requests(a.hours_per_month)))
    for api in ctx.of_type("aws:apigateway/restApi:RestApi"):
        t = ctx.traffic_of(ctx.group_of(api))
        ctx.add(api, f"API Gateway REST requests (millions at {t.describe()})", "apigateway:rest-requests",
                Counts.same(t.million_requests(a.hours_per_month)))
        ctx.add(api, "data transfer out to clients (GB of responses)", "data-transfer:out",
                Counts.same((t.gb_per_hour(t.response_kb) * a.hours_per_month).quantize(CENTS)),
                note="the first tier's rate; the free allowance not deducted")
    _xray(ctx)
    # CloudWatch bills an alarm per metric it watches (a metric-math alarm: each metric it reads, not the
    # expression), at a higher rate below a 60 s period; a composite alarm per alarm.
    metrics: Counter[tuple[str, str]] = Counter()
    for alarm in ctx.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        for watched, period in _alarm_metrics(alarm.props):
            resolution = "cloudwatch:alarm-high-resolution" if period and period < 60 else "cloudwatch:alarm"
            metrics[(ctx.group_of(alarm), resolution)] += watched
    for (group, key), count in sorted(metrics.items()):
        item = "CloudWatch high-resolution alarm metrics" if key.endswith("resolution") else "CloudWatch alarm metrics"
        ctx.add(None, item, key, Counts.same(count), group=group)
    for type_token, item, key in (("aws:cloudwatch/compositeAlarm:CompositeAlarm", "CloudWatch composite alarms",
                                   "cloudwatch:composite-alarm"),
                                  ("aws:cloudwatch/dashboard:Dashboard", "CloudWatch dashboards",
                                   "cloudwatch:dashboard")):
        by_group = Counter(ctx.group_of(r) for r in ctx.of_type(type_token))
        for group, count in sorted(by_group.items()):
            ctx.add(None, item, key, Counts.same(count), group=group)
    logs: dict[str, list[Declared]] = defaultdict(list)
    for log_group in ctx.of_type("aws:cloudwatch/logGroup:LogGroup"):
        logs[ctx.group_of(log_group)].append(log_group)
    for group, found in sorted(logs.items()):
        count = len(found)
        ctx.add(None, f"log ingestion ({count} group{'s' if count > 1 else ''} x {a.log_gb_per_group} GB)",
                "logs:ingest", Counts.same(count * a.log_gb_per_group), group=group)
        # What is kept once retention is reached: a month's ingest per month retained (never-expiring groups are
        # counted at one year: the estimate is steady state, not forever).
        months = sum((min(_num(g.props.get("retentionInDays"), 365), Decimal(365)) / 30 for g in found), Decimal(0))
        ctx.add(None, f"log storage ({count} group{'s' if count > 1 else ''} at their retention)", "logs:storage",
                Counts.same((months * a.log_gb_per_group).quantize(CENTS)), group=group,
                note="GB-months held at steady state")


EKS_CLUSTER = "aws:eks/cluster:Cluster"


def _control_plane(ctx: _Context, cluster: Declared) -> None:
    """An EKS control plane at the rate of its Kubernetes version's support phase on the estimate's date: standard,
    or extended (a rate that replaces the standard one) once standard support has ended, unless the cluster's
    upgrade policy is STANDARD (EKS then upgrades it at the end of standard support instead; EXTENDED is the API's
    default). Where the calendar cannot tell, min and configured take the standard rate and max the extended one."""
    version = cluster.props.get("version")
    support = ctx.calendar.support(str(version) if version else None, ctx.assumptions.as_of)
    policy = str(_map(cluster.props.get("upgradePolicy")).get("supportType") or "EXTENDED")
    item = f"EKS control plane {cluster.props.get('name')} (Kubernetes {version or 'default'}"
    on = f"on {ctx.assumptions.as_of}: {support.why}"

    def standard_to_extended(described: str, note: str) -> None:
        """A range: the standard rate at min and configured, the extended one at max."""
        ctx.lines.append(Line(SHARED, described, "eks:cluster", Counts.same(1), ctx.table.price("eks:cluster"),
                              note=note, max_key="eks:cluster-extended-support",
                              max_price=ctx.table.price("eks:cluster-extended-support")))

    if policy == "STANDARD" and support.phase == "extended":
        # Both can be true of such a cluster: EKS upgraded it when standard support ended (the plan's version is then
        # stale), or it entered extended support before the policy was set, and extended support cannot be disabled
        # once a cluster is in it (EKS user guide, disable-extended-support).
        standard_to_extended(f"{item}, past standard support)", f"{on}; upgradePolicy STANDARD, but the version is "
                             "past standard support: min and configured as if EKS upgraded it then, max at the "
                             "extended rate (a cluster already in extended support cannot leave it)")
    elif policy == "STANDARD":
        standard_end = f" ({support.row.end_of_standard_support})" if support.row else ""
        ctx.add(cluster, f"{item}, standard support)", "eks:cluster", Counts.same(1), group=SHARED,
                note=f"{on}; upgradePolicy STANDARD: EKS upgrades the cluster at the end of standard support"
                     f"{standard_end} instead of billing extended support")
    elif support.phase == "standard":
        ctx.add(cluster, f"{item}, standard support)", "eks:cluster", Counts.same(1), group=SHARED,
                note=f"{on}; upgradePolicy {policy}: the extended rate after standard support")
    elif support.phase == "extended":
        ctx.add(cluster, f"{item}, extended support)", "eks:cluster-extended-support", Counts.same(1), group=SHARED,
                note=f"{on}; upgradePolicy {policy}: billed at the extended rate (instead of the standard one)")
    else:
        standard_to_extended(f"{item}, support phase unknown)", f"{on}; min and configured at the standard rate, max "
                             f"at the extended one (upgradePolicy {policy}); `python -m infra.cost refresh` reads "
                             "EKS's calendar")


KMS_KEY = "aws:kms/key:Key"
BILLED_ROTATIONS = 2
"""Rotations of a key's material that add to its monthly charge; later ones are free (the price table's
`kms:key-rotation` names the source of this cap as its `rule_source`)."""
DEFAULT_ROTATION_DAYS = 365
"""KMS's rotation period when a key enables rotation without `rotationPeriodInDays` (EnableKeyRotation's default)."""


def _kms(ctx: _Context) -> None:
    """Customer managed keys, $1 a month each, and what automatic rotation adds: each of a key's first two rotations
    keeps another key material at the same monthly rate, later ones are free. A rotating key is $1 a month until its
    first rotation, $2 until its second, $3 from then on: min prices a new key, configured and max the steady state
    it reaches after two rotation periods."""
    keys = ctx.of_type(KMS_KEY)
    if not keys:
        return
    ctx.add(None, "KMS keys", "kms:key", Counts.same(len(keys)), group=SHARED)
    rotating = Counter(int(_num(k.props.get("rotationPeriodInDays"), DEFAULT_ROTATION_DAYS))
                       for k in keys if k.props.get("enableKeyRotation"))
    for days, count in sorted(rotating.items()):
        billed = Decimal(BILLED_ROTATIONS * count)
        ctx.add(None, f"KMS key rotations ({count} key{'s' if count > 1 else ''} rotating every {days} days)",
                "kms:key-rotation", Counts(Decimal(0), billed, billed), group=SHARED,
                note=f"each of a key's first {BILLED_ROTATIONS} rotations adds a month's key charge, later ones are "
                     f"free: none before day {days}, one until day {2 * days}, two from then on (a rotation on demand "
                     f"counts as one, sooner); min is a new key, configured and max the steady state")


SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
MODEL_CACHE = "kubernetes:serving.kserve.io/v1alpha1:LocalModelCache"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SINK_SAMPLE_ENV = "MLSERVE_CAPTURE_SAMPLE_PERCENT"
"""What marks mlserve's capture sink (components/capture_sink.py) among a plan's Deployments, with its bucket and
prefix (MLSERVE_CAPTURE_BUCKET, MLSERVE_CAPTURE_PREFIX): KServe's logger sends it every request and response."""


def _s3_parts(uri: Any) -> tuple[str, str] | None:
    text = str(uri or "")
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text[len("s3://"):].partition("/")
    return bucket, key


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
CHART_VOLUME_KEYS = ("persistentVolume", "persistence")
"""Where charts keep a claim's settings in their values (prometheus' server and its alertmanager, grafana; see
schemas/charts/volumes.yaml): `enabled`, `size`, `storageClass` (grafana: `storageClassName`), `existingClaim`,
beside the component's `enabled`, `replicaCount` and `statefulSet`."""


def _claim_gib(quantity: Any) -> Decimal | None:
    """A claim's size as the EBS CSI driver provisions it: whole GiB, rounded up, at least 1 (a bare number in a
    Kubernetes quantity is bytes)."""
    text = str(quantity or "")
    size = Decimal(text) / GIB if text.isdigit() else _gib(text)
    return None if size is None else max(Decimal(1), Decimal(math.ceil(size)))


def _chart_volumes(ctx: _Context) -> None:
    """The EBS volumes charts claim, billed per GB-month whatever the pods do: each claim a release's values turn on
    (tests hold mlserve's releases to naming every claim their charts make, with size and class), at its
    StorageClass's EBS type (the CSI driver's `type`, gp3 when unset). A StatefulSet claims one volume per replica
    (`persistence`, or a component with `statefulSet.enabled`); a Deployment's claim is one whatever its replicas.
    A claim of unknown size or class is listed unpriced, never zero; one on an `existingClaim` is not the chart's."""
    types = {str(_map(c.props.get("metadata")).get("name")): str(_map(c.props.get("parameters")).get("type") or "gp3")
             for c in ctx.of_type(STORAGE_CLASS) if c.props.get("provisioner") == "ebs.csi.aws.com"}

    def claims(values: Any, path: str) -> Iterable[tuple[str, Mapping[str, Any], Decimal]]:
        component = _map(values)
        if component.get("enabled", True) is False:  # a subchart or component turned off claims nothing
            return
        stateful = _map(component.get("statefulSet")).get("enabled") is True
        for key, value in component.items():
            if key in CHART_VOLUME_KEYS and isinstance(value, Mapping):
                per_replica = stateful or key == "persistence"
                if value.get("enabled", True) is not False and not value.get("existingClaim"):
                    yield f"{path}{key}", value, _num(component.get("replicaCount"), 1) if per_replica else Decimal(1)
            elif isinstance(value, Mapping):
                yield from claims(value, f"{path}{key}.")

    for release in ctx.of_type(HELM_RELEASE):
        for where, claim, replicas in claims(release.props.get("values"), ""):
            size = _claim_gib(claim.get("size"))
            storage_class = str(claim.get("storageClass") or claim.get("storageClassName") or "")
            item = f"EBS: {release.props.get('name')} chart's {where}"
            if storage_class not in types or size is None:  # left unpriced (no table has the key), never zero
                why = ("the values give no size (the chart's default applies)" if claim.get("size") is None else
                       f"size {claim.get('size')!r} is not a Kubernetes quantity" if size is None else
                       f"class {storage_class or '(none)'} is no EBS StorageClass of the plan's: its type is unknown")
                ctx.add(release, f"{item} ({replicas} claims)", "ebs:unknown-volume", Counts.same(replicas),
                        group=SHARED, note=why)
            else:
                ctx.add(release, f"{item} ({replicas} x {size.normalize():f} GiB, {storage_class})",
                        f"ebs:{types[storage_class]}", Counts.same(replicas * size), group=SHARED,
                        note="GB-months of the claimed volumes")


def _storage(ctx: _Context) -> None:
    """Storage the stack fills: the charts' volumes, the model artifacts the plan serves and the data they capture."""
    _chart_volumes(ctx)
    _model_artifacts(ctx)
    for config in ctx.of_type(SAGEMAKER_CONFIG):
        capture = _map(config.props.get("dataCaptureConfig"))
        where = _s3_parts(capture.get("destinationS3Uri"))
        if not capture.get("enableCapture") or where is None:
            continue
        modes = {str(_map(o).get("captureMode")) for o in _list(capture.get("captureOptions"))} or {"Input", "Output"}
        groups = _config_groups(ctx, config)
        _captures(ctx, config, groups, [ctx.traffic_of(g) for g in groups],
                  _num(capture.get("initialSamplingPercentage"), 100), "Input" in modes, "Output" in modes, where,
                  "SageMaker data capture")
    for sink in ctx.of_type(DEPLOYMENT):
        env = {str(_map(e).get("name")): _map(e).get("value")
               for c in _list(_map(_map(_map(sink.props.get("spec")).get("template")).get("spec")).get("containers"))
               for e in _list(_map(c).get("env"))}
        if SINK_SAMPLE_ENV not in env:
            continue
        group = ctx.group_of(sink)
        mode = next((str(_map(_map(_map(i.props.get("spec")).get("predictor")).get("logger")).get("mode") or "all")
                     for i in ctx.of_type(INFERENCE_SERVICE) if ctx.group_of(i) == group
                     and _map(_map(i.props.get("spec")).get("predictor")).get("logger")), "all")
        logged, how = _logged_share(ctx, group), "KServe's logger through the capture sink"
        whole = ctx.traffic_of(group)
        seen = whole if logged == 1 else replace(whole, requests_per_second=whole.requests_per_second * logged)
        if logged != 1:
            how += f" (the logged tracks take {logged * 100:.0f}% of the requests, by the ingress's weights)"
        _captures(ctx, sink, [group], [seen], _num(env.get(SINK_SAMPLE_ENV), 100),
                  mode in ("all", "request"), mode in ("all", "response"),
                  (str(env.get("MLSERVE_CAPTURE_BUCKET", "")), str(env.get("MLSERVE_CAPTURE_PREFIX", ""))), how)


def _logged_share(ctx: _Context, group: str) -> Decimal:
    """The share of a KServe deployment's requests that reach an InferenceService with a logger: the ALB splits a
    deployment's traffic between its tracks by the weights of its split annotation (by predictor Service), and only
    the tracks with a logger are captured (a canary is not). 1 when no split is declared."""
    logged = {predictor_name(str(_map(i.props.get("metadata")).get("name"))) for i in ctx.of_type(INFERENCE_SERVICE)
              if ctx.group_of(i) == group and _map(_map(i.props.get("spec")).get("predictor")).get("logger")}
    split = next((str(annotations[key]) for ingress in ctx.of_type(INGRESS)
                  for annotations in [_map(_map(ingress.props.get("metadata")).get("annotations"))]
                  for key in [alb_split_annotation(group)] if key in annotations), None)
    weights = split_weights(split) if split else {}
    total = sum(weights.values())
    return Decimal(sum(w for n, w in weights.items() if n in logged)) / total if total else Decimal(1)


def _model_artifacts(ctx: _Context) -> None:
    """One artifact per model URI the plan serves (a SageMaker model's data, an InferenceService's storageUri), in
    GB: the size a KServe model cache declares for it (`modelSize`), else the assumed `model_gb`."""
    served: dict[str, str] = {}  # uri: group
    for model in ctx.of_type(SAGEMAKER_MODEL):
        for container in [_map(model.props.get("primaryContainer")), *map(_map, _list(model.props.get("containers")))]:
            sources = [_map(s).get("s3Uri") for s in _list(_map(container.get("modelDataSource")).get("s3DataSources"))]
            for uri in [container.get("modelDataUrl"), *sources]:
                if _s3_parts(uri):
                    served.setdefault(str(uri), ctx.group_of(model))
    for service in ctx.of_type(INFERENCE_SERVICE):
        predictor = _map(_map(service.props.get("spec")).get("predictor"))
        for uri in (_map(predictor.get("model")).get("storageUri"), predictor.get("storageUri")):
            if _s3_parts(uri):
                served.setdefault(str(uri), ctx.group_of(service))
    declared = {str(spec.get("sourceModelUri")): _gib(spec.get("modelSize"))
                for spec in (_map(c.props.get("spec")) for c in ctx.of_type(MODEL_CACHE))}
    by_group: dict[str, list[Decimal | None]] = defaultdict(list)
    for uri, group in served.items():
        by_group[group].append(declared.get(uri))
    assumed_gb = ctx.assumptions.model_gb
    for group, sizes in sorted(by_group.items()):
        known = [x for x in sizes if x is not None]
        unknown = len(sizes) - len(known)
        parts = ([f"{sum(known, Decimal(0)).normalize():f} GB declared"] if known else []) + \
                ([f"{f'{unknown} x ' if unknown > 1 else ''}{assumed_gb.normalize():f} GB assumed"] if unknown else [])
        notes = (["size from the model cache's modelSize"] if known else []) + \
                ([f"size not in the plan: {assumed_gb.normalize():f} GB an artifact assumed (--model-gb)"]
                 if unknown else [])
        count = f"{len(sizes)} model artifact{'s' if len(sizes) > 1 else ''}"
        ctx.add(None, f"S3 storage: {count} served ({' + '.join(parts)})", "s3:standard",
                Counts.same(sum(known, Decimal(0)) + unknown * assumed_gb), group=group,
                note="; ".join(notes) + "; earlier releases kept in the bucket are not counted")


def _captures(ctx: _Context, owner: Declared, groups: list[str], traffic: list[_Traffic], percent: Decimal,
              inputs: bool, outputs: bool, where: tuple[str, str], how: str) -> None:
    """Captured requests and responses in S3: requests/s x the captured share x their KB, kept as long as the
    bucket's lifecycle keeps them (steady state); with no expiration, one month's growth."""
    share = percent / 100
    none = Decimal(0)
    gb_per_hour = sum((t.gb_per_hour((t.request_kb if inputs else none) + (t.response_kb if outputs else none))
                       for t in traffic), Decimal(0)) * share
    bucket, prefix = where
    held = _held_days(ctx, bucket, prefix)
    what = ("requests and responses" if inputs and outputs else "requests" if inputs else "responses")
    rate = ", ".join(t.describe() for t in traffic)
    if held is None:
        gb = gb_per_hour * ctx.assumptions.hours_per_month
        kept = (f"no lifecycle rule of s3://{bucket} expires {prefix or 'its objects'}: the captures grow by this "
                f"much every month without end; priced as one month's growth, held a month")
    else:
        days, why = held
        gb = gb_per_hour * 24 * days
        kept = f"held {days} days ({why}): the steady state"
    ctx.add(owner, f"S3 storage: captured {what} ({percent.normalize():f}% of {rate})", "s3:standard",
            Counts.same(gb.quantize(CENTS)), group=", ".join(groups),
            note=f"{how}; GB-months of payloads only (the capture files' own metadata not counted); {kept}")


def _held_days(ctx: _Context, bucket: str, prefix: str) -> tuple[int, str] | None:
    """How long the bucket's lifecycle keeps an object written under `prefix`: the shortest expiration of an enabled
    rule that covers the prefix (tag and size filters left aside), plus, in a versioned bucket, the noncurrent days
    the expired version is then kept; None when nothing expires it."""
    expire: list[int] = []
    noncurrent: list[int] = []
    for config in ctx.of_type(LIFECYCLE):
        if config.props.get("bucket") != bucket:
            continue
        for rule in map(_map, _list(config.props.get("rules"))):
            rule_filter = _map(rule.get("filter"))
            conditions = _map(rule_filter.get("and")) or rule_filter
            if rule.get("status") != "Enabled" or any(conditions.get(k) for k in (
                    "tag", "tags", "objectSizeGreaterThan", "objectSizeLessThan")):
                continue
            if not prefix.startswith(str(conditions.get("prefix") or rule.get("prefix") or "")):
                continue
            if _map(rule.get("expiration")).get("days"):
                expire.append(int(_num(_map(rule.get("expiration")).get("days"))))
            if _map(rule.get("noncurrentVersionExpiration")).get("noncurrentDays"):
                noncurrent.append(int(_num(_map(rule.get("noncurrentVersionExpiration")).get("noncurrentDays"))))
    if not expire:
        return None
    versioned = any(v.props.get("bucket") == bucket and _map(v.props.get("versioningConfiguration")).get("status")
                    == "Enabled" for v in ctx.of_type(VERSIONING))
    if not versioned:
        return min(expire), f"the bucket's lifecycle expires them after {min(expire)} days"
    if not noncurrent:
        return None  # an expired object of a versioned bucket stays as a noncurrent version that nothing expires
    return (min(expire) + min(noncurrent), f"expired after {min(expire)} days, then kept {min(noncurrent)} more as "
                                           f"noncurrent versions of the versioned bucket")


def _capacity_units(ctx: _Context, balancer: Declared, kind: str, t: _Traffic) -> None:
    """Load balancer capacity units an hour, from the traffic: the largest dimension bills (ALB: 25 new connections
    a second or 1 GB processed an hour per LCU; NLB: 800 new TCP flows a second or 1 GB an hour per NLCU), each
    request assumed a new connection."""
    per_second = Decimal(25) if kind == "application" else Decimal(800)
    processed = t.gb_per_hour(t.request_kb + t.response_kb)
    units = max(t.requests_per_second / per_second, processed).quantize(Decimal("0.0001"))
    ctx.add(balancer, f"{'LCU' if kind == 'application' else 'NLCU'}s of {kind} load balancer ({t.describe()})",
            f"elb:{kind}-capacity-unit", Counts.same(units), note="capacity units an hour, from the traffic")


def _alarm_metrics(props: Mapping[str, Any]) -> list[tuple[int, Decimal | None]]:
    """(metrics watched, period) of one alarm: one for a single-metric alarm, each `metric` query of a math one."""
    queries = [_map(q) for q in _list(props.get("metricQueries"))]
    if not queries:
        return [(1, _num(props.get("period")) if props.get("period") is not None else None)]
    return [(1, _num(_map(q.get("metric")).get("period")) if _map(q.get("metric")).get("period") is not None
             else None) for q in queries if q.get("metric")]


HANDLED = frozenset({SAGEMAKER_CONFIG, NODE_GROUP, EKS_CLUSTER, "aws:ec2/natGateway:NatGateway",
                     "aws:ec2/eip:Eip", KMS_KEY, "aws:ec2/vpcEndpoint:VpcEndpoint",
                     "aws:lb/loadBalancer:LoadBalancer", "aws:wafv2/webAcl:WebAcl", "aws:apigateway/restApi:RestApi",
                     "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm",
                     "aws:cloudwatch/dashboard:Dashboard", "aws:cloudwatch/logGroup:LogGroup"})


def estimate(resources: Iterable[Declared], table: PriceTable, assumptions: Assumptions | None = None,
             stack: str = "", calendar: EksCalendar | None = None) -> Estimate:
    """The plan's monthly cost lines; `calendar` (EKS versions' support dates) defaults to the checked-in one."""
    declared = list(resources)
    ctx = _Context(declared, table, assumptions or Assumptions(), calendar or load_calendar())
    _sagemaker(ctx)
    _node_groups(ctx)
    _karpenter(ctx)
    _fixed(ctx)
    _storage(ctx)
    usage, unknown = ctx.usage, Counter()
    for resource in declared:
        if resource.type in HANDLED or resource.type in FREE_TYPES or resource.type.startswith(FREE_PREFIXES) \
                or resource.type == "pulumi:pulumi:Stack":
            continue
        (usage if resource.type in USAGE_BASED_TYPES else unknown)[resource.type] += 1
    return Estimate(stack=stack or (_stack_of(declared[0].urn) if declared else ""), region=table.region,
                    table=table, assumptions=ctx.assumptions, lines=ctx.lines, usage_based=usage, unknown=unknown,
                    tokens=_tokens(ctx))


def declared_from_plan(plan: Mapping[str, Any]) -> list[Declared]:
    """The resources of a plan JSON (`python -m infra.plan --json`, the shape the policy pack receives)."""
    return [Declared(r["type"], r["urn"], r.get("name", ""), r.get("inputs") or {}, r.get("parent") or None,
                     r.get("propertyDependencies") or {}) for r in plan.get("resources", [])]


def region_of(resources: Iterable[Declared]) -> str | None:
    """The region the stack's AWS provider deploys to."""
    for resource in resources:
        if resource.type == "pulumi:providers:aws" and resource.props.get("region"):
            return str(resource.props.get("region"))
    return None
