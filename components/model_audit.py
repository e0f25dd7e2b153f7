"""ModelAudit: who read, wrote or deleted which model object, and a page when the model store's settings change.

Object-level evidence comes from CloudTrail data events, not S3 server access logs: a trail names the IAM principal
of every call, is delivered reliably (access logs are best effort), is encrypted with the stack key (an access-log
target bucket accepts only SSE-S3) and carries digest files that prove no log was altered or removed (log file
validation). Resources:
- the audit bucket (stack key, versioning, all public access blocked, TLS only, written only by this trail, objects
  expire after the retention; in prod also Object Lock in governance mode for the same period);
- the trail: data events on the model bucket's objects, and the account's write management events (EventBridge
  sees bucket-setting changes only through a trail);
- an EventBridge rule that sends any change to the model bucket's settings (versioning, policy, encryption, public
  access block, lifecycle, logging) to the stack's alert topic: versioning cannot be suspended silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .policy_document import Statement, render
from .private_bucket import private_bucket

# Bucket-setting changes (s3 API names) that alert: each of them can weaken the store as evidence.
WATCHED_BUCKET_CALLS = (
    "PutBucketVersioning", "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketEncryption", "DeleteBucketEncryption",
    "PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock", "PutBucketLifecycle", "DeleteBucketLifecycle",
    "PutBucketOwnershipControls", "DeleteBucketOwnershipControls", "PutBucketAcl", "PutObjectLockConfiguration",
)


def settings_change_pattern(bucket_name: str) -> dict:
    """The EventBridge pattern for a change to the bucket's settings, as CloudTrail reports it."""
    return {"source": ["aws.s3"], "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventSource": ["s3.amazonaws.com"], "eventName": list(WATCHED_BUCKET_CALLS),
                       "requestParameters": {"bucketName": [bucket_name]}}}


@dataclass(frozen=True)
class ModelAuditArgs:
    trail_name: str
    model_bucket_name: str
    """The audit bucket is `<model_bucket_name>-audit` (so at most 57 characters here)."""
    model_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The stack key: its policy lets CloudTrail encrypt for trails of this account."""
    account_id: pulumi.Input[str]
    region: str
    alert_topic_arn: pulumi.Input[str]
    retention_days: int
    """How long the evidence is kept: objects expire then (and are locked until then where `object_lock`)."""
    object_lock: bool
    """Prod: nobody can delete or overwrite a log file before its retention ends (governance mode)."""
    force_destroy: bool = False


class ModelAudit(pulumi.ComponentResource):
    trail_arn: pulumi.Output[str]
    audit_bucket_name: pulumi.Output[str]

    def __init__(self, name: str, args: ModelAuditArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:storage:ModelAudit", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trail_arn = pulumi.Output.concat(f"arn:aws:cloudtrail:{args.region}:", args.account_id,
                                         f":trail/{args.trail_name}")

        store = private_bucket(f"{name}-audit", f"{args.model_bucket_name}-audit", args.kms_key_arn,
                               args.force_destroy, self, object_lock=args.object_lock)
        bucket, ownership, public_block, versioning = (store.bucket, store.ownership, store.public_block,
                                                       store.versioning)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-audit", bucket=bucket.id, rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-after-retention", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.retention_days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1),
                # CloudTrail writes whole objects, but parts of an interrupted upload are billed until aborted.
                abort_incomplete_multipart_upload=aws.s3.
                BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=7))],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        if args.object_lock:
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-audit", bucket=bucket.id, rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode="GOVERNANCE", days=args.retention_days)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        objects = pulumi.Output.concat(bucket.arn, "/*")
        from_this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}
        policy = aws.s3.BucketPolicy(f"{name}-audit", bucket=bucket.id, policy=render(
            Statement(sid="DenyInsecureTransport", effect="Deny", actions=["s3:*"], principals={"AWS": "*"},
                      resources=[bucket.arn, objects], conditions={"Bool": {"aws:SecureTransport": "false"}}),
            Statement(sid="TrailChecksBucket", actions=["s3:GetBucketAcl"], resources=[bucket.arn],
                      principals={"Service": "cloudtrail.amazonaws.com"}, conditions=from_this_trail),
            Statement(sid="TrailWritesLogs", actions=["s3:PutObject"],
                      resources=[pulumi.Output.concat(bucket.arn, "/AWSLogs/", args.account_id, "/*")],
                      principals={"Service": "cloudtrail.amazonaws.com"}, conditions=from_this_trail),
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block, ownership]))

        trail = aws.cloudtrail.Trail(
            f"{name}-trail", name=args.trail_name, s3_bucket_name=bucket.id, kms_key_id=args.kms_key_arn,
            enable_log_file_validation=True, is_multi_region_trail=False, include_global_service_events=False,
            advanced_event_selectors=[
                aws.cloudtrail.TrailAdvancedEventSelectorArgs(name="model-objects", field_selectors=[
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(field="eventCategory", equals=["Data"]),
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="resources.type", equals=["AWS::S3::Object"]),
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="resources.ARN", starts_withs=[pulumi.Output.concat(args.model_bucket_arn, "/")])]),
                aws.cloudtrail.TrailAdvancedEventSelectorArgs(name="setting-changes", field_selectors=[
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="eventCategory", equals=["Management"]),
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(field="readOnly", equals=["false"])]),
            ], opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))

        rule = aws.cloudwatch.EventRule(
            f"{name}-settings-changed", description=f"A setting of s3://{args.model_bucket_name} changed",
            event_pattern=json.dumps(settings_change_pattern(args.model_bucket_name)), opts=child)
        aws.cloudwatch.EventTarget(f"{name}-settings-changed", rule=rule.name, arn=args.alert_topic_arn, opts=child)

        self.trail_arn = trail.arn
        self.audit_bucket_name = bucket.bucket
        self.register_outputs({"trail_arn": trail.arn, "audit_bucket_name": bucket.bucket})
