"""`python -m infra.ops profile`: measure what one instance serves within the p99 SLO, instead of typing it in.

Drives a running server (the local one, a pod, or a deployed endpoint through its API gateway with an API key or
SigV4) through a concurrency sweep, each step bounded in time and requests; finds the highest throughput whose p99
meets the SLO with no errors; writes a JSON report (per concurrency: throughput, p50/p95/p99, errors) and prints the
config lines to paste: `autoscaling.max_rps_per_instance_at_slo` (SageMaker) and `autoscaling.target_concurrency`
(KServe: in-flight requests per replica at that point).

Requests are built once with tritonclient (`generate_request_body`: JSON or binary tensors, from the model's own
metadata) and sent by an asyncio client (aiohttp), so one process keeps hundreds of requests in flight.
Triton's perf_analyzer is not installable on these machines; where it is, its figures are the reference.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import tritonclient.http as httpclient

NUMPY = {"FP32": np.float32, "FP16": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
         "UINT8": np.uint8, "BOOL": np.bool_}
MAX_STEP_SECONDS = 120


@dataclass
class Step:
    concurrency: int
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank, a latency that was observed (numpy's inverted_cdf, as `make bench-serving` reports them):
        the p50 of [1, 2, 3, 4] ms is 2 ms; no latencies is infinitely slow."""
        if not self.latencies_ms:
            return math.inf
        return float(np.percentile(self.latencies_ms, p, method="inverted_cdf"))

    def summary(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "seconds": round(self.seconds, 3), "throughput_rps": round(self.throughput, 2),
                **{f"p{p}_ms": round(self.percentile(p), 2) for p in (50, 95, 99)},
                "error_samples": self.error_samples[:3]}


@dataclass(frozen=True)
class Target:
    base_url: str
    """`http://127.0.0.1:8080` or the gateway's stage URL (`https://.../v1`): the v2 path is appended."""
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    sigv4_region: str | None = None
    """Sign each request for execute-api (the gateway's IAM authorization) with the caller's AWS credentials."""

    @property
    def infer_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v2/models/{self.model}/infer"


def request_body(metadata: dict[str, Any], batch: int, binary: bool, seed: int = 0) -> tuple[bytes, dict[str, str]]:
    """One request with random inputs shaped from the model's metadata (-1 dimensions become 1, the batch `batch`)."""
    rng = np.random.default_rng(seed)
    inputs = []
    for spec in metadata["inputs"]:
        shape = [d if d > 0 else 1 for d in spec["shape"]]
        if spec["shape"] and spec["shape"][0] == -1:
            shape[0] = batch
        dtype = NUMPY.get(spec["datatype"])
        if dtype is None:
            raise ValueError(f"input {spec['name']}: datatype {spec['datatype']} is not one profile can generate")
        tensor = httpclient.InferInput(spec["name"], shape, spec["datatype"])
        values = rng.uniform(0, 1, shape) if np.issubdtype(dtype, np.floating) else rng.integers(0, 2, shape)
        tensor.set_data_from_numpy(np.asarray(values, dtype=dtype), binary_data=binary)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=binary) for o in metadata["outputs"]]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    if json_size is None:
        return body, {"Content-Type": "application/json"}
    return body, {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(json_size)}


def signer(target: Target) -> Callable[[bytes, dict[str, str]], dict[str, str]]:
    """Headers for one request: as given, or signed for execute-api with credentials resolved once per sweep."""
    if not target.sigv4_region:
        return lambda body, headers: headers
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise ValueError("--sigv4 needs AWS credentials (AWS_PROFILE, or `aws sso login`)")
    auth = SigV4Auth(credentials, "execute-api", target.sigv4_region)

    def sign(body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method="POST", url=target.infer_url, data=body, headers=headers)
        auth.add_auth(request)  # a fresh date and signature per request
        return dict(request.headers)

    return sign


def metadata_from_spec(path: Path) -> dict[str, Any]:
    """The v2 model metadata a server would answer, from the released model's spec.json (for a gateway, which
    exposes only the infer route)."""
    try:
        return spec_metadata(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a model spec.json ({error})") from None


def spec_metadata(spec: dict[str, Any]) -> dict[str, Any]:
    """spec.json (what release-model packages) as v2 model metadata; KeyError/TypeError when it is not one."""
    batched = spec.get("max_batch_size", 32) > 0
    return {tensors: [{"name": t["name"], "datatype": t["datatype"], "shape": [-1] * batched + t["dims"]}
                      for t in spec[tensors]] for tensors in ("inputs", "outputs")}


async def metadata_of(session: aiohttp.ClientSession, target: Target) -> dict[str, Any]:
    url = f"{target.base_url.rstrip('/')}/v2/models/{target.model}"
    async with session.get(url, headers=target.headers) as response:
        text = await response.text()
        if response.status != 200:
            raise ValueError(f"GET {url} answered {response.status}: {text[:300]}")
        return json.loads(text)


async def run_step(session: aiohttp.ClientSession, target: Target, body: bytes, headers: dict[str, str],
                   concurrency: int, seconds: float, max_requests: int,
                   sign: Callable[[bytes, dict[str, str]], dict[str, str]] | None = None) -> Step:
    sign = sign or signer(target)
    step = Step(concurrency)
    budget = [max_requests]
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            try:
                async with session.post(target.infer_url, data=body,
                                        headers={**target.headers, **sign(body, headers)}) as response:
                    payload = await response.read()
                    ok = response.status == 200
                    if not ok and len(step.error_samples) < 3:
                        step.error_samples.append(f"{response.status}: {payload[:200]!r}")
            except (TimeoutError, aiohttp.ClientError) as error:
                ok = False
                if len(step.error_samples) < 3:
                    step.error_samples.append(repr(error))
            if ok:
                step.requests += 1
                step.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                step.errors += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    step.seconds = time.monotonic() - started
    return step


async def sweep(target: Target, concurrencies: list[int], seconds: float, max_requests: int, batch: int = 1,
                binary: bool = True, warmup_seconds: float = 1.0, spec: Path | None = None) -> list[Step]:
    sign = signer(target)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        metadata = metadata_from_spec(spec) if spec else await metadata_of(session, target)
        body, headers = request_body(metadata, batch, binary)
        await run_step(session, target, body, headers, max(concurrencies), warmup_seconds, max_requests, sign)
        return [await run_step(session, target, body, headers, c, seconds, max_requests, sign)
                for c in concurrencies]


def choose(steps: list[Step], p99_ms: float) -> Step | None:
    """The highest-throughput step that met the SLO (p99 within it) with no errors; None if none did."""
    within = [s for s in steps if s.errors == 0 and s.requests > 0 and s.percentile(99) <= p99_ms]
    return max(within, key=lambda s: s.throughput, default=None)


def in_flight(step: Step) -> float:
    """Little's law: requests in flight = throughput x mean latency (what KEDA's target compares with)."""
    if not step.latencies_ms:
        return 0.0
    return step.throughput * (sum(step.latencies_ms) / len(step.latencies_ms)) / 1000


def config_lines(stack: str, index: int, backend: str, chosen: Step) -> list[str]:
    where = f"deployments[{index}].autoscaling"
    if backend == "kserve":
        value = max(1, math.floor(in_flight(chosen)))
        return [f"pulumi config set --stack {stack} --path 'mlserve:{where}.target_concurrency' {value}"]
    return [f"pulumi config set --stack {stack} --path 'mlserve:{where}.max_rps_per_instance_at_slo' "
            f"{chosen.throughput:.1f}",
            f"# or, to track concurrency at high resolution instead (remove max_rps_per_instance_at_slo): "
            f"pulumi config set --stack {stack} --path 'mlserve:{where}.target_concurrency' "
            f"{max(1, math.floor(in_flight(chosen)))}"]


def report(target: Target, steps: list[Step], p99_ms: float, chosen: Step | None, binary: bool,
           batch: int) -> dict[str, Any]:
    return {"target": target.infer_url, "model": target.model, "slo_p99_ms": p99_ms, "binary": binary,
            "batch": batch, "steps": [s.summary() for s in steps],
            "chosen": None if chosen is None else {**chosen.summary(), "in_flight": round(in_flight(chosen), 2)},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}



# What each column of a step's line means, printed with the lines.
LEGEND = ("columns: concurrency = requests kept in flight; req/s = answered requests per second over the step; "
          "p50/p95/p99 = latency percentiles in ms (nearest-rank, over the answered requests); errors = requests that "
          "failed or timed out; meets = the step chosen (the highest req/s with p99 within the SLO and no errors), "
          "ok = also within the SLO, over = p99 above the SLO or errors")

LOCAL_HOSTS = ("localhost", "0.0.0.0", "::1")


def is_local(url: str) -> bool:
    """A server on this machine: what it serves says nothing about the deployment's hardware."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


def deployment_hardware(cfg: Any, deployment: Any) -> str | None:
    """What the deployment runs on, in words (`ml.g5.xlarge`; KServe: its GPUs and node group's types), or None."""
    compute = deployment.compute
    if getattr(compute, "instance_type", None):
        return compute.instance_type
    node_group = getattr(compute, "node_group", None)
    if node_group is None:
        return None
    cluster = cfg.cluster
    groups = [*cluster.node_groups, *cluster.gpu_pools] if cluster is not None else []
    types = next((g.instance_types for g in groups if g.name == node_group), [])
    details = [*types, *([f"{compute.gpus} GPU{'s' if compute.gpus != 1 else ''} per replica"] if compute.gpus else [])]
    return f"{'GPU nodes' if compute.gpus else 'nodes'} of node group {node_group!r}" + \
        (f" ({', '.join(details)})" if details else "")


def local_measurement_warning(url: str, cfg: Any, deployment: Any) -> str | None:
    """The warning for a measurement of a local server that is to set a deployment's scaling: the deployment's
    capacity is its instance type's, which a local server (its hardware unknown here) is not."""
    hardware = deployment_hardware(cfg, deployment)
    if not is_local(url) or hardware is None:
        return None
    return (f"{urlsplit(url).hostname} is a server on this machine, not the deployment's {hardware}: these figures "
            f"measure this machine's hardware, and {deployment.name}'s scaling needs them measured on that instance "
            "type (a test endpoint or pod of the deployment, through its URL); use them to compare, not to paste")
