"""The estimate of a plan: figures worked out by hand from the table's unit prices, scale-to-zero and spot as they
are, unpriced and unknown items listed rather than counted as zero."""

from decimal import Decimal

import pytest

from infra.cost import Assumptions, Declared, declared_from_plan, estimate, load_table
from infra.cost.table import PriceTable, PriceTableError
from tests.harness import edited, plan_config, stack_plan

TABLE = load_table("us-east-1")


def reranker_only(raw: dict) -> None:
    """Prod's EKS platform with one KServe deployment rolled out all at once (no canary track)."""
    raw["mlserve:deployments"] = [d for d in raw["mlserve:deployments"] if d["name"] == "reranker"]
    raw["mlserve:deployments"][0]["rollout"] = {"strategy": "all_at_once"}


def priced(raw: dict, **assumptions) -> object:
    plan = plan_config(raw, "costcheck")
    return estimate(declared_from_plan(plan.as_json()), TABLE, Assumptions(**assumptions))


@pytest.fixture(scope="module")
def reranker_stack():
    return priced(edited("prod", reranker_only))


def test_a_small_stack_matches_the_hand_computed_figures_to_the_cent(reranker_stack):
    result = reranker_stack
    # min and configured, 730 hours, us-east-1 table (unit prices written out; each sum by hand):
    #   system nodes      3 x m6i.xlarge 0.192/h             420.48    their gp3 3 x 50 GB x 0.08     12.00
    #   GPU nodes         2 x g6.2xlarge 0.9776/h          1,427.296   (the pool's cheapest type for 1 GPU)
    #                       their gp3 2 x 200 GB x 0.08       32.00
    #   EKS control plane 0.10/h                              73.00    KMS key                          1.00
    #   its rotations: none at min; configured and max 2 billed rotations x 1.00                          2.00
    #   NAT gateways      3 x 0.045/h                         98.55    public IPv4 3 x 0.005/h         10.95
    #   interface endpoints 7 x 3 zones x 0.01/h             153.30    CloudWatch dashboard             3.00
    #   NLB and ALB       2 x 0.0225/h                        32.85
    #   their capacity units: 1 req/s x 20 KB = 0.0687 GB/h (more than 1/25 or 1/800 of a connection a second):
    #                     0.0687 x (0.006 + 0.008) x 730       0.702114
    #   WAF               5.00 + 3 rules x 1.00 + 2.628 M x 0.60                               9.5768
    #   API requests      2.628 M x 3.50                       9.198   data out 10.03 GB x 0.09        0.9027
    #   alarm metrics     1 x 0.10                             0.10
    #   logs              6 groups (the reranker's 3; flow logs, EKS, prod's CI build) x 1 GB x 0.50 ingest   3.00
    #                     stored at 365 days: 2 x 3 x 12.1667 = 73.00 GB-months x 0.03                          2.19
    #   S3 Standard 0.023 a GB-month: the served artifact (its size not in the plan: 1 GB assumed)      0.023
    #     captures: 1 req/s x 10% (the sink's sample) x 20 KB x 3,600 x 730 / 1,048,576 = 5.0125 -> 5.01 GB
    #     held a month (prod's model bucket expires nothing)  5.01 x 0.023                          0.11523
    #   the prometheus chart's volumes: server 50 GiB + alertmanager 2 GiB, gp3 x 0.08                  4.16
    #   NAT data processed: 10 GB a month assumed x 0.045                                                0.45
    #   X-Ray: the one traced stage at 1 req/s, all in the default rule's reservoir: 2.628 M traces x 5.00  13.14
    #                                            min = 2,307.983844 -> 2,307.98; configured + 2.00 -> 2,309.98
    # max: system 4 nodes 560.64 + 16.00; GPU 4 x g5.2xlarge (the pool's dearest per GPU) 4 x 1.212 x 730
    #      = 3,539.04 + 64.00; the rest as configured             = 4,597.887844 -> 4,597.89
    assert result.total("min") == Decimal("2307.98")
    assert result.total("configured") == Decimal("2309.98")
    assert result.total("max") == Decimal("4597.89")
    # the reranker's own lines at max: GPU nodes 3,539.04 + volumes 64.00 + NLB/ALB 32.85 + capacity 0.702114
    #   + WAF 9.5768 + API 9.198 + data out 0.9027 + alarm 0.10 + logs 1.50 + 1.095 + S3 0.13823
    #   + X-Ray 13.14 = 3,672.242844
    assert result.total("max", "reranker") == Decimal("3672.24")
    assert not result.unpriced()


def test_raising_autoscaling_max_raises_the_maximum_by_the_instance_price_times_the_difference(reranker_stack):
    base = reranker_stack

    def three_more(raw: dict) -> None:
        reranker_only(raw)
        raw["mlserve:deployments"][0]["autoscaling"]["max"] = 7
    raised = priced(edited("prod", three_more))
    # 3 more GPU nodes at max: 3 x 1.212 x 730 = 2,654.28, and their volumes 3 x 200 GB x 0.08 = 48.00
    assert raised.total("max") - base.total("max") == Decimal("2702.28")
    assert raised.total("min") == base.total("min")


def test_spot_capacity_is_priced_at_the_assumed_discount():
    def spot(raw: dict) -> None:  # spot-only GPU pools are for dev (prod keeps an on-demand fallback)
        reranker_only(raw)
        raw["mlserve:environment"] = "dev"
        raw["mlserve:cluster"]["gpu_pools"][0]["capacity_types"] = ["spot"]
    result = priced(edited("prod", spot), spot_discount=Decimal("0.6"))
    (gpu,) = [line for line in result.lines if line.item.startswith("GPU nodes")]
    # min on the cheapest type: 2 x 0.9776 x 0.4 x 730; max on the dearest per GPU: 4 x 1.212 x 0.4 x 730
    assert gpu.spot and gpu.monthly("min", result.assumptions) == Decimal("570.9184")
    assert gpu.monthly("max", result.assumptions) == Decimal("1415.616")


def test_an_idle_dev_stack_costs_no_gpu_hours_even_where_the_instance_is_unpriced():
    table = TABLE.model_copy(deep=True)
    del table.prices["sagemaker-hosting:ml.g5.xlarge"]
    result = estimate(declared_from_plan(stack_plan("dev").as_json()), table)
    (gpu,) = [line for line in result.lines if line.key.startswith("sagemaker-hosting:")]
    assert gpu.group == "resnet50"  # the host endpoint belongs to the component on it
    assert (gpu.quantity.min, gpu.quantity.configured, gpu.quantity.max) == (0, 1, 2)
    assert gpu.monthly("min", result.assumptions) == 0
    assert gpu.monthly("max", result.assumptions) is None
    assert gpu in result.unpriced("max") and gpu not in result.unpriced("min")
    # priced (the checked-in table): 2 instances x 1.4084 x 730 at max
    (priced_gpu,) = [line for line in estimate(declared_from_plan(stack_plan("dev").as_json()), TABLE).lines
                     if line.key.startswith("sagemaker-hosting:")]
    assert priced_gpu.monthly("max", result.assumptions) == Decimal("2056.264")


def test_a_priced_sagemaker_instance_scales_from_zero_with_managed_instance_scaling(tmp_path):
    table = TABLE.model_copy(deep=True)
    table.sources["test"] = table.sources["kms-pricing-page"].model_copy(update={"title": "test figure"})
    table.prices["sagemaker-hosting:ml.g5.xlarge"] = table.prices["kms:key"].model_copy(
        update={"usd": Decimal("2.00"), "per": "hour", "source": "test"})
    result = estimate(declared_from_plan(stack_plan("dev").as_json()), table)
    (gpu,) = [line for line in result.lines if line.key == "sagemaker-hosting:ml.g5.xlarge"]
    assert [gpu.monthly(s, result.assumptions) for s in ("min", "configured", "max")] == [0, 1460, 2920]


def test_unpriced_lines_are_listed_and_left_out_of_the_totals():
    without = TABLE.model_copy(deep=True)
    del without.prices["sagemaker-hosting:ml.g5.2xlarge"]
    result = estimate(declared_from_plan(stack_plan("prod").as_json()), without)
    unpriced = {line.key: line for line in result.unpriced()}
    assert unpriced["sagemaker-hosting:ml.g5.2xlarge"].quantity.max == 12  # prod's autoscaling.max
    assert all(line.monthly("max", result.assumptions) is None for line in unpriced.values())
    # Left out, not counted as zero: pricing the line at $1/h adds exactly its instance-hours to the totals.
    table = without.model_copy(deep=True)
    table.prices["sagemaker-hosting:ml.g5.2xlarge"] = table.prices["eks:cluster"].model_copy(
        update={"usd": Decimal("1.00")})
    priced_too = estimate(declared_from_plan(stack_plan("prod").as_json()), table)
    assert priced_too.total("min") - result.total("min") == Decimal("2920.00")  # 4 instances x 730 h
    assert priced_too.total("max") - result.total("max") == Decimal("8760.00")  # 12 instances x 730 h


def test_a_resource_type_the_estimator_does_not_know_is_reported_not_zero():
    declared = declared_from_plan(stack_plan("dev").as_json()) + [
        Declared("aws:rds/instance:Instance", "urn:pulumi:dev::mlserve::aws:rds/instance:Instance::db", "db",
                 {"instanceClass": "db.r6g.large"})]
    result = estimate(declared, TABLE)
    assert result.unknown == {"aws:rds/instance:Instance": 1}
    assert result.usage_based["aws:lambda/function:Function"] == 1


def _pool(limit: int) -> Declared:
    return Declared("kubernetes:karpenter.sh/v1:NodePool", "urn:pulumi:t::mlserve::kubernetes:karpenter.sh/v1:"
                    "NodePool::gpu", "gpu", {"metadata": {"name": "gpu"}, "spec": {
                        "template": {"metadata": {"labels": {"mlserve.io/node-group": "gpu"}}, "spec": {
                            "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                                              "values": ["g5.12xlarge"]}]}},
                        "limits": {"nvidia.com/gpu": str(limit)}}})


def _service(name: str, gpus: int, low: int, high: int) -> Declared:
    return Declared("kubernetes:serving.kserve.io/v1beta1:InferenceService",
                    f"urn:pulumi:t::mlserve::kubernetes:serving.kserve.io/v1beta1:InferenceService::{name}", name, {
                        "metadata": {"name": name, "namespace": "ns", "labels": {"mlserve.io/deployment": name}},
                        "spec": {"predictor": {"minReplicas": low, "maxReplicas": high,
                                               "nodeSelector": {"mlserve.io/node-group": "gpu"},
                                               "model": {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}}}})


def test_replicas_pack_onto_multi_gpu_nodes_and_the_pool_limit_caps_the_maximum():
    # g5.12xlarge has 4 GPUs: 5 one-GPU replicas need 2 nodes, 3 two-GPU replicas need 2 nodes (6 GPUs).
    # The pool's 12-GPU limit allows 3 nodes in all: the first service keeps 2, the second is cut to 1.
    result = estimate([_pool(12), _service("a", 1, 1, 5), _service("b", 2, 1, 3)], TABLE)
    a, b = [line for line in result.lines if line.item.startswith("GPU nodes")]
    assert (a.quantity.min, a.quantity.max) == (1, 2)
    assert (b.quantity.min, b.quantity.max) == (1, 1) and "capped by the pool's GPU limit" in b.note


def test_a_price_without_a_source_cannot_enter_a_table():
    data = TABLE.model_dump(mode="json")
    data["prices"]["ec2:x1.large"] = {"usd": "1.0", "per": "hour", "source": "a blog"}
    with pytest.raises(ValueError, match="ec2:x1.large -> a blog"):
        PriceTable.model_validate(data)


def test_a_region_without_a_table_says_how_to_get_one():
    with pytest.raises(PriceTableError, match="no price table for ap-south-1.*refresh --region ap-south-1"):
        load_table("ap-south-1")


def test_every_checked_in_figure_names_a_checkable_source():
    for key, price in TABLE.prices.items():
        source = TABLE.sources[price.source]
        assert source.url.startswith("https://"), key
        assert source.quote or source.method, f"{key}: a page figure quotes its sentence, a data figure its method"
        if key.startswith("ec2:"):
            assert price.per == "hour" and price.gpus is not None, key


def test_a_serverless_variant_is_listed_as_billed_by_use_not_priced_at_zero():
    config = Declared("aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                      "urn:pulumi:t::mlserve::aws:sagemaker/endpointConfiguration:EndpointConfiguration::c", "c",
                      {"name": "c", "productionVariants": [{"variantName": "primary",
                                                            "serverlessConfig": {"maxConcurrency": 5}}]})
    result = estimate([config], TABLE)
    assert result.lines == [] and result.usage_based == {"SageMaker serverless variant": 1}


def _key(name: str, **props) -> Declared:
    return Declared("aws:kms/key:Key", f"urn:pulumi:t::mlserve::aws:kms/key:Key::{name}", name, props)


def test_a_rotating_key_costs_one_dollar_new_and_three_once_it_has_rotated_twice():
    # AWS bills a key $1 a month, and each of its first two rotations another $1 (later rotations are free):
    # a rotating key is $1 new, $2 after its first rotation, $3 from its second on. A key that never rotates is $1.
    result = estimate([_key("rotating", enableKeyRotation=True, rotationPeriodInDays=90), _key("still")], TABLE)
    # min: 2 keys x 1.00 = 2.00; configured and max: 2.00 + the rotating key's 2 billed rotations x 1.00 = 4.00
    assert [result.total(s) for s in ("min", "configured", "max")] == [Decimal("2.00"), Decimal("4.00"),
                                                                       Decimal("4.00")]
    (rotations,) = [line for line in result.lines if line.key == "kms:key-rotation"]
    assert rotations.item == "KMS key rotations (1 key rotating every 90 days)"
    assert "none before day 90, one until day 180, two from then on" in rotations.note


def test_rotations_after_the_second_add_nothing_whatever_the_period():
    # Three keys rotating yearly (the default period) reach $3 each and stay there: 3 x (1 + 2) = 9.00 a month.
    result = estimate([_key(f"k{i}", enableKeyRotation=True) for i in range(3)], TABLE)
    assert result.total("max") == Decimal("9.00") and result.total("min") == Decimal("3.00")
    assert any("rotating every 365 days" in line.item for line in result.lines)


def test_nat_data_is_the_assumed_gigabytes_at_the_per_gb_price_and_names_what_endpoints_keep_off_it():
    nat = Declared("aws:ec2/natGateway:NatGateway", "urn:pulumi:t::mlserve::aws:ec2/natGateway:NatGateway::nat", "nat",
                   {})
    s3 = Declared("aws:ec2/vpcEndpoint:VpcEndpoint", "urn:pulumi:t::mlserve::aws:ec2/vpcEndpoint:VpcEndpoint::s3",
                  "s3", {"serviceName": "com.amazonaws.us-east-1.s3", "vpcEndpointType": "Gateway"})
    table = load_table("us-east-1")
    for gb, usd in ((Decimal(10), Decimal("0.45")), (Decimal(200), Decimal("9.00"))):  # x $0.045 a GB
        result = estimate([nat, s3], table, Assumptions(nat_gb_per_month=gb))
        (line,) = [x for x in result.lines if x.key == "nat-gateway:data"]
        assert line.monthly("configured", result.assumptions) == usd
        assert "endpoints keep s3 off it" in line.note and "--nat-gb" in line.item
    assert not [x for x in estimate([s3], table).lines if x.key == "nat-gateway:data"]  # no NAT, no NAT data


def _stage(name: str, deployment: str, rps: str, traced: bool = True) -> list[Declared]:
    api = Declared("aws:apigateway/restApi:RestApi", f"urn:pulumi:t::mlserve::aws:apigateway/restApi:RestApi::{name}",
                   name, {"tags": {"mlserve:usage": f"requests_per_second={rps}"}, "metadata": {}})
    stage = Declared("aws:apigateway/stage:Stage", f"urn:pulumi:t::mlserve::aws:apigateway/stage:Stage::{name}-v1",
                     f"{name}-v1", {"stageName": "v1", "xrayTracingEnabled": traced})
    for resource in (api, stage):  # the deployment each belongs to, as its Kubernetes label would say
        resource.props["metadata"] = {"labels": {"mlserve.io/deployment": deployment}}
    return [api, stage]


def test_xray_traces_follow_the_default_rule_one_reservoir_across_the_stages_then_five_percent():
    # 1 + 9 req/s traced: 1 a second + 5% of the other 9 = 1.45 traces/s x 3,600 x 730 = 3.8106 M a month,
    # shared 1:9 -> 0.38106 M ($1.9053) and 3.42954 M ($17.1477) at $5.00 a million
    result = estimate([*_stage("a", "small", "1"), *_stage("b", "big", "9"), *_stage("c", "off", "50", traced=False)],
                      TABLE, Assumptions())
    lines = {x.group: x for x in result.lines if x.key == "xray:traces"}
    assert set(lines) == {"small", "big"}  # a stage without active tracing records no traces
    assert lines["small"].quantity.configured == Decimal("0.38106")
    assert lines["big"].quantity.configured == Decimal("3.42954")
    assert lines["big"].monthly("configured", result.assumptions) == Decimal("17.1477")


def test_a_pool_type_the_region_does_not_offer_is_left_out_not_left_unpriced():
    """Prod's pool allows g5.2xlarge and g6.2xlarge; AWS offers no g6 in eu-west-1 (its price data has no row for
    Ireland): there the pool is priced on g5.2xlarge alone, and the line says why, where an unknown type would leave
    the GPU line unpriced."""
    declared = declared_from_plan(stack_plan("prod").as_json())
    ireland = load_table("eu-west-1")
    assert "ec2:g6.2xlarge" in ireland.not_offered and "ec2:g6.2xlarge" not in ireland.prices
    result = estimate(declared, ireland, Assumptions())
    (line,) = [x for x in result.lines if x.item.startswith("GPU nodes") and "reranker (stable)" in x.item]
    assert line.key == "ec2:g5.2xlarge" and line.max_key == "ec2:g5.2xlarge" and line.price is not None
    assert "g6.2xlarge not offered in eu-west-1, left out" in line.note
    # where the region offers both, both are in play (us-east-1: g6.2xlarge the cheapest, g5.2xlarge the dearest)
    (east,) = [x for x in estimate(declared, TABLE, Assumptions()).lines
               if x.item.startswith("GPU nodes") and "reranker (stable)" in x.item]
    assert (east.key, east.max_key) == ("ec2:g6.2xlarge", "ec2:g5.2xlarge") and "not offered" not in east.note


def test_a_type_cannot_be_priced_and_not_offered_at_once():
    raw = load_table("eu-west-1").model_dump(mode="json")
    raw["not_offered"]["ec2:g5.2xlarge"] = {"source": "pw-ec2", "item": "a mistake"}
    with pytest.raises(ValueError, match="priced and said not to be offered at once: ec2:g5.2xlarge"):
        PriceTable.model_validate(raw)
