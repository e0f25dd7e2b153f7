"""Evidence: who touched a model is recorded, settings cannot change unheard, traffic and refusals are logged."""

from typing import Any

from pulumi_policy import Severity

from ..framework import as_list, is_prod, of_type, policy_statements, resource_rule, stack_rule

BUCKET = "aws:s3/bucket:Bucket"
TRAIL = "aws:cloudtrail/trail:Trail"


def _settings_of(resources, resource_type: str) -> dict[str, Any]:
    """Bucket URN -> the setting resource of that type whose `bucket` input depends on it."""
    return {d.urn: r for r in of_type(resources, resource_type) for d in r.property_dependencies.get("bucket", [])}


@stack_rule("s3-versioned-and-tls-only",
            description="Every bucket keeps versions and refuses requests without TLS.",
            fix="Give the bucket an aws.s3.BucketVersioning with status Enabled and a bucket policy that denies "
                "s3:* when aws:SecureTransport is false.")
def s3_versioned_and_tls_only(resources, config):
    versioning = _settings_of(resources, "aws:s3/bucketVersioning:BucketVersioning")
    policies = _settings_of(resources, "aws:s3/bucketPolicy:BucketPolicy")
    for bucket in of_type(resources, BUCKET):
        setting = versioning.get(bucket.urn)
        if setting is None or (setting.props.get("versioningConfiguration") or {}).get("status") != "Enabled":
            yield f"bucket {bucket.name} is not versioned: an overwrite or delete loses the object", bucket.urn
        policy = policies.get(bucket.urn)
        statements = policy_statements(policy.props.get("policy")) if policy else []
        if not any(s.get("Effect") == "Deny" and ((s.get("Condition") or {}).get("Bool") or {}).get(
                "aws:SecureTransport") in ("false", False) for s in statements):
            yield f"bucket {bucket.name} accepts requests without TLS", bucket.urn


@stack_rule("model-store-audited",
            description="Every object call on a bucket is recorded by an encrypted, validated CloudTrail trail, "
                        "and a change to the bucket's settings alerts.",
            fix="Declare components/model_audit.py's ModelAudit for the bucket: a trail with a data-event selector on "
                "the bucket's objects, log file validation and the stack key, and an EventBridge rule on its "
                "setting changes (PutBucketVersioning, ...) targeting the alert topic.")
def model_store_audited(resources, config):
    trails = of_type(resources, TRAIL)
    destinations = {d.urn for t in trails for d in t.property_dependencies.get("s3BucketName", [])}
    for bucket in of_type(resources, BUCKET):
        if bucket.urn in destinations:
            continue  # the trail's own bucket: its writes are the trail itself
        covering = [t for t in trails if bucket.urn in {d.urn for d in t.property_dependencies.get(
            "advancedEventSelectors", [])} and any(
            "AWS::S3::Object" in as_list(f.get("equals")) for s in as_list(t.props.get("advancedEventSelectors"))
            for f in as_list(s.get("fieldSelectors")) if f.get("field") == "resources.type")]
        if not covering:
            yield f"no trail records object-level calls on bucket {bucket.name}: who read, replaced or deleted " \
                  "a model is unknown", bucket.urn
        for trail in covering:
            if trail.props.get("enableLogFileValidation") is not True:
                yield f"trail {trail.name} has no log file validation: altered logs go unnoticed", trail.urn
            if not trail.props.get("kmsKeyId"):
                yield f"trail {trail.name} is not encrypted with the stack key", trail.urn
        name = bucket.props.get("bucket")
        watched = [r for r in of_type(resources, "aws:cloudwatch/eventRule:EventRule")
                   if "PutBucketVersioning" in str(r.props.get("eventPattern"))
                   and (name is None or str(name) in str(r.props.get("eventPattern")))]
        if not watched or not any(t for t in of_type(resources, "aws:cloudwatch/eventTarget:EventTarget")
                                  if set(t.property_dependencies.get("rule", [])) & set(watched)):
            yield f"suspending versioning on bucket {name or bucket.name} would go unnoticed: no EventBridge rule " \
                  "with a target watches its settings", bucket.urn


@stack_rule("vpc-flow-logs", description="Every VPC records its flow logs.",
            fix="Declare an aws.ec2.FlowLog (traffic_type ALL) for the VPC into a KMS-encrypted log group.")
def vpc_flow_logs(resources, config):
    logged = {d.urn for f in of_type(resources, "aws:ec2/flowLog:FlowLog") if f.props.get("trafficType") == "ALL"
              for d in f.property_dependencies.get("vpcId", [])}
    for vpc in of_type(resources, "aws:ec2/vpc:Vpc"):
        if vpc.urn not in logged:
            yield f"VPC {vpc.name} records no flow logs (traffic ALL)", vpc.urn


@stack_rule("waf-logging", description="Every WAF web ACL logs what it blocks, without credentials.",
            fix="Declare an aws.wafv2.WebAclLoggingConfiguration for the ACL into an encrypted `aws-waf-logs-*` log "
                "group, with the authorization and x-api-key headers redacted.")
def waf_logging(resources, config):
    configs = {d.urn: c for c in of_type(resources, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
               for d in c.property_dependencies.get("resourceArn", [])}
    for acl in of_type(resources, "aws:wafv2/webAcl:WebAcl"):
        logging = configs.get(acl.urn)
        if logging is None:
            yield f"web ACL {acl.name} has no logging configuration: blocked attacks leave no record", acl.urn
            continue
        redacted = {str((f.get("singleHeader") or {}).get("name", "")).lower()
                    for f in as_list(logging.props.get("redactedFields"))}
        if not {"authorization", "x-api-key"} <= redacted:
            yield f"web ACL {acl.name} logs credentials (redact authorization and x-api-key)", logging.urn


@resource_rule("lb-deletion-protection", types=["aws:lb/loadBalancer:LoadBalancer",
                                                "kubernetes:networking.k8s.io/v1:Ingress"],
               description="In prod, load balancers (ours and the controller's) are protected from deletion.",
               severity=Severity.MEDIUM,
               fix="Set enable_deletion_protection=True on the aws.lb.LoadBalancer, and "
                   "deletion_protection.enabled=true in the Ingress's load-balancer-attributes annotation.")
def lb_deletion_protection(props, config):
    if not is_prod(config):
        return
    annotations = (props.get("metadata") or {}).get("annotations")
    if annotations is not None:
        attributes = str(annotations.get("alb.ingress.kubernetes.io/load-balancer-attributes", "")).split(",")
        if "deletion_protection.enabled=true" not in attributes:
            yield "the ALB the controller makes for this Ingress can be deleted (deletion_protection off)"
    elif props.get("enableDeletionProtection") is not True:
        yield "deletion protection is off: a destroy or a replacement takes the front door down"
