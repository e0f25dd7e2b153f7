"""EKS and Kubernetes: a private, encrypted, logged control plane; hardened nodes; GPU capacity that stays warm."""

import re

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule

LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_PROVISIONERS = ("ebs.csi.aws.com", "kubernetes.io/aws-ebs")


@resource_rule("eks-private-endpoint", types=["aws:eks/cluster:Cluster"],
               description="The EKS API is private in prod and never open to the whole internet.",
               fix="Leave cluster.public_access_cidrs empty in prod (private endpoint only); elsewhere list the "
                   "office/VPN CIDRs, never 0.0.0.0/0.")
def eks_private_endpoint(props, config):
    vpc = props.get("vpcConfig") or {}
    if not vpc.get("endpointPrivateAccess"):
        yield "the private endpoint is off: nodes would reach the API over the internet"
    if vpc.get("endpointPublicAccess") is not False:
        cidrs = as_list(vpc.get("publicAccessCidrs"))
        if not cidrs or "0.0.0.0/0" in cidrs:
            yield f"the public endpoint is open to {cidrs or ['0.0.0.0/0 (the default)']}"
        elif is_prod(config):
            yield f"the public endpoint is on in prod (for {cidrs})"


@resource_rule("eks-secrets-encrypted", types=["aws:eks/cluster:Cluster"],
               description="Kubernetes secrets are envelope-encrypted with the stack's KMS key.",
               fix="Give the cluster encryption_config with resources=['secrets'] and the stack key's ARN.")
def eks_secrets_encrypted(props, config):
    encryption = props.get("encryptionConfig") or {}
    if "secrets" not in as_list(encryption.get("resources")) or not (encryption.get("provider") or {}).get("keyArn"):
        yield "secrets are not envelope-encrypted with a KMS key"


@resource_rule("eks-control-plane-logs", types=["aws:eks/cluster:Cluster"],
               description="Every control-plane log type goes to CloudWatch.",
               fix="Set enabled_cluster_log_types to api, audit, authenticator, controllerManager and scheduler.")
def eks_control_plane_logs(props, config):
    missing = LOG_TYPES - set(as_list(props.get("enabledClusterLogTypes")))
    if missing:
        yield f"control-plane logs off for {sorted(missing)}"


@resource_rule("node-imdsv2-encrypted-disk", types=["aws:ec2/launchTemplate:LaunchTemplate", NODE_CLASS,
                                                    "aws:eks/nodeGroup:NodeGroup", STORAGE_CLASS],
               description="Nodes require IMDSv2 with a hop limit of 1 and encrypt their volumes (launch templates, "
                           "Karpenter's EC2NodeClass, managed node groups through their launch template); EBS volumes "
                           "a StorageClass provisions are encrypted too.",
               fix="Set metadata_options.http_tokens='required', http_put_response_hop_limit=1 and "
                   "ebs.encrypted='true' with the stack key (EC2NodeClass: spec.metadataOptions and "
                   "spec.blockDeviceMappings); give each managed node group such a launch template; give an EBS "
                   "StorageClass parameters encrypted: 'true' and kmsKeyId.")
def node_imdsv2_encrypted_disk(props, config):
    if props.get("kind") == "StorageClass":
        if props.get("provisioner") in EBS_PROVISIONERS and str(
                (props.get("parameters") or {}).get("encrypted")).lower() != "true":
            yield f"the EBS volumes StorageClass {(props.get('metadata') or {}).get('name')} provisions are not encrypted"
        return
    if "scalingConfig" in props or "nodeRoleArn" in props:  # a managed node group
        if not props.get("launchTemplate"):
            yield "the node group has no launch template: its nodes get EKS's default metadata options and root " \
                  "volume, not IMDSv2 with hop limit 1 and a volume encrypted with the stack key"
        return
    spec = props.get("spec")
    if spec is not None:  # Karpenter's EC2NodeClass
        props = {"metadataOptions": spec.get("metadataOptions"), "blockDeviceMappings": [
            {"deviceName": m.get("deviceName"), "ebs": {"encrypted": (m.get("ebs") or {}).get("encrypted")}}
            for m in as_list(spec.get("blockDeviceMappings"))]}
    metadata = props.get("metadataOptions") or {}
    if metadata.get("httpTokens") != "required":
        yield "instance metadata accepts IMDSv1 (tokens optional): a pod could read the node role's credentials"
    if metadata.get("httpPutResponseHopLimit") != 1:
        yield f"the metadata hop limit is {metadata.get('httpPutResponseHopLimit')}, not 1: pods (one hop more) " \
              "can read the node role's credentials"
    for mapping in as_list(props.get("blockDeviceMappings")):
        ebs = mapping.get("ebs") or {}
        if str(ebs.get("encrypted")).lower() != "true":
            yield f"volume {mapping.get('deviceName')} is not encrypted"


NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
# EC2 families with GPUs (g4dn, g5, g5g, g6, g6e, gr6, p3, p4d, p5, ...): the family is the type's first part.
GPU_FAMILY = re.compile(r"^(g|gr|p)\d")


def is_gpu_node_group(props) -> bool:
    """A managed node group of GPU nodes: an NVIDIA AMI, or a GPU instance family (whatever the AMI says)."""
    return "NVIDIA" in str(props.get("amiType") or "") or any(
        GPU_FAMILY.match(str(t).removeprefix("ml.")) for t in as_list(props.get("instanceTypes")))


@resource_rule("prod-gpu-capacity-warm", types=["aws:eks/nodeGroup:NodeGroup", NODE_POOL],
               description="In prod, node capacity never scales to zero: every managed node group keeps a node and a "
                           "static Karpenter pool keeps nodes.",
               fix="Set cluster.node_groups[].min_size to at least 1 in prod (GPU groups: a cold GPU node takes "
                   "minutes and the requests meanwhile fail; the system group runs the controllers and DNS); a static "
                   "Karpenter pool needs replicas of at least 1.")
def prod_gpu_capacity_warm(props, config):
    """Judges every kind that holds nodes in prod:

    - an EKS managed node group (GPU or not) keeps `scalingConfig.minSize` of at least 1;
    - a Karpenter NodePool has no minimum: it launches nodes for pending pods and consolidates them away, so what
      keeps its GPU nodes warm is the serving pods' own floor (InferenceService minReplicas and the KEDA
      ScaledObject's minReplicaCount, judged by prod-endpoint-capacity). Only a static pool (`spec.replicas`, alpha
      in Karpenter 1.14) holds a fixed count, and it never scales up: it needs at least 1.
    """
    if not is_prod(config):
        return
    spec = props.get("spec")
    if spec is not None:  # a Karpenter NodePool
        replicas = spec.get("replicas")
        if replicas is not None and replicas < 1:
            yield f"static NodePool {(props.get('metadata') or {}).get('name')} keeps {replicas} nodes (replicas) " \
                  "and never scales up"
        return
    if ((props.get("scalingConfig") or {}).get("minSize") or 0) < 1:
        what = "the GPU node group" if is_gpu_node_group(props) else "node group"
        yield f"{what} {props.get('nodeGroupName')} may scale to zero"


SPOT_WARNING = "EC2 Spot Instance Interruption Warning"


def _drains_at_most_one_node(disruption) -> bool:
    """The most restrictive active budget wins; one that always applies (no schedule, every reason) with 0 or 1
    nodes caps every drain. Without budgets Karpenter allows 10% of the pool's nodes at once."""
    return any(not budget.get("schedule") and not budget.get("reasons") and str(budget.get("nodes")) in ("0", "1")
               for budget in as_list(disruption.get("budgets")))


@resource_rule("gpu-node-pool-guarded", types=[NODE_POOL, "aws:eks/nodeGroup:NodeGroup"],
               description="GPU capacity (Karpenter pools, GPU managed node groups) is tainted and limited; in prod "
                           "it buys on-demand capacity and drains one node at a time.",
               fix="Give the NodePool the nvidia.com/gpu=true:NoSchedule taint and a limits['nvidia.com/gpu']; in "
                   "prod allow on-demand (cluster.gpu_pools[].capacity_types) and keep max_disrupted_nodes at 1. A GPU "
                   "node group: the nvidia.com/gpu NO_SCHEDULE taint, capacity_type ON_DEMAND in prod and "
                   "update_config.max_unavailable 1 (components/node_group.py).")
def gpu_node_pool_guarded(props, config):
    if "spec" not in props:  # a managed node group: its maxSize is its limit
        yield from _gpu_node_group_guarded(props, config)
        return
    spec = props.get("spec") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule"
               for t in as_list(template.get("taints"))):
        yield "the pool's nodes have no nvidia.com/gpu:NoSchedule taint: any pod could land on a GPU node and hold it"
    if not (spec.get("limits") or {}).get("nvidia.com/gpu"):
        yield "the pool has no nvidia.com/gpu limit: a runaway deployment buys GPUs without bound"
    if not is_prod(config):
        return
    capacity = [r for r in as_list(template.get("requirements")) if r.get("key") == "karpenter.sh/capacity-type"]
    # Without a capacity-type requirement Karpenter launches on-demand only.
    if capacity and not all(r.get("operator") == "In" and "on-demand" in as_list(r.get("values")) for r in capacity):
        yield "the pool cannot launch on-demand capacity in prod: spot GPUs are often unavailable and reclaimed"
    if not _drains_at_most_one_node(spec.get("disruption") or {}):
        yield "no disruption budget caps drains at one node: consolidation or expiry may drain several GPU nodes at once"


def _gpu_node_group_guarded(props, config):
    if not is_gpu_node_group(props):
        return
    if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NO_SCHEDULE"
               for t in as_list(props.get("taints"))):
        yield "the group's nodes have no nvidia.com/gpu:NoSchedule taint: any pod could land on a GPU node and hold it"
    if not is_prod(config):
        return
    if props.get("capacityType") == "SPOT":
        yield "the group cannot launch on-demand capacity in prod: spot GPUs are often unavailable and reclaimed"
    update = props.get("updateConfig") or {}  # EKS drains one node at a time unless told otherwise
    percent, count = update.get("maxUnavailablePercentage"), update.get("maxUnavailable") or 1
    if percent or count > 1:
        yield f"updates drain {f'{percent}% of the' if percent else int(count)} nodes at once: several GPU nodes " \
              "may leave together"


@stack_rule("karpenter-interruption-queue",
            description="Where Karpenter launches nodes, it hears about interruptions through its queue "
                        "(sqs-queue-kms keeps it encrypted).",
            fix="Declare the interruption queue (SQS, kms_master_key_id = stack key) with the EventBridge rules "
                "upstream routes to it, and name it in the karpenter chart's settings.interruptionQueue "
                "(components/karpenter.py does all three).")
def karpenter_interruption_queue(resources, config):
    pools = of_type(resources, NODE_POOL)
    if not pools:
        return
    queues = {q.props.get("name"): q for q in of_type(resources, "aws:sqs/queue:Queue")}
    releases = [r for r in of_type(resources, "kubernetes:helm.sh/v3:Release")
                if str(r.props.get("chart", "")).endswith("/karpenter")]
    named = [((r.props.get("values") or {}).get("settings") or {}).get("interruptionQueue") for r in releases]
    queue = next((queues[n] for n in named if n in queues), None)
    if queue is None:
        yield f"{len(pools)} Karpenter pool(s) but no declared SQS queue named in the chart's " \
              "settings.interruptionQueue: spot reclaims and health events would end nodes without a drain", pools[0].urn
        return
    targeted = [t for t in of_type(resources, "aws:cloudwatch/eventTarget:EventTarget")
                if queue in t.property_dependencies.get("arn", [])]
    rules = [d for t in targeted for d in t.property_dependencies.get("rule", [])]
    if not any(SPOT_WARNING in str(r.props.get("eventPattern")) for r in rules):
        yield f"no EventBridge rule sends '{SPOT_WARNING}' events to {queue.name}", queue.urn
