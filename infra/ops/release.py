"""release-model: package a model folder, upload it, register and approve it, print the config change.

The tarball is deterministic (sorted entries, zeroed times and owners, gzip without a timestamp), so the same files give
the same bytes and the same sha256; its key in the bucket is derived from that sha256. Releasing the same files twice
therefore finds the object and the model package already there and makes no new version.

The tarball is what SageMaker unpacks into /opt/ml/model and what the serving image reads: `spec.json`, `model.onnx`
and any prebuilt `model.smXY.plan` engines.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from components.names import deployment_name, image_repository_name
from infra.config.models import SageMakerDeployment, StackConfig

from .clients import Clients
from .report import OpsError

REQUIRED = ("spec.json", "model.onnx")


@dataclass(frozen=True)
class Release:
    uri: str
    sha256: str
    model_package_arn: str
    version: int
    created: bool  # False: these files were released before


def model_files(model_dir: Path, triton_model_name: str) -> list[Path]:
    """What goes in the tarball; refuses a folder the serving image would refuse, with the reason."""
    if not model_dir.is_dir():
        raise OpsError(f"model folder {model_dir} does not exist")
    for name in REQUIRED:
        if not (model_dir / name).is_file():
            raise OpsError(f"{model_dir / name} is missing: a released model is spec.json, model.onnx and optional "
                           f"model.smXY.plan engines")
    try:
        spec = json.loads((model_dir / "spec.json").read_text())
    except json.JSONDecodeError as error:
        raise OpsError(f"{model_dir / 'spec.json'} is not valid JSON: {error}") from None
    if not isinstance(spec, dict) or not {"name", "inputs", "outputs"} <= spec.keys():
        raise OpsError(f"{model_dir / 'spec.json'} needs at least 'name', 'inputs' and 'outputs'")
    if spec["name"] != triton_model_name:
        # SAGEMAKER_TRITON_DEFAULT_MODEL_NAME is the config's triton_model_name: a mismatch serves nothing.
        raise OpsError(f"spec.json names the model {spec['name']!r} but the deployment's model.triton_model_name is "
                       f"{triton_model_name!r}; make them equal")
    if (model_dir / "model.onnx").stat().st_size == 0:
        raise OpsError(f"{model_dir / 'model.onnx'} is empty")
    return [model_dir / n for n in REQUIRED] + sorted(model_dir.glob("model.sm*.plan"))


def package(files: list[Path]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files, key=lambda p: p.name):
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def _exists(clients: Clients, bucket: str, key: str, sha256: str) -> bool:
    try:
        head = clients.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"].get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return head.get("Metadata", {}).get("sha256") == sha256


def _ensure_group(clients: Clients, group: str, deployment: str) -> None:
    try:
        clients.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError:
        clients.sagemaker.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription=f"mlserve releases of {deployment}")


def _released(clients: Clients, group: str, uri: str) -> tuple[str, int] | None:
    for page in clients.sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        for summary in page["ModelPackageSummaryList"]:
            described = clients.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            containers = described.get("InferenceSpecification", {}).get("Containers", [])
            if any(c.get("ModelDataUrl") == uri for c in containers):
                return summary["ModelPackageArn"], summary.get("ModelPackageVersion", 0)
    return None


def release_model(cfg: StackConfig, stack: str, deployment: str, model_dir: Path, clients: Clients,
                  metrics: Path | None = None) -> Release:
    d = next((d for d in cfg.deployments if d.name == deployment), None)
    if d is None:
        raise OpsError(f"stack {stack} has no deployment {deployment!r}; it has: "
                       f"{', '.join(x.name for x in cfg.deployments)}")
    if d.model.format != "onnx":
        raise OpsError(f"deployment {deployment} expects format {d.model.format}; release-model packages ONNX models")
    metrics_body = None
    if metrics is not None:
        try:
            metrics_body = json.dumps(json.loads(metrics.read_text()), sort_keys=True).encode()
        except (OSError, json.JSONDecodeError) as error:
            raise OpsError(f"--metrics {metrics}: {error}") from None
    body = package(model_files(model_dir, d.model.triton_model_name))
    sha256 = hashlib.sha256(body).hexdigest()
    bucket, prefix = cfg.model_store.bucket, f"{deployment}/{sha256[:16]}"
    key = f"{prefix}/model.tar.gz"
    uri = f"s3://{bucket}/{key}"
    if not _exists(clients, bucket, key, sha256):
        clients.s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha256},
                              ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                              ContentType="application/gzip")
    group = deployment_name(stack, deployment)
    _ensure_group(clients, group, deployment)
    existing = _released(clients, group, uri)
    if existing:
        return Release(uri, sha256, existing[0], existing[1], created=False)

    account = clients.sts.get_caller_identity()["Account"]
    repository = image_repository_name(stack, d.image.repository)
    image = f"{account}.dkr.ecr.{cfg.region}.amazonaws.com/{repository}{d.image.reference}"
    request = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"{deployment} sha256 {sha256}",
        "InferenceSpecification": {
            "Containers": [{"Image": image, "ModelDataUrl": uri,
                            "Environment": {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": d.model.triton_model_name}}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            **({"SupportedRealtimeInferenceInstanceTypes": [d.compute.instance_type]}
               if isinstance(d, SageMakerDeployment) else {}),
        },
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {"sha256": sha256, "stack": stack},
    }
    if metrics_body is not None:
        metrics_key = f"{prefix}/metrics.json"
        clients.s3.put_object(Bucket=bucket, Key=metrics_key, Body=metrics_body, ContentType="application/json")
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": f"s3://{bucket}/{metrics_key}"}}}
    arn = clients.sagemaker.create_model_package(**request)["ModelPackageArn"]
    version = clients.sagemaker.describe_model_package(ModelPackageName=arn).get("ModelPackageVersion", 0)
    return Release(uri, sha256, arn, version, created=True)


def config_commands(cfg: StackConfig, stack: str, deployment: str, release: Release) -> list[str]:
    index = next(i for i, d in enumerate(cfg.deployments) if d.name == deployment)
    return [f"pulumi config set --stack {stack} --path 'deployments[{index}].model.uri' {release.uri}",
            f"pulumi config set --stack {stack} --path 'deployments[{index}].model.sha256' {release.sha256}"]
