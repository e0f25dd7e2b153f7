"""`python -m infra.plan.layout --write`: pictures of the dashboards' layouts (SVG), drawn from the offline plans.

One picture per dashboard a checked-in stack declares: the CloudWatch dashboard of each stack and the Grafana
dashboard of each KServe deployment, every panel a box at its grid position with its title. They live in
infra/plan/dashboards/ for the README; a test fails when one no longer matches what the stacks declare.
"""

from __future__ import annotations

import argparse
import json
import sys
from html import escape
from pathlib import Path

from infra.config import load_stack
from infra.plan import Plan, plan_stack

OUT = Path(__file__).resolve().parent / "dashboards"
COLUMN, ROW, COLUMNS = 40, 30, 24  # pixels per grid unit; both CloudWatch and Grafana grids are 24 units wide


def svg(title: str, panels: list[tuple[int, int, int, int, str]]) -> str:
    """Boxes at (x, y, w, h) in grid units, each with its title."""
    height = max((y + h for _, y, _, h, _ in panels), default=1) * ROW + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{COLUMNS * COLUMN}" height="{height}" '
             f'font-family="sans-serif" font-size="13">',
             f'<text x="4" y="22" font-size="16" font-weight="bold">{escape(title)}</text>']
    for x, y, w, h, name in panels:
        left, top = x * COLUMN + 2, y * ROW + 34
        parts.append(f'<rect x="{left}" y="{top}" width="{w * COLUMN - 4}" height="{h * ROW - 4}" rx="4" '
                     'fill="#f4f6f8" stroke="#8a96a3"/>')
        parts.append(f'<text x="{left + 8}" y="{top + 20}">{escape(name)}</text>')
    return "\n".join([*parts, "</svg>"]) + "\n"


def pictures(plan: Plan) -> dict[str, str]:
    """File name -> SVG for every dashboard of the plan."""
    out = {}
    for board in plan.of_type("aws:cloudwatch/dashboard:Dashboard"):
        widgets = json.loads(board.inputs["dashboardBody"])["widgets"]
        out[f"cloudwatch-{plan.stack}.svg"] = svg(
            f"CloudWatch: {board.inputs['dashboardName']}",
            [(w["x"], w["y"], w["width"], w["height"], w["properties"]["title"]) for w in widgets])
    for config_map in plan.of_type("kubernetes:core/v1:ConfigMap"):
        if config_map.inputs["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
            continue
        for file_name, body in sorted(config_map.inputs["data"].items()):
            board = json.loads(body)
            out[f"grafana-{plan.stack}-{file_name.removesuffix('.json')}.svg"] = svg(
                f"Grafana: {board['title']}", [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"],
                                                p["gridPos"]["h"], p["title"]) for p in board["panels"]])
    return out


def all_pictures(stacks: tuple[str, ...] = ("dev", "prod")) -> dict[str, str]:
    return {name: text for stack in stacks for name, text in pictures(plan_stack(load_stack(stack), stack)).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan.layout", description="pictures of the dashboards")
    parser.add_argument("--write", action="store_true", help=f"write the SVGs to {OUT}")
    args = parser.parse_args(argv)
    drawn = all_pictures()
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        for name, text in drawn.items():
            (OUT / name).write_text(text)
    for name in sorted(drawn):
        print(f"{'wrote' if args.write else 'would write'} {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
