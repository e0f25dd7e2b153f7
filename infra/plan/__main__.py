"""`python -m infra.plan --stack dev [--json FILE]`: what a stack declares, offline.

Validates the stack file, runs the real program under Pulumi's mock engine, prints the resource tree and the counts
by type, and optionally writes the plan as JSON in the shape a policy pack receives.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from infra.config import ConfigError, available_stacks, load_named
from infra.plan import Plan, plan_stack


def build_tree(plan: Plan) -> Tree:
    """Each resource under its parent. The plan lists resources in URN order (so two runs write the same JSON), in
    which a child may come before its parent: the tree follows the parent links, not the order."""
    root = Tree(f"[bold]mlserve-{plan.stack}[/] (pulumi:pulumi:Stack)")
    children: dict[str | None, list] = {}
    urns = {r.urn for r in plan.resources}
    for resource in plan.resources:
        children.setdefault(resource.parent if resource.parent in urns else None, []).append(resource)

    def add(node: Tree, parent: str | None) -> None:
        for resource in children.get(parent, []):
            style = "" if resource.custom else "bold cyan"
            add(node.add(f"[{style}]{resource.type}[/] {resource.name}" if style
                         else f"{resource.type} {resource.name}"), resource.urn)

    add(root, None)
    return root


def counts_table(plan: Plan) -> Table:
    table = Table(title=f"{plan.stack}: {sum(r.custom for r in plan.resources)} resources, "
                        f"{sum(not r.custom for r in plan.resources)} components")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_token, count in sorted(Counter(r.type for r in plan.resources).items()):
        table.add_row(type_token, str(count))
    return table


def unwritable_reason(path: Path) -> str | None:
    """Why the plan could not be written to `path` (checked before planning), or None."""
    if path.is_dir():
        return "it is a directory (name a file, e.g. build/dev.plan.json)"
    if path.exists():
        return None if os.access(path, os.W_OK) else "the file is not writable"
    parent = path.parent
    if not parent.exists():
        return f"the directory {parent} does not exist (create it: mkdir -p {parent})"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=(__doc__ or "").splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help=f"stack name (a Pulumi.<stack>.yaml here: {', '.join(available_stacks())})")
    source.add_argument("--config-file", type=Path, help="any stack file, e.g. a copy you are editing")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the plan as JSON to FILE")
    parser.add_argument("--preview", action="store_true",
                        help="plan as `pulumi preview` would: values computed by AWS stay unknown")
    parser.add_argument("--quiet", action="store_true", help="print only the counts, not the tree")
    args = parser.parse_args(argv)
    console = Console()

    unwritable = args.json and unwritable_reason(args.json)
    if unwritable:  # before the plan, which takes a while: say it now, in one line
        print(f"cannot write the plan to {args.json}: {unwritable}", file=sys.stderr)
        return 1
    try:
        stack, cfg = load_named(args.stack, args.config_file)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return 1

    plan = plan_stack(cfg, stack, preview=args.preview)
    if not args.quiet:
        console.print(build_tree(plan))
    console.print(counts_table(plan))
    if args.json:
        try:
            args.json.write_text(json.dumps(plan.as_json(), indent=2) + "\n")
        except OSError as error:
            print(f"cannot write {args.json}: {error.strerror}", file=sys.stderr)
            return 1
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
