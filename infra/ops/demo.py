"""`make demo`: the operator's flow end to end against moto on 127.0.0.1, no AWS account.

Starts moto in this process on a free loopback port, plays the part of `pulumi up` where the flow needs AWS
resources to exist (the bucket and repository, then an endpoint with an A/B candidate and its guard alarms), and runs
the real CLI (`python -m infra.ops ...`) against it: release the sample model (twice: one version), preflight the dev
stack, rollout status/promote/rollback, and a promote that a firing alarm rolls back. Stops moto when done.

What moto cannot show is said where it happens: it has no SageMaker Service Quotas (preflight marks them unverified
and the demo passes --allow-unverified), and it rejects GPU instance types (only that validation is patched here).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer
from rich.console import Console
from rich.rule import Rule

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "serving_image" / "sample_model"
REGION = "us-east-1"
ENDPOINT = "mlserve-dev-resnet50"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": REGION,
               "AWS_EC2_METADATA_DISABLED": "true"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Demo:
    def __init__(self, url: str, out: Console):
        self.url, self.out = url, out
        self.env = {**os.environ, **CREDENTIALS, "COLUMNS": "160"}
        self.session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name=REGION)

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.url)

    def ops(self, *args: str, expect: int = 0) -> None:
        command = [sys.executable, "-m", "infra.ops", *args, "--endpoint-url", self.url]
        self.out.print(f"[bold cyan]$ python -m infra.ops {' '.join(args)}[/]")
        code = subprocess.run(command, cwd=ROOT, env=self.env, timeout=300).returncode
        if code != expect:
            raise SystemExit(f"demo: `{' '.join(args)}` exited {code}, expected {expect}")

    def step(self, title: str) -> None:
        self.out.print(Rule(title))

    def platform(self) -> None:
        """Stand-in for `pulumi up` of the platform plus an image push."""
        s3, ecr = self.client("s3"), self.client("ecr")
        s3.create_bucket(Bucket="mlserve-dev-models")
        s3.put_bucket_versioning(Bucket="mlserve-dev-models", VersioningConfiguration={"Status": "Enabled"})
        ecr.create_repository(repositoryName="mlserve/triton", imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": True})
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "application/json"},
                    "layers": []}
        ecr.put_image(repositoryName="mlserve/triton", imageManifest=json.dumps(manifest), imageTag="24.12-trt10.7-r1")
        ecr.start_image_scan(repositoryName="mlserve/triton", imageId={"imageTag": "24.12-trt10.7-r1"})
        self.out.print("created bucket mlserve-dev-models, repository mlserve/triton, pushed and scanned "
                       "24.12-trt10.7-r1 (what `pulumi up` and `docker push` do for real)")

    def endpoint(self, model_uri: str) -> None:
        """Stand-in for `pulumi up` with an A/B candidate (ab_variants: candidate at 10%) and its guard alarms."""
        sagemaker, cloudwatch = self.client("sagemaker"), self.client("cloudwatch")
        role = "arn:aws:iam::123456789012:role/mlserve-dev-resnet50-sagemaker"
        image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlserve/triton:24.12-trt10.7-r1"
        variants = []
        for name, weight in (("primary", 90.0), ("candidate", 10.0)):
            sagemaker.create_model(ModelName=f"{ENDPOINT}-{name}", ExecutionRoleArn=role,
                                   PrimaryContainer={"Image": image, "ModelDataUrl": model_uri})
            variants.append({"VariantName": name, "ModelName": f"{ENDPOINT}-{name}", "InitialInstanceCount": 1,
                             "InstanceType": "ml.g5.xlarge", "InitialVariantWeight": weight})
        sagemaker.create_endpoint_config(EndpointConfigName=f"{ENDPOINT}-config", ProductionVariants=variants)
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-config")
        for role_name, metric in (("p99-latency", "ModelLatency"), ("5xx-rate", "Invocation5XXErrors")):
            cloudwatch.put_metric_alarm(
                AlarmName=f"{ENDPOINT}-{role_name}", Namespace="AWS/SageMaker", MetricName=metric,
                Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}])
            cloudwatch.set_alarm_state(AlarmName=f"{ENDPOINT}-{role_name}", StateValue="OK", StateReason="demo")
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
        self.step("4. the endpoint with an A/B candidate (stand-in for pulumi up)")
        model_uri = "s3://mlserve-dev-models/resnet50/09e27ff427f0518e/model.tar.gz"
        self.endpoint(model_uri)
        self.ops("rollout", "status", "--stack", "dev", "--deployment", "resnet50")
        self.step("5. promote the candidate in steps, baking each")
        self.ops("rollout", "promote", "--stack", "dev", "--deployment", "resnet50", "--variant", "candidate",
                 "--steps", "25", "50", "--bake-seconds", "2", "--poll-seconds", "1")
        self.step("6. roll back to primary at once")
        self.ops("rollout", "rollback", "--stack", "dev", "--deployment", "resnet50", "--to-variant", "primary")
        self.step("7. a promote whose guard alarm fires mid-bake is rolled back (exit 1)")
        self.client("sagemaker").update_endpoint_weights_and_capacities(EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[
            {"VariantName": "primary", "DesiredWeight": 90.0}, {"VariantName": "candidate", "DesiredWeight": 10.0}])
        timer = threading.Timer(3.0, lambda: self.client("cloudwatch").set_alarm_state(
            AlarmName=f"{ENDPOINT}-5xx-rate", StateValue="ALARM", StateReason="demo: 5xx above the SLO"))
        timer.start()
        try:
            self.ops("rollout", "promote", "--stack", "dev", "--deployment", "resnet50", "--variant", "candidate",
                     "--steps", "25", "--bake-seconds", "30", "--poll-seconds", "1", expect=1)
        finally:
            timer.cancel()
        self.ops("rollout", "status", "--stack", "dev", "--deployment", "resnet50")
        self.out.print("(moto blanks the instance counts when only weights are sent; AWS keeps what autoscaling set)")


def main() -> int:
    out = Console(width=160)
    # moto's hard-coded SageMaker instance list rejects ml.g5/g6/p4d/p5, which AWS offers; only that check is patched.
    from moto.sagemaker.models import FakeEndpointConfig

    FakeEndpointConfig.validate_instance_type = lambda self, instance_type: None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    started = time.monotonic()
    out.print(f"moto on http://127.0.0.1:{port} (this process; stopped at the end)")
    try:
        Demo(f"http://127.0.0.1:{port}", out).run()
    finally:
        server.stop()
        out.print(f"moto stopped; demo took {time.monotonic() - started:.1f} s")
    out.print("[green]demo complete[/]: release, preflight and rollout ran against moto. For real AWS, see the README.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
