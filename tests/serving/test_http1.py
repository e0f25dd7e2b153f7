"""The front's HTTP/1.1 transport (serving_image/http1.py) in process, with plain sockets as the clients: what the
front relied on aiohttp for (keep-alive, pipelining, Expect: 100-continue, chunked bodies, the body limit answered
413 without a reset, malformed HTTP as 400, graceful shutdown) and the keep-alive client to Triton."""

import asyncio
import json
import socket
import threading
import time

import httptools
import pytest
import uvloop

from serving_image import http1

LIMIT = 64 * 1024


class Loop:
    """A uvloop event loop on a thread; `call(coroutine)` runs one there and returns its result."""

    def __init__(self):
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def echo(request: http1.Request) -> http1.Response:
    if request.path == "/fail":
        raise RuntimeError("a bug")
    if request.path == "/slow":
        await asyncio.sleep(0.5)
    answer = {"method": request.method, "path": request.path, "query": request.query.decode(),
              "length": len(request.body), "too_large": request.too_large,
              "type": request.headers.get("content-type")}
    return http1.Response(413 if request.too_large else 200, json.dumps(answer).encode(),
                          [("Content-Type", "application/json")])


@pytest.fixture
def served():
    loop = Loop()
    server = http1.Server(echo, LIMIT)
    port = _free_port()
    loop.call(server.start("127.0.0.1", port))
    yield loop, server, port
    loop.call(server.shutdown(timeout=2))
    loop.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Answers:
    """Reads HTTP/1.1 answers off a socket with httptools, one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock, self.done, self.parser = sock, [], httptools.HttpResponseParser(self)
        self.headers, self.body = {}, b""

    def on_header(self, name, value):
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body):
        self.body += body

    def on_message_complete(self):
        self.done.append((self.parser.get_status_code(), self.headers, self.body))
        self.headers, self.body = {}, b""

    def next(self) -> tuple[int, dict, bytes]:
        while not self.done:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed before an answer")
            self.parser.feed_data(data)
        return self.done.pop(0)

    def closed(self) -> bool:
        self.sock.settimeout(3)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def connect(port) -> tuple[socket.socket, Answers]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, Answers(sock)


def post(path="/v2/x", body=b"{}", extra="") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra}\r\n").encode() + body


def test_keep_alive_and_pipelined_requests_are_answered_in_order(served):
    _, _, port = served
    sock, answers = connect(port)
    sock.sendall(post("/one", b"1") + post("/two?x=1", b"22") + post("/three", b"333"))
    got = [answers.next() for _ in range(3)]
    assert [(s, json.loads(b)["path"], json.loads(b)["length"]) for s, _, b in got] == [
        (200, "/one", 1), (200, "/two", 2), (200, "/three", 3)]
    assert json.loads(got[1][2])["query"] == "x=1"
    assert "date" in got[0][1] and got[0][1]["content-length"] == str(len(got[0][2]))
    sock.sendall(post("/again"))  # the same connection, later
    assert answers.next()[0] == 200


def test_a_chunked_body_and_expect_100_continue(served):
    _, _, port = served
    sock, answers = connect(port)
    sock.sendall(b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert json.loads(answers.next()[2])["length"] == 11
    sock.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(b"abcd")
    assert json.loads(answers.next()[2])["length"] == 4


@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_an_oversized_body_gets_its_413_not_a_reset_then_the_connection_closes(served, how):
    _, _, port = served
    sock, answers = connect(port)
    big = b"x" * (LIMIT * 4)
    if how == "chunked":
        sock.sendall(b"POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
    else:
        sock.sendall(post("/big", big))  # the whole body, before reading: as urllib does
    status, headers, body = answers.next()
    assert status == 413 and json.loads(body)["too_large"] and headers["connection"] == "close"
    assert answers.closed()


def test_expect_with_an_oversized_length_is_refused_before_the_body(served):
    _, _, port = served
    sock, answers = connect(port)
    sock.sendall(f"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: {LIMIT + 1}\r\nExpect: 100-continue\r\n\r\n"
                 .encode())
    assert answers.next()[0] == 413
    assert answers.closed()


@pytest.mark.parametrize("raw,status", [
    (b"this is not http\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * (http1.MAX_HEADER_BYTES + 1) + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400),
])
def test_what_is_not_http_is_a_4xx_with_a_message_then_closed(served, raw, status):
    _, _, port = served
    sock, answers = connect(port)
    sock.sendall(raw)
    got, _, body = answers.next()
    assert got == status and json.loads(body)["error"]
    assert answers.closed()


def test_http10_closes_head_has_no_body_and_a_failing_handler_is_a_500_that_keeps_the_connection(served):
    _, _, port = served
    sock, answers = connect(port)
    sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n")
    sock.sendall(post("/fail"))
    sock.sendall(post("/after"))
    # A HEAD's answer has a Content-Length and no body: read it by hand.
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head
    answers.parser = httptools.HttpResponseParser(answers)
    status, _, body = answers.next()
    assert status == 500 and "a bug" not in body.decode() and "RuntimeError" in body.decode()
    assert answers.next()[0] == 200
    old, old_answers = connect(port)
    old.sendall(b"GET /old HTTP/1.0\r\n\r\n")
    assert old_answers.next()[0] == 200 and old_answers.closed()


def test_shutdown_answers_what_is_in_flight_and_closes_idle_connections(served):
    loop, server, port = served
    busy, busy_answers = connect(port)
    idle, idle_answers = connect(port)
    idle.sendall(post("/idle"))
    assert idle_answers.next()[0] == 200
    busy.sendall(post("/slow"))
    time.sleep(0.1)
    started = time.monotonic()
    loop.call(server.shutdown(timeout=5))
    assert time.monotonic() - started >= 0.3  # it waited for /slow
    status, headers, _ = busy_answers.next()
    assert status == 200 and headers["connection"] == "close"
    assert idle_answers.closed()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


class Stub:
    """An upstream that counts its connections and answers each request (chunked for /chunked)."""

    def __init__(self, loop: Loop):
        self.connections = 0
        self.port = _free_port()
        stub = self

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport):
                stub.connections += 1
                self.transport, self.parser = transport, httptools.HttpRequestParser(self)

            def data_received(self, data):
                self.parser.feed_data(data)

            def on_url(self, url):
                self.url = url

            def on_message_complete(self):
                if self.url == b"/chunked":
                    self.transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain"
                                         b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                else:
                    self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-Other: 1\r\n"
                                         b"Content-Type: application/json\r\n\r\n{}")

        self.server = loop.call(_start(Protocol, self.port))


async def _start(protocol, port):
    return await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port)


def test_the_client_keeps_one_connection_alive_then_closes_it_when_idle():
    loop = Loop()
    try:
        stub = Stub(loop)
        upstream = http1.Upstream("127.0.0.1", stub.port, frozenset({"content-type"}), idle_timeout=0.3)
        loop.call(_open(upstream))
        for _ in range(5):
            answer = loop.call(upstream.request("POST", b"/x", [("Content-Type", "application/json")], b"{}"))
            assert (answer.status, answer.body, answer.headers) == (404, b"{}", {"content-type": "application/json"})
        assert stub.connections == 1
        chunked = loop.call(upstream.request("GET", b"/chunked", []))
        assert chunked.body == b"abcde" and stub.connections == 1
        time.sleep(1.0)
        assert upstream.idle == []  # closed after idle_timeout
        loop.call(upstream.request("GET", b"/x", []))
        assert stub.connections == 2
        loop.call(upstream.close())
        unreachable = http1.Upstream("127.0.0.1", _free_port(), frozenset())
        with pytest.raises(http1.UpstreamError):
            loop.call(unreachable.request("GET", b"/", []))
    finally:
        loop.close()


async def _open(upstream):
    upstream.open()
