"""Cost and hygiene: allowed instance types, a GPU quota, a monthly budget, ownership tags, pinned images."""

import json
import re
from collections.abc import Mapping
from decimal import Decimal

from infra.aws_facts import gpus
from infra.cost import Declared, PriceTableError, estimate, load_table, region_of

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule
from .workloads import POD_KINDS, declared_containers

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


@resource_rule("instance-type-allowlist", types=["aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                                                 "aws:eks/nodeGroup:NodeGroup", NODE_POOL],
               description="Instance types come from the environment's allow-list (endpoint variants, managed node "
                           "groups, and the types a Karpenter pool may launch).",
               fix="Pick an allowed type, or add it to allowed_instance_types in policies/config/<stack>.json "
                   "after a cost review.",
               schema={"allowed_instance_types": {"type": "array", "items": {"type": "string"}, "default": [
                   "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g6.xlarge", "ml.g6.2xlarge", "g5.xlarge", "g5.2xlarge",
                   "g6.xlarge", "g6.2xlarge", "m6i.large", "m6i.xlarge"]}})
def instance_type_allowlist(props, config):
    allowed = set(config["allowed_instance_types"])
    if props.get("kind") == "NodePool":  # Karpenter launches any type its requirements admit
        named = [r for r in as_list((((props.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "requirements")) if r.get("key") == INSTANCE_TYPE_LABEL and r.get("operator") == "In"]
        if not named:
            yield f"the pool may launch any instance type (no {INSTANCE_TYPE_LABEL} In requirement)"
        props = {"instanceTypes": [t for r in named for t in as_list(r.get("values"))]}
    types = [v.get("instanceType") for v in as_list(props.get("productionVariants"))]
    types += [v.get("instanceType") for v in as_list(props.get("shadowProductionVariants"))]
    types += as_list(props.get("instanceTypes"))
    for instance_type in types:
        if instance_type not in allowed:
            yield f"{instance_type} is not allowed here"


@stack_rule("gpu-budget", description="The stack's GPUs at maximum scale stay within its budget.",
            fix="Lower autoscaling.max (or instance sizes), or raise max_gpus in policies/config/<stack>.json with "
                "the budget owner's approval.",
            schema={"max_gpus": {"type": "integer", "default": 16}})
def gpu_budget(resources, config):
    max_by_endpoint = {str(t.props.get("resourceId", "")).split("/")[1]: t.props.get("maxCapacity") or 0
                       for t in of_type(resources, "aws:appautoscaling/target:Target")
                       if t.props.get("serviceNamespace") == "sagemaker"}
    endpoints = {e.props.get("endpointConfigName"): e.props.get("name")
                 for e in of_type(resources, "aws:sagemaker/endpoint:Endpoint")}
    drivers = []  # (GPUs at max, what, urn): the message names what drives the total
    for config_resource in of_type(resources, "aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
        endpoint = endpoints.get(config_resource.props.get("name"))
        for variant in as_list(config_resource.props.get("productionVariants")) + as_list(
                config_resource.props.get("shadowProductionVariants")):
            count = variant.get("initialInstanceCount") or 0
            if variant.get("variantName") == "primary":
                count = max(count, max_by_endpoint.get(str(endpoint), 0))
            drivers.append((count * gpus(variant.get("instanceType") or ""),
                            f"{endpoint}/{variant.get('variantName')}", config_resource.urn))
    for group in of_type(resources, "aws:eks/nodeGroup:NodeGroup"):
        scaling = group.props.get("scalingConfig") or {}
        drivers.append(((scaling.get("maxSize") or 0) * max(
            (gpus(t) for t in as_list(group.props.get("instanceTypes"))), default=0),
            f"node group {group.name}", group.urn))
    total = sum(n for n, _, _ in drivers)
    if total > config["max_gpus"]:
        drivers.sort(key=lambda d: -d[0])
        named = ", ".join(f"{what} {int(n)}" for n, what, _ in drivers if n)
        yield f"the stack can scale to {int(total)} GPUs ({named}); the budget is {config['max_gpus']}", drivers[0][2]


@stack_rule("required-tags", description="Every AWS resource carries the owner and cost-center tags, including what "
                                         "AWS creates for the stack's Kubernetes objects (Karpenter's and the node "
                                         "groups' instances and volumes, the controller's load balancers, volumes).",
            fix="Set mlserve:tags.owner and mlserve:tags.cost-center in the stack file; mlserve applies them to "
                "every resource through the AWS provider's default_tags, and passes them on to aws-native resources "
                "(tags), launch templates (tag_specifications for instances and volumes), Karpenter's EC2NodeClass "
                "(spec.tags), the load balancer controller (defaultTags) and EBS StorageClasses (tagSpecification_N).",
            schema={"required_tags": {"type": "array", "items": {"type": "string"},
                                      "default": ["owner", "cost-center"]}})
def required_tags(resources, config):
    """The AWS provider's default tags reach only what it creates itself. Judged too: each aws-native resource (its
    own tags or its provider's default tags), a launch template's instance and volume tags (what an EKS managed node
    group launches gets no provider tags), Karpenter's EC2NodeClass tags, the AWS load balancer controller's
    defaultTags and an EBS StorageClass's tagSpecification_N parameters."""
    required = config["required_tags"]

    def lacking(tags) -> list[str]:
        return [t for t in required if not (tags or {}).get(t)]

    providers = of_type(resources, "pulumi:providers:aws")
    if not providers:
        yield "no explicit AWS provider: resources would use the default provider, which sets no tags", None
    for provider in providers:
        missing = lacking(_default_tags(provider))
        if missing:
            yield f"provider {provider.name} default_tags lack {missing}", provider.urn
    native_defaults = {p.urn: _default_tags(p) for p in of_type(resources, "pulumi:providers:aws-native")}
    for resource in resources:
        if not resource.resource_type.startswith("aws-native:") or (
                "tags" not in resource.props and resource.resource_type not in NATIVE_TAGGED):
            continue
        own = resource.props.get("tags")
        tags = {t.get("key"): t.get("value") for t in as_list(own)} if not isinstance(own, Mapping) else dict(own)
        defaults = {k: v for d in native_defaults.values() for k, v in d.items()} if len(native_defaults) == 1 else {}
        missing = lacking({**defaults, **tags})
        if missing:
            yield f"{resource.name}'s tags lack {missing}", resource.urn
    for node_class in of_type(resources, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        missing = lacking((node_class.props.get("spec") or {}).get("tags"))
        if missing:
            yield f"the instances and volumes Karpenter launches for {node_class.name}: spec.tags lack {missing}", \
                node_class.urn
    for template in of_type(resources, "aws:ec2/launchTemplate:LaunchTemplate"):
        specs = {s.get("resourceType"): s.get("tags") for s in as_list(template.props.get("tagSpecifications"))}
        for resource_type in ("instance", "volume"):
            missing = lacking(specs.get(resource_type))
            if missing:
                yield f"launch template {template.name}: {resource_type} tags lack {missing}", template.urn
    for release in of_type(resources, "kubernetes:helm.sh/v3:Release"):
        if str(release.props.get("chart", "")).endswith("aws-load-balancer-controller"):
            missing = lacking((release.props.get("values") or {}).get("defaultTags"))
            if missing:
                yield f"the load balancers the controller creates: defaultTags lack {missing}", release.urn
    for storage in of_type(resources, "kubernetes:storage.k8s.io/v1:StorageClass"):
        if storage.props.get("provisioner") != "ebs.csi.aws.com":
            continue
        tags = dict(str(v).split("=", 1) for k, v in (storage.props.get("parameters") or {}).items()
                    if k.startswith("tagSpecification_") and "=" in str(v))
        missing = lacking(tags)
        if missing:
            yield f"the volumes StorageClass {storage.name} provisions: tagSpecification_N lack {missing}", storage.urn


# aws-native types whose tags mlserve sets (judged even when a hand edit drops `tags`).
NATIVE_TAGGED = ("aws-native:sagemaker:InferenceComponent",)


def _default_tags(provider) -> dict:
    raw = provider.props.get("defaultTags") or "{}"
    return (json.loads(raw) if isinstance(raw, str) else raw).get("tags") or {}


IMAGE = re.compile(r"^(?P<repo>[^@:]+(:\d+)?/[^@:]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


@stack_rule("images-pinned", description="Images (SageMaker models, every container of a Kubernetes workload) are "
                                         "pinned by digest, or by a tag in an immutable repository; never 'latest'.",
            fix="Set deployments[].image.digest, or an immutable version tag in an ECR repository with "
                "image_tag_mutability='IMMUTABLE'.")
def images_pinned(resources, config):
    immutable = {str(r.props.get("name")) for r in of_type(resources, "aws:ecr/repository:Repository")
                 if r.props.get("imageTagMutability") == "IMMUTABLE"}
    for owner, image in _serving_images(resources):
        match = IMAGE.match(image)
        if not match or (not match["tag"] and not match["digest"]):
            yield f"image {image!r} names no tag or digest", owner.urn
        elif match["digest"]:
            continue
        elif match["tag"] == "latest":
            yield f"image {image} uses 'latest'", owner.urn
        elif match["repo"].split("/", 1)[1] not in immutable:
            yield f"image {image} is pinned by a tag in a repository whose tags can move", owner.urn


def _serving_images(resources):
    """(resource, image) for SageMaker model containers and every container of a Kubernetes object that declares pods
    (serving runtimes, InferenceServices, Deployments such as the capture sink, Jobs, ...). A runtime's container
    must name its image; an InferenceService's model container may leave it to the runtime."""
    for model in of_type(resources, "aws:sagemaker/model:Model"):
        for container in as_list(model.props.get("primaryContainer")) + as_list(model.props.get("containers")):
            yield model, str(container.get("image") or "")
    for resource in of_type(resources, *POD_KINDS):
        kind = resource.props.get("kind")
        for container in declared_containers(kind, resource.props):
            if container.get("image") or kind in ("ServingRuntime", "ClusterServingRuntime"):
                yield resource, str(container.get("image") or "")


BUDGET = "aws:budgets/budget:Budget"


@stack_rule("monthly-budget", description="The stack's maximum estimated monthly cost stays within its AWS Budgets "
                                          "budget; prod declares one.",
            fix="Lower autoscaling.max, pool limits or instance sizes, or raise mlserve:budget.monthly_usd with the "
                "budget owner's approval; `python -m infra.cost --stack <stack>` shows every line.")
def monthly_budget(resources, config):
    """The same estimator as `python -m infra.cost`, over what the plan declares, priced from the checked-in table of
    the stack's region. A GPU line the table does not price is a violation of its own (the bill's largest lines
    cannot be left out of a bound); other unpriced lines are left out of the total, and the message says so."""
    budgets = of_type(resources, BUDGET)
    if not budgets:
        if is_prod(config):
            yield "prod declares no monthly budget: set mlserve:budget.monthly_usd in the stack file", None
        return
    limit = Decimal(str(budgets[0].props.get("limitAmount") or "0"))
    declared = [Declared(r.resource_type, r.urn, r.name, r.props, r.parent.urn if r.parent else None)
                for r in resources]
    region = region_of(declared)
    try:
        table = load_table(region)
    except PriceTableError as error:
        yield f"cannot estimate the stack's cost: {error}", budgets[0].urn
        return
    result = estimate(declared, table)
    blind = [line for line in result.unpriced("max") if line.gpu_bearing]
    if blind:
        keys = sorted({line.key_for("max") for line in blind} | {line.key_for("min") for line in blind})
        yield (f"the estimate cannot bound the bill: {len(blind)} GPU line(s) are unpriced ({', '.join(keys)}: "
               f"{'; '.join(line.item for line in blind)}); add their prices to the {region} table "
               f"(`python -m infra.cost refresh --region {region}`) before this stack is judged against its "
               f"${limit:,.2f} budget"), budgets[0].urn
    maximum = result.total("max")
    if maximum > limit:
        drivers = ", ".join(f"{group} ${cost:,.2f}" for group, cost in result.drivers("max") if cost)
        unpriced = sorted({line.key for line in result.unpriced("max")})
        left_out = f"; not counted (unpriced): {', '.join(unpriced)}" if unpriced else ""
        yield (f"at maximum scale the stack is estimated at ${maximum:,.2f} a month, over its ${limit:,.2f} budget "
               f"(by deployment: {drivers}){left_out}"), budgets[0].urn
