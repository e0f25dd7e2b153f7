"""EKS and Kubernetes: a private, encrypted, logged control plane; hardened nodes; GPU capacity that stays warm."""

from ..framework import as_list, is_prod, resource_rule

LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"


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


@resource_rule("node-imdsv2-encrypted-disk", types=["aws:ec2/launchTemplate:LaunchTemplate"],
               description="Nodes require IMDSv2 and encrypt their volumes.",
               fix="Set metadata_options.http_tokens='required' and ebs.encrypted='true' with the stack key.")
def node_imdsv2_encrypted_disk(props, config):
    if (props.get("metadataOptions") or {}).get("httpTokens") != "required":
        yield "instance metadata accepts IMDSv1 (tokens optional): a pod could read the node role's credentials"
    for mapping in as_list(props.get("blockDeviceMappings")):
        ebs = mapping.get("ebs") or {}
        if str(ebs.get("encrypted")).lower() != "true":
            yield f"volume {mapping.get('deviceName')} is not encrypted"


@resource_rule("prod-gpu-capacity-warm", types=["aws:eks/nodeGroup:NodeGroup", INFERENCE_SERVICE],
               description="In prod, GPU node groups and KServe predictors never scale to zero.",
               fix="Set cluster.node_groups[].min_size and deployments[].autoscaling.min to at least 1 in prod: a "
                   "cold GPU node takes minutes and the requests meanwhile fail.")
def prod_gpu_capacity_warm(props, config):
    if not is_prod(config):
        return
    if "NVIDIA" in str(props.get("amiType") or "") and ((props.get("scalingConfig") or {}).get("minSize") or 0) < 1:
        yield "the GPU node group may scale to zero"
    predictor = (props.get("spec") or {}).get("predictor") or {}
    if props.get("kind") == "InferenceService" and (predictor.get("minReplicas") or 0) < 1:
        yield f"InferenceService {(props.get('metadata') or {}).get('name')} may scale to zero replicas"
