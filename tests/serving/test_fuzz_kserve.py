"""Fuzz the front from KServe's published Open Inference Protocol REST spec (schemas/kserve-oip/, v0.20.0) with
schemathesis, against the real local Triton on 127.0.0.1 serving the sample model: no generated request, valid or not
(schemathesis' positive and negative modes), gets a 5xx. A client's mistake is a 4xx with a message.

The spec writes its path templates shell-style, `/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/infer`; in
OpenAPI the template is `{MODEL_NAME}`, so the `$` would be sent literally and every request would stop at an unknown
model. The copy stays unchanged; the tests drop the `$` when they load it and fix the path parameters to the sample
model (`resnet50`, version `1`).

Two runs:
  - the spec as published: every operation, any body the spec allows or breaks (these stop at the front's checks);
  - the spec with the sample model's metadata applied (what `GET /v2/models/resnet50` says: the one input, filled
    with a tensor of the right shape, and the output's name) and with the request and output `parameters` Triton
    reads (its HTTP front end, src/http_server.cc) declared with their types, so that the rest of a request (id,
    parameters, outputs) is fuzzed through the front into Triton itself: a fuzzer cannot guess a 3072-value tensor.

Bounded: a fixed number of examples per operation, derandomized, no example database; one server for the module."""

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from serving_image.local_server import SAMPLE

SPEC_FILE = Path(__file__).resolve().parents[2] / "schemas" / "kserve-oip" / "rest_predict_v2.yaml"
MAX_EXAMPLES = 40  # per operation and run (5 + 1 operations)
MODEL = json.loads((SAMPLE / "spec.json").read_text())
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def oip_spec() -> dict:
    spec = yaml.safe_load(SPEC_FILE.read_text())
    spec["paths"] = {path.replace("${", "{"): item for path, item in spec["paths"].items()}
    return spec


def for_the_sample_model(spec: dict) -> dict:
    """The infer operation narrowed by the model's metadata, and Triton's typed parameters declared."""
    schemas = spec["components"]["schemas"]
    tensors = [{"name": t["name"], "datatype": t["datatype"], "shape": [1, *t["dims"]],
                "data": [0.5] * math.prod(t["dims"])} for t in MODEL["inputs"]]
    schemas["inference_request"]["properties"]["inputs"] = {"type": "array", "const": tensors}
    schemas["request_output"]["properties"]["name"] = {"type": "string", "enum": [t["name"] for t in MODEL["outputs"]]}
    uint, boolean = {"type": "integer", "minimum": 0}, {"type": "boolean"}
    schemas["inference_request"]["properties"]["parameters"] = {"type": "object", "properties": {
        "sequence_id": {"anyOf": [uint, {"type": "string"}]}, "sequence_start": boolean, "sequence_end": boolean,
        "priority": uint, "timeout": uint, "binary_data_output": boolean}}
    schemas["request_output"]["properties"]["parameters"] = {"type": "object", "properties": {
        "binary_data": boolean, "classification": uint}}
    return spec


published = schemathesis.openapi.from_dict(oip_spec())
published.config.update(parameters={"MODEL_NAME": MODEL["name"], "MODEL_VERSION": "1"})
sample = schemathesis.openapi.from_dict(for_the_sample_model(oip_spec())).include(path_regex="/infer$")
sample.config.update(parameters={"MODEL_NAME": MODEL["name"], "MODEL_VERSION": "1"})


@pytest.fixture(scope="module")
def statuses():
    """The statuses each run got; at the end, the sample model's run must have reached Triton and got answers (200),
    else the narrowing stopped working and the run fuzzed nothing past the front's first check."""
    seen: dict[str, Counter] = {"published": Counter(), "sample": Counter()}
    yield seen
    if seen["sample"]:
        assert seen["sample"][200] > 0 and sum(seen["sample"].values()) > seen["sample"][200], seen["sample"]


def call_and_check(case, server, seen: Counter):
    base_url = f"http://{server.url}"
    response = case.call(base_url=base_url, timeout=30)
    seen[response.status_code] += 1
    said = response.content[:300]
    assert response.status_code < 500, f"{response.status_code} {said!r}\n{case.as_curl_command(base_url=base_url)}"
    if response.status_code >= 400 and response.content:
        assert json.loads(response.content).get("error"), said  # a message, never a traceback
    return response


def test_the_spec_copy_is_kserves_oip_with_the_sample_models_routes():
    spec = oip_spec()
    assert spec["info"]["title"] == "Data Plane" and spec["openapi"].startswith("3.0")
    assert {"/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer", "/v2/health/ready"} <= set(spec["paths"])


@published.parametrize()
@FUZZ
def test_no_request_generated_from_the_published_oip_spec_gets_a_5xx(case, server, statuses):
    call_and_check(case, server, statuses["published"])


@sample.parametrize()
@FUZZ
def test_no_request_generated_for_the_sample_model_gets_a_5xx(case, server, statuses):
    call_and_check(case, server, statuses["sample"])
