"""`python -m infra.cost refresh`, against botocore's Stubber (moto has no Price List API).

The Stubber checks every request and response against botocore's pricing model. The products it returns are built
in the shape of the Price List item botocore publishes as its GetProducts example (the first test reads that one);
their figures are test values, not prices, and nothing here writes the checked-in table.
"""

import json
from datetime import date
from decimal import Decimal

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from infra.cost import refresh
from infra.cost.table import load_table


def published_example_item() -> dict:
    """The PriceList entry of GetProducts' example in botocore's pricing model (an AWS-published response)."""
    loader = botocore.session.get_session().get_component("data_loader")
    examples = loader.load_service_model("pricing", "examples-1")
    return json.loads(examples["examples"]["GetProducts"][0]["output"]["PriceList"][0])


def test_the_rate_is_read_from_aws_published_example_response():
    assert refresh.on_demand_rate(published_example_item()) == (Decimal("0.1380000000"), "GB-Mo")


def product(usagetype: str, tiers: list[tuple[str, str, str]], **attributes: str) -> str:
    """A Price List item: on-demand tiers as (beginRange, USD, unit)."""
    dimensions = {f"SKU.TERM.{i}": {"unit": unit, "beginRange": begin, "endRange": "Inf", "description": "test",
                                    "appliesTo": [], "rateCode": f"SKU.TERM.{i}", "pricePerUnit": {"USD": usd}}
                  for i, (begin, usd, unit) in enumerate(tiers)}
    return json.dumps({"product": {"productFamily": "test", "sku": "SKU",
                                   "attributes": {"usagetype": usagetype, **attributes}},
                       "serviceCode": "test", "publicationDate": "2026-11-30T12:00:00Z", "version": "1",
                       "terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": dimensions, "sku": "SKU",
                                                           "offerTermCode": "TERM", "effectiveDate": "2026-11-01",
                                                           "termAttributes": {}}}}})


def expect(stub: Stubber, service: str, filters: list[tuple[str, str]], items: list[str], token: str | None = None,
           next_token: str | None = None) -> None:
    params = {"ServiceCode": service, "FormatVersion": "aws_v1", "MaxResults": 100,
              "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters]}
    if token:
        params["NextToken"] = token
    response = {"FormatVersion": "aws_v1", "PriceList": items, **({"NextToken": next_token} if next_token else {})}
    stub.add_response("get_products", response, params)


@pytest.fixture
def client():
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test")
    with Stubber(pricing) as stub:
        yield pricing, stub
        stub.assert_no_pending_responses()


def test_each_item_is_read_from_its_product_across_pages_and_converted_to_the_table_unit(client):
    pricing, stub = client
    region = [("regionCode", "eu-west-1")]
    ec2 = refresh.ec2_item("g5.2xlarge")
    expect(stub, "AmazonEC2", region + list(ec2.attributes),
           [product("EU-BoxUsage:g5.2xlarge", [("0", "9.5", "Hrs")], gpu="1")])
    nat = next(i for i in refresh.SERVICE_ITEMS if i.key == "nat-gateway")
    expect(stub, "AmazonEC2", region + list(nat.attributes),
           [product("EU-NatGateway-Bytes", [("0", "7", "GB")])], next_token="page2")
    expect(stub, "AmazonEC2", region + list(nat.attributes),
           [product("EU-NatGateway-Hours", [("0", "0.25", "Hrs")])], token="page2")
    api = next(i for i in refresh.SERVICE_ITEMS if i.key == "apigateway:rest-requests")
    expect(stub, "AmazonApiGateway", region, [product("EU-ApiGatewayRequest", [
        ("0", "0", "Requests"), ("1000000", "0.0000035", "Requests"), ("333000000", "0.0000028", "Requests")])])
    outcome = refresh.look_up(pricing, [ec2, nat, api], "eu-west-1")
    assert outcome.missed == {}
    assert outcome.found["ec2:g5.2xlarge"].usd == Decimal("9.5") and outcome.found["ec2:g5.2xlarge"].gpus == 1
    assert outcome.found["nat-gateway"].usd == Decimal("0.25")  # the hourly product, not the per-GB one
    assert outcome.found["apigateway:rest-requests"].usd == Decimal("3.5")  # first paid tier, per million
    assert outcome.publication == "2026-11-30T12:00:00Z"


def test_dashboards_are_read_from_the_global_product_not_its_free_tier_twin(client):
    pricing, stub = client
    dashboards = next(i for i in refresh.SERVICE_ITEMS if i.key == "cloudwatch:dashboard")
    expect(stub, "AmazonCloudWatch", [("location", "Any")], [  # global: no region code to filter on
        product("Global-DashboardsUsageHour", [("0", "0", "Dashboards")]),
        product("DashboardsUsageHour-Basic", [("0", "2.5", "Dashboards")]),
        product("DashboardsUsageHour", [("0", "3", "Dashboards")])])
    outcome = refresh.look_up(pricing, [dashboards], "ap-southeast-2")
    assert outcome.found["cloudwatch:dashboard"].usd == Decimal("3") and outcome.missed == {}


def test_what_the_api_does_not_answer_plainly_is_left_unread(client):
    pricing, stub = client
    region = [("regionCode", "us-east-1")]
    kms = next(i for i in refresh.SERVICE_ITEMS if i.key == "kms:key")
    sagemaker = refresh.sagemaker_item("ml.g5.xlarge")
    eks = next(i for i in refresh.SERVICE_ITEMS if i.key == "eks:cluster")
    expect(stub, "awskms", region, [product("KMS-Keys", [("0", "1", "Keys")]), product("KMS-Keys", [("0", "1", "x")])])
    expect(stub, "AmazonSageMaker", region + list(sagemaker.attributes),
           [product("Host:ml.g5.xlarge", [("0", "2", "GB")])])
    expect(stub, "AmazonEKS", region, [])
    outcome = refresh.look_up(pricing, [kms, sagemaker, eks], "us-east-1")
    assert outcome.found == {}
    assert outcome.missed == {"kms:key": "2 products matched", "sagemaker-hosting:ml.g5.xlarge": "unexpected unit 'GB'",
                              "eks:cluster": "no product matched"}


def test_a_product_with_only_free_tiers_is_not_read_as_free(client):
    pricing, stub = client
    eks = next(i for i in refresh.SERVICE_ITEMS if i.key == "eks:cluster")
    expect(stub, "AmazonEKS", [("regionCode", "us-east-1")], [product("USE1-AmazonEKS-Hours:perCluster",
                                                                     [("0", "0", "Hrs")])])
    assert refresh.look_up(pricing, [eks], "us-east-1").missed == {"eks:cluster": "no paid on-demand rate"}


def test_a_rebuilt_table_replaces_what_was_read_keeps_the_rest_and_records_the_publication_date():
    previous = load_table("us-east-1")
    found = refresh.Outcome(found={"eks:cluster": previous.prices["eks:cluster"].model_copy(
        update={"usd": Decimal("0.11"), "source": refresh.SOURCE_ID}), "ec2:g5.2xlarge": previous.prices[
        "ec2:g5.2xlarge"].model_copy(update={"usd": Decimal("1.3"), "gpus": None, "source": refresh.SOURCE_ID})},
        missed={"kms:key": "no product matched"}, publication="2026-11-30T12:00:00Z")
    table = refresh.rebuilt(previous, found, "us-east-1", date(2026, 12, 3))
    assert table.prices["eks:cluster"].usd == Decimal("0.11") and table.prices["eks:cluster"].source == "price-list-api"
    assert table.prices["ec2:g5.2xlarge"].gpus == 1  # a GPU count the API omitted is kept from the previous table
    assert table.prices["kms:key"] == previous.prices["kms:key"]  # not read: the sourced figure stays
    used = {n for p in table.prices.values() for n in (p.source, p.gpus_source, p.rule_source, *(p.also or [])) if n}
    assert set(table.sources) == used  # a source no figure uses any more is dropped; corroborating ones stay
    assert table.sources["price-list-api"].publication_date == "2026-11-30T12:00:00Z"
    # Figures kept from the old table were not read today: the table keeps its older date.
    assert table.retrieved == previous.retrieved


def test_a_table_read_whole_is_dated_the_day_it_was_read():
    previous = load_table("us-east-1")
    everything = refresh.Outcome(found={k: p.model_copy(update={"source": refresh.SOURCE_ID})
                                        for k, p in previous.prices.items()}, missed={}, publication=None)
    assert refresh.rebuilt(previous, everything, "us-east-1", date(2026, 12, 7)).retrieved == date(2026, 12, 7)


@pytest.mark.parametrize("unit,per,read", [("GB", "gb", True), ("GB-Mo", "gb", False), ("GB-Mo", "gb-month", True),
                                          ("GB", "gb-month", False), ("Hrs", "month", False), ("Hrs", "hour", True),
                                          ("GB-Mo", "month", False), ("LCU-Hrs", "hour", True),
                                          ("IOPS-Mo", "month", True), ("GiBps-mo", "month", False)])
def test_a_rate_is_written_only_in_the_unit_its_item_is_priced_in(unit, per, read):
    assert (refresh._convert(Decimal("0.5"), unit, per) is not None) is read


def test_a_refresh_that_reads_nothing_writes_nothing_and_fails(tmp_path, monkeypatch, capsys):
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test")
    stub = Stubber(pricing)
    for _ in range(200):  # one empty page per item; more than any table asks for
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []},
                          {"ServiceCode": ANY, "Filters": ANY, "FormatVersion": "aws_v1", "MaxResults": 100})
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: pricing)
    out = tmp_path / "us-east-1.json"
    with stub:
        assert refresh.main(["--region", "us-east-1", "--output", str(out)]) == 1
    printed = capsys.readouterr().err
    assert "answered no price for us-east-1: nothing written" in printed
    assert "not read: eks:cluster (no product matched)" in printed
    assert not out.exists()  # nothing read: no table re-dated today with only old figures in it



def test_every_meter_the_tables_price_is_read_by_refresh_or_listed_with_why_not():
    """`refresh` reads each figure the estimator uses, or NOT_REFRESHED says why it cannot (then it prints it)."""
    read = {item.key for item in refresh.items_for(set())}
    for region in ("us-east-1", "eu-west-1", "us-west-2"):
        for key in load_table(region).prices:
            if key.startswith(("ec2:", "sagemaker-hosting:")):
                assert refresh.items_for({key.split(":", 1)[1]})[0].key == key
            else:
                assert key in read or key in refresh.NOT_REFRESHED, f"{region}: {key} is neither read nor excused"
    assert not read & set(refresh.NOT_REFRESHED)


def test_usage_meters_are_read_in_their_own_units(client):
    pricing, stub = client
    region = [("regionCode", "us-west-2")]
    items = {i.key: i for i in refresh.SERVICE_ITEMS}
    gp3, lcu, s3 = items["ebs:gp3"], items["elb:application-capacity-unit"], items["s3:standard"]
    expect(stub, "AmazonEC2", region + list(gp3.attributes), [product("USW2-EBS:VolumeUsage.gp3", [("0", "0.08", "GB-Mo")])])
    expect(stub, "AWSELB", region + list(lcu.attributes), [
        product("USW2-LoadBalancerUsage", [("0", "0.0225", "Hrs")]), product("USW2-LCUUsage", [("0", "0.008", "LCU-Hrs")])])
    expect(stub, "AmazonS3", region + list(s3.attributes), [product("USW2-TimedStorage-ByteHrs", [
        ("0", "0.023", "GB-Mo"), ("51200", "0.022", "GB-Mo"), ("512000", "0.021", "GB-Mo")])])
    outcome = refresh.look_up(pricing, [gp3, lcu, s3], "us-west-2")
    assert outcome.missed == {}
    assert outcome.found["ebs:gp3"].usd == Decimal("0.08") and outcome.found["ebs:gp3"].per == "gb-month"
    assert outcome.found["elb:application-capacity-unit"].usd == Decimal("0.008")  # the LCU product, not the hours
    assert outcome.found["s3:standard"].usd == Decimal("0.023")  # the first 50 TB's rate


def test_a_refresh_says_which_meters_it_does_not_read_and_keeps_their_figures(tmp_path, monkeypatch, capsys):
    from infra.cost.table import Price

    found = {"eks:cluster": Price(usd=Decimal("0.10"), per="hour", source=refresh.SOURCE_ID)}
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: None)
    monkeypatch.setattr(refresh, "look_up", lambda client, items, region: refresh.Outcome(found, {}, "2026-12-01"))
    monkeypatch.setattr(refresh, "refresh_calendar", lambda *args: "EKS calendar: not read in this test")
    out = tmp_path / "us-east-1.json"
    assert refresh.main(["--region", "us-east-1", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    for key in refresh.NOT_REFRESHED:
        assert f"not read by refresh: {key} (" in printed
    assert "not read by refresh: xray:traces (its usage type and unit are not confirmed by a source read offline)" \
        " - kept" in printed
    assert load_table("us-east-1", out).prices["xray:traces"] == load_table("us-east-1").prices["xray:traces"]


def test_standard_and_high_resolution_alarms_and_s3_storage_each_find_their_one_product(client):
    pricing, stub = client
    region = [("regionCode", "eu-west-1")]
    items = {i.key: i for i in refresh.SERVICE_ITEMS}
    standard, high, s3 = items["cloudwatch:alarm"], items["cloudwatch:alarm-high-resolution"], items["s3:standard"]
    expect(stub, "AmazonCloudWatch", region + list(standard.attributes),
           [product("EU-CW:AlarmMonitorUsage", [("0", "0.10", "Alarms")], alarmType="Standard")])
    expect(stub, "AmazonCloudWatch", region + list(high.attributes),
           [product("EU-CW:AlarmMonitorUsage", [("0", "0.30", "Alarms")], alarmType="High Resolution")])
    # S3 files more than one Standard storage product under the usage type: the one with no operation is storage
    expect(stub, "AmazonS3", region + list(s3.attributes), [
        product("EU-TimedStorage-ByteHrs", [("0", "0.0125", "GB-Mo")], operation="StandardIAStorage"),
        product("EU-TimedStorage-ByteHrs", [("0", "0.023", "GB-Mo")], operation="")])
    outcome = refresh.look_up(pricing, [standard, high, s3], "eu-west-1")
    assert outcome.missed == {}
    assert [outcome.found[k].usd for k in ("cloudwatch:alarm", "cloudwatch:alarm-high-resolution", "s3:standard")] \
        == [Decimal("0.10"), Decimal("0.30"), Decimal("0.023")]


def test_a_rebuilt_table_keeps_what_the_region_does_not_offer_until_a_price_is_read_for_it():
    from infra.cost.table import Price

    ireland = load_table("eu-west-1")
    read = {"ec2:g6.xlarge": Price(usd=Decimal("1"), per="hour", source=refresh.SOURCE_ID, gpus=1)}
    table = refresh.rebuilt(ireland, refresh.Outcome(read, {}, "2026-12-01"), "eu-west-1", date(2026, 12, 8))
    assert "ec2:g6.xlarge" in table.prices and "ec2:g6.xlarge" not in table.not_offered  # AWS offers it now
    assert set(table.not_offered) == set(ireland.not_offered) - {"ec2:g6.xlarge"}
