"""Data at rest is encrypted with the stack's customer-managed KMS key."""

from pulumi_policy import Severity

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule


@resource_rule("kms-key-rotation", types=["aws:kms/key:Key"], description="KMS keys rotate yearly.",
               fix="Set enable_key_rotation=True on the aws.kms.Key.")
def kms_key_rotation(props, config):
    if props.get("enableKeyRotation") is not True:
        yield "enableKeyRotation is not true"


@stack_rule("s3-bucket-kms-encryption", description="S3 buckets are encrypted with KMS and block public access.",
            fix="Give the bucket an aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm='aws:kms' and "
                "the stack key, and an aws.s3.BucketPublicAccessBlock with all four settings true.")
def s3_bucket_kms(resources, config):
    def buckets_of(resource_type, passes):
        # The bucket each setting belongs to: through the dependency of its `bucket` input (known at preview).
        return {d.urn for r in of_type(resources, resource_type) if passes(r.props)
                for d in r.property_dependencies.get("bucket", [])}

    encrypted = buckets_of(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        lambda props: any((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") == "aws:kms"
                          and (rule.get("applyServerSideEncryptionByDefault") or {}).get("kmsMasterKeyId")
                          for rule in as_list(props.get("rules"))))
    blocked = buckets_of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", lambda props: all(
        props.get(k) is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                       "restrictPublicBuckets")))
    for bucket in of_type(resources, "aws:s3/bucket:Bucket"):
        if bucket.urn not in encrypted:
            yield f"bucket {bucket.name} has no KMS default encryption", bucket.urn
        if bucket.urn not in blocked:
            yield f"bucket {bucket.name} does not block all public access", bucket.urn


@resource_rule("sagemaker-endpoint-config-kms", types=["aws:sagemaker/endpointConfiguration:EndpointConfiguration"],
               description="SageMaker endpoint storage and captured data are encrypted with KMS.",
               fix="Set kms_key_arn on the EndpointConfiguration and kms_key_id in its data_capture_config.")
def sagemaker_endpoint_config_kms(props, config):
    if not props.get("kmsKeyArn"):
        yield "kmsKeyArn is not set: instance storage is encrypted with an AWS-owned key"
    capture = props.get("dataCaptureConfig")
    if capture and capture.get("enableCapture") and not capture.get("kmsKeyId"):
        yield "data capture is on but dataCaptureConfig.kmsKeyId is not set"


@resource_rule("log-group-kms-retention", types=["aws:cloudwatch/logGroup:LogGroup"],
               description="Log groups are KMS-encrypted and kept for a set time: in prod at least a year.",
               severity=Severity.MEDIUM, schema={"min_retention_days": {
                   "type": "integer", "default": 365,
                   "description": "Shortest retention allowed (Security Hub CloudWatch.16 asks 365 days)"}},
               fix="Set kms_key_id to the stack key and retention_in_days (prod: 365 or more; the stack file's "
                   "retention keys feed it).")
def log_group_kms_retention(props, config):
    if not props.get("kmsKeyId"):
        yield "kmsKeyId is not set"
    days = props.get("retentionInDays")
    if not days:
        yield "retentionInDays is not set: logs are kept (and paid for) forever"
    elif is_prod(config) and days < config["min_retention_days"]:
        yield f"logs are kept {days} days, less than the {config['min_retention_days']} prod requires"


@resource_rule("sqs-queue-kms", types=["aws:sqs/queue:Queue"], description="SQS queues are KMS-encrypted.",
               fix="Set kms_master_key_id to the stack key.")
def sqs_queue_kms(props, config):
    if not props.get("kmsMasterKeyId"):
        yield "kmsMasterKeyId is not set"


@resource_rule("sns-topic-kms", types=["aws:sns/topic:Topic"], description="SNS topics are KMS-encrypted.",
               fix="Set kms_master_key_id to the stack key (its key policy must let CloudWatch use it).")
def sns_topic_kms(props, config):
    if not props.get("kmsMasterKeyId"):
        yield "kmsMasterKeyId is not set"


@resource_rule("ecr-repository-hardened", types=["aws:ecr/repository:Repository"],
               description="ECR repositories are KMS-encrypted, scan on push and keep tags immutable.",
               fix="Set encryption_configurations=[{encryption_type: 'KMS', kms_key: <stack key>}], "
                   "image_scanning_configuration.scan_on_push=True and image_tag_mutability='IMMUTABLE'.")
def ecr_repository_hardened(props, config):
    if not any(c.get("encryptionType") == "KMS" for c in as_list(props.get("encryptionConfigurations"))):
        yield "images are not encrypted with KMS"
    if (props.get("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        yield "images are not scanned on push"
    if props.get("imageTagMutability") != "IMMUTABLE":
        yield "tags are mutable: a deployed tag could silently change bytes"
