"""Local SageMaker mode reachable on the host's 127.0.0.1 only (what `make serve-local MODE=sagemaker` runs).

Triton's SageMaker listener binds 0.0.0.0 whatever it is told, so locally it runs in a private network namespace
(`unshare --net`), where 0.0.0.0 is loopback only. A filesystem Unix socket is shared across network namespaces, so two
byte relays join the namespaced port to 127.0.0.1:PORT on the host:

  host 127.0.0.1:PORT  ->  unix socket (temp dir)  ->  namespace 127.0.0.1:PORT  ->  Triton SageMaker listener

  python -m serving_image.loopback_bridge [--port 8080] [--model-dir serving_image/sample_model]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "sample_model"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def _relay(connect):
    async def handle(reader, writer):
        try:
            upstream_reader, upstream_writer = await connect()
        except OSError:
            writer.close()  # the server is not listening yet: the client sees a closed connection, as with no server
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
    return handle


async def _tcp_to_unix(port: int, socket_path: str) -> None:
    server = await asyncio.start_server(_relay(lambda: asyncio.open_unix_connection(socket_path)), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _unix_to_tcp(socket_path: str, port: int) -> None:
    server = await asyncio.start_unix_server(_relay(lambda: asyncio.open_connection("127.0.0.1", port)), socket_path)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving_image.loopback_bridge", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)))
    parser.add_argument("--model-dir", type=Path, default=SAMPLE)
    parser.add_argument("--inside", metavar="SOCKET", help=argparse.SUPPRESS)  # the namespace half (internal)
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be a TCP port (1-65535), got {args.port}")
    if args.inside:
        asyncio.run(_unix_to_tcp(args.inside, args.port))
        return 0
    if not shutil.which("unshare"):
        print("loopback_bridge: util-linux `unshare` is needed to run SageMaker mode locally", file=sys.stderr)
        return 2

    workdir = tempfile.mkdtemp(prefix="mlserve-bridge-")
    socket_path = os.path.join(workdir, "sagemaker.sock")
    python = shlex.quote(sys.executable)
    inner = (f"ip link set lo up && {python} -m serving_image.loopback_bridge --inside {shlex.quote(socket_path)} "
             f"--port {args.port} & exec {python} -m serving_image serve --local --mode sagemaker "
             f"--model-dir {shlex.quote(str(args.model_dir))} --port {args.port}")
    # Unprivileged users get a network namespace through a user namespace that maps them to root inside it.
    user_ns = [] if os.geteuid() == 0 else ["--map-root-user"]
    outer = threading.Thread(target=asyncio.run, args=(_tcp_to_unix(args.port, socket_path),), daemon=True)
    outer.start()
    print(f"loopback_bridge: SageMaker contract on http://127.0.0.1:{args.port} (/ping, /invocations)", flush=True)
    namespace = subprocess.Popen(["unshare", *user_ns, "--net", "--kill-child", "sh", "-c", inner],
                                 start_new_session=True)

    def stop(signum, _frame):
        if namespace.poll() is None:
            os.killpg(namespace.pid, signal.SIGTERM)  # the server drains in-flight requests, the relay just stops

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        return namespace.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
