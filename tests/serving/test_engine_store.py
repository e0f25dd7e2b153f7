"""Warm engines across replicas: a built TensorRT engine is shared through S3 (moto here) under its key, a later
start on an empty disk downloads it and never builds, and a corrupt or mismatched object is refused and rebuilt.
The builder is a stand-in (no TensorRT here) that writes known bytes and counts its calls."""

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
