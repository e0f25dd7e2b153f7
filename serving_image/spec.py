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
from pydantic import BaseModel, ConfigDict, Field
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
