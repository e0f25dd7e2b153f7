"""The pictures of the dashboards' layouts (docs/monitoring.md) are drawn from what the stacks declare, and kept current."""

from infra.pictures import OUT, pictures
from tests.harness import stack_plan


def test_the_checked_in_pictures_match_the_stacks_dashboards():
    drawn = {name: text for stack in ("dev", "prod") for name, text in pictures(stack_plan(stack)).items()}
    assert set(drawn) == {"cloudwatch-dev.svg", "cloudwatch-prod.svg", "grafana-prod-reranker.svg"}
    for name, text in drawn.items():
        assert (OUT / name).read_text() == text, f"run `python -m infra.pictures --write` ({name} is stale)"


def test_a_picture_shows_every_panel_by_title():
    (grafana,) = [text for name, text in pictures(stack_plan("prod")).items() if name.startswith("grafana-")]
    assert grafana.count("<rect ") == 8 and ">KEDA&#x27;s signal: in-flight requests<" in grafana
