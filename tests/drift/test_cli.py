"""`python -m drift run` outside an AWS environment: one clear line on stderr and a non-zero exit, never a traceback.
Exit codes and wording as `python -m infra.ops` (2: what the caller must supply, an argument or credentials; 1: AWS
refused or failed). Each run is a subprocess with no AWS region, no credentials, no config files and instance metadata
off, so nothing here can reach the network."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--bucket", "mlserve-dev-models", "--capture-prefix", "data-capture/e/primary/",
       "--baseline-key", "resnet50/baseline/baseline.json", "--deployment", "resnet50"]


def drift(tmp_path, *args, **extra_env):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds"),
                "AWS_EC2_METADATA_DISABLED": "true", **extra_env})
    result = subprocess.run([sys.executable, "-m", "drift", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result


def test_run_without_a_region_says_so_in_one_line_and_exits_2(tmp_path):
    result = drift(tmp_path, *RUN)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines() == [
        "drift: no AWS region (pass --region, or set AWS_REGION or AWS_DEFAULT_REGION, or AWS_PROFILE with a region)"]


def test_run_without_credentials_says_so_in_one_line_and_exits_2_as_infra_ops_does(tmp_path):
    result = drift(tmp_path, *RUN, "--region", "us-east-1")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    # The line `python -m infra.ops drift run` prints for the same case (its NoCredentialsError handler).
    assert result.stderr.splitlines() == ["drift: no AWS credentials (set AWS_PROFILE or run `aws sso login`)"]


def test_run_with_a_missing_aws_profile_says_so_in_one_line_and_exits_1(tmp_path):
    result = drift(tmp_path, *RUN, "--region", "us-east-1", AWS_PROFILE="no-such-profile")
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert result.stderr.splitlines() == ["drift: The config profile (no-such-profile) could not be found"]


def test_run_when_aws_refuses_says_what_was_refused_and_exits_1(monkeypatch, capsys):
    """In-process against moto (nothing leaves the machine): the bucket has no baseline at the key."""
    import boto3
    from moto import mock_aws

    from drift.__main__ import main

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="mlserve-dev-models")
        assert main(RUN) == 1
    assert capsys.readouterr().err.splitlines() == [
        "drift: AWS refused GetObject: NoSuchKey: The specified key does not exist."]
