"""`serve`: the container's entrypoint (SageMaker runs `docker run IMAGE serve`).

  serve [--mode sagemaker|kserve] [--model-dir DIR] [--port N] [--backend auto|tensorrt_plan|onnxruntime|python]
        [--local]

Builds the Triton model repository from the released model folder (building or reusing cached TensorRT engines on a
GPU), starts tritonserver with the mode's ports, waits until the model is ready and says how long that took, forwards
SIGTERM so in-flight requests finish, and exits with the server's status.
  sagemaker: /ping and /invocations on SAGEMAKER_BIND_TO_PORT or 8080, model from /opt/ml/model.
  kserve:    v2 HTTP on 8080, gRPC on 9000, metrics on 8002.
  --local:   the tritonserver bundled with nvidia-pytriton (CPU, python backend), bound to 127.0.0.1.
HTTP goes through the front (`front.py`), which refuses a client's mistakes with a 4xx before Triton sees them;
Triton's own HTTP and metrics listen on loopback ports behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import uvloop

from .engine_store import EngineStore, EngineStoreError, parse_uri, reason_of, summary
from .engines import TensorRTUnavailable, build_engine
from .front import DEFAULT_MAX_BODY_BYTES, Front, Gate, run
from .repository import ModelFileError, build_repository, load_model_dir
from .spec import Backend

SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")
KSERVE_PORTS = {"http": 8080, "grpc": 9000, "metrics": 8002}
EXIT_TIMEOUT_SECONDS = 25  # SageMaker sends SIGKILL 30 s after SIGTERM


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int


def triton_command(binary: str, repository: Path, mode: str, host: str, ports: Ports, inner: Ports,
                   backend_directory: Path | None = None, cache_bytes: int | None = None,
                   cache_directory: Path | None = None, gpu: bool = True) -> list[str]:
    """Triton's HTTP (and metrics) on loopback ports `inner`, behind the front; gRPC (KServe) on `host`.
    `gpu` False (serve --local on the CPU): Triton probes no GPU (no pinned or CUDA memory pool, no GPU metrics)."""
    command = [binary, f"--model-repository={repository}", f"--exit-timeout-secs={EXIT_TIMEOUT_SECONDS}",
               "--strict-readiness=true", "--exit-on-error=true", "--disable-auto-complete-config",
               "--allow-sagemaker=false", "--http-address=127.0.0.1", f"--http-port={inner.http}"]
    if not gpu:
        command += ["--pinned-memory-pool-byte-size=0", "--cuda-memory-pool-byte-size=0:0",
                    "--allow-gpu-metrics=false"]
    if backend_directory:
        command.append(f"--backend-directory={backend_directory}")
    if cache_bytes:  # the model's response_cache needs a server-side cache to live in
        command.append(f"--cache-config=local,size={cache_bytes}")
        if cache_directory:
            command.append(f"--cache-directory={cache_directory}")
    if mode == "sagemaker":
        # SageMaker's contract only (the front serves /ping and /invocations): no other port is reachable there,
        # CloudWatch is the metrics source.
        command += ["--allow-grpc=false", "--allow-metrics=false"]
    else:
        command += [f"--grpc-address={host}", f"--grpc-port={ports.grpc}", "--allow-metrics=true",
                    # p50/p90/p95/p99 request latency as a Prometheus summary: what the p99 SLO alert reads.
                    "--metrics-config=summary_latencies=true",
                    "--metrics-address=127.0.0.1", f"--metrics-port={inner.metrics}"]
    return command


def loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_front(spec, mode: str, host: str, ports: Ports, inner: Ports, max_body_bytes: int,
                store_failures: Counter[tuple[str, str]] | None = None):
    """The front on its own event loop in a thread. Returns `stop` (refuse new requests with 503, finish those in
    flight: safe in a signal handler), `join` (stop listening once Triton is gone) and a failure to listen."""
    front = Front(Gate(spec), inner.http, inner.metrics if mode == "kserve" else None, max_body_bytes,
                  store_failures)
    loop = uvloop.new_event_loop()  # libuv's loop: a good share of the front's per-request cost is the loop
    stop = asyncio.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run(front, mode, host, ports.http, ports.metrics if mode == "kserve" else None,
                                        stop))
        except OSError as error:  # the port is taken: said once, the supervisor stops Triton
            failed.append(error)
            print(f"serve: the front cannot listen on {host}:{ports.http}: {error}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=serve, name="front", daemon=True)
    thread.start()

    def request_stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(front.stop_accepting)

    def join() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=EXIT_TIMEOUT_SECONDS + 5)

    return request_stop, join, failed


def local_triton(workdir: Path) -> tuple[str, dict[str, str], Path, Path]:
    """The CPU tritonserver bundled with nvidia-pytriton: backend folder with this Python's stub, libraries found."""
    try:
        import pytriton
    except ImportError:
        raise SystemExit("serve --local needs nvidia-pytriton (pip install -r serving_image/requirements.txt)") from None
    dist = Path(pytriton.__file__).resolve().parent / "tritonserver"
    backends = workdir / "backends"
    (backends / "python").mkdir(parents=True, exist_ok=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, backends / "python" / item.name)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise SystemExit(f"nvidia-pytriton has no python backend stub for Python {version}")
    shutil.copy2(stub, backends / "python" / "triton_python_backend_stub")
    env = dict(os.environ)
    # The stub must load this Python's libpython, so its folder comes first (else models fail to load).
    libs = [sysconfig.get_config_var("LIBDIR"), str(Path(pytriton.__file__).resolve().parent.parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = ":".join([*libs, *filter(None, [env.get("LD_LIBRARY_PATH")])])
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return str(dist / "bin" / "tritonserver"), env, backends, dist / "caches"


# What the bundled tritonserver (built with GPU support) says at start on a machine without an NVIDIA driver, though
# the python backend never touches a GPU: its CUDA, NVML and DCGM probes failing. `serve --local` turns off what it
# can (`triton_command(gpu=False)`) and drops these lines, only these, from what Triton prints.
CPU_ONLY_NOISE = re.compile(r"CudaDriverHelper has not been initialized|CUDA driver version is insufficient|"
                            r"no CUDA-capable device is detected|Failed to initialize NVML|DCGM unable to start|"
                            r"failed to allocate pinned system memory: no pinned memory pool")


def copy_lines(source: IO[bytes], sink: IO[bytes], drop: re.Pattern[str]) -> threading.Thread:
    """Copy `source` to `sink` line by line, as they come, without the lines `drop` matches."""
    def copy() -> None:
        for line in iter(source.readline, b""):
            if not drop.search(line.decode(errors="replace")):
                sink.write(line)
                sink.flush()
        source.close()

    thread = threading.Thread(target=copy, name="triton-output", daemon=True)
    thread.start()
    return thread


def health_url(mode: str, host: str, ports: Ports) -> str:
    path = "/ping" if mode == "sagemaker" else "/v2/health/ready"
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{ports.http}{path}"


def wait_until_ready(process: subprocess.Popen, url: str, timeout: float, front_failed: list | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None or front_failed:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    return False


def choose_backend(requested: str, local: bool) -> Backend:
    if requested != "auto":
        return cast(Backend, requested)  # argparse `choices` already limited it
    if local:
        return "python"
    try:
        import tensorrt  # noqa: F401  # pyright: ignore[reportMissingImports]  (only in the Triton image)

        from .engines import gpu_compute_capability
        gpu_compute_capability()
        return "tensorrt_plan"
    except (ImportError, TensorRTUnavailable):
        return "onnxruntime"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="serve", description="Start Triton for a released model.")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"], help="SageMaker passes 'serve'")
    parser.add_argument("--mode", choices=["sagemaker", "kserve"], default=os.environ.get("MLSERVE_MODE", "sagemaker"))
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MLSERVE_MODEL_DIR", SAGEMAKER_MODEL_DIR)))
    parser.add_argument("--port", type=int, default=None, help="sagemaker: SAGEMAKER_BIND_TO_PORT or 8080; kserve: 8080")
    parser.add_argument("--grpc-port", type=int, default=KSERVE_PORTS["grpc"])
    parser.add_argument("--metrics-port", type=int, default=KSERVE_PORTS["metrics"])
    parser.add_argument("--backend", choices=["auto", "tensorrt_plan", "onnxruntime", "python"],
                        default=os.environ.get("MLSERVE_BACKEND", "auto"))
    parser.add_argument("--engine-cache", type=Path, default=Path(os.environ.get("MLSERVE_ENGINE_CACHE",
                                                                                 "/var/cache/mlserve/engines")))
    parser.add_argument("--engine-store", default=os.environ.get("MLSERVE_ENGINE_STORE", ""),
                        help="s3://bucket/prefix/ where built engines are shared across replicas (empty: none)")
    parser.add_argument("--local", action="store_true", default=os.environ.get("MLSERVE_LOCAL") == "1",
                        help="CPU tritonserver from nvidia-pytriton, bound to 127.0.0.1")
    parser.add_argument("--ready-timeout", type=float, default=600)
    parser.add_argument("--triton-http-port", type=int, default=int(os.environ.get("MLSERVE_TRITON_HTTP_PORT", 0)),
                        help="Triton's own HTTP port on 127.0.0.1, behind the front (0: any free one)")
    parser.add_argument("--max-body-bytes", type=int,
                        default=int(os.environ.get("MLSERVE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
                        help="larger request bodies get 413 from the front")
    args = parser.parse_args(argv)
    if args.port is None:
        args.port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080)) if args.mode == "sagemaker" else 8080
    if not 0 <= args.triton_http_port <= 65535:
        parser.error(f"--triton-http-port must be a TCP port (1-65535) or 0, got {args.triton_http_port}")
    for name in ("port", "grpc_port", "metrics_port"):
        if not 1 <= getattr(args, name) <= 65535:
            parser.error(f"--{name.replace('_', '-')} must be a TCP port (1-65535), got {getattr(args, name)}")
    if args.max_body_bytes < 1024:
        parser.error(f"--max-body-bytes must be at least 1024, got {args.max_body_bytes}")
    return args


def engine_store(uri: str, failures: Counter[tuple[str, str]]) -> EngineStore | None:
    """The shared engine store, or None; boto3 is imported only when one is configured (it ships in the image).
    A malformed URI is a usage error (EngineStoreError); a client that cannot be made (a broken AWS profile or
    config) is a store failure like any other: said, counted in `failures`, and the replica builds locally."""
    if not uri:
        return None
    parse_uri(uri)
    try:
        import boto3  # pyright: ignore[reportMissingImports]  (in the image; not needed without a store)

        client = boto3.client("s3")
    except Exception as error:  # noqa: BLE001 - the store is optional: no client means build here
        reason, said = reason_of(error)
        failures[("client", reason)] += 1
        print(f"engine store: cannot make an S3 client for {uri}: {said} (building instead)", file=sys.stderr,
              flush=True)
        return None
    return EngineStore.from_uri(uri, client, failures)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    host = "127.0.0.1" if args.local else "0.0.0.0"
    ports = Ports(args.port, args.grpc_port, args.metrics_port)
    inner = Ports(args.triton_http_port or loopback_port(), 0, loopback_port())
    workdir = Path(tempfile.mkdtemp(prefix="mlserve-"))
    store_failures: Counter[tuple[str, str]] = Counter()
    try:
        backend = choose_backend(args.backend, args.local)
        engines = []
        if backend == "tensorrt_plan" and not list(args.model_dir.glob("model.sm*.plan")):
            spec, onnx_path = load_model_dir(args.model_dir)
            store = engine_store(args.engine_store, store_failures)
            engines = [build_engine(onnx_path, spec, args.engine_cache, store=store)]
        spec = build_repository(args.model_dir, workdir / "repository", backend, gpu=backend != "python",
                                engines=engines)
    except (ModelFileError, TensorRTUnavailable, EngineStoreError) as error:
        print(f"serve: {error}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 2

    cpu_only = args.local and backend == "python"  # the bundled Triton serving on the CPU: no GPU to probe
    if args.local:
        binary, env, backend_directory, cache_directory = local_triton(workdir)
    else:
        binary, env, backend_directory, cache_directory = (shutil.which("tritonserver") or "tritonserver",
                                                           dict(os.environ), None, None)
    command = triton_command(binary, workdir / "repository", args.mode, host, ports, inner, backend_directory,
                             spec.response_cache_bytes if spec.response_cache else None, cache_directory,
                             gpu=not cpu_only)
    print(f"serve: {args.mode} mode, backend {backend}, model {spec.name} on port {ports.http}", flush=True)
    if store_failures:  # the store never stops a start; how often it failed is said here and on /metrics
        print(f"serve: {summary(store_failures)}; serving the locally built engine", file=sys.stderr, flush=True)
    if cpu_only:
        sys.stdout.flush()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        copiers = [copy_lines(cast(IO[bytes], process.stdout), sys.stdout.buffer, CPU_ONLY_NOISE),
                   copy_lines(cast(IO[bytes], process.stderr), sys.stderr.buffer, CPU_ONLY_NOISE)]
    else:
        process, copiers = subprocess.Popen(command, env=env), []
    stop_front, join_front, front_failed = start_front(spec, args.mode, host, ports, inner, args.max_body_bytes,
                                                       store_failures)

    def forward(signum, _frame):
        # The front stops listening and Triton stops taking requests; both finish those in flight (up to
        # --exit-timeout-secs), the front handing back Triton's answers.
        stop_front()
        if process.poll() is None:
            process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        if wait_until_ready(process, health_url(args.mode, host, ports), args.ready_timeout, front_failed):
            print(f"serve: ready in {time.monotonic() - started:.2f} s", flush=True)
        elif process.poll() is None:
            if not front_failed:
                print(f"serve: not ready after {args.ready_timeout:.0f} s; stopping", file=sys.stderr)
            process.terminate()
        status = process.wait()
        return 2 if front_failed and status == 0 else status
    finally:
        join_front()  # after Triton: the front hands back the answers Triton gave to in-flight requests
        for copier in copiers:
            copier.join(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
