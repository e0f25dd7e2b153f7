"""The README stays short and every link in it, in docs/ and in examples/ leads somewhere: a file that exists and,
for a `#fragment`, a heading of that file (as GitHub makes its anchors)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "examples" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# Pages another change writes; a link to one is checked once it exists.
WRITTEN_ELSEWHERE = {ROOT / "docs" / "benchmark.md"}
# How the work was done is not what a user reads.
PROCESS_NOTES = ("this wave", "was lent", "this session", "this task", "this checkout", "machines this was built on")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but hyphens and underscores dropped, spaces to hyphens."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        fenced ^= line.startswith("```")
        if not fenced and (heading := re.match(r"^#{1,6} (.+)$", line)):
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(), flags=re.S))  # code is not a link
    return [target for target in LINK.findall(text) if not target.startswith(("http://", "https://", "mailto:"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if resolved in WRITTEN_ELSEWHERE and not resolved.exists():
            continue
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_the_readme_is_short_and_points_at_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    assert set((ROOT / "docs").glob("*.md")) - linked == set()


def test_the_readme_keeps_the_two_commands_and_a_numbered_first_deployment():
    readme = (ROOT / "README.md").read_text()
    two = readme[readme.index("## Two commands on a fresh clone"):]
    assert "make plan   #" in two and "make test   #" in two
    first = readme[readme.index("## First deployment"):readme.index("## Where everything else is")]
    assert [int(n) for n in re.findall(r"^(\d+)\. ", first, re.M)] == list(range(1, 11))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_say_what_is_not_how_it_was_made(page):
    text = page.read_text().lower()
    assert [note for note in PROCESS_NOTES if note in text] == []


def test_the_anchor_rule_is_githubs():
    page = ROOT / "docs" / "serving-image.md"
    assert "capacity-measured-python--m-infraops-profile-and-load-tested-make-loadtest" in anchors(page)
    assert "build-and-push-it-for-real-your-machine-docker-aws-credentials" in anchors(page)
