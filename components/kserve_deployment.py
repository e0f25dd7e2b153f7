"""KServeDeployment: one model on the EKS cluster, reachable only through its authenticated API.

Reads top to bottom as what it owns: the capture sink when request capture is on, the KServe service
(InferenceServices, autoscaling, the ALB with the canary split), the PrivateLink that puts an NLB in front of that
ALB for API Gateway's VPC link, the API itself, and the drift job when enabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from .capture_sink import CaptureSink, CaptureSinkArgs
from .drift_monitor import DriftMonitor, DriftMonitorArgs
from .inference_api import InferenceApi, InferenceApiArgs, PrivateHttpBackend
from .kserve_service import KServeModelSpec, KServeService, KServeServiceArgs, target_ports
from .private_link import PrivateLink, PrivateLinkArgs

# The children existed at the stack's root before this component did: the alias keeps their URNs (no replacement).
WAS_AT_ROOT = [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]


@dataclass(frozen=True)
class KServeDeploymentArgs:
    service: KServeModelSpec
    """The model on the cluster: runtime, InferenceService(s), KEDA scaling, ALB Ingress with the canary split."""
    vpc_id: pulumi.Input[str]
    load_balancer_subnet_ids: Sequence[pulumi.Input[str]]
    """Where the NLB of the VPC link and the ALB go (named like the service's namespace, at most 32 characters)."""
    backend_cidrs: Sequence[str]
    """The private subnets, where the serving pods' addresses are."""
    deletion_protection: bool
    """Prod: the load balancers cannot be deleted until this is turned off."""
    gateway: InferenceApiArgs
    """The API in front, reaching the cluster through the VPC link."""
    base_url: str | None
    """`https://<deployment>.<ingress domain>`: the host TLS is verified against; None: plain HTTP to the NLB."""
    after: Sequence[pulumi.Resource] = ()
    """What the service needs running first: the cluster add-ons whose CRDs and webhooks it uses."""
    capture: CaptureSinkArgs | None = None
    """Request capture: the sink KServe's logger posts the production track's traffic to; None: off."""
    drift: DriftMonitorArgs | None = None
    """The scheduled drift job over the captures, as for SageMaker; None: off."""


class KServeDeployment(pulumi.ComponentResource):
    api_url: pulumi.Output[str]

    def __init__(self, name: str, args: KServeDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:serving:KServeDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, aliases=WAS_AT_ROOT)

        capture_url = None
        if args.capture:
            capture_url = CaptureSink(name, args.capture, opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(args.after)))).url
        link = PrivateLink(name, PrivateLinkArgs(
            name=args.service.namespace, vpc_id=args.vpc_id, subnet_ids=args.load_balancer_subnet_ids,
            backend_cidrs=args.backend_cidrs, port=443 if args.service.certificate_arn else 80,
            target_ports=target_ports(args.service, capture=args.capture is not None),
            deletion_protection=args.deletion_protection), opts=child)
        service = KServeService(name, KServeServiceArgs(
            spec=args.service, alb_security_group_id=link.alb_security_group_id,
            alb_subnet_ids=args.load_balancer_subnet_ids, deletion_protection=args.deletion_protection,
            capture_url=capture_url),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=list(args.after))))
        link.attach(service.alb_arn)
        base_url = args.base_url or pulumi.Output.concat("http://", link.nlb_dns_name)
        api = InferenceApi(name, args.gateway, PrivateHttpBackend(link.vpc_link_id, base_url), opts=child)
        if args.drift:
            DriftMonitor(name, args.drift, opts=child)

        self.api_url = api.invoke_url
        self.api_key_ids, self.api_key_values = api.api_keys, api.api_key_values
        self.register_outputs({"api_url": api.invoke_url})
