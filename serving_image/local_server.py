"""Start and stop the real local Triton (the `serve --local` entrypoint): for tests, the benchmark and the demo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "sample_model"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalServer:
    process: subprocess.Popen
    http: int
    grpc: int
    metrics: int
    log: Path
    mode: str = "kserve"

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def model_folder(tmp: Path, **spec_changes) -> Path:
    """A copy of the sample model with spec.json changes (e.g. a long warm-up)."""
    folder = tmp / "model"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SAMPLE / "model.onnx", folder / "model.onnx")
    spec = json.loads((SAMPLE / "spec.json").read_text())
    spec.update(spec_changes)
    (folder / "spec.json").write_text(json.dumps(spec))
    return folder


def start(model_dir: Path = SAMPLE, mode: str = "kserve", extra_env: dict | None = None,
          python: str = sys.executable) -> LocalServer:
    """`python`: the interpreter with the serving image's requirements (the infra tests pass .venv-serving's)."""
    http, grpc, metrics = free_port(), free_port(), free_port()
    log = Path(tempfile.mkstemp(prefix="mlserve-serve-", suffix=".log")[1])
    command = [python, "-m", "serving_image", "serve", "--local", "--mode", mode, "--model-dir", str(model_dir),
               "--port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    env = {**os.environ, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return LocalServer(process, http, grpc, metrics, log, mode)


def wait_ready(server: LocalServer, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited {server.process.returncode}:\n{server.logs()[-3000:]}")
        try:
            path = "/ping" if server.mode == "sagemaker" else "/v2/health/ready"
            with urllib.request.urlopen(f"http://{server.url}{path}", timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"not ready in {timeout} s:\n{server.logs()[-3000:]}")


def stop(server: LocalServer, timeout: float = 30) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextmanager
def running(model_dir: Path = SAMPLE, mode: str = "kserve", extra_env: dict | None = None,
            python: str = sys.executable):
    server = start(model_dir, mode, extra_env, python)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)
        server.log.unlink(missing_ok=True)
