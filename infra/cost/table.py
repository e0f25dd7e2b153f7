"""The checked-in price tables: one JSON file per region under `prices/`, every figure naming its source.

A figure without a source cannot enter a table (the model refuses it), and a price the table lacks stays missing:
the estimator reports it as unpriced instead of counting it as zero. Each source says what kind it is: AWS's own
price data and AWS-authored pages stand alone; a figure read from AWS-authored sample code or from a third party
enters only beside an independent second source that states the same figure (`Price.also`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PRICES_DIR = Path(__file__).resolve().parent / "prices"

SourceKind = Literal["aws-price-data", "aws-page", "aws-sample", "third-party"]
NEEDS_CORROBORATION: frozenset[str] = frozenset({"aws-sample", "third-party"})
"""Kinds of source whose figure needs an independent second source that states the same figure."""


def origin(url: str) -> str:
    """Who publishes a URL, for telling independent sources apart: a GitHub owner, else the host."""
    parsed = urlparse(url)
    host = parsed.netloc.lower().removeprefix("www.")
    if host in ("github.com", "raw.githubusercontent.com"):
        owner = parsed.path.strip("/").split("/")[0].lower()
        return f"github.com/{owner}"
    return host


class _Sourced(Protocol):
    """A source as the price tables and the EKS calendar cite one."""

    @property
    def kind(self) -> str | None: ...

    @property
    def url(self) -> str: ...


def uncorroborated(cited: Mapping[str, tuple[str, Sequence[str]]], sources: Mapping[str, _Sourced]) -> list[str]:
    """The entries (key: its source and `also`) that stand on a source of a kind that needs corroboration without an
    independent second source, one from another publisher, stating the same: the price tables' and the EKS
    calendar's one rule."""
    return sorted(key for key, (primary, also) in cited.items()
                  if sources[primary].kind in NEEDS_CORROBORATION and not any(
                      other != primary and origin(sources[other].url) != origin(sources[primary].url)
                      for other in also))


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, description="What the figures were read from")
    url: str = Field(pattern=r"^https://", description="Where anyone can check them")
    quote: str | None = Field(default=None, description="The sentence a page-sourced figure comes from")
    method: str | None = Field(default=None, description="How a data-sourced figure was extracted")
    publication_date: str | None = Field(default=None, description="The Price List's own publication date")
    kind: SourceKind | None = Field(default=None, description=(
        "aws-price-data: AWS's own price data (Price List offer files or API, the data files the pricing pages render), "
        "possibly as captured by someone else; aws-page: an AWS-authored page (pricing page, blog, docs, whitepaper), "
        "quoted; aws-sample: AWS-authored code or docs in a repository (samples, tests, agent skills) stating a price "
        "it took from AWS, not a price publication; third-party: anyone else. A figure whose source is aws-sample or "
        "third-party needs an independent second source that states it too (Price.also)"))
    source_date: str | None = Field(default=None, description=(
        "The source's own date: a page's publication or update date, a commit's date, a data file's publication "
        "date; 'undated: <why>' when it has none"))
    retrieved: date | None = Field(default=None, description="When its figures were read for this table")


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usd: Decimal = Field(ge=0, description="On-demand list price in USD for one `per`")
    per: Literal["hour", "month", "million", "gb", "gb-month"] = Field(
        description="Unit: an hour, a month, a million requests, a GB (transferred or processed), or a GB held a month")
    source: str = Field(description="Key into the table's sources")
    gpus: int | None = Field(default=None, ge=0, description="GPUs per instance (instance prices only)")
    gpus_source: str | None = Field(default=None, description="Key into the sources for `gpus`, when not `source`")
    also: list[str] | None = Field(default=None, description="Further sources (keys) that state the same figure")
    rule_source: str | None = Field(default=None, description=(
        "Key into the sources for a billing rule the estimator applies with this figure (a cap on how many units "
        "bill), when not `source`"))
    item: str | None = Field(default=None, description=(
        "Where in the source the figure is: its row or label, a Price List rate code, a file line"))
    note: str | None = Field(default=None, description="What the figure covers and leaves out (tiers, free allowances)")

    def sources_named(self) -> list[str]:
        """Every source key the figure names: its own, `also`, and those of its GPU count and billing rule."""
        return [self.source, *(self.also or []), *[n for n in (self.gpus_source, self.rule_source) if n]]


class NotOffered(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="Key into the table's sources: AWS price data that prices the item in other "
                                    "regions and not in this one")
    item: str = Field(description="Where the source shows it: the row, and the regions it does price")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str
    currency: Literal["USD"]
    retrieved: date = Field(description="When the figures were read (or refreshed from the Price List API)")
    note: str = ""
    sources: dict[str, Source]
    prices: dict[str, Price]
    not_offered: dict[str, NotOffered] = Field(default_factory=dict, description=(
        "Instance types AWS does not offer in this region (its price data has no row for them here): a Karpenter "
        "pool that allows one is priced on the rest, as Karpenter launches only what the region offers"))

    @model_validator(mode="after")
    def _every_price_has_a_source(self) -> PriceTable:
        missing = sorted(f"{key} -> {name}" for key, p in self.prices.items() for name in p.sources_named()
                         if name not in self.sources)
        missing += sorted(f"{key} -> {n.source}" for key, n in self.not_offered.items() if n.source not in self.sources)
        if missing:
            raise ValueError(f"prices name sources the table does not define: {', '.join(missing)}")
        both = sorted(set(self.prices) & set(self.not_offered))
        if both:
            raise ValueError(f"priced and said not to be offered at once: {', '.join(both)}")
        alone = uncorroborated({key: (p.source, p.also or []) for key, p in self.prices.items()}, self.sources)
        if alone:
            raise ValueError(f"figures from {'/'.join(sorted(NEEDS_CORROBORATION))} sources need an independent "
                             f"second source that states them (also): {', '.join(alone)}")
        return self

    def price(self, key: str) -> Price | None:
        return self.prices.get(key)


class PriceTableError(Exception):
    """A table that is missing or malformed: said in one line, never a traceback."""


def table_path(region: str) -> Path:
    return PRICES_DIR / f"{region}.json"


def available_regions() -> list[str]:
    return sorted(p.stem for p in PRICES_DIR.glob("*.json"))


def load_table(region: str | None = None, path: Path | None = None) -> PriceTable:
    """The table for a region (or the file given): validated, or a PriceTableError saying what is wrong."""
    if path is None:
        if region is None:
            raise PriceTableError("name a region or a price table file")
        path = table_path(region)
        if not path.is_file():
            raise PriceTableError(f"no price table for {region} (have: {', '.join(available_regions()) or 'none'}); "
                                  f"run `python -m infra.cost refresh --region {region}` where AWS credentials exist")
    try:
        table = PriceTable.model_validate(json.loads(path.read_text()))
    except OSError as error:
        raise PriceTableError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise PriceTableError(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PriceTableError(f"{path}: {where}: {first['msg']}") from None
    if region is not None and table.region != region:
        raise PriceTableError(f"{path} prices {table.region}, not {region}")
    return table


def dump_table(table: PriceTable) -> str:
    data = table.model_dump(mode="json", exclude_none=True)  # JSON mode writes each Decimal as its exact string
    data["prices"] = dict(sorted(data["prices"].items()))
    if not data.get("not_offered"):
        data.pop("not_offered", None)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
