"""Provenance: every resource says whose it is (ownership tags, on what AWS launches too), and every image is pinned
to what was reviewed."""

import json
import re
from collections.abc import Mapping

from ..framework import as_list, of_type, stack_rule
from .workloads import POD_KINDS, declared_containers


@stack_rule("required-tags", description="Every AWS resource carries the owner and cost-center tags, including what "
                                         "AWS creates for the stack's Kubernetes objects (Karpenter's and the node "
                                         "groups' instances and volumes, the controller's load balancers, volumes).",
            fix="Set mlserve:tags.owner and mlserve:tags.cost-center in the stack file; mlserve applies them to "
                "every resource through the AWS provider's default_tags, and passes them on to aws-native resources "
                "(tags), launch templates (tag_specifications for instances and volumes), Karpenter's EC2NodeClass "
                "(spec.tags), the load balancer controller (defaultTags) and EBS StorageClasses (tagSpecification_N).",
            schema={"required_tags": {"type": "array", "items": {"type": "string"},
                                      "default": ["owner", "cost-center"]}})
def required_tags(resources, config):
    """The AWS provider's default tags reach only what it creates itself. Judged too: each aws-native resource (its
    own tags or its provider's default tags), a launch template's instance and volume tags (what an EKS managed node
    group launches gets no provider tags), Karpenter's EC2NodeClass tags, the AWS load balancer controller's
    defaultTags and an EBS StorageClass's tagSpecification_N parameters."""
    required = config["required_tags"]

    def lacking(tags) -> list[str]:
        return [t for t in required if not (tags or {}).get(t)]

    providers = of_type(resources, "pulumi:providers:aws")
    if not providers:
        yield "no explicit AWS provider: resources would use the default provider, which sets no tags", None
    for provider in providers:
        missing = lacking(_default_tags(provider))
        if missing:
            yield f"provider {provider.name} default_tags lack {missing}", provider.urn
    native_defaults = {p.urn: _default_tags(p) for p in of_type(resources, "pulumi:providers:aws-native")}
    for resource in resources:
        if not resource.resource_type.startswith("aws-native:") or (
                "tags" not in resource.props and resource.resource_type not in NATIVE_TAGGED):
            continue
        own = resource.props.get("tags")
        tags = {t.get("key"): t.get("value") for t in as_list(own)} if not isinstance(own, Mapping) else dict(own)
        defaults = {k: v for d in native_defaults.values() for k, v in d.items()} if len(native_defaults) == 1 else {}
        missing = lacking({**defaults, **tags})
        if missing:
            yield f"{resource.name}'s tags lack {missing}", resource.urn
    for node_class in of_type(resources, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        missing = lacking((node_class.props.get("spec") or {}).get("tags"))
        if missing:
            yield f"the instances and volumes Karpenter launches for {node_class.name}: spec.tags lack {missing}", \
                node_class.urn
    for template in of_type(resources, "aws:ec2/launchTemplate:LaunchTemplate"):
        specs = {s.get("resourceType"): s.get("tags") for s in as_list(template.props.get("tagSpecifications"))}
        for resource_type in ("instance", "volume"):
            missing = lacking(specs.get(resource_type))
            if missing:
                yield f"launch template {template.name}: {resource_type} tags lack {missing}", template.urn
    for release in of_type(resources, "kubernetes:helm.sh/v3:Release"):
        if str(release.props.get("chart", "")).endswith("aws-load-balancer-controller"):
            missing = lacking((release.props.get("values") or {}).get("defaultTags"))
            if missing:
                yield f"the load balancers the controller creates: defaultTags lack {missing}", release.urn
    for storage in of_type(resources, "kubernetes:storage.k8s.io/v1:StorageClass"):
        if storage.props.get("provisioner") != "ebs.csi.aws.com":
            continue
        tags = dict(str(v).split("=", 1) for k, v in (storage.props.get("parameters") or {}).items()
                    if k.startswith("tagSpecification_") and "=" in str(v))
        missing = lacking(tags)
        if missing:
            yield f"the volumes StorageClass {storage.name} provisions: tagSpecification_N lack {missing}", storage.urn


# aws-native types whose tags mlserve sets (judged even when a hand edit drops `tags`).
NATIVE_TAGGED = ("aws-native:sagemaker:InferenceComponent",)


def _default_tags(provider) -> dict:
    raw = provider.props.get("defaultTags") or "{}"
    return (json.loads(raw) if isinstance(raw, str) else raw).get("tags") or {}


IMAGE = re.compile(r"^(?P<repo>[^@:]+(:\d+)?/[^@:]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


@stack_rule("images-pinned", description="Images (SageMaker models, every container of a Kubernetes workload) are "
                                         "pinned by digest, or by a tag in an immutable repository; never 'latest'.",
            fix="Set deployments[].image.digest, or an immutable version tag in an ECR repository with "
                "image_tag_mutability='IMMUTABLE'.")
def images_pinned(resources, config):
    immutable = {str(r.props.get("name")) for r in of_type(resources, "aws:ecr/repository:Repository")
                 if r.props.get("imageTagMutability") == "IMMUTABLE"}
    for owner, image in _serving_images(resources):
        match = IMAGE.match(image)
        if not match or (not match["tag"] and not match["digest"]):
            yield f"image {image!r} names no tag or digest", owner.urn
        elif match["digest"]:
            continue
        elif match["tag"] == "latest":
            yield f"image {image} uses 'latest'", owner.urn
        elif match["repo"].split("/", 1)[1] not in immutable:
            yield f"image {image} is pinned by a tag in a repository whose tags can move", owner.urn


def _serving_images(resources):
    """(resource, image) for SageMaker model containers and every container of a Kubernetes object that declares pods
    (serving runtimes, InferenceServices, Deployments such as the capture sink, Jobs, ...). A runtime's container
    must name its image; an InferenceService's model container may leave it to the runtime."""
    for model in of_type(resources, "aws:sagemaker/model:Model"):
        for container in as_list(model.props.get("primaryContainer")) + as_list(model.props.get("containers")):
            yield model, str(container.get("image") or "")
    for resource in of_type(resources, *POD_KINDS):
        kind = resource.props.get("kind")
        for container in declared_containers(kind, resource.props):
            if container.get("image") or kind in ("ServingRuntime", "ClusterServingRuntime"):
                yield resource, str(container.get("image") or "")


