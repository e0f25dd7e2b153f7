"""SageMakerDeployment: one model served by SageMaker, with everything that keeps it healthy.

Reads top to bottom as what it owns: the alarms that guard it (declared first, because the endpoint's auto-rollback
lists them), the endpoint with its blue/green rollout, autoscaling, the authenticated API in front, and the drift
job when enabled. One of these per deployment is the whole SageMaker path; the program only fills the args.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    """SLO alarms; the rollback ones become the endpoint's auto-rollback alarms."""
    endpoint: SageMakerEndpointArgs
    """Models, variants, rollout; its `rollback_alarm_names` are filled from `alarms` here."""
    autoscaling: EndpointAutoscalingArgs
    """Scaling of the primary variant; its `endpoint_name` is taken from the endpoint, so scaling waits for it."""
    gateway: InferenceApiArgs
    """The API in front, invoking this endpoint directly."""
    drift: DriftMonitorArgs | None = None
    """The scheduled drift job over the endpoint's data capture; None: off."""
    component: InferenceComponentArgs | None = None
    """hosting: inference_components: the model as a component (then copies scale, not the variant)."""


class SageMakerDeployment(pulumi.ComponentResource):
    endpoint_name: pulumi.Output[str]
    api_url: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: SageMakerDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:serving:SageMakerDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, aliases=WAS_AT_ROOT)

        alarms = EndpointAlarms(name, args.alarms, opts=child)
        endpoint = SageMakerEndpoint(name, replace(args.endpoint, rollback_alarm_names=alarms.rollback_alarm_names),
                                     opts=child)
        component_name = None
        if args.component:
            InferenceComponent(name, replace(
                args.component, endpoint_name=endpoint.endpoint_name,
                model_name=endpoint.model_names[args.component.variant_name],
                rollback_alarm_names=alarms.rollback_alarm_names), opts=child)
            component_name = args.component.component_name
        else:
            EndpointAutoscaling(name, replace(args.autoscaling, endpoint_name=endpoint.endpoint_name), opts=child)
        api = InferenceApi(name, args.gateway, SageMakerBackend(endpoint.endpoint_name, endpoint.endpoint_arn,
                                                                component_name), opts=child)
        if args.drift:
            DriftMonitor(name, args.drift, opts=child)

        self.endpoint_name = endpoint.endpoint_name
        self.api_url = api.invoke_url
        self.alarm_names = alarms.alarm_names
        self.register_outputs({"endpoint_name": endpoint.endpoint_name, "api_url": api.invoke_url,
                               "alarm_names": alarms.alarm_names})
