"""S3 Standard storage the deployments fill ($0.023 a GB-month in us-east-1): the model artifacts the plan serves and
the requests and responses they capture, kept as long as the capture bucket's lifecycle keeps them."""

import json
from datetime import date
from decimal import Decimal

from infra.cost import Assumptions, Declared, declared_from_plan, estimate, load_table
from infra.cost.__main__ import main
from tests.harness import stack_plan

TABLE = load_table("us-east-1")
ON = date(2026, 12, 7)


def resource(type_token: str, name: str, props: dict) -> Declared:
    return Declared(type_token, f"urn:pulumi:t::mlserve::{type_token}::{name}", name, props)


def api(rps: str = "10") -> Declared:
    return resource("aws:apigateway/restApi:RestApi", "api",
                    {"tags": {"mlserve:usage": f"requests_per_second={rps} request_kb=16 response_kb=4"}})


def capturing_config(percent: float = 10, modes: tuple[str, ...] = ("Input", "Output")) -> Declared:
    return resource("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "config", {
        "name": "config", "dataCaptureConfig": {
            "enableCapture": True, "initialSamplingPercentage": percent,
            "destinationS3Uri": "s3://models/data-capture/endpoint/",
            "captureOptions": [{"captureMode": m} for m in modes]}})


def lifecycle(**rule) -> Declared:
    return resource("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lifecycle",
                    {"bucket": "models", "rules": [{"status": "Enabled", "filter": {"prefix": "data-capture/"}, **rule}]})


VERSIONED = resource("aws:s3/bucketVersioning:BucketVersioning", "versioning",
                     {"bucket": "models", "versioningConfiguration": {"status": "Enabled"}})


def capture_line(declared: list[Declared], **assumptions):
    result = estimate(declared, TABLE, Assumptions(as_of=ON, **assumptions))
    (line,) = [x for x in result.lines if x.item.startswith("S3 storage: captured")]
    return line, result


def test_captures_are_held_as_long_as_the_buckets_lifecycle_keeps_them():
    # 10 req/s x 10% x (16 + 4) KB x 86,400 s = 1,728,000 KB = 1.64794921875 GB a day; expired after 30 days:
    # 49.4384765625 -> 49.44 GB held at steady state, x 0.023 = 1.13712 a month
    line, result = capture_line([api(), capturing_config(), lifecycle(expiration={"days": 30})])
    assert line.quantity.max == Decimal("49.44") and line.monthly("max", result.assumptions) == Decimal("1.13712")
    assert "held 30 days (the bucket's lifecycle expires them after 30 days)" in line.note


def test_an_expired_capture_in_a_versioned_bucket_is_kept_its_noncurrent_days_more():
    # the same 1.64794921875 GB a day, held 30 + 7 days: 60.97412109375 -> 60.97 GB
    line, _ = capture_line([api(), capturing_config(), VERSIONED,
                            lifecycle(expiration={"days": 30}, noncurrentVersionExpiration={"noncurrentDays": 7})])
    assert line.quantity.max == Decimal("60.97")
    assert "expired after 30 days, then kept 7 more as noncurrent versions" in line.note


def test_captures_nothing_expires_are_priced_as_one_months_growth_and_say_so():
    # 10 x 10% x 20 KB x 3,600 x 730 / 1,048,576 = 50.1251220703125 -> 50.13 GB, x 0.023 = 1.15299
    for plan in ([api(), capturing_config()],  # no lifecycle at all
                 [api(), capturing_config(), lifecycle(noncurrentVersionExpiration={"noncurrentDays": 7})],
                 [api(), capturing_config(), VERSIONED, lifecycle(expiration={"days": 30})]):  # noncurrent forever
        line, result = capture_line(plan)
        assert line.quantity.max == Decimal("50.13") and line.monthly("max", result.assumptions) == Decimal("1.15299")
        assert "no lifecycle rule of s3://models expires data-capture/endpoint/" in line.note
        assert "priced as one month's growth" in line.note


def test_a_rule_for_another_prefix_or_tagged_objects_does_not_expire_the_captures():
    for rule in ({"filter": {"prefix": "logs/"}}, {"filter": {"and": {"prefix": "", "tags": {"keep": "no"}}}},
                 {"status": "Disabled"}):
        line, _ = capture_line([api(), capturing_config(), lifecycle(expiration={"days": 1}, **rule)])
        assert line.quantity.max == Decimal("50.13")


def test_only_the_captured_side_is_stored():
    # requests only: 10 x 10% x 16 KB x 3,600 x 730 / 1,048,576 = 40.10009765625 -> 40.10 GB
    line, _ = capture_line([api(), capturing_config(modes=("Input",))])
    assert line.quantity.max == Decimal("40.10") and line.item.startswith("S3 storage: captured requests (10%")


def test_capture_off_stores_nothing():
    config = capturing_config()
    config.props["dataCaptureConfig"]["enableCapture"] = False
    result = estimate([api(), config], TABLE, Assumptions(as_of=ON))
    assert not [line for line in result.lines if line.key == "s3:standard"]


def test_a_model_caches_declared_size_prices_its_artifact_and_others_take_the_assumed_size():
    cache = resource("kubernetes:serving.kserve.io/v1alpha1:LocalModelCache", "cache", {
        "spec": {"sourceModelUri": "s3://models/llm/1/", "modelSize": "16Gi"}})
    service = resource("kubernetes:serving.kserve.io/v1beta1:InferenceService", "llm", {
        "metadata": {"name": "llm"}, "spec": {"predictor": {"model": {"storageUri": "s3://models/llm/1/"}}}})
    model = resource("aws:sagemaker/model:Model", "tensor", {"primaryContainer": {
        "modelDataUrl": "s3://models/tensor/1/model.tar.gz"}})
    twin = resource("aws:sagemaker/model:Model", "twin", {"primaryContainer": {  # the same artifact: counted once
        "modelDataUrl": "s3://models/tensor/1/model.tar.gz"}})
    result = estimate([cache, service, model, twin], TABLE, Assumptions(as_of=ON))
    (line,) = [x for x in result.lines if x.key == "s3:standard"]
    # 16 GB declared + 1 GB assumed = 17 GB x 0.023 = 0.391
    assert line.item == "S3 storage: 2 model artifacts served (16 GB declared + 1 GB assumed)"
    assert line.monthly("max", result.assumptions) == Decimal("0.391")
    assert "1 GB an artifact assumed (--model-gb)" in line.note
    bigger = estimate([cache, service, model], TABLE, Assumptions(as_of=ON, model_gb=Decimal(5)))
    assert bigger.total("max") == Decimal("0.48")  # (16 + 5) x 0.023 = 0.483


def test_the_checked_in_stacks_price_their_artifacts_and_captures(tmp_path, capsys):
    # dev: resnet50 captures 5% of 1 req/s x 20 KB: 2.50625... -> 2.51 GB a month (its bucket expires nothing)
    # prod: resnet50 (SageMaker) 10%: 5.01 GB; the reranker (KServe's logger through the capture sink) 10% of the 90%
    # its stable track takes (the canary has no logger): 0.9 x 5.0125... = 4.51 GB;
    # artifacts: dev 1, prod 3 (the reranker's stable and canary are two releases), 1 GB each assumed
    def storage(stack: str) -> dict[tuple[str, str], Decimal]:
        result = estimate(declared_from_plan(stack_plan(stack).as_json()), TABLE, Assumptions(as_of=ON))
        return {(x.group, x.item.split(" (")[0]): x.quantity.max for x in result.lines if x.key == "s3:standard"}
    assert storage("dev") == {("resnet50", "S3 storage: 1 model artifact served"): Decimal(1),
                              ("resnet50", "S3 storage: captured requests and responses"): Decimal("2.51")}
    assert storage("prod") == {("resnet50", "S3 storage: 1 model artifact served"): Decimal(1),
                               ("resnet50", "S3 storage: captured requests and responses"): Decimal("5.01"),
                               ("reranker", "S3 storage: 2 model artifacts served"): Decimal(2),
                               ("reranker", "S3 storage: captured requests and responses"): Decimal("4.51")}
    plan = tmp_path / "dev.json"
    plan.write_text(json.dumps(stack_plan("dev").as_json()))
    assert main(["--plan", str(plan), "--model-gb", "3", "--json", "-"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["assumptions"]["model_gb"] == "3"
    (artifacts,) = [x for x in figures["lines"] if x["item"].startswith("S3 storage: 1 model artifact")]
    assert artifacts["quantity"]["max"] == "3" and artifacts["monthly"]["max"] == "0.07"  # 3 x 0.023 = 0.069


def test_sizes_read_as_kubernetes_quantities_in_gib():
    from infra.cost.estimate import _gib

    assert _gib("16Gi") == 16 and _gib("1Ti") == 1024 and _gib("512Mi") == Decimal("0.5") and _gib(200) == 200
    assert _gib("200G") == Decimal("186.26451492309570312500")  # 200 x 10^9 bytes / 2^30
    assert _gib("1T") == Decimal("931.3225746154785156250")
    assert _gib("2.5Gi") == Decimal("2.5") and _gib("1.5Ti") == 1536  # decimal quantities, as Kubernetes reads them
    assert _gib("2.Gi") is None and _gib("Gi") is None and _gib(".5Gi") == Decimal("0.5")
    assert _gib("lots") is None and _gib("1.5Gx") is None and _gib(None) is None


# The charts' volumes: EBS billed per GB-month of the claim ($0.08 a GB-month for gp3 in us-east-1).

def ebs_class(name: str = "encrypted-gp3", **parameters) -> Declared:
    return resource("kubernetes:storage.k8s.io/v1:StorageClass", name, {
        "metadata": {"name": name}, "provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3", **parameters}})


def chart(values: dict) -> Declared:
    return resource("kubernetes:helm.sh/v3:Release", "prometheus", {"name": "prometheus", "values": values})


def volume_lines(declared: list[Declared]):
    result = estimate(declared, TABLE, Assumptions(as_of=ON))
    return [x for x in result.lines if x.item.startswith("EBS: ")], result


def test_a_charts_claimed_volumes_cost_their_size_at_the_classs_ebs_price_once_per_replica():
    # 50 GiB x $0.08 = $4.00; alertmanager 2 GiB x 2 replicas x $0.08 = $0.32
    lines, result = volume_lines([ebs_class(), chart({
        "server": {"persistentVolume": {"size": "50Gi", "storageClass": "encrypted-gp3"}},
        "alertmanager": {"replicaCount": 2, "persistence": {"enabled": True, "size": "2Gi",
                                                            "storageClass": "encrypted-gp3"}}})])
    assert sorted(str(x.monthly("configured", result.assumptions)) for x in lines) == ["0.32", "4.00"]
    assert {x.key for x in lines} == {"ebs:gp3"}


def test_a_disabled_claim_costs_nothing_and_one_of_unknown_class_or_size_is_unpriced_not_zero():
    lines, result = volume_lines([ebs_class(), chart({
        "grafana": {"persistence": {"enabled": False, "size": "10Gi", "storageClass": "encrypted-gp3"}},
        "server": {"persistentVolume": {"size": "50Gi"}},  # no class: on EKS it would stay Pending, type unknown
        "alertmanager": {"persistence": {"size": "lots", "storageClass": "encrypted-gp3"}}})])
    assert len(lines) == 2 and all(line.price is None for line in lines)
    assert {line.note.split(" ")[0] for line in lines} == {"class", "size"}
    assert result.unpriced("configured") == lines


def test_a_deployments_claim_is_one_whatever_its_replicas_and_a_statefulsets_one_per_replica():
    # prometheus' server as a Deployment makes one claim (pvc.yaml) at 3 replicas; as a StatefulSet, one each
    one, _ = volume_lines([ebs_class(), chart({"server": {"replicaCount": 3, "persistentVolume": {
        "size": "50Gi", "storageClass": "encrypted-gp3"}}})])
    three, _ = volume_lines([ebs_class(), chart({"server": {"replicaCount": 3, "statefulSet": {"enabled": True},
                                                            "persistentVolume": {"size": "50Gi",
                                                                                 "storageClass": "encrypted-gp3"}}})])
    assert [x.quantity.configured for x in one] == [50] and [x.quantity.configured for x in three] == [150]


def test_claims_of_a_turned_off_component_or_an_existing_claim_cost_nothing_sizes_round_up_to_whole_gib():
    lines, _ = volume_lines([ebs_class(), chart({
        "alertmanager": {"enabled": False, "persistence": {"size": "2Gi", "storageClass": "encrypted-gp3"}},
        "server": {"persistentVolume": {"existingClaim": "mine", "size": "50Gi", "storageClass": "encrypted-gp3"}},
        "small": {"persistence": {"size": "500Mi", "storageClass": "encrypted-gp3"}},
        "bytes": {"persistence": {"size": "2", "storageClass": "encrypted-gp3"}}})])
    # the CSI driver provisions whole GiB, at least 1: 500Mi is 1 GiB, a bare "2" is 2 bytes, so 1 GiB too
    assert sorted((x.item.split("'s ")[1].split(" ")[0], x.quantity.configured) for x in lines) == \
        [("bytes.persistence", 1), ("small.persistence", 1)]


def test_a_claim_without_a_size_is_listed_unpriced():
    lines, result = volume_lines([ebs_class(), chart({"alertmanager": {"persistence": {
        "storageClass": "encrypted-gp3"}}})])
    assert len(lines) == 1 and lines[0].price is None and result.unpriced("configured") == lines


def test_a_claim_that_names_its_class_as_storageclassname_is_priced_like_the_others():
    # grafana's chart spells the class key storageClassName: 10 GiB x $0.08 = $0.80
    lines, result = volume_lines([ebs_class(), chart({"persistence": {
        "enabled": True, "size": "10Gi", "storageClassName": "encrypted-gp3"}})])
    assert [str(x.monthly("configured", result.assumptions)) for x in lines] == ["0.80"]
