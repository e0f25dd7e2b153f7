"""Features of LLM traffic: OpenAI-compatible request and response bodies (vLLM's `/v1/chat/completions` and
`/v1/completions`), read from the same captures as the tensor path.

An LLM's inputs are text, so the drift job watches what describes the traffic rather than the text itself:

- inputs, one row per request: `prompt.chars` (characters of every message's text, or of the prompt: a change of
  use or of client moves it), `prompt.tokens` (the response's `usage.prompt_tokens`, when it carries usage: what
  the model actually read, so a tokenizer or template change shows too), `request.messages` (how deep the
  conversations are; 0 for a completions request, which has none, so a shift between the routes shows as well),
  `request.max_tokens` and `request.temperature` (what clients ask for; -1 when the request leaves it to the
  server's default, so clients starting or stopping to set it is a shift too; `max_completion_tokens` counts as
  max_tokens, as vLLM reads it);
- predictions, one row per response: `output:completion.tokens` (`usage.completion_tokens`), `output:completion.chars`
  (characters of the answer, every choice), the finish reason as shares `output:finish.stop`, `output:finish.length`
  (answers cut at max_tokens) and `output:finish.other` (1 for the response's reason, 0 for the others; one choice
  cut by length makes the response `length`), and `output:error`, 1 for an OpenAI error object (`{"error": {...}}`,
  or the older `{"object": "error", ...}`), a stream that ends in one, or an HTTP status of 400 or more when the
  capture records one (`eventMetadata.httpStatus`). The finish shares are over the answers; the error share over
  all responses.

A streamed response is captured as the event stream's text (`data: {chunk}` events, then `data: [DONE]`): the
content deltas are joined per choice, the finish reason is taken from the chunk that carries it and the usage from
the last chunk that has it (vLLM sends it in a final chunk with no choices when `stream_options.include_usage` is
set, in every chunk with `continuous_usage_stats`, and not at all otherwise: then the token features are absent).

A body that is not OpenAI-shaped is a `CaptureFormatError` here; the drift job counts and skips such capture lines
(`read_capture_lines`), so one odd client does not stop the watch over the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .capture import OUTPUT_PREFIX, CaptureFormatError, has_payload, payload_text

PROMPT_CHARS = "prompt.chars"
PROMPT_TOKENS = "prompt.tokens"
MESSAGES = "request.messages"
MAX_TOKENS = "request.max_tokens"
TEMPERATURE = "request.temperature"
COMPLETION_TOKENS = f"{OUTPUT_PREFIX}completion.tokens"
COMPLETION_CHARS = f"{OUTPUT_PREFIX}completion.chars"
FINISH_STOP = f"{OUTPUT_PREFIX}finish.stop"
FINISH_LENGTH = f"{OUTPUT_PREFIX}finish.length"
FINISH_OTHER = f"{OUTPUT_PREFIX}finish.other"
ERROR = f"{OUTPUT_PREFIX}error"

SHARE_FEATURES = (FINISH_STOP, FINISH_LENGTH, FINISH_OTHER, ERROR)
"""0-or-1 per response: binned at 0.5 (quantile edges of a feature that is nearly always 1 would put 0 and 1 in one
bin, and a change of share would not show)."""

UNSET = -1.0
"""What `request.max_tokens` and `request.temperature` are when the request leaves them to the server."""

SSE_FIELDS = ("data:", "event:", "id:", "retry:", ":")


@dataclass
class Completion:
    """A response reduced to what the features need; a streamed one assembled from its chunks."""

    error: bool = False
    texts: dict[int, str] = field(default_factory=dict)
    finish: dict[int, str | None] = field(default_factory=dict)
    usage: dict | None = None


def _number(body: dict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"the request's {key} is not a number ({value!r})")
    return float(value)


def _content_chars(content: Any, where: str) -> int:
    """Characters of a message's content: a string, or a list of parts whose text parts count (an image or audio
    part has no characters); none for an assistant message that only calls tools."""
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if not isinstance(part, dict):
                raise ValueError(f"{where} has a content part that is not an object")
            text = part.get("text") if part.get("type") == "text" else None
            total += len(text) if isinstance(text, str) else 0
        return total
    raise ValueError(f"{where}.content is neither text nor a list of parts")


def _prompt_chars(prompt: Any) -> int | None:
    """Characters of a completions prompt: a string or a list of strings; None for token ids, which have none."""
    if isinstance(prompt, str):
        return len(prompt)
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return sum(len(p) for p in prompt)
    if isinstance(prompt, list) and all(
            isinstance(p, int) or (isinstance(p, list) and all(isinstance(t, int) for t in p)) for p in prompt):
        return None
    raise ValueError("the request's prompt is neither text, a list of texts nor token ids")


def request_features(body: Any) -> dict[str, float]:
    """Features of a chat (`messages`) or completions (`prompt`) request body."""
    if not isinstance(body, dict) or ("messages" not in body and "prompt" not in body):
        raise ValueError("the request is not an OpenAI chat or completions body (no 'messages' or 'prompt')")
    features: dict[str, float] = {}
    if "messages" in body:
        messages = body["messages"]
        if not isinstance(messages, list):
            raise ValueError("the request's messages is not a list")
        chars = 0
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ValueError(f"messages[{index}] is not an object")
            chars += _content_chars(message.get("content"), f"messages[{index}]")
        features[PROMPT_CHARS] = float(chars)
        features[MESSAGES] = float(len(messages))
        max_tokens = _number(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = _number(body, "max_tokens")
    else:
        chars = _prompt_chars(body["prompt"])
        if chars is not None:
            features[PROMPT_CHARS] = float(chars)
        features[MESSAGES] = 0.0
        max_tokens = _number(body, "max_tokens")
    temperature = _number(body, "temperature")
    features[MAX_TOKENS] = UNSET if max_tokens is None else max_tokens
    features[TEMPERATURE] = UNSET if temperature is None else temperature
    return features


def _is_error(body: dict) -> bool:
    return isinstance(body.get("error"), dict) or body.get("object") == "error"


def _choices_into(completion: Completion, choices: Any, streamed: bool) -> None:
    if not isinstance(choices, list):
        raise ValueError("the response's choices is not a list")
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise ValueError(f"choices[{position}] is not an object")
        index = choice.get("index", position)
        index = index if isinstance(index, int) else position
        message = choice.get("delta" if streamed else "message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"choices[{position}] has content that is not text")
        completion.texts[index] = completion.texts.get(index, "") + (text or "")
        if choice.get("finish_reason") is not None:
            completion.finish[index] = str(choice["finish_reason"])
        else:
            completion.finish.setdefault(index, None)


def completion_of(body: Any) -> Completion:
    """A whole (not streamed) response body: a chat.completion or text_completion object, or an error object."""
    if not isinstance(body, dict):
        raise ValueError("the response is not a JSON object")
    if _is_error(body):
        return Completion(error=True)
    if "choices" not in body:
        raise ValueError("the response is neither an OpenAI completion (no 'choices') nor an error object")
    completion = Completion(usage=body.get("usage") if isinstance(body.get("usage"), dict) else None)
    _choices_into(completion, body["choices"], streamed=False)
    return completion


def sse_events(text: str) -> list[str]:
    """The data of each server-sent event (its `data:` lines joined, as the event-stream format says)."""
    events, data = [], []
    for line in text.splitlines() + [""]:
        if not line.strip():
            if data:
                events.append("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


def streamed_completion(text: str) -> Completion:
    """A streamed response from its event-stream text: chunks until `[DONE]`; an error chunk makes it an error."""
    completion, chunks = Completion(), 0
    for number, data in enumerate(sse_events(text), start=1):
        if data.strip() == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as error:
            raise ValueError(f"event {number} of the streamed response is not JSON ({error.msg})") from None
        if not isinstance(chunk, dict):
            raise ValueError(f"event {number} of the streamed response is not a JSON object")
        chunks += 1
        if _is_error(chunk):
            return Completion(error=True)
        if "choices" not in chunk:
            raise ValueError(f"event {number} of the streamed response is not a completion chunk (no 'choices')")
        _choices_into(completion, chunk["choices"], streamed=True)
        if isinstance(chunk.get("usage"), dict):
            completion.usage = chunk["usage"]
    if not chunks:
        raise ValueError("the streamed response has no data chunks")
    return completion


def is_event_stream(text: str) -> bool:
    return text.lstrip().startswith(SSE_FIELDS)


def completion_from_text(text: str) -> Completion:
    """A captured response body as text: an event stream, or a JSON object."""
    if is_event_stream(text):
        return streamed_completion(text)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the captured response body is neither JSON nor an event stream ({error.msg})") from None
    return completion_of(body)


def _tokens(usage: dict, key: str) -> float | None:
    value = usage.get(key)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else None


def response_features(completion: Completion) -> tuple[dict[str, float], dict[str, float]]:
    """What the response says about the request (its prompt tokens) and the prediction row of the response."""
    if completion.error:
        return {}, {ERROR: 1.0}
    usage = completion.usage or {}
    reasons = [completion.finish.get(index) for index in sorted(completion.texts)]
    finish = ("length" if "length" in reasons else "stop" if reasons and all(r == "stop" for r in reasons)
              else "other")
    prediction = {ERROR: 0.0, COMPLETION_CHARS: float(sum(len(t) for t in completion.texts.values())),
                  FINISH_STOP: float(finish == "stop"), FINISH_LENGTH: float(finish == "length"),
                  FINISH_OTHER: float(finish == "other")}
    completion_tokens = _tokens(usage, "completion_tokens")
    if completion_tokens is not None:
        prediction[COMPLETION_TOKENS] = completion_tokens
    prompt_tokens = _tokens(usage, "prompt_tokens")
    return ({PROMPT_TOKENS: prompt_tokens} if prompt_tokens is not None else {}), prediction


def _rows(request: dict[str, float], completion: Completion | None) -> list[dict[str, float]]:
    if completion is None:
        return [request]
    from_response, prediction = response_features(completion)
    return [{**request, **from_response}, prediction]


def pair_rows(request: Any, completion: Completion | None) -> list[dict[str, float]]:
    """The request row (with the prompt tokens the response reports) and, with a response, its prediction row."""
    return _rows(request_features(request), completion)


def _http_status(record: dict) -> int | None:
    status = (record.get("eventMetadata") or {}).get("httpStatus")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def capture_rows(record: Any, source: str, number: int) -> list[dict[str, float]]:
    """The rows of one capture record; a CaptureFormatError, with its place, for anything not OpenAI-shaped."""
    if not isinstance(record, dict):
        raise CaptureFormatError(source, number, "not a SageMaker capture record (a JSON object)")
    text = payload_text(record, "endpointInput", source, number)
    try:
        try:
            request = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"the captured request body is not JSON ({error.msg})") from None
        row = request_features(request)  # the request's faults first: they say what the line is
        status = _http_status(record)
        if status is not None and status >= 400:
            completion: Completion | None = Completion(error=True)
        elif has_payload(record, "endpointOutput"):
            completion = completion_from_text(payload_text(record, "endpointOutput", source, number))
        else:  # Input-only capture: the request's features still count; the response's are missing
            completion = None
        return _rows(row, completion)
    except ValueError as error:
        if isinstance(error, CaptureFormatError):
            raise
        raise CaptureFormatError(source, number, str(error)) from None


@dataclass
class CaptureRead:
    rows: list[dict[str, float]] = field(default_factory=list)
    skipped: list[CaptureFormatError] = field(default_factory=list)


def read_capture_lines(lines: Iterable[str], source: str, into: CaptureRead | None = None) -> CaptureRead:
    """Rows of every readable capture line of one file; the others are kept as the reasons they were skipped."""
    read = into if into is not None else CaptureRead()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CaptureFormatError(source, number, f"not JSON ({error.msg})") from None
            read.rows += capture_rows(record, source, number)
        except CaptureFormatError as error:
            read.skipped.append(error)
    return read
