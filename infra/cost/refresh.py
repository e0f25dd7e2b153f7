"""`python -m infra.cost refresh --region us-east-1`: rebuild a price table from the AWS Price List Query API.

Needs AWS credentials allowed `pricing:GetProducts` (no other permission). Each item is looked up by its service code
and attributes, and the product is picked by the end of its usage type (which carries a region prefix outside
us-east-1). An item the API does not answer keeps its previous figure and source, or stays unpriced: refresh never
writes a number it did not read. What it found, kept and missed is printed, and the table records the Price List's
own publication date.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .table import Price, PriceTable, PriceTableError, Source, dump_table, load_table, table_path

SOURCE_ID = "price-list-api"
API_DOC = "https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html"
# The Price List Query API answers from these endpoints only; any of them serves every region's prices.
PRICING_ENDPOINT_REGION = "us-east-1"


@dataclass(frozen=True)
class Item:
    key: str
    service: str
    attributes: tuple[tuple[str, str], ...]
    usage_suffix: str
    per: str
    regional: bool = True
    """False for products the Price List files as global (location "Any", no region code): CloudWatch dashboards."""


# Fixed-price items mlserve stacks declare; the suffixes are the Price List's usage types without region prefix.
SERVICE_ITEMS = (
    Item("eks:cluster", "AmazonEKS", (), "AmazonEKS-Hours:perCluster", "hour"),
    Item("nat-gateway", "AmazonEC2", (("productFamily", "NAT Gateway"),), "NatGateway-Hours", "hour"),
    Item("vpc:public-ipv4", "AmazonVPC", (), "PublicIPv4:InUseAddress", "hour"),
    Item("vpc-endpoint:interface", "AmazonVPC", (), "VpcEndpoint-Hours", "hour"),
    Item("kms:key", "awskms", (), "KMS-Keys", "month"),
    Item("cloudwatch:alarm", "AmazonCloudWatch", (), "CW:AlarmMonitorUsage", "month"),
    Item("cloudwatch:composite-alarm", "AmazonCloudWatch", (), "CW:CompositeAlarmMonitorUsage", "month"),
    Item("cloudwatch:dashboard", "AmazonCloudWatch", (("location", "Any"),), "DashboardsUsageHour", "month",
         regional=False),
    Item("logs:ingest", "AmazonCloudWatch", (), "DataProcessing-Bytes", "gb"),
    Item("waf:web-acl", "awswaf", (), "WebACLV2", "month"),
    Item("waf:rule", "awswaf", (), "RuleV2", "month"),
    Item("waf:requests", "awswaf", (), "RequestV2-Tier1", "million"),
    Item("apigateway:rest-requests", "AmazonApiGateway", (), "ApiGatewayRequest", "million"),
    Item("elb:application", "AWSELB", (("productFamily", "Load Balancer-Application"),), "LoadBalancerUsage",
         "hour"),
    Item("elb:network", "AWSELB", (("productFamily", "Load Balancer-Network"),), "LoadBalancerUsage", "hour"),
)
HOUR_UNITS = frozenset({"Hrs", "Hours", "hours", "hour"})


def ec2_item(instance_type: str) -> Item:
    return Item(f"ec2:{instance_type}", "AmazonEC2", (
        ("instanceType", instance_type), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
        ("preInstalledSw", "NA"), ("capacitystatus", "Used")), f"BoxUsage:{instance_type}", "hour")


def sagemaker_item(instance_type: str) -> Item:
    return Item(f"sagemaker-hosting:{instance_type}", "AmazonSageMaker", (
        ("instanceName", instance_type), ("component", "Hosting")), f"Host:{instance_type}", "hour")


def items_for(instance_types: set[str]) -> list[Item]:
    return [sagemaker_item(t) if t.startswith("ml.") else ec2_item(t) for t in sorted(instance_types)] \
        + list(SERVICE_ITEMS)


def _products(client: Any, item: Item, region: str) -> Iterator[dict[str, Any]]:
    scope = [("regionCode", region)] if item.regional else []
    filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in scope + list(item.attributes)]
    token = None
    while True:
        page = client.get_products(ServiceCode=item.service, Filters=filters, FormatVersion="aws_v1",
                                   MaxResults=100, **({"NextToken": token} if token else {}))
        for raw in page.get("PriceList", []):
            yield json.loads(raw)
        token = page.get("NextToken")
        if not token:
            return


def on_demand_rate(product: dict[str, Any]) -> tuple[Decimal, str] | None:
    """The product's on-demand USD rate and unit: its lowest tier that is not free (free tiers are account-wide)."""
    dimensions = [d for term in product.get("terms", {}).get("OnDemand", {}).values()
                  for d in term.get("priceDimensions", {}).values()]
    paid = [(Decimal(d.get("beginRange", "0")), Decimal(d["pricePerUnit"]["USD"]), d.get("unit", ""))
            for d in dimensions if "USD" in d.get("pricePerUnit", {}) and Decimal(d["pricePerUnit"]["USD"]) > 0]
    if not paid:
        return None
    _, rate, unit = min(paid)
    return rate, unit


def _convert(rate: Decimal, unit: str, per: str) -> Decimal | None:
    """The rate in the table's unit, or None when the product's unit is not the one the item is priced in (a
    GB-month rate for a per-GB item, an hourly rate for a monthly one): such a figure is never written."""
    if per == "hour":
        return rate if unit in HOUR_UNITS else None
    if per == "million":
        return rate * 1_000_000 if unit.lower().startswith("request") else (rate if "million" in unit.lower() else None)
    if per == "gb":
        return rate if unit == "GB" else None
    if per in ("gb-month", "gb_month"):
        return rate if unit in ("GB-Mo", "GB-month") else None
    return None if unit in HOUR_UNITS or "GB" in unit else rate


@dataclass
class Outcome:
    found: dict[str, Price]
    missed: dict[str, str]
    publication: str | None


def _is_usage(product: dict[str, Any], usage: str) -> bool:
    """The product's usage type is `usage` itself (us-east-1) or `<region prefix>-usage`. Free-tier twins
    (`Global-...`) match too and drop out for having no paid rate."""
    usagetype = str(product.get("product", {}).get("attributes", {}).get("usagetype", ""))
    return usagetype == usage or usagetype.split("-", 1)[-1] == usage


def look_up(client: Any, items: list[Item], region: str) -> Outcome:
    found: dict[str, Price] = {}
    missed: dict[str, str] = {}
    publication = None
    for item in items:
        matches = [p for p in _products(client, item, region) if _is_usage(p, item.usage_suffix)]
        paid = [(p, rate) for p in matches if (rate := on_demand_rate(p)) is not None]
        if len(paid) != 1:
            missed[item.key] = ("no product matched" if not matches else "no paid on-demand rate" if not paid
                                else f"{len(paid)} products matched")
            continue
        product, rate = paid[0]
        converted = _convert(*rate, item.per)
        if converted is None:
            missed[item.key] = f"unexpected unit {rate[1]!r}"
            continue
        gpus = str(product.get("product", {}).get("attributes", {}).get("gpu", ""))
        found[item.key] = Price(usd=converted, per=item.per, source=SOURCE_ID,  # type: ignore[arg-type]
                                gpus=int(gpus) if item.key.startswith("ec2:") and gpus.isdigit() else None)
        publication = max(filter(None, [publication, product.get("publicationDate")]), default=None)
    return Outcome(found, missed, publication)


def rebuilt(previous: PriceTable | None, outcome: Outcome, region: str, today: date) -> PriceTable:
    """Found figures replace old ones; the rest keep their previous figure and source; sources no price uses go.
    The table is dated today only when every figure in it was read today: a kept figure keeps the table's older
    date (the date the output prints as "list prices of"), while the API source records today's reading."""
    prices = dict(previous.prices) if previous else {}
    for key, price in outcome.found.items():
        known_gpus = prices[key].gpus if key in prices else None
        prices[key] = price if price.gpus is not None or known_gpus is None else price.model_copy(
            update={"gpus": known_gpus})
    sources = dict(previous.sources) if previous else {}
    sources[SOURCE_ID] = Source(
        title=f"AWS Price List Query API, GetProducts (TERM_MATCH on regionCode={region} and each item's attributes; "
              f"OnDemand terms, lowest paid tier)", url=API_DOC, method="python -m infra.cost refresh",
        publication_date=outcome.publication, kind="aws-price-data",
        source_date=outcome.publication or "undated: the API answered without a publication date", retrieved=today)
    used = {name for p in prices.values() for name in (p.source, p.gpus_source, p.rule_source, *(p.also or []))
            if name}
    kept = [key for key, price in prices.items() if key not in outcome.found]
    retrieved = previous.retrieved if previous and kept else today
    return PriceTable(region=region, currency="USD", retrieved=retrieved,
                      note=previous.note if previous else "", sources={k: v for k, v in sources.items() if k in used},
                      prices=prices)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cost refresh", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--region", required=True, help="the region whose prices to read, e.g. us-east-1")
    parser.add_argument("--instance-type", action="append", default=[],
                        help="also price this EC2 or SageMaker (ml.*) type; repeatable")
    parser.add_argument("--output", type=Path, help="where to write the table (default: the checked-in one)")
    args = parser.parse_args(argv)
    path = args.output or table_path(args.region)
    previous = None
    if table_path(args.region).is_file():
        try:
            previous = load_table(args.region)
        except PriceTableError as error:
            print(f"ignoring the current table: {error}", file=sys.stderr)
    types = {k.split(":", 1)[1] for k in (previous.prices if previous else {}) if k.startswith(("ec2:", "sagemaker-"))}
    types |= set(args.instance_type) | allowed_instance_types()

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("pricing", region_name=PRICING_ENDPOINT_REGION)
        outcome = look_up(client, items_for(types), args.region)
    except (BotoCoreError, ClientError) as error:
        print(f"the Price List API did not answer: {error}", file=sys.stderr)
        return 1
    if not outcome.found:
        print(f"the Price List API answered no price for {args.region}: nothing written", file=sys.stderr)
        for key, why in sorted(outcome.missed.items()):
            print(f"  not read: {key} ({why})", file=sys.stderr)
        return 1
    table = rebuilt(previous, outcome, args.region, date.today())
    try:
        path.write_text(dump_table(table))
    except OSError as error:
        print(f"cannot write {path}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {path}: {len(outcome.found)} prices read (Price List published {outcome.publication}), "
          f"{len(table.prices) - len(outcome.found)} kept from the previous table")
    for key, why in sorted(outcome.missed.items()):
        print(f"  not read: {key} ({why}){' - kept the previous figure' if key in table.prices else ''}")
    return 0


def allowed_instance_types() -> set[str]:
    """Instance types the policy pack allows in any stack: the ones a stack can deploy."""
    found: set[str] = set()
    for config in (Path(__file__).resolve().parents[2] / "policies" / "config").glob("*.json"):
        rule = json.loads(config.read_text()).get("instance-type-allowlist", {})
        found |= set(rule.get("allowed_instance_types", [])) if isinstance(rule, dict) else set()
    return found
