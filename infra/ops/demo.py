"""`make demo`: the operator's flow end to end against moto on 127.0.0.1, no AWS account.

Starts moto in this process on a free loopback port, plays the part of `pulumi up` where the flow needs AWS
resources to exist (the bucket and repository, then an endpoint with an A/B candidate and its guard alarms), and runs
the real CLI (`python -m infra.ops ...`) against it: release the sample model (twice: one version), preflight the dev
stack, rollout status/promote/rollback, and a promote that a firing alarm rolls back. Stops moto when done.

What moto cannot show is said where it happens: it has no SageMaker Service Quotas (preflight marks them unverified
and the demo passes --allow-unverified), it rejects GPU instance types (only that validation is patched here), and it
has no inference components, which is how Pulumi.dev.yaml serves its model: the rollout steps therefore use a copy of
the dev stack file whose model is a plain endpoint with an A/B candidate (`ab_variants`), the case `promote` is for.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from moto.server import ThreadedMotoServer
from rich.console import Console
from rich.rule import Rule

from components.names import SERVER_ERROR_RATE, alarm_name

from . import demo_account
from .clients import Clients

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "serving_image" / "sample_model"
REGION = "us-east-1"
ENDPOINT = "mlserve-dev-resnet50"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": REGION,
               "AWS_EC2_METADATA_DISABLED": "true"}


def ab_stack_file(directory: Path) -> Path:
    """Pulumi.dev.yaml with its model on a plain endpoint beside a 10% candidate: what `rollout promote` shifts."""
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    model = raw["config"]["mlserve:deployments"][0]
    for key in ("hosting", "inference_component", "endpoint"):
        model.pop(key, None)
    model["autoscaling"]["min"] = 1
    model["ab_variants"] = [{"name": "candidate", "model": dict(model["model"]), "weight_percent": 10}]
    path = directory / "Pulumi.dev-ab.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Demo:
    def __init__(self, url: str, out: Console, ab_stack: Path):
        self.url, self.out = url, out
        self.rollout = ["--stack", "dev", "--config-file", str(ab_stack), "--deployment", "resnet50"]
        # moto's credentials, for this process's stand-ins and for each CLI call; no real account is reachable.
        os.environ.update(CREDENTIALS)
        self.env = {**os.environ, "COLUMNS": "160"}
        self.clients = Clients(REGION, url)

    def ops(self, *args: str, expect: int = 0) -> None:
        command = [sys.executable, "-m", "infra.ops", *args, "--endpoint-url", self.url]
        self.out.print(f"[bold cyan]$ python -m infra.ops {' '.join(args)}[/]")
        code = subprocess.run(command, cwd=ROOT, env=self.env, timeout=300).returncode
        if code != expect:
            raise SystemExit(f"demo: `{' '.join(args)}` exited {code}, expected {expect}")

    def step(self, title: str) -> None:
        self.out.print(Rule(title))

    def platform(self) -> None:
        demo_account.platform(self.clients)
        self.out.print(f"created bucket mlserve-dev-models, repository {demo_account.REPOSITORY}, pushed and scanned "
                       f"{demo_account.IMAGE_TAG} (what `pulumi up` and `docker push` do for real)")

    def endpoint(self, model_uri: str) -> None:
        demo_account.weighted_endpoint(self.clients, ENDPOINT, model_uri=model_uri)
        self.out.print(f"created endpoint {ENDPOINT}: primary 90%, candidate 10%, guard alarms OK "
                       f"(moto has no PutCompositeAlarm: the service-unhealthy alarm shows MISSING)")

    def run(self) -> None:
        self.step("1. the platform exists (stand-in for pulumi up)")
        self.platform()
        self.step("2. release the sample model, twice: one version")
        self.ops("release-model", "--stack", "dev", "--deployment", "resnet50", "--model-dir", str(SAMPLE))
        self.ops("release-model", "--stack", "dev", "--deployment", "resnet50", "--model-dir", str(SAMPLE))
        self.step("3. preflight the dev stack (moto has no SageMaker quotas: they show as unverified)")
        self.ops("preflight", "--stack", "dev", "--allow-unverified")
        self.step("4. the endpoint with an A/B candidate (stand-in for pulumi up of the dev stack file with "
                  "ab_variants)")
        model_uri = "s3://mlserve-dev-models/resnet50/925ccfc0e86ea74c/model.tar.gz"
        self.endpoint(model_uri)
        self.ops("rollout", "status", *self.rollout)
        self.step("5. promote the candidate in steps, baking each")
        self.ops("rollout", "promote", *self.rollout, "--variant", "candidate",
                 "--steps", "25", "50", "--bake-seconds", "2", "--poll-seconds", "1")
        self.step("6. roll back to primary at once")
        self.ops("rollout", "rollback", *self.rollout, "--to-variant", "primary")
        self.step("7. a promote whose guard alarm fires mid-bake is rolled back (exit 1)")
        self.clients.sagemaker.update_endpoint_weights_and_capacities(EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[
            {"VariantName": "primary", "DesiredWeight": 90.0}, {"VariantName": "candidate", "DesiredWeight": 10.0}])
        timer = threading.Timer(3.0, lambda: self.clients.cloudwatch.set_alarm_state(
            AlarmName=alarm_name(ENDPOINT, SERVER_ERROR_RATE), StateValue="ALARM", StateReason="demo: 5xx above the SLO"))
        timer.start()
        try:
            self.ops("rollout", "promote", *self.rollout, "--variant", "candidate",
                     "--steps", "25", "--bake-seconds", "30", "--poll-seconds", "1", expect=1)
        finally:
            timer.cancel()
        self.ops("rollout", "status", *self.rollout)
        self.out.print("(moto blanks the instance counts when only weights are sent; AWS keeps what autoscaling set)")


class MotoGaps(logging.Handler):
    """Keeps the moto server's request errors off the terminal (werkzeug prints a full traceback for each) and
    remembers what they were, so the demo can say in one line which calls moto could not answer."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.gaps: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        lines = [line for line in record.getMessage().strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else record.getMessage()
        self.gaps[reason] = self.gaps.get(reason, 0) + 1


def main() -> int:
    out = Console(width=160)
    # moto's hard-coded SageMaker instance list rejects ml.g5/g6/p4d/p5, which AWS offers; only that check is patched.
    from moto.sagemaker.models import FakeEndpointConfig

    FakeEndpointConfig.validate_instance_type = lambda self, instance_type: None
    gaps = MotoGaps()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.ERROR)  # one line per request otherwise
    werkzeug.handlers, werkzeug.propagate = [gaps], False
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: a free one, no race
    server.start()
    _, port = server.get_host_and_port()
    started = time.monotonic()
    out.print(f"moto on http://127.0.0.1:{port} (this process; stopped at the end)")
    try:
        with tempfile.TemporaryDirectory(prefix="mlserve-demo-") as scratch:
            Demo(f"http://127.0.0.1:{port}", out, ab_stack_file(Path(scratch))).run()
    finally:
        server.stop()
        out.print(f"moto stopped; demo took {time.monotonic() - started:.1f} s")
        for reason, count in sorted(gaps.gaps.items()):
            out.print(f"moto could not answer {count} request(s): {reason}")
    out.print("[green]demo complete[/]: release, preflight and rollout ran against moto. For real AWS, see the README's first deployment.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
