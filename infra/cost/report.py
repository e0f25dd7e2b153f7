"""An estimate as a terminal table, as JSON (the same figures), as one summary line, and the difference of two
JSON estimates as Markdown for a pull request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.table import Table

from .model import CENTS, SCENARIOS, Estimate, Line

USAGE_NAMES = {
    "aws:lambda/function:Function": "Lambda functions (invocations)",
    "aws:s3/bucket:Bucket": "S3 buckets (storage, requests)",
    "aws:sqs/queue:Queue": "SQS queues (requests)",
    "aws:sns/topic:Topic": "SNS topics (deliveries)",
    "aws:cloudtrail/trail:Trail": "CloudTrail trails (data events)",
    "aws:ecr/repository:Repository": "ECR repositories (storage)",
    "aws:budgets/budget:Budget": "AWS Budgets budgets",
    "aws:codebuild/project:Project": "CodeBuild projects (build minutes)",
}


def usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value.quantize(CENTS):,}"


def _monthly(line: Line, estimate: Estimate) -> dict[str, Decimal | None]:
    return {s: line.monthly(s, estimate.assumptions) for s in SCENARIOS}


def as_table(estimate: Estimate) -> Table:
    table = Table(title=f"{estimate.stack}: monthly cost in {estimate.region} (USD, on-demand list prices of "
                        f"{estimate.table.retrieved})")
    for column in ("deployment", "item", "min", "configured", "max", "note"):
        table.add_column(column, justify="right" if column in SCENARIOS else "left")
    for group in estimate.groups():
        for line in (x for x in estimate.lines if x.group == group):
            monthly = _monthly(line, estimate)
            unpriced = sorted({line.key_for(s) for s in SCENARIOS if monthly[s] is None})
            note = "; ".join(filter(None, [line.note, f"no price for {', '.join(unpriced)}" if unpriced else ""]))
            table.add_row(group, line.item, *(usd(monthly[s]) for s in SCENARIOS), note)
        table.add_row("", f"[bold]{group} (priced)[/]", *(f"[bold]{usd(estimate.total(s, group))}[/]"
                                                          for s in SCENARIOS), "", end_section=True)
    table.add_row("", "[bold]stack total (priced lines)[/]", *(f"[bold]{usd(estimate.total(s))}[/]"
                                                                for s in SCENARIOS), coverage(estimate))
    return table


def coverage(estimate: Estimate) -> str:
    """How much of the estimate is priced: lines, and the GPU lines among the unpriced (the ones that matter)."""
    unpriced = estimate.unpriced()
    if not unpriced:
        return f"all {len(estimate.lines)} lines priced"
    gpu = sum(line.gpu_bearing for line in unpriced)
    return (f"{len(unpriced)} of {len(estimate.lines)} lines unpriced"
            + (f", {gpu} of them GPU lines: the totals miss the largest costs" if gpu else ""))


def notes(estimate: Estimate) -> list[str]:
    """What the totals leave out and assume, in plain lines under the table."""
    out = []
    unpriced = estimate.unpriced()
    if unpriced:
        keys = sorted({line.key for line in unpriced})
        out.append(f"Unpriced ({len(unpriced)} lines, not in the {estimate.region} table): {', '.join(keys)}. "
                   f"The totals leave them out; `python -m infra.cost refresh --region {estimate.region}` prices "
                   f"them from the AWS Price List API.")
    if estimate.usage_based:
        named = ", ".join(f"{USAGE_NAMES.get(t, t)} x{n}" for t, n in sorted(estimate.usage_based.items()))
        out.append(f"Billed by use, not estimated: {named}.")
    if estimate.unknown:
        out.append("Unknown to the estimator (unpriced, not zero): "
                   + ", ".join(f"{t} x{n}" for t, n in sorted(estimate.unknown.items())) + ".")
    a = estimate.assumptions
    out.append(f"Assumed: {a.hours_per_month} hours a month, {a.log_gb_per_group} GB a month into each log group, "
               f"spot at {a.spot_discount * 100:.0f}% below on-demand (--hours-per-month, --log-gb-per-group, "
               f"--spot-discount). Traffic is each deployment's `usage` in the stack file, shown on its request "
               f"lines; a plan without it is priced at {a.requests_per_second} requests/s, 16 KB in and 4 KB out "
               f"(--requests-per-second).")
    sources = ", ".join(source.url for source in estimate.table.sources.values())
    out.append(f"Prices: {estimate.region} table retrieved {estimate.table.retrieved}; sources: {sources}")
    return out


def summary(estimate: Estimate) -> str:
    left_out = "" if not estimate.unpriced() else f"; {coverage(estimate)}"
    return (f"Monthly cost (priced lines, {estimate.region} list prices of {estimate.table.retrieved}): "
            f"min {usd(estimate.total('min'))} · configured {usd(estimate.total('configured'))} · "
            f"max {usd(estimate.total('max'))}{left_out} — details: python -m infra.cost --stack {estimate.stack}")


def as_json(estimate: Estimate) -> dict[str, Any]:
    def money(value: Decimal | None) -> str | None:
        return None if value is None else str(value.quantize(CENTS))

    return {
        "stack": estimate.stack,
        "region": estimate.region,
        "prices": {"retrieved": str(estimate.table.retrieved),
                   "sources": {k: s.url for k, s in estimate.table.sources.items()}},
        "assumptions": estimate.assumptions.describe(),
        "totals": {s: money(estimate.total(s)) for s in SCENARIOS},
        "complete": {s: not estimate.unpriced(s) for s in SCENARIOS},
        "groups": {g: {s: money(estimate.total(s, g)) for s in SCENARIOS} for g in estimate.groups()},
        "lines": [{
            "group": line.group, "item": line.item, "key": line.key,
            "quantity": {s: str(line.quantity.get(s)) for s in SCENARIOS},
            "unit_usd": None if line.price is None else str(line.unit_usd(estimate.assumptions)),
            "per": None if line.price is None else line.price.per,
            "spot": line.spot,
            "monthly": {s: money(m) for s, m in _monthly(line, estimate).items()},
            "note": line.note,
        } for line in estimate.lines],
        "unpriced": sorted({line.key for line in estimate.unpriced()}),
        "usage_based": dict(sorted(estimate.usage_based.items())),
        "unknown": dict(sorted(estimate.unknown.items())),
    }


def _delta(base: str | None, head: str | None) -> str:
    if base is None or head is None:
        return "n/a"
    change = Decimal(head) - Decimal(base)
    return f"{'+' if change > 0 else ''}{change:,.2f}" if change else "0.00"


def diff_markdown(base: dict[str, Any], head: dict[str, Any]) -> str:
    """Totals and per-deployment figures of two JSON estimates of one stack, side by side, for a PR comment."""
    lines = [f"### Monthly cost: `{head['stack']}` ({head['region']}, list prices of {head['prices']['retrieved']})",
             "", "| | base min | head min | Δ min | base max | head max | Δ max |", "|---|---:|---:|---:|---:|---:|---:|"]

    def money(value: str | None) -> str:
        return "-" if value is None else f"{Decimal(value):,.2f}"

    def row(name: str, b: dict[str, str | None], h: dict[str, str | None]) -> str:
        return (f"| {name} | {money(b.get('min'))} | {money(h.get('min'))} | {_delta(b.get('min'), h.get('min'))} | "
                f"{money(b.get('max'))} | {money(h.get('max'))} | {_delta(b.get('max'), h.get('max'))} |")

    groups = list(dict.fromkeys([*head.get("groups", {}), *base.get("groups", {})]))
    for group in groups:
        lines.append(row(group, base.get("groups", {}).get(group, {}), head.get("groups", {}).get(group, {})))
    lines.append(row("**total (priced)**", base.get("totals", {}), head.get("totals", {})))
    added = sorted(set(head.get("unpriced", [])) - set(base.get("unpriced", [])))
    if head.get("unpriced"):
        lines += ["", f"Unpriced (left out of the totals): {', '.join(head['unpriced'])}"
                      + (f"; new in this change: {', '.join(added)}" if added else "")]
    if base.get("assumptions") != head.get("assumptions"):
        lines += ["", f"Assumptions differ: base {base.get('assumptions')}, head {head.get('assumptions')}"]
    return "\n".join(lines) + "\n"
