"""`python -m infra.cost refresh --region us-east-1`: rebuild a price table from the AWS Price List Query API, then
the EKS versions' support calendar from EKS's DescribeClusterVersions.

Needs AWS credentials allowed `pricing:GetProducts` (and `eks:DescribeClusterVersions` for the calendar). Each item
is looked up by its service code and attributes, and the product is picked by the end of its usage type (which
carries a region prefix outside us-east-1). An item the API does not answer keeps its previous figure and source, or
stays unpriced: refresh never writes a number it did not read. What it found, kept and missed is printed, and the
table records the Price List's own publication date.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .eks_calendar import (
    CALENDAR_PATH,
    CalendarError,
    CalendarSource,
    EksCalendar,
    VersionRow,
    dump_calendar,
    load_calendar,
)
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
    unset: tuple[str, ...] = ()
    """Attributes the product must leave empty (a filter the API cannot send: its values are at least 1 character)."""


# Fixed-price items mlserve stacks declare; the suffixes are the Price List's usage types without region prefix.
SERVICE_ITEMS = (
    Item("eks:cluster", "AmazonEKS", (), "AmazonEKS-Hours:perCluster", "hour"),
    Item("nat-gateway", "AmazonEC2", (("productFamily", "NAT Gateway"),), "NatGateway-Hours", "hour"),
    Item("vpc:public-ipv4", "AmazonVPC", (), "PublicIPv4:InUseAddress", "hour"),
    Item("vpc-endpoint:interface", "AmazonVPC", (), "VpcEndpoint-Hours", "hour"),
    Item("kms:key", "awskms", (), "KMS-Keys", "month"),
    Item("cloudwatch:alarm", "AmazonCloudWatch", (("alarmType", "Standard"),), "CW:AlarmMonitorUsage", "month"),
    Item("cloudwatch:alarm-high-resolution", "AmazonCloudWatch", (("alarmType", "High Resolution"),),
         "CW:AlarmMonitorUsage", "month"),
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
    # Usage-based meters, filtered as infracost filters them against the same Price List (infracost/infracost at
    # 95ba4f4, internal/resources/aws/: nat_gateway.go, vpc_endpoint.go, cloudwatch_log_group.go, ebs_volume.go,
    # lb.go, s3_storage_class_helpers.go); an empty usage type matches the one product the attributes leave.
    Item("nat-gateway:data", "AmazonEC2", (("productFamily", "NAT Gateway"),), "NatGateway-Bytes", "gb"),
    Item("vpc-endpoint:interface-data", "AmazonVPC", (("productFamily", "VpcEndpoint"),), "VpcEndpoint-Bytes", "gb"),
    Item("logs:storage", "AmazonCloudWatch", (("productFamily", "Storage Snapshot"),), "TimedStorage-ByteHrs",
         "gb-month"),
    Item("ebs:gp3", "AmazonEC2", (("productFamily", "Storage"), ("volumeApiName", "gp3"),
                                  ("locationType", "AWS Region")), "", "gb-month"),
    Item("ebs:gp3-iops", "AmazonEC2", (("productFamily", "System Operation"), ("volumeApiName", "gp3"),
                                       ("locationType", "AWS Region")), "EBS:VolumeP-IOPS.gp3", "month"),
    Item("elb:application-capacity-unit", "AWSELB", (("productFamily", "Load Balancer-Application"),), "LCUUsage",
         "hour"),
    Item("elb:network-capacity-unit", "AWSELB", (("productFamily", "Load Balancer-Network"),), "LCUUsage", "hour"),
    Item("s3:standard", "AmazonS3", (("volumeType", "Standard"),), "TimedStorage-ByteHrs", "gb-month",
         unset=("operation",)),
)
NOT_REFRESHED = {
    "kms:key-rotation": "a billing rule on kms:key (each rotation adds a month's key charge), not a product",
    "data-transfer:out": "AWSDataTransfer's products carry fromRegionCode and toLocation, not a regionCode",
    "ebs:gp3-throughput": "the Price List prices it per GiBps-month, the table per MB/s-month",
    "eks:cluster-extended-support": "its usage type is not confirmed by a source read offline",
    "xray:traces": "its usage type and unit are not confirmed by a source read offline",
    "logs:ingest-vended": "its usage type is not confirmed by a source read offline",
}
"""Keys the estimator prices that `refresh` does not read, and why: their figures stay as sourced in the table."""
HOUR_UNITS = frozenset({"Hrs", "Hours", "hours", "hour", "LCU-Hrs", "NLCU-Hrs"})


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
    return None if unit in HOUR_UNITS or "GB" in unit or "GiB" in unit else rate  # GiBps-mo is not a month of one


@dataclass
class Outcome:
    found: dict[str, Price]
    missed: dict[str, str]
    publication: str | None


def _is_usage(product: dict[str, Any], usage: str) -> bool:
    """The product's usage type is `usage` itself (us-east-1) or `<region prefix>-usage`. Free-tier twins
    (`Global-...`) match too and drop out for having no paid rate."""
    if not usage:
        return True
    usagetype = str(product.get("product", {}).get("attributes", {}).get("usagetype", ""))
    return usagetype == usage or usagetype.split("-", 1)[-1] == usage


def look_up(client: Any, items: list[Item], region: str) -> Outcome:
    found: dict[str, Price] = {}
    missed: dict[str, str] = {}
    publication = None
    for item in items:
        matches = [p for p in _products(client, item, region) if _is_usage(p, item.usage_suffix)
                   and not any(p.get("product", {}).get("attributes", {}).get(name) for name in item.unset)]
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
    used = {name for p in prices.values() for name in p.sources_named()}
    kept = [key for key, price in prices.items() if key not in outcome.found]
    retrieved = previous.retrieved if previous and kept else today
    not_offered = {k: v for k, v in (previous.not_offered if previous else {}).items() if k not in outcome.found}
    used |= {n.source for n in not_offered.values()}
    return PriceTable(region=region, currency="USD", retrieved=retrieved,
                      note=previous.note if previous else "", sources={k: v for k, v in sources.items() if k in used},
                      prices=prices, not_offered=not_offered)


EKS_SOURCE_ID = "eks-api"
EKS_API_DOC = "https://docs.aws.amazon.com/eks/latest/APIReference/API_DescribeClusterVersions.html"


def _utc_day(value: datetime | str) -> date:
    """The UTC day of one of EKS's timestamps (`2025-11-25T16:00:00-08:00` is 2025-11-26): the calendar's days are
    UTC, and extended support bills from the start of that day."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def read_eks_calendar(client: Any) -> dict[str, tuple[date, date]]:
    """Each EKS version's end of standard and of extended support, as DescribeClusterVersions states them (every
    version, standard EKS clusters only); a version without both dates is left out."""
    found: dict[str, tuple[date, date]] = {}
    for page in client.get_paginator("describe_cluster_versions").paginate(clusterType="eks", includeAll=True):
        for version in page.get("clusterVersions", []):
            name = version.get("clusterVersion")
            standard, extended = version.get("endOfStandardSupportDate"), version.get("endOfExtendedSupportDate")
            if name and standard and extended:
                found[str(name)] = (_utc_day(standard), _utc_day(extended))
    return found


def rebuilt_calendar(previous: EksCalendar, read: dict[str, tuple[date, date]], region: str,
                     today: date) -> EksCalendar:
    """Rows EKS answered replace the old ones (source: the API, read today); the rest keep their dates and sources;
    sources no row or rule uses go. Dated today only when every row was read today."""
    versions = dict(previous.versions)
    for name, (standard, extended) in read.items():
        versions[name] = VersionRow(end_of_standard_support=standard, end_of_extended_support=extended,
                                    source=EKS_SOURCE_ID, item=f"clusterVersion {name}: endOfStandardSupportDate, "
                                                               f"endOfExtendedSupportDate (as UTC days)")
    sources = dict(previous.sources)
    sources[EKS_SOURCE_ID] = CalendarSource(
        title=f"Amazon EKS DescribeClusterVersions (clusterType eks, includeAll), answered in {region}",
        url=EKS_API_DOC, method="python -m infra.cost refresh: each version's endOfStandardSupportDate and "
                                "endOfExtendedSupportDate, as the UTC day they fall on", kind="aws-api",
        source_date=f"the API's answer of {today}", retrieved=today)
    used = {previous.rule_source} | {n for row in versions.values() for n in (row.source, *(row.also or []))}
    kept = [name for name in versions if name not in read]
    return EksCalendar(retrieved=previous.retrieved if kept else today, note=previous.note,
                       rule_source=previous.rule_source, sources={k: v for k, v in sources.items() if k in used},
                       versions=versions)


def refresh_calendar(client: Any, region: str, path: Path, today: date) -> str:
    """Rewrite the EKS calendar from DescribeClusterVersions; what happened, in one line (a calendar EKS does not
    answer is kept as it is)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        previous = load_calendar(path if path.is_file() else CALENDAR_PATH)
    except CalendarError as error:
        return f"EKS calendar not refreshed: {error}"
    try:
        read = read_eks_calendar(client)
    except (BotoCoreError, ClientError) as error:
        return f"EKS calendar not read ({error}): {path} kept"
    if not read:
        return f"EKS calendar: DescribeClusterVersions listed no version with both support dates: {path} kept"
    calendar = rebuilt_calendar(previous, read, region, today)
    try:
        path.write_text(dump_calendar(calendar))
    except OSError as error:
        return f"cannot write {path}: {error.strerror}"
    return (f"wrote {path}: {len(read)} versions read from EKS's DescribeClusterVersions, "
            f"{len(calendar.versions) - len(read)} kept")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cost refresh", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--region", required=True, help="the region whose prices to read, e.g. us-east-1")
    parser.add_argument("--instance-type", action="append", default=[],
                        help="also price this EC2 or SageMaker (ml.*) type; repeatable")
    parser.add_argument("--output", type=Path, help="where to write the table (default: the checked-in one)")
    parser.add_argument("--calendar-output", type=Path, default=CALENDAR_PATH,
                        help="where to write the EKS versions' support calendar read from DescribeClusterVersions "
                             "after the prices (default: the checked-in infra/cost/eks_calendar.json)")
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
    for key, why in sorted(NOT_REFRESHED.items()):
        print(f"  not read by refresh: {key} ({why}){' - kept' if key in table.prices else ' - unpriced'}")
    try:
        eks = boto3.client("eks", region_name=args.region)
    except (BotoCoreError, ClientError) as error:
        print(f"EKS calendar not read: {error}")
        return 0
    print(refresh_calendar(eks, args.region, args.calendar_output, date.today()))
    return 0


def allowed_instance_types() -> set[str]:
    """Instance types the policy pack allows in any stack: the ones a stack can deploy."""
    found: set[str] = set()
    for config in (Path(__file__).resolve().parents[2] / "policies" / "config").glob("*.json"):
        rule = json.loads(config.read_text()).get("instance-type-allowlist", {})
        found |= set(rule.get("allowed_instance_types", [])) if isinstance(rule, dict) else set()
    return found
