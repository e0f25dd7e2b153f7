"""`python -m infra.cost`: the table, the JSON with the same figures, the PR diff, and clear errors for bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cost.__main__ import main
from tests.harness import stack_plan

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
    assert figures["complete"] == {"min": False, "configured": False, "max": False}
    assert "sagemaker-hosting:ml.g5.2xlarge" in figures["unpriced"]
    per_line = sum(float(line["monthly"]["max"] or 0) for line in figures["lines"])
    assert abs(per_line - float(figures["totals"]["max"])) < 0.05  # each line rounded to the cent
    assert main(["--plan", str(prod_plan)]) == 0
    printed = capsys.readouterr().out
    assert f"${float(figures['totals']['max']):,.2f}" in printed
    assert "Unpriced (" in printed and "Billed by use, not estimated" in printed and "Assumed: 730" in printed


def test_assumptions_change_the_figures(prod_plan, tmp_path, capsys):
    low, high = tmp_path / "low.json", tmp_path / "high.json"
    assert main(["--plan", str(prod_plan), "--json", str(low), "--summary"]) == 0
    assert main(["--plan", str(prod_plan), "--json", str(high), "--summary", "--requests-per-second", "11"]) == 0
    assert "Monthly cost (priced lines" in capsys.readouterr().out
    base, more = json.loads(low.read_text()), json.loads(high.read_text())
    # 10 more requests/s on each of prod's two APIs: 2 x 26.28 M requests x $3.50 per million
    assert round(float(more["totals"]["min"]) - float(base["totals"]["min"]), 2) == 183.96


def test_diff_shows_base_head_and_the_change_per_deployment(prod_plan, tmp_path, capsys):
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    main(["--plan", str(prod_plan), "--json", str(base), "--summary"])
    main(["--plan", str(prod_plan), "--json", str(head), "--summary", "--hours-per-month", "744"])
    capsys.readouterr()
    assert main(["diff", str(base), str(head)]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("### Monthly cost: `prod`")
    total = next(line for line in markdown.splitlines() if line.startswith("| **total (priced)**"))
    # prod's priced lines per hour: min 2 m6i.xlarge 0.384 + 3 g5.2xlarge 3.636 + EKS 0.10 = 4.12; max 0.768 + 9.696
    # + 0.10 = 10.564. Plus the KMS key (1.00) and two APIs at 1 request/s x $3.50 per million requests:
    #   730 h: min 4.12 x 730 + 1 + 2 x 2.628 x 3.5 = 3,026.996; max 10.564 x 730 + 1 + 18.396 = 7,731.116
    #   744 h: min 4.12 x 744 + 1 + 2 x 2.6784 x 3.5 = 3,085.029; max 10.564 x 744 + 1 + 18.749 = 7,879.365
    assert total == "| **total (priced)** | 3,027.00 | 3,085.03 | +58.03 | 7,731.12 | 7,879.36 | +148.24 |"
    assert "Assumptions differ" in markdown


@pytest.mark.parametrize("args, message", [
    (["--hours-per-month", "0"], "must be at least 1"),
    (["--spot-discount", "1"], "below 1"),
    (["--requests-per-second", "lots"], "is not a number"),
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
    from infra.cost import declared_from_plan, estimate, load_table
    from infra.cost.report import usd

    result = estimate(declared_from_plan(stack_plan(stack).as_json()), load_table("us-east-1"))
    doc = (ROOT / "docs" / "cost.md").read_text()
    block = doc[doc.index(f"{stack}: monthly cost in us-east-1"):]
    total = next(line for line in block.splitlines() if "stack total (priced lines)" in line)
    assert [usd(result.total(s)) for s in ("min", "configured", "max")] == re.findall(r"\$[\d,]+\.\d\d", total), \
        "regenerate docs/cost.md's output: COLUMNS=118 python -m infra.cost --stack " + stack
    assert f"retrieved **{result.table.retrieved}**" in doc
