"""preflight per `mlserve:phase`, against moto: which phase the stack is in, whether its next `pulumi up` can run, and
what the next phase still needs (the image, the released model, the quotas)."""

import boto3
from botocore.stub import Stubber

from infra.ops.__main__ import main
from infra.ops.demo_account import IMAGE_TAG, REPOSITORY
from infra.ops.preflight import preflight
from infra.ops.release import release_model
from tests.harness import dump_yaml
from tests.ops.conftest import SAMPLE_MODEL, config_from, dev_raw, platform, stub_sagemaker_quotas

MODEL_URI = "s3://mlserve-dev-models/resnet50/925ccfc0e86ea74c/model.tar.gz"


def dev(phase: str):
    raw = dev_raw()
    raw["mlserve:phase"] = phase
    return config_from(raw)


def row(checks, area):
    [found] = [c for c in checks if c.area == area]
    return found


def stores_only(clients):
    """What phase one's `pulumi up` leaves: the bucket and the repository, no image, no model."""
    clients.s3.create_bucket(Bucket="mlserve-dev-models")
    clients.ecr.create_repository(repositoryName=REPOSITORY)


def test_a_fresh_account_in_phase_stores_may_go_and_hears_what_phase_all_will_need(aws):
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    checks = preflight(dev("stores"), "dev", aws)
    phase = row(checks, "phase")
    assert phase.status == "pass" and phase.subject == "mlserve:phase stores"
    assert phase.detail.startswith("phase one: this `pulumi up` creates the stack key, bucket mlserve-dev-models, "
                                   "repositories mlserve-dev/triton")
    assert not [c for c in checks if c.status == "fail"]
    image, artifact = row(checks, "image"), row(checks, "artifact")
    assert image.status == "todo" and image.detail == "the ECR repository does not exist yet"
    assert image.fix.startswith("this phase-one `pulumi up` creates it")
    assert artifact.status == "todo" and artifact.subject == MODEL_URI and artifact.detail == "not found in S3"
    nxt = row(checks, "next phase")
    assert nxt.status == "todo" and f"image {REPOSITORY}:{IMAGE_TAG}: the ECR repository does not exist yet" in \
        nxt.detail and f"artifact {MODEL_URI}: not found in S3" in nxt.detail


def test_after_phase_one_it_names_the_image_the_model_and_the_quota_still_missing(aws):
    stores_only(aws)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 2})
    checks = preflight(dev("stores"), "dev", aws)
    assert row(checks, "phase").detail.startswith("phase one is applied: ")
    nxt = row(checks, "next phase")
    assert nxt.status == "todo"
    assert f"image {REPOSITORY}:{IMAGE_TAG}: no such image in the repository" in nxt.detail
    assert f"artifact {MODEL_URI}: not found in S3" in nxt.detail
    assert "quota ml.g5.xlarge for endpoint usage: need 4" in nxt.detail and "quota 2" in nxt.detail
    assert row(checks, "quota").status == "todo" and "request an increase to 4" in row(checks, "quota").fix


def test_ready_for_phase_all_once_the_image_is_pushed_and_the_model_released(aws):
    platform(aws)
    release_model(dev("stores"), "dev", "resnet50", SAMPLE_MODEL, aws)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    checks = preflight(dev("stores"), "dev", aws)
    nxt = row(checks, "next phase")
    assert nxt.status == "pass" and nxt.detail.startswith("ready: ")
    assert nxt.fix.startswith("pulumi config set --stack dev mlserve:phase all")
    assert all(c.status == "pass" for c in checks), checks


def test_phase_stores_on_a_stack_that_serves_fails_before_it_deletes_everything(aws):
    platform(aws)
    aws.apigateway.create_rest_api(name="mlserve-dev-resnet50")
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    phase = row(preflight(dev("stores"), "dev", aws), "phase")
    assert phase.status == "fail" and "the stack already serves (mlserve-dev-resnet50)" in phase.detail
    assert phase.fix == "pulumi config set --stack dev mlserve:phase all"


def test_phase_all_on_a_fresh_account_fails_and_points_at_phase_one(aws):
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    checks = preflight(dev("all"), "dev", aws)
    phase = row(checks, "phase")
    assert phase.status == "fail" and phase.detail.startswith("the stores do not exist yet")
    assert "pulumi config set mlserve:phase stores" in phase.fix
    assert row(checks, "image").status == "fail"  # in phase all, what the up needs fails


def test_a_bucket_name_someone_else_owns_fails_phase_one(aws):
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("head_bucket", "403", "Forbidden", 403, expected_params={"Bucket": "mlserve-dev-models"})
    stubber.add_client_error("head_object", "403", "Forbidden", 403)
    stubber.activate()
    aws.inject("s3", client)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    bucket = row(preflight(dev("stores"), "dev", aws), "bucket")
    assert bucket.status == "fail" and "the name is taken" in bucket.detail
    assert "mlserve:model_store.bucket" in bucket.fix


def test_the_cli_says_the_phase_and_exits_0_when_phase_one_can_go(aws, tmp_path, capsys, monkeypatch):
    from infra.ops import __main__ as cli

    real = cli.Clients

    def with_quotas(region, endpoint_url):
        clients = real(region, endpoint_url)
        stub_sagemaker_quotas(clients, {"ml.g5.xlarge": 4})
        return clients

    monkeypatch.setattr(cli, "Clients", with_quotas)
    raw = dev_raw()
    raw["mlserve:phase"] = "stores"
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(dump_yaml(raw))
    assert main(["preflight", "--stack", "dev", "--config-file", str(stack_file)]) == 0
    out = capsys.readouterr().out
    assert "mlserve:phase stores" in out and "TODO" in out
    assert "preflight: 2 passed, 0 failed, 0 unverified, 3 to do before mlserve:phase all" in out


def test_what_aws_will_not_show_is_unverified_not_a_traceback(aws):
    client = boto3.client("apigateway", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("get_rest_apis", "AccessDeniedException", "not authorized", 403)
    stubber.activate()
    aws.inject("apigateway", client)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    checks = preflight(dev("stores"), "dev", aws)
    [unread] = [c for c in checks if c.status == "unverified"]
    assert unread.detail == "could not read the stack's REST APIs (AccessDeniedException; grant apigateway:GET on " \
                            "/restapis)"
