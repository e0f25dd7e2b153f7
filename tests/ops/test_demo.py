"""`make demo` runs start to finish against moto on 127.0.0.1 and leaves nothing running."""

import subprocess
import sys

from infra.ops.demo import ROOT


def test_demo_runs_start_to_finish_and_stops_moto():
    result = subprocess.run([sys.executable, "-m", "infra.ops.demo"], cwd=ROOT, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.count("already released (no new version)") == 1
    assert "preflight: 3 passed, 0 failed, 1 unverified" in out
    assert "promoted: candidate takes 100% of mlserve-dev-resnet50" in out
    assert "rolled back: all traffic on primary" in out
    assert "guard alarm in ALARM: mlserve-dev-resnet50-5xx-rate: rolling back at once" in out
    assert "set weights candidate=10, primary=90 (rollback to the starting weights)" in out
    assert "moto stopped" in out and "demo complete" in out
    # Nothing the demo starts prints a traceback; what moto could not answer is said in one line instead.
    assert "Traceback" not in out + result.stderr and "Error on request" not in out + result.stderr
    assert "moto could not answer" in out and "list_service_quotas" in out
