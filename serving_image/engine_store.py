"""Built TensorRT engines shared through S3, so that only the first replica on a GPU architecture builds.

An engine takes minutes to build on the first start of a new GPU architecture. After a successful build the server
uploads it under `<prefix><key folder>/<file>`, the key being the GPU architecture, the TensorRT version and the
ONNX file's sha256 (EngineKey); every later start, on any replica, looks there before building. An object is used
only when its metadata names the same key and the bytes hash to the sha256 it was uploaded with: a corrupt or
mismatched download is refused (and the replica builds, then uploads a good one). The store is optional: without
MLSERVE_ENGINE_STORE each replica keeps its own cache, as before.

The S3 client is handed in (boto3 in the image), so this module needs no AWS SDK of its own to be tested.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines import EngineKey


class EngineStoreError(ValueError):
    """An MLSERVE_ENGINE_STORE that is not an s3://bucket/prefix/ URI."""


def _metadata(key: EngineKey, digest: str) -> dict[str, str]:
    return {"compute-capability": key.compute_capability, "tensorrt-version": key.tensorrt_version,
            "onnx-sha256": key.onnx_sha256, "precision": "fp16" if key.fp16 else "fp32", "engine-sha256": digest}


@dataclass(frozen=True)
class EngineStore:
    client: Any  # an S3 client (boto3's)
    bucket: str
    prefix: str  # ends with "/"

    @classmethod
    def from_uri(cls, uri: str, client: Any) -> EngineStore:
        if not uri.startswith("s3://") or "/" not in uri[5:] or not uri.endswith("/"):
            raise EngineStoreError(f"MLSERVE_ENGINE_STORE must be s3://bucket/prefix/ (ending in /), got {uri!r}")
        bucket, prefix = uri[5:].split("/", 1)
        return cls(client, bucket, prefix)

    def object_key(self, key: EngineKey, file_name: str) -> str:
        return f"{self.prefix}{key.folder()}/{file_name}"

    def fetch(self, key: EngineKey, destination: Path) -> bool:
        """Download the engine for `key` to `destination`; False when there is none or it cannot be trusted."""
        where = self.object_key(key, destination.name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=where)
        except self.client.exceptions.NoSuchKey:
            return False
        body = response["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        metadata = response.get("Metadata", {})
        expected = _metadata(key, metadata.get("engine-sha256", ""))
        if metadata != expected or digest != metadata.get("engine-sha256"):
            print(f"engine store: refusing s3://{self.bucket}/{where}: its metadata or bytes do not match "
                  f"{key.folder()} (building instead)", file=sys.stderr)
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".download")
        partial.write_bytes(body)
        partial.replace(destination)  # atomic: a crash mid-download never leaves a truncated engine in the cache
        return True

    def publish(self, key: EngineKey, engine: Path) -> str:
        """Upload a freshly built engine with the key and its sha256 as metadata; returns its S3 URI."""
        body = engine.read_bytes()
        where = self.object_key(key, engine.name)
        self.client.put_object(Bucket=self.bucket, Key=where, Body=body,
                               Metadata=_metadata(key, hashlib.sha256(body).hexdigest()))
        return f"s3://{self.bucket}/{where}"
