"""The CRDs in schemas/ are the pinned releases' own: a chart pin and the copied CRDs cannot drift apart."""

from __future__ import annotations

import re

import pytest
import yaml

from infra.config.loader import available_stacks, load_stack
from tests.kubernetes.schemas import CRD_FILES, SCHEMAS, load_crd

CRD_RELEASES = yaml.safe_load((SCHEMAS / "versions.yaml").read_text())
CLUSTER_STACKS = [s for s in available_stacks() if load_stack(s).cluster is not None]


def release(version: str) -> str:
    return version if version.startswith("v") else f"v{version}"


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_the_chart_pins_are_the_releases_whose_schemas_and_facts_the_tests_read(stack):
    charts = load_stack(stack).cluster.charts
    assert release(charts.kserve) == CRD_RELEASES["kserve"]
    assert release(charts.keda) == CRD_RELEASES["keda"]
    assert release(charts.karpenter) == CRD_RELEASES["karpenter"]
    assert release(charts.dcgm_exporter) == CRD_RELEASES["dcgm-exporter"]


def test_at_least_one_stack_runs_a_cluster_so_the_pin_check_is_not_vacuous():
    assert CLUSTER_STACKS


def test_gpu_alerts_query_only_metrics_the_pinned_dcgm_exporter_publishes_by_default():
    from components.cluster_addons import GPU_HEALTH_RULES

    published = {line.split(",")[0].strip() for line in (SCHEMAS / "dcgm-exporter" / "default-counters.csv")
                 .read_text().splitlines() if line.strip() and not line.startswith("#")}
    queried = {name for rule in GPU_HEALTH_RULES for name in re.findall(r"DCGM_\w+", rule["expr"])}
    assert queried == {"DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"}
    assert queried <= published


def test_every_crd_the_tests_validate_with_is_a_copied_release_file():
    folders = {path.split("/")[0] for path in CRD_FILES.values()}
    assert folders <= set(CRD_RELEASES)
    for path in CRD_FILES.values():
        assert load_crd(path)["kind"] == "CustomResourceDefinition"
    readme = (SCHEMAS / "README.md").read_text()
    assert all(f"| {folder}/ |" in readme and f"| {CRD_RELEASES[folder]} |" in readme for folder in CRD_RELEASES)
