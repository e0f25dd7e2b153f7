"""Whatever AWS creates on the stack's behalf carries the stack tag, so the budget (a cost filter on that tag) and
cost allocation see it. The provider's default tags reach only what Pulumi creates itself; instances a node group
or Karpenter launches, load balancers the controller makes and volumes the CSI driver provisions are tagged only if
the resource that makes them passes the tags on."""

import pytest
import yaml

from components.names import STACK_TAG
from tests.harness import stack_plan
from tests.kubernetes.schemas import SCHEMAS

SPAWNERS = {
    "aws:ec2/launchTemplate:LaunchTemplate": "instances, volumes and interfaces a node group launches",
    "aws:eks/nodeGroup:NodeGroup": "instances (through its launch template)",
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": "instances and volumes Karpenter launches",
    "kubernetes:networking.k8s.io/v1:Ingress": "the ALB, target groups and security groups of the controller",
    "kubernetes:storage.k8s.io/v1:StorageClass": "EBS volumes the CSI driver provisions",
    "kubernetes:core/v1:PersistentVolumeClaim": "an EBS volume",
    "kubernetes:helm.sh/v3:Release": "whatever the chart's controllers create (load balancers, volumes)",
}
"""Every kind in the plans through which AWS creates billable resources, each judged above; the guard below refuses
the kinds that would launch more (an instance, an Auto Scaling group, a LoadBalancer Service) unjudged."""


def tag_pairs(tags) -> dict:
    if isinstance(tags, list):  # [{key, value}] or ["k=v"]
        return {t["key"]: t["value"] for t in tags} if tags and isinstance(tags[0], dict) else \
            dict(t.split("=", 1) for t in tags)
    return dict(tags or {})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_everything_aws_launches_for_the_stack_carries_its_tag(stack):
    plan = stack_plan(stack)
    templates = {r.urn: r for r in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    for template in templates.values():
        specs = {s["resourceType"]: s["tags"] for s in template.inputs.get("tagSpecifications", [])}
        assert {"instance", "volume", "network-interface"} <= set(specs), template.name
        assert all(tags.get(STACK_TAG) == stack for tags in specs.values()), template.name
    for group in plan.of_type("aws:eks/nodeGroup:NodeGroup"):  # managed node groups keep their own tags to themselves
        assert group.property_dependencies.get("launchTemplate", [None])[0] in templates, group.name
    for node_class in plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert tag_pairs(node_class.inputs["spec"]["tags"]).get(STACK_TAG) == stack
    releases = {r.inputs["name"]: r.inputs for r in plan.of_type("kubernetes:helm.sh/v3:Release")}
    if plan.of_type("kubernetes:networking.k8s.io/v1:Ingress"):
        values = releases["aws-load-balancer-controller"]["values"]
        assert values["defaultTags"].get(STACK_TAG) == stack
    classes = {c.inputs["metadata"]["name"]: c.inputs for c in plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    for storage_class in classes.values():
        tags = dict(v.split("=", 1) for k, v in storage_class["parameters"].items() if k.startswith("tagSpecification"))
        assert tags.get(STACK_TAG) == stack
        assert storage_class["parameters"]["encrypted"] == "true"


CHART_VOLUMES = yaml.safe_load((SCHEMAS / "charts" / "volumes.yaml").read_text())["charts"]


def chart_claims(chart: str, values: dict) -> list[tuple[str, str, dict]]:
    """The persistent volumes a pinned chart makes with these values (schemas/charts/volumes.yaml, read at the
    chart's tag): (values key, its class key, its settings) for each one turned on, by the values or by default."""
    claims = []
    for volume in CHART_VOLUMES[chart]["volumes"]:
        settings: object = values
        for key in volume["values"].split("."):
            settings = settings.get(key, {}) if isinstance(settings, dict) else {}
        assert isinstance(settings, dict)
        if settings.get("enabled", volume["enabled_by_default"]):
            claims.append((volume["values"], volume["storage_class_key"], settings))
    return claims


def chart_of(release: dict) -> str:
    return str(release["chart"]).rsplit("/", 1)[-1]  # oci://ghcr.io/kserve/charts/kserve-crd -> kserve-crd


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_chart_the_plans_install_has_its_volumes_read_at_the_same_version(stack):
    """A chart whose claims nobody read (a new chart, or a bumped one) could make one that stays Pending on EKS."""
    for release in stack_plan(stack).of_type("kubernetes:helm.sh/v3:Release"):
        chart = chart_of(release.inputs)
        assert chart in CHART_VOLUMES, f"{chart}: read its templates at the pin and add it to schemas/charts/volumes.yaml"
        assert CHART_VOLUMES[chart]["version"] == release.inputs["version"], \
            f"{chart} is pinned at {release.inputs['version']}: re-read its claims at that tag"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_volume_a_chart_makes_names_the_stacks_encrypted_class_and_its_size(stack):
    """A claim that names no StorageClass stays Pending on EKS (none is default on clusters created at Kubernetes
    1.30 or later; an upgraded one gives it unencrypted gp2), and its pod with it: the chart's own defaults make such
    claims (alertmanager's 2Gi). Named, it is encrypted with the stack key and tagged, and its size is in the plan
    for the cost estimate."""
    plan = stack_plan(stack)
    classes = {c.inputs["metadata"]["name"] for c in plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    releases = plan.of_type("kubernetes:helm.sh/v3:Release")
    if not releases:
        pytest.skip(f"{stack} runs no cluster")
    claims = [(chart_of(r.inputs), *claim) for r in releases for claim in chart_claims(chart_of(r.inputs),
                                                                                       r.inputs["values"])]
    assert claims  # prometheus' two: the check is not vacuous
    for chart, key, class_key, settings in claims:
        assert settings.get(class_key) in classes, f"{chart} {key}: the claim names no class of the stack's"
        assert settings.get("size"), f"{chart} {key}: the size is the chart's default, which the plan does not show"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_other_kind_of_the_plans_launches_billable_resources_unjudged(stack):
    plan = stack_plan(stack)
    kinds = {r.type for r in plan.resources if r.custom}
    services = [r for r in plan.of_type("kubernetes:core/v1:Service")
                if (r.inputs.get("spec") or {}).get("type") == "LoadBalancer"]
    assert services == []  # a LoadBalancer Service would make an untagged NLB through the controller's other path
    assert not kinds & {"aws:autoscaling/group:Group", "aws:ec2/instance:Instance", "aws:ec2/spotFleetRequest:"
                        "SpotFleetRequest", "aws:ec2/fleet:Fleet"}
