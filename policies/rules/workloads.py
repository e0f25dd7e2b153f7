"""Serving workloads: Pod Security `restricted`, namespaces that deny by default, and one way in (the gateway)."""

import ipaddress
import json

from ..framework import as_list, of_type, resource_rule, stack_rule

INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
HOST_FIELDS = ("hostNetwork", "hostPID", "hostIPC")


def _container_weaknesses(where: str, context) -> list[str]:
    context = context or {}
    found = []
    if context.get("allowPrivilegeEscalation") is not False:
        found.append(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in as_list((context.get("capabilities") or {}).get("drop")):
        found.append(f"{where}: capabilities are not all dropped")
    if as_list((context.get("capabilities") or {}).get("add")):
        found.append(f"{where}: adds capabilities {as_list(context['capabilities']['add'])}")
    if context.get("privileged"):
        found.append(f"{where}: privileged")
    if context.get("readOnlyRootFilesystem") is not True:
        found.append(f"{where}: the root filesystem is writable")
    return found


@resource_rule("serving-pods-restricted", types=[INFERENCE_SERVICE, SERVING_RUNTIME],
               description="Serving pods meet Pod Security `restricted`, carry no API token and restart when hung.",
               fix="In the predictor: securityContext {runAsNonRoot: true, seccompProfile: RuntimeDefault}, "
                   "automountServiceAccountToken: false, no host namespaces or hostPath volumes; in each container: "
                   "allowPrivilegeEscalation: false, capabilities.drop [ALL], readOnlyRootFilesystem: true "
                   "(emptyDir for /tmp), and a livenessProbe (components/kserve_service.py does all of it).")
def serving_pods_restricted(props, config):
    spec = props.get("spec") or {}
    if "containers" in spec:  # ServingRuntime: the container template every predictor pod inherits
        for container in as_list(spec.get("containers")):
            yield from _container_weaknesses(f"runtime container {container.get('name')}",
                                             container.get("securityContext"))
        return
    predictor = spec.get("predictor") or {}
    pod = predictor.get("securityContext") or {}
    if pod.get("runAsNonRoot") is not True:
        yield "the predictor pod may run as root (securityContext.runAsNonRoot is not true)"
    if (pod.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        yield "the predictor pod has no RuntimeDefault seccomp profile"
    if predictor.get("automountServiceAccountToken") is not False:
        yield "the predictor pod mounts a Kubernetes API token it never uses (IRSA brings its own AWS token)"
    for field in HOST_FIELDS:
        if predictor.get(field):
            yield f"the predictor pod shares the node's namespace ({field})"
    for volume in as_list(predictor.get("volumes")):
        if "hostPath" in volume:
            yield f"volume {volume.get('name')} mounts a path of the node (hostPath)"
    model = predictor.get("model") or {}
    yield from _container_weaknesses("the model container", model.get("securityContext"))
    if not model.get("livenessProbe"):
        yield "the model container has no livenessProbe: a hung server leaves rotation but is never restarted"


@resource_rule("serving-namespace-restricted", types=[NAMESPACE],
               description="Namespaces of serving workloads enforce Pod Security `restricted`.",
               fix="Label the namespace pod-security.kubernetes.io/enforce=restricted.")
def serving_namespace_restricted(props, config):
    labels = (props.get("metadata") or {}).get("labels") or {}
    if labels.get("mlserve.io/deployment") and labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        yield f"namespace {props['metadata'].get('name')} does not enforce Pod Security restricted " \
              f"(enforce={labels.get('pod-security.kubernetes.io/enforce')})"


@stack_rule("serving-namespace-default-deny",
            description="Every namespace with an InferenceService denies all traffic in and out unless allowed.",
            fix="Declare a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules in the "
                "namespace, then allow only what serving needs.")
def serving_namespace_default_deny(resources, config):
    denying = {(p.props.get("metadata") or {}).get("namespace") for p in of_type(resources, NETWORK_POLICY)
               if not ((p.props.get("spec") or {}).get("podSelector") or {})
               and set(as_list((p.props.get("spec") or {}).get("policyTypes"))) >= {"Ingress", "Egress"}
               and not (p.props.get("spec") or {}).get("ingress") and not (p.props.get("spec") or {}).get("egress")}
    for isvc in of_type(resources, INFERENCE_SERVICE):
        namespace = (isvc.props.get("metadata") or {}).get("namespace")
        if namespace not in denying:
            yield f"namespace {namespace} of {isvc.name} has no default-deny NetworkPolicy", isvc.urn


def _networks(values) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values if isinstance(v, str) and "/" in v]


@stack_rule("serving-only-through-gateway",
            description="Only the API gateway's path (VPC link -> NLB -> ALB) reaches the serving port: not the VPC, "
                        "not other pods.",
            fix="Admit the serving port only from the load-balancer subnets in the NetworkPolicy; give the ALB the "
                "PrivateLink's security group (Ingress annotation security-groups, no inbound-cidrs); give the NLB a "
                "security group without inbound rules and enforce_security_group_inbound_rules_on_private_link_"
                "traffic='off' (components/private_link.py).")
def serving_only_through_gateway(resources, config):
    # Where workloads get addresses: the cluster's subnets (nodes, and pods through the VPC CNI) and the VPCs.
    subnets = {s.urn: s for s in of_type(resources, "aws:ec2/subnet:Subnet")}
    workload_ranges = []
    for cluster in of_type(resources, "aws:eks/cluster:Cluster"):
        for subnet in cluster.property_dependencies.get("vpcConfig", []):
            if subnet.urn in subnets:
                workload_ranges += _networks([subnet.props.get("cidrBlock")])
    vpcs = _networks(v.props.get("cidrBlock") for v in of_type(resources, "aws:ec2/vpc:Vpc"))
    serving = {(i.props.get("metadata") or {}).get("namespace") for i in of_type(resources, INFERENCE_SERVICE)}
    for policy in of_type(resources, NETWORK_POLICY):
        if (policy.props.get("metadata") or {}).get("namespace") not in serving:
            continue
        for rule in as_list((policy.props.get("spec") or {}).get("ingress")):
            sources = as_list(rule.get("from"))
            if not sources:
                yield f"NetworkPolicy {policy.name} admits ports {[p.get('port') for p in as_list(rule.get('ports'))]}" \
                      " from anywhere", policy.urn
            for block in _networks((s.get("ipBlock") or {}).get("cidr") for s in sources):
                if any(block.overlaps(w) for w in workload_ranges) or any(
                        block.overlaps(v) and block.prefixlen <= v.prefixlen for v in vpcs):
                    yield f"NetworkPolicy {policy.name} admits {block}, where nodes and pods have addresses: " \
                          "anything in the VPC bypasses the gateway's auth, WAF and throttling", policy.urn
    for link in of_type(resources, "aws:apigateway/vpcLink:VpcLink"):
        for nlb in link.property_dependencies.get("targetArn", []):
            if nlb.props.get("enforceSecurityGroupInboundRulesOnPrivateLinkTraffic") != "off" or \
                    not as_list(nlb.props.get("securityGroups")):
                yield f"the VPC link's NLB {nlb.name} has no security group that turns away everything but " \
                      "PrivateLink traffic", nlb.urn
            for group in nlb.property_dependencies.get("securityGroups", []):
                inbound = as_list(group.props.get("ingress")) + [
                    r for r in of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                    if group in r.property_dependencies.get("securityGroupId", [])]
                if inbound:
                    yield f"the VPC link's NLB group {group.name} admits traffic from the VPC", group.urn
    # Last: the group's id is unknown at preview, and reading it makes the rest of this rule advisory.
    for ingress in of_type(resources, INGRESS):
        annotations = (ingress.props.get("metadata") or {}).get("annotations") or {}
        if "alb.ingress.kubernetes.io/inbound-cidrs" in annotations or \
                "alb.ingress.kubernetes.io/security-groups" not in annotations:
            yield f"Ingress {ingress.name} lets the controller open the ALB to CIDRs instead of giving it the " \
                  "PrivateLink's security group", ingress.urn


@resource_rule("eks-network-policies-enforced", types=["aws:eks/addon:Addon"],
               description="The VPC CNI enforces NetworkPolicy (without its agent every policy is ignored).",
               fix="Set the vpc-cni add-on's configuration_values to {\"enableNetworkPolicy\": \"true\"}.")
def eks_network_policies_enforced(props, config):
    if props.get("addonName") != "vpc-cni":
        return
    try:
        values = json.loads(props.get("configurationValues") or "{}")
    except json.JSONDecodeError:
        values = {}
    if str(values.get("enableNetworkPolicy")).lower() != "true":
        yield "the VPC CNI runs without its network policy agent: every NetworkPolicy is silently ignored"
