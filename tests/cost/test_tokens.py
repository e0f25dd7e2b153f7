"""A language model's cost per million output tokens: one replica's hourly price over the tokens it serves in an hour
within its SLOs (`llm.tokens_per_second_at_slo`), carried to the plan on the deployment's usage tag. Every expected
figure is worked out here from prices written by hand, not by the estimator's formula."""

from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from rich.console import Console

from components.names import USAGE_TAG
from infra.config.loader import read_stack_file
from infra.cost import Assumptions, Declared, declared_from_plan, estimate, load_table
from infra.cost.report import as_json, as_table, diff_markdown, summary
from tests.harness import plan_config, stack_plan

TABLE = load_table("us-east-1")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "Pulumi.llm-kserve.yaml"
NOT_MEASURED = "not measured: python -m infra.ops profile"


@cache
def llm_plan(tokens_per_second: float | None):
    """The KServe LLM example (one g6e.xlarge per replica), with its throughput measured or not."""
    raw = read_stack_file(EXAMPLE)
    if tokens_per_second is not None:
        raw["mlserve:deployments"][0]["llm"]["tokens_per_second_at_slo"] = tokens_per_second
    return plan_config(raw, "llmcost")


def api_tag(plan) -> str:
    (api,) = [r for r in plan.as_json()["resources"] if r["type"] == "aws:apigateway/restApi:RestApi"]
    return api["inputs"]["tags"][USAGE_TAG]


def test_the_measured_throughput_reaches_the_plan_on_the_usage_tag_and_prices_a_million_tokens():
    plan = llm_plan(1200)
    assert api_tag(plan) == "requests_per_second=0.5 request_kb=4 response_kb=4 tokens_per_second_at_slo=1200"
    result = estimate(declared_from_plan(plan.as_json()), TABLE)
    # g6e.xlarge in the us-east-1 table: $1.861 an hour, one L40S: one replica of 1 GPU per node.
    assert TABLE.prices["ec2:g6e.xlarge"].usd == Decimal("1.861")
    # 1,200 tokens/s x 3,600 s = 4,320,000 tokens an hour; $1.861 / 4.32 million tokens = $0.430787... a million.
    (cost,) = result.tokens
    assert cost.group == "assistant"
    assert cost.per_million(result.assumptions) == Decimal("1.861") / Decimal("4.32")
    figures = as_json(result)["per_million_output_tokens"]["assistant"]
    assert figures["usd"] == "0.4308" and figures["status"] == "priced"
    assert figures["replica"] == "g6e.xlarge" and figures["tokens_per_second_at_slo"] == "1200"
    assert "per million output tokens: assistant $0.4308" in summary(result)
    # the same traffic figures as before for the rest of the estimate
    assert not any("tokens" in line.item for line in result.lines)


def test_the_terminal_table_shows_the_figure_and_how_it_was_reached():
    result = estimate(declared_from_plan(llm_plan(1200).as_json()), TABLE)
    console = Console(width=400, record=True)
    console.print(as_table(result))
    (row,) = [line for line in console.export_text().splitlines() if "per million output tokens" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[0] == "assistant"
    assert cells[1] == "per million output tokens (one g6e.xlarge replica at 1,200 tokens/s within its SLOs)"
    assert cells[2:5] == ["", "", ""]  # a rate, not a monthly figure
    assert cells[5].startswith("$0.4308 = $1.861/h / (1,200 x 3,600 tokens an hour) x 1,000,000")


def test_an_unmeasured_model_says_how_to_measure_it_instead_of_a_number():
    plan = llm_plan(None)
    assert api_tag(plan).endswith(" tokens_per_second_at_slo=unmeasured")
    result = estimate(declared_from_plan(plan.as_json()), TABLE)
    (cost,) = result.tokens
    assert cost.per_million(result.assumptions) is None and cost.status(result.assumptions) == NOT_MEASURED
    assert as_json(result)["per_million_output_tokens"]["assistant"]["usd"] is None
    assert f"assistant {NOT_MEASURED}" in summary(result)
    # the traffic on the same tag is still read: 0.5 requests a second, not the 1/s default
    assert any("(millions at 0.5/s, 4 KB in, 4 KB out)" in line.item for line in result.lines)


def test_a_tensor_model_has_no_token_figure_and_its_tag_is_unchanged():
    plan = stack_plan("dev")
    assert api_tag(plan) == "requests_per_second=1 request_kb=16 response_kb=4"
    result = estimate(declared_from_plan(plan.as_json()), TABLE)
    assert result.tokens == [] and "per million" not in summary(result)
    assert as_json(result)["per_million_output_tokens"] == {}


# ---- replicas that share a node, spot, SageMaker: small declared plans ------------------------------------------

def _api(group: str, tag: str) -> list[Declared]:
    owner = f"urn:pulumi:t::mlserve::mlserve:serving:KServeDeployment::mlserve-t-{group}"
    return [Declared("mlserve:serving:KServeDeployment", owner, f"mlserve-t-{group}", {}),
            Declared("aws:apigateway/restApi:RestApi", f"{owner}$aws:apigateway/restApi:RestApi::api", "api",
                     {"tags": {USAGE_TAG: tag}}, owner)]


def _pool(types: list[str], capacity: str = "on-demand") -> Declared:
    return Declared("kubernetes:karpenter.sh/v1:NodePool", "urn:pulumi:t::mlserve::kubernetes:karpenter.sh/v1:"
                    "NodePool::gpu", "gpu", {"metadata": {"name": "gpu"}, "spec": {"template": {
                        "metadata": {"labels": {"mlserve.io/node-group": "gpu"}}, "spec": {"requirements": [
                            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types},
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity]}]}}}})


def _service(group: str, track: str, gpus: int) -> Declared:
    name = group if track == "stable" else f"{group}-canary"
    return Declared("kubernetes:serving.kserve.io/v1beta1:InferenceService",
                    f"urn:pulumi:t::mlserve::kubernetes:serving.kserve.io/v1beta1:InferenceService::{name}", name, {
                        "metadata": {"name": name, "namespace": "ns", "labels": {
                            "mlserve.io/deployment": group, "mlserve.io/track": track}},
                        "spec": {"predictor": {"minReplicas": 1, "maxReplicas": 2,
                                               "nodeSelector": {"mlserve.io/node-group": "gpu"},
                                               "model": {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}}}})


def test_replicas_sharing_a_four_gpu_node_each_pay_a_quarter_of_its_hour():
    # g6e.12xlarge: $10.49264 an hour, 4 L40S; a 1-GPU replica is a quarter of it: $2.62316 an hour.
    # 2,000 tokens/s x 3,600 = 7.2 million tokens an hour: $2.62316 / 7.2 = $0.364328 a million.
    tag = "requests_per_second=1 request_kb=1 response_kb=2 tokens_per_second_at_slo=2000"
    result = estimate([*_api("chat", tag), _pool(["g6e.12xlarge"]), _service("chat", "stable", 1)], TABLE)
    (cost,) = result.tokens
    assert cost.replica is not None and cost.replica.per_instance == 4
    assert cost.per_million(result.assumptions) == Decimal("10.49264") / 4 / Decimal("7.2")
    assert as_json(result)["per_million_output_tokens"]["chat"]["usd"] == "0.3643"


def test_a_pool_of_several_types_prices_the_replica_on_the_cheapest_that_fits_as_min_does():
    # g6e.xlarge ($1.861) and g6e.2xlarge ($2.24208) both hold one 1-GPU replica: min runs it on g6e.xlarge.
    # On spot at a 60% discount: $1.861 x 0.4 = $0.7444 an hour; at 1,000 tokens/s (3.6 million an hour): $0.206778.
    tag = "requests_per_second=1 request_kb=1 response_kb=2 tokens_per_second_at_slo=1000"
    declared = [*_api("chat", tag), _pool(["g6e.2xlarge", "g6e.xlarge"], "spot"), _service("chat", "stable", 1),
                _service("chat", "canary", 1)]
    result = estimate(declared, TABLE, Assumptions(spot_discount=Decimal("0.6")))
    (cost,) = result.tokens
    assert cost.replica is not None and cost.replica.described == "g6e.xlarge" and cost.replica.spot
    assert cost.per_million(result.assumptions) == Decimal("1.861") * Decimal("0.4") / Decimal("3.6")


def test_a_replica_the_table_cannot_price_is_said_unpriced_not_zero():
    tag = "requests_per_second=1 request_kb=1 response_kb=2 tokens_per_second_at_slo=1000"
    # p5e.48xlarge (8 H200) fits a 1-GPU replica but has no price here: the cheapest type cannot be known.
    result = estimate([*_api("chat", tag), _pool(["g6e.xlarge", "p5e.48xlarge"]), _service("chat", "stable", 1)],
                      TABLE)
    (cost,) = result.tokens
    assert cost.per_million(result.assumptions) is None
    assert cost.status(result.assumptions) == "unpriced: no hourly price for ec2:p5e.48xlarge"
    assert "unpriced: no hourly price for ec2:p5e.48xlarge" in summary(result)


def test_a_sagemaker_component_copy_pays_its_share_of_the_instance_and_an_unpriced_type_says_so():
    instance = "ml.g6e.12xlarge"  # no two sources agree on its SageMaker price yet
    owner = "urn:pulumi:t::mlserve::mlserve:serving:SageMakerDeployment::mlserve-t-chat"
    config = Declared("aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                      "urn:pulumi:t::mlserve::aws:sagemaker/endpointConfiguration:EndpointConfiguration::c", "c", {
                          "name": "c", "productionVariants": [{"variantName": "primary", "instanceType": instance,
                                                               "initialInstanceCount": 1}]})
    endpoint = Declared("aws:sagemaker/endpoint:Endpoint", "urn:pulumi:t::mlserve::aws:sagemaker/endpoint:Endpoint::e",
                        "e", {"name": "mlserve-t-chat", "endpointConfigName": "c"})
    component = Declared("aws-native:sagemaker:InferenceComponent", f"{owner}$aws-native:sagemaker:"
                         "InferenceComponent::ic", "ic", {"endpointName": "mlserve-t-chat", "specification": {
                             "computeResourceRequirements": {"numberOfAcceleratorDevicesRequired": 1}}}, owner)
    api = Declared("aws:apigateway/restApi:RestApi", f"{owner}$aws:apigateway/restApi:RestApi::api", "api",
                   {"tags": {USAGE_TAG: "requests_per_second=1 request_kb=1 response_kb=2 "
                                        "tokens_per_second_at_slo=1500"}}, owner)
    parent = Declared("mlserve:serving:SageMakerDeployment", owner, "mlserve-t-chat", {})
    result = estimate([parent, config, endpoint, component, api], TABLE)
    (cost,) = result.tokens
    assert cost.replica is not None and cost.replica.per_instance == 4  # ml.g6e.12xlarge: 4 L40S, 1 a copy
    assert cost.status(result.assumptions) == "unpriced: no hourly price for sagemaker-hosting:ml.g6e.12xlarge"
    # Priced at a test figure of $8.00 an hour: a copy is $2.00 an hour; 1,500 tokens/s is 5.4 million an hour.
    table = TABLE.model_copy(deep=True)
    table.prices["sagemaker-hosting:ml.g6e.12xlarge"] = table.prices["eks:cluster"].model_copy(
        update={"usd": Decimal("8.00")})
    (priced,) = estimate([parent, config, endpoint, component, api], table).tokens
    assert priced.per_million(Assumptions()) == Decimal("2.00") / Decimal("5.4")


@pytest.mark.parametrize("written", ["0", "-5", "fast", "nan"])
def test_a_tag_without_a_positive_number_is_not_measured(written):
    tag = f"requests_per_second=1 request_kb=1 response_kb=2 tokens_per_second_at_slo={written}"
    result = estimate([*_api("chat", tag), _pool(["g6e.xlarge"]), _service("chat", "stable", 1)], TABLE)
    (cost,) = result.tokens
    assert cost.status(result.assumptions) == NOT_MEASURED


def test_the_pull_request_comment_shows_the_figure_before_and_after():
    base = as_json(estimate(declared_from_plan(llm_plan(None).as_json()), TABLE))
    head = as_json(estimate(declared_from_plan(llm_plan(1200).as_json()), TABLE))
    assert (f"Per million output tokens, assistant: base {NOT_MEASURED}, head $0.4308"
            in diff_markdown(base, head).splitlines())


def test_a_replica_on_a_managed_gpu_node_group_is_priced_on_the_group_s_type():
    # g5.12xlarge: $5.672 an hour, 4 A10G; a 2-GPU replica is half of it: $2.836 an hour.
    # 500 tokens/s x 3,600 = 1.8 million tokens an hour: $2.836 / 1.8 = $1.575556 a million.
    group = Declared("aws:eks/nodeGroup:NodeGroup", "urn:pulumi:t::mlserve::aws:eks/nodeGroup:NodeGroup::gpu", "gpu",
                     {"nodeGroupName": "gpu", "instanceTypes": ["g5.12xlarge"], "labels": {
                         "mlserve.io/node-group": "gpu"}, "scalingConfig": {"minSize": 1, "maxSize": 2,
                                                                             "desiredSize": 1}})
    tag = "requests_per_second=1 request_kb=1 response_kb=2 tokens_per_second_at_slo=500"
    result = estimate([*_api("chat", tag), group, _service("chat", "stable", 2)], TABLE)
    (cost,) = result.tokens
    assert cost.replica is not None and (cost.replica.described, cost.replica.per_instance) == ("g5.12xlarge", 2)
    assert cost.per_million(result.assumptions) == Decimal("5.672") / 2 / Decimal("1.8")
