"""Make the sample model: a small ResNet-style image classifier, deterministically (same bytes every run).

    python -m serving_image.sample_model.make_sample        # writes model.onnx and expected.json beside this file

Input `input`: FP32 [batch, 3, 32, 32]; output `logits`: FP32 [batch, 10]. A stem convolution, two residual blocks
and a linear head: big enough that batching changes throughput, small enough to ship (about 60 KB).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
INPUT, OUTPUT = "input", "logits"
CHANNELS, CLASSES, SIZE = 24, 10, 32
# onnxruntime 1.31 reads IR version 10; onnx 1.23 would write 14 by default.
IR_VERSION, OPSET = 10, 17
EXPECTED_SEEDS = (0, 1, 2)


def _weights(rng: np.random.RandomState, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def build_model(size: int = SIZE, downsample: int = 1) -> onnx.ModelProto:
    """The sample model; `size`/`downsample` make the benchmark's large-input variant (an average pool first, so
    that at 224x224 the request's transport, not the convolutions, is what a CPU spends its time on)."""
    rng = np.random.RandomState(20261122)
    initializers, nodes = [], []
    source = INPUT
    if downsample > 1:
        nodes.append(helper.make_node("AveragePool", [INPUT], ["downsampled"], kernel_shape=[downsample, downsample],
                                      strides=[downsample, downsample], name="downsample"))
        source = "downsampled"

    def conv(name: str, source: str, in_ch: int, out_ch: int, relu: bool) -> str:
        initializers.append(numpy_helper.from_array(_weights(rng, (out_ch, in_ch, 3, 3), in_ch * 9), f"{name}.w"))
        initializers.append(numpy_helper.from_array(np.zeros(out_ch, np.float32), f"{name}.b"))
        nodes.append(helper.make_node("Conv", [source, f"{name}.w", f"{name}.b"], [f"{name}.out"],
                                      pads=[1, 1, 1, 1], name=name))
        if not relu:
            return f"{name}.out"
        nodes.append(helper.make_node("Relu", [f"{name}.out"], [f"{name}.relu"], name=f"{name}.relu"))
        return f"{name}.relu"

    x = conv("stem", source, 3, CHANNELS, relu=True)
    for block in ("block1", "block2"):
        y = conv(f"{block}.conv1", x, CHANNELS, CHANNELS, relu=True)
        y = conv(f"{block}.conv2", y, CHANNELS, CHANNELS, relu=False)
        nodes.append(helper.make_node("Add", [x, y], [f"{block}.sum"], name=f"{block}.add"))
        nodes.append(helper.make_node("Relu", [f"{block}.sum"], [f"{block}.out"], name=f"{block}.relu"))
        x = f"{block}.out"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1, name="flatten"))
    initializers.append(numpy_helper.from_array(_weights(rng, (CHANNELS, CLASSES), CHANNELS), "head.w"))
    initializers.append(numpy_helper.from_array((rng.standard_normal(CLASSES) * 0.01).astype(np.float32), "head.b"))
    nodes.append(helper.make_node("Gemm", ["features", "head.w", "head.b"], [OUTPUT], name="head"))

    graph = helper.make_graph(
        nodes, "mlserve_sample_resnet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", CLASSES])],
        initializers)
    model = helper.make_model(graph, producer_name="mlserve", ir_version=IR_VERSION,
                              opset_imports=[helper.make_operatorsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def sample_input(seed: int, batch: int = 1) -> np.ndarray:
    return np.random.RandomState(seed).uniform(0, 1, (batch, 3, SIZE, SIZE)).astype(np.float32)


def main() -> None:
    model = build_model()
    path = HERE / "model.onnx"
    path.write_bytes(model.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = {str(seed): np.asarray(session.run([OUTPUT], {INPUT: sample_input(seed)})[0])[0].round(6).tolist()
                for seed in EXPECTED_SEEDS}
    (HERE / "expected.json").write_text(json.dumps(
        {"input": "numpy.random.RandomState(seed).uniform(0, 1, (1, 3, 32, 32)) as float32", "logits": expected},
        indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes) and expected.json")


if __name__ == "__main__":
    main()
