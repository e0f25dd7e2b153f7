"""`python -m infra.pictures --write`: pictures drawn from the offline plans (SVG), for the README and docs/.

- The dashboards' layouts: one picture per dashboard a checked-in stack declares (the CloudWatch dashboard of each
  stack, the Grafana dashboard of each KServe deployment), every panel a box at its grid position with its title.
  They live in docs/pictures/.
- The architecture of each checked-in stack: its top-level components grouped by area (the `mlserve:<area>:` of
  their type), each with its component children and how many resources each holds. They live in docs/pictures/.

A test fails when a picture no longer matches what the stacks declare.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from html import escape
from pathlib import Path

from infra.config import load_stack
from infra.plan import Plan, plan_stack

OUT = Path(__file__).resolve().parents[1] / "docs" / "pictures"
ARCHITECTURE_OUT = OUT  # the architecture pictures and the dashboards share the folder
COLUMN, ROW, COLUMNS = 40, 30, 24  # pixels per grid unit; both CloudWatch and Grafana grids are 24 units wide
# The architecture picture: areas in reading order (what serves first, what everything sits on last).
AREAS = ("serving", "edge", "compute", "observability", "storage", "security", "network", "cost")
LABEL, BOX, GAP, PER_ROW, LINE = 120, 206, 8, 4, 20  # pixels: area label column, box width, gap, boxes a row, line


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


def _short(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1].rsplit("$", 1)[-1]


def architecture(plan: Plan) -> str:
    """The stack's top-level components by area, each box listing its component children and resource counts."""
    children: dict[str | None, list] = defaultdict(list)
    for resource in plan.resources:
        children[resource.parent].append(resource)

    def resources_under(urn: str) -> int:
        return sum(1 + resources_under(c.urn) if c.custom else resources_under(c.urn) for c in children[urn])

    by_area: dict[str, list] = defaultdict(list)
    for top in children[None]:
        if not top.custom:  # providers are the only custom resources at the top
            by_area[top.type.split(":")[1]].append(top)
    areas = [a for a in AREAS if a in by_area] + sorted(a for a in by_area if a not in AREAS)
    width = LABEL + PER_ROW * (BOX + GAP)
    parts, y = [], 44
    for area in areas:
        tops = by_area[area]
        for start in range(0, len(tops), PER_ROW):
            row = tops[start:start + PER_ROW]
            height = max(48 + LINE * sum(not c.custom for c in children[t.urn]) for t in row)
            if start == 0:
                parts.append(f'<text x="8" y="{y + 22}" font-weight="bold">{escape(area)}</text>')
            for i, top in enumerate(row):
                left = LABEL + i * (BOX + GAP)
                parts.append(f'<rect x="{left}" y="{y}" width="{BOX}" height="{height}" rx="6" fill="#f4f6f8" '
                             'stroke="#8a96a3"/>')
                parts.append(f'<text x="{left + 8}" y="{y + 18}" font-weight="bold">{escape(_short(top.type))}</text>')
                parts.append(f'<text x="{left + 8}" y="{y + 35}" font-size="11" fill="#4a5560">'
                             f'{escape(top.name)} · {resources_under(top.urn)}</text>')
                for j, child in enumerate(c for c in children[top.urn] if not c.custom):
                    top_of = y + 44 + j * LINE
                    parts.append(f'<rect x="{left + 8}" y="{top_of}" width="{BOX - 16}" height="{LINE - 3}" rx="3" '
                                 'fill="#ffffff" stroke="#b7c0c9"/>')
                    parts.append(f'<text x="{left + 14}" y="{top_of + 13}" font-size="11">'
                                 f'{escape(_short(child.type))} · {resources_under(child.urn)}</text>')
            y += height + GAP
        y += GAP
    components = sum(len(tops) for tops in by_area.values())
    title = (f"mlserve {plan.stack}: {components} components, {sum(r.custom for r in plan.resources)} resources "
             "(name · resources inside)")
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 4}" font-family="sans-serif" '
            'font-size="13">', f'<text x="8" y="24" font-size="16" font-weight="bold">{escape(title)}</text>']
    return "\n".join([*head, *parts, "</svg>"]) + "\n"


def all_pictures(stacks: tuple[str, ...] = ("dev", "prod")) -> dict[str, str]:
    return {name: text for stack in stacks for name, text in pictures(plan_stack(load_stack(stack), stack)).items()}


def all_architectures(stacks: tuple[str, ...] = ("dev", "prod")) -> dict[str, str]:
    return {f"architecture-{stack}.svg": architecture(plan_stack(load_stack(stack), stack)) for stack in stacks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.pictures",
                                     description="pictures of the dashboards and of each stack's architecture")
    parser.add_argument("--write", action="store_true", help=f"write the SVGs to {OUT}")
    args = parser.parse_args(argv)
    for folder, drawn in ((OUT, all_pictures()), (ARCHITECTURE_OUT, all_architectures())):
        if args.write:
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in drawn.items():
                (folder / name).write_text(text)
        for name in sorted(drawn):
            print(f"{'wrote' if args.write else 'would write'} {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
