"""An EKS control plane costs $0.10 an hour while its Kubernetes version is in standard support and $0.60 (instead)
once standard support has ended, unless its upgrade policy is STANDARD; the dates come from the checked-in calendar,
and `refresh` can read them from EKS's DescribeClusterVersions (against botocore's Stubber: moto has no such call)."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from infra.cost import Assumptions, Declared, estimate, load_table
from infra.cost.__main__ import main
from infra.cost.eks_calendar import EksCalendar, load_calendar
from infra.cost.refresh import read_eks_calendar, rebuilt_calendar, refresh_calendar
from tests.harness import stack_plan

TABLE = load_table("us-east-1")
CALENDAR = load_calendar()
SCENARIOS = ("min", "configured", "max")


def cluster(version: str | None, support_type: str | None = None) -> Declared:
    props = {"name": "c", **({"version": version} if version else {})}
    if support_type:
        props["upgradePolicy"] = {"supportType": support_type}
    return Declared("aws:eks/cluster:Cluster", "urn:pulumi:t::mlserve::aws:eks/cluster:Cluster::c", "c", props)


def monthly(version: str | None, on: date, support_type: str | None = None) -> list[Decimal]:
    result = estimate([cluster(version, support_type)], TABLE, Assumptions(as_of=on))
    return [result.total(s) for s in SCENARIOS]


STANDARD = Decimal("73.00")  # 0.10 x 730 hours
EXTENDED = Decimal("438.00")  # 0.60 x 730 hours: the extended rate replaces the standard one


def test_a_version_is_billed_at_the_extended_rate_from_the_day_its_standard_support_ends():
    # 1.32: end of standard support March 23, 2026 (AWS's calendar); extended support bills from the start of that
    # day (UTC), until March 23, 2027.
    assert monthly("1.32", date(2026, 3, 22)) == [STANDARD] * 3
    assert monthly("1.32", date(2026, 3, 23)) == [EXTENDED] * 3
    assert monthly("1.32", date(2026, 12, 7)) == [EXTENDED] * 3


def test_an_upgrade_policy_of_standard_never_pays_for_extended_support_while_the_version_is_in_standard():
    # EKS upgrades such a cluster at the end of standard support instead (botocore's UpgradePolicyRequest).
    assert monthly("1.32", date(2026, 3, 22), "STANDARD") == [STANDARD] * 3
    (line,) = estimate([cluster("1.32", "STANDARD")], TABLE, Assumptions(as_of=date(2026, 3, 22))).lines
    assert "EKS upgrades the cluster at the end of standard support (2026-03-23)" in line.note


def test_a_standard_policy_on_a_version_past_standard_support_may_still_pay_the_extended_rate():
    # Extended support cannot be disabled once a cluster is in it (EKS user guide): max is the extended rate.
    assert monthly("1.32", date(2026, 12, 7), "STANDARD") == [STANDARD, STANDARD, EXTENDED]
    (line,) = estimate([cluster("1.32", "STANDARD")], TABLE, Assumptions(as_of=date(2026, 12, 7))).lines
    assert "a cluster already in extended support cannot leave it" in line.note


def test_extended_is_the_default_policy():
    # No upgradePolicy in the plan: the API's default, EXTENDED.
    (line,) = estimate([cluster("1.32")], TABLE, Assumptions(as_of=date(2026, 12, 7))).lines
    assert line.key == "eks:cluster-extended-support" and "upgradePolicy EXTENDED" in line.note


def test_a_version_newer_than_the_calendar_is_standard_until_the_newest_rows_end_then_a_range():
    # 1.36 has no row; it was released on EKS after 1.35, whose standard support ends March 27, 2027, and every
    # version gets 14 months of it: standard before that day; after it the calendar cannot tell, so min and
    # configured take the standard rate and max the extended one.
    assert monthly("1.36", date(2026, 12, 7)) == [STANDARD] * 3
    assert monthly("1.36", date(2027, 6, 1)) == [STANDARD, STANDARD, EXTENDED]


def test_a_version_older_than_the_calendar_is_past_its_support():
    # 1.25 is older than the oldest row (1.27, extended support until July 24, 2025): EKS upgrades such a control
    # plane to the oldest version it still supports, which is in extended support.
    assert monthly("1.25", date(2026, 12, 7)) == [EXTENDED] * 3


def test_the_checked_in_stacks_clusters_are_in_standard_support_on_the_tables_date():
    result = estimate([r for r in _declared("prod") if r.type == "aws:eks/cluster:Cluster"], TABLE,
                      Assumptions(as_of=date(2026, 12, 7)))
    (line,) = result.lines
    assert line.item == "EKS control plane mlserve-prod (Kubernetes 1.36, standard support)"
    assert result.total("max") == STANDARD


def _declared(stack: str) -> list[Declared]:
    from infra.cost import declared_from_plan
    return declared_from_plan(stack_plan(stack).as_json())


def test_the_date_is_a_command_line_choice_and_is_printed_with_the_assumptions(tmp_path, capsys):
    plan = tmp_path / "prod.json"
    plan.write_text(json.dumps(stack_plan("prod").as_json()))
    figures = {}
    for day in ("2026-12-07", "2027-06-01"):
        assert main(["--plan", str(plan), "--date", day, "--json", "-"]) == 0
        figures[day] = json.loads(capsys.readouterr().out)
    assert figures["2027-06-01"]["assumptions"]["date"] == "2027-06-01"
    # prod's 1.36 after 1.35's end of standard support: max takes the extended rate, 0.50 an hour more x 730
    more = Decimal(figures["2027-06-01"]["totals"]["max"]) - Decimal(figures["2026-12-07"]["totals"]["max"])
    assert more == Decimal("365.00")
    assert figures["2027-06-01"]["totals"]["min"] == figures["2026-12-07"]["totals"]["min"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--plan", str(plan), "--date", "next week"])
    assert exit_info.value.code == 2 and "is not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_calendar_dates_from_a_third_party_alone_are_refused():
    data = CALENDAR.model_dump(mode="json")
    data["versions"]["1.35"]["also"] = None  # endoflife.date no longer beside AWS's sample page
    with pytest.raises(ValueError, match="independent second source.*1.35"):
        EksCalendar.model_validate(data)
    data = CALENDAR.model_dump(mode="json")
    data["versions"]["1.34"]["source"] = "a forum"
    with pytest.raises(ValueError, match="1.34 -> a forum"):
        EksCalendar.model_validate(data)


def test_every_calendar_source_is_dated_and_quoted_and_every_one_is_used():
    used = {CALENDAR.rule_source} | {n for row in CALENDAR.versions.values() for n in (row.source, *(row.also or []))}
    assert used == set(CALENDAR.sources)
    for name, source in CALENDAR.sources.items():
        assert source.source_date and source.retrieved and source.retrieved <= CALENDAR.retrieved, name
        assert source.quote if source.kind != "aws-api" else source.method, name


# ---- refresh: DescribeClusterVersions ------------------------------------------------------------------------------

PACIFIC = timezone(timedelta(hours=-8))


def eks_client():
    return boto3.client("eks", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def version(name: str, standard: datetime, extended: datetime) -> dict:
    return {"clusterVersion": name, "clusterType": "eks", "endOfStandardSupportDate": standard,
            "endOfExtendedSupportDate": extended, "versionStatus": "STANDARD_SUPPORT"}


def test_refresh_reads_each_versions_support_dates_as_utc_days_across_pages():
    client = eks_client()
    with Stubber(client) as stub:
        # The EKS user guide's example answer for 1.31: 16:00 Pacific the day before is the calendar's UTC day.
        stub.add_response("describe_cluster_versions", {"clusterVersions": [version(
            "1.31", datetime(2025, 11, 25, 16, tzinfo=PACIFIC), datetime(2026, 11, 25, 16, tzinfo=PACIFIC))],
            "nextToken": "page-2"}, {"clusterType": "eks", "includeAll": True})
        stub.add_response("describe_cluster_versions", {"clusterVersions": [
            {"clusterVersion": "1.99", "clusterType": "eks"},  # no dates: left out, never guessed
            version("1.98", datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))]},
            {"clusterType": "eks", "includeAll": True, "nextToken": "page-2"})
        read = read_eks_calendar(client)
    assert read == {"1.31": (date(2025, 11, 26), date(2026, 11, 26)), "1.98": (date(2030, 1, 1), date(2031, 1, 1))}
    assert (CALENDAR.versions["1.31"].end_of_standard_support, CALENDAR.versions["1.31"].end_of_extended_support) \
        == read["1.31"]  # the checked-in row says the same


def test_a_refreshed_calendar_replaces_what_eks_answered_and_keeps_the_rest():
    rebuilt = rebuilt_calendar(CALENDAR, {"1.98": (date(2030, 1, 1), date(2031, 1, 1))}, "us-east-1",
                               date(2026, 12, 8))
    assert rebuilt.versions["1.98"].source == "eks-api"
    assert rebuilt.sources["eks-api"].kind == "aws-api" and rebuilt.sources["eks-api"].retrieved == date(2026, 12, 8)
    assert rebuilt.versions["1.34"] == CALENDAR.versions["1.34"]  # not answered: its sourced row stays
    assert rebuilt.retrieved == CALENDAR.retrieved  # rows kept from before were not read today
    # a version newer than the old calendar's newest now has its own dates
    assert rebuilt.support("1.98", date(2030, 1, 1)).phase == "extended"


def test_refresh_writes_the_calendar_it_read_and_keeps_it_when_eks_does_not_answer(tmp_path):
    out = tmp_path / "eks_calendar.json"
    client = eks_client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_cluster_versions", "AccessDeniedException", http_status_code=403)
        said = refresh_calendar(client, "us-east-1", out, date(2026, 12, 8))
    assert "EKS calendar not read" in said and not out.exists()
    with Stubber(client) as stub:
        stub.add_response("describe_cluster_versions", {"clusterVersions": [
            version("1.98", datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))]},
            {"clusterType": "eks", "includeAll": True})
        said = refresh_calendar(client, "us-east-1", out, date(2026, 12, 8))
    assert said == f"wrote {out}: 1 versions read from EKS's DescribeClusterVersions, {len(CALENDAR.versions)} kept"
    assert load_calendar(out).versions["1.98"].end_of_standard_support == date(2030, 1, 1)
