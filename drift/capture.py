"""Read SageMaker data-capture files (JSON Lines) into per-request features.

A captured line holds the request body as sent (`captureData.endpointInput.data`, JSON or base64). mlserve's
requests follow the KServe v2 / Triton JSON protocol: `{"inputs": [{"name", "shape", "datatype", "data"}]}`. The
features of a request are, per input tensor, the mean and standard deviation of its values: cheap, and they move
when the inputs do (brightness, contrast, scaling or encoding changes upstream).
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
        try:
            values = list(_flatten(tensor["data"]))
        except TypeError as error:
            raise ValueError(f"inputs[{index}] ({name}): {error}") from None
        if not values:
            raise ValueError(f"inputs[{index}] ({name}) has no values")
        mean = sum(values) / len(values)
        features[f"{name}.mean"] = mean
        features[f"{name}.std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return features


def parse_capture_lines(lines: Iterable[str], source: str) -> list[dict[str, float]]:
    """Features of every captured request in one file; a malformed line fails with its place in the file."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CaptureFormatError(source, number, f"not JSON ({error.msg})") from None
        endpoint_input = (record.get("captureData") or {}).get("endpointInput") if isinstance(record, dict) else None
        if not isinstance(endpoint_input, dict) or "data" not in endpoint_input:
            raise CaptureFormatError(source, number, "no captureData.endpointInput.data (not a SageMaker capture)")
        payload = endpoint_input["data"]
        if endpoint_input.get("encoding") == "BASE64":
            try:
                payload = base64.b64decode(payload, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise CaptureFormatError(source, number, "endpointInput.data is not valid base64 UTF-8") from None
        try:
            rows.append(request_features(json.loads(payload)))
        except json.JSONDecodeError as error:
            raise CaptureFormatError(source, number, f"the captured request body is not JSON ({error.msg})") from None
        except ValueError as error:
            raise CaptureFormatError(source, number, str(error)) from None
    return rows
