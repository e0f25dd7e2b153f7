"""The Gate: what an inference request to this model must look like, and the 4xx (status, reason, message) when not.

Pure request validation, no I/O: the front (`front.py`) asks it about every inference request. Two depths:

  - `precheck` (every request, before Triton): everything that is cheap to check and that Triton would not refuse
    cleanly. Content type and binary header length (`header_length_of`), then the JSON structure: the JSON type of
    every field Triton reads (`id`, `parameters` and the reserved ones in it, `inputs`, `outputs`, each tensor's
    `name` and `parameters`), input names, datatypes, shape and batch, binary sizes, output names. Shape above all:
    Triton 2.51 allocates what a JSON tensor's shape asks for before it looks at the model, so one request with a
    shape like [1, 3, 32, 32, 1e9] kills the server (seen against the local Triton). It does not walk the tensors'
    `data` values: that is the costly part (3072 numbers for the sample model's one image, a Python object each),
    and Triton checks it itself, in its HTTP front end, before the request reaches the model (its failure counter
    does not move), answering 500. For the same reason the JSON text of flat numeric `data` arrays is not even
    parsed here: `skeleton` empties them first.
  - `check` (only once Triton has refused a request, or the precheck has): everything, `data` values included, on
    the whole body; what it raises is what the client gets, so a client error Triton answers with 500 (`data` that
    does not fill the shape, strings or booleans among numbers, ragged lists) is the 400 it always was, with the
    same reason and message as if it had been checked first.

Every check is a type test on a field the request names; no per-request schema validation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .spec import ModelSpec, Tensor

SAGEMAKER_BINARY = "application/vnd.sagemaker-triton.binary+json"
HEADER_LENGTH = "Inference-Header-Content-Length"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
ITEM_SIZE = {"FP32": 4, "FP16": 2, "BF16": 2, "INT8": 1, "INT32": 4, "INT64": 8, "UINT8": 1, "BOOL": 1}
NUMBER_KINDS = {"FP32": "fiu", "FP16": "fiu", "BF16": "fiu", "INT8": "iu", "INT32": "iu", "INT64": "iu",
                "UINT8": "iu", "BOOL": "b"}
UINT64 = 1 << 64


class Refusal(Exception):
    """A client error: its HTTP status, a short reason for the metric, and the message the client reads."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _json_kind(value: Any) -> str:
    """How a client would name a JSON value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    return {float: "a number", str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < UINT64


# The reserved parameters Triton reads with a fixed JSON type (src/http_server.cc, Triton 2.51): a value of another
# type is a 500 there. name -> (accepts, what the message says it must be).
_BOOLEAN = (lambda v: type(v) is bool, "true or false")
_UINT = (_is_uint, "a non-negative integer")
_STRING = (lambda v: type(v) is str, "a string")
REQUEST_PARAMETERS = {"sequence_id": (lambda v: type(v) is str or _is_uint(v), "a non-negative integer or a string"),
                      "sequence_start": _BOOLEAN, "sequence_end": _BOOLEAN, "priority": _UINT, "timeout": _UINT,
                      "binary_data_output": _BOOLEAN}
_SHARED_MEMORY = {"shared_memory_region": _STRING, "shared_memory_offset": _UINT, "shared_memory_byte_size": _UINT}
INPUT_PARAMETERS = {"binary_data_size": _UINT, **_SHARED_MEMORY}
OUTPUT_PARAMETERS = {"binary_data": _BOOLEAN, "classification": _UINT, **_SHARED_MEMORY}


def _wrong_type(where: str, wanted: str, value: Any) -> Refusal:
    return Refusal(400, "json_type", f"{where} must be {wanted}, got {_json_kind(value)}")


def _parameters(holder: dict[str, Any], where: str, reserved: dict) -> dict[str, Any]:
    """`holder`'s 'parameters' (an object when given) with the reserved ones of the right JSON type."""
    if "parameters" not in holder:
        return {}
    parameters = holder["parameters"]
    if type(parameters) is not dict:
        raise _wrong_type(f"{where}'parameters'", "an object", parameters)
    for key, value in parameters.items():
        check = reserved.get(key)
        if check is not None and not check[0](value):
            raise _wrong_type(f"{where}'parameters.{key}'", check[1], value)
    return parameters


_DATA_KEY = b'"data"'
_SPACE = b" \t\r\n"


def skeleton(text: bytes) -> bytes:
    """`text` with every flat array of scalars under a "data" key emptied (`"data": [0.5, 1.0]` -> `"data": []`).

    The JSON structure is all the precheck reads; parsing 3072 numbers into Python floats is most of its cost.
    An array is emptied only where it is certainly a flat array under a key named data: `"data"` not preceded by a
    backslash (an escaped quote would put it inside a string), then `:` and `[`, and between that `[` and the next
    `]` no quote, bracket or brace (so no string, object or nested array, whose contents could hide a `]`). What is
    cut holds no quote, so the rest tokenises exactly as in `text`. Garbage inside a cut array is not seen here:
    Triton refuses the body, and `Gate.check` on the whole body then says what is wrong."""
    find = text.find
    pieces: list[bytes] = []
    at = 0
    end = len(text)
    key = find(_DATA_KEY)
    while key >= 0:
        after = key + 6
        if key and text[key - 1] == 0x5C:  # \"data" : inside a string
            key = find(_DATA_KEY, after)
            continue
        while after < end and text[after] in _SPACE:
            after += 1
        if after < end and text[after] == 0x3A:  # :
            after += 1
            while after < end and text[after] in _SPACE:
                after += 1
            if after < end and text[after] == 0x5B:  # [
                close = find(b"]", after)
                if close < 0:
                    break
                if find(b'"', after, close) < 0 and find(b"[", after + 1, close) < 0 and find(b"{", after, close) < 0:
                    pieces.append(text[at:after + 1])
                    at = close
                after = close
        key = find(_DATA_KEY, after)
    if not pieces:
        return text
    pieces.append(text[at:])
    return b"".join(pieces)


def header_length_of(content_type: str, headers: dict[str, str]) -> int | None:
    """The JSON header's length for a binary-tensor request, None for plain JSON; Refusal if malformed.

    `headers` are keyed in lower case. Three spellings: KServe v2's `Inference-Header-Content-Length: N`; Triton's
    SageMaker content type `...binary+json;json-header-size=N`; and, for `application/octet-stream` through
    InvokeEndpoint (which forwards no other header), `X-Amzn-SageMaker-Custom-Attributes: N`, which the API gateway
    maps from the v2 header."""
    raw = headers.get("inference-header-content-length")
    if content_type.startswith(SAGEMAKER_BINARY):
        match = re.search(r"json-header-size=(\S+)", content_type)
        raw = match.group(1) if match else None
        if raw is None:
            raise Refusal(400, "binary_header", f"{SAGEMAKER_BINARY} needs ';json-header-size=N'")
    elif raw is None and content_type.startswith("application/octet-stream"):
        raw = headers.get("x-amzn-sagemaker-custom-attributes")
        if raw is None:
            raise Refusal(400, "binary_header", f"application/octet-stream needs the {HEADER_LENGTH} header")
        raw = raw.removeprefix("json-header-size=")
    if raw is None:
        return None
    if not raw.isdigit():
        raise Refusal(400, "binary_header", f"the inference header length must be a non-negative integer, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Gate:
    """What a request to this model must look like: the spec's inputs, outputs and batch limit."""
    spec: ModelSpec
    _inputs: dict[str, Tensor] = field(init=False, repr=False, compare=False)
    _outputs: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inputs", {t.name: t for t in self.spec.inputs})
        object.__setattr__(self, "_outputs", frozenset(o.name for o in self.spec.outputs))

    def model(self, name: str) -> None:
        if name != self.spec.name:
            raise Refusal(404, "unknown_model", f"unknown model '{name}': this server serves '{self.spec.name}'")

    def precheck(self, body: bytes, header_length: int | None) -> None:
        """Before Triton: the structure only (see the module's docstring). Raises the Refusal `check` gives."""
        header = body if header_length is None else body[:header_length]
        try:
            self._check(skeleton(header), None if header_length is None else len(body) - header_length, False)
        except Refusal:
            # Said from the whole body, as `check` says it (a cut array's values, positions in a JSON error).
            self.check(body, header_length)

    def check(self, body: bytes, header_length: int | None) -> None:
        """Raise Refusal for anything Triton would refuse or fail on; return for a request worth running."""
        header = body if header_length is None else body[:header_length]
        self._check(header, None if header_length is None else len(body) - header_length, True)

    def _check(self, header: bytes, binary_length: int | None, walk_data: bool) -> None:
        try:
            request = orjson.loads(header)  # ten times faster than json for a tensor's numbers
        except orjson.JSONDecodeError as error:
            what = "the inference header" if binary_length is not None else "the body"
            raise Refusal(400, "not_json", f"{what} is not valid JSON: {error}") from None
        if not isinstance(request, dict):
            raise Refusal(400, "not_an_object", "the request must be a JSON object with an 'inputs' list")
        if "id" in request and type(request["id"]) is not str:
            raise _wrong_type("'id'", "a string", request["id"])
        _parameters(request, "", REQUEST_PARAMETERS)
        inputs = request.get("inputs")
        if inputs is None or inputs == []:
            raise Refusal(400, "no_inputs", "the request has no 'inputs' (a non-empty list of tensors)")
        if type(inputs) is not list:
            raise _wrong_type("'inputs'", "a non-empty list of tensors", inputs)
        expected = self._inputs
        given = []
        for index, tensor in enumerate(inputs):
            if type(tensor) is not dict:
                raise _wrong_type(f"inputs[{index}]", "an object (name, shape, datatype, data)", tensor)
            name = tensor.get("name")
            if type(name) is not str:
                raise _wrong_type(f"inputs[{index}]: 'name'", "a string", name)
            if name not in expected:
                raise Refusal(400, "unknown_input", f"unknown input {name!r}: {self.spec.name} takes "
                                                    f"{', '.join(sorted(expected))}")
            given.append(name)
        if len(set(given)) != len(given):
            raise Refusal(400, "duplicate_input", "an input is given twice")
        if len(given) != len(expected):
            missing = sorted(set(expected) - set(given))
            raise Refusal(400, "missing_input", f"missing input(s) {', '.join(missing)}")
        binary_total = 0
        for tensor in inputs:
            binary_total += self._tensor(tensor, expected[tensor["name"]], binary_length is not None, walk_data)
        if binary_length is not None and binary_total != binary_length:
            raise Refusal(400, "binary_size", f"the inputs declare {binary_total} bytes of binary data, the body "
                                              f"carries {binary_length} after the header")
        outputs = request.get("outputs", [])
        if type(outputs) is not list:
            raise _wrong_type("'outputs'", "a list", outputs)
        for index, output in enumerate(outputs):
            if type(output) is not dict:
                raise _wrong_type(f"outputs[{index}]", "an object with a 'name'", output)
            name = output.get("name")
            if type(name) is not str:
                raise _wrong_type(f"outputs[{index}]: 'name'", "a string", name)
            if name not in self._outputs:
                raise Refusal(400, "unknown_output", f"unknown output {name!r}: {self.spec.name} returns "
                                                     f"{', '.join(o.name for o in self.spec.outputs)}")
            _parameters(output, f"output {name}: ", OUTPUT_PARAMETERS)

    def _tensor(self, tensor: dict[str, Any], spec: Tensor, binary: bool, walk_data: bool) -> int:
        name = spec.name
        if tensor.get("datatype") != spec.datatype:
            raise Refusal(400, "datatype", f"input {name}: datatype {tensor.get('datatype')!r}, the model takes "
                                           f"{spec.datatype}")
        shape = tensor.get("shape")
        if type(shape) is not list or not all(type(d) is int for d in shape):
            raise Refusal(400, "shape", f"input {name}: shape must be a list of integers, got {shape!r}")
        batched = self.spec.max_batch_size > 0
        if len(shape) != len(spec.dims) + batched:
            raise Refusal(400, "shape", f"input {name}: shape {shape} has {len(shape)} dimensions, the model takes "
                                        f"{'[batch] + ' if batched else ''}{spec.dims}")
        if any(d < 1 for d in shape):
            raise Refusal(400, "shape", f"input {name}: every dimension must be at least 1, got {shape}")
        if batched and shape[0] > self.spec.max_batch_size:
            raise Refusal(400, "batch_too_large", f"input {name}: batch {shape[0]} is above the model's maximum "
                                                  f"{self.spec.max_batch_size}")
        for given, wanted in zip(shape[batched:], spec.dims, strict=True):
            if wanted != -1 and given != wanted:
                raise Refusal(400, "shape", f"input {name}: shape {shape} does not match the model's "
                                            f"{'[batch] + ' if batched else ''}{spec.dims}")
        count = math.prod(shape)
        size = _parameters(tensor, f"input {name}: ", INPUT_PARAMETERS).get("binary_data_size")
        if size is not None:
            if not binary:
                raise Refusal(400, "binary_size", f"input {name}: binary_data_size without the "
                                                  f"{HEADER_LENGTH} header")
            if size != count * ITEM_SIZE[spec.datatype]:
                raise Refusal(400, "binary_size", f"input {name}: binary_data_size {size!r}, shape {shape} of "
                                                  f"{spec.datatype} needs {count * ITEM_SIZE[spec.datatype]}")
            return size
        data = tensor.get("data")
        if data is None:
            raise Refusal(400, "no_data", f"input {name}: no 'data' (nor binary_data_size)")
        if type(data) is not list:
            raise _wrong_type(f"input {name}: 'data'", "a list", data)
        if not walk_data:
            return 0
        try:
            values = np.asarray(data)
        except ValueError:
            raise Refusal(400, "data", f"input {name}: 'data' is ragged (nested lists of unequal length)") from None
        if values.dtype.kind not in NUMBER_KINDS[spec.datatype]:
            raise Refusal(400, "data_type", f"input {name}: 'data' holds {values.dtype.kind!r}-kind values "
                                            f"({'text' if values.dtype.kind in 'US' else 'not numbers'}), "
                                            f"the model takes {spec.datatype}")
        if values.size != count:
            raise Refusal(400, "data_count", f"input {name}: 'data' has {values.size} values, shape {shape} needs "
                                             f"{count}")
        return 0
