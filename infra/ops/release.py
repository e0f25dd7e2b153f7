"""release-model: package a model folder, upload it, register and approve it, print the config change.

A tensor model (runtime triton): the tarball is deterministic (sorted entries, zeroed times and owners, gzip without a
timestamp), so the same files give the same bytes and the same sha256; its key in the bucket is derived from that
sha256. Releasing the same files twice therefore finds the object and the model package already there and makes no
new version. The tarball is what SageMaker unpacks into /opt/ml/model and what the serving image reads: `spec.json`,
`model.onnx` and any prebuilt `model.smXY.plan` engines.

A language model (runtime vllm): the Hugging Face folder (config.json, tokenizer files, *.safetensors) is uploaded
file by file, unpacked, under `<deployment>/<first 16 hex of the manifest's sha256>/`, then its release manifest
(`components.weights_manifest`: every file's size and sha256) as the last object, so a folder whose manifest is there
is complete. The config's model.uri is that folder, model.sha256 the manifest's sha256: one value pins every file.
Each file's sha256 is in its metadata and S3 checks it in transit (ChecksumAlgorithm SHA256); a file already there
with the same sha256 is not written again, so releasing the same folder twice writes nothing.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from components.names import deployment_name, image_repository_name
from components.weights_manifest import MANIFEST, build_manifest, manifest_bytes
from infra.config.models import KServeDeployment, SageMakerDeployment, StackConfig

from .clients import Clients
from .report import OpsError

REQUIRED = ("spec.json", "model.onnx")


@dataclass(frozen=True)
class Release:
    uri: str
    sha256: str
    model_package_arn: str
    version: int
    created: bool  # False: these files were released before (no new model package version)
    written: int = 0  # objects this run wrote to S3 (0: every one was already there)
    files: int = 1  # objects the release is made of (a language model: its files and the manifest)
    size_bytes: int = 0  # a language model: the weights folder's bytes (the manifest's sizes)


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


def _head(clients: Clients, bucket: str, key: str) -> dict | None:
    try:
        return clients.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"].get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _exists(clients: Clients, bucket: str, key: str, sha256: str, size: int | None = None) -> bool:
    """The object is there with this sha256 in its metadata (and, when given, this size)."""
    head = _head(clients, bucket, key)
    return head is not None and head.get("Metadata", {}).get("sha256") == sha256 and \
        (size is None or head.get("ContentLength") == size)


def _ensure_group(clients: Clients, group: str, deployment: str) -> None:
    try:
        clients.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError:
        clients.sagemaker.create_model_package_group(
            ModelPackageGroupName=group, ModelPackageGroupDescription=f"mlserve releases of {deployment}")


def _model_uri(container: dict) -> str | None:
    """Where a registered container's model is: one object (ModelDataUrl) or a folder (ModelDataSource, S3Prefix)."""
    return container.get("ModelDataUrl") or container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")


def _released(clients: Clients, group: str, uri: str) -> tuple[str, int] | None:
    for page in clients.sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        for summary in page["ModelPackageSummaryList"]:
            described = clients.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            containers = described.get("InferenceSpecification", {}).get("Containers", [])
            if any(_model_uri(c) == uri for c in containers):
                return summary["ModelPackageArn"], summary.get("ModelPackageVersion", 0)
    return None


def deployment_to_release(cfg: StackConfig, stack: str, deployment: str) -> SageMakerDeployment | KServeDeployment:
    d = next((d for d in cfg.deployments if d.name == deployment), None)
    if d is None:
        raise OpsError(f"stack {stack} has no deployment {deployment!r}; it has: "
                       f"{', '.join(x.name for x in cfg.deployments)}")
    return d


def _read_metrics(metrics: Path | None) -> bytes | None:
    if metrics is None:
        return None
    try:
        return json.dumps(json.loads(metrics.read_text()), sort_keys=True).encode()
    except (OSError, json.JSONDecodeError) as error:
        raise OpsError(f"--metrics {metrics}: {error}") from None


def release_model(cfg: StackConfig, stack: str, deployment: str, model_dir: Path, clients: Clients,
                  metrics: Path | None = None, llm: bool = False) -> Release:
    """Release `model_dir` for `deployment`: its runtime says what the folder must be (vllm: a language model's
    weights folder; triton: spec.json and model.onnx). `llm` (--llm) asks for a language model's release and is
    refused for a tensor deployment."""
    d = deployment_to_release(cfg, stack, deployment)
    if llm and not d.is_llm:
        raise OpsError(f"--llm releases a language model's weights folder for a deployment of runtime vllm, but "
                       f"{deployment} is runtime {d.runtime} (a tensor model: spec.json and model.onnx); drop --llm")
    if d.is_llm:
        return release_llm(cfg, stack, d, model_dir, clients, _read_metrics(metrics))
    if d.model.format != "onnx":
        raise OpsError(f"deployment {deployment} expects format {d.model.format}; release-model packages ONNX models")
    if is_weights_folder(model_dir) and not (model_dir / "spec.json").exists():
        raise OpsError(f"{model_dir} is a language model's weights folder (config.json, *.safetensors), but "
                       f"deployment {deployment} is runtime {d.runtime}, a tensor model: release spec.json and "
                       "model.onnx for it, or the weights for a deployment of runtime vllm")
    metrics_body = _read_metrics(metrics)
    body = package(model_files(model_dir, d.model.triton_model_name))
    sha256 = hashlib.sha256(body).hexdigest()
    bucket, prefix = cfg.model_store.bucket, f"{deployment}/{sha256[:16]}"
    key = f"{prefix}/model.tar.gz"
    uri = f"s3://{bucket}/{key}"
    written = 0
    if not _exists(clients, bucket, key, sha256):
        clients.s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha256},
                              ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                              ContentType="application/gzip")
        written = 1
    container = {"ModelDataUrl": uri,
                 "Environment": {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": d.model.triton_model_name}}
    return _register(cfg, stack, d, clients, uri, sha256, container, ["application/json"], metrics_body,
                     f"{prefix}/metrics.json", written=written, files=1, size=len(body))


def _register(cfg: StackConfig, stack: str, d: SageMakerDeployment | KServeDeployment, clients: Clients, uri: str,
              sha256: str, container: dict, response_types: list[str], metrics_body: bytes | None, metrics_key: str,
              written: int, files: int, size: int, metadata: dict[str, str] | None = None) -> Release:
    """The release as an Approved version in the deployment's model package group, unless `uri` is one already."""
    group = deployment_name(stack, d.name)
    _ensure_group(clients, group, d.name)
    existing = _released(clients, group, uri)
    if existing:
        return Release(uri, sha256, existing[0], existing[1], created=False, written=written, files=files,
                       size_bytes=size)

    account = clients.sts.get_caller_identity()["Account"]
    repository = image_repository_name(stack, d.image.repository)
    image = f"{account}.dkr.ecr.{cfg.region}.amazonaws.com/{repository}{d.image.reference}"
    request = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"{d.name} sha256 {sha256}",
        "InferenceSpecification": {
            "Containers": [{"Image": image, **container}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": response_types,
            **({"SupportedRealtimeInferenceInstanceTypes": [d.compute.instance_type]}
               if isinstance(d, SageMakerDeployment) else {}),
        },
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {"sha256": sha256, "stack": stack, **(metadata or {})},
    }
    bucket = cfg.model_store.bucket
    if metrics_body is not None:
        clients.s3.put_object(Bucket=bucket, Key=metrics_key, Body=metrics_body, ContentType="application/json")
        written += 1
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": f"s3://{bucket}/{metrics_key}"}}}
    arn = clients.sagemaker.create_model_package(**request)["ModelPackageArn"]
    version = clients.sagemaker.describe_model_package(ModelPackageName=arn).get("ModelPackageVersion", 0)
    return Release(uri, sha256, arn, version, created=True, written=written, files=files, size_bytes=size)


# ---- a language model's weights folder (runtime vllm) --------------------------------------------------------------

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "tekken.json")
"""What a Hugging Face folder's tokenizer is made of, in one of its forms (fast, SentencePiece, BPE vocabulary,
WordPiece, Mistral's tekken; or a `*.tiktoken` file): vLLM loads the tokenizer from the model folder."""


def is_weights_folder(model_dir: Path) -> bool:
    return model_dir.is_dir() and (model_dir / "config.json").is_file() and \
        any(model_dir.rglob("*.safetensors"))


def safetensors_problem(path: Path) -> str | None:
    """Why vLLM could not read this safetensors file (its 8-byte header length, the JSON header, the tensors'
    data offsets within the file), or None. Reads the header only."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return f"{size} bytes: shorter than a safetensors header"
        length = int.from_bytes(prefix, "little")
        if length > size - 8 or length > 100 << 20:
            return f"its header claims {length} bytes, the file has {size - 8} after the length"
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    data = size - 8 - length
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data):
            return f"tensor {name!r} lies outside the file's {data} data bytes (truncated?)"
    return None


def weights_manifest(model_dir: Path, deployment: str) -> dict:
    """The folder's release manifest, or an OpsError saying why vLLM could not serve it."""
    if not model_dir.is_dir():
        raise OpsError(f"model folder {model_dir} does not exist")
    if ((model_dir / "model.onnx").exists() or (model_dir / "spec.json").exists()) \
            and not any(model_dir.rglob("*.safetensors")):
        raise OpsError(f"{model_dir} is an ONNX model folder (spec.json, model.onnx), but deployment {deployment} is "
                       "runtime vllm, a language model: release its Hugging Face folder (config.json, tokenizer "
                       "files, *.safetensors)")
    try:
        manifest = build_manifest(model_dir)
    except ValueError as error:
        raise OpsError(str(error)) from None
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OpsError(f"{model_dir / 'config.json'} is not valid JSON ({error}); vLLM reads the model's "
                       "architecture from it") from None
    if not isinstance(config, dict) or not ({"architectures", "model_type"} & config.keys()):
        raise OpsError(f"{model_dir / 'config.json'} names no architectures or model_type: vLLM could not tell "
                       "which model this is")
    names = manifest["files"].keys()
    if not any(n.rsplit("/", 1)[-1] in TOKENIZER_FILES or n.endswith(".tiktoken") for n in names):
        raise OpsError(f"{model_dir}: no tokenizer ({', '.join(TOKENIZER_FILES)} or *.tiktoken); vLLM loads it "
                       "from the model folder")
    for name in sorted(n for n in names if n.endswith(".safetensors")):
        problem = safetensors_problem(model_dir / name)
        if problem:
            raise OpsError(f"{model_dir / name} is not a readable safetensors file: {problem}")
    return manifest


def release_llm(cfg: StackConfig, stack: str, d: SageMakerDeployment | KServeDeployment, model_dir: Path,
                clients: Clients, metrics_body: bytes | None = None) -> Release:
    """Every file of the folder, then its manifest, under a prefix named by the manifest's sha256; registered as a
    folder (ModelDataSource S3Prefix, uncompressed)."""
    manifest = weights_manifest(model_dir, d.name)
    body = manifest_bytes(manifest)
    sha256 = hashlib.sha256(body).hexdigest()
    bucket, prefix = cfg.model_store.bucket, f"{d.name}/{sha256[:16]}/"
    uri = f"s3://{bucket}/{prefix}"
    written = 0
    for name, meta in manifest["files"].items():  # sorted by build_manifest
        key = prefix + name
        if _exists(clients, bucket, key, meta["sha256"], meta["size"]):
            continue
        extra = {"Metadata": {"sha256": meta["sha256"]}, "ChecksumAlgorithm": "SHA256",
                 "ContentType": "application/json" if name.endswith(".json") else "application/octet-stream"}
        clients.s3.upload_file(str(model_dir / name), bucket, key, ExtraArgs=extra)  # multipart above 8 MiB
        written += 1
    # Last: a folder whose manifest is there is complete (the serving pod's gate waits for the manifest's files).
    if not _exists(clients, bucket, prefix + MANIFEST, sha256, len(body)):
        clients.s3.put_object(Bucket=bucket, Key=prefix + MANIFEST, Body=body, Metadata={"sha256": sha256},
                              ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                              ContentType="application/json")
        written += 1
    size = sum(meta["size"] for meta in manifest["files"].values())
    container = {"ModelDataSource": {"S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix",
                                                      "CompressionType": "None"}}}
    # The metrics beside the folder, not in it: the node's model cache downloads the folder.
    return _register(cfg, stack, d, clients, uri, sha256, container, ["application/json", "text/event-stream"],
                     metrics_body, f"{d.name}/{sha256[:16]}.metrics.json", written=written,
                     files=len(manifest["files"]) + 1, size=size,
                     metadata={"format": "safetensors", "manifest": uri + MANIFEST})


def config_commands(cfg: StackConfig, stack: str, deployment: str, release: Release) -> list[str]:
    index = next(i for i, d in enumerate(cfg.deployments) if d.name == deployment)
    lines = [f"pulumi config set --stack {stack} --path 'deployments[{index}].model.uri' {release.uri}",
             f"pulumi config set --stack {stack} --path 'deployments[{index}].model.sha256' {release.sha256}"]
    llm = cfg.deployments[index].llm
    if llm is not None and release.size_bytes > llm.weights_gib * (1 << 30):
        # weights_gib sizes the node's disk and the model cache and is checked against the GPUs' memory.
        gib = math.ceil(release.size_bytes / (1 << 30) * 10) / 10
        lines.append(f"pulumi config set --stack {stack} --path 'deployments[{index}].llm.weights_gib' {gib:g}")
    return lines
