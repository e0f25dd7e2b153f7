"""The first deployment as the README numbers it and docs/first-deployment.md details it: the steps come in the order
that works, and every `infra.ops` command the pages show is one the CLI accepts as written."""

import re
import shlex
from pathlib import Path

import pytest

from infra.ops.__main__ import build_parser
from infra.ops.bootstrap import default_bucket, s3_login_line, secrets_provider

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DETAIL = (ROOT / "docs" / "first-deployment.md").read_text()


def numbered_steps() -> list[str]:
    section = README[README.index("## First deployment"):README.index("## Where everything else is")]
    return re.split(r"(?m)^\d+\. ", section)[1:]


def test_the_readme_steps_come_in_the_order_that_works():
    steps = numbered_steps()
    milestones = ["infra.ops bootstrap", "mlserve:phase stores", "infra.ops preflight", "pulumi up", "Push the serving image",
                  "release-model", "mlserve:phase all", "infra.ops verify", "Prod"]
    found = [next((i for i, step in enumerate(steps) if milestone in step), None) for milestone in milestones]
    assert None not in found, dict(zip(milestones, found, strict=True))
    assert found == sorted(found), dict(zip(milestones, found, strict=True))


def commands(text: str) -> list[list[str]]:
    """Each `python -m infra.ops ...` line of the page's code blocks, as argv (comments and placeholders as written)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if "-m infra.ops " in line:
                argv = shlex.split(line.split("-m infra.ops ", 1)[1].split("#", 1)[0])
                found.append(argv)
    return found


@pytest.mark.parametrize("argv", commands(DETAIL), ids=lambda argv: " ".join(argv))
def test_every_command_the_page_shows_is_one_the_cli_accepts(argv):
    build_parser().parse_args(argv)  # SystemExit (argparse's refusal) fails the test


def test_the_page_shows_every_new_command():
    shown = {argv[0] for argv in commands(DETAIL)}
    assert {"bootstrap", "preflight", "release-model", "verify"} <= shown


def test_the_login_lines_shown_are_the_ones_bootstrap_prints():
    bucket = default_bucket("210987654321", "us-east-1")
    assert s3_login_line(bucket, "us-east-1") in DETAIL
    assert f"pulumi stack init dev --secrets-provider '{secrets_provider('mlserve-pulumi-secrets', 'us-east-1')}'" \
        in DETAIL
