"""`python -m infra.cost --stack dev`: what a stack costs a month, from its offline plan, before `pulumi up`.

    python -m infra.cost --stack prod [--json FILE|-] [--summary]      price a checked-in stack
    python -m infra.cost --stack prod --date 2027-06-01                on another day (EKS support phases)
    python -m infra.cost --config-file my.yaml                         any stack file
    python -m infra.cost --plan plan.json                              a plan from `python -m infra.plan --json`
    python -m infra.cost diff BASE.json HEAD.json                      two `--json` estimates, as Markdown
    python -m infra.cost refresh --region us-east-1                    rebuild the price table (AWS credentials)
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Console

from infra.config import ConfigError, available_stacks, load_named

from .eks_calendar import CalendarError, load_calendar
from .estimate import declared_from_plan, estimate, region_of
from .model import Assumptions, Declared
from .report import as_json, as_table, diff_markdown, notes, summary
from .table import PriceTableError, load_table


def _decimal(low: str, high: str | None = None, *, high_open: bool = False):
    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value.is_finite():
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < Decimal(low) or (high is not None and (
                value >= Decimal(high) if high_open else value > Decimal(high))):
            bound = f" and {'below' if high_open else 'at most'} {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"{text} must be at least {low}{bound}")
        return value
    return parse


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _estimate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.cost", description=(__doc__ or "").splitlines()[0],
                                     epilog="Subcommands: `diff BASE.json HEAD.json`, `refresh --region R`.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help=f"a checked-in stack ({', '.join(available_stacks())}); dev by default")
    source.add_argument("--config-file", type=Path, help="any stack file, e.g. a copy you are editing")
    source.add_argument("--plan", type=Path, help="a plan JSON written by `python -m infra.plan --json`")
    parser.add_argument("--prices", type=Path, help="a price table file instead of infra/cost/prices/<region>.json")
    parser.add_argument("--hours-per-month", type=_decimal("1", "744"), default=Decimal(730),
                        help="hours each always-on resource runs in a month (default 730)")
    parser.add_argument("--requests-per-second", type=_decimal("0"), default=Decimal(1),
                        help="average requests per second to each deployment's API (default 1)")
    parser.add_argument("--log-gb-per-group", type=_decimal("0"), default=Decimal(1),
                        help="GB ingested per month into each log group (default 1)")
    parser.add_argument("--spot-discount", type=_decimal("0", "1", high_open=True), default=Decimal("0.5"),
                        help="fraction below on-demand that spot capacity costs (default 0.5)")
    parser.add_argument("--model-gb", type=_decimal("0"), default=Decimal(1),
                        help="GB of each served model artifact whose size the plan does not carry (default 1; a "
                             "KServe model cache declares its own)")
    parser.add_argument("--nat-gb", type=_decimal("0"), default=Decimal(10),
                        help="GB a month through the stack's NAT gateways (default 10): public registries' images "
                             "for new nodes and pods, the in-VPC deployer's downloads, AWS APIs without a VPC "
                             "endpoint")
    parser.add_argument("--date", type=_day, default=None, metavar="YYYY-MM-DD",
                        help="the day to price: which EKS support phase each cluster's Kubernetes version is in "
                             "(infra/cost/eks_calendar.json; default today)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE (- for stdout only)")
    parser.add_argument("--summary", action="store_true", help="print one line instead of the table")
    return parser


def _declared(args: argparse.Namespace) -> tuple[list[Declared], str]:
    """The plan's resources and the stack name, from a plan file or by running the program offline."""
    if args.plan:
        plan = _read_json(args.plan, "resources", list, "a plan: write one with `python -m infra.plan --json FILE`")
        return declared_from_plan(plan), str(plan.get("stack", args.plan.stem))
    from infra.plan import plan_stack

    try:
        stack, cfg = load_named(args.stack, args.config_file)
    except ConfigError as error:
        raise SystemExit(_fail(error.render())) from None
    return declared_from_plan(plan_stack(cfg, stack).as_json()), stack


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _table_command(argv: list[str], stack: str) -> str:
    """The arguments that print the table of the same estimate: the user's own, without --summary and --json."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--summary" or arg.startswith("--json="):
            continue
        elif arg == "--json":
            skip = True
        else:
            kept.append(arg)
    if not any(a.split("=")[0] in ("--stack", "--plan", "--config-file") for a in kept):
        kept = ["--stack", stack, *kept]
    return shlex.join(kept)


def run_estimate(argv: list[str]) -> int:
    args = _estimate_parser().parse_args(argv)
    declared, stack = _declared(args)
    region = region_of(declared)
    try:
        table = load_table(None if args.prices else region, args.prices)
    except PriceTableError as error:
        return _fail(str(error))
    if region and table.region != region:
        return _fail(f"the price table is for {table.region} but the stack deploys to {region}")
    try:
        calendar = load_calendar()
    except CalendarError as error:
        return _fail(str(error))
    assumptions = Assumptions(hours_per_month=args.hours_per_month, requests_per_second=args.requests_per_second,
                              log_gb_per_group=args.log_gb_per_group, spot_discount=args.spot_discount,
                              model_gb=args.model_gb, nat_gb_per_month=args.nat_gb, as_of=args.date or date.today())
    result = estimate(declared, table, assumptions, stack=stack, calendar=calendar)
    figures = as_json(result)
    if args.json == "-":
        print(json.dumps(figures, indent=2))
        return 0
    console = Console()
    if args.summary:
        python = Path(sys.executable)
        python = python.relative_to(Path.cwd()) if python.is_relative_to(Path.cwd()) else Path("python")
        console.print(summary(result, f"{python} -m infra.cost {_table_command(argv, stack)}"), soft_wrap=True)
    else:
        console.print(as_table(result))
        for line in notes(result):
            console.print(line, soft_wrap=True)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        except OSError as error:
            return _fail(f"cannot write {args.json}: {error.strerror}")
    return 0


def _read_json(path: Path, key: str, kind: type, what: str) -> dict[str, Any]:
    """A JSON object holding `key` of type `kind`, or exit 1 with one line saying what is wrong."""
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise SystemExit(_fail(f"cannot read {path}: {error.strerror}")) from None
    except json.JSONDecodeError as error:
        raise SystemExit(_fail(f"{path} is not JSON: {error.msg} at line {error.lineno}")) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        raise SystemExit(_fail(f"{path} is not {what}"))
    return data


def run_diff(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cost diff",
                                     description="Two `--json` estimates of one stack, as a Markdown table.")
    parser.add_argument("base", type=Path)
    parser.add_argument("head", type=Path)
    args = parser.parse_args(argv)
    what = "an estimate: write one with `python -m infra.cost --json FILE`"
    base, head = (_read_json(path, "totals", dict, what) for path in (args.base, args.head))
    if base.get("stack") != head.get("stack"):
        return _fail(f"{args.base} prices stack {base.get('stack')}, {args.head} prices {head.get('stack')}")
    sys.stdout.write(diff_markdown(base, head))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["diff"]:
        return run_diff(argv[1:])
    if argv[:1] == ["refresh"]:
        from .refresh import main as refresh_main

        return refresh_main(argv[1:])
    return run_estimate(argv)


if __name__ == "__main__":
    sys.exit(main())
