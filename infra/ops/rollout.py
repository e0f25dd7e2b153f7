"""rollout status|promote|rollback for SageMaker endpoints (and status for inference components).

`pulumi up` starts a blue/green deployment that SageMaker itself bakes and rolls back on the stack's alarms. Weighted
variants (A/B, `ab_variants` in config) are shifted here instead: `promote` moves traffic to a variant in steps, bakes
each step while watching the same guarding alarms, and at the first alarm in ALARM puts every weight back where it
started. `rollback` sends all traffic to one variant at once, or, for a single-variant endpoint, returns it to its
previous endpoint configuration.

Weights are only ever changed with UpdateEndpointWeightsAndCapacities without instance counts: the counts stay
what autoscaling set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from components.names import GUARD_ALARM_ROLES, alarm_name

from .bake import bake
from .clients import Clients
from .report import OpsError


def guard_alarm_names(endpoint: str) -> list[str]:
    """The alarms that guard a rollout: the endpoint's auto-rollback alarms and their composite (EndpointAlarms)."""
    return [alarm_name(endpoint, role) for role in GUARD_ALARM_ROLES]


@dataclass(frozen=True)
class VariantState:
    name: str
    current_weight: float | None
    desired_weight: float | None
    current_instances: int | None
    desired_instances: int | None


@dataclass(frozen=True)
class EndpointState:
    name: str
    status: str
    config_name: str
    variants: list[VariantState]
    deployment: str  # the blue/green state: what is in progress, or the last deployment's outcome
    async_output: str | None = None  # mode: async: where results go, and how many requests an instance takes

    def weights(self) -> dict[str, float]:
        return {v.name: float(v.current_weight or 0.0) for v in self.variants}


def update_policy(config: dict) -> str:
    """The deployment policy an endpoint's updates run with (DescribeEndpoint's LastDeploymentConfig): an update
    with a RollingUpdatePolicy replaces the fleet batch by batch, not blue/green."""
    rolling = config.get("RollingUpdatePolicy")
    if rolling:
        batch = rolling.get("MaximumBatchSize", {})
        return (f"rolling, {batch.get('Value')} {batch.get('Type', '').lower().replace('_', ' ')} per batch, "
                f"{rolling.get('WaitIntervalInSeconds', 0)} s bake")
    blue_green = config.get("BlueGreenUpdatePolicy")
    if blue_green:
        return f"blue/green {blue_green.get('TrafficRoutingConfiguration', {}).get('Type', 'none')}"
    return ""


def describe(clients: Clients, endpoint: str) -> EndpointState:
    try:
        raw = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        raise OpsError(f"endpoint {endpoint}: {error.response['Error'].get('Message', error)} "
                       f"(has `pulumi up` created it in this account and region?)") from None
    pending = raw.get("PendingDeploymentSummary")
    policy = update_policy(raw.get("LastDeploymentConfig", {}))
    if pending:
        stages = ", ".join(f"{v['VariantName']}: {v.get('VariantStatus', [{}])[-1].get('Status', '?')}"
                           for v in pending.get("ProductionVariants", []))
        kind = "rolling update" if policy.startswith("rolling") else "blue/green"
        deployment = f"{kind} in progress to {pending.get('EndpointConfigName')} ({stages})" + \
            (f" (policy: {policy})" if policy else "")
    else:
        deployment = f"no deployment in progress (policy: {policy})" if policy else "no deployment in progress"
    if raw.get("FailureReason"):
        deployment += f"; last failure: {raw['FailureReason']}"
    variants = [VariantState(v["VariantName"], v.get("CurrentWeight"), v.get("DesiredWeight"),
                             v.get("CurrentInstanceCount"), v.get("DesiredInstanceCount"))
                for v in raw.get("ProductionVariants", [])]
    queued = raw.get("AsyncInferenceConfig")
    async_output = None
    if queued:
        output = queued.get("OutputConfig", {})
        async_output = (f"results to {output.get('S3OutputPath', '?')}, failures to "
                        f"{output.get('S3FailurePath', '?')}; at most "
                        f"{queued.get('ClientConfig', {}).get('MaxConcurrentInvocationsPerInstance', '?')} "
                        "in flight per instance")
    return EndpointState(endpoint, raw["EndpointStatus"], raw["EndpointConfigName"], variants, deployment,
                         async_output)


@dataclass(frozen=True)
class ComponentState:
    """hosting: inference_components: the copies of one model on its (possibly shared) endpoint."""
    name: str
    endpoint: str
    status: str
    copies_now: int | None
    copies_desired: int | None
    instances_now: int | None  # the endpoint's, which managed instance scaling follows with the copies
    deployment: str


def describe_component(clients: Clients, component: str, endpoint: str) -> ComponentState:
    try:
        raw = clients.sagemaker.describe_inference_component(InferenceComponentName=component)
    except ClientError as error:
        raise OpsError(f"inference component {component}: {error.response['Error'].get('Message', error)} "
                       f"(has `pulumi up` created it in this account and region?)") from None
    runtime = raw.get("RuntimeConfig", {})
    policy = update_policy(raw.get("LastDeploymentConfig", {}))
    deployment = {"Updating": "update in progress", "Creating": "creating"}.get(
        raw["InferenceComponentStatus"], "no update in progress")
    if policy:
        deployment += f" (policy: {policy})"
    elif raw["InferenceComponentStatus"] == "Updating":
        deployment += " (all copies at once: no rolling policy)"
    if raw.get("FailureReason"):
        deployment += f"; last failure: {raw['FailureReason']}"
    instances = None
    try:
        hosting = clients.sagemaker.describe_endpoint(EndpointName=raw.get("EndpointName", endpoint))
        instances = sum(v.get("CurrentInstanceCount", 0) for v in hosting.get("ProductionVariants", []))
    except ClientError:
        pass  # the component's own state is what matters; the endpoint line then shows "-"
    return ComponentState(component, raw.get("EndpointName", endpoint), raw["InferenceComponentStatus"],
                          runtime.get("CurrentCopyCount"), runtime.get("DesiredCopyCount"), instances, deployment)


def print_component_status(state: ComponentState, alarms: dict[str, str], out: Console) -> None:
    table = Table(title=f"{state.name}: {state.status} · on endpoint {state.endpoint}")
    for column in ("copies now", "copies desired", "endpoint instances now"):
        table.add_column(column)
    table.add_row(*("-" if n is None else str(n) for n in (state.copies_now, state.copies_desired,
                                                           state.instances_now)))
    out.print(table)
    if state.copies_desired == 0:
        out.print("scaled to zero: the first request fails (NoCapacityInvocationFailures) and wakes a copy; "
                  "retry after a few minutes")
    out.print(f"deployment: {state.deployment}")
    _print_guards(guard_alarm_names(state.name), alarms, out)


def _print_guards(expected: list[str], alarms: dict[str, str], out: Console) -> None:
    for name in expected:
        value = alarms.get(name, "MISSING")
        style = {"OK": "green", "ALARM": "bold red"}.get(value, "yellow")
        out.print(f"  guard alarm {name}: [{style}]{value}[/]")


def alarm_states(clients: Clients, names: list[str]) -> dict[str, str]:
    response = clients.cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return {a["AlarmName"]: a["StateValue"] for a in response.get("MetricAlarms", []) + response.get("CompositeAlarms", [])}


def firing(clients: Clients, endpoint: str) -> list[str]:
    return sorted(n for n, s in alarm_states(clients, guard_alarm_names(endpoint)).items() if s == "ALARM")


def print_status(state: EndpointState, alarms: dict[str, str], out: Console) -> None:
    table = Table(title=f"{state.name}: {state.status} · config {state.config_name}")
    for column in ("variant", "weight now", "weight desired", "instances now", "instances desired"):
        table.add_column(column)
    total = sum(state.weights().values()) or 1.0
    for v in state.variants:
        share = f"{100 * (v.current_weight or 0) / total:.0f}%"
        table.add_row(v.name, f"{v.current_weight} ({share})", str(v.desired_weight),
                      "-" if v.current_instances is None else str(v.current_instances),
                      "-" if v.desired_instances is None else str(v.desired_instances))
    out.print(table)
    if state.async_output:
        out.print(f"async: {state.async_output}")
    out.print(f"deployment: {state.deployment}")
    _print_guards(guard_alarm_names(state.name), alarms, out)


def shifted(start: dict[str, float], variant: str, percent: float) -> dict[str, float]:
    """`variant` gets `percent` of the traffic; the others share the rest in their starting proportions."""
    others = {k: v for k, v in start.items() if k != variant}
    rest, total = 100.0 - percent, sum(others.values())
    weights = {k: (rest * v / total if total else rest / len(others)) for k, v in others.items()}
    weights[variant] = float(percent)
    return weights


class Rollout:
    def __init__(self, clients: Clients, endpoint: str, out: Console, sleep: Callable[[float], None] = time.sleep,
                 poll_seconds: float = 15.0, update_timeout_seconds: float = 1800.0):
        self.clients, self.endpoint, self.out, self.sleep = clients, endpoint, out, sleep
        self.poll_seconds, self.update_timeout_seconds = poll_seconds, update_timeout_seconds

    def set_weights(self, weights: dict[str, float], why: str) -> None:
        shown = ", ".join(f"{k}={v:g}" for k, v in sorted(weights.items()))
        self.clients.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=self.endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": k, "DesiredWeight": v} for k, v in sorted(weights.items())])
        self.out.print(f"[bold]set weights[/] {shown} ({why})")
        self.wait_in_service()

    def wait_in_service(self) -> None:
        waited = 0.0
        with self.out.status(f"waiting for {self.endpoint} to be InService") as status:
            while (state := describe(self.clients, self.endpoint)).status != "InService":
                if state.status == "Failed" or waited >= self.update_timeout_seconds:
                    raise OpsError(f"{self.endpoint} is {state.status} after {waited:.0f} s: {state.deployment}")
                status.update(f"{self.endpoint} is {state.status} ({waited:.0f} s)")
                self.sleep(self.poll_seconds)
                waited += self.poll_seconds

    def bake(self, seconds: float) -> list[str]:
        """Watch the guarding alarms for `seconds`; the ones in ALARM as soon as any is."""
        return bake(lambda: firing(self.clients, self.endpoint), seconds, poll_seconds=self.poll_seconds,
                    sleep=self.sleep, out=self.out)

    def promote(self, variant: str, steps: list[float], bake_seconds: float) -> bool:
        """True: `variant` takes all traffic. False: an alarm fired and the weights are back where they started."""
        start = describe(self.clients, self.endpoint).weights()
        if variant not in start:
            raise OpsError(f"{self.endpoint} has no variant {variant!r}; it has: {', '.join(sorted(start))}")
        if len(start) < 2:
            raise OpsError(f"{self.endpoint} has one variant; there is no traffic to shift (a new model version "
                           f"rolls out through `pulumi up`, baked by SageMaker's blue/green deployment)")
        if bad := [s for s in steps if not 0 < s <= 100]:
            raise OpsError(f"--steps must be percentages in (0, 100]; given {bad}")
        plan = sorted(set(steps) | {100.0})
        already = firing(self.clients, self.endpoint)
        if already:
            raise OpsError(f"guard alarm(s) already in ALARM: {', '.join(already)}; fix that before promoting")
        for percent in plan:
            self.set_weights(shifted(start, variant, percent), f"promote step {percent:g}% to {variant}")
            alarms = self.bake(bake_seconds if percent < 100 else 0)
            if alarms:
                self.out.print(f"[bold red]guard alarm in ALARM[/]: {', '.join(alarms)}: rolling back at once")
                self.set_weights(start, "rollback to the starting weights")
                return False
        self.out.print(f"[green]promoted[/]: {variant} takes 100% of {self.endpoint}")
        return True

    def rollback(self, to_variant: str | None) -> str:
        state = describe(self.clients, self.endpoint)
        names = [v.name for v in state.variants]
        if len(names) > 1:
            target = to_variant or names[0]
            if target not in names:
                raise OpsError(f"{self.endpoint} has no variant {target!r}; it has: {', '.join(names)}")
            self.set_weights({n: (100.0 if n == target else 0.0) for n in names}, f"rollback to {target}")
            return f"all traffic on {target}"
        previous = self.previous_config(state.config_name)
        # Keeps the deployment config (blue/green, alarms) and the instance counts autoscaling set.
        self.clients.sagemaker.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=previous,
                                               RetainAllVariantProperties=True, RetainDeploymentConfig=True)
        self.out.print(f"[bold]update endpoint[/] to its previous configuration {previous}")
        self.wait_in_service()
        return f"back on {previous}"

    def previous_config(self, current: str) -> str:
        configs = []
        paginator = self.clients.sagemaker.get_paginator("list_endpoint_configs")
        for page in paginator.paginate(NameContains=self.endpoint, SortBy="CreationTime", SortOrder="Descending"):
            configs += [c["EndpointConfigName"] for c in page["EndpointConfigs"]]
        if current not in configs or configs.index(current) + 1 >= len(configs):
            raise OpsError(f"no configuration of {self.endpoint} older than {current} is left to go back to; "
                           f"revert the stack config and `pulumi up` instead")
        return configs[configs.index(current) + 1]
