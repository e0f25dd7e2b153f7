"""An estimate as a terminal table, as JSON (the same figures), as one summary line, and the difference of two
JSON estimates as Markdown for a pull request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.table import Table

from .model import CENTS, DEFAULT_REQUEST_KB, DEFAULT_RESPONSE_KB, SCENARIOS, Assumptions, Estimate, Line, TokenCost

USAGE_NAMES = {
    "aws:lambda/function:Function": "Lambda functions (invocations)",
    "aws:s3/bucket:Bucket": "S3 buckets (requests, and storage beyond the model artifacts and captures priced above)",
    "aws:sqs/queue:Queue": "SQS queues (requests)",
    "aws:sns/topic:Topic": "SNS topics (deliveries)",
    "aws:cloudtrail/trail:Trail": "CloudTrail trails (data events)",
    "aws:ecr/repository:Repository": "ECR repositories (storage)",
    "aws:budgets/budget:Budget": "AWS Budgets budgets",
    "aws:codebuild/project:Project": "CodeBuild projects (build minutes)",
}


def usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value.quantize(CENTS):,}"


TOKEN_CENTS = Decimal("0.0001")
"""Per million tokens is shown to a hundredth of a cent: a cheap model costs cents."""


def per_million(cost: TokenCost, assumptions: Assumptions) -> str:
    """`$0.5169`, or why there is no figure (`not measured: python -m infra.ops profile`, `unpriced: ...`)."""
    figure = cost.per_million(assumptions)
    return cost.status(assumptions) if figure is None else f"${figure.quantize(TOKEN_CENTS):,}"


def _token_row(cost: TokenCost, assumptions: Assumptions) -> tuple[str, str]:
    """The item and note of a deployment's per-million-tokens row: the figure with its computation."""
    figure, hourly = cost.per_million(assumptions), cost.replica_hour_usd(assumptions)
    replica = cost.replica
    where = f"one {replica.described} replica" if replica else "one replica"
    if cost.tokens_per_second is None:
        return f"per million output tokens ({where})", cost.status(assumptions)
    item = f"per million output tokens ({where} at {cost.tokens_per_second.normalize():,f} tokens/s within its SLOs)"
    if figure is None or hourly is None or replica is None or replica.price is None:
        return item, cost.status(assumptions)
    shared = f" / {replica.per_instance} replicas a node" if replica.per_instance > 1 else ""
    spot = " (spot)" if replica.spot else ""
    return item, (f"{per_million(cost, assumptions)} = ${replica.price.usd.normalize():f}/h{spot}{shared} / "
                  f"({cost.tokens_per_second.normalize():,f} x 3,600 tokens an hour) x 1,000,000; a rate, not in "
                  f"the totals")


def _monthly(line: Line, estimate: Estimate) -> dict[str, Decimal | None]:
    return {s: line.monthly(s, estimate.assumptions) for s in SCENARIOS}


def as_table(estimate: Estimate) -> Table:
    table = Table(title=f"{estimate.stack}: monthly cost in {estimate.region} (USD, on-demand list prices of "
                        f"{estimate.table.retrieved})")
    for column in ("deployment", "item", "min", "configured", "max", "note"):
        # Items and notes wrap, never cut: their ends are often a path or the flag to change (CI logs are 80 wide).
        table.add_column(column, justify="right" if column in SCENARIOS else "left",
                         overflow="fold" if column in ("item", "note") else "ellipsis")
    for group in estimate.groups():
        for line in (x for x in estimate.lines if x.group == group):
            monthly = _monthly(line, estimate)
            unpriced = sorted({line.key_for(s) for s in SCENARIOS if monthly[s] is None})
            note = "; ".join(filter(None, [line.note, f"no price for {', '.join(unpriced)}" if unpriced else ""]))
            table.add_row(group, line.item, *(usd(monthly[s]) for s in SCENARIOS), note)
        for cost in (t for t in estimate.tokens if t.group == group):
            item, note = _token_row(cost, estimate.assumptions)
            table.add_row(group, item, "", "", "", note)
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
               f"spot at {a.spot_discount * 100:.0f}% below on-demand, {a.model_gb} GB for each model artifact "
               f"the plan gives no size for, {a.nat_gb_per_month} GB a month through the NAT gateways, EKS "
               f"versions' support phases on {a.as_of} (--hours-per-month, --log-gb-per-group, --spot-discount, "
               f"--model-gb, --nat-gb, --date). Traffic is each deployment's "
               f"`usage` in the stack file, shown on its request lines; a plan without it is priced at "
               f"{a.requests_per_second} requests/s, {DEFAULT_REQUEST_KB} KB in and {DEFAULT_RESPONSE_KB} KB out "
               f"(--requests-per-second).")
    if estimate.tokens:
        out.append("Per million output tokens: one replica's hourly price (the node or SageMaker instance it runs on, "
                   "shared by the replicas it holds; a Karpenter pool's cheapest type that fits, as at min) over the "
                   "output tokens it serves in an hour within its SLOs, `llm.tokens_per_second_at_slo` in the stack "
                   "file (measured by python -m infra.ops profile).")
    retrieved, day = estimate.table.retrieved, a.as_of
    if day < retrieved or (day - retrieved).days > 365:
        out.append(f"Dated {day}: the prices are those of {retrieved} whatever the date; the date moves only which "
                   f"Kubernetes versions are in EKS's extended support.")
    sources = ", ".join(dict.fromkeys(source.url for source in estimate.table.sources.values()))
    out.append(f"Prices: {estimate.region} table retrieved {estimate.table.retrieved}; sources: {sources}")
    return out


def summary(estimate: Estimate, details: str | None = None) -> str:
    """One line: the totals, whether every line is priced, and the command that prints the table and what it
    assumes (`details`, as the caller can run it; by default the stack's)."""
    tokens = "" if not estimate.tokens else "; per million output tokens: " + ", ".join(
        f"{cost.group} {per_million(cost, estimate.assumptions)}" for cost in estimate.tokens)
    return (f"Monthly cost (priced lines, {estimate.region} list prices of {estimate.table.retrieved}): "
            f"min {usd(estimate.total('min'))} · configured {usd(estimate.total('configured'))} · "
            f"max {usd(estimate.total('max'))}; {coverage(estimate)}{tokens} — the table and what it assumes "
            f"(traffic, hours, sizes): {details or f'python -m infra.cost --stack {estimate.stack}'}")


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
        "per_million_output_tokens": {cost.group: _tokens_json(cost, estimate.assumptions) for cost in estimate.tokens},
    }


def _tokens_json(cost: TokenCost, assumptions: Assumptions) -> dict[str, Any]:
    figure, hourly, replica = cost.per_million(assumptions), cost.replica_hour_usd(assumptions), cost.replica
    return {
        "usd": None if figure is None else str(figure.quantize(TOKEN_CENTS)),
        "status": cost.status(assumptions),
        "tokens_per_second_at_slo": None if cost.tokens_per_second is None else str(cost.tokens_per_second),
        "replica": None if replica is None else replica.described,
        "key": None if replica is None else replica.key,
        "replicas_per_instance": None if replica is None else replica.per_instance,
        "spot": None if replica is None else replica.spot,
        "replica_hour_usd": None if hourly is None else str(hourly),
    }


def _delta(base: str | None, head: str | None) -> str:
    if base is None or head is None:
        return "n/a"
    change = Decimal(head) - Decimal(base)
    return f"{'+' if change > 0 else ''}{change:,.2f}" if change else "0.00"


def _token_text(figures: dict[str, Any]) -> str:
    if not figures:
        return "-"
    return f"${figures['usd']}" if figures.get("usd") is not None else str(figures.get("status"))


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
    tokens = {**base.get("per_million_output_tokens", {}), **head.get("per_million_output_tokens", {})}
    for group in tokens:
        b, h = (side.get("per_million_output_tokens", {}).get(group, {}) for side in (base, head))
        lines += ["", f"Per million output tokens, {group}: base {_token_text(b)}, head {_token_text(h)}"]
    base_assumed, head_assumed = base.get("assumptions") or {}, head.get("assumptions") or {}
    changed = [f"{key} {base_assumed.get(key, 'unset')} → {head_assumed.get(key, 'unset')}"
               for key in dict.fromkeys([*base_assumed, *head_assumed]) if base_assumed.get(key) != head_assumed.get(key)]
    if changed:
        lines += ["", f"Assumptions differ (base → head): {', '.join(changed)}"]
    return "\n".join(lines) + "\n"
