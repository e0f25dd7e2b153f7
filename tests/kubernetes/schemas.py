"""Validation of declared Kubernetes objects against real schemas, offline.

Built-in kinds: the Kubernetes OpenAPI schemas shipped in `kubernetes-validate`, strict (unknown fields are errors).
Custom resources: the `openAPIV3Schema` of their CRD (copied into schemas/ with provenance), made strict the same way:
an API server silently prunes unknown fields of a structural schema, so a misspelt field would vanish without a word.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
CRD_FILES = {
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("serving.kserve.io", "ServingRuntime"): "kserve/serving.kserve.io_servingruntimes.yaml",
    ("serving.kserve.io", "LocalModelCache"): "kserve/serving.kserve.io_localmodelcaches.yaml",
    ("serving.kserve.io", "LocalModelNodeGroup"): "kserve/serving.kserve.io_localmodelnodegroups.yaml",
    ("keda.sh", "ScaledObject"): "keda/keda.sh_scaledobjects.yaml",
    ("karpenter.sh", "NodePool"): "karpenter/karpenter.sh_nodepools.yaml",
    ("karpenter.k8s.aws", "EC2NodeClass"): "karpenter/karpenter.k8s.aws_ec2nodeclasses.yaml",
}


def _strict(schema):
    """additionalProperties: false wherever the schema lists properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
                and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        # int-or-string fields: the openAPI marker has no JSON Schema type of its own.
        if schema.get("x-kubernetes-int-or-string"):
            schema.pop("type", None)
            schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def load_crd(path: str) -> dict:
    """A copied CRD file, parsed once per session with libyaml's safe loader (KServe's are megabytes of YAML: the
    pure-Python loader took 8 s for them)."""
    return yaml.load((SCHEMAS / path).read_text(), Loader=yaml.CSafeLoader)


@cache
def crd_schema(group: str, kind: str, version: str) -> dict:
    crd = load_crd(CRD_FILES[(group, kind)])
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {}).update(
                apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
            return _strict(schema)
    raise KeyError(f"{group}/{version} {kind} is not served by the copied CRD")


def custom_resource_errors(obj: dict) -> list[str]:
    group, version = obj["apiVersion"].split("/")
    validator = jsonschema.Draft7Validator(crd_schema(group, obj["kind"], version))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]


def builtin_errors(obj: dict, kubernetes_version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, f"{kubernetes_version}.0", strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    return []


SECRET_SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def unwrap_secrets(value):
    """The API server receives a secret's value; the plan records it inside Pulumi's secret envelope."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value
