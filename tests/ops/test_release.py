"""release-model against moto: packaging, idempotency, registration, the printed config change, bad folders."""

import hashlib
import io
import json
import shutil
import tarfile

import pytest

from infra.config.loader import load_stack
from infra.ops.__main__ import main
from infra.ops.release import config_commands, model_files, package, release_model
from infra.ops.report import OpsError
from tests.ops.conftest import SAMPLE_MODEL, platform


def test_releasing_the_same_files_twice_makes_one_version(aws):
    platform(aws)
    cfg = load_stack("dev")
    first = release_model(cfg, "dev", "resnet50", SAMPLE_MODEL, aws)
    second = release_model(cfg, "dev", "resnet50", SAMPLE_MODEL, aws)

    assert first.created and not second.created
    assert (second.uri, second.sha256, second.model_package_arn) == (first.uri, first.sha256, first.model_package_arn)
    packages = aws.sagemaker.list_model_packages(ModelPackageGroupName="mlserve-dev-resnet50")["ModelPackageSummaryList"]
    assert len(packages) == 1 and packages[0]["ModelApprovalStatus"] == "Approved"
    versions = aws.s3.list_object_versions(Bucket="mlserve-dev-models", Prefix="resnet50/")["Versions"]
    assert len(versions) == 1  # the versioned bucket got one write, not two


def test_release_uploads_a_tarball_the_serving_image_reads_with_its_sha256(aws):
    platform(aws)
    release = release_model(load_stack("dev"), "dev", "resnet50", SAMPLE_MODEL, aws)
    key = release.uri.split("/", 3)[3]
    obj = aws.s3.get_object(Bucket="mlserve-dev-models", Key=key)
    body = obj["Body"].read()
    assert hashlib.sha256(body).hexdigest() == release.sha256 == obj["Metadata"]["sha256"]
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == ["model.onnx", "spec.json"]  # unpacked flat into /opt/ml/model
    described = aws.sagemaker.describe_model_package(ModelPackageName=release.model_package_arn)
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == release.uri
    assert container["Image"].endswith(".dkr.ecr.us-east-1.amazonaws.com/mlserve-dev/triton:26.04-trt10-r1")
    assert container["Environment"]["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "resnet50"


def test_the_dev_stack_serves_exactly_the_released_sample_model():
    """Pulumi.dev.yaml points at what release-model makes of serving_image/sample_model (regenerate both together)."""
    cfg = load_stack("dev")
    sha = hashlib.sha256(package(model_files(SAMPLE_MODEL, "resnet50"))).hexdigest()
    assert cfg.deployments[0].model.sha256 == sha
    assert cfg.deployments[0].model.uri == f"s3://mlserve-dev-models/resnet50/{sha[:16]}/model.tar.gz"


def test_packaging_is_deterministic_whatever_the_file_times(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, copy)
    (copy / "model.onnx").touch()
    assert package(model_files(copy, "resnet50")) == package(model_files(SAMPLE_MODEL, "resnet50"))


def test_metrics_are_registered_with_the_version(aws, tmp_path):
    platform(aws)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"top1_accuracy": 0.761}))
    release = release_model(load_stack("dev"), "dev", "resnet50", SAMPLE_MODEL, aws, metrics)
    described = aws.sagemaker.describe_model_package(ModelPackageName=release.model_package_arn)
    uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    stored = aws.s3.get_object(Bucket="mlserve-dev-models", Key=uri.split("/", 3)[3])["Body"].read()
    assert json.loads(stored) == {"top1_accuracy": 0.761}


def test_printed_config_change_targets_the_deployment_keys(aws):
    platform(aws)
    cfg = load_stack("dev")
    release = release_model(cfg, "dev", "resnet50", SAMPLE_MODEL, aws)
    assert config_commands(cfg, "dev", "resnet50", release) == [
        f"pulumi config set --stack dev --path 'deployments[0].model.uri' {release.uri}",
        f"pulumi config set --stack dev --path 'deployments[0].model.sha256' {release.sha256}"]


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "spec.json").unlink(), "spec.json is missing"),
    (lambda d: (d / "spec.json").write_text("{not json"), "is not valid JSON"),
    (lambda d: (d / "spec.json").write_text(json.dumps({"name": "other", "inputs": [], "outputs": []})),
     "model.triton_model_name is 'resnet50'"),
    (lambda d: (d / "model.onnx").write_bytes(b""), "model.onnx is empty"),
])
def test_a_bad_model_folder_is_refused_before_anything_is_uploaded(aws, tmp_path, damage, message):
    platform(aws)
    folder = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, folder)
    damage(folder)
    with pytest.raises(OpsError, match=message):
        release_model(load_stack("dev"), "dev", "resnet50", folder, aws)
    assert aws.s3.list_objects_v2(Bucket="mlserve-dev-models").get("KeyCount") == 0


def test_cli_release_prints_the_config_change_and_a_bad_folder_exits_2(aws, capsys, tmp_path):
    platform(aws)
    assert main(["release-model", "--stack", "dev", "--deployment", "resnet50", "--model-dir", str(SAMPLE_MODEL)]) == 0
    out = capsys.readouterr().out
    assert "released: s3://mlserve-dev-models/resnet50/" in out and "pulumi config set --stack dev --path" in out
    assert main(["release-model", "--stack", "dev", "--deployment", "resnet50", "--model-dir", str(SAMPLE_MODEL)]) == 0
    assert "already released (no new version)" in capsys.readouterr().out
    assert main(["release-model", "--stack", "dev", "--deployment", "resnet50", "--model-dir",
                 str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert main(["release-model", "--stack", "dev", "--deployment", "bert", "--model-dir", str(SAMPLE_MODEL)]) == 2
    assert "has no deployment 'bert'" in capsys.readouterr().err
