"""Specs render Triton configs that parse with Triton's schema; bad model files get clear errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from google.protobuf import text_format

from serving_image.engines import EngineKey, TensorRTUnavailable, build_engine, cached_engine
from serving_image.entrypoint import choose_backend, parse_args
from serving_image.local_server import ROOT, SAMPLE
from serving_image.repository import ModelFileError, build_repository, load_model_dir
from serving_image.sample_model import make_sample
from serving_image.spec import ModelSpec, parse, render

SPEC = ModelSpec.load(SAMPLE / "spec.json")


@pytest.mark.parametrize("backend,gpu", [("tensorrt_plan", True), ("onnxruntime", True), ("onnxruntime", False),
                                         ("python", False)])
def test_every_backend_renders_a_config_that_parses_with_tritons_schema(backend, gpu):
    config = parse(render(SPEC, backend, gpu))
    assert config.name == "resnet50" and config.max_batch_size == 32
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert not config.dynamic_batching.preferred_batch_size
    assert [w.batch_size for w in config.model_warmup] == [1, 8]
    assert config.instance_group[0].kind == (config.instance_group[0].KIND_GPU if gpu else
                                             config.instance_group[0].KIND_CPU)


def test_tensorrt_config_picks_an_engine_per_gpu_architecture_and_uses_cuda_graphs():
    config = parse(render(SPEC, "tensorrt_plan", True))
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {"8.0": "model.sm80.plan", "8.6": "model.sm86.plan",
                                               "8.9": "model.sm89.plan", "9.0": "model.sm90.plan"}
    assert config.optimization.cuda.graphs is True


def test_a_config_triton_would_reject_fails_to_parse():
    with pytest.raises(text_format.ParseError):
        parse(render(SPEC, "onnxruntime", False) + "\nmax_batch_sise: 4\n")


def test_invalid_spec_is_refused_by_the_model():
    with pytest.raises(ValueError):
        ModelSpec.model_validate({**json.loads((SAMPLE / "spec.json").read_text()), "max_batch_size": -1})


def test_python_backend_repository_has_the_wrapper_and_the_onnx(tmp_path):
    build_repository(SAMPLE, tmp_path, "python", gpu=False)
    assert sorted(p.name for p in (tmp_path / "resnet50" / "1").iterdir()) == ["model.onnx", "model.py"]
    assert parse((tmp_path / "resnet50" / "config.pbtxt").read_text()).backend == "python"


def copy_sample(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(SAMPLE, folder)
    return folder


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "spec.json").unlink(), "spec.json is missing"),
    (lambda d: (d / "spec.json").write_text("{not json"), "is not valid JSON"),
    (lambda d: (d / "spec.json").write_text(json.dumps({"name": "x"})), "is not a valid model spec: inputs: Field required"),
    (lambda d: (d / "model.onnx").unlink(), "model.onnx is missing"),
    (lambda d: (d / "model.onnx").write_bytes(b"\x00garbage" * 10), "is not a readable ONNX model"),
    (lambda d: (d / "spec.json").write_text((d / "spec.json").read_text().replace('"input"', '"image"')),
     "inputs ['image'] do not match the ONNX graph's ['input']"),
])
def test_bad_model_files_get_a_clear_error(tmp_path, damage, message):
    folder = copy_sample(tmp_path)
    damage(folder)
    with pytest.raises(ModelFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_model_dir(folder)


def test_serve_exits_2_with_the_message_for_a_bad_model_folder(tmp_path):
    folder = copy_sample(tmp_path)
    (folder / "model.onnx").unlink()
    result = subprocess.run([sys.executable, "-m", "serving_image", "serve", "--local", "--mode", "kserve",
                             "--model-dir", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "model.onnx is missing" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_a_port_out_of_range():
    with pytest.raises(SystemExit):
        parse_args(["serve", "--mode", "kserve", "--port", "70000"])


def test_tensorrt_plan_repository_needs_engines(tmp_path):
    with pytest.raises(ModelFileError, match="no TensorRT engines"):
        build_repository(SAMPLE, tmp_path, "tensorrt_plan", gpu=True)


def test_engine_cache_key_separates_architecture_tensorrt_and_model():
    key = EngineKey("8.6", "10.7.0", "ab" * 32, fp16=True)
    assert key.folder() == "sm86-trt10.7.0-fp16-abababababababab"
    assert cached_engine(Path("/cache"), key) == Path("/cache/sm86-trt10.7.0-fp16-abababababababab/model.sm86.plan")
    assert EngineKey("9.0", "10.7.0", "ab" * 32, True).folder() != key.folder()
    assert EngineKey("8.6", "10.8.0", "ab" * 32, True).folder() != key.folder()


def test_without_tensorrt_the_builder_says_so_and_auto_picks_onnxruntime(tmp_path):
    with pytest.raises(TensorRTUnavailable, match="TensorRT is not installed here"):
        build_engine(SAMPLE / "model.onnx", SPEC, tmp_path)
    assert choose_backend("auto", local=False) == "onnxruntime"
    assert choose_backend("auto", local=True) == "python"


def test_sample_model_is_made_deterministically_and_matches_its_expected_outputs():
    assert make_sample.build_model().SerializeToString() == (SAMPLE / "model.onnx").read_bytes()
    session = onnxruntime.InferenceSession(str(SAMPLE / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = json.loads((SAMPLE / "expected.json").read_text())["logits"]
    for seed, logits in expected.items():
        np.testing.assert_allclose(session.run(["logits"], {"input": make_sample.sample_input(int(seed))})[0][0],
                                   logits, atol=1e-5)


def test_queue_policy_cache_and_priorities_render_with_tritons_schema():
    spec = ModelSpec.model_validate({**json.loads((SAMPLE / "spec.json").read_text()), "response_cache": True,
                                     "queue": {"max_queue_size": 64, "timeout_microseconds": 250_000},
                                     "priorities": {"levels": 3, "default": 2}})
    config = parse(render(spec, "tensorrt_plan", True))
    assert config.response_cache.enable is True
    policy = config.dynamic_batching.default_queue_policy
    assert (policy.max_queue_size, policy.default_timeout_microseconds) == (64, 250_000)
    assert policy.timeout_action == 0  # REJECT: a timed-out request is refused, never run late
    assert (config.dynamic_batching.priority_levels, config.dynamic_batching.default_priority_level) == (3, 2)


@pytest.mark.parametrize("change,message", [
    ({"max_batch_size": 0, "queue": {"max_queue_size": 4}}, "need the dynamic batcher"),
    ({"priorities": {"levels": 2, "default": 3}}, "above levels"),
    ({"queue": {"max_queue_size": 0}}, "greater than or equal to 1"),
])
def test_a_queue_or_priority_setting_triton_could_not_honour_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec.model_validate({**json.loads((SAMPLE / "spec.json").read_text()), **change})
