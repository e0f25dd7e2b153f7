"""The stack outputs (what `pulumi stack output` gives), as a table generated from the plans of the checked-in stacks.

    python -m infra.plan.outputs            # print it
    python -m infra.plan.outputs --write    # replace docs/outputs.md's section between its markers

Every output `infra.program.declare` returns needs a meaning in OUTPUTS: rendering refuses an undescribed one, and
a test fails when docs/outputs.md and this rendering differ, so the table cannot drift from the program.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import load_stack
from infra.config.loader import available_stacks
from infra.generated_section import GeneratedSection

from . import Plan, plan_stack

DOC = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"
START, END = "<!-- stack-outputs:start -->", "<!-- stack-outputs:end -->"
SECTION = GeneratedSection(DOC, START, END)
SECRET = "[secret]"  # what the offline plan records for a secret output (infra.plan.engine.run)
EXAMPLE_STACK = "prod"


@dataclass(frozen=True)
class Output:
    meaning: str
    keyed_by: str = ""  # a map: what its keys are
    fields: dict[str, str] = field(default_factory=dict)  # a map of objects: what each field of an object is
    shape: str = ""  # where the plan cannot show it (a secret)


OUTPUTS: dict[str, Output] = {
    "region": Output("The AWS region of every resource of the stack (`mlserve:region`)"),
    "alert_topic_arn": Output("The stack's KMS-encrypted SNS topic: every alarm, budget alert and Alertmanager "
                              "alert notifies it (subscribe more endpoints here)"),
    "dashboard": Output("Name of the stack's CloudWatch dashboard"),
    "endpoints": Output(
        "Each SageMaker deployment, by its name", keyed_by="deployment", fields={
            "api_url": "The gateway's URL for the deployment: `POST` the v2 request body with `x-api-key` (and SigV4 "
                       "with `gateway.authorization: iam`)",
            "endpoint_name": "The SageMaker endpoint (for `InvokeEndpoint`, `infra.ops rollout`, CloudWatch)",
            "invoke_url": "SageMaker's runtime URL of the endpoint (SigV4-signed `InvokeEndpoint`, inside AWS)",
            "alarms": "The deployment's CloudWatch alarms: p99 latency, 5xx and 4xx rates, GPU utilization and memory",
        }),
    "api_key_ids": Output("Each deployment's API key per usage-plan tier, by `<deployment>/<tier>`: the ids "
                          "`aws apigateway get-api-key --include-value` takes", keyed_by="deployment/tier"),
    "api_key_values": Output("The same keys' values, what clients send as `x-api-key` (a secret: "
                             "`pulumi stack output api_key_values --show-secrets`)",
                             shape="map of deployment/tier to string (secret)"),
    "kms_key_arn": Output("The stack's customer-managed KMS key (buckets, logs, topics, volumes, endpoint storage)"),
    "vpc_id": Output("The stack's VPC"),
    "private_subnet_ids": Output("The private subnets, one per availability zone"),
    "model_bucket": Output("The versioned, KMS-encrypted model bucket: released models, data capture, async inputs "
                           "and results, drift baselines"),
    "image_repositories": Output("The stack's ECR repositories (`mlserve-<stack>/<image.repository>`) and their "
                                 "URLs: push the serving image there", keyed_by="repository"),
    "cluster_name": Output("The EKS cluster (stacks with `mlserve:cluster`)"),
    "kubeconfig": Output("A kubeconfig for the cluster whose tokens come from `aws eks get-token` (stacks with "
                         "`mlserve:cluster`): `pulumi stack output kubeconfig --show-secrets > kubeconfig`",
                         shape="string"),
    "kserve_api_urls": Output("Each KServe deployment's gateway URL, by deployment name: `POST` the v2 request body",
                              keyed_by="deployment"),
}


class UndescribedOutput(KeyError):
    pass


def _shape(value: Any, spec: Output) -> str:
    if spec.shape:
        return spec.shape
    if isinstance(value, dict):
        inner = {type(v).__name__ for v in value.values()}
        of = "object" if inner == {"dict"} else "string" if inner <= {"str"} else "value"
        return f"map of {spec.keyed_by or 'key'} to {of}"
    if isinstance(value, list):
        return "list of strings" if all(isinstance(v, str) for v in value) else "list"
    return {"str": "string", "int": "number", "float": "number", "bool": "boolean"}.get(type(value).__name__, "value")


def _field_shape(values: list[Any]) -> str:
    value = values[0]
    if isinstance(value, list):
        return "list of strings"
    return "string" if isinstance(value, str) else type(value).__name__


def render(plans: dict[str, Plan]) -> str:
    """The table of every output the given plans (stack name -> plan) return, and the example stack's values."""
    names = list(dict.fromkeys(name for plan in plans.values() for name in plan.outputs))
    undescribed = [name for name in names if name not in OUTPUTS]
    if undescribed:
        raise UndescribedOutput(f"describe the stack output(s) {', '.join(undescribed)} in OUTPUTS "
                                "(infra/plan/outputs.py), then run `python -m infra.plan.outputs --write`")
    lines = ["| output | stacks | secret | shape | meaning |", "| --- | --- | --- | --- | --- |"]
    for name in [n for n in OUTPUTS if n in names]:
        spec = OUTPUTS[name]
        having = [stack for stack, plan in plans.items() if name in plan.outputs]
        values = [plans[stack].outputs[name] for stack in having]
        secret = any(v == SECRET for v in values)
        lines.append(f"| `{name}` | {', '.join(having)} | {'yes' if secret else 'no'} | "
                     f"{_shape(values[0], spec)} | {spec.meaning} |")
        objects = [o for v in values if isinstance(v, dict) for o in v.values() if isinstance(o, dict)]
        present = list(dict.fromkeys(k for o in objects for k in o))
        for key in [k for k in present if k not in spec.fields]:
            raise UndescribedOutput(f"describe the field {key} of stack output {name} in OUTPUTS "
                                    "(infra/plan/outputs.py), then run `python -m infra.plan.outputs --write`")
        for key in [k for k in spec.fields if k in present]:
            lines.append(f"| `{name}.<{spec.keyed_by}>.{key}` | {', '.join(having)} | no | "
                         f"{_field_shape([o[key] for o in objects if key in o])} | {spec.fields[key]} |")
    example = plans.get(EXAMPLE_STACK) or next(iter(plans.values()))
    lines += ["", f"`pulumi stack output --json` for {example.stack}, as the offline plan computes it (ids, ARNs and "
              "URLs are the mock engine's stand-ins; a secret shows as `[secret]`, as without `--show-secrets`):", "",
              "```json", json.dumps(example.outputs, indent=2, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def checked_in_plans() -> dict[str, Plan]:
    return {stack: plan_stack(load_stack(stack), stack) for stack in available_stacks()}


def doc_section(text: str) -> str:
    return SECTION.read(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan.outputs", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {DOC.name}")
    args = parser.parse_args(argv)
    table = render(checked_in_plans())
    if not args.write:
        sys.stdout.write(table)
        return 0
    SECTION.write(table)
    print(f"wrote the stack outputs into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
