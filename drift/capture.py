"""Read SageMaker data-capture files (JSON Lines) into per-request features, of the inputs and of the predictions.

A captured line holds the request body as sent (`captureData.endpointInput.data`, JSON or base64) and the response
(`endpointOutput`). mlserve's requests follow the KServe v2 / Triton JSON protocol: `{"inputs": [{"name", "shape",
"datatype", "data"}]}`, and responses `{"outputs": [...]}`. The features of a request are, per input tensor, the mean
and standard deviation of its values: cheap, and they move when the inputs do (brightness, contrast, scaling or
encoding changes upstream). The features of a prediction depend on what the output is (the baseline says): a
classifier's predicted class per sample (`output:<name>.class`, so that binned shares are class shares), or a
regressor's mean value per request (`output:<name>.mean`).

An LLM deployment's captures hold OpenAI-compatible bodies instead: drift/llm.py reads those, through the same
`payload_text`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class CaptureFormatError(ValueError):
    """A capture file that cannot be read; says which file, which line and why."""

    def __init__(self, source: str, line: int, reason: str):
        self.source, self.line, self.reason = source, line, reason
        super().__init__(f"{source}, line {line}: {reason}")


@dataclass(frozen=True)
class Features:
    values: dict[str, float]


def _flatten(data) -> Iterator[float]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    elif isinstance(data, bool) or not isinstance(data, (int, float)):
        raise TypeError(f"non-numeric value {data!r}")
    else:
        yield float(data)


def _values(tensor: dict, where: str) -> list[float]:
    """A tensor's values, flattened; a clear error naming `where` when they are not numbers or there are none."""
    try:
        values = list(_flatten(tensor["data"]))
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None
    if not values:
        raise ValueError(f"{where} has no values")
    return values


def request_features(body: dict) -> dict[str, float]:
    """Per input tensor: mean and standard deviation of its values."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise ValueError("the request has no 'inputs' list (expected the v2 inference protocol)")
    features = {}
    for index, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or "data" not in tensor:
            raise ValueError(f"inputs[{index}] has no 'data'")
        name = tensor.get("name", f"input{index}")
        values = _values(tensor, f"inputs[{index}] ({name})")
        mean = sum(values) / len(values)
        features[f"{name}.mean"] = mean
        features[f"{name}.std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return features


OUTPUT_PREFIX = "output:"
OUTPUT_KINDS = ("classes", "values")


def output_feature(name: str, kind: str) -> str:
    return f"{OUTPUT_PREFIX}{name}.{'class' if kind == 'classes' else 'mean'}"


def prediction_features(body: dict, outputs: dict[str, str]) -> list[dict[str, float]]:
    """Rows of prediction features: one per sample for a class output, one per response for a value output."""
    tensors = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(tensors, list):
        raise ValueError("the response has no 'outputs' list (expected the v2 inference protocol)")
    by_name = {t.get("name"): t for t in tensors if isinstance(t, dict)}
    rows: list[dict[str, float]] = []
    for name, kind in sorted(outputs.items()):
        tensor = by_name.get(name)
        if tensor is None or "data" not in tensor:
            raise ValueError(f"the response has no output {name!r} with data (it has: {', '.join(map(str, by_name))})")
        values = _values(tensor, f"output {name}")
        if kind == "values":
            rows.append({output_feature(name, kind): sum(values) / len(values)})
            continue
        shape = tensor.get("shape") or [len(values)]
        classes = int(shape[-1]) if shape and isinstance(shape[-1], int) and shape[-1] > 0 else 0
        if classes < 2 or len(values) % classes:
            raise ValueError(f"output {name}: shape {shape} does not end in a class dimension of {len(values)} values")
        for start in range(0, len(values), classes):
            scores = values[start:start + classes]
            rows.append({output_feature(name, kind): float(scores.index(max(scores)))})
    return rows


def has_payload(record: dict, part: str) -> bool:
    captured = (record.get("captureData") or {}).get(part)
    return isinstance(captured, dict) and "data" in captured


def payload_text(record: dict, part: str, source: str, number: int) -> str:
    """The captured body as text, whatever its encoding (SageMaker writes JSON and CSV bodies as they are and any
    other content type, an event stream's included, as BASE64)."""
    if not has_payload(record, part):
        raise CaptureFormatError(source, number, f"no captureData.{part}.data (not a SageMaker capture of "
                                 f"{'the request' if part == 'endpointInput' else 'the response; capture Output too'})")
    captured = record["captureData"][part]
    payload = captured["data"]
    if captured.get("encoding") == "BASE64":
        try:
            return base64.b64decode(payload, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise CaptureFormatError(source, number, f"{part}.data is not valid base64 UTF-8") from None
    if not isinstance(payload, str):
        raise CaptureFormatError(source, number, f"{part}.data is not text")
    return payload


def _payload(record: dict, part: str, source: str, number: int):
    payload = payload_text(record, part, source, number)
    try:
        return json.loads(payload)
    except json.JSONDecodeError as error:
        what = "request" if part == "endpointInput" else "response"
        raise CaptureFormatError(source, number, f"the captured {what} body is not JSON ({error.msg})") from None


def parse_capture_lines(lines: Iterable[str], source: str,
                        outputs: dict[str, str] | None = None) -> list[dict[str, float]]:
    """Features of every captured request in one file (and of its predictions, for the outputs the baseline names:
    name -> "classes" or "values"); a malformed line fails with its place in the file."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CaptureFormatError(source, number, f"not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise CaptureFormatError(source, number, "not a SageMaker capture record (a JSON object)")
        try:
            rows.append(request_features(_payload(record, "endpointInput", source, number)))
            if outputs:
                rows += prediction_features(_payload(record, "endpointOutput", source, number), outputs)
        except CaptureFormatError:
            raise
        except ValueError as error:
            raise CaptureFormatError(source, number, str(error)) from None
    return rows
