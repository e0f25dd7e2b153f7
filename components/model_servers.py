"""The two model servers a KServe deployment runs, as what KServeService needs to know of each: its ServingRuntime
container, the predictor container's environment and volumes, its health paths, its metrics port, and the Prometheus
signals KEDA scales it on.

- Triton (the serving image in KServe mode): tensors over the v2 protocol, engines shared through the bucket, scaled on
  in-flight requests.
- vLLM (its own OpenAI-compatible server image): language models, scaled on its own queue (waiting requests) and
  KV-cache use, both read from the server's /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import vllm
from .prometheus_queries import in_flight_query, vllm_kv_cache_query, vllm_waiting_query
from .weights_manifest import gate_command

# Pod Security `restricted`, container level (the pod level sets runAsNonRoot and the seccomp profile). The root
# filesystem is read-only: each server writes only to its emptyDir volumes.
RESTRICTED_CONTAINER = {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"}}
MODEL_DIR = "/mnt/models"
"""Where KServe puts the model (its storage initializer's download, or the node-local cache's volume)."""
SERVING_PORT = 8080
"""What the predictor Service targets without the agent (KServe's default container port); vLLM is told to listen
there too, so both servers sit behind the same Service, agent and NetworkPolicies."""


@dataclass(frozen=True)
class ScaleSignal:
    """One KEDA Prometheus trigger: a query over one InferenceService's pods and the value per replica to hold."""
    query: str
    threshold: float


@dataclass(frozen=True)
class ModelServer:
    runtime: str
    """The ServingRuntime's name in the deployment's namespace."""
    model_format: str
    model_format_version: str | None
    """The format's version the runtime declares (Triton's "2"); None: none."""
    protocol_versions: tuple[str, ...]
    container: dict
    """The ServingRuntime's container (image, command, args, ports)."""
    env: tuple[dict, ...]
    volumes: tuple[dict, ...]
    volume_mounts: tuple[dict, ...]
    ready_path: str
    live_path: str
    metrics_port: int
    startup_allowance_seconds: int
    shares_engines: bool
    """Triton's built TensorRT engines go to the bucket for the other replicas (the serving role may write there)."""
    idle_timeout_seconds: int | None = None
    """The ALB's idle timeout when the default 60 s is too short (a language model's first byte); None: default."""
    drain_seconds: int | None = None
    """terminationGracePeriodSeconds when answers outlast the default 30 s (streams); None: default."""
    lifecycle: dict | None = None
    """The container's lifecycle hooks (a preStop that lets the load balancer stop sending first)."""



@dataclass(frozen=True)
class LlmScaling:
    waiting_per_replica: int
    kv_cache_percent: int


def scale_signals(namespace: str, isvc: str, target_concurrency: int | None,
                  llm: LlmScaling | None) -> list[ScaleSignal]:
    """What KEDA holds per replica: vLLM's waiting requests and KV-cache use (a language model), or Triton's
    requests in flight."""
    if llm is not None:
        return [ScaleSignal(vllm_waiting_query(namespace, isvc), llm.waiting_per_replica),
                ScaleSignal(vllm_kv_cache_query(namespace, isvc), llm.kv_cache_percent)]
    assert target_concurrency is not None
    return [ScaleSignal(in_flight_query(namespace, isvc), target_concurrency)]


TRITON_METRICS_PORT = 8002
TRITON_STARTUP_SECONDS = 1800  # a TensorRT engine build on first start of a new architecture


def triton(image_uri, engine_store_uri: str) -> ModelServer:
    return ModelServer(
        runtime="mlserve-triton", model_format="triton", model_format_version="2", protocol_versions=("v2", "grpc-v2"),
        container={"name": "kserve-container", "image": image_uri,
                   "args": ["serve", "--mode", "kserve", "--model-dir", MODEL_DIR],
                   "ports": [{"containerPort": SERVING_PORT, "name": "h1", "protocol": "TCP"}],
                   "securityContext": RESTRICTED_CONTAINER,
                   "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}},
        env=({"name": "MLSERVE_ENGINE_CACHE", "value": "/var/cache/mlserve/engines"},
             {"name": "MLSERVE_ENGINE_STORE", "value": engine_store_uri}),
        volumes=({"name": "engine-cache", "emptyDir": {"sizeLimit": "20Gi"}},
                 {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}),
        volume_mounts=({"name": "engine-cache", "mountPath": "/var/cache/mlserve/engines"},
                       {"name": "tmp", "mountPath": "/tmp"}),
        ready_path="/v2/health/ready", live_path="/v2/health/live", metrics_port=TRITON_METRICS_PORT,
        startup_allowance_seconds=TRITON_STARTUP_SECONDS, shares_engines=True)


@dataclass(frozen=True)
class VllmEngine:
    """`vllm serve`'s flags, as the config's `llm` block sets them."""
    served_model_name: str
    max_model_len: int
    tensor_parallel: int
    gpu_memory_utilization: float
    dtype: str
    quantization: str
    max_num_seqs: int
    weights_gib: float


def vllm_args(engine: VllmEngine, model_dir: str, port: int) -> list[str]:
    """The same flags on both backends (KServe's container args; SageMaker's entrypoint gets them too)."""
    return [model_dir, "--served-model-name", engine.served_model_name, "--host", "0.0.0.0", "--port", str(port),
            "--max-model-len", str(engine.max_model_len), "--tensor-parallel-size", str(engine.tensor_parallel),
            "--gpu-memory-utilization", f"{engine.gpu_memory_utilization:g}", "--dtype", engine.dtype,
            "--max-num-seqs", str(engine.max_num_seqs),
            *(["--quantization", engine.quantization] if engine.quantization != "none" else [])]


LLM_IDLE_TIMEOUT_SECONDS = 900
"""The ALB waits this long for a byte: API Gateway's streaming limit (15 minutes) is the longest an answer may take."""
KEEP_ALIVE_SECONDS = LLM_IDLE_TIMEOUT_SECONDS + 60
"""vLLM keeps idle connections longer than the ALB does (uvicorn's default is 5 s), so the ALB never reuses one vLLM
has just closed (a 502)."""
DEREGISTRATION_SECONDS = 30
LLM_DRAIN_SECONDS = 300
"""How long a stopping vLLM pod has for the answers it is writing (the ALB has stopped sending it new ones)."""

VLLM_ENV = (
    # The weights are local (/mnt/models): never reach a model hub from a serving pod, and send no usage reports.
    {"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
    {"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "DO_NOT_TRACK", "value": "1"},
    # A read-only root filesystem: every cache (compiled kernels, torch.compile, Hugging Face) under /tmp.
    {"name": "HOME", "value": "/tmp"}, {"name": "HF_HOME", "value": "/tmp/hf"},
    {"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm"},
    # What derives its folder from $HOME already goes under /tmp; these name the rest outright (Triton's kernel cache,
    # torch.compile's, FlashInfer's workspace, numba, CUDA's JIT cache, outlines), so no library writes elsewhere.
    *({"name": name, "value": value} for name, value in (
        ("TMPDIR", "/tmp"), ("XDG_CACHE_HOME", "/tmp/.cache"), ("XDG_CONFIG_HOME", "/tmp/.config"),
        ("TRITON_CACHE_DIR", "/tmp/.triton"), ("TORCHINDUCTOR_CACHE_DIR", "/tmp/inductor"),
        ("FLASHINFER_WORKSPACE_BASE", "/tmp"), ("NUMBA_CACHE_DIR", "/tmp/numba"), ("CUDA_CACHE_PATH", "/tmp/.nv"),
        ("OUTLINES_CACHE_DIR", "/tmp/outlines"))),
    {"name": "VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "value": str(KEEP_ALIVE_SECONDS)},
)


def vllm_server(image_uri, engine: VllmEngine) -> ModelServer:
    # Loading tens of GiB of weights onto the GPUs and capturing CUDA graphs takes minutes; a node-local cache
    # spares the download, not the load.
    startup = 600 + int(engine.weights_gib * 30)
    return ModelServer(
        # No protocolVersions: KServe's are v1/v2/grpc (pkg/constants), none of them OpenAI's; with a model format
        # KServe does not know it leaves the protocol unset (inference_service_defaults.go).
        runtime="mlserve-vllm", model_format="vllm", model_format_version=None, protocol_versions=(),
        # vLLM starts once every file of the release manifest is there (the node's model cache may still be
        # filling: components/weights_manifest.py).
        container={"name": "kserve-container", "image": image_uri,
                   "command": gate_command(MODEL_DIR, [])[:3],
                   "args": ["vllm", "serve", *vllm_args(engine, MODEL_DIR, SERVING_PORT)],
                   # The runtime's own: every predictor on it stays offline (the pack checks the runtime).
                   "env": list(VLLM_ENV),
                   "ports": [{"containerPort": SERVING_PORT, "name": "h1", "protocol": "TCP"}],
                   "securityContext": RESTRICTED_CONTAINER,
                   "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}},
        env=(),
        volumes=({"name": "tmp", "emptyDir": {"sizeLimit": "20Gi"}},
                 # NCCL between the tensor-parallel workers goes through shared memory.
                 {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}),
        volume_mounts=({"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}),
        ready_path=vllm.HEALTH_PATH, live_path=vllm.HEALTH_PATH, metrics_port=SERVING_PORT,
        startup_allowance_seconds=startup, shares_engines=False,
        idle_timeout_seconds=LLM_IDLE_TIMEOUT_SECONDS,
        # Scale-in and rollouts: the ALB stops sending (its deregistration), then running answers get time to end.
        drain_seconds=LLM_DRAIN_SECONDS,
        lifecycle={"preStop": {"exec": {"command": ["sleep", str(DEREGISTRATION_SECONDS)]}}})


SAGEMAKER_MODEL_DIR = "/opt/ml/model"
"""Where SageMaker puts the model data before the container starts."""
SAGEMAKER_PORT = 8080
"""Where SageMaker calls the container (/ping, /invocations); the entrypoint sets it itself."""
SAGEMAKER_FLAG_PREFIX = "SM_VLLM_"
"""vLLM's SageMaker entrypoint (examples/deployment/sagemaker-entrypoint.sh, the image's `vllm-sagemaker` target, and
AWS's vLLM images for SageMaker) turns each `SM_VLLM_FOO_BAR=value` into `--foo-bar value` and serves on 8080, the
port SageMaker calls (/ping, /invocations: routes vLLM's server always has)."""


SAGEMAKER_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK")
"""What SageMaker's vLLM gets of VLLM_ENV: offline, no usage reports (its root filesystem is writable, and SageMaker
owns its connections)."""


def sagemaker_vllm_env(engine: VllmEngine) -> dict[str, str]:
    """The same engine flags as on KServe (`vllm_args`), as the SageMaker entrypoint's environment."""
    args = vllm_args(engine, SAGEMAKER_MODEL_DIR, SAGEMAKER_PORT)
    flags = {flag: value for flag, value in zip(args[1::2], args[2::2], strict=True)
             if flag not in ("--host", "--port")}  # the entrypoint's own
    return {**{SAGEMAKER_FLAG_PREFIX + flag.removeprefix("--").replace("-", "_").upper(): value
               for flag, value in flags.items()},
            SAGEMAKER_FLAG_PREFIX + "MODEL": SAGEMAKER_MODEL_DIR,
            **{e["name"]: e["value"] for e in VLLM_ENV if e["name"] in SAGEMAKER_ENV}}
