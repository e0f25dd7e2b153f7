"""An independent scanner agrees: checkov (pinned, its own venv) on the serving Dockerfile and the prod plan's
Kubernetes objects (tests/scan/manifests.py: every object the plan declares but Helm releases, and what KServe makes
for each InferenceService), with zero findings beyond the checked-in skip list, and no skip that no longer matches.

Not scanned: the Helm values. checkov judges a chart by its rendered templates, which needs `helm` and the charts
themselves (not reachable here); the values we set are asserted by the component tests instead.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.scan.manifests import write_manifests

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"
SKIPS = yaml.safe_load((Path(__file__).parent / "checkov-skips.yaml").read_text())


def checkov(*args: str) -> list[dict]:
    if not CHECKOV.exists():
        pytest.fail("checkov is not installed: run `make scan-setup` (make test does it)")
    result = subprocess.run([str(CHECKOV), *args, "-o", "json", "--quiet", "--skip-download", "--compact"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    assert sum(r["summary"]["passed"] for r in reports) > 0, "checkov checked nothing"
    return [c for r in reports for c in r["results"]["failed_checks"]]


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> list[dict]:
    manifests = tmp_path_factory.mktemp("manifests")
    assert len(write_manifests(manifests)) >= 8
    return (checkov("-d", str(manifests), "--framework", "kubernetes")
            + checkov("-f", "serving_image/Dockerfile", "--framework", "dockerfile"))


def skipped(finding: dict) -> bool:
    """A skip covers its check everywhere, or only on the objects it lists."""
    skip = SKIPS.get(finding["check_id"])
    return skip is not None and ("resources" not in skip or finding["resource"] in skip["resources"])


def test_every_skip_has_a_reason():
    assert SKIPS and all(isinstance(v, dict) and len(v.get("reason", "")) > 40 for v in SKIPS.values())
    assert all(set(v) <= {"reason", "resources"} for v in SKIPS.values())


def test_checkov_finds_nothing_beyond_the_explained_skips(findings):
    unexplained = sorted({f"{f['check_id']} {f['check_name']}: {f['resource']}" for f in findings
                          if not skipped(f)})
    assert unexplained == []


def test_no_skip_outlives_its_finding(findings):
    found = {(f["check_id"], f["resource"]) for f in findings}
    assert set(SKIPS) <= {check for check, _ in found}, "remove skips that no longer match a finding"
    stale = [(check, r) for check, skip in SKIPS.items() for r in skip.get("resources", []) if (check, r) not in found]
    assert stale == [], "remove objects from skips whose finding is gone"


def test_a_privileged_serving_pod_would_be_reported(tmp_path):
    """The scan is live: the rendered predictor with a privileged, root container is reported."""
    write_manifests(tmp_path)
    deployment = next(tmp_path.glob("deployment-*-predictor.yaml"))
    manifest = yaml.safe_load(deployment.read_text())
    manifest["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True, "runAsUser": 0}
    deployment.write_text(yaml.safe_dump(manifest))
    found = {f["check_id"] for f in checkov("-f", str(deployment), "--framework", "kubernetes")}
    assert {"CKV_K8S_16", "CKV_K8S_20"} <= found  # privileged; allowPrivilegeEscalation
