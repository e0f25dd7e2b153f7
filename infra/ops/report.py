"""Check results and how they are shown: one row per check, with the reason and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table

Status = Literal["pass", "fail", "unverified", "todo"]
"""todo: not needed by this `pulumi up`, needed before the next phase (docs/first-deployment.md)."""
_STYLE = {"pass": "green", "fail": "bold red", "unverified": "yellow", "todo": "cyan"}


class OpsError(Exception):
    """A user mistake or a state the command cannot act on: printed as one line, exit code 2, no traceback."""

    exit_code = 2


@dataclass(frozen=True)
class Check:
    area: str
    subject: str
    status: Status
    detail: str
    fix: str = ""


def console() -> Console:
    return Console(width=160, soft_wrap=False)


def print_checks(checks: list[Check], title: str, out: Console | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for column in ("check", "subject", "result", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(check.area, check.subject, f"[{_STYLE[check.status]}]{check.status.upper()}[/]", check.detail,
                      check.fix)
    (out or console()).print(table)
