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
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from components.names import DEPLOYMENT_LABEL, GROUP_LABEL, TRACK_LABEL, deployment_of

from .table import Price, PriceTable

SCENARIOS = ("min", "configured", "max")
CENTS = Decimal("0.01")
SHARED = "shared"


@dataclass(frozen=True)
class Declared:
    """One declared resource: its type token, URN, name, inputs and parent URN."""
    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    parent: str | None = None


@dataclass(frozen=True)
class Assumptions:
    hours_per_month: Decimal = Decimal(730)
    requests_per_second: Decimal = Decimal(1)
    """Average requests per second each deployment's API receives (API Gateway and WAF request charges)."""
    log_gb_per_group: Decimal = Decimal(1)
    """GB ingested per month into each log group (flow logs, API access logs, control plane, jobs)."""
    spot_discount: Decimal = Decimal("0.5")
    """Fraction below the on-demand price that spot capacity is assumed to cost."""

    def describe(self) -> dict[str, str]:
        return {"hours_per_month": str(self.hours_per_month), "requests_per_second": str(self.requests_per_second),
                "log_gb_per_group": str(self.log_gb_per_group), "spot_discount": str(self.spot_discount)}


@dataclass(frozen=True)
class Counts:
    min: Decimal
    configured: Decimal
    max: Decimal

    @classmethod
    def same(cls, value: Decimal | int | float) -> Counts:
        v = Decimal(str(value))
        return cls(v, v, v)

    def get(self, scenario: str) -> Decimal:
        return getattr(self, scenario)


@dataclass(frozen=True)
class Line:
    group: str
    """The deployment the cost belongs to, or "shared"."""
    item: str
    key: str
    """Price table key; unpriced when the table lacks it."""
    quantity: Counts
    """Units per scenario: instances or nodes (per hour), keys or ACLs (per month), millions of requests, GB."""
    price: Price | None
    spot: bool = False
    note: str = ""

    def unit_usd(self, assumptions: Assumptions) -> Decimal | None:
        if self.price is None:
            return None
        return self.price.usd * (1 - assumptions.spot_discount) if self.spot else self.price.usd

    def monthly(self, scenario: str, assumptions: Assumptions) -> Decimal | None:
        """Exact USD for the scenario; None when unpriced and the quantity is not zero (zero costs zero)."""
        quantity = self.quantity.get(scenario)
        unit = self.unit_usd(assumptions)
        if unit is None:
            return Decimal(0) if quantity == 0 else None
        assert self.price is not None
        per_month = assumptions.hours_per_month if self.price.per == "hour" else Decimal(1)
        return quantity * unit * per_month


@dataclass
class Estimate:
    stack: str
    region: str
    table: PriceTable
    assumptions: Assumptions
    lines: list[Line]
    usage_based: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)

    def total(self, scenario: str, group: str | None = None) -> Decimal:
        """Priced lines only, rounded to the cent; `unpriced(scenario)` says what is left out."""
        exact = sum((m for line in self.lines if group is None or line.group == group
                     if (m := line.monthly(scenario, self.assumptions)) is not None), Decimal(0))
        return exact.quantize(CENTS, rounding=ROUND_HALF_UP)

    def unpriced(self, scenario: str | None = None) -> list[Line]:
        scenarios = SCENARIOS if scenario is None else (scenario,)
        return [line for line in self.lines
                if any(line.monthly(s, self.assumptions) is None for s in scenarios)]

    def groups(self) -> list[str]:
        named = sorted({line.group for line in self.lines} - {SHARED})
        return named + ([SHARED] if any(line.group == SHARED for line in self.lines) else [])

    def drivers(self, scenario: str = "max") -> list[tuple[str, Decimal]]:
        """Deployments (and shared) by their priced cost in the scenario, dearest first."""
        return sorted(((g, self.total(scenario, g)) for g in self.groups()), key=lambda item: -item[1])


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
})

SAGEMAKER_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SERVERLESS_VARIANT = "SageMaker serverless variant"
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
INFERENCE_COMPONENT = "aws-native:sagemaker:InferenceComponent"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
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
    def __init__(self, resources: Sequence[Declared], table: PriceTable, assumptions: Assumptions):
        self.resources = resources
        self.table = table
        self.assumptions = assumptions
        self.by_urn = {r.urn: r for r in resources}
        self.lines: list[Line] = []
        self.usage: Counter[str] = Counter()

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


def _sagemaker(ctx: _Context) -> None:
    """Instances behind every endpoint variant: the scalable target's bounds, or managed instance scaling's."""
    bounds = {}
    for target in ctx.of_type(SCALABLE_TARGET):
        if target.props.get("scalableDimension") == "sagemaker:variant:DesiredInstanceCount":
            bounds[str(target.props.get("resourceId"))] = (_num(target.props.get("minCapacity")),
                                                           _num(target.props.get("maxCapacity")))
    endpoint_of = {e.props.get("endpointConfigName"): str(e.props.get("name")) for e in ctx.of_type(ENDPOINT)}
    # A host endpoint of inference components sits outside the deployments: it belongs to the components on it.
    hosted: dict[str, set[str]] = defaultdict(set)
    for component in ctx.of_type(INFERENCE_COMPONENT):
        hosted[str(component.props.get("endpointName"))].add(ctx.group_of(component))
    for config in ctx.of_type(SAGEMAKER_CONFIG):
        endpoint = endpoint_of.get(config.props.get("name"), str(config.props.get("name")))
        group = ctx.group_of(config)
        if group == SHARED and hosted.get(endpoint):
            group = ", ".join(sorted(hosted[endpoint]))
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


def _node_groups(ctx: _Context) -> None:
    for group in ctx.of_type(NODE_GROUP):
        scaling = _map(group.props.get("scalingConfig"))
        instance_type, _ = ctx.dearest("ec2:", _list(group.props.get("instanceTypes")))
        spot = group.props.get("capacityType") == "SPOT"
        ctx.add(group, f"node group {group.props.get('nodeGroupName')}: {instance_type}"
                       f"{' (spot)' if spot else ''}", f"ec2:{instance_type}",
                Counts(_num(scaling.get("minSize")), _num(scaling.get("desiredSize")), _num(scaling.get("maxSize"))),
                spot=spot, group=SHARED)


def _requirement(pool: Declared, key: str) -> list[str]:
    template = _map(_map(_map(pool.props.get("spec")).get("template")).get("spec"))
    for req in _list(template.get("requirements")):
        req = _map(req)
        if req.get("key") == key and req.get("operator") == "In":
            return [str(v) for v in _list(req.get("values"))]
    return []


def _nodes(replicas: Decimal, gpus: int, per_node: int) -> Decimal:
    """Nodes for the replicas' GPUs packed per_node to a node (one node per replica when the type is unpriced)."""
    return Decimal(math.ceil(replicas * gpus / per_node)) if per_node else replicas


def _karpenter(ctx: _Context) -> None:
    """GPU nodes Karpenter launches for KServe replicas: replicas x GPUs each, packed onto the pool's dearest type,
    and capped by the pool's GPU limit."""
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
    per_pool: dict[str, list[int]] = defaultdict(list)
    for service in ctx.of_type(INFERENCE_SERVICE):
        meta = _map(service.props.get("metadata"))
        predictor = _map(_map(service.props.get("spec")).get("predictor"))
        resources = _map(_map(predictor.get("model")).get("resources"))
        gpus = int(_num(_map(resources.get("limits")).get("nvidia.com/gpu")
                        or _map(resources.get("requests")).get("nvidia.com/gpu")))
        pool_name = str(_map(predictor.get("nodeSelector")).get(GROUP_LABEL, ""))
        if gpus == 0 or pool_name not in pools:
            continue  # on the system nodes, or on a managed node group priced above
        pool = pools[pool_name]
        name = str(meta.get("name"))
        if (meta.get("namespace"), f"{name}-predictor") in scalers:
            low, high = scalers[(meta.get("namespace"), f"{name}-predictor")]
        else:
            low = _num(predictor.get("minReplicas"), 1)
            high = max(low, _num(predictor.get("maxReplicas"), 0))
        instance_type, price = ctx.dearest("ec2:", _requirement(pool, "node.kubernetes.io/instance-type"))
        per_node = (price.gpus or 0) if price else 0
        capacity = _requirement(pool, "karpenter.sh/capacity-type")
        spot = bool(capacity) and "on-demand" not in capacity

        track = _map(meta.get("labels")).get(TRACK_LABEL, name)
        per_pool[pool_name].append(len(ctx.lines))
        ctx.add(service, f"GPU nodes {instance_type}{' (spot)' if spot else ''}: {name} ({track}), "
                         f"pool {pool_name}", f"ec2:{instance_type}", Counts(*(_nodes(r, gpus, per_node) for r in (low, low, high))),
                spot=spot, note="Karpenter launches these for the replicas; configured = the autoscaler's floor")
    for pool_name, indexes in per_pool.items():
        limit = _map(_map(pools[pool_name].props.get("spec")).get("limits")).get("nvidia.com/gpu")
        price = ctx.lines[indexes[0]].price
        if limit is None or price is None or not price.gpus:
            continue
        room = Decimal(int(_num(limit)) // price.gpus)
        for index in indexes:
            line = ctx.lines[index]
            capped = min(line.quantity.max, room)
            room -= capped
            if capped < line.quantity.max:
                ctx.lines[index] = replace(line, quantity=replace(line.quantity, max=capped),
                                           note=f"{line.note}; max capped by the pool's GPU limit ({limit})")


def _fixed(ctx: _Context) -> None:
    a = ctx.assumptions
    million_requests = a.requests_per_second * 3600 * a.hours_per_month / Decimal(1_000_000)
    for cluster in ctx.of_type("aws:eks/cluster:Cluster"):
        ctx.add(cluster, f"EKS control plane {cluster.props.get('name')}", "eks:cluster", Counts.same(1),
                group=SHARED)
    for count_type, item, key in (("aws:ec2/natGateway:NatGateway", "NAT gateways", "nat-gateway"),
                                  ("aws:ec2/eip:Eip", "public IPv4 addresses", "vpc:public-ipv4"),
                                  ("aws:kms/key:Key", "KMS keys", "kms:key")):
        found = ctx.of_type(count_type)
        if found:
            ctx.add(None, item, key, Counts.same(len(found)), group=SHARED)
    interface = [e for e in ctx.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e.props.get("vpcEndpointType") == "Interface"]
    if interface:
        zones = sum(max(1, len(_list(e.props.get("subnetIds")))) for e in interface)
        ctx.add(None, f"interface VPC endpoints ({len(interface)} x their zones)", "vpc-endpoint:interface",
                Counts.same(zones), group=SHARED, note="gateway endpoints (S3) are free")
    for balancer in ctx.of_type("aws:lb/loadBalancer:LoadBalancer"):
        kind = "application" if balancer.props.get("loadBalancerType", "application") == "application" else "network"
        ctx.add(balancer, f"{kind} load balancer {balancer.props.get('name')}", f"elb:{kind}", Counts.same(1),
                note="hourly only; capacity units not estimated")
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
                note="created by the AWS Load Balancer Controller; capacity units not estimated")
    for acl in ctx.of_type("aws:wafv2/webAcl:WebAcl"):
        ctx.add(acl, "WAF web ACL", "waf:web-acl", Counts.same(1))
        ctx.add(acl, f"WAF rules ({len(_list(acl.props.get('rules')))})", "waf:rule",
                Counts.same(len(_list(acl.props.get("rules")))))
        ctx.add(acl, f"WAF requests (millions at {a.requests_per_second}/s)", "waf:requests",
                Counts.same(million_requests))
    for api in ctx.of_type("aws:apigateway/restApi:RestApi"):
        ctx.add(api, f"API Gateway REST requests (millions at {a.requests_per_second}/s)",
                "apigateway:rest-requests", Counts.same(million_requests))
    for type_token, item, key in (("aws:cloudwatch/metricAlarm:MetricAlarm", "CloudWatch alarms", "cloudwatch:alarm"),
                                  ("aws:cloudwatch/compositeAlarm:CompositeAlarm", "CloudWatch composite alarms",
                                   "cloudwatch:composite-alarm"),
                                  ("aws:cloudwatch/dashboard:Dashboard", "CloudWatch dashboards",
                                   "cloudwatch:dashboard")):
        by_group = Counter(ctx.group_of(r) for r in ctx.of_type(type_token))
        for group, count in sorted(by_group.items()):
            ctx.add(None, item, key, Counts.same(count), group=group)
    logs = Counter(ctx.group_of(r) for r in ctx.of_type("aws:cloudwatch/logGroup:LogGroup"))
    for group, count in sorted(logs.items()):
        ctx.add(None, f"log ingestion ({count} group{'s' if count > 1 else ''} x {a.log_gb_per_group} GB)",
                "logs:ingest",
                Counts.same(count * a.log_gb_per_group), group=group, note="storage after ingestion not estimated")


HANDLED = frozenset({SAGEMAKER_CONFIG, NODE_GROUP, "aws:eks/cluster:Cluster", "aws:ec2/natGateway:NatGateway",
                     "aws:ec2/eip:Eip", "aws:kms/key:Key", "aws:ec2/vpcEndpoint:VpcEndpoint",
                     "aws:lb/loadBalancer:LoadBalancer", "aws:wafv2/webAcl:WebAcl", "aws:apigateway/restApi:RestApi",
                     "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm",
                     "aws:cloudwatch/dashboard:Dashboard", "aws:cloudwatch/logGroup:LogGroup"})


def estimate(resources: Iterable[Declared], table: PriceTable, assumptions: Assumptions | None = None,
             stack: str = "") -> Estimate:
    declared = list(resources)
    ctx = _Context(declared, table, assumptions or Assumptions())
    _sagemaker(ctx)
    _node_groups(ctx)
    _karpenter(ctx)
    _fixed(ctx)
    usage, unknown = ctx.usage, Counter()
    for resource in declared:
        if resource.type in HANDLED or resource.type in FREE_TYPES or resource.type.startswith(FREE_PREFIXES) \
                or resource.type == "pulumi:pulumi:Stack":
            continue
        (usage if resource.type in USAGE_BASED_TYPES else unknown)[resource.type] += 1
    return Estimate(stack=stack or (_stack_of(declared[0].urn) if declared else ""), region=table.region,
                    table=table, assumptions=ctx.assumptions, lines=ctx.lines, usage_based=usage, unknown=unknown)


def declared_from_plan(plan: Mapping[str, Any]) -> list[Declared]:
    """The resources of a plan JSON (`python -m infra.plan --json`, the shape the policy pack receives)."""
    return [Declared(r["type"], r["urn"], r.get("name", ""), r.get("inputs") or {}, r.get("parent") or None)
            for r in plan.get("resources", [])]


def region_of(resources: Iterable[Declared]) -> str | None:
    """The region the stack's AWS provider deploys to."""
    for resource in resources:
        if resource.type == "pulumi:providers:aws" and resource.props.get("region"):
            return str(resource.props.get("region"))
    return None
