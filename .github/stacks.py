"""The workflow's stack matrices, computed from the stack files: `.venv/bin/python .github/stacks.py >> "$GITHUB_OUTPUT"`.

Every `Pulumi.<stack>.yaml` is a stack, and the test job checks each offline (`make test`, `make policy`). A stack with
`mlserve:ci` is also previewed on pull requests (runner github) and deployed from main: the stacks of environment
dev first (job `deploy`), then those of prod (job `deploy-prod`, after them). Each row names the policy config that
judges the stack (its own, else its environment's: `policies.check.policy_config_for`), the role the job assumes and,
for runner codebuild, the build and its source bucket. Prints `preview=`, `deploy=` and `deploy_prod=` lines (JSON
lists); a stack file that does not validate stops it with the validation's message and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.ci_access import ci_role_arn
from components.in_vpc_deployer import deploy_project_name, deploy_source_bucket
from infra.config import ConfigError, available_stacks, load_stack
from policies.check import PROJECT_ROOT, policy_config_for


def rows(root: Path = PROJECT_ROOT) -> list[dict[str, Any]]:
    found = []
    for stack in available_stacks(root):
        cfg = load_stack(stack, root)
        policy_config, _ = policy_config_for(stack, cfg.environment)
        row: dict[str, Any] = {"stack": stack, "environment": cfg.environment, "region": cfg.region,
                               "policy_config": str(policy_config.relative_to(PROJECT_ROOT))}
        if cfg.ci is not None and cfg.account_id is not None:  # validation requires the account with ci
            ci = cfg.ci
            row.update(github_environment=ci.environment, runner=ci.runner, backend_url=ci.backend_url,
                       pulumi_version=ci.pulumi_version,
                       role=ci_role_arn(cfg.account_id, stack, "deploy" if ci.runner == "github" else "start"))
            if ci.runner == "github":
                row["preview_role"] = ci_role_arn(cfg.account_id, stack, "preview")
            else:
                row.update(project=deploy_project_name(stack), source_bucket=deploy_source_bucket(stack, cfg.account_id))
        found.append(row)
    return found


def matrices(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    deployed = [r for r in found if "runner" in r]
    return {"preview": [r for r in deployed if r["runner"] == "github"],
            "deploy": [r for r in deployed if r["environment"] != "prod"],
            "deploy_prod": [r for r in deployed if r["environment"] == "prod"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="where the stack files are")
    args = parser.parse_args(argv)
    try:
        found = rows(args.root)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return 1
    for name, rows_ in matrices(found).items():
        print(f"{name}={json.dumps(rows_, separators=(',', ':'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
