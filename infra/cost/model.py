"""What an estimate is made of: the declared resources it reads, the assumptions it prices traffic and time with,
the cost lines at three capacities, and the estimate that totals them. The pricers that turn a plan into lines are
in `estimate.py`; the report prints these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from infra import aws_facts

from .table import Price, PriceTable

SCENARIOS = ("min", "configured", "max")
CENTS = Decimal("0.01")
SHARED = "shared"


@dataclass(frozen=True)
class Declared:
    """One declared resource: its type token, URN, name, inputs and parent URN."""
    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    parent: str | None = None
    inputs_from: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """The URNs each input was taken from (the plan's propertyDependencies), where known."""


DEFAULT_REQUEST_KB, DEFAULT_RESPONSE_KB = Decimal(16), Decimal(4)
"""A request and its answer where a plan states no usage (the notes under the table say so)."""


@dataclass(frozen=True)
class Assumptions:
    hours_per_month: Decimal = Decimal(730)
    requests_per_second: Decimal = Decimal(1)
    """Average requests per second each deployment's API receives (API Gateway and WAF request charges)."""
    log_gb_per_group: Decimal = Decimal(1)
    """GB ingested per month into each log group (flow logs, API access logs, control plane, jobs)."""
    spot_discount: Decimal = Decimal("0.5")
    """Fraction below the on-demand price that spot capacity is assumed to cost."""
    model_gb: Decimal = Decimal(1)
    """GB of each model artifact the plan serves and gives no size for (a KServe model cache declares its size)."""
    nat_gb_per_month: Decimal = Decimal(10)
    """GB a month through the stack's NAT gateways: what leaves the private subnets for services without an endpoint
    (public registries' images for new nodes and pods, the in-VPC deployer's downloads, AWS APIs such as EC2, SQS,
    SSM and SNS)."""
    as_of: date = field(default_factory=date.today)
    """The day the estimate prices: which EKS support phase (standard or extended) each cluster's version is in."""

    def describe(self) -> dict[str, str]:
        return {"hours_per_month": str(self.hours_per_month), "requests_per_second": str(self.requests_per_second),
                "log_gb_per_group": str(self.log_gb_per_group), "spot_discount": str(self.spot_discount),
                "model_gb": str(self.model_gb), "nat_gb_per_month": str(self.nat_gb_per_month),
                "date": self.as_of.isoformat()}


@dataclass(frozen=True)
class Counts:
    min: Decimal
    configured: Decimal
    max: Decimal

    @classmethod
    def same(cls, value: Decimal | int | float) -> Counts:
        v = Decimal(str(value))
        return cls(v, v, v)

    def get(self, scenario: str) -> Decimal:
        return getattr(self, scenario)


@dataclass(frozen=True)
class Line:
    group: str
    """The deployment the cost belongs to, or "shared"."""
    item: str
    key: str
    """Price table key; unpriced when the table lacks it."""
    quantity: Counts
    """Units per scenario: instances or nodes (per hour), keys or ACLs (per month), millions of requests, GB."""
    price: Price | None
    spot: bool = False
    note: str = ""
    max_key: str | None = None
    """At max a different unit can apply (a Karpenter pool's dearest type per GPU, where min takes its cheapest)."""
    max_price: Price | None = None

    @property
    def gpu_bearing(self) -> bool:
        """Whether the line pays for GPUs (a GPU instance type at any bound): the lines a budget cannot do without."""
        return any(aws_facts.gpus(key.split(":", 1)[-1]) > 0 for key in (self.key, self.max_key or self.key))

    def price_for(self, scenario: str) -> Price | None:
        return self.max_price if scenario == "max" and self.max_key else self.price

    def key_for(self, scenario: str) -> str:
        return self.max_key if scenario == "max" and self.max_key else self.key

    def unit_usd(self, assumptions: Assumptions, scenario: str = "configured") -> Decimal | None:
        price = self.price_for(scenario)
        if price is None:
            return None
        return price.usd * (1 - assumptions.spot_discount) if self.spot else price.usd

    def monthly(self, scenario: str, assumptions: Assumptions) -> Decimal | None:
        """Exact USD for the scenario; None when unpriced and the quantity is not zero (zero costs zero)."""
        quantity = self.quantity.get(scenario)
        unit = self.unit_usd(assumptions, scenario)
        price = self.price_for(scenario)
        if unit is None or price is None:
            return Decimal(0) if quantity == 0 else None
        per_month = assumptions.hours_per_month if price.per == "hour" else Decimal(1)
        return quantity * unit * per_month


PROFILE_HINT = "not measured: python -m infra.ops profile"
"""What the estimate says for a language model whose output tokens/s within its SLOs nobody has measured."""
MILLION = Decimal(1_000_000)
SECONDS_PER_HOUR = Decimal(3600)


@dataclass(frozen=True)
class Replica:
    """What one replica of a deployment runs on: the node or SageMaker instance (its price key) and how many whole
    replicas that holds (a 4-GPU node holds four 1-GPU replicas: each costs a quarter of its hour)."""
    described: str
    """The type, e.g. `g6e.xlarge`, `ml.g5.12xlarge (4 copies an instance)`."""
    key: str
    price: Price | None
    per_instance: int = 1
    spot: bool = False


@dataclass(frozen=True)
class TokenCost:
    """A language model's cost per million output tokens: one replica's hourly price over the tokens it serves in an
    hour within its SLOs (`llm.tokens_per_second_at_slo`, measured by `python -m infra.ops profile`). For a Karpenter
    pool the replica is on the cheapest type that fits it, as at min; spot at the assumed discount."""
    group: str
    tokens_per_second: Decimal | None
    """None: not measured."""
    replica: Replica | None
    """None: the plan places no GPU replica of the deployment the estimator can see."""

    def replica_hour_usd(self, assumptions: Assumptions) -> Decimal | None:
        if self.replica is None or self.replica.price is None or self.replica.price.per != "hour":
            return None
        usd = self.replica.price.usd * (1 - assumptions.spot_discount) if self.replica.spot else self.replica.price.usd
        return usd / self.replica.per_instance

    def per_million(self, assumptions: Assumptions) -> Decimal | None:
        """USD per million output tokens, exact; None when not measured or unpriced (`status` says which)."""
        hourly = self.replica_hour_usd(assumptions)
        if hourly is None or not self.tokens_per_second:
            return None
        return hourly / (self.tokens_per_second * SECONDS_PER_HOUR) * MILLION

    def status(self, assumptions: Assumptions) -> str:
        """Why there is no figure (`not measured: ...`, `unpriced: ...`), or `priced`."""
        if self.tokens_per_second is None:
            return PROFILE_HINT
        if self.replica is None:
            return "unpriced: the plan places no GPU replica of this deployment"
        if self.replica_hour_usd(assumptions) is None:
            return f"unpriced: no hourly price for {self.replica.key}"
        return "priced"


@dataclass
class Estimate:
    stack: str
    region: str
    table: PriceTable
    assumptions: Assumptions
    lines: list[Line]
    usage_based: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    tokens: list[TokenCost] = field(default_factory=list)
    """Per language-model deployment: what a million output tokens cost (not a monthly line: not in the totals)."""

    def total(self, scenario: str, group: str | None = None) -> Decimal:
        """Priced lines only, rounded to the cent; `unpriced(scenario)` says what is left out."""
        exact = sum((m for line in self.lines if group is None or line.group == group
                     if (m := line.monthly(scenario, self.assumptions)) is not None), Decimal(0))
        return exact.quantize(CENTS, rounding=ROUND_HALF_UP)

    def unpriced(self, scenario: str | None = None) -> list[Line]:
        scenarios = SCENARIOS if scenario is None else (scenario,)
        return [line for line in self.lines
                if any(line.monthly(s, self.assumptions) is None for s in scenarios)]

    def groups(self) -> list[str]:
        named = sorted({line.group for line in self.lines} - {SHARED})
        return named + ([SHARED] if any(line.group == SHARED for line in self.lines) else [])

    def drivers(self, scenario: str = "max") -> list[tuple[str, Decimal]]:
        """Deployments (and shared) by their priced cost in the scenario, dearest first."""
        return sorted(((g, self.total(scenario, g)) for g in self.groups()), key=lambda item: -item[1])
