"""The prod plan's Kubernetes objects as manifests a scanner reads, and the pods KServe makes from them.

Scanners judge Pods and Deployments; an InferenceService is a custom resource they skip. So each InferenceService is
also written as the Deployment KServe's Standard mode creates for its predictor: the pod-level fields as given, the
`kserve-container` from the ServingRuntime overlaid by the predictor's `model` fields (KServe's merge), and the
storage initializer KServe injects for an `s3://` storageUri, with the security context the kserve chart is given
(limits: the chart's defaults). That rendering is ours, not KServe's code: it is what the scan trusts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.harness import stack_plan

KINDS = ("Namespace", "NetworkPolicy", "ServiceAccount", "Ingress", "PodDisruptionBudget")
STORAGE_INITIALIZER_LIMITS = {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def _object(resource) -> dict[str, Any]:
    api_version, kind = resource.type.split(":", 1)[1].rsplit(":", 1)
    group, version = api_version.split("/")
    return {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind,
            **copy.deepcopy(resource.inputs)}


def predictor_deployment(isvc: dict, runtime: dict, storage_security: dict, kserve_version: str) -> dict[str, Any]:
    predictor = copy.deepcopy(isvc["spec"]["predictor"])
    model = predictor.pop("model")
    container = {**copy.deepcopy(runtime["spec"]["containers"][0]),
                 **{k: v for k, v in model.items() if k not in ("modelFormat", "runtime", "protocolVersion",
                                                              "storageUri")}}
    container.setdefault("volumeMounts", []).append({"name": "kserve-provision-location", "mountPath": "/mnt/models",
                                                     "readOnly": True})
    initializer = {"name": "storage-initializer", "image": f"kserve/storage-initializer:{kserve_version}",
                   "args": [model["storageUri"], "/mnt/models"], "securityContext": storage_security,
                   "resources": STORAGE_INITIALIZER_LIMITS,
                   "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}]}
    pod = {k: v for k, v in predictor.items() if k not in ("minReplicas", "maxReplicas")}
    pod["volumes"] = [*pod.get("volumes", []), {"name": "kserve-provision-location", "emptyDir": {}}]
    name = isvc["metadata"]["name"]
    labels = {"serving.kserve.io/inferenceservice": name, **isvc["metadata"].get("labels", {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{name}-predictor", "namespace": isvc["metadata"]["namespace"], "labels": labels},
            "spec": {"replicas": predictor.get("minReplicas", 1), "selector": {"matchLabels": {
                "serving.kserve.io/inferenceservice": name}},
                "template": {"metadata": {"labels": labels}, "spec": {
                    **pod, "containers": [container], "initContainers": [initializer]}}}}


def write_manifests(directory: Path, stack: str = "prod") -> list[Path]:
    plan = stack_plan(stack)
    kserve = next(r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kserve").inputs
    storage_security = kserve["values"]["kserve"]["storage"]["containerSecurityContext"]
    written = []
    for resource in plan.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.rsplit(":", 1)[1] not in KINDS:
            continue
        written.append(directory / f"{resource.name}.yaml")
        written[-1].write_text(yaml.safe_dump(_object(resource), sort_keys=False))
    runtimes = {(r.inputs["metadata"]["namespace"]): r.inputs for r in plan.resources
                if r.type.endswith(":ServingRuntime")}
    for isvc in (r.inputs for r in plan.resources if r.type.endswith(":InferenceService")):
        deployment = predictor_deployment(isvc, runtimes[isvc["metadata"]["namespace"]], storage_security,
                                          kserve["version"])
        written.append(directory / f"{deployment['metadata']['name']}-deployment.yaml")
        written[-1].write_text(yaml.safe_dump(deployment, sort_keys=False))
    return written
