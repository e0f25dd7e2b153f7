"""HTTP to the test server with the standard library: every status comes back as an Answer, not an exception."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        self.status, self.body, self.headers = status, body, headers

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:500]!r})"


def call(server, method: str, path: str, body: bytes | dict | None = None, timeout: float = 60,
         content_type: str = "application/json") -> Answer:
    """One HTTP request to the server with the standard library; any status comes back as an Answer."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(server.base_url + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read(), dict(error.headers))


def stream(server, path: str, body: dict, timeout: float = 60) -> tuple[int, list[tuple[float, str]]]:
    """A streaming request: its status and each server-sent `data:` payload with the second it arrived."""
    request = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    events: list[tuple[float, str]] = []
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.headers.get_content_type() == "text/event-stream", response.headers
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data:"):
                events.append((time.monotonic(), line[5:].strip()))
        return response.status, events


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(server) -> dict[str, list[tuple[str, float]]]:
    """GET /metrics as {sample name: [(labels, value), ...]} (Prometheus text format; comments skipped)."""
    answer = call(server, "GET", "/metrics", timeout=10)
    assert answer.status == 200, answer
    samples: dict[str, list[tuple[str, float]]] = {}
    for line in answer.body.decode().splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples.setdefault(match.group(1), []).append((match.group(2) or "", float(match.group(3))))
    return samples
