"""HTTP/1.1 for the front, on asyncio (uvloop in the image) and httptools (the llhttp parser uvicorn uses): a server
that hands each whole request to one handler, and a keep-alive client for Triton on the loopback.

Only transport: no routes, no policy (those are `front.py`'s). Why not aiohttp, which the front used before: under
`make bench-serving` most of the front's time went to aiohttp's server and client machinery (request and response
objects, middlewares, the client's session, connector and timers), several times what a proxy needs per request
(see docs/benchmark.md). What this module does instead, per request: the parser's callbacks collect the method,
target, headers and body; the handler runs as one task; the answer is one write of a head built from bytes.

The server keeps what the front relied on from aiohttp: keep-alive (idle connections closed after
`keepalive_timeout`), pipelined requests answered in order, `Expect: 100-continue`, chunked request bodies, a body
limit (413 before the body is read when Content-Length says so, the rest read and dropped, then the connection
closed), a header size limit, 400 for what does not parse as HTTP, and a graceful `shutdown` (stop listening, close
idle connections, wait for the requests in flight). The client keeps idle connections to Triton for
`idle_timeout` (Triton's own shutdown waits for every open connection, idle ones included), and `close_idle()`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import cast

import httptools

MAX_HEADER_BYTES = 64 * 1024
KEEPALIVE_TIMEOUT = 75.0  # aiohttp's default, which the front had
LINGER_SECONDS = 10.0  # how long the rest of a refused oversized body is read and dropped (aiohttp's lingering_time)
REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class Request:
    """One whole request. `headers`: lower-case names; a repeated header keeps its last value."""
    __slots__ = ("method", "target", "path", "query", "headers", "body", "too_large", "keep_alive", "http10",
                 "unparsable")

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.path = ""
        self.query = b""
        self.headers: dict[str, str] = {}
        self.body = b""
        self.too_large = False
        self.keep_alive = True
        self.http10 = False
        self.unparsable: Response | None = None  # not HTTP: answered with this, never handed to the handler


class Response:
    """`headers`: (name, value) pairs besides Content-Length, Date and Connection, which the server writes."""
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None):
        self.status, self.body, self.headers = status, body, headers or []


Handler = Callable[[Request], Awaitable[Response]]


class _Date:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self.second, self.value = 0, b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second, self.value = now, b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self.value


_date = _Date()


def _head(status: int, length: int, headers: list[tuple[str, str]], close: bool, http10: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Unknown")), _date(),
             b"Content-Length: %d\r\n" % length]
    for name, value in headers:
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    if close:
        lines.append(b"Connection: close\r\n")
    elif http10:
        lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


class _ServerConnection(asyncio.Protocol):
    """One client connection: parse, queue whole requests, answer them one at a time and in order."""

    def __init__(self, server: Server):
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.request = Request()
        self.url = bytearray()
        self.header_name = b""
        self.header_bytes = 0
        self.chunks: list[bytes] = []
        self.body_size = 0
        self.discarding = False  # the rest of an oversized body: read and dropped
        self.queue: deque[Request] = deque()
        self.busy = False
        self.closing = False  # close once what is queued is answered
        self.last_active = time.monotonic()
        self.paused = False
        self.headers_too_large = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is not a subclass, but is one
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrades are not supported")
        except httptools.HttpParserError as error:
            if self.headers_too_large:
                self._fail(431, f"the request's headers are larger than {MAX_HEADER_BYTES} bytes")
                return
            self._fail(400, f"not a valid HTTP request: {error}")

    def _fail(self, status: int, message: str) -> None:
        """An unparsable request: answered at once (after what is queued), then the connection closes."""
        request = Request()
        request.keep_alive = False
        request.unparsable = Response(status, json.dumps({"error": message}).encode(),
                                      [("Content-Type", "application/json")])
        self._enqueue(request)
        self.closing = True
        if self.transport is not None:
            self.transport.pause_reading()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.request = Request()
        self.url.clear()
        self.header_bytes = 0
        self.chunks = []
        self.body_size = 0
        self.discarding = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > MAX_HEADER_BYTES:
            self.headers_too_large = True
            raise ValueError("headers too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            self.headers_too_large = True
            raise ValueError("headers too large")
        self.request.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request, parser = self.request, self.parser
        request.method = parser.get_method().decode("ascii", "replace")
        request.http10 = parser.get_http_version() == "1.0"
        request.keep_alive = parser.should_keep_alive()
        target = bytes(self.url)
        if not target.startswith(b"/"):  # absolute form (a proxy's); "*" and others keep no path
            try:
                parsed = httptools.parse_url(target)
                target = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
            except httptools.HttpParserInvalidURLError:
                target = b"/"
        request.target = target
        path, _, request.query = target.partition(b"?")
        request.path = path.decode("latin-1")
        length = request.headers.get("content-length")
        expects = request.headers.get("expect", "").lower() == "100-continue"
        if length is not None and length.isdigit() and int(length) > self.server.max_body_bytes:
            self._too_large(body_follows=not expects)  # with Expect, the client sends no body after a 413
        elif expects and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.discarding:
            return
        self.body_size += len(body)
        if self.body_size > self.server.max_body_bytes:
            self.chunks = []
            self._too_large()
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.discarding:  # the rest of the oversized body is in: close once the 413 is written
            self.discarding = False
            self.closing = True
            if not self.busy and self.transport is not None:
                self.transport.close()
            return
        request = self.request
        chunks = self.chunks
        request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self._enqueue(request)

    def _too_large(self, body_follows: bool = True) -> None:
        """Answer now (413 from the handler, which sees `too_large`), read and drop the rest of the body, close.

        Closing with the body still arriving would make the kernel reset the connection, and the client could
        lose the 413 before reading it: the rest is read (for up to LINGER_SECONDS) first."""
        request = self.request
        request.too_large = True
        request.keep_alive = False
        self.discarding = body_follows
        self._enqueue(request)
        if body_follows and self.transport is not None:
            self.server.loop.call_later(LINGER_SECONDS, self._linger_over)

    def _linger_over(self) -> None:
        if self.transport is not None and self.discarding:
            self.transport.close()

    def _enqueue(self, request: Request) -> None:
        self.queue.append(request)
        if not self.busy:
            self.busy = True
            self.server.loop.create_task(self._answer())
        elif len(self.queue) > 16 and self.transport is not None and not self.paused:
            self.paused = True  # a client pipelining faster than it is answered: stop reading for now
            self.transport.pause_reading()

    async def _answer(self) -> None:
        server = self.server
        try:
            while self.queue:
                request = self.queue.popleft()
                if request.unparsable is not None:
                    response = request.unparsable
                else:
                    server.in_flight += 1
                    try:
                        response = await server.handler(request)
                    except Exception as error:  # noqa: BLE001 - a bug in a handler: said, never a dropped connection
                        server.errors += 1
                        traceback.print_exc(file=sys.stderr)
                        response = Response(500, b'{"error":"the front failed: %s"}' %
                                            type(error).__name__.encode(), [("Content-Type", "application/json")])
                    finally:
                        server.in_flight -= 1
                transport = self.transport
                if transport is None or transport.is_closing():
                    return
                close = not request.keep_alive or server.stopping
                body = b"" if request.method == "HEAD" else response.body
                transport.write(_head(response.status, len(response.body), response.headers, close,
                                      request.http10) + body)
                self.last_active = time.monotonic()
                if close:
                    if self.discarding:  # on_message_complete or the linger timer closes
                        self.closing = True
                    else:
                        transport.close()
                    return
                if self.paused and len(self.queue) <= 16:
                    self.paused = False
                    transport.resume_reading()
            if self.closing and self.transport is not None and not self.discarding:
                self.transport.close()
        finally:
            self.busy = False


class Server:
    """An HTTP/1.1 server handing whole requests to `handler`; see the module's docstring."""

    def __init__(self, handler: Handler, max_body_bytes: int, keepalive_timeout: float = KEEPALIVE_TIMEOUT):
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.keepalive_timeout = keepalive_timeout
        self.connections: set[_ServerConnection] = set()
        self.in_flight = 0
        self.errors = 0
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self, host: str, port: int) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(lambda: _ServerConnection(self), host, port,
                                                     reuse_address=True)
        self._sweeper = self.loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            deadline = time.monotonic() - self.keepalive_timeout
            for connection in list(self.connections):
                if not connection.busy and connection.last_active < deadline and connection.transport is not None:
                    connection.transport.close()

    async def shutdown(self, timeout: float) -> None:
        """Stop listening, close idle connections, wait up to `timeout` for those answering, then close all."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        deadline = time.monotonic() + timeout
        while True:
            for connection in list(self.connections):
                if not connection.busy and connection.transport is not None:
                    connection.transport.close()
            if not self.connections or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()


class UpstreamError(Exception):
    """The upstream could not be reached, or closed the connection before answering."""


class UpstreamResponse:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


class _ClientConnection(asyncio.Protocol):
    def __init__(self, keep: frozenset[str]):
        self.keep = keep
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.head_only = False
        self.reusable = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is not a subclass, but is one

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.reusable = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(UpstreamError(f"the connection closed before an answer: {exc or 'closed'}"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.reusable = False
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(UpstreamError(f"not a valid HTTP answer: {error}"))
            if self.transport is not None:
                self.transport.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in self.keep:
            self.headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.head_only:  # no body follows a HEAD's answer; the parser cannot know: the connection is not reused
            self._done(False)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if not self.head_only:
            self._done(self.parser.should_keep_alive())

    def _done(self, keep_alive: bool) -> None:
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        response = UpstreamResponse(self.parser.get_status_code(), self.headers, body)
        self.reusable = keep_alive
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)


class Upstream:
    """A keep-alive HTTP/1.1 client for one host and port; `keep`: the (lower-case) answer headers to return."""

    def __init__(self, host: str, port: int, keep: frozenset[str], idle_timeout: float = 1.0,
                 connect_timeout: float = 5.0):
        self.host, self.port, self.keep = host, port, keep
        self.host_header = f"Host: {host}:{port}\r\n".encode()
        self.idle_timeout, self.connect_timeout = idle_timeout, connect_timeout
        self.idle: list[_ClientConnection] = []
        self.pooling = True
        self._sweeper: asyncio.Task | None = None

    def open(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.idle_timeout / 2)
            deadline = time.monotonic() - self.idle_timeout
            keep = []
            for connection in self.idle:
                if connection.idle_since < deadline and connection.transport is not None:
                    connection.transport.close()
                elif connection.transport is not None:
                    keep.append(connection)
            self.idle[:] = keep

    def close_idle(self, stop_pooling: bool = False) -> None:
        """Close every idle connection; with `stop_pooling`, close each one in use after its answer too."""
        if stop_pooling:
            self.pooling = False
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()
        self.idle.clear()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.close_idle(stop_pooling=True)

    async def _connection(self) -> _ClientConnection:
        while self.idle:
            connection = self.idle.pop()
            if connection.transport is not None and not connection.transport.is_closing():
                return connection
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientConnection(self.keep), self.host, self.port),
                self.connect_timeout)
        except (TimeoutError, OSError) as error:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {error}") from None
        return connection

    async def request(self, method: str, target: bytes, headers: list[tuple[str, str]],
                      body: bytes = b"") -> UpstreamResponse:
        connection = await self._connection()
        head = [b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target), self.host_header]
        for name, value in headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if body or method not in ("GET", "HEAD"):
            head.append(b"Content-Length: %d\r\n" % len(body))
        head.append(b"\r\n")
        connection.headers = {}
        connection.chunks = []
        connection.head_only = method == "HEAD"
        connection.reusable = False
        connection.waiter = waiter = asyncio.get_running_loop().create_future()
        transport = connection.transport
        assert transport is not None
        if body:
            transport.writelines((b"".join(head), body))
        else:
            transport.write(b"".join(head))
        try:
            return await waiter
        finally:
            connection.waiter = None
            if connection.reusable and self.pooling and connection.transport is not None:
                connection.idle_since = time.monotonic()
                self.idle.append(connection)
            elif connection.transport is not None:
                connection.transport.close()
