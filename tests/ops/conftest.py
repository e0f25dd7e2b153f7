"""Operator tools against moto: one mocked AWS account per test, with what `pulumi up` would have created."""

from __future__ import annotations

import copy
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra.config.loader import PROJECT_ROOT, read_stack_file, validate
from infra.ops import demo_account
from infra.ops.clients import Clients
from serving_image.sample_model import __file__ as _sample_init

SAMPLE_MODEL = Path(_sample_init).parent
REGION = "us-east-1"
DEV_ENDPOINT = "mlserve-dev-resnet50"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield Clients(REGION)


@pytest.fixture(autouse=True)
def event_loop_for_pulumi():
    """`asyncio.run` (profile's sweeps) ends by leaving the main thread without an event loop, and Pulumi's mock
    runtime, which plans a stack in later tests on the same worker (verify's), asks for one with
    asyncio.get_event_loop(): give the thread a fresh loop after a test that left it none."""
    yield
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture
def allow_gpu_instance_types(monkeypatch):
    # moto's hard-coded instance list rejects ml.g5/g6/p4d/p5 (real types, checked against botocore's enum in
    # tests/components/test_sagemaker_aws_api.py); only that validation is patched.
    from moto.sagemaker.models import FakeEndpointConfig

    monkeypatch.setattr(FakeEndpointConfig, "validate_instance_type", lambda self, instance_type: None)


def dev_raw() -> dict:
    return copy.deepcopy(read_stack_file(PROJECT_ROOT / "Pulumi.dev.yaml"))


def config_from(raw: dict):
    return validate(raw, "test stack")


def stub_sagemaker_quotas(clients: Clients, quotas: dict[str, float]) -> Stubber:
    """Service Quotas as AWS answers it (moto has only VPC quotas); Stubber checks our request against the API model."""
    client = boto3.client("service-quotas", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("list_service_quotas", {"Quotas": [
        {"ServiceCode": "sagemaker", "QuotaCode": f"L-{i:08X}", "QuotaName": f"{name} for endpoint usage",
         "Value": value} for i, (name, value) in enumerate(quotas.items())]}, {"ServiceCode": "sagemaker"})
    stubber.activate()
    clients.inject("service_quotas", client)
    return stubber


def platform(clients: Clients, *, tag: str = demo_account.IMAGE_TAG, critical: int = 0) -> None:
    """The stand-in platform (tests/ops share it with `make demo`), optionally with critical scan findings."""
    demo_account.platform(clients, tag=tag)
    if critical:
        import requests

        requests.post("http://motoapi.amazonaws.com/moto-api/static/ecr/scan-finding-results", json={
            "region": REGION, "results": [{
                "imageScanFindings": {"findings": [], "findingSeverityCounts": {"CRITICAL": critical, "HIGH": 2}},
                "registryId": demo_account.ACCOUNT, "repositoryName": demo_account.REPOSITORY, "imageId": {"imageTag": tag},
                "imageScanStatus": {"status": "COMPLETE", "description": "done"}}]})


def ab_endpoint(clients: Clients, name: str = DEV_ENDPOINT, weights=(("primary", 90.0), ("candidate", 10.0)),
                instance_type: str = "ml.g5.xlarge", count: int = 1) -> None:
    demo_account.weighted_endpoint(clients, name, weights, instance_type, count)
