"""The port the load balancer reaches a KServe predictor on is the port its traffic is admitted on, end to end.

KServe v0.20.0 points the predictor Service's first port at the pod's serving container, or at its injected agent
(9081) once the predictor has a logger (schemas/kserve/behaviour.yaml, read from the upstream source). The ALB
registers pod IPs on that target port, so two things in the plan must admit it, for every InferenceService:
- the NetworkPolicies that select its pods, from every address of the load-balancer subnets the ALB is placed in
  (the Ingress's `alb.ingress.kubernetes.io/subnets`), with Kubernetes' semantics (any selecting policy's rule);
- the egress of the ALB's security groups (the Ingress's `alb.ingress.kubernetes.io/security-groups`: inline rules and
  standalone egress rules), to every subnet the pods' nodes are placed in (the Karpenter NodePool or managed node group
  whose labels the predictor's nodeSelector names).
The rendered Service is tests/scan/manifests.py's: the same one the scan reads.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import yaml

from infra.config.loader import available_stacks, load_stack
from tests.harness import stack_plan
from tests.kubernetes.schemas import SCHEMAS
from tests.scan.manifests import BEHAVIOUR, Predictor, fact, predictors

CLUSTER_STACKS = [s for s in available_stacks() if load_stack(s).cluster is not None]
AGENT_PORT = fact("agent", "port")["containerPort"]


def _predictor(stack: str, isvc: str) -> Predictor:
    return next(p for p in predictors(stack_plan(stack)) if p.isvc == isvc)


def _cases() -> list[tuple[str, str]]:
    return [(stack, p.isvc) for stack in CLUSTER_STACKS for p in predictors(stack_plan(stack))]


def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def _within(inner: str, outer: str) -> bool:
    a, b = _net(inner), _net(outer)
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# --- where the load balancer is, where the pods are ------------------------------------------------------------------

def _ingresses(plan, namespace: str) -> list[dict]:
    return [r.inputs for r in plan.of_type("kubernetes:networking.k8s.io/v1:Ingress")
            if r.inputs["metadata"]["namespace"] == namespace]


def _subnets(plan, ids: list[str]) -> list[str]:
    by_id = {r.id: r for r in plan.of_type("aws:ec2/subnet:Subnet")}
    missing = [i for i in ids if i not in by_id]
    assert not missing, f"subnets not declared in the plan: {missing}"
    return [by_id[i].inputs["cidrBlock"] for i in ids]


def _annotation_list(ingress: dict, key: str) -> list[str]:
    value = ingress["metadata"].get("annotations", {}).get(f"alb.ingress.kubernetes.io/{key}", "")
    return [v.strip() for v in value.split(",") if v.strip()]


def load_balancer_cidrs(plan, namespace: str) -> list[str]:
    ingresses = _ingresses(plan, namespace)
    assert ingresses, f"no Ingress in {namespace}: nothing puts an ALB in front of its predictors"
    cidrs = []
    for ingress in ingresses:
        ids = _annotation_list(ingress, "subnets")
        assert ids, f"{namespace}: the Ingress names no subnets (auto-discovery is not modelled here)"
        cidrs += _subnets(plan, ids)
    return sorted(set(cidrs))


def _matches(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
                "Exists": present, "DoesNotExist": not present}[operator]:
            return False
    return True


def pod_cidrs(plan, node_selector: dict) -> list[str]:
    """The subnets of the nodes a pod with this nodeSelector can land on (VPC CNI: pod IPs come from them)."""
    cidrs: list[str] = []
    for group in plan.of_type("aws:eks/nodeGroup:NodeGroup"):
        if _matches({"matchLabels": node_selector}, group.inputs.get("labels") or {}):
            cidrs += _subnets(plan, group.inputs["subnetIds"])
    classes = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.resources
               if r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"}
    for pool in (r.inputs["spec"] for r in plan.resources if r.type == "kubernetes:karpenter.sh/v1:NodePool"):
        if not _matches({"matchLabels": node_selector}, pool["template"].get("metadata", {}).get("labels", {})):
            continue
        for term in classes[pool["template"]["spec"]["nodeClassRef"]["name"]]["subnetSelectorTerms"]:
            for subnet in plan.of_type("aws:ec2/subnet:Subnet"):
                tags = subnet.inputs.get("tags") or {}
                if ("id" in term and term["id"] == subnet.id) or \
                        ("tags" in term and all(tags.get(k) == v for k, v in term["tags"].items())):
                    cidrs.append(subnet.inputs["cidrBlock"])
    assert cidrs, f"no node group or NodePool matches the nodeSelector {node_selector}"
    return sorted(set(cidrs))


# --- what a NetworkPolicy admits ---------------------------------------------------------------------------------------

def _port_matches(entry: dict, port: int, protocol: str, named: dict[str, int]) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    given = _int(entry.get("port"))
    if given is None:
        return True
    if isinstance(given, str):
        return named.get(given) == port
    end = _int(entry.get("endPort", given))
    return given <= port <= end


def _peer_admits(peer: dict, cidr: str) -> bool:
    block = peer.get("ipBlock")
    if not block:
        return False  # pod and namespace selectors match pods, never the ALB's addresses
    return _within(cidr, block["cidr"]) and not any(_net(cidr).overlaps(_net(e)) for e in block.get("except", []))


def network_policy_admits(plan, namespace: str, pod: dict, cidr: str, port: int, protocol: str = "TCP") -> bool:
    labels = pod["metadata"]["labels"]
    named = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])
             if p.get("name")}
    selecting = [r.inputs["spec"] for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                 if r.inputs["metadata"]["namespace"] == namespace and _matches(r.inputs["spec"]["podSelector"], labels)
                 and "Ingress" in r.inputs["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    return any((not rule.get("from") or any(_peer_admits(peer, cidr) for peer in rule["from"]))
               and (not rule.get("ports") or any(_port_matches(e, port, protocol, named) for e in rule["ports"]))
               for spec in selecting for rule in spec.get("ingress", []))


def network_policy_ports(plan, namespace: str, pod: dict, cidr: str) -> list[int]:
    """For the failure message: the ports among the pod's and the policies' that are admitted from `cidr`."""
    candidates = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    candidates |= {_int(e["port"]) for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                   for rule in r.inputs["spec"].get("ingress", []) for e in rule.get("ports", [])
                   if isinstance(_int(e.get("port")), int)}
    return sorted(p for p in candidates if network_policy_admits(plan, namespace, pod, cidr, p))


# --- what the ALB's security groups let out ----------------------------------------------------------------------------

def _egress_rules(plan, group_id: str) -> list[dict]:
    """(protocol, from, to, cidrs) of every egress rule of a security group: inline and standalone."""
    rules = []
    for group in plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        if group.id == group_id:
            rules += [{"protocol": e["protocol"], "from": e.get("fromPort"), "to": e.get("toPort"),
                       "cidrs": [*(e.get("cidrBlocks") or []), *(e.get("ipv6CidrBlocks") or [])]}
                      for e in group.inputs.get("egress") or []]
    for rule in plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"):
        if rule.inputs["securityGroupId"] == group_id:
            rules.append({"protocol": rule.inputs["ipProtocol"], "from": rule.inputs.get("fromPort"),
                          "to": rule.inputs.get("toPort"),
                          "cidrs": [c for c in (rule.inputs.get("cidrIpv4"), rule.inputs.get("cidrIpv6")) if c]})
    for rule in plan.of_type("aws:ec2/securityGroupRule:SecurityGroupRule"):
        if rule.inputs["securityGroupId"] == group_id and rule.inputs["type"] == "egress":
            rules.append({"protocol": rule.inputs["protocol"], "from": rule.inputs.get("fromPort"),
                          "to": rule.inputs.get("toPort"), "cidrs": rule.inputs.get("cidrBlocks") or []})
    return rules


def _rule_allows(rule: dict, cidr: str, port: int) -> bool:
    protocol = str(rule["protocol"]).lower()
    if protocol in ("-1", "all"):
        ports_ok = True
    elif protocol in ("tcp", "6"):
        ports_ok = _int(rule["from"]) <= port <= _int(rule["to"])
    else:
        return False
    return ports_ok and any(_within(cidr, c) for c in rule["cidrs"])


def alb_security_groups(plan, namespace: str) -> list[str]:
    groups = [g for ingress in _ingresses(plan, namespace) for g in _annotation_list(ingress, "security-groups")]
    declared = {r.id for r in plan.of_type("aws:ec2/securityGroup:SecurityGroup")}
    assert groups and set(groups) <= declared, f"{namespace}: the ALB's security groups are not the plan's: {groups}"
    return groups


def egress_allows(plan, groups: list[str], cidr: str, port: int) -> bool:
    return any(_rule_allows(rule, cidr, port) for group in groups for rule in _egress_rules(plan, group))


def egress_ports(plan, groups: list[str], cidr: str) -> list[str]:
    return sorted({f"{_int(r['from'])}-{_int(r['to'])}" if r["from"] != r["to"] else str(_int(r["from"]))
                   for g in groups for r in _egress_rules(plan, g) if any(_within(cidr, c) for c in r["cidrs"])})


# --- the tests -----------------------------------------------------------------------------------------------------

def test_the_kserve_facts_are_the_pinned_release_s():
    releases = yaml.safe_load((SCHEMAS / "versions.yaml").read_text())
    assert BEHAVIOUR["upstream"]["tag"] == releases["kserve"]
    assert releases["kserve"].lstrip("v") in (SCHEMAS / "README.md").read_text()
    assert "kserve/behaviour.yaml" in (SCHEMAS / "README.md").read_text()
    assert AGENT_PORT == fact("service", "target_port_with_logger") == 9081


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_the_predictor_service_targets_the_agent_when_logged_and_the_serving_container_otherwise(stack):
    rendered = predictors(stack_plan(stack))
    assert any(p.logger for p in rendered), f"{stack}: no logged predictor: the agent case is untested"
    for p in rendered:
        first = p.service["spec"]["ports"][0]
        assert (p.service["metadata"]["name"], first["port"]) == (f"{p.isvc}-predictor", 80)
        serving = next(c for c in p.deployment["spec"]["template"]["spec"]["containers"]
                       if c["name"] == "kserve-container")
        expected = AGENT_PORT if p.logger else serving["ports"][0]["containerPort"]
        assert first["targetPort"] == expected, p.isvc
        # The Service's target is a port a container of the pod listens on.
        listening = {port["containerPort"] for c in p.deployment["spec"]["template"]["spec"]["containers"]
                     for port in c.get("ports", [])}
        assert first["targetPort"] in listening


def test_the_stable_reranker_is_logged_and_its_service_targets_the_agent_port():
    stable = _predictor("prod", "reranker")
    assert stable.logger
    assert stable.service["spec"]["ports"][0]["targetPort"] == AGENT_PORT
    agent = next(c for c in stable.deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "agent")
    assert agent["ports"] == [fact("agent", "port")]
    assert agent["args"][agent["args"].index("--component-port") + 1] == "8080"


@pytest.mark.parametrize(("stack", "isvc"), _cases(), ids=lambda v: v)
def test_the_load_balancer_s_path_admits_the_port_the_predictor_service_targets(stack, isvc):
    plan = stack_plan(stack)
    p = _predictor(stack, isvc)
    port = p.service["spec"]["ports"][0]["targetPort"]
    pod = p.deployment["spec"]["template"]
    problems = []
    for cidr in load_balancer_cidrs(plan, p.namespace):
        if not network_policy_admits(plan, p.namespace, pod, cidr, port):
            problems.append(f"NetworkPolicy in {p.namespace} admits from the load-balancer subnet {cidr} only ports "
                            f"{network_policy_ports(plan, p.namespace, pod, cidr)}, not the Service's targetPort {port}")
    groups = alb_security_groups(plan, p.namespace)
    for cidr in pod_cidrs(plan, pod["spec"].get("nodeSelector", {})):
        if not egress_allows(plan, groups, cidr, port):
            problems.append(f"ALB security group(s) {groups} egress to the pods' subnet {cidr} allows only ports "
                            f"{egress_ports(plan, groups, cidr)}, not the Service's targetPort {port}")
    assert not problems, "\n".join([f"{isvc}-predictor targets port {port}" + (
        f" (KServe's agent: {isvc} has a logger):" if p.logger else ":"), *problems])


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_the_port_checks_can_refuse(stack):
    """Not vacuous: the metrics port is admitted only from the monitoring namespace, never from the load balancer, and
    the ALB may not send SSH to the pods."""
    plan = stack_plan(stack)
    for p in predictors(plan):
        pod = p.deployment["spec"]["template"]
        metrics = int(pod["metadata"]["annotations"]["prometheus.kserve.io/port"])
        assert not any(network_policy_admits(plan, p.namespace, pod, cidr, metrics)
                       for cidr in load_balancer_cidrs(plan, p.namespace))
        groups = alb_security_groups(plan, p.namespace)
        assert not any(egress_allows(plan, groups, cidr, 22) for cidr in pod_cidrs(plan, pod["spec"]["nodeSelector"]))
