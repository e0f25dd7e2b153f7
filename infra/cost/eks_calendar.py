"""Which EKS support phase a Kubernetes version is in on a date: the checked-in calendar `eks_calendar.json`.

AWS bills an EKS control plane at the standard rate (`eks:cluster`) while its Kubernetes version is in standard
support and at the extended rate (`eks:cluster-extended-support`, instead of the standard one) from the day standard
support ends, unless the cluster's upgrade policy is STANDARD: then EKS upgrades it at the end of standard support
instead. Each row names its source like the price tables' figures (a figure from AWS sample code or a third party
stands only beside an independent second source); `python -m infra.cost refresh` rewrites the rows EKS's
DescribeClusterVersions answers, where AWS credentials exist. The estimate reads only this file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .table import NEEDS_CORROBORATION, uncorroborated

CALENDAR_PATH = Path(__file__).resolve().parent / "eks_calendar.json"


class CalendarSource(BaseModel):
    """A source as the price tables cite one (`table.Source`), with one more kind: EKS's own API answer."""
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, description="What the dates were read from")
    url: str = Field(pattern=r"^https://", description="Where anyone can check them")
    quote: str | None = Field(default=None, description="The sentence or row a page-sourced date comes from")
    method: str | None = Field(default=None, description="How API-sourced dates were read")
    kind: Literal["aws-api", "aws-page", "aws-sample", "third-party"] = Field(description=(
        "aws-api: EKS's DescribeClusterVersions answer; aws-page, aws-sample, third-party: as in the price tables "
        "(dates from aws-sample or third-party need an independent second source, `also`)"))
    source_date: str = Field(min_length=1, description="The source's own date, or 'undated: <why>'")
    retrieved: date = Field(description="When its dates were read for this calendar")


class VersionRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    end_of_standard_support: date = Field(description="The first day (UTC) billed at the extended rate")
    end_of_extended_support: date = Field(description="From this day EKS upgrades the control plane itself")
    source: str = Field(description="Key into the calendar's sources")
    also: list[str] | None = Field(default=None, description="Further sources (keys) that state the same dates")
    item: str = Field(min_length=1, description="Where in the source the dates are: the row as it reads")


class EksCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retrieved: date = Field(description="When the rows were read")
    note: str = ""
    rule_source: str = Field(description=(
        "Key into the sources for AWS's rule: 14 months of standard support from a version's EKS release, then "
        "12 of extended support; billing for extended support from the first day after standard support (UTC)"))
    sources: dict[str, CalendarSource]
    versions: dict[str, VersionRow]

    @model_validator(mode="after")
    def _every_row_has_a_source(self) -> EksCalendar:
        named = [("rule", self.rule_source)] + [(v, name) for v, row in self.versions.items()
                                                for name in [row.source, *(row.also or [])]]
        missing = sorted(f"{what} -> {name}" for what, name in named if name not in self.sources)
        if missing:
            raise ValueError(f"the calendar names sources it does not define: {', '.join(missing)}")
        alone = uncorroborated({v: (row.source, row.also or []) for v, row in self.versions.items()}, self.sources)
        if alone:
            raise ValueError(f"dates from {'/'.join(sorted(NEEDS_CORROBORATION))} sources need an independent second "
                             f"source that states them (also): {', '.join(alone)}")
        bad = sorted(v for v, row in self.versions.items()
                     if _minor(v) is None or row.end_of_extended_support <= row.end_of_standard_support)
        if bad:
            raise ValueError(f"rows that are not a version 1.NN with extended support ending after standard support "
                             f"ends: {', '.join(bad)}")
        return self

    def support(self, version: str | None, on: date) -> Support:
        """The phase a version is in on a date, and why (the note an estimate line carries)."""
        if not version:
            return Support("standard", "no version in the plan: EKS creates the cluster on its default version, "
                                       "assumed in standard support")
        row = self.versions.get(version)
        if row is not None:
            standard, extended = row.end_of_standard_support, row.end_of_extended_support
            if on < standard:
                return Support("standard", f"{version} is in standard support until {standard} (calendar)", row)
            if on < extended:
                return Support("extended", f"{version} is in extended support since {standard}, until {extended} "
                                           f"(calendar)", row)
            return Support("extended", f"{version} is past its extended support ({extended}): EKS upgrades the "
                                       f"control plane to the oldest version it still supports, assumed in extended "
                                       f"support", row)
        minor, known = _minor(version), sorted((m, v) for v in self.versions if (m := _minor(v)) is not None)
        if minor is None or not known:
            return Support("unknown", f"version {version!r} is not in the calendar")
        if minor > known[-1][0]:
            newest = known[-1][1]
            bound = self.versions[newest].end_of_standard_support
            if on < bound:
                return Support("standard", f"{version} is newer than the calendar's newest ({newest}): in standard "
                                           f"support at least until {bound} (14 months from its EKS release, which "
                                           f"came after {newest}'s)")
            return Support("unknown", f"{version} is newer than the calendar's newest ({newest}), whose standard "
                                      f"support ended {bound}: its own end is not known")
        if minor < known[0][0]:
            return Support("extended", f"{version} is older than every version in the calendar (oldest "
                                       f"{known[0][1]}, its extended support ended "
                                       f"{self.versions[known[0][1]].end_of_extended_support}): past its support, "
                                       f"EKS upgrades it to the oldest version it still supports, assumed in "
                                       f"extended support")
        return Support("unknown", f"{version} is not in the calendar")


SupportPhase = Literal["standard", "extended", "unknown"]


@dataclass(frozen=True)
class Support:
    phase: SupportPhase
    """unknown: the calendar cannot say (the estimate's min takes the standard rate, its max the extended one)."""
    why: str
    row: VersionRow | None = None


def _minor(version: str) -> int | None:
    major, _, minor = version.partition(".")
    return int(minor) if major == "1" and minor.isdigit() else None


class CalendarError(Exception):
    """A calendar file that is missing or malformed: said in one line."""


def load_calendar(path: Path | None = None) -> EksCalendar:
    path = path or CALENDAR_PATH
    try:
        return EksCalendar.model_validate(json.loads(path.read_text()))
    except OSError as error:
        raise CalendarError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise CalendarError(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    except ValidationError as error:
        first = error.errors()[0]
        raise CalendarError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def dump_calendar(calendar: EksCalendar) -> str:
    data = calendar.model_dump(mode="json", exclude_none=True)
    data["versions"] = dict(sorted(data["versions"].items(), key=lambda kv: _minor(kv[0]) or 0, reverse=True))
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
