"""A stand-in for vLLM's streaming `/v1/chat/completions` on 127.0.0.1, for testing how `python -m infra.ops profile`
is wired (arguments, the request it sends, the lines and report it writes), never what a model does.

It answers like vLLM's OpenAI server in shape (chat.completion.chunk events, a final usage chunk with
`stream_options.include_usage`, `data: [DONE]`): `max_tokens` content chunks, `gap_s` apart. What the profile measures
against it is the stand-in's own pace; the real server's figures are measured in tests/llm (.venv-llm).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Standin:
    url: str
    requests: list[dict] = field(default_factory=list)
    """Each request's body and the headers the tests look at."""


def _event(body: dict) -> bytes:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


@contextmanager
def running(model: str, gap_s: float = 0.002) -> Iterator[Standin]:
    loop = asyncio.new_event_loop()
    standin = Standin("")

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        standin.requests.append({"body": body, "x-api-key": request.headers.get("x-api-key")})
        if body.get("model") != model:
            return web.json_response({"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                                "type": "NotFoundError", "param": None, "code": 404}}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 1764756000, "model": model}
        await response.write(_event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                          "finish_reason": None}]}))
        tokens = int(body["max_tokens"])
        for _ in range(tokens):
            await asyncio.sleep(gap_s)
            await response.write(_event({**base, "choices": [{"index": 0, "delta": {"content": " a"},
                                                              "finish_reason": None}]}))
        await response.write(_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = len(body["messages"][0]["content"].split())
            await response.write(_event({**base, "choices": [], "usage": {
                "prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens}}))
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        standin.url = f"http://127.0.0.1:{port}"
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the OpenAI stand-in did not start")
    try:
        yield standin
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
