"""The prod plan's Kubernetes objects as manifests a scanner reads, and the objects KServe makes from them.

Every Kubernetes object the plan declares is written, one file each, named by kind, namespace and name (never by the
Pulumi resource name, which two objects may share), except the kinds in NOT_RENDERED (each with its reason).

Scanners judge Pods, Deployments and Services; an InferenceService is a custom resource they skip. So each
InferenceService is written as what KServe v0.20.0's Standard mode makes for its predictor instead: the Deployment (the
pod-level fields as given, the `kserve-container` from the ServingRuntime overlaid by the predictor's `model` fields,
the storage initializer injected for an `s3://` storageUri with the security context the kserve chart is given, and,
when the predictor has a logger, the agent sidecar the pod webhook injects) and the `<isvc>-predictor` Service (port 80
to the serving container's port, or to the agent's port when a logger is set). The KServe facts come from
schemas/kserve/behaviour.yaml, each with the upstream file and lines it was read from; the rendering is ours, not
KServe's code: it is what the scan and the port checks trust.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness import stack_plan

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
BEHAVIOUR = yaml.safe_load((SCHEMAS / "kserve" / "behaviour.yaml").read_text())

NOT_RENDERED = {
    "Release": "a Helm release is a chart plus values, not a manifest: checkov judges charts by their rendered "
               "templates, which needs `helm` and the charts (not reachable here); component tests assert the values",
    "InferenceService": "a custom resource no scanner judges: written as the predictor Deployment and Service KServe "
                        "makes from it",
    "ServingRuntime": "a custom resource no scanner judges: its container is written inside each predictor "
                      "Deployment that uses it",
}
STORAGE_INITIALIZER_LIMITS = {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
# Predictor fields that are not pod fields: ComponentExtensionSpec (pkg/apis/serving/v1beta1/component.go:85-131) and
# PredictorSpec's own (predictor.go:38-76) at v0.20.0. Everything else on the predictor is the inlined PodSpec.
EXTENSION_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
    "deploymentStrategy", "name", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface",
    "pmml", "lightgbm", "paddle", "model", "storageUris", "storageContainerName", "workerSpec"}


def fact(*path: str) -> Any:
    """A value of schemas/kserve/behaviour.yaml, e.g. fact("agent", "port")."""
    node = BEHAVIOUR
    for key in path:
        node = node[key]
    return copy.deepcopy(node["value"])


def _ints(value: Any) -> Any:
    """The plan records every number as a float; the API server gets integers where they are whole."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _unwrap_secrets(value: Any) -> Any:
    from tests.kubernetes.schemas import unwrap_secrets

    return unwrap_secrets(value)


def kind_of(resource) -> str:
    return resource.type.rsplit(":", 1)[1]


def _object(resource) -> dict[str, Any]:
    api_version, kind = resource.type.split(":", 1)[1].rsplit(":", 1)
    group, version = api_version.split("/")
    return {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind,
            **_ints(_unwrap_secrets(copy.deepcopy(resource.inputs)))}


def fill(template: str, values: dict[str, Any]) -> str:
    """A fact's template with its `{placeholders}` replaced."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def _predictor_meta(isvc: dict, runtime: dict) -> dict[str, Any]:
    """Labels and annotations: the runtime spec's, under the isvc's, under the predictor's, under KServe's own."""
    name = isvc["metadata"]["name"]
    predictor = isvc["spec"]["predictor"]
    labels = {**runtime["spec"].get("labels", {}), **isvc["metadata"].get("labels", {}),
              **predictor.get("labels", {}),
              **{k: fill(v, {"isvc": name}) for k, v in fact("predictor", "labels").items()}}
    annotations = {**runtime["spec"].get("annotations", {}), **isvc["metadata"].get("annotations", {}),
                   **predictor.get("annotations", {})}
    logger = predictor.get("logger")
    if logger is not None:
        values = {"logger.url": logger.get("url", ""), "logger.mode": logger.get("mode", "")}
        annotations.update({k: fill(v, values) for k, v in fact("predictor", "logger_annotations").items()
                            if "{logger.url}" not in v or logger.get("url")})
    return {"name": fill(fact("predictor", "name"), {"isvc": name}), "namespace": isvc["metadata"]["namespace"],
            "labels": labels, "annotations": annotations}


def predictor_service(isvc: str, meta: dict, serving_container: dict, logger: bool) -> dict[str, Any]:
    """The `<isvc>-predictor` Service KServe's service reconciler makes (from the pod before the webhook runs)."""
    container_ports = serving_container.get("ports") or []
    first, *others = container_ports or [{"name": meta["name"], "containerPort": 8080, "protocol": "TCP"}]
    ports = [{"name": first.get("name"), "port": 80, "targetPort": first["containerPort"],
              "protocol": first.get("protocol") or "TCP"}]
    ports += [{"name": p.get("name"), "port": p["containerPort"], "targetPort": p["containerPort"],
               "protocol": p.get("protocol") or "TCP"} for p in others]
    if logger:
        ports[0]["targetPort"] = fact("service", "target_port_with_logger")
    selector = {k: fill(v, {"isvc": isvc}) for k, v in fact("service", "selector").items()}
    return {"apiVersion": "v1", "kind": "Service", "metadata": copy.deepcopy(meta),
            "spec": {"selector": selector, "ports": [{k: v for k, v in p.items() if v is not None} for p in ports]}}


def agent_container(isvc: dict, pod: dict, serving_container: dict, agent_image: str) -> dict[str, Any]:
    """The `agent` sidecar KServe's pod webhook appends when the predictor has a logger."""
    logger = isvc["spec"]["predictor"]["logger"]
    labels = pod["metadata"]["labels"]
    component_port = str((serving_container.get("ports") or [{"containerPort": 8080}])[0]["containerPort"])
    values = {"logger.url": logger.get("url", ""), "pod name": pod["metadata"]["name"],
              "logger.mode": logger.get("mode", "all"), "isvc": isvc["metadata"]["name"],
              "namespace": isvc["metadata"]["namespace"], "pod label endpoint": labels.get("endpoint", ""),
              "pod label component": labels.get("component", ""),
              "kserve-container's first containerPort, else 8080": component_port}
    args = [fill(a, values) for a in fact("agent", "args")]
    readiness = serving_container.get("readinessProbe")
    probe = fact("agent", "readiness_probe")
    probe["httpGet"]["path"] = ((readiness or {}).get("httpGet") or {}).get("path") or "/"
    container = {"name": fact("agent", "container_name"), "image": agent_image, "args": args,
                 "ports": [fact("agent", "port")], "resources": fact("agent", "resources"),
                 "securityContext": copy.deepcopy(serving_container.get("securityContext")),
                 "readinessProbe": probe}
    if readiness and ("httpGet" in readiness or "tcpSocket" in readiness):
        container["env"] = [{"name": fact("agent", "serving_readiness_probe_env")["name"],
                             "value": json.dumps(readiness, separators=(",", ":"))}]
    return {k: v for k, v in container.items() if v is not None}


@dataclass
class Predictor:
    isvc: str
    namespace: str
    logger: bool
    deployment: dict[str, Any]
    service: dict[str, Any]


def predictor(isvc: dict, runtime: dict, storage_security: dict, kserve_version: str,
              agent_image: str) -> Predictor:
    isvc, runtime = _ints(copy.deepcopy(isvc)), _ints(copy.deepcopy(runtime))
    spec = isvc["spec"]["predictor"]
    model = spec["model"]
    container = {**copy.deepcopy(runtime["spec"]["containers"][0]),
                 **{k: v for k, v in model.items() if k not in ("modelFormat", "runtime", "protocolVersion",
                                                              "storageUri")}}
    container["name"] = fact("predictor", "serving_container")
    meta = _predictor_meta(isvc, runtime)
    service = predictor_service(isvc["metadata"]["name"], meta, container, logger=bool(spec.get("logger")))

    # The pod as admitted: the storage initializer, then (logger) the agent, both from KServe's pod webhook.
    container.setdefault("volumeMounts", []).append({"name": "kserve-provision-location", "mountPath": "/mnt/models",
                                                     "readOnly": True})
    initializer = {"name": "storage-initializer", "image": f"kserve/storage-initializer:{kserve_version}",
                   "args": [model["storageUri"], "/mnt/models"], "securityContext": storage_security,
                   "resources": STORAGE_INITIALIZER_LIMITS,
                   "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}]}
    pod_spec = {k: v for k, v in spec.items() if k not in EXTENSION_FIELDS}
    pod_spec["volumes"] = [*pod_spec.get("volumes", []), {"name": "kserve-provision-location", "emptyDir": {}}]
    app = {k: fill(v, {"isvc": isvc["metadata"]["name"]}) for k, v in fact("predictor", "pod_app_label").items()}
    pod = {"metadata": {**copy.deepcopy(meta), "labels": {**meta["labels"], **app}},
           "spec": {**pod_spec, "containers": [container], "initContainers": [initializer]}}
    if spec.get("logger"):
        pod["spec"]["containers"].append(agent_container(isvc, pod, container, agent_image))
    del pod["metadata"]["name"], pod["metadata"]["namespace"]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                  "spec": {"replicas": spec.get("minReplicas", 1), "selector": {"matchLabels": app},
                           "template": pod}}
    return Predictor(isvc["metadata"]["name"], meta["namespace"], bool(spec.get("logger")), deployment, service)


def predictors(plan) -> list[Predictor]:
    """What KServe makes for each InferenceService of a plan."""
    kserve = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kserve"]
    if not kserve:
        return []
    release = kserve[0].inputs
    values = release["values"]["kserve"]
    defaults = fact("agent", "image_chart_defaults")
    agent = values.get("agent", {})
    agent_image = fill(fact("agent", "image"), {
        "kserve.agent.image": agent.get("image", defaults["image"]),
        "kserve.agent.tag or kserve.version": agent.get("tag") or values.get("version") or defaults["version"]})
    runtimes = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs for r in plan.resources
                if r.type.endswith(":ServingRuntime")}
    return [predictor(isvc, runtimes[(isvc["metadata"]["namespace"], isvc["spec"]["predictor"]["model"]["runtime"])],
                      values["storage"]["containerSecurityContext"], release["version"], agent_image)
            for isvc in (r.inputs for r in plan.resources if r.type.endswith(":InferenceService"))]


def declared_objects(plan) -> list[dict[str, Any]]:
    """The plan's Kubernetes objects a scanner reads, as the API server would get them (NOT_RENDERED left out)."""
    return [_object(r) for r in plan.resources if r.type.startswith("kubernetes:") and kind_of(r) not in NOT_RENDERED]


def rendered_objects(stack: str = "prod") -> list[dict[str, Any]]:
    plan = stack_plan(stack)
    return [*declared_objects(plan), *(o for p in predictors(plan) for o in (p.deployment, p.service))]


def file_name(obj: dict[str, Any]) -> str:
    """Unique per object in a cluster: kind, namespace (`_cluster` for cluster-scoped ones) and name."""
    metadata = obj.get("metadata", {})
    return f"{obj['kind'].lower()}-{metadata.get('namespace', '_cluster')}-{metadata['name']}.yaml"


def write_manifests(directory: Path, stack: str = "prod") -> list[Path]:
    """One file per rendered object; a second object with the same file name is an error, never an overwrite."""
    written: list[Path] = []
    for obj in rendered_objects(stack):
        path = directory / file_name(obj)
        if path in written or path.exists():
            raise FileExistsError(f"two objects render to {path.name}")
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(path)
    return written
