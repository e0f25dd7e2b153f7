"""ONNX to TensorRT engines, one per GPU architecture, cached so that a warm start never rebuilds.

The cache key is (GPU compute capability, TensorRT version, sha256 of the ONNX file): an engine is only valid for
the architecture and TensorRT it was built with. Builds run at image build (`--target-arch`) or at container start
with the cache on a volume. The TensorRT code path is small and runs only where TensorRT and a GPU exist; elsewhere
`TensorRTUnavailable` says so and the onnxruntime backend is used.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .spec import ENGINE_FILE, ModelSpec


class TensorRTUnavailable(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    compute_capability: str  # "8.6"
    tensorrt_version: str
    onnx_sha256: str
    fp16: bool

    def folder(self) -> str:
        precision = "fp16" if self.fp16 else "fp32"
        return f"sm{self.compute_capability.replace('.', '')}-trt{self.tensorrt_version}-{precision}-{self.onnx_sha256[:16]}"


def gpu_compute_capability() -> str:
    """The first GPU's compute capability, from nvidia-smi (in every NVIDIA container image)."""
    if not shutil.which("nvidia-smi"):
        raise TensorRTUnavailable("no GPU: nvidia-smi is not on PATH")
    result = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                            text=True, timeout=30)
    if result.returncode != 0 or not result.stdout.strip():
        raise TensorRTUnavailable(f"no GPU visible to nvidia-smi: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip().splitlines()[0].strip()


def tensorrt_module():
    try:
        import tensorrt  # pyright: ignore[reportMissingImports]  (only in the Triton image)
    except ImportError:
        raise TensorRTUnavailable("TensorRT is not installed here (it ships in the Triton GPU image)") from None
    return tensorrt


def cached_engine(cache_dir: Path, key: EngineKey) -> Path:
    return cache_dir / key.folder() / ENGINE_FILE.format(arch=key.compute_capability.replace(".", ""))


def ensure_engine(key: EngineKey, cache_dir: Path, build: Callable[[Path], None], store=None) -> Path:
    """The engine for `key`: from the local cache, else from the shared store (an EngineStore), else built by
    `build(path)` and then shared. Only a good build is shared; a failed one raises before anything is uploaded.
    The store never raises here: whatever fails in it is said and counted by the store, and the engine is built."""
    engine_path = cached_engine(cache_dir, key)
    if engine_path.is_file():
        return engine_path
    if store is not None and store.fetch(key, engine_path):
        return engine_path
    build(engine_path)
    if store is not None:
        store.publish(key, engine_path)
    return engine_path


def build_engine(onnx_path: Path, spec: ModelSpec, cache_dir: Path, compute_capability: str | None = None,
                 store=None) -> Path:
    """Return the engine for this GPU: cached, shared (`store`), or built with a shared timing cache."""
    trt = tensorrt_module()
    arch = compute_capability or gpu_compute_capability()
    key = EngineKey(arch, trt.__version__, sha256_of(onnx_path), spec.fp16)
    return ensure_engine(key, cache_dir, lambda path: _tensorrt_build(trt, onnx_path, spec, cache_dir, arch, path),
                         store)


def _tensorrt_build(trt, onnx_path: Path, spec: ModelSpec, cache_dir: Path, arch: str, engine_path: Path) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    top = max(1, spec.max_batch_size)
    for tensor in spec.inputs:
        dims = tuple(d if d > 0 else 1 for d in tensor.dims)
        profile.set_shape(tensor.name, (1, *dims), (max(1, top // 2), *dims), (top, *dims))
    config.add_optimization_profile(profile)
    if spec.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    timing_path = cache_dir / f"timing-sm{arch.replace('.', '')}-trt{trt.__version__}.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path} on sm{arch}")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = engine_path.with_suffix(".partial")
    temporary.write_bytes(bytes(serialized))
    temporary.replace(engine_path)  # atomic: a crash mid-write never leaves a truncated engine in the cache
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
