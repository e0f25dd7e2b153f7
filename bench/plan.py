"""`python -m bench.plan`: how long the offline plan takes as a stack grows, in seconds per deployment.

Prod's SageMaker deployment copied N times (names d000, d001, ...; the stack's other settings as they are), planned
under the mock engine, side by side for each N in one run. The figure every test and `make plan` pays for.
"""

from __future__ import annotations

import argparse
import copy
import time

from infra.config import validate
from infra.config.loader import read_stack_file, stack_file
from infra.plan import plan_stack


def config_with(n: int) -> dict:
    raw = copy.deepcopy(read_stack_file(stack_file("prod")))
    template = next(d for d in raw["mlserve:deployments"] if d["backend"] == "sagemaker")
    raw.pop("mlserve:cluster", None)
    raw["mlserve:deployments"] = []
    for i in range(n):
        d = copy.deepcopy(template)
        d["name"] = f"d{i:03d}"
        raw["mlserve:deployments"].append(d)
    raw["mlserve:budget"]["monthly_usd"] = 10_000_000
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100", help="deployment counts to plan, comma-separated")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    plan_stack(validate(config_with(1), "bench"), "bench")  # imports and first-call costs out of the figures
    # CPU seconds of this process beside wall seconds: on a shared machine the CPU figure is the steadier one.
    print(f"{'deployments':>11} {'resources':>9} {'wall s':>7} {'cpu s':>7} {'cpu s/deployment':>17}")
    for n in sizes:
        cfg = validate(config_with(n), "bench")
        wall, cpu = time.perf_counter(), time.process_time()
        plan = plan_stack(cfg, "bench")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{n:>11} {len(plan.resources):>9} {wall:>7.2f} {cpu:>7.2f} {cpu / n:>17.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
