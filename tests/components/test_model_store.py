from tests.harness import policy_json


def model_store(plan, type_token: str):
    """The model bucket's own resource of a type (the audit bucket has the same kinds)."""
    (resource,) = [r for r in plan.of_type(type_token) if r.name.endswith("-models")]
    return resource


def test_bucket_policy_denies_requests_without_tls(plan):
    statements = {s["Sid"]: s for s in policy_json(model_store(plan, "aws:s3/bucketPolicy:BucketPolicy"))["Statement"]}
    insecure = statements["DenyInsecureTransport"]
    assert insecure["Effect"] == "Deny"
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    bucket = model_store(plan, "aws:s3/bucket:Bucket").inputs["bucket"]
    assert insecure["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    assert statements["DenyOutdatedTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}


def test_bucket_is_versioned_kms_encrypted_and_private(plan):
    key_arn = plan.outputs["kms_key_arn"]
    assert model_store(plan, "aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = model_store(
        plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
    block = model_store(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))


def test_old_versions_expire_per_stack_config(stack, plan):
    (rule,) = model_store(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == {"dev": 30, "prod": 365}[stack]


def test_image_repository_is_immutable_scanned_and_kms_encrypted(stack, plan):
    repository = plan.one("aws:ecr/repository:Repository").inputs
    assert repository["name"] == f"mlserve-{stack}/triton"  # the stack in it: ECR names are unique per account
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": plan.outputs["kms_key_arn"]}]


def test_prod_bucket_cannot_be_destroyed_with_models_inside(stack, plan):
    assert model_store(plan, "aws:s3/bucket:Bucket").inputs["forceDestroy"] is (stack == "dev")


def test_every_bucket_aborts_incomplete_multipart_uploads(stack, plan):
    # Parts of an interrupted upload are stored and billed, invisibly, until a lifecycle rule aborts them.
    buckets = {b.urn: b.inputs["bucket"] for b in plan.of_type("aws:s3/bucket:Bucket")}
    lifecycles = {c.property_dependencies["bucket"][0]: c.inputs["rules"]
                  for c in plan.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")}
    assert set(lifecycles) == set(buckets)
    for urn, rules in lifecycles.items():
        assert any(r["status"] == "Enabled" and r.get("abortIncompleteMultipartUpload", {}).get(
            "daysAfterInitiation") for r in rules), buckets[urn]
