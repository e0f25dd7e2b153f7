"""`python -m infra.cost`: the table, the JSON with the same figures, the PR diff, and clear errors for bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cost import declared_from_plan, estimate, load_table
from infra.cost.__main__ import main
from infra.cost.report import as_json
from tests.harness import edited, plan_config, stack_plan

TABLE = load_table("us-east-1")


def stack_estimate(stack: str):
    return estimate(declared_from_plan(stack_plan(stack).as_json()), TABLE)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prod_plan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "prod.json"
    path.write_text(json.dumps(stack_plan("prod").as_json()))
    return path


def test_json_carries_the_figures_the_table_prints(prod_plan, capsys):
    assert main(["--plan", str(prod_plan), "--json", "-"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["stack"] == "prod" and figures["region"] == "us-east-1"
    assert figures["complete"] == {"min": True, "configured": True, "max": True}  # every line of prod is priced
    assert figures["unpriced"] == []
    per_line = sum(float(line["monthly"]["max"] or 0) for line in figures["lines"])
    assert abs(per_line - float(figures["totals"]["max"])) < 0.05  # each line rounded to the cent
    assert main(["--plan", str(prod_plan)]) == 0
    printed = capsys.readouterr().out
    assert f"${float(figures['totals']['max']):,.2f}" in printed
    assert "Unpriced (" not in printed  # nothing left out to list
    assert "Billed by use, not estimated" in printed and "Assumed: 730" in printed


def api_lines(figures: dict) -> dict[str, str]:
    return {line["group"]: line["monthly"]["min"] for line in figures["lines"]
            if line["key"] == "apigateway:rest-requests"}


def test_a_deployments_usage_drives_its_traffic_lines(tmp_path):
    # 10 more requests/s on resnet50 (its `usage` in the stack file): 26.28 M more requests x $3.50 per million.
    def busier(raw):
        next(d for d in raw["mlserve:deployments"] if d["name"] == "resnet50")["usage"] = {"requests_per_second": 11}
    base = json.loads(json.dumps(as_json(stack_estimate("prod"))))
    more = json.loads(json.dumps(as_json(estimate(declared_from_plan(plan_config(edited("prod", busier),
                                                                                     "prod").as_json()), TABLE))))
    assert float(api_lines(more)["resnet50"]) - float(api_lines(base)["resnet50"]) == pytest.approx(91.98)
    assert api_lines(more)["reranker"] == api_lines(base)["reranker"]


def test_a_plan_without_usage_is_priced_at_the_assumed_rate(prod_plan, tmp_path, capsys):
    plan = json.loads(prod_plan.read_text())
    for resource in plan["resources"]:  # a plan written before deployments carried their usage
        if resource["type"] == "aws:apigateway/restApi:RestApi":
            resource["inputs"].pop("tags", None)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(plan))
    low, high = tmp_path / "low.json", tmp_path / "high.json"
    assert main(["--plan", str(bare), "--json", str(low), "--summary"]) == 0
    assert main(["--plan", str(bare), "--json", str(high), "--summary", "--requests-per-second", "11"]) == 0
    assert "Monthly cost (priced lines" in capsys.readouterr().out
    base, more = json.loads(low.read_text()), json.loads(high.read_text())
    # 10 more requests/s on each of prod's two APIs: 26.28 M requests x $3.50 per million each
    assert {g: round(float(more_v) - float(api_lines(base)[g]), 2) for g, more_v in api_lines(more).items()} == \
        {"resnet50": 91.98, "reranker": 91.98}


def test_the_summary_points_at_the_table_of_the_same_estimate_with_the_users_flags(prod_plan, capsys):
    assert main(["--plan", str(prod_plan), "--summary", "--json", "/dev/null", "--nat-gb", "20",
                 "--date", "2028-01-01"]) == 0
    pointer = " ".join(capsys.readouterr().out.split()).rsplit("sizes): ", 1)[1]
    assert pointer.endswith(f"-m infra.cost --plan {prod_plan} --nat-gb 20 --date 2028-01-01")


def test_the_assumed_nat_data_is_a_flag_printed_with_the_figures(prod_plan, tmp_path, capsys):
    out = tmp_path / "nat.json"
    assert main(["--plan", str(prod_plan), "--json", str(out), "--nat-gb", "200"]) == 0
    assert "200 GB a month through the NAT gateways" in " ".join(capsys.readouterr().out.split())
    figures = json.loads(out.read_text())
    assert figures["assumptions"]["nat_gb_per_month"] == "200"
    (line,) = [x for x in figures["lines"] if x["key"] == "nat-gateway:data"]
    assert line["monthly"]["configured"] == "9.00"  # 200 GB x $0.045


def test_diff_shows_base_head_and_the_change_per_deployment(prod_plan, tmp_path, capsys):
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    main(["--plan", str(prod_plan), "--json", str(base), "--summary"])
    main(["--plan", str(prod_plan), "--json", str(head), "--summary", "--hours-per-month", "744"])
    capsys.readouterr()
    assert main(["diff", str(base), str(head)]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("### Monthly cost: `prod`")
    total = next(line for line in markdown.splitlines() if line.startswith("| **total (priced)**"))
    b, h = json.loads(base.read_text())["totals"], json.loads(head.read_text())["totals"]
    cells = [c.strip() for c in total.strip("|").split("|")][1:]
    assert cells == [f"{float(b['min']):,.2f}", f"{float(h['min']):,.2f}",
                     f"+{float(h['min']) - float(b['min']):,.2f}", f"{float(b['max']):,.2f}",
                     f"{float(h['max']):,.2f}", f"+{float(h['max']) - float(b['max']):,.2f}"]
    assert float(h["max"]) > float(b["max"])  # 14 more hours of every hourly line
    # only what changed, said as a reader of the pull request reads it (14 more hours: 730 -> 744)
    assert "Assumptions differ (base → head): hours_per_month 730 → 744" in markdown.splitlines()


@pytest.mark.parametrize("args, message", [
    (["--hours-per-month", "0"], "must be at least 1"),
    (["--spot-discount", "1"], "below 1"),
    (["--requests-per-second", "lots"], "is not a number"),
    (["--nat-gb", "-5"], "must be at least 0"),
    (["--nat-gb", "nan"], "'nan' is not a finite number"),
    (["--stack", "prod", "--plan", "x.json"], "not allowed with"),
])
def test_bad_arguments_get_one_clear_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_or_wrong_files_are_refused_without_a_traceback(tmp_path):
    not_a_plan = tmp_path / "plan.json"
    not_a_plan.write_text('{"stack": "dev"}')
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    for args, message in ((["--plan", str(tmp_path / "none.json")], "cannot read"),
                          (["--plan", str(not_a_plan)], "is not a plan"),
                          (["--plan", str(broken)], "is not JSON"),
                          (["--stack", "nosuch"], "nosuch"),
                          (["diff", str(not_a_plan), str(not_a_plan)], "is not an estimate")):
        done = subprocess.run([sys.executable, "-m", "infra.cost", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_cost_doc_shows_this_checkouts_figures_and_the_tables_date(stack):
    from datetime import date

    from infra.cost import Assumptions, declared_from_plan, estimate, load_table
    from infra.cost.report import usd

    doc = (ROOT / "docs" / "cost.md").read_text()
    block = doc[doc.index(f"{stack}: monthly cost in us-east-1"):]
    # the day the doc's output priced (EKS support phases): the figures are that day's, whatever today is
    (day,) = re.findall(r"support phases on (\d{4}-\d\d-\d\d)", block.split("```")[0])
    result = estimate(declared_from_plan(stack_plan(stack).as_json()), load_table("us-east-1"),
                      Assumptions(as_of=date.fromisoformat(day)))
    total = next(line for line in block.splitlines() if "stack total (priced lines)" in line)
    assert [usd(result.total(s)) for s in ("min", "configured", "max")] == re.findall(r"\$[\d,]+\.\d\d", total), \
        "regenerate docs/cost.md's output: COLUMNS=118 python -m infra.cost --stack " + stack + " --date " + day
    assert f"retrieved **{result.table.retrieved}**" in doc


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_readmes_cost_table_shows_this_checkouts_figures(stack):
    from datetime import date

    from infra.cost import Assumptions, declared_from_plan, estimate, load_table
    from infra.cost.report import usd

    readme = (ROOT / "README.md").read_text()
    (day,) = re.findall(r"infra\.cost\s+--stack <s> --date (\d{4}-\d\d-\d\d)", readme)
    result = estimate(declared_from_plan(stack_plan(stack).as_json()), load_table("us-east-1"),
                      Assumptions(as_of=date.fromisoformat(day)))
    row = next(line for line in readme.splitlines() if line.startswith(f"| {stack} | $"))
    assert re.findall(r"\$[\d,]+\.\d\d", row) == [usd(result.total(s)) for s in ("min", "configured", "max")], \
        f"update the README's cost table: python -m infra.cost --stack {stack} --date {day} --summary"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_cost_doc_prints_exactly_what_the_cli_prints(stack, monkeypatch, capsys):
    """Every line of each output block in docs/cost.md, the notes and the sources included, not only the totals."""
    doc = (ROOT / "docs" / "cost.md").read_text()
    start = doc.index(f"{stack}: monthly cost in us-east-1")
    printed = doc[doc.rindex("```text\n", 0, start) + len("```text\n"):doc.index("```", start)]
    (day,) = re.findall(r"support phases on (\d{4}-\d\d-\d\d)", printed)
    monkeypatch.setenv("COLUMNS", "118")
    assert main(["--stack", stack, "--date", day]) == 0
    lines = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert lines == [line.rstrip() for line in printed.splitlines()], \
        f"regenerate docs/cost.md's output: COLUMNS=118 python -m infra.cost --stack {stack} --date {day}"


def test_a_date_before_the_prices_or_a_year_after_them_is_remarked_on(prod_plan, capsys):
    """--date moves EKS's support phases, not the prices: a date the table does not speak for says so."""
    from datetime import timedelta

    retrieved = load_table("us-east-1").retrieved
    for delta, remarked in ((-1, True), (0, False), (365, False), (366, True)):
        day = retrieved + timedelta(days=delta)
        assert main(["--plan", str(prod_plan), "--date", day.isoformat()]) == 0
        dated = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Dated ")]
        assert dated == ([f"Dated {day}: the prices are those of {retrieved} whatever the date; the date moves only "
                          "which Kubernetes versions are in EKS's extended support."] if remarked else []), day
