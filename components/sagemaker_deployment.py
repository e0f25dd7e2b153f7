"""SageMakerDeployment: one model served by SageMaker, with everything that keeps it healthy.

Reads top to bottom as what it owns: the alarms that guard it (declared first, because the endpoint's auto-rollback
lists them), the endpoint with its rollout and autoscaling, or, with inference components, the model as a component
on a host endpoint (its own or one shared with other deployments), the authenticated API in front, and the drift job
when enabled. One of these per deployment is the whole SageMaker path; the program only fills the args.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .drift_monitor import DriftMonitor, DriftMonitorArgs
from .endpoint_alarms import EndpointAlarms, EndpointAlarmsArgs
from .endpoint_autoscaling import EndpointAutoscaling, EndpointAutoscalingArgs
from .inference_api import InferenceApi, InferenceApiArgs, SageMakerBackend
from .inference_component import InferenceComponent, InferenceComponentArgs
from .sagemaker_endpoint import SageMakerEndpoint, SageMakerEndpointArgs

# The children existed at the stack's root before this component did: the alias keeps their URNs (no replacement).
WAS_AT_ROOT = [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]


@dataclass(frozen=True)
class SageMakerDeploymentArgs:
    alarms: EndpointAlarmsArgs
    """SLO alarms; the rollback ones become the endpoint's (or the component's) auto-rollback alarms."""
    gateway: InferenceApiArgs
    """The API in front, invoking the endpoint (and naming the component) directly."""
    endpoint: SageMakerEndpointArgs | None = None
    """hosting: endpoint: models, variants, rollout (rolled back by the alarms made here from `alarms`)."""
    autoscaling: EndpointAutoscalingArgs | None = None
    """hosting: endpoint: scaling of the primary variant of the endpoint made here."""
    inference_component: InferenceComponentArgs | None = None
    """hosting: inference_components: the model as a component on `inference_component.host` (then copies scale)."""
    drift: DriftMonitorArgs | None = None
    """The scheduled drift job over the endpoint's data capture; None: off."""


class SageMakerDeployment(pulumi.ComponentResource):
    endpoint_name: pulumi.Output[str]
    api_url: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: SageMakerDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:serving:SageMakerDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, aliases=WAS_AT_ROOT)

        alarms = EndpointAlarms(name, args.alarms, opts=child)
        if args.inference_component:
            InferenceComponent(name, args.inference_component, opts=child,
                               rollback_alarm_names=alarms.rollback_alarm_names)
            endpoint: SageMakerEndpoint = args.inference_component.host
            inference_component_name: str | None = args.inference_component.inference_component_name
        elif args.endpoint and args.autoscaling:
            endpoint = SageMakerEndpoint(name, args.endpoint, opts=child, rollback_alarm_names=alarms.rollback_alarm_names)
            EndpointAutoscaling(name, args.autoscaling, endpoint.endpoint_name, opts=child)
            inference_component_name = None
        else:
            raise ValueError(f"{name}: give either inference_component, or endpoint and autoscaling")
        api = InferenceApi(name, args.gateway, SageMakerBackend(endpoint.endpoint_name, endpoint.endpoint_arn,
                                                                inference_component_name), opts=child)
        if args.drift:
            DriftMonitor(name, args.drift, opts=child)

        self.endpoint_name = endpoint.endpoint_name
        self.api_url = api.invoke_url
        self.api_key_ids, self.api_key_values = api.api_keys, api.api_key_values
        self.alarm_names = alarms.alarm_names
        self.register_outputs({"endpoint_name": endpoint.endpoint_name, "api_url": api.invoke_url,
                               "alarm_names": alarms.alarm_names})
