"""The settings every bucket of the stack starts from: owner-enforced, no public access, versioned, KMS at rest.

A function, not a component: the model store and the audit trail each own their bucket (and its policy, lifecycle
and lock, which differ), and their resources keep the names and parents they had.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PrivateBucket:
    bucket: aws.s3.Bucket
    ownership: aws.s3.BucketOwnershipControls
    public_block: aws.s3.BucketPublicAccessBlock
    versioning: aws.s3.BucketVersioning


def private_bucket(logical: str, bucket_name: pulumi.Input[str], kms_key_arn: pulumi.Input[str], force_destroy: bool,
                   parent: pulumi.Resource, object_lock: bool | None = None) -> PrivateBucket:
    """`object_lock` is create-only on S3 (changing it replaces the bucket): None leaves it unset."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(logical, bucket=bucket_name, object_lock_enabled=object_lock, force_destroy=force_destroy,
                           opts=child)
    ownership = aws.s3.BucketOwnershipControls(
        logical, bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child)
    public_block = aws.s3.BucketPublicAccessBlock(
        logical, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True, opts=child)
    versioning = aws.s3.BucketVersioning(
        logical, bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"), opts=child)
    aws.s3.BucketServerSideEncryptionConfiguration(
        logical, bucket=bucket.id,
        rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.
            BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn),
            bucket_key_enabled=True)],
        opts=child)
    return PrivateBucket(bucket, ownership, public_block, versioning)
