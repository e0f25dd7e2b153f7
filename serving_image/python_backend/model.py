"""Triton python-backend model that runs an ONNX file with ONNX Runtime, batching the requests Triton hands it.

The local path of the serving image (the python backend is the only one in the bundled CPU tritonserver). Triton's
dynamic batcher gives `execute` several requests at once: their inputs are concatenated on the batch dimension, run
in one session call, and the outputs split back, so batching really amortizes work as it does with TensorRT.
"""

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime
import triton_python_backend_utils as pb_utils  # pyright: ignore[reportMissingImports]  (Triton provides it at run time)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = Path(args["model_repository"]) / args["model_version"] / config["parameters"]["onnx_model"]["string_value"]
        options = onnxruntime.SessionOptions()
        instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1
        options.intra_op_num_threads = max(1, (os.cpu_count() or 1) // instances)
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        batches = [[pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs]
                   for request in requests]
        sizes = [tensors[0].shape[0] for tensors in batches]
        feeds = {name: np.concatenate([tensors[i] for tensors in batches]) for i, name in enumerate(self.inputs)}
        try:
            results = [np.asarray(r) for r in self.session.run(self.outputs, feeds)]  # dense outputs only
        except Exception as error:  # noqa: BLE001 a failed run fails its requests, never the server
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error))) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, result[start:start + size]) for name, result in zip(self.outputs, results, strict=True)]))
            start += size
        return responses
