"""The Gate without a server: the skeleton the precheck parses, and the precheck saying exactly what the full check
says for every request it refuses (tests/serving/test_contract_kserve.py runs the same cases through the real Triton)."""

import json

import orjson
import pytest

from serving_image.gate import Gate, Refusal, skeleton
from serving_image.local_server import SAMPLE
from serving_image.spec import ModelSpec
from tests.serving.test_contract_kserve import MALFORMED, binary_body, tensor_body, typed_body

SPEC = ModelSpec.load(SAMPLE / "spec.json")
GATE = Gate(SPEC)
# Two inputs, so that which tensor's mistake is said first can differ between the precheck and the check.
TWO = Gate(ModelSpec.model_validate({
    "name": "pair", "max_batch_size": 4, "outputs": [{"name": "y", "datatype": "FP32", "dims": [1]}],
    "inputs": [{"name": "a", "datatype": "FP32", "dims": [2]}, {"name": "b", "datatype": "INT64", "dims": [3]}]}))


def refusal(check, body: bytes, header_length=None) -> tuple[int, str, str] | None:
    try:
        check(body, header_length)
    except Refusal as refused:
        return refused.status, refused.reason, refused.message
    return None


@pytest.mark.parametrize("text,expected", [
    (b'{"data": [1, 2.5, -3e4]}', b'{"data": []}'),
    (b'{"data" :\n [ 1 ,2 ] , "x": 1}', b'{"data" :\n [] , "x": 1}'),
    (b'[{"data": [1]}, {"data": [2, 3]}]', b'[{"data": []}, {"data": []}]'),
    (b'{"data": [true, null, 1]}', b'{"data": []}'),  # not strings or containers: cut (Triton judges the values)
    (b'{"data": [[1, 2], [3, 4]]}', b'{"data": [[1, 2], [3, 4]]}'),  # nested: kept whole
    (b'{"data": ["a]", 1]}', b'{"data": ["a]", 1]}'),  # a string could hide the closing bracket: kept
    (b'{"data": [{"a": 1}]}', b'{"data": [{"a": 1}]}'),
    (b'{"id": "\\"data\\": [1]"}', b'{"id": "\\"data\\": [1]"}'),  # inside a string
    (b'{"k\\"data": [1, 2]}', b'{"k\\"data": [1, 2]}'),  # a key ending in an escaped quote and data
    (b'{"data": 5, "datax": [1]}', b'{"data": 5, "datax": [1]}'),
    (b'{"data": [1, 2', b'{"data": [1, 2'),  # never closed: left for orjson to refuse
    (b'', b''),
])
def test_the_skeleton_empties_only_flat_arrays_under_a_data_key(text, expected):
    assert skeleton(text) == expected


def test_the_skeleton_of_a_request_is_the_request_with_its_data_emptied():
    body = json.loads(typed_body(id="r1", parameters={"priority": 1}, outputs=[{"name": "logits"}]))
    assert orjson.loads(skeleton(json.dumps(body).encode())) == {
        **body, "inputs": [{**body["inputs"][0], "data": []}]}


ALL = {**MALFORMED,
       "two tensors: data of the first, shape of the second": (
           json.dumps({"inputs": [{"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1.0]},
                                  {"name": "b", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]}).encode(),
           "application/json", {}, "pair", 400, "data_count", "has 1 values"),
       "not json inside a data array": (b'{"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32",'
                                        b' "data": [1, 2, nope]}]}', "application/json", {}, "resnet50", 400,
                                        "not_json", "not valid json")}


@pytest.mark.parametrize("case", sorted(c for c, (_, content_type, *_rest) in ALL.items()
                                        if content_type in ("application/json", "application/octet-stream")))
def test_the_precheck_refuses_with_the_full_checks_words_or_leaves_it_to_triton(case):
    """What the precheck refuses, it refuses as the full check does; what it lets through is only what Triton
    refuses itself in its HTTP front end (the tensors' values), after which the front runs the full check."""
    body, _, headers, model, _, reason, _ = ALL[case]
    gate = TWO if model == "pair" else GATE
    length = headers.get("Inference-Header-Content-Length")
    length = int(length) if length and length.isdigit() and int(length) <= len(body) else None
    if model != gate.spec.name or (headers and length is None) or reason == "body_too_large":
        pytest.skip("refused before the Gate (model, header length, body size)")
    full = refusal(gate.check, body, length)
    pre = refusal(gate.precheck, body, length)
    if full is None:  # Triton's own wrong-JSON-type 500 is the check (true among numbers): the front says 400
        assert reason == "json_type" and pre is None
        return
    assert full[1] == reason
    if pre is None:
        assert reason in {"data_count", "data_type", "data", "json_type", "not_json"}, (case, full)
    else:
        assert pre == full


@pytest.mark.parametrize("shape", [[1, 3, 32, 32, 10**9], [10**12, 3, 32, 32], [1, 3, 32, 2**62]])
def test_shapes_that_would_end_triton_never_pass_the_precheck(shape):
    """Triton 2.51 allocates what a JSON tensor's shape asks for before it looks at the model: a request with a
    shape like [1, 3, 32, 32, 1e9] ended the local server. The precheck refuses it without reading the data."""
    body = tensor_body(shape=tuple(shape), data=[0.0])
    assert refusal(GATE.precheck, body)[0] == 400


def test_a_well_formed_request_passes_both_and_the_precheck_never_reads_the_values():
    body = tensor_body()
    assert refusal(GATE.precheck, body) is None and refusal(GATE.check, body) is None
    wrong_count = tensor_body(data=[0.0] * 10)
    assert refusal(GATE.precheck, wrong_count) is None
    assert refusal(GATE.check, wrong_count)[1] == "data_count"
    binary, headers = binary_body(__import__("numpy").zeros((2, 3, 32, 32), "float32"))
    length = int(headers["Inference-Header-Content-Length"])
    assert refusal(GATE.precheck, binary, length) is None and refusal(GATE.check, binary, length) is None


def test_the_front_and_the_gate_name_the_same_binary_content_type():
    """front.py keeps its own literal (tests/components read it from the source); the Gate parses with gate.py's."""
    from serving_image import front, gate

    assert front.SAGEMAKER_BINARY == gate.SAGEMAKER_BINARY and front.HEADER_LENGTH == gate.HEADER_LENGTH
