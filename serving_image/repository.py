"""Turn a released model folder into a Triton model repository for one backend.

A released model (what `model.tar.gz` unpacks to, e.g. SageMaker's /opt/ml/model) holds `spec.json` and
`model.onnx`, and may hold prebuilt engines `model.smXY.plan`. The repository is `<repo>/<name>/config.pbtxt` and
`<repo>/<name>/1/<files>`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
from pydantic import ValidationError

from .spec import Backend, ModelSpec, render

PYTHON_BACKEND_MODEL = Path(__file__).resolve().parent / "python_backend" / "model.py"


class ModelFileError(ValueError):
    """A released model folder that cannot be served; the message says which file and what to do."""


def load_model_dir(model_dir: Path) -> tuple[ModelSpec, Path]:
    spec_path, onnx_path = model_dir / "spec.json", model_dir / "model.onnx"
    if not model_dir.is_dir():
        raise ModelFileError(f"model folder {model_dir} does not exist")
    if not spec_path.is_file():
        raise ModelFileError(f"{spec_path} is missing: a released model needs spec.json beside model.onnx")
    try:
        spec = ModelSpec.load(spec_path)
    except ValidationError as error:
        problems = [e for e in error.errors() if e["type"] != "json_invalid"]
        if not problems:
            raise ModelFileError(f"{spec_path} is not valid JSON: {error.errors()[0]['msg']}") from None
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problems)
        raise ModelFileError(f"{spec_path} is not a valid model spec: {details}") from None
    if not onnx_path.is_file():
        raise ModelFileError(f"{onnx_path} is missing")
    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception as error:  # noqa: BLE001 onnx raises DecodeError and friends for a damaged file
        raise ModelFileError(f"{onnx_path} is not a readable ONNX model ({type(error).__name__})") from None
    initializers = {i.name for i in graph.initializer}
    declared = {"inputs": {t.name for t in spec.inputs}, "outputs": {t.name for t in spec.outputs}}
    actual = {"inputs": {i.name for i in graph.input if i.name not in initializers},
              "outputs": {o.name for o in graph.output}}
    for kind in ("inputs", "outputs"):
        if declared[kind] != actual[kind]:
            raise ModelFileError(f"spec.json {kind} {sorted(declared[kind])} do not match the ONNX graph's "
                                 f"{sorted(actual[kind])}")
    return spec, onnx_path


def build_repository(model_dir: Path, repository: Path, backend: Backend, gpu: bool,
                     engines: list[Path] | None = None) -> ModelSpec:
    spec, onnx_path = load_model_dir(model_dir)
    version_dir = repository / spec.name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    (repository / spec.name / "config.pbtxt").write_text(render(spec, backend, gpu))
    if backend == "tensorrt_plan":
        plans = sorted(model_dir.glob("model.sm*.plan")) + list(engines or [])
        if not plans:
            raise ModelFileError(f"no TensorRT engines (model.smXY.plan) in {model_dir}; build them first")
        for plan in plans:
            shutil.copy2(plan, version_dir / plan.name)
    else:
        shutil.copy2(onnx_path, version_dir / "model.onnx")
    if backend == "python":
        shutil.copy2(PYTHON_BACKEND_MODEL, version_dir / "model.py")
    return spec
