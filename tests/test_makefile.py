"""`make help` lists every target with what it does, and a first run says what it installs before pip goes quiet."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text()


def phony_targets() -> list[str]:
    (line,) = re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.M)
    return line.split()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_make_help_lists_every_target_with_its_description():
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    listed = {m.group(1): m.group(2) for m in re.finditer(r"^  ([a-z][a-z-]*) +(\S.*)$", result.stdout, re.M)}
    assert set(listed) == set(phony_targets()), result.stdout
    assert listed["plan"].startswith("The main job on the embedded default")
    assert listed["bench-serving"].startswith("Throughput and latency")
    assert ".venv" not in result.stderr and "pip" not in result.stdout  # help installs nothing


def test_each_virtualenv_says_what_it_installs_and_that_it_takes_minutes_before_pip():
    for stamp, venv in (("$(STAMP)", "$(VENV)"), ("$(SSTAMP)", "$(SVENV)"), ("$(SCSTAMP)", "$(SCVENV)")):
        recipe = MAKEFILE[MAKEFILE.index(f"\n{stamp}:"):]
        recipe = recipe[:recipe.index("\n\n")]
        before_pip = recipe[:recipe.index("pip install")]
        assert f'@echo "== setting up {venv}:' in before_pip, recipe
        assert "GB" in before_pip and "minute" in before_pip, recipe


def test_the_readme_says_the_first_run_takes_minutes_shows_progress_and_points_at_make_help():
    readme = (ROOT / "README.md").read_text()
    two = readme[readme.index("## Two commands on a fresh clone"):readme.index("\n## ", readme.index("## Two"))]
    assert "eight minutes" in two and "prints a line before each install" in two
    assert "`make help`" in two
    # Every virtual environment `make test` sets up is named there, with its size.
    makefile = (ROOT / "Makefile").read_text()
    venvs = re.findall(r"^\w*VENV\s*\?=\s*(\.venv[\w-]*)\s*$", makefile, re.M)
    assert {".venv", ".venv-serving", ".venv-scan", ".venv-llm"} <= set(venvs)
    assert all(f"`{venv}` (" in two for venv in venvs), venvs
