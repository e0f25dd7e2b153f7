"""`make serve-local` on a machine without a GPU: Triton probes no GPU, and its start prints no GPU driver errors."""

import io
import re
from pathlib import Path

from serving_image.entrypoint import CPU_ONLY_NOISE, Ports, copy_lines, triton_command

# What the bundled tritonserver printed at start on a CPU-only machine before serve --local turned the probes off.
GPU_DRIVER_ERRORS = re.compile(r"CudaDriverHelper|CUDA driver version is insufficient|NVML|DCGM|"
                               r"Unable to allocate pinned system memory|failed to allocate pinned system memory")


def test_the_cpu_triton_is_told_not_to_probe_gpus():
    ports, inner = Ports(8080, 9000, 8002), Ports(18080, 0, 18002)
    cpu = triton_command("tritonserver", Path("/r"), "kserve", "127.0.0.1", ports, inner, gpu=False)
    assert {"--pinned-memory-pool-byte-size=0", "--cuda-memory-pool-byte-size=0:0",
            "--allow-gpu-metrics=false"} <= set(cpu)
    gpu = triton_command("tritonserver", Path("/r"), "kserve", "0.0.0.0", ports, inner)
    assert not any("pinned" in flag or "gpu-metrics" in flag for flag in gpu)


def test_only_the_gpu_probe_lines_are_dropped():
    lines = [
        'I1207 03:21:13.257647 31706 model_lifecycle.cc:472] "loading: resnet50:1"\n',
        'E1207 03:21:13.256635 31706 server.cc:241] "CudaDriverHelper has not been initialized."\n',
        "Error: Failed to initialize NVML\n",
        'W1207 03:21:16.345490 31706 metrics.cc:798] "DCGM unable to start: DCGM initialization error"\n',
        'W1207 03:21:13.385391 31706 pinned_memory_manager.cc:170] "failed to allocate pinned system memory: no '
        'pinned memory pool, falling back to non-pinned system memory"\n',
        'E1207 03:21:13.300000 31706 model_repository_manager.cc:1] "Poll failed for model directory"\n',
    ]
    sink = io.BytesIO()
    copy_lines(io.BytesIO("".join(lines).encode()), sink, CPU_ONLY_NOISE).join(timeout=5)
    assert sink.getvalue().decode().splitlines() == [lines[0].rstrip("\n"), lines[5].rstrip("\n")]


def test_serve_local_starts_without_gpu_driver_errors(server):
    logs = server.logs()
    assert "successfully loaded 'resnet50'" in logs  # Triton's start, past its GPU probes
    assert [line for line in logs.splitlines() if GPU_DRIVER_ERRORS.search(line)] == []
