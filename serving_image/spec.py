"""A model's serving spec, and the Triton `config.pbtxt` it renders for each backend.

The config is built as Triton's own `ModelConfig` protobuf message (from tritonclient), then printed as text, so it
always parses with the schema Triton itself uses. Three backends:
  - tensorrt_plan: the GPU path in the image, one engine per GPU architecture through `cc_model_filenames`;
  - onnxruntime: CPU or GPU without TensorRT (the fallback when no engine can be built);
  - python: our ONNX Runtime wrapper (`python_backend/model.py`), the local path where only the python backend exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from google.protobuf import text_format
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tritonclient.grpc import model_config_pb2

# protoc builds the message classes at import time and tritonclient ships no stubs for them: typed as Any on purpose.
pb: Any = model_config_pb2

Backend = Literal["tensorrt_plan", "onnxruntime", "python"]
DataType = Literal["FP32", "FP16", "BF16", "INT8", "INT32", "INT64", "UINT8", "BOOL"]
# GPU compute capability -> the engine file built for it (A100 8.0, A10G 8.6, L4 8.9, H100 9.0).
ENGINE_FILE = "model.sm{arch}.plan"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tensor(Strict):
    name: str = Field(min_length=1)
    datatype: DataType
    dims: list[int] = Field(min_length=1, description="Per-sample shape; -1 for a variable dimension")


class Warmup(Strict):
    batch_size: int = Field(ge=1)
    data: Literal["zero", "random"] = "random"
    count: int = Field(default=1, ge=1, le=10_000, description="Runs of this sample before the model is ready")


class QueuePolicy(Strict):
    """Bounded waiting: overload is refused at once (the front answers 429) instead of queueing without bound."""
    max_queue_size: int = Field(ge=1, le=100_000, description="Requests that may wait; one more is refused")
    timeout_microseconds: int = Field(default=0, ge=0, le=60_000_000,
                                      description="A request waiting longer is refused; 0: no timeout")
    allow_timeout_override: bool = Field(default=False, description="A request may ask for a shorter timeout")


class Priorities(Strict):
    levels: int = Field(ge=2, le=16, description="Priority levels (1 is the highest)")
    default: int = Field(ge=1, description="The level of a request that names none")


class ModelSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[Tensor] = Field(min_length=1)
    max_batch_size: int = Field(default=32, ge=0, le=1024)
    max_queue_delay_microseconds: int = Field(default=2000, ge=0, le=1_000_000)
    instance_count: int = Field(default=1, ge=1, le=16)
    warmup: list[Warmup] = Field(default_factory=lambda: [Warmup(batch_size=1)])
    cuda_graphs: bool = False
    fp16: bool = True
    gpu_architectures: list[str] = Field(default_factory=lambda: ["8.0", "8.6", "8.9", "9.0"])
    response_cache: bool = Field(default=False, description="Answer a repeated identical request from Triton's "
                                                            "cache (deterministic models only)")
    response_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024, le=16 * 1024**3,
                                      description="Size of the server's local response cache (with response_cache)")
    queue: QueuePolicy | None = Field(default=None, description="Bound the dynamic batcher's queue")
    priorities: Priorities | None = Field(default=None, description="Request priority levels")

    @model_validator(mode="after")
    def _batching_needed(self) -> ModelSpec:
        if (self.queue or self.priorities) and self.max_batch_size == 0:
            raise ValueError("queue and priorities need the dynamic batcher (max_batch_size > 0)")
        if self.priorities and self.priorities.default > self.priorities.levels:
            raise ValueError(f"priorities.default {self.priorities.default} is above levels "
                             f"{self.priorities.levels}")
        return self

    @classmethod
    def load(cls, path: Path) -> ModelSpec:
        return cls.model_validate_json(path.read_text())


def _data_type(datatype: str) -> int:
    return pb.DataType.Value(f"TYPE_{'STRING' if datatype == 'BYTES' else datatype}")


def model_config(spec: ModelSpec, backend: Backend, gpu: bool) -> Any:  # a model_config_pb2.ModelConfig
    config = pb.ModelConfig(name=spec.name, max_batch_size=spec.max_batch_size)
    for tensor in spec.inputs:
        config.input.append(pb.ModelInput(name=tensor.name, data_type=_data_type(tensor.datatype), dims=tensor.dims))
    for tensor in spec.outputs:
        config.output.append(pb.ModelOutput(name=tensor.name, data_type=_data_type(tensor.datatype),
                                            dims=tensor.dims))
    if spec.max_batch_size > 0:
        # No preferred_batch_size: NVIDIA advises letting the scheduler form the largest batch within the delay.
        config.dynamic_batching.max_queue_delay_microseconds = spec.max_queue_delay_microseconds
        if spec.queue:
            policy = config.dynamic_batching.default_queue_policy
            policy.max_queue_size = spec.queue.max_queue_size
            policy.default_timeout_microseconds = spec.queue.timeout_microseconds
            policy.allow_timeout_override = spec.queue.allow_timeout_override
            policy.timeout_action = pb.ModelQueuePolicy.REJECT
        if spec.priorities:
            config.dynamic_batching.priority_levels = spec.priorities.levels
            config.dynamic_batching.default_priority_level = spec.priorities.default
    if spec.response_cache:
        config.response_cache.enable = True
    kind = pb.ModelInstanceGroup.KIND_GPU if gpu else pb.ModelInstanceGroup.KIND_CPU
    config.instance_group.append(pb.ModelInstanceGroup(count=spec.instance_count, kind=kind))

    if backend == "tensorrt_plan":
        config.platform = "tensorrt_plan"
        for arch in spec.gpu_architectures:
            config.cc_model_filenames[arch] = ENGINE_FILE.format(arch=arch.replace(".", ""))
        if spec.cuda_graphs:
            config.optimization.cuda.graphs = True
    elif backend == "onnxruntime":
        config.backend = "onnxruntime"
        config.default_model_filename = "model.onnx"
    else:
        config.backend = "python"
        config.parameters["onnx_model"].string_value = "model.onnx"

    for index, warmup in enumerate(spec.warmup):
        sample = pb.ModelWarmup(name=f"warmup_{index}_batch{warmup.batch_size}", batch_size=warmup.batch_size,
                                count=warmup.count)
        for tensor in spec.inputs:
            data = pb.ModelWarmup.Input(data_type=_data_type(tensor.datatype),
                                        dims=[d if d > 0 else 1 for d in tensor.dims])
            if warmup.data == "zero":
                data.zero_data = True
            else:
                data.random_data = True
            sample.inputs[tensor.name].CopyFrom(data)
        config.model_warmup.append(sample)
    return config


def render(spec: ModelSpec, backend: Backend, gpu: bool) -> str:
    return text_format.MessageToString(model_config(spec, backend, gpu))


def parse(text: str) -> Any:  # a model_config_pb2.ModelConfig
    """Parse config.pbtxt text with Triton's schema (raises text_format.ParseError on anything Triton would reject)."""
    return text_format.Parse(text, pb.ModelConfig())
