"""Prod survives the loss of an instance or a zone."""

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule


@resource_rule("prod-endpoint-capacity", types=["aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                                                "aws:appautoscaling/target:Target"],
               description="Prod realtime endpoints run at least two instances.",
               fix="Set deployments[].compute.instance_count and autoscaling.min to 2 or more in Pulumi.prod.yaml.",
               schema={"min_instances": {"type": "integer", "default": 2}})
def prod_endpoint_capacity(props, config):
    if not is_prod(config):
        return
    floor = config["min_instances"]
    for variant in as_list(props.get("productionVariants")):
        if (variant.get("initialInstanceCount") or 0) < floor:
            yield f"variant {variant.get('variantName')} starts {variant.get('initialInstanceCount')} instance(s)"
    if props.get("serviceNamespace") == "sagemaker" and (props.get("minCapacity") or 0) < floor:
        yield f"autoscaling may scale {props.get('resourceId')} down to {props.get('minCapacity')}"


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
