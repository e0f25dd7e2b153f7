"""The demo's account: what `pulumi up` and `docker push` leave in an AWS account, made directly in a local AWS API
(moto), so that `make demo` can release, preflight and roll out without either.

Product code (`make demo` runs it); the tests of the operator tools start from the same account, so they make it
here too rather than keep a copy.
"""

from __future__ import annotations

import json

from components.names import P99_LATENCY, SERVER_ERROR_RATE, image_repository_name

from .clients import Clients

ACCOUNT = "123456789012"  # moto's account
IMAGE_TAG = "26.04-trt10-r1"
REPOSITORY = image_repository_name("dev", "triton")
GUARD_METRICS = ((P99_LATENCY, "ModelLatency"), (SERVER_ERROR_RATE, "Invocation5XXErrors"))


def platform(clients: Clients, bucket: str = "mlserve-dev-models", repository: str = REPOSITORY,
             tag: str = IMAGE_TAG) -> None:
    """The versioned model bucket, the immutable ECR repository and a pushed, scanned serving image."""
    clients.s3.create_bucket(Bucket=bucket)
    clients.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    clients.ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE",
                                  imageScanningConfiguration={"scanOnPush": True})
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "application/json"},
                "layers": []}
    clients.ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
    clients.ecr.start_image_scan(repositoryName=repository, imageId={"imageTag": tag})


def weighted_endpoint(clients: Clients, name: str, weights=(("primary", 90.0), ("candidate", 10.0)),
                      instance_type: str = "ml.g5.xlarge", count: int = 1,
                      model_uri: str = "s3://mlserve-dev-models/resnet50/x/model.tar.gz") -> None:
    """An endpoint with weighted variants (config `ab_variants`) and its guard alarms, all OK.

    moto rejects GPU instance types unless its instance-type check is patched by the caller."""
    role = f"arn:aws:iam::{ACCOUNT}:role/{name}-sagemaker"
    image = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:{IMAGE_TAG}"
    variants = []
    for variant, weight in weights:
        clients.sagemaker.create_model(ModelName=f"{name}-{variant}", ExecutionRoleArn=role,
                                       PrimaryContainer={"Image": image, "ModelDataUrl": model_uri})
        variants.append({"VariantName": variant, "ModelName": f"{name}-{variant}", "InitialInstanceCount": count,
                         "InstanceType": instance_type, "InitialVariantWeight": weight})
    clients.sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config-1", ProductionVariants=variants)
    clients.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config-1")
    guard_alarms(clients, name, {"EndpointName": name, "VariantName": "primary"})


def guard_alarms(clients: Clients, name: str, dimensions: dict[str, str]) -> None:
    """The rollback alarms EndpointAlarms declares for `name` (an endpoint or a component), all OK."""
    for role_name, metric in GUARD_METRICS:
        clients.cloudwatch.put_metric_alarm(
            AlarmName=f"{name}-{role_name}", Namespace="AWS/SageMaker", MetricName=metric, Statistic="Average",
            Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()])
        clients.cloudwatch.set_alarm_state(AlarmName=f"{name}-{role_name}", StateValue="OK", StateReason="stand-in")
