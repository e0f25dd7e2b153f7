"""preflight against moto (quotas through a Stubber: moto's Service Quotas knows only VPC quotas)."""

import boto3
import pytest
from botocore.stub import Stubber

from infra.config.loader import load_stack
from infra.ops.__main__ import main
from infra.ops.preflight import endpoint_needs, preflight
from infra.ops.release import release_model
from tests.harness import raw_config as load_raw
from tests.harness import small_cluster
from tests.ops.conftest import SAMPLE_MODEL, ab_endpoint, config_from, dev_raw, platform, stub_sagemaker_quotas


def by_area(checks, area):
    return [c for c in checks if c.area == area]


def released_platform(clients, **kwargs):
    platform(clients, **kwargs)
    release_model(load_stack("dev"), "dev", "resnet50", SAMPLE_MODEL, clients)


def test_dev_needs_twice_its_max_fleet_for_a_blue_green_update():
    need = endpoint_needs(load_stack("dev"), "dev")["ml.g5.xlarge"]
    assert need.instances == 4  # autoscaling max 2, doubled while the green fleet runs beside the blue one


def test_everything_in_place_passes(aws):
    released_platform(aws)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4, "ml.g5.2xlarge": 8})
    checks = preflight(load_stack("dev"), "dev", aws)
    assert {c.area for c in checks} == {"phase", "quota", "artifact", "image scan"}
    assert all(c.status == "pass" for c in checks), checks


def test_short_quota_fails_with_the_increase_to_ask_for(aws):
    released_platform(aws)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 2})
    [quota] = by_area(preflight(load_stack("dev"), "dev", aws), "quota")
    assert quota.status == "fail" and "need 4" in quota.detail and "quota 2" in quota.detail
    assert "request an increase to 4" in quota.fix


def test_instances_other_endpoints_use_count_against_the_quota(aws, allow_gpu_instance_types):
    released_platform(aws)
    ab_endpoint(aws, name="someone-elses-endpoint", weights=(("only", 1.0),), count=2)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 5})
    [quota] = by_area(preflight(load_stack("dev"), "dev", aws), "quota")
    assert quota.status == "fail" and "in use elsewhere 2" in quota.detail
    assert "request an increase to 6" in quota.fix


def test_a_type_without_a_quota_in_the_region_is_not_offered(aws):
    released_platform(aws)
    stub_sagemaker_quotas(aws, {"ml.g6.xlarge": 4})
    [quota] = by_area(preflight(load_stack("dev"), "dev", aws), "quota")
    assert quota.status == "fail" and "does not offer ml.g5.xlarge" in quota.detail


def denied_quotas(clients):
    client = boto3.client("service-quotas", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("list_service_quotas", "AccessDeniedException", "not authorized", 400,
                             expected_params={"ServiceCode": "sagemaker"})
    stubber.activate()
    clients.inject("service_quotas", client)


def test_quotas_that_cannot_be_read_are_unverified_not_passed(aws):
    released_platform(aws)
    denied_quotas(aws)
    [quota] = by_area(preflight(load_stack("dev"), "dev", aws), "quota")
    assert quota.status == "unverified" and "AccessDeniedException" in quota.detail


def test_missing_artifact_fails_with_the_release_command(aws):
    platform(aws)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    [artifact] = by_area(preflight(load_stack("dev"), "dev", aws), "artifact")
    assert artifact.status == "fail" and artifact.detail == "not found in S3"
    assert "python -m infra.ops release-model --stack dev --deployment resnet50" in artifact.fix


def test_artifact_with_another_checksum_fails(aws):
    platform(aws)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    cfg = load_stack("dev")
    model = cfg.deployments[0].model
    aws.s3.put_object(Bucket=model.bucket, Key=model.key, Body=b"another model")  # no sha256 metadata: hashed
    [artifact] = by_area(preflight(cfg, "dev", aws), "artifact")
    assert artifact.status == "fail" and "(content) differs from the config's 925ccfc0e86ea74c" in artifact.detail


def test_missing_image_and_missing_repository_fail(aws):
    released_platform(aws, tag="some-other-tag")
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    [image] = by_area(preflight(load_stack("dev"), "dev", aws), "image")
    assert image.status == "fail" and image.detail == "no such image in the repository"
    raw = dev_raw()
    raw["mlserve:deployments"][0]["image"]["repository"] = "mlserve/not-created"
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    [image] = by_area(preflight(config_from(raw), "dev", aws), "image")
    assert image.status == "fail" and "does not exist yet" in image.detail


def test_critical_scan_finding_fails(aws):
    released_platform(aws, critical=3)
    stub_sagemaker_quotas(aws, {"ml.g5.xlarge": 4})
    [scan] = by_area(preflight(load_stack("dev"), "dev", aws), "image scan")
    assert scan.status == "fail" and "3 critical finding(s)" in scan.detail


def test_gpu_node_groups_are_checked_against_ec2_vcpu_quotas_and_offerings(aws):
    raw = dev_raw()
    raw["mlserve:cluster"] = small_cluster()
    cfg = config_from(raw)
    client = boto3.client("service-quotas", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("get_service_quota", {"Quota": {"QuotaCode": "L-DB2E81BA", "Value": 16.0}},
                         {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"})
    stubber.activate()
    aws.inject("service_quotas", client)
    from infra.ops.preflight import check_node_group_quotas

    checks = check_node_group_quotas(cfg, aws)
    offering = next(c for c in checks if c.area == "offering")
    assert offering.subject == "g5.2xlarge" and offering.status == "pass"
    quota = next(c for c in checks if c.area == "quota")
    assert quota.status == "fail" and "need 32 vCPUs" in quota.detail  # 4 nodes x 8 vCPUs > 16
    stubber.assert_no_pending_responses()


def test_cli_exits_1_on_failure_and_unverified_unless_allowed(aws, capsys, monkeypatch):
    released_platform(aws)
    from infra.ops import __main__ as cli

    real_clients = cli.Clients

    def clients_without_quota_permission(region, endpoint_url):
        clients = real_clients(region, endpoint_url)
        denied_quotas(clients)
        return clients

    monkeypatch.setattr(cli, "Clients", clients_without_quota_permission)
    assert main(["preflight", "--stack", "dev"]) == 1
    out = capsys.readouterr().out
    assert "UNVERIFIED" in out and "preflight: 3 passed, 0 failed, 1 unverified" in out
    assert main(["preflight", "--stack", "dev", "--allow-unverified"]) == 0
    assert "allowed by --allow-unverified" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["preflight", "--stack", "staging"], "Pulumi.staging.yaml"),
    (["rollout", "status", "--stack", "dev", "--deployment", "bert"], "no deployment 'bert'"),
])
def test_cli_bad_input_exits_2_with_a_message(aws, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_kserve_canary_candidate_is_checked_like_the_model_it_replaces(aws):
    from infra.ops.preflight import check_artifacts

    cfg = load_stack("prod")
    reranker = next(d for d in cfg.deployments if d.name == "reranker")
    candidate = reranker.rollout.candidate
    assert candidate is not None and candidate.uri != reranker.model.uri
    aws.s3.create_bucket(Bucket=reranker.model.bucket)
    checks = {c.subject: c for c in check_artifacts(cfg, "prod", aws)}
    assert checks[candidate.uri].status == "fail" and checks[candidate.uri].detail == "not found in S3"


def stub_addon_versions(clients, kubernetes: str, offered: dict[str, list[str]]) -> Stubber:
    """DescribeAddonVersions as EKS answers it (moto has no add-on catalogue); the Stubber checks the request shape."""
    client = boto3.client("eks", region_name="us-east-1")
    stubber = Stubber(client)
    for addon, versions in offered.items():
        stubber.add_response("describe_addon_versions", {"addons": [{"addonName": addon, "type": "networking",
            "addonVersions": [{"addonVersion": v, "architecture": ["amd64"], "compatibilities": [
                {"clusterVersion": kubernetes, "defaultVersion": i == 0, "platformVersions": ["*"]}]}
                for i, v in enumerate(versions)]}]}, {"addonName": addon, "kubernetesVersion": kubernetes})
    stubber.activate()
    clients.inject("eks", client)
    return stubber


def test_pinned_eks_addon_versions_are_checked_against_what_eks_offers_for_the_cluster_version(aws):
    from infra.ops.preflight import EKS_ADDONS, check_addon_versions

    cfg = load_stack("prod")
    pins = cfg.cluster.addons
    offered = {addon: [getattr(pins, field)] for field, addon in EKS_ADDONS.items()}
    offered["vpc-cni"] = ["v1.9.0-eksbuild.1", "v1.23.0-eksbuild.10"]  # the pin is gone; 10 > 9 numerically
    stubber = stub_addon_versions(aws, cfg.cluster.kubernetes_version, offered)
    checks = check_addon_versions(cfg, aws)
    stubber.assert_no_pending_responses()
    assert {c.subject: c.status for c in checks} == {addon: "fail" if addon == "vpc-cni" else "pass"
                                                     for addon in EKS_ADDONS.values()}
    failed = next(c for c in checks if c.status == "fail")
    assert f"pinned {pins.vpc_cni}" in failed.detail and "default v1.9.0-eksbuild.1" in failed.detail
    assert failed.fix == "set mlserve:cluster.addons.vpc_cni to one EKS offers, e.g. v1.23.0-eksbuild.10"


def stub_vcpu_quotas(clients, values: dict[str, float]) -> Stubber:
    client = boto3.client("service-quotas", region_name="us-east-1")
    stubber = Stubber(client)
    for code, value in values.items():
        stubber.add_response("get_service_quota", {"Quota": {"QuotaCode": code, "Value": value}},
                             {"ServiceCode": "ec2", "QuotaCode": code})
    stubber.activate()
    clients.inject("service_quotas", client)
    return stubber


def test_gpu_pools_need_their_cpu_limit_in_each_capacity_type_they_may_buy(aws):
    from infra.ops.preflight import check_node_group_quotas

    raw = load_raw("prod")
    raw["mlserve:cluster"]["gpu_pools"][0].update(instance_types=["g6"], capacity_types=["spot", "on-demand"])
    cfg = config_from(raw)
    stubber = stub_vcpu_quotas(aws, {"L-DB2E81BA": 128.0, "L-3819A6DF": 32.0})  # on-demand G, spot G
    checks = check_node_group_quotas(cfg, aws)
    stubber.assert_no_pending_responses()
    [offering] = by_area(checks, "offering")
    assert offering.subject == "g6" and offering.status == "pass"  # some g6 size in all three zones (moto's data)
    quotas = {c.subject: c for c in by_area(checks, "quota")}
    on_demand = quotas["Running On-Demand G and VT instances"]
    spot = quotas["All G and VT Spot Instance Requests"]
    assert on_demand.status == "pass" and "need 64 vCPUs (GPU pool gpu-a10g at its cpu_limit)" in on_demand.detail
    assert spot.status == "fail" and spot.fix == "request an increase to 64 vCPUs (ec2 L-3819A6DF)"


def stub_parameter(clients, name: str, value: str | None) -> Stubber:
    client = boto3.client("ssm", region_name="us-east-1")
    stubber = Stubber(client)
    if value is None:
        stubber.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": name})
    else:
        stubber.add_response("get_parameter", {"Parameter": {"Name": name, "Value": value, "Type": "String"}},
                             {"Name": name})
    stubber.activate()
    clients.inject("ssm", client)
    return stubber


def test_the_pinned_ami_alias_must_resolve_to_an_nvidia_image_for_the_cluster_version(aws):
    from infra.ops.preflight import check_node_class_ami

    cfg = load_stack("prod")
    parameter = ("/aws/service/eks/optimized-ami/1.36/amazon-linux-2023/x86_64/nvidia/"
                 "amazon-eks-node-al2023-x86_64-nvidia-1.36-v20260818/image_id")
    stub_parameter(aws, parameter, "ami-0123456789abcdef0")
    [ok] = check_node_class_ami(cfg, aws)
    assert ok.status == "pass" and ok.detail.endswith("ami-0123456789abcdef0")
    stub_parameter(aws, parameter, None)
    [missing] = check_node_class_ami(cfg, aws)
    assert missing.status == "fail" and "no NVIDIA image for Kubernetes 1.36" in missing.detail


def test_a_bottlerocket_alias_resolves_through_its_own_parameter_without_the_v():
    from infra.ops.preflight import ami_parameter

    assert ami_parameter("bottlerocket@v1.50.0", "1.36") == "/aws/service/bottlerocket/aws-k8s-1.36-nvidia/x86_64/1.50.0/image_id"


def test_a_rolling_rollout_reserves_max_capacity_plus_one_batch_not_a_second_fleet():
    from tests.harness import config_of, edited

    def rolling(raw):
        raw["mlserve:deployments"][0].update(rollout={"strategy": "rolling", "batch_percent": 25, "bake_minutes": 5})

    need = endpoint_needs(config_of(edited("prod", rolling), "prod"), "prod")["ml.g5.2xlarge"]
    assert need.instances == 12 + 3  # autoscaling.max 12, one batch of 25% rounded up
    assert endpoint_needs(load_stack("prod"), "prod")["ml.g5.2xlarge"].instances == 2 * 12  # blue/green: twice


def test_inference_components_reserve_instances_for_max_copies_and_one_update_batch():
    from tests.components.test_inference_components import to_components
    from tests.harness import config_of, edited

    need = endpoint_needs(config_of(edited("prod", to_components), "prod"), "prod")["ml.g5.2xlarge"]
    assert need.instances == 12 + 3  # 12 copies of 1 GPU on 1-GPU instances, plus a batch of 25%
