"""preflight for a language model (runtime vllm): the release manifest at `<uri>mlserve-manifest.json` with the
config's sha256, every file it lists in S3 at its size, a 403 said as what it may be (S3 answers 403 for a missing
key to a caller without s3:ListBucket; moto answers 404 regardless, so AWS's 403 is stood in by botocore's Stubber),
and the GPU quotas of the LLM's pool or instance type, the rows naming the LLM."""

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from components.names import image_repository_name
from components.weights_manifest import MANIFEST
from infra.config.loader import read_stack_file
from infra.ops import demo_account
from infra.ops.__main__ import main
from infra.ops.preflight import (
    EKS_ADDONS,
    RELEASE_LLM_FIX,
    check_artifacts,
    check_endpoint_quotas,
    check_node_group_quotas,
    check_weights_folder,
    endpoint_needs,
    preflight,
)
from infra.ops.release import release_model
from tests.harness import config_of, dump_yaml
from tests.ops.conftest import config_from, stub_sagemaker_quotas
from tests.ops.llm_folder import BUCKET, DEPLOYMENT, EXAMPLE, STACK, llm_config, llm_raw, write_llm_folder
from tests.ops.test_preflight import stub_addon_versions, stub_parameter, stub_vcpu_quotas


def released(aws, tmp_path, raw=None):
    """The LLM stack's bucket, the tiny folder released into it, and the stack's config pointing at that release."""
    demo_account.platform(aws, bucket=BUCKET, repository=image_repository_name(STACK, "vllm-openai"))
    folder = write_llm_folder(tmp_path / "assistant")
    release = release_model(llm_config(raw), STACK, DEPLOYMENT, folder, aws)
    raw = raw or llm_raw()
    raw["mlserve:deployments"][0]["model"].update(uri=release.uri, sha256=release.sha256)
    return raw, release


def rows(aws, raw):
    return {c.area: c for c in check_artifacts(llm_config(raw), STACK, aws)}


def test_a_released_folder_passes_with_its_manifest_and_every_file_at_its_size(aws, tmp_path):
    raw, release = released(aws, tmp_path)
    checks = check_artifacts(llm_config(raw), STACK, aws)
    assert [(c.area, c.subject, c.status) for c in checks] == [
        ("artifact", release.uri + MANIFEST, "pass"), ("weights", release.uri, "pass")]
    assert f"sha256 {release.sha256[:16]}… matches; lists 5 file(s)" in checks[0].detail
    assert checks[1].detail == f"all 5 file(s) of the manifest in S3 at their sizes ({release.size_bytes} B)"


def test_no_manifest_at_the_uri_fails_with_the_release_command(aws, tmp_path):
    raw, release = released(aws, tmp_path)
    raw["mlserve:deployments"][0]["model"]["uri"] = f"s3://{BUCKET}/{DEPLOYMENT}/never-released/"
    [row] = check_artifacts(llm_config(raw), STACK, aws)
    assert row.status == "fail" and row.subject == f"s3://{BUCKET}/{DEPLOYMENT}/never-released/{MANIFEST}"
    assert "no release manifest" in row.detail
    assert row.fix == RELEASE_LLM_FIX.format(stack=STACK, deployment=DEPLOYMENT)


def test_a_manifest_with_another_sha256_fails_without_checking_files_of_another_release(aws, tmp_path):
    raw, release = released(aws, tmp_path)
    raw["mlserve:deployments"][0]["model"]["sha256"] = "ab" * 32
    [row] = check_artifacts(llm_config(raw), STACK, aws)
    assert row.status == "fail"
    assert f"sha256 {release.sha256[:16]}… differs from the config's model.sha256 abababababababab…" in row.detail


def test_a_missing_file_and_a_file_at_another_size_fail_the_weights_row(aws, tmp_path):
    raw, release = released(aws, tmp_path)
    prefix = release.uri.split("/", 3)[3]
    aws.s3.delete_object(Bucket=BUCKET, Key=prefix + "tokenizer.json")
    aws.s3.put_object(Bucket=BUCKET, Key=prefix + "model.safetensors", Body=b"half a shard")
    checks = rows(aws, raw)
    assert checks["artifact"].status == "pass"  # the manifest itself is right: the files are not
    weights = checks["weights"]
    assert weights.status == "fail"
    assert "of 5 file(s): 1 missing: tokenizer.json; 1 at another size: model.safetensors (12 B in S3, " in weights.detail
    assert weights.fix == RELEASE_LLM_FIX.format(stack=STACK, deployment=DEPLOYMENT)


def test_a_file_whose_metadata_names_another_sha256_fails(aws, tmp_path):
    raw, release = released(aws, tmp_path)
    key = release.uri.split("/", 3)[3] + "config.json"
    body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b"llama", b"LLAMA"), Metadata={"sha256": "0" * 64})
    weights = rows(aws, raw)["weights"]
    assert weights.status == "fail" and "1 with another sha256 in their metadata: config.json" in weights.detail


def stubbed_s3(aws, calls):
    """An S3 client answering `calls` ((operation, response or error code), ...) in order, as AWS would."""
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    for operation, params, answer in calls:
        if isinstance(answer, str):
            stubber.add_client_error(operation, answer, "Forbidden" if answer == "403" else "Access Denied", 403,
                                     expected_params=params)
        else:
            stubber.add_response(operation, answer, params)
    stubber.activate()
    aws.inject("s3", client)
    return stubber


def test_a_403_is_said_to_be_missing_or_unreadable_and_asks_for_list_bucket(aws, tmp_path):
    raw, release = released(aws, tmp_path)
    artifact = llm_config(raw).deployments[0].model
    prefix = artifact.key
    manifest = aws.s3.get_object(Bucket=BUCKET, Key=prefix + MANIFEST)["Body"].read()
    files = json.loads(manifest)["files"]
    fix = RELEASE_LLM_FIX.format(stack=STACK, deployment=DEPLOYMENT)
    # The manifest readable, one file denied (HeadObject has no body: its code is the status, "403").
    calls = [("get_object", {"Bucket": BUCKET, "Key": prefix + MANIFEST},
              {"Body": StreamingBody(io.BytesIO(manifest), len(manifest))})]
    for name, meta in files.items():
        params = {"Bucket": BUCKET, "Key": prefix + name}
        calls.append(("head_object", params, "403" if name == "model.safetensors" else
                      {"ContentLength": meta["size"], "Metadata": {"sha256": meta["sha256"]}}))
    stubber = stubbed_s3(aws, calls)
    [manifest_row, weights] = check_weights_folder(artifact, fix, aws)
    stubber.assert_no_pending_responses()
    assert manifest_row.status == "pass" and weights.status == "fail"
    assert "1 answered 403 (missing, or not readable: without s3:ListBucket S3 answers 403 for a missing key " \
           "too): model.safetensors" in weights.detail
    assert f"s3:ListBucket on s3://{BUCKET}/{prefix}*" in weights.fix

    # The manifest itself denied (GetObject's error code is AccessDenied).
    stubbed_s3(aws, [("get_object", {"Bucket": BUCKET, "Key": prefix + MANIFEST}, "AccessDenied")])
    [row] = check_weights_folder(artifact, fix, aws)
    assert row.status == "fail" and row.detail.startswith("cannot read it: AccessDenied (S3 answers 403 for a "
                                                          "missing key too, unless the caller may s3:ListBucket)")
    assert "grant s3:GetObject and s3:ListBucket" in row.fix


def test_the_gpu_pool_quota_row_names_the_llm_it_is_for(aws):
    stubber = stub_vcpu_quotas(aws, {"L-DB2E81BA": 16.0})  # on-demand G: the pool may hold 32 vCPUs
    checks = check_node_group_quotas(llm_config(), aws)
    stubber.assert_no_pending_responses()
    offering = next(c for c in checks if c.area == "offering")
    assert (offering.subject, offering.status) == ("g6e.xlarge", "pass")
    [quota] = [c for c in checks if c.area == "quota"]
    assert quota.status == "fail" and quota.subject == "Running On-Demand G and VT instances"
    assert quota.detail == ("need 32 vCPUs (GPU pool gpu-l40s at its cpu_limit), quota 16; for assistant (LLM, "
                            "vLLM)")
    assert quota.fix == "request an increase to 32 vCPUs (ec2 L-DB2E81BA)"


def test_a_sagemaker_llm_component_counts_its_instances_and_is_named_an_llm():
    cfg = config_of(read_stack_file(EXAMPLE.with_name("Pulumi.llm-sagemaker.yaml")), "llm-sagemaker")
    need = endpoint_needs(cfg, "llm-sagemaker")["ml.g6e.xlarge"]
    assert need.instances == 2 + 2  # 2 copies of 1 GPU on 1-GPU instances, plus an all-at-once batch of 2
    assert need.why == "assistant (LLM, vLLM): 2 copies + a batch of 2, 1 per instance"


def test_the_sagemaker_llm_quota_row_names_the_llm(aws):
    cfg = config_of(read_stack_file(EXAMPLE.with_name("Pulumi.llm-sagemaker.yaml")), "llm-sagemaker")
    stub_sagemaker_quotas(aws, {"ml.g6e.xlarge": 2})
    [quota] = check_endpoint_quotas(cfg, "llm-sagemaker", aws)
    assert (quota.subject, quota.status) == ("ml.g6e.xlarge for endpoint usage", "fail")
    assert quota.detail.startswith("need 4 (assistant (LLM, vLLM): 2 copies + a batch of 2, 1 per instance, ")
    assert quota.fix.startswith("request an increase to 4")


@pytest.fixture
def llm_account(aws, tmp_path, monkeypatch):
    """The LLM stack after phase one, its image pushed (by tag) and its folder released, with what moto cannot
    answer (EC2 vCPU quotas, the AMI parameter, EKS add-on builds) answered by Stubbers as AWS answers them."""
    raw = llm_raw()
    raw["mlserve:deployments"][0]["image"] = {"repository": "vllm-openai", "tag": demo_account.IMAGE_TAG}
    raw, _ = released(aws, tmp_path, raw)
    stack_file = tmp_path / "Pulumi.llm.yaml"
    stack_file.write_text(dump_yaml(raw))
    cfg = config_from(raw)
    from infra.ops import __main__ as cli

    real = cli.Clients

    def answered(region, endpoint_url):
        clients = real(region, endpoint_url)
        stub_vcpu_quotas(clients, {"L-DB2E81BA": 32.0})
        stub_parameter(clients, "/aws/service/eks/optimized-ami/1.36/amazon-linux-2023/x86_64/nvidia/"
                       "amazon-eks-node-al2023-x86_64-nvidia-1.36-v20260818/image_id", "ami-0123456789abcdef0")
        pins = cfg.cluster.addons
        stub_addon_versions(clients, cfg.cluster.kubernetes_version,
                            {addon: [getattr(pins, field)] for field, addon in EKS_ADDONS.items()})
        return clients

    monkeypatch.setattr(cli, "Clients", answered)
    return stack_file, cfg, answered


def test_the_cli_passes_an_llm_stack_whose_weights_and_quotas_are_there(llm_account, capsys):
    stack_file, cfg, answered = llm_account
    assert main(["preflight", "--stack", STACK, "--config-file", str(stack_file)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "weights" in out and "(LLM, vLLM)" in out and "FAIL" not in out
    checks = preflight(cfg, STACK, answered("us-east-1", None))
    assert {c.area for c in checks} >= {"phase", "artifact", "weights", "quota", "offering", "ami", "eks add-on",
                                        "image scan"}
    assert all(c.status == "pass" for c in checks), [c for c in checks if c.status != "pass"]
    assert f"preflight: {len(checks)} passed, 0 failed, 0 unverified" in out
