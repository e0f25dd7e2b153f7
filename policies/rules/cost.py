"""Cost: the instance types an environment allows, the GPUs a stack may scale to, and its monthly budget against the
estimate of what it declares."""

from decimal import Decimal

from infra.aws_facts import gpus
from infra.cost import Declared, PriceTableError, estimate, load_table, region_of

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule

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
