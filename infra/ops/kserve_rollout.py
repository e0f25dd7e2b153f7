"""rollout status|promote|rollback for KServe deployments, through the Kubernetes API.

The split between `<name>` (stable) and `<name>-canary` is the forward action of the deployment's ALB Ingress
(KServeService). These commands read it and change it at once, for when a canary must move now; the guard is the
deployment's Prometheus SLO alerts, read through the API server's service proxy (no other network path needed).
Pulumi owns the Ingress: the next `pulumi up` sets the split back to the stack config, so every change printed here
comes with the config change that keeps it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from rich.console import Console
from rich.table import Table

from components.names import PROMETHEUS_PROXY, alb_split_annotation, canary_service, predictor_name, split_weights

from .bake import bake
from .report import OpsError

if TYPE_CHECKING:
    from kubernetes.client import V1Ingress
    from urllib3 import HTTPResponse


class KubeApi(Protocol):
    def ingress_annotations(self, namespace: str, name: str) -> dict[str, str]: ...
    def set_ingress_annotation(self, namespace: str, name: str, key: str, value: str) -> None: ...
    def inference_services(self, namespace: str) -> list[dict]: ...
    def prometheus_query(self, query: str) -> list[dict]: ...


class KubernetesApi:
    """KubeApi over the official client and the current kubeconfig (`aws eks update-kubeconfig` or the stack's)."""

    def __init__(self, context: str | None = None):
        from kubernetes import client, config

        try:
            # KUBECONFIG is read now (the client's own default is read once, at import).
            api_client = config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"), context=context)
        except config.ConfigException as error:
            raise OpsError(f"no Kubernetes access: {error} (run `pulumi stack output kubeconfig --show-secrets > "
                           f"kubeconfig` and set KUBECONFIG)") from None
        self.core, self.networking = client.CoreV1Api(api_client), client.NetworkingV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def ingress_annotations(self, namespace, name):
        # The generated client annotates every call's result as the union of all its return shapes.
        ingress = cast("V1Ingress", self.networking.read_namespaced_ingress(name, namespace))
        return (ingress.metadata.annotations if ingress.metadata else None) or {}

    def set_ingress_annotation(self, namespace, name, key, value):
        self.networking.patch_namespaced_ingress(name, namespace, {"metadata": {"annotations": {key: value}}})

    def inference_services(self, namespace):
        listed = self.custom.list_namespaced_custom_object("serving.kserve.io", "v1beta1", namespace, "inferenceservices")
        return cast(dict, listed)["items"]  # a custom object list is untyped JSON

    def prometheus_query(self, query):
        namespace, service = PROMETHEUS_PROXY
        response = self.core.api_client.call_api(
            "/api/v1/namespaces/{namespace}/services/{name}/proxy/api/v1/query", "GET",
            path_params={"namespace": namespace, "name": service}, query_params=[("query", query)],
            auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True, _request_timeout=30)
        body = json.loads(cast("HTTPResponse", response).data)  # not preloaded: the raw urllib3 response
        if body.get("status") != "success":
            raise OpsError(f"Prometheus answered {body.get('status')}: {body.get('error')}")
        return body["data"]["result"]


@dataclass(frozen=True)
class Split:
    stable: str
    canary: str
    weights: dict[str, int]  # predictor service -> weight

    @property
    def canary_percent(self) -> int:
        total = sum(self.weights.values()) or 1
        return round(100 * self.weights.get(predictor_name(self.canary), 0) / total)


class KServeRollout:
    def __init__(self, api: KubeApi, deployment: str, namespace: str, out: Console,
                 sleep: Callable[[float], None] = time.sleep, poll_seconds: float = 15.0):
        self.api, self.name, self.namespace, self.out = api, deployment, namespace, out
        self.sleep, self.poll_seconds = sleep, poll_seconds
        self.key = alb_split_annotation(deployment)

    def split(self) -> Split | None:
        raw = self.api.ingress_annotations(self.namespace, self.name).get(self.key)
        if raw is None:
            return None
        return Split(self.name, canary_service(self.name), split_weights(raw))

    def set_canary_percent(self, percent: int, why: str) -> None:
        split = self.split()
        if split is None:
            raise OpsError(f"{self.name} runs no canary (its Ingress has no split); start one with rollout: canary "
                           f"and a candidate in the stack config")
        groups = [{"serviceName": predictor_name(split.stable), "servicePort": "80", "weight": 100 - percent},
                  {"serviceName": predictor_name(split.canary), "servicePort": "80", "weight": percent}]
        self.api.set_ingress_annotation(self.namespace, self.name, self.key, json.dumps(
            {"type": "forward", "forwardConfig": {"targetGroups": groups}}))
        self.out.print(f"[bold]set split[/] {split.stable} {100 - percent}% / {split.canary} {percent}% ({why})")

    def firing(self) -> list[str]:
        results = self.api.prometheus_query(f'ALERTS{{alertstate="firing",deployment="{self.name}"}}')
        return sorted({r["metric"].get("alertname", "?") for r in results})

    def status(self) -> None:
        split = self.split()
        table = Table(title=f"{self.name} in {self.namespace}")
        for column in ("InferenceService", "ready", "model", "traffic"):
            table.add_column(column)
        for isvc in self.api.inference_services(self.namespace):
            name = isvc["metadata"]["name"]
            ready = next((c["status"] for c in isvc.get("status", {}).get("conditions", []) if c["type"] == "Ready"),
                         "Unknown")
            model = isvc["spec"]["predictor"].get("model", {}).get("storageUri", "?")
            # Without a split the Ingress sends everything to the stable predictor.
            weights = split.weights if split else {predictor_name(self.name): 100}
            table.add_row(name, ready, model, f"{weights.get(predictor_name(name), 0)}%")
        self.out.print(table)
        alerts = self.firing()
        self.out.print(f"SLO alerts firing: {', '.join(alerts) if alerts else 'none'}")

    def promote(self, steps: list[float], bake_seconds: float) -> bool:
        split = self.split()
        if split is None:
            raise OpsError(f"{self.name} runs no canary to promote")
        start = split.canary_percent
        if alerts := self.firing():
            raise OpsError(f"SLO alert(s) already firing: {', '.join(alerts)}; fix that before promoting")
        for percent in sorted({int(s) for s in steps if s > start} | {100}):
            self.set_canary_percent(percent, f"promote step {percent}%")
            alerts = bake(self.firing, bake_seconds if percent < 100 else 0, poll_seconds=self.poll_seconds,
                          sleep=self.sleep, out=self.out, guards="SLO alerts")
            if alerts:
                self.out.print(f"[bold red]SLO alert firing[/]: {', '.join(alerts)}: rolling back at once")
                self.set_canary_percent(start, "rollback to the starting split")
                return False
        self.out.print(f"[green]promoted[/]: {canary_service(self.name)} takes 100%. Keep it: set deployments[i].model to the "
                       f"candidate and rollout to all_at_once, then `pulumi up`")
        return True

    def rollback(self) -> None:
        self.set_canary_percent(0, "rollback")
        self.out.print("keep it: pulumi config set --path 'deployments[i].rollout.percent' 0 && pulumi up "
                       "(until then the next `pulumi up` restores the configured split)")
