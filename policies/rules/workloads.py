"""Serving workloads: Pod Security `restricted`, namespaces that deny by default, and one way in (the gateway)."""

import ipaddress
import json
from collections.abc import Mapping

from components.names import DEPLOYMENT_LABEL

from ..framework import as_list, of_type, resource_rule, stack_rule

INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
HOST_FIELDS = ("hostNetwork", "hostPID", "hostIPC")


# Every kind that declares pods, and where its pod spec is. A KServe InferenceService runs one pod per component
# (predictor, transformer, explainer); a ServingRuntime is the container template its predictor pods inherit.
WORKLOAD_KINDS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
RUN_TO_COMPLETION = {"kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"}
CLUSTER_SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime"
RUNTIMES = (SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME)
POD_KINDS = (*WORKLOAD_KINDS, INFERENCE_SERVICE, *RUNTIMES)
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")
# The container a component runs: `model`, or one of the framework shorthands KServe still accepts.
MODEL_KEYS = ("model", "triton", "tensorflow", "pytorch", "sklearn", "xgboost", "onnx", "pmml", "lightgbm", "paddle",
              "huggingface", "art")
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _dig(props, path):
    for key in path:
        props = (props or {}).get(key)
    return props


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


def _pod_weaknesses(pod_name: str, pod, containers, *, pod_context=True, token=True, liveness=()):
    """Pod Security `restricted` (and our additions) for one pod: `containers` are (where, container) pairs, init
    containers included; `liveness` the pairs that must carry a livenessProbe. runAsNonRoot and the seccomp profile
    hold where the pod sets them and no container overrides them, or where each container sets them (what the
    admission controller accepts); a template without a pod securityContext (`pod_context=False`: a ServingRuntime)
    must carry them on each container."""
    pod = pod or {}
    context = (pod.get("securityContext") or {}) if pod_context else {}
    contexts = [(where, c.get("securityContext") or {}) for where, c in containers]
    rootable = [w for w, own in contexts if own.get("runAsNonRoot", context.get("runAsNonRoot")) is not True]
    if rootable:
        yield f"{pod_name} may run as root (securityContext.runAsNonRoot is not true for {', '.join(rootable)})"
    unconfined = [w for w, own in contexts
                  if (own.get("seccompProfile") or context.get("seccompProfile") or {}).get("type") not in SECCOMP_TYPES]
    if unconfined:
        yield f"{pod_name} has no RuntimeDefault seccomp profile for {', '.join(unconfined)}"
    uid0 = [w for w, own in contexts if own.get("runAsUser", context.get("runAsUser")) == 0]
    if uid0:
        yield f"{pod_name} runs as uid 0 in {', '.join(uid0)}"
    if token and pod.get("automountServiceAccountToken") is not False:
        yield f"{pod_name} mounts a Kubernetes API token it never uses (IRSA brings its own AWS token)"
    for field in HOST_FIELDS:
        if pod.get(field):
            yield f"{pod_name} shares the node's namespace ({field})"
    for volume in as_list(pod.get("volumes")):
        if "hostPath" in volume:
            yield f"volume {volume.get('name')} of {pod_name} mounts a path of the node (hostPath)"
    for where, own in contexts:
        for weakness in _container_weaknesses(where, own):
            yield f"{weakness} ({pod_name})"
    for where, container in liveness:
        if not container.get("livenessProbe"):
            yield f"{where} of {pod_name} has no livenessProbe: a hung server leaves rotation but is never restarted"


def declared_containers(kind, props):
    """Every container a Kubernetes object of mlserve declares (init containers, KServe components and workers, a
    runtime's template included), for rules about containers rather than pods."""
    spec = props.get("spec") or {}
    if kind in ("ServingRuntime", "ClusterServingRuntime"):
        pods = [spec, spec.get("workerSpec")]
    elif kind == "InferenceService":
        pods = [p for component in KSERVE_COMPONENTS for p in (spec.get(component), (spec.get(component) or {}).get(
            "workerSpec"))]
        for component in KSERVE_COMPONENTS:
            pod = spec.get(component) or {}
            yield from (pod[key] for key in MODEL_KEYS if isinstance(pod.get(key), Mapping))
    else:
        type_token = next((t for t in WORKLOAD_KINDS if t.rsplit(":", 1)[1] == kind), None)
        pods = [_dig(props, WORKLOAD_KINDS[type_token])] if type_token else []
    for pod in pods:
        for field in ("initContainers", "containers"):
            yield from as_list((pod or {}).get(field))


def _containers(pod, *, main="container", init="init container"):
    return ([(f"{main} {c.get('name')}", c) for c in as_list((pod or {}).get("containers"))],
            [(f"{init} {c.get('name')}", c) for c in as_list((pod or {}).get("initContainers"))])


@resource_rule("serving-pods-restricted", types=list(POD_KINDS),
               description="Every pod mlserve declares (InferenceService components, ServingRuntimes, Deployments, "
                           "StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods) meets Pod Security "
                           "`restricted`, carries no API token and restarts when hung.",
               fix="In the pod: securityContext {runAsNonRoot: true, seccompProfile: RuntimeDefault}, "
                   "automountServiceAccountToken: false, no host namespaces or hostPath volumes; in each container: "
                   "allowPrivilegeEscalation: false, capabilities.drop [ALL], readOnlyRootFilesystem: true "
                   "(emptyDir for /tmp), and a livenessProbe (long-running pods); a ServingRuntime's containers carry "
                   "runAsNonRoot and the seccomp profile themselves (components/kserve_service.py and "
                   "components/capture_sink.py do all of it).")
def serving_pods_restricted(props, config):
    """Judges each kind that declares pods, by its `kind` (pulumi-kubernetes always sends it). Pods that only Helm
    releases declare are the charts' own (policies/README.md). A Job's or CronJob's pods run to completion: no
    livenessProbe. A ServingRuntime is judged for what every predictor pod inherits from it: it has no pod
    securityContext, and its container's values win over the pod's when KServe merges it into a predictor."""
    kind = props.get("kind")
    spec = props.get("spec") or {}
    name = (props.get("metadata") or {}).get("name")
    if kind in ("ServingRuntime", "ClusterServingRuntime"):  # no pod securityContext of its own
        for pod_name, pod in ((f"runtime {name}", spec), (f"the workers of runtime {name}", spec.get("workerSpec"))):
            if pod is None:
                continue
            main, init = _containers(pod, main="runtime container" if pod is spec else "worker container")
            yield from _pod_weaknesses(pod_name, pod, main + init, pod_context=False, token=False)
        return
    if kind == "InferenceService":
        for component in KSERVE_COMPONENTS:
            pod = spec.get(component)
            if pod is None:
                continue
            main = [(f"the {'model' if key == 'model' else key} container", pod[key]) for key in MODEL_KEYS
                    if isinstance(pod.get(key), Mapping)]
            extra, init = _containers(pod)
            pod_name = f"the {component} pod"
            yield from _pod_weaknesses(pod_name, pod, main + extra + init, liveness=main + extra)
            worker = pod.get("workerSpec")
            if worker is not None:  # multi-node serving: the worker pods, declared beside the head's
                main, init = _containers(worker, main="worker container")
                yield from _pod_weaknesses(f"the {component}'s worker pods", worker, main + init, liveness=main)
        return
    type_token = next((t for t in WORKLOAD_KINDS if t.rsplit(":", 1)[1] == kind), None)
    if type_token is not None:
        pod = _dig(props, WORKLOAD_KINDS[type_token])
        main, init = _containers(pod)
        yield from _pod_weaknesses(f"{kind} {name}", pod, main + init,
                                   liveness=[] if type_token in RUN_TO_COMPLETION else main)


@resource_rule("serving-namespace-restricted", types=[NAMESPACE],
               description="Namespaces of serving workloads enforce Pod Security `restricted`.",
               fix="Label the namespace pod-security.kubernetes.io/enforce=restricted.")
def serving_namespace_restricted(props, config):
    labels = (props.get("metadata") or {}).get("labels") or {}
    if labels.get(DEPLOYMENT_LABEL) and labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        yield f"namespace {props['metadata'].get('name')} does not enforce Pod Security restricted " \
              f"(enforce={labels.get('pod-security.kubernetes.io/enforce')})"


@stack_rule("serving-namespace-default-deny",
            description="Every namespace with an InferenceService or another workload mlserve declares (the capture "
                        "sink's Deployment, ...) denies all traffic in and out unless allowed.",
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
    for workload in of_type(resources, *WORKLOAD_KINDS):
        metadata = workload.props.get("metadata") or {}
        if metadata.get("namespace") not in denying:
            yield f"namespace {metadata.get('namespace')} of {workload.props.get('kind')} {metadata.get('name')} " \
                  "has no default-deny NetworkPolicy", workload.urn


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
