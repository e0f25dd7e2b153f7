"""Warm engines across replicas: a built TensorRT engine is shared through S3 (moto here) under its key, a later
start on an empty disk downloads it and never builds, and a corrupt or mismatched object is refused and rebuilt.
No failure of the store stops a start: S3's 403 AccessDenied for a missing key (a caller without s3:ListBucket; botocore's
Stubber answers it as S3 does), an unreachable endpoint, missing credentials or a failed upload is said, counted, and
the engine built locally; a 404 stays a plain miss. The builder is a stand-in (no TensorRT here) that writes known
bytes and counts its calls."""

import os

import pytest

from serving_image.engine_store import EngineStore, EngineStoreError
from serving_image.engines import EngineKey, cached_engine, ensure_engine
from tests.serving.conftest import MODEL_BUCKET

BUCKET = MODEL_BUCKET  # the conftest `s3` fixture creates it
KEY = EngineKey(compute_capability="8.6", tensorrt_version="10.13.0", onnx_sha256="ab" * 32, fp16=True)


class StandInBuilder:
    def __init__(self, payload: bytes = b"engine built for sm86"):
        self.payload, self.calls = payload, 0

    def __call__(self, path):
        self.calls += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.payload)


@pytest.fixture
def store(s3):
    return EngineStore.from_uri(f"s3://{BUCKET}/engines/", s3)


def test_the_first_replica_builds_and_shares_and_the_next_downloads_without_building(store, tmp_path):
    first, second = StandInBuilder(), StandInBuilder()
    built = ensure_engine(KEY, tmp_path / "replica-1", first, store)
    assert first.calls == 1 and built.read_bytes() == b"engine built for sm86"
    listed = store.client.list_objects_v2(Bucket=BUCKET, Prefix="engines/")["Contents"]
    assert [o["Key"] for o in listed] == [f"engines/{KEY.folder()}/{built.name}"]

    fetched = ensure_engine(KEY, tmp_path / "replica-2", second, store)  # a new pod: empty engine cache
    assert second.calls == 0 and fetched.read_bytes() == b"engine built for sm86"


def test_a_corrupt_download_is_refused_and_rebuilt(store, tmp_path, capsys):
    ensure_engine(KEY, tmp_path / "replica-1", StandInBuilder(), store)
    (listed,) = store.client.list_objects_v2(Bucket=BUCKET, Prefix="engines/")["Contents"]
    head = store.client.head_object(Bucket=BUCKET, Key=listed["Key"])
    # The bytes change, the recorded sha256 does not (a partial or tampered upload).
    store.client.put_object(Bucket=BUCKET, Key=listed["Key"], Body=b"truncated", Metadata=head["Metadata"])
    rebuild = StandInBuilder()
    engine = ensure_engine(KEY, tmp_path / "replica-2", rebuild, store)
    assert rebuild.calls == 1 and engine.read_bytes() == b"engine built for sm86"
    assert "engine store: refusing" in capsys.readouterr().err
    good = store.client.get_object(Bucket=BUCKET, Key=listed["Key"])["Body"].read()
    assert good == b"engine built for sm86"  # the rebuild replaced the bad object


def test_an_engine_recorded_for_another_key_is_refused(store, tmp_path, capsys):
    other = EngineKey("8.9", KEY.tensorrt_version, KEY.onnx_sha256, KEY.fp16)  # an L4's engine, not an A10G's
    engine = tmp_path / "built" / cached_engine(tmp_path, KEY).name  # the file name an sm86 start looks for
    StandInBuilder(b"engine built for sm89")(engine)
    uri = store.publish(other, engine)
    # Someone copied it under the sm86 key: its metadata still says sm89.
    store.client.copy_object(Bucket=BUCKET, CopySource={"Bucket": BUCKET, "Key": uri.split("/", 3)[3]},
                             Key=store.object_key(KEY, engine.name), MetadataDirective="COPY")
    rebuild = StandInBuilder()
    assert ensure_engine(KEY, tmp_path / "replica", rebuild, store).read_bytes() == b"engine built for sm86"
    assert rebuild.calls == 1 and "engine store: refusing" in capsys.readouterr().err


def test_a_failed_build_shares_nothing(store, tmp_path):
    def failing(path):
        raise RuntimeError("TensorRT failed to build an engine")

    with pytest.raises(RuntimeError):
        ensure_engine(KEY, tmp_path, failing, store)
    assert "Contents" not in store.client.list_objects_v2(Bucket=BUCKET, Prefix="engines/")


def test_a_malformed_store_uri_is_a_clear_error():
    with pytest.raises(EngineStoreError, match="must be s3://bucket/prefix/"):
        EngineStore.from_uri("s3://bucket-without-prefix", client=None)


# The shared store is an optimisation: any failure of it (a refusal, an unreachable endpoint, no credentials, a bad
# object, a failed upload) must leave the replica building and serving, said in one line and counted.


@pytest.fixture
def stubbed(monkeypatch):
    """A real boto3 S3 client whose calls are answered by botocore's Stubber (validated against the S3 model)."""
    import boto3
    from botocore.stub import Stubber

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield EngineStore.from_uri(f"s3://{BUCKET}/engines/", client), stubber
        stubber.assert_no_pending_responses()


def engine_key(store, tmp_path):
    return store.object_key(KEY, cached_engine(tmp_path, KEY).name)


def test_a_403_access_denied_lookup_builds_locally_shares_and_is_counted(stubbed, tmp_path, capsys):
    """What S3 answers a GetObject of a missing key when the caller lacks s3:ListBucket: 403 AccessDenied."""
    store, stubber = stubbed
    where = engine_key(store, tmp_path)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403, expected_params={"Bucket": BUCKET, "Key": where})
    stubber.add_response("put_object", {"ETag": '"e"'}, expected_params={
        "Bucket": BUCKET, "Key": where, "Body": b"engine built for sm86", "Metadata": _stub_any()})
    builder = StandInBuilder()
    engine = ensure_engine(KEY, tmp_path, builder, store)
    assert builder.calls == 1 and engine.read_bytes() == b"engine built for sm86"
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("engine store:")]
    assert len(errors) == 1 and "AccessDenied" in errors[0] and "403" in errors[0] and "building" in errors[0], errors
    assert dict(store.failures) == {("fetch", "AccessDenied"): 1}


def test_a_404_missing_key_is_a_plain_miss_not_a_failure(stubbed, tmp_path, capsys):
    store, stubber = stubbed
    where = engine_key(store, tmp_path)
    stubber.add_client_error("get_object", service_error_code="NoSuchKey", service_message="The specified key does "
                             "not exist.", http_status_code=404, expected_params={"Bucket": BUCKET, "Key": where})
    stubber.add_response("put_object", {"ETag": '"e"'}, expected_params={
        "Bucket": BUCKET, "Key": where, "Body": b"engine built for sm86", "Metadata": _stub_any()})
    builder = StandInBuilder()
    ensure_engine(KEY, tmp_path, builder, store)
    assert builder.calls == 1 and not store.failures
    assert "engine store:" not in capsys.readouterr().err


def test_a_failed_upload_keeps_the_built_engine_and_is_counted(stubbed, tmp_path, capsys):
    store, stubber = stubbed
    where = engine_key(store, tmp_path)
    stubber.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    stubber.add_client_error("put_object", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403, expected_params={
                                 "Bucket": BUCKET, "Key": where, "Body": b"engine built for sm86",
                                 "Metadata": _stub_any()})
    engine = ensure_engine(KEY, tmp_path, StandInBuilder(), store)
    assert engine.read_bytes() == b"engine built for sm86"
    assert dict(store.failures) == {("publish", "AccessDenied"): 1}
    assert "engine store: cannot share" in capsys.readouterr().err


def test_an_unreachable_store_builds_locally_and_is_counted(monkeypatch, tmp_path, capsys):
    """A real client against a closed port on 127.0.0.1: botocore's own connection error, no network reached."""
    import socket

    import boto3
    from botocore.config import Config

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{closed}",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    store = EngineStore.from_uri(f"s3://{BUCKET}/engines/", client)
    builder = StandInBuilder()
    engine = ensure_engine(KEY, tmp_path, builder, store)
    assert builder.calls == 1 and engine.read_bytes() == b"engine built for sm86"
    assert dict(store.failures) == {("fetch", "EndpointConnectionError"): 1,
                                    ("publish", "EndpointConnectionError"): 1}
    assert "Could not connect to the endpoint URL" in capsys.readouterr().err


def test_missing_credentials_build_locally_and_are_counted(monkeypatch, tmp_path):
    """No credentials anywhere (and instance metadata off, so nothing leaves the machine): NoCredentialsError."""
    import boto3

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = EngineStore.from_uri(f"s3://{BUCKET}/engines/", boto3.Session().client("s3", region_name="us-east-1"))
    builder = StandInBuilder()
    ensure_engine(KEY, tmp_path / "cache", builder, store)
    assert builder.calls == 1
    assert dict(store.failures) == {("fetch", "NoCredentialsError"): 1, ("publish", "NoCredentialsError"): 1}


def test_a_corrupt_object_is_counted_as_a_store_failure(store, tmp_path):
    ensure_engine(KEY, tmp_path / "replica-1", StandInBuilder(), store)
    (listed,) = store.client.list_objects_v2(Bucket=BUCKET, Prefix="engines/")["Contents"]
    head = store.client.head_object(Bucket=BUCKET, Key=listed["Key"])
    store.client.put_object(Bucket=BUCKET, Key=listed["Key"], Body=b"truncated", Metadata=head["Metadata"])
    ensure_engine(KEY, tmp_path / "replica-2", StandInBuilder(), store)
    assert dict(store.failures) == {("fetch", "mismatch"): 1}


def _stub_any():
    from botocore.stub import ANY

    return ANY


def test_the_entrypoint_carries_on_without_a_store_when_no_s3_client_can_be_made(monkeypatch, tmp_path, capsys):
    """A broken AWS profile makes boto3.client fail before any call: counted, said, and the start goes on."""
    from collections import Counter

    from serving_image.entrypoint import engine_store

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_PROFILE", "not-a-profile")
    failures: Counter = Counter()
    assert engine_store(f"s3://{BUCKET}/engines/", failures) is None
    assert failures == {("client", "ProfileNotFound"): 1}
    assert "engine store: cannot make an S3 client" in capsys.readouterr().err
    with pytest.raises(EngineStoreError):  # a malformed URI stays a usage error, said at start
        engine_store("s3://bucket-without-prefix", failures)


def test_store_failures_are_exported_on_the_front_metrics_and_summarised():
    from collections import Counter

    from prometheus_client import generate_latest

    from serving_image.engine_store import summary
    from serving_image.front import Front, Gate
    from serving_image.local_server import SAMPLE
    from serving_image.repository import load_model_dir

    failures = Counter({("fetch", "AccessDenied"): 2, ("publish", "AccessDenied"): 1})
    spec, _ = load_model_dir(SAMPLE)
    text = generate_latest(Front(Gate(spec), 1, store_failures=failures).registry).decode()
    assert 'mlserve_engine_store_failures_total{model="resnet50",operation="fetch",reason="AccessDenied"} 2.0' in text
    assert 'mlserve_engine_store_failures_total{model="resnet50",operation="publish",reason="AccessDenied"} 1.0' in text
    assert summary(failures) == "3 engine store failure(s) (fetch AccessDenied x2, publish AccessDenied x1)"
