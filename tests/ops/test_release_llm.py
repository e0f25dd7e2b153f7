"""release-model for a language model (runtime vllm) against moto: a Hugging Face folder uploaded file by file under
a prefix named by its manifest, the manifest last, registered as a folder; idempotent; folders vLLM could not serve,
and folders of the other kind, refused in one line before anything is uploaded."""

import hashlib
import json
import re
import shutil

import pytest

from components.names import image_repository_name
from components.weights_manifest import MANIFEST, build_manifest, manifest_bytes
from infra.ops import demo_account
from infra.ops.__main__ import main
from infra.ops.release import release_model
from infra.ops.report import OpsError
from tests.harness import dump_yaml
from tests.ops.conftest import SAMPLE_MODEL, platform
from tests.ops.llm_folder import BUCKET, DEPLOYMENT, EXAMPLE, STACK, llm_config, llm_raw, write_llm_folder


def llm_platform(aws):
    """What phase one of the LLM stack leaves: its versioned bucket (and an image repository, unused here)."""
    demo_account.platform(aws, bucket=BUCKET, repository=image_repository_name(STACK, "vllm-openai"))


def objects(aws, prefix=""):
    return {o["Key"]: o["Size"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])}


def versions(aws):
    return aws.s3.list_object_versions(Bucket=BUCKET).get("Versions", [])


def cli(*extra):
    return main(["release-model", "--stack", STACK, "--config-file", str(EXAMPLE), "--deployment", DEPLOYMENT, *extra])


def test_every_file_and_then_the_manifest_go_under_a_prefix_named_by_the_manifest(aws, tmp_path):
    llm_platform(aws)
    folder = write_llm_folder(tmp_path / "assistant", shards=2)
    release = release_model(llm_config(), STACK, DEPLOYMENT, folder, aws)

    manifest = manifest_bytes(build_manifest(folder))
    sha = hashlib.sha256(manifest).hexdigest()
    prefix = f"{DEPLOYMENT}/{sha[:16]}/"
    assert (release.uri, release.sha256) == (f"s3://{BUCKET}/{prefix}", sha)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
                     "tokenizer_config.json"]
    assert objects(aws) == {**{prefix + n: (folder / n).stat().st_size for n in names}, prefix + MANIFEST: len(manifest)}
    for name in names:  # the bytes as released, each with its sha256 in its metadata
        got = aws.s3.get_object(Bucket=BUCKET, Key=prefix + name)
        body = got["Body"].read()
        assert body == (folder / name).read_bytes()
        assert got["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    stored = aws.s3.get_object(Bucket=BUCKET, Key=prefix + MANIFEST)["Body"].read()
    assert stored == manifest and json.loads(stored)["files"]["config.json"]["size"] == (folder / "config.json").stat().st_size
    assert (release.created, release.written, release.files) == (True, len(names) + 1, len(names) + 1)
    assert release.size_bytes == sum((folder / n).stat().st_size for n in names)


def test_the_version_is_registered_approved_as_an_uncompressed_folder(aws, tmp_path):
    llm_platform(aws)
    release = release_model(llm_config(), STACK, DEPLOYMENT, write_llm_folder(tmp_path / "assistant"), aws)
    described = aws.sagemaker.describe_model_package(ModelPackageName=release.model_package_arn)
    [container] = described["InferenceSpecification"]["Containers"]
    assert container["ModelDataSource"] == {"S3DataSource": {"S3Uri": release.uri, "S3DataType": "S3Prefix",
                                                             "CompressionType": "None"}}
    assert container["Image"] == (f"{demo_account.ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/mlserve-{STACK}/vllm-openai"
                                  f"@{llm_config().deployments[0].image.digest}")
    assert "text/event-stream" in described["InferenceSpecification"]["SupportedResponseMIMETypes"]
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"]["manifest"] == release.uri + MANIFEST
    assert described["ModelPackageGroupName"] == f"mlserve-{STACK}-{DEPLOYMENT}"


def test_releasing_the_same_folder_twice_writes_nothing_and_a_changed_file_is_a_new_version(aws, tmp_path):
    llm_platform(aws)
    cfg = llm_config()
    folder = write_llm_folder(tmp_path / "assistant")
    first = release_model(cfg, STACK, DEPLOYMENT, folder, aws)
    written = len(versions(aws))
    copy = shutil.copytree(folder, tmp_path / "elsewhere")  # the same files from another place, other mtimes
    second = release_model(cfg, STACK, DEPLOYMENT, copy, aws, llm=True)
    assert (second.uri, second.sha256, second.model_package_arn) == (first.uri, first.sha256, first.model_package_arn)
    assert (second.created, second.written) == (False, 0)
    assert len(versions(aws)) == written == first.files  # the versioned bucket got no second write of anything
    group = f"mlserve-{STACK}-{DEPLOYMENT}"
    assert len(aws.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) == 1

    write_llm_folder(copy, seed=1.0)  # new weights, same names
    third = release_model(cfg, STACK, DEPLOYMENT, copy, aws)
    assert third.created and third.uri != first.uri and third.version == first.version + 1
    assert len(aws.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) == 2


def test_a_file_missing_in_s3_is_written_again_and_only_that_one(aws, tmp_path):
    llm_platform(aws)
    folder = write_llm_folder(tmp_path / "assistant")
    first = release_model(llm_config(), STACK, DEPLOYMENT, folder, aws)
    key = first.uri.split("/", 3)[3] + "tokenizer.json"
    aws.s3.delete_object(Bucket=BUCKET, Key=key)
    again = release_model(llm_config(), STACK, DEPLOYMENT, folder, aws)
    assert (again.created, again.written) == (False, 1)
    assert aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (folder / "tokenizer.json").read_bytes()


def test_an_upload_that_fails_part_way_leaves_no_manifest(aws, tmp_path, monkeypatch):
    """The manifest is written last: a folder without one is not a release (preflight fails it, the pod waits)."""
    llm_platform(aws)
    folder = write_llm_folder(tmp_path / "assistant")
    real, calls = aws.s3.upload_file, []

    def failing(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise OSError("connection reset")
        return real(*args, **kwargs)

    monkeypatch.setattr(aws.s3, "upload_file", failing)
    with pytest.raises(OSError):
        release_model(llm_config(), STACK, DEPLOYMENT, folder, aws)
    keys = objects(aws)
    assert len(keys) == 2 and not any(k.endswith(MANIFEST) for k in keys)


def test_the_cli_prints_the_folder_and_the_manifest_sha256_to_paste(aws, tmp_path, capsys):
    llm_platform(aws)
    folder = write_llm_folder(tmp_path / "assistant")
    assert cli("--model-dir", str(folder), "--llm") == 0
    out = capsys.readouterr().out
    sha = hashlib.sha256(manifest_bytes(build_manifest(folder))).hexdigest()
    uri = f"s3://{BUCKET}/{DEPLOYMENT}/{sha[:16]}/"
    assert f"released: {uri}\n" in out
    assert f"sha256 {sha} (of {uri}{MANIFEST}: 5 file(s)" in out and "uploaded 6 of 6 object(s)" in out
    assert f"pulumi config set --stack {STACK} --path 'deployments[0].model.uri' {uri}\n" in out
    assert f"pulumi config set --stack {STACK} --path 'deployments[0].model.sha256' {sha}\n" in out
    assert "weights_gib" not in out  # 16 GiB configured: the folder fits
    assert cli("--model-dir", str(folder)) == 0  # the runtime says it is a language model; --llm is optional
    out = capsys.readouterr().out
    assert "already released (no new version)" in out and "nothing uploaded: all 6 object(s) were already there" in out


def test_a_folder_larger_than_the_configured_weights_gib_prints_the_value_to_set(aws, tmp_path, capsys):
    llm_platform(aws)
    raw = llm_raw()
    raw["mlserve:deployments"][0]["llm"]["weights_gib"] = 1e-7  # ~107 bytes; the folder holds ~600
    stack_file = tmp_path / "Pulumi.llm.yaml"
    stack_file.write_text(dump_yaml(raw))
    folder = write_llm_folder(tmp_path / "assistant")
    assert main(["release-model", "--stack", STACK, "--config-file", str(stack_file), "--deployment", DEPLOYMENT,
                 "--model-dir", str(folder)]) == 0
    assert re.search(r"--path 'deployments\[0\]\.llm\.weights_gib' 0\.1\n", capsys.readouterr().out)


def corrupt_header(folder):
    (folder / "model.safetensors").write_bytes((10**9).to_bytes(8, "little") + b"{}")


def truncated(folder):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:-40])


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "model.safetensors").unlink(), "no *.safetensors file; vLLM serves a Hugging Face folder"),
    (lambda f: (f / "config.json").unlink(), "no config.json; vLLM reads the model's architecture from it"),
    (lambda f: (f / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    (lambda f: (f / "config.json").write_text("{}"), "names no architectures or model_type"),
    (lambda f: (f / "tokenizer.json").unlink(), "no tokenizer (tokenizer.json"),
    (corrupt_header, "model.safetensors is not a readable safetensors file: its header claims 1000000000 bytes"),
    (truncated, "is not a readable safetensors file: tensor 'lm_head.weight' lies outside the file's"),
])
def test_a_folder_vllm_cannot_serve_is_refused_in_one_line_before_any_upload(aws, tmp_path, capsys, damage, message):
    llm_platform(aws)
    folder = write_llm_folder(tmp_path / "assistant")
    damage(folder)
    with pytest.raises(OpsError, match=re.escape(message)):
        release_model(llm_config(), STACK, DEPLOYMENT, folder, aws)
    assert cli("--model-dir", str(folder)) == 2
    err = capsys.readouterr().err
    assert err.startswith("release-model: ") and err.count("\n") == 1 and "Traceback" not in err
    assert objects(aws) == {}


def test_each_kind_of_folder_is_refused_for_the_other_kind_of_deployment(aws, tmp_path, capsys):
    llm_platform(aws)
    platform(aws)  # the dev stack's bucket and repository
    assert cli("--model-dir", str(SAMPLE_MODEL)) == 2
    assert ("is an ONNX model folder (spec.json, model.onnx), but deployment assistant is runtime vllm"
            in capsys.readouterr().err)
    weights = write_llm_folder(tmp_path / "assistant")
    dev = ["release-model", "--stack", "dev", "--deployment", "resnet50", "--model-dir"]
    assert main([*dev, str(weights)]) == 2
    err = capsys.readouterr().err
    assert "is a language model's weights folder (config.json, *.safetensors), but deployment resnet50 is runtime " \
           "triton" in err and err.count("\n") == 1
    assert main([*dev, str(SAMPLE_MODEL), "--llm"]) == 2
    assert "but resnet50 is runtime triton (a tensor model: spec.json and model.onnx); drop --llm" in \
        capsys.readouterr().err
    assert objects(aws) == {} and aws.s3.list_objects_v2(Bucket="mlserve-dev-models").get("KeyCount") == 0


def test_a_sagemaker_llm_registers_a_request_aws_accepts_for_its_instance_type(aws, tmp_path, monkeypatch):
    """moto stores what it is given: the request is checked against SageMaker's API model (enums, patterns)."""
    from infra.config.loader import read_stack_file
    from tests.aws_replay import api_violations
    from tests.harness import config_of

    cfg = config_of(read_stack_file(EXAMPLE.with_name("Pulumi.llm-sagemaker.yaml")), "llm-sagemaker")
    demo_account.platform(aws, bucket=cfg.model_store.bucket, repository="mlserve-llm-sagemaker/vllm-sagemaker")
    sent = []
    real = aws.sagemaker.create_model_package
    monkeypatch.setattr(aws.sagemaker, "create_model_package", lambda **kw: sent.append(kw) or real(**kw))
    release = release_model(cfg, "llm-sagemaker", DEPLOYMENT, write_llm_folder(tmp_path / "assistant"), aws)
    [request] = sent
    assert api_violations("sagemaker", "CreateModelPackage", request) == []
    spec = request["InferenceSpecification"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.g6e.xlarge"]
    assert spec["Containers"][0]["ModelDataSource"]["S3DataSource"]["S3Uri"] == release.uri
    assert release.uri.startswith(f"s3://{cfg.model_store.bucket}/{DEPLOYMENT}/") and release.uri.endswith("/")
