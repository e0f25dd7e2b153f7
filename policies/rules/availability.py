"""Prod survives the loss of an instance or a zone."""

from components.names import COLD_START_TAG, TRACK_LABEL

from ..framework import as_list, is_prod, of_type, stack_rule

COMPONENT = "aws-native:sagemaker:InferenceComponent"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SUBNET = "aws:ec2/subnet:Subnet"


@stack_rule("prod-endpoint-capacity",
            description="Prod serving keeps at least two instances, copies or replicas on every scaler: SageMaker "
                        "variants and their scalable targets, inference components, KServe InferenceServices and "
                        "their KEDA ScaledObjects (async endpoints and cold-start-tolerant inference components may "
                        "scale to zero; a KServe canary track may run one replica).",
            fix="Set deployments[].compute.instance_count and autoscaling.min to 2 or more in Pulumi.prod.yaml (0 for an "
                "inference component only with inference_component.tolerates_cold_start: true).",
            schema={"min_instances": {"type": "integer", "default": 2}})
def prod_endpoint_capacity(resources, config):
    """Every scaler of serving capacity in prod keeps `min_instances`, so serving survives the loss of an instance:

    - SageMaker: each realtime variant's initial instance count and its managed instance scaling minimum (0 on an
      endpoint of inference components, whose instances follow the copies), and each scalable target's minimum;
    - inference components: the copies they start with and their scalable target's minimum (0 for both only with
      the `mlserve:tolerates-cold-start` tag);
    - KServe: each InferenceService's minReplicas (KServe's default, 1, when unset) and each KEDA ScaledObject's
      minReplicaCount (KEDA's default, 0, when unset; an idleReplicaCount below it scales to that when idle). A
      canary track (label mlserve.io/track=canary) serves a share of the traffic beside the stable track and may run
      one replica, never zero.

    Node capacity is prod-gpu-capacity-warm's: managed node groups keep a node; a Karpenter NodePool has no minimum
    (it launches nodes for pending pods), so KServe's floor here is what keeps GPU nodes up.
    """
    if not is_prod(config):
        return
    floor = config["min_instances"]
    configs = {c.props.get("name"): c for c in of_type(resources, "aws:sagemaker/endpointConfiguration:"
                                                                    "EndpointConfiguration")}
    queued, hosting = set(), set()
    components = of_type(resources, COMPONENT)
    hosted = {c.props.get("endpointName") for c in components}
    for endpoint in of_type(resources, "aws:sagemaker/endpoint:Endpoint"):
        endpoint_config = configs.get(endpoint.props.get("endpointConfigName"))
        if endpoint_config is not None and endpoint_config.props.get("asyncInferenceConfig"):
            queued.add(endpoint.props.get("name"))
        if endpoint_config is not None and endpoint.props.get("name") in hosted:
            hosting.add(endpoint_config.urn)
    for endpoint_config in configs.values():
        if endpoint_config.props.get("asyncInferenceConfig"):
            continue
        for variant in as_list(endpoint_config.props.get("productionVariants")):
            if (variant.get("initialInstanceCount") or 0) < floor:
                yield (f"variant {variant.get('variantName')} starts {variant.get('initialInstanceCount')} "
                       "instance(s)"), endpoint_config.urn
            managed = variant.get("managedInstanceScaling") or {}
            low = managed.get("minInstanceCount") or 0
            if managed.get("status") == "ENABLED" and low < floor and not (
                    low == 0 and endpoint_config.urn in hosting):
                yield (f"managed instance scaling may take variant {variant.get('variantName')} down to {low} "
                       "instance(s)"), endpoint_config.urn
    # An inference component may scale to zero copies only when its deployment says it tolerates the cold start
    # (config `inference_component.tolerates_cold_start`, carried to the plan as this tag).
    tolerant = {c.props.get("inferenceComponentName") for c in components
                if any(t.get("key") == COLD_START_TAG and t.get("value") == "true" for t in as_list(c.props.get("tags")))}
    for component in components:
        name = component.props.get("inferenceComponentName")
        copies = (component.props.get("runtimeConfig") or {}).get("copyCount") or 0
        if copies < floor and not (copies == 0 and name in tolerant):
            yield f"inference component {name} starts {copies} copy(ies)", component.urn
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
    yield from _kserve_capacity(resources, floor)


def _kserve_capacity(resources, floor):
    for isvc in of_type(resources, INFERENCE_SERVICE):
        metadata = isvc.props.get("metadata") or {}
        low = ((isvc.props.get("spec") or {}).get("predictor") or {}).get("minReplicas")
        low = 1 if low is None else low
        if low < _floor_of(metadata, floor):
            yield f"InferenceService {metadata.get('name')} may scale down to {low} replica(s)", isvc.urn
    for scaler in of_type(resources, SCALED_OBJECT):
        metadata = scaler.props.get("metadata") or {}
        spec = scaler.props.get("spec") or {}
        low, idle = spec.get("minReplicaCount") or 0, spec.get("idleReplicaCount")
        track_floor = _floor_of(metadata, floor)
        if low < track_floor:
            yield f"KEDA may scale {metadata.get('name')} down to {low} replica(s)", scaler.urn
        elif idle is not None and idle < track_floor:
            yield f"KEDA scales {metadata.get('name')} to {idle} replica(s) when its triggers are idle " \
                  "(idleReplicaCount)", scaler.urn


def _floor_of(metadata, floor):
    return min(1, floor) if (metadata.get("labels") or {}).get(TRACK_LABEL) == "canary" else floor


@stack_rule("prod-endpoints-span-zones",
            description="Prod serving capacity is placed in subnets of 2+ zones: SageMaker models, managed node "
                        "groups and the subnets Karpenter's EC2NodeClass selects.",
            fix="Give the model's vpc_config, the node group's subnet_ids and the EC2NodeClass's subnetSelectorTerms "
                "private subnets in at least two availability zones.")
def prod_endpoints_span_zones(resources, config):
    if not is_prod(config):
        return
    # Subnet ids are unknown at preview; the subnets an input came from (its dependencies) are known.
    for model in of_type(resources, "aws:sagemaker/model:Model"):
        subnets = of_type(model.property_dependencies.get("vpcConfig", []), SUBNET)
        zones = {s.props.get("availabilityZone") for s in subnets}
        if len(zones) < 2:
            yield f"model {model.name} is placed in {len(zones)} zone(s)", model.urn
    for group in of_type(resources, "aws:eks/nodeGroup:NodeGroup"):
        zones = {s.props.get("availabilityZone") for s in of_type(group.property_dependencies.get("subnetIds", []),
                                                                    SUBNET)}
        if len(zones) < 2:
            yield f"node group {group.props.get('nodeGroupName')} places its nodes in {len(zones)} zone(s)", group.urn
    declared = of_type(resources, SUBNET)
    for node_class in of_type(resources, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        terms = as_list((node_class.props.get("spec") or {}).get("subnetSelectorTerms"))
        if any(not term.get("tags") for term in terms):
            continue  # selected by id: not resolvable from the plan
        zones = {s.props.get("availabilityZone") for s in declared for term in terms
                 if all((s.props.get("tags") or {}).get(k) == v or (v == "*" and k in (s.props.get("tags") or {}))
                        for k, v in term["tags"].items())}
        if len(zones) < 2:
            yield f"EC2NodeClass {node_class.name}'s subnetSelectorTerms select subnets in {len(zones)} zone(s)", \
                node_class.urn
