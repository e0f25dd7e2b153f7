"""Built TensorRT engines shared through S3, so that only the first replica on a GPU architecture builds.

An engine takes minutes to build on the first start of a new GPU architecture. After a successful build the server
uploads it under `<prefix><key folder>/<file>`, the key being the GPU architecture, the TensorRT version and the
ONNX file's sha256 (EngineKey); every later start, on any replica, looks there before building. An object is used
only when its metadata names the same key and the bytes hash to the sha256 it was uploaded with: a corrupt or
mismatched download is refused (and the replica builds, then uploads a good one). The store is optional: without
MLSERVE_ENGINE_STORE each replica keeps its own cache, as before.

The store only ever saves time, so no failure of it stops a server: a missing key (404 NoSuchKey) is a plain miss,
and anything else (403 AccessDenied, which S3 answers for a missing key when the caller lacks s3:ListBucket, any other
refusal, an unreachable endpoint, missing credentials, a corrupt object, a failed upload) is said in one line on
stderr, counted in `failures` by (operation, reason), and the replica builds or keeps its freshly built engine. The
entrypoint reports the count at start and exports it as `mlserve_engine_store_failures_total` (KServe metrics port).

The S3 client is handed in (boto3 in the image), so this module needs no AWS SDK of its own to be tested.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engines import EngineKey


class EngineStoreError(ValueError):
    """An MLSERVE_ENGINE_STORE that is not an s3://bucket/prefix/ URI."""


def _metadata(key: EngineKey, digest: str) -> dict[str, str]:
    return {"compute-capability": key.compute_capability, "tensorrt-version": key.tensorrt_version,
            "onnx-sha256": key.onnx_sha256, "precision": "fp16" if key.fp16 else "fp32", "engine-sha256": digest}


def parse_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of an s3://bucket/prefix/ URI; EngineStoreError otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:] or not uri.endswith("/"):
        raise EngineStoreError(f"MLSERVE_ENGINE_STORE must be s3://bucket/prefix/ (ending in /), got {uri!r}")
    bucket, prefix = uri[5:].split("/", 1)
    return bucket, prefix


def _is_missing(error: Exception) -> bool:
    """S3's answer for a key that is not there, to a caller allowed to know (s3:ListBucket): 404 NoSuchKey."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404


def reason_of(error: Exception) -> tuple[str, str]:
    """(short reason for the counter, one-line description): S3's error code and HTTP status, else the error's type."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code"):
        code = str(response["Error"]["Code"])
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code, f"{code} (HTTP {status}): {response['Error'].get('Message') or error}"
    name = type(error).__name__
    return name, f"{name}: {error}"


@dataclass(frozen=True)
class EngineStore:
    client: Any  # an S3 client (boto3's)
    bucket: str
    prefix: str  # ends with "/"
    # (operation, reason) -> how many times the store failed this process; read by the entrypoint.
    failures: Counter[tuple[str, str]] = field(default_factory=Counter, compare=False, repr=False)

    @classmethod
    def from_uri(cls, uri: str, client: Any, failures: Counter[tuple[str, str]] | None = None) -> EngineStore:
        bucket, prefix = parse_uri(uri)
        return cls(client, bucket, prefix, Counter() if failures is None else failures)

    def object_key(self, key: EngineKey, file_name: str) -> str:
        return f"{self.prefix}{key.folder()}/{file_name}"

    def _failed(self, operation: str, reason: str, line: str) -> None:
        self.failures[(operation, reason)] += 1
        print(f"engine store: {line}", file=sys.stderr, flush=True)

    def fetch(self, key: EngineKey, destination: Path) -> bool:
        """Download the engine for `key` to `destination`; False when there is none, it cannot be trusted, or the
        store fails (said and counted): the caller then builds. Never raises for the store's sake."""
        where = self.object_key(key, destination.name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=where)
            body = response["Body"].read()
        except Exception as error:  # noqa: BLE001 - any failure of an optional cache means "build it here"
            if _is_missing(error):
                return False
            reason, said = reason_of(error)
            self._failed("fetch", reason, f"cannot read s3://{self.bucket}/{where}: {said} (building instead)")
            return False
        digest = hashlib.sha256(body).hexdigest()
        metadata = response.get("Metadata", {})
        expected = _metadata(key, metadata.get("engine-sha256", ""))
        if metadata != expected or digest != metadata.get("engine-sha256"):
            self._failed("fetch", "mismatch", f"refusing s3://{self.bucket}/{where}: its metadata or bytes do not "
                                              f"match {key.folder()} (building instead)")
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".download")
        partial.write_bytes(body)
        partial.replace(destination)  # atomic: a crash mid-download never leaves a truncated engine in the cache
        return True

    def publish(self, key: EngineKey, engine: Path) -> str | None:
        """Upload a freshly built engine with the key and its sha256 as metadata; returns its S3 URI, or None when
        the upload failed (said and counted: the engine stays in this replica's cache, the next one builds too)."""
        body = engine.read_bytes()
        where = self.object_key(key, engine.name)
        try:
            self.client.put_object(Bucket=self.bucket, Key=where, Body=body,
                                   Metadata=_metadata(key, hashlib.sha256(body).hexdigest()))
        except Exception as error:  # noqa: BLE001 - sharing is best effort; this replica serves its own build
            reason, said = reason_of(error)
            self._failed("publish", reason, f"cannot share s3://{self.bucket}/{where}: {said} (serving the local "
                                            "build)")
            return None
        return f"s3://{self.bucket}/{where}"


def summary(failures: Counter[tuple[str, str]]) -> str:
    """One line for the entrypoint's log: how many times the store failed, by operation and reason."""
    parts = ", ".join(f"{operation} {reason} x{count}" for (operation, reason), count in sorted(failures.items()))
    return f"{sum(failures.values())} engine store failure(s) ({parts or 'none'})"
