import boto3
import pytest
from moto import mock_aws

from serving_image import local_server


@pytest.fixture(scope="module")
def server():
    """The real local Triton with the sample model, KServe v2 on 127.0.0.1; stopped after the module."""
    # A 4 MiB body limit, so that the oversized-body case stays small.
    with local_server.running(extra_env={"MLSERVE_MAX_BODY_BYTES": str(4 * 1024 * 1024)}) as running:
        yield running


MODEL_BUCKET = "mlserve-prod-models"


@pytest.fixture
def s3(monkeypatch):
    """S3 in moto, in this process, with the model bucket; nothing leaves the machine."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=MODEL_BUCKET)
        yield client
