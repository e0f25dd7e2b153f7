"""Prod survives the loss of an instance or a zone."""

from ..framework import as_list, is_prod, of_type, stack_rule

COMPONENT = "aws-native:sagemaker:InferenceComponent"
# Copy of components.names.COLD_START_TAG (the pack ships on its own; tests/test_shared_names.py pins the two).
COLD_START_TAG = "mlserve:tolerates-cold-start"


@stack_rule("prod-endpoint-capacity",
            description="Prod realtime endpoints run at least two instances (async endpoints may scale to zero: "
                        "their requests wait in the queue).",
            fix="Set deployments[].compute.instance_count and autoscaling.min to 2 or more in Pulumi.prod.yaml.",
            schema={"min_instances": {"type": "integer", "default": 2}})
def prod_endpoint_capacity(resources, config):
    if not is_prod(config):
        return
    floor = config["min_instances"]
    configs = {c.props.get("name"): c for c in of_type(resources, "aws:sagemaker/endpointConfiguration:"
                                                                    "EndpointConfiguration")}
    queued = set()
    for endpoint in of_type(resources, "aws:sagemaker/endpoint:Endpoint"):
        endpoint_config = configs.get(endpoint.props.get("endpointConfigName"))
        if endpoint_config is not None and endpoint_config.props.get("asyncInferenceConfig"):
            queued.add(endpoint.props.get("name"))
    for endpoint_config in configs.values():
        for variant in as_list(endpoint_config.props.get("productionVariants")):
            if (variant.get("initialInstanceCount") or 0) < floor and not endpoint_config.props.get(
                    "asyncInferenceConfig"):
                yield (f"variant {variant.get('variantName')} starts {variant.get('initialInstanceCount')} "
                       "instance(s)"), endpoint_config.urn
    # An inference component may scale to zero copies only when its deployment says it tolerates the cold start
    # (config `component.tolerates_cold_start`, carried to the plan as this tag).
    tolerant = {c.props.get("inferenceComponentName") for c in of_type(resources, COMPONENT)
                if any(t.get("key") == COLD_START_TAG and t.get("value") == "true" for t in as_list(c.props.get("tags")))}
    for target in of_type(resources, "aws:appautoscaling/target:Target"):
        props = target.props
        kind, _, rest = str(props.get("resourceId", "")).partition("/")
        name = rest.split("/")[0]
        low = props.get("minCapacity") or 0
        if props.get("serviceNamespace") != "sagemaker" or low >= floor:
            continue
        if (kind == "endpoint" and name in queued) or (kind == "inference-component" and low == 0 and name in tolerant):
            continue
        yield f"autoscaling may scale {props.get('resourceId')} down to {props.get('minCapacity')}", target.urn


@stack_rule("prod-endpoints-span-zones", description="Prod SageMaker models are placed in subnets of 2+ zones.",
            fix="Give the model's vpc_config private subnets in at least two availability zones.")
def prod_endpoints_span_zones(resources, config):
    if not is_prod(config):
        return
    for model in of_type(resources, "aws:sagemaker/model:Model"):
        # Subnet ids are unknown at preview; the subnets the vpcConfig came from are known.
        subnets = of_type(model.property_dependencies.get("vpcConfig", []), "aws:ec2/subnet:Subnet")
        zones = {s.props.get("availabilityZone") for s in subnets}
        if len(zones) < 2:
            yield f"model {model.name} is placed in {len(zones)} zone(s)", model.urn
