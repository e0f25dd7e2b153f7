"""ModelStore: where released models and serving images live.

A versioned, KMS-encrypted, private bucket that refuses plain HTTP, and ECR repositories that scan images and
never let a tag move (so a deployed tag always means the same bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .policy_document import Statement, render
from .private_bucket import private_bucket


@dataclass(frozen=True)
class ModelStoreArgs:
    bucket_name: str
    kms_key_arn: pulumi.Input[str]
    image_repositories: tuple[str, ...]
    noncurrent_version_days: int = 90
    untagged_image_days: int = 14
    force_destroy: bool = False  # dev may tear down with objects inside; prod must not


class ModelStore(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    repository_urls: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ModelStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:storage:ModelStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        store = private_bucket(f"{name}-models", args.bucket_name, args.kms_key_arn, args.force_destroy, self)
        bucket, ownership, public_block = store.bucket, store.ownership, store.public_block
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-models", bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-old-versions", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_version_days),
                abort_incomplete_multipart_upload=aws.s3.
                BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=7),
            )],
            opts=child)
        objects = pulumi.Output.concat(bucket.arn, "/*")
        aws.s3.BucketPolicy(f"{name}-models", bucket=bucket.id, policy=render(
            Statement(sid="DenyInsecureTransport", effect="Deny", actions=["s3:*"], principals={"AWS": "*"},
                      resources=[bucket.arn, objects], conditions={"Bool": {"aws:SecureTransport": "false"}}),
            Statement(sid="DenyOutdatedTls", effect="Deny", actions=["s3:*"], principals={"AWS": "*"},
                      resources=[bucket.arn, objects], conditions={"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block, ownership]))

        self.repository_urls, self.repository_arns = {}, {}
        for repository_name in args.image_repositories:
            logical = f"{name}-{repository_name.replace('/', '-')}"
            repository = aws.ecr.Repository(
                logical, name=repository_name, image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn)],
                opts=child)
            aws.ecr.LifecyclePolicy(logical, repository=repository.name, policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": f"expire untagged images after {args.untagged_image_days} days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                              "countNumber": args.untagged_image_days},
                "action": {"type": "expire"},
            }]}), opts=child)
            self.repository_urls[repository_name] = repository.repository_url
            self.repository_arns[repository_name] = repository.arn

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucket_name": bucket.bucket, "bucket_arn": bucket.arn,
                               "repository_urls": self.repository_urls})
