"""bootstrap: prepare an AWS account for the project's Pulumi stacks, idempotently.

What it makes, once per account (run it again and it changes nothing and says so):

- the state backend: an S3 bucket (default `mlserve-pulumi-state-<account>-<region>`: bucket names are global) with
  versioning (every checkpoint kept; old ones expire after `--noncurrent-days`), SSE-KMS under the key below with
  S3 Bucket Keys, owner-enforced objects, every public access blocked, and a policy that refuses plain HTTP and TLS
  below 1.2;
- the secrets provider: a customer-managed symmetric KMS key with yearly rotation and an alias (default
  `alias/mlserve-pulumi-secrets`); its key policy is AWS's default (the account's IAM policies decide who may use
  it), so no principal is named that could lock the key;

then prints the `pulumi login` and `pulumi stack init --secrets-provider awskms://...` lines. With `--backend
pulumi-cloud` it creates nothing and prints the login and stack lines for Pulumi Cloud (which keeps the state and
the secrets).

What already exists is read first and only what differs is set: a bucket policy keeps statements that are not ours,
a lifecycle configuration keeps rules that are not ours. A bucket another account owns, a key alias pointing at a
key that is disabled, pending deletion or managed by AWS are refused, never taken over. A call AWS denies stops the
run with one line naming the IAM action; `--print-policy` prints the least-privilege policy bootstrap needs, and the
one the people and pipelines that run `pulumi` need to use the backend.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from .clients import Clients
from .report import OpsError

PURPOSE_TAG = ("mlserve:purpose", "pulumi-backend")
DEFAULT_ALIAS = "mlserve-pulumi-secrets"
LIFECYCLE_RULE = "mlserve-pulumi-state"
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"})
BAD_CREDENTIALS = frozenset({"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                             "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId"})

# Each API call bootstrap makes and the IAM action it needs (S3's differ from the operation's name in places).
IAM_ACTIONS = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "GetBucketLocation"): "s3:GetBucketLocation",
    ("s3", "CreateBucket"): "s3:CreateBucket",
    ("s3", "GetBucketOwnershipControls"): "s3:GetBucketOwnershipControls",
    ("s3", "PutBucketOwnershipControls"): "s3:PutBucketOwnershipControls",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "GetBucketVersioning"): "s3:GetBucketVersioning",
    ("s3", "PutBucketVersioning"): "s3:PutBucketVersioning",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetBucketPolicy"): "s3:GetBucketPolicy",
    ("s3", "PutBucketPolicy"): "s3:PutBucketPolicy",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("kms", "DescribeKey"): "kms:DescribeKey",
    ("kms", "CreateKey"): "kms:CreateKey",
    ("kms", "TagResource"): "kms:TagResource",
    ("kms", "CreateAlias"): "kms:CreateAlias",
    ("kms", "GetKeyRotationStatus"): "kms:GetKeyRotationStatus",
    ("kms", "EnableKeyRotation"): "kms:EnableKeyRotation",
    ("sts", "GetCallerIdentity"): "",  # needs no permission
}

Action = Literal["created", "changed", "unchanged"]


class Refused(OpsError):
    """AWS refused a call or the account holds something bootstrap must not take over: exit 1, one line."""

    exit_code = 1


@dataclass(frozen=True)
class Step:
    subject: str
    action: Action
    detail: str


@dataclass
class Bootstrap:
    account: str
    region: str
    bucket: str
    alias: str
    key_arn: str = ""
    steps: list[Step] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return sum(step.action != "unchanged" for step in self.steps)

    def login_line(self) -> str:
        return s3_login_line(self.bucket, self.region)

    def stack_init_line(self, stack: str) -> str:
        return f"pulumi stack init {stack} --secrets-provider '{secrets_provider(self.alias, self.region)}'"


def s3_login_line(bucket: str, region: str) -> str:
    # Quoted: `?` and `&` mean something to the shell.
    return f"pulumi login 's3://{bucket}?region={region}&awssdk=v2'"


def secrets_provider(alias: str, region: str) -> str:
    return f"awskms://alias/{alias}?region={region}"


def default_bucket(account: str, region: str) -> str:
    return f"mlserve-pulumi-state-{account}-{region}"


def bucket_policy_statements(bucket: str) -> list[dict[str, Any]]:
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": resources, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyOutdatedTls", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": resources, "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
    ]


def key_policy(account: str) -> dict[str, Any]:
    """AWS's default key policy: the account's IAM policies grant use of the key (and cannot lock it out)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "AccountAdministersThroughIam", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}]}


def bootstrap_policy(account: str, region: str, bucket: str, alias: str) -> dict[str, Any]:
    """What the caller of `bootstrap` needs, and no more: the calls above on this bucket, on keys carrying the
    purpose tag, and on this alias."""
    s3 = sorted({a for (service, _), a in IAM_ACTIONS.items() if service == "s3"})
    keys = f"arn:aws:kms:{region}:{account}:key/*"
    tag_key, tag_value = PURPOSE_TAG
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "StateBucket", "Effect": "Allow", "Action": s3, "Resource": f"arn:aws:s3:::{bucket}"},
        {"Sid": "CreateTheTaggedKey", "Effect": "Allow", "Action": ["kms:CreateKey"], "Resource": "*",
         "Condition": {"StringEquals": {f"aws:RequestTag/{tag_key}": tag_value}}},
        {"Sid": "TagTheKeyAtCreation", "Effect": "Allow", "Action": ["kms:TagResource"], "Resource": keys,
         "Condition": {"StringEquals": {f"aws:RequestTag/{tag_key}": tag_value}}},
        {"Sid": "NameTheKey", "Effect": "Allow", "Action": ["kms:CreateAlias"],
         "Resource": [f"arn:aws:kms:{region}:{account}:alias/{alias}", keys]},
        {"Sid": "ReadAndRotateTheKey", "Effect": "Allow",
         "Action": ["kms:DescribeKey", "kms:EnableKeyRotation", "kms:GetKeyRotationStatus"], "Resource": keys,
         "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/{alias}"}}},
    ]}


def state_user_policy(account: str, region: str, bucket: str, alias: str) -> dict[str, Any]:
    """What `pulumi login s3://...` with the awskms secrets provider needs: the state objects and the key, through
    S3 for the state and directly for the stack's secrets."""
    keys = f"arn:aws:kms:{region}:{account}:key/*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ListState", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": f"arn:aws:s3:::{bucket}"},
        {"Sid": "ReadWriteState", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Sid": "UseTheStateKey", "Effect": "Allow",
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": keys,
         "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/{alias}"}}},
    ]}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _refuse_if_denied(error: ClientError, subject: str) -> None:
    code = _code(error)
    if code in DENIED:
        action = next((a for (_, op), a in IAM_ACTIONS.items() if op == error.operation_name), error.operation_name)
        raise Refused(f"AWS denied {action} on {subject} ({code}): the caller needs the policy that "
                      f"`python -m infra.ops bootstrap --print-policy` prints") from None
    if code in BAD_CREDENTIALS:
        raise Refused(f"AWS rejected the credentials ({code}): refresh them (`aws sso login`, AWS_PROFILE)") from None


def _call(subject: str, method, **kwargs):
    try:
        return method(**kwargs)
    except ClientError as error:
        _refuse_if_denied(error, subject)
        raise


def _missing(subject: str, method, codes: tuple[str, ...], **kwargs):
    """The call's answer, or None when AWS says the thing does not exist (one of `codes`)."""
    try:
        return method(**kwargs)
    except ClientError as error:
        if _code(error) in codes:
            return None
        _refuse_if_denied(error, subject)
        raise


def ensure_key(clients: Clients, run: Bootstrap) -> None:
    kms = clients.kms
    subject = f"alias/{run.alias}"
    described = _missing(subject, kms.describe_key, ("NotFoundException",), KeyId=subject)
    if described is None:
        tag_key, tag_value = PURPOSE_TAG
        created = _call(subject, kms.create_key, Description="Pulumi secrets and state of the mlserve stacks",
                        KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                        Policy=json.dumps(key_policy(run.account)),
                        Tags=[{"TagKey": tag_key, "TagValue": tag_value}])["KeyMetadata"]
        _call(subject, kms.create_alias, AliasName=subject, TargetKeyId=created["KeyId"])
        _call(subject, kms.enable_key_rotation, KeyId=created["KeyId"])
        run.key_arn = created["Arn"]
        run.steps.append(Step(f"KMS key {subject}", "created", f"{created['Arn']}, rotated yearly, used through IAM"))
        return
    metadata = described["KeyMetadata"]
    if metadata.get("KeyManager") != "CUSTOMER":
        raise Refused(f"{subject} names a key AWS manages: choose another --key-alias")
    if metadata.get("KeyState") != "Enabled":
        raise Refused(f"{subject} names a key in state {metadata.get('KeyState')}: cancel its deletion or enable it "
                      "(aws kms cancel-key-deletion / enable-key), or choose another --key-alias")
    if metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT" or \
            metadata.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        raise Refused(f"{subject} names a {metadata.get('KeySpec')} key: Pulumi's awskms provider needs a symmetric "
                      "ENCRYPT_DECRYPT key; choose another --key-alias")
    run.key_arn = metadata["Arn"]
    rotation = _call(subject, kms.get_key_rotation_status, KeyId=metadata["KeyId"])
    if rotation.get("KeyRotationEnabled"):
        run.steps.append(Step(f"KMS key {subject}", "unchanged", f"{metadata['Arn']}, rotation on"))
    else:
        _call(subject, kms.enable_key_rotation, KeyId=metadata["KeyId"])
        run.steps.append(Step(f"KMS key {subject}", "changed", f"{metadata['Arn']}: yearly rotation turned on"))


def ensure_bucket(clients: Clients, run: Bootstrap, noncurrent_days: int) -> None:
    s3, bucket = clients.s3, run.bucket
    subject = f"s3://{bucket}"
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=run.account)
        exists = True
    except ClientError as error:
        code = _code(error)
        if code in ("403", "AccessDenied"):
            raise Refused(f"bucket {bucket} exists but this account cannot use it: bucket names are global (another "
                          "account owns it; choose another --state-bucket), or s3:ListBucket is denied") from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            _refuse_if_denied(error, subject)
            raise
        exists = False
    if not exists:
        request: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if run.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": run.region}
        _call(subject, s3.create_bucket, **request)
    else:
        location = _call(subject, s3.get_bucket_location, Bucket=bucket).get("LocationConstraint") or "us-east-1"
        if location != run.region:
            raise Refused(f"bucket {bucket} is in {location}, not {run.region}: pass --region {location}")
    settings = [_ownership(s3, bucket), _public_access(s3, bucket), _versioning(s3, bucket),
                _encryption(s3, bucket, run.key_arn), _policy(s3, bucket), _lifecycle(s3, bucket, noncurrent_days)]
    if not exists:
        run.steps.append(Step(f"S3 bucket {bucket}", "created", "; ".join(detail for _, detail in settings)))
        return
    changed = [detail for was_changed, detail in settings if was_changed]
    run.steps.append(Step(f"S3 bucket {bucket}", "changed" if changed else "unchanged",
                          "; ".join(changed) if changed else "; ".join(detail for _, detail in settings)))


def _ownership(s3, bucket: str) -> tuple[bool, str]:
    subject = f"s3://{bucket}"
    current = _missing(subject, s3.get_bucket_ownership_controls, ("OwnershipControlsNotFoundError",), Bucket=bucket)
    rules = (current or {}).get("OwnershipControls", {}).get("Rules", [])
    if [r.get("ObjectOwnership") for r in rules] == ["BucketOwnerEnforced"]:
        return False, "objects owned by the bucket owner"
    _call(subject, s3.put_bucket_ownership_controls, Bucket=bucket,
          OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    return True, "objects owned by the bucket owner (ACLs off)"


PUBLIC_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True}


def _public_access(s3, bucket: str) -> tuple[bool, str]:
    subject = f"s3://{bucket}"
    current = _missing(subject, s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",), Bucket=bucket)
    if current and current.get("PublicAccessBlockConfiguration") == PUBLIC_BLOCK:
        return False, "public access blocked"
    _call(subject, s3.put_public_access_block, Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_BLOCK)
    return True, "public access blocked"


def _versioning(s3, bucket: str) -> tuple[bool, str]:
    subject = f"s3://{bucket}"
    if _call(subject, s3.get_bucket_versioning, Bucket=bucket).get("Status") == "Enabled":
        return False, "versioned"
    _call(subject, s3.put_bucket_versioning, Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return True, "versioning enabled"


def _encryption(s3, bucket: str, key_arn: str) -> tuple[bool, str]:
    subject = f"s3://{bucket}"
    current = _missing(subject, s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",),
                       Bucket=bucket)
    wanted = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
              "BucketKeyEnabled": True}
    rules = (current or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if len(rules) == 1 and rules[0].get("ApplyServerSideEncryptionByDefault") == wanted[
            "ApplyServerSideEncryptionByDefault"] and rules[0].get("BucketKeyEnabled") is True:
        return False, "SSE-KMS with the state key"
    _call(subject, s3.put_bucket_encryption, Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [wanted]})
    return True, "SSE-KMS with the state key"


def _policy(s3, bucket: str) -> tuple[bool, str]:
    subject = f"s3://{bucket}"
    current = _missing(subject, s3.get_bucket_policy, ("NoSuchBucketPolicy",), Bucket=bucket)
    document = json.loads(current["Policy"]) if current else {"Version": "2012-10-17", "Statement": []}
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    ours = bucket_policy_statements(bucket)
    by_sid = {s.get("Sid"): s for s in statements}
    if all(_same_statement(by_sid.get(s["Sid"]), s) for s in ours):
        return False, "TLS 1.2+ only"
    kept = [s for s in statements if s.get("Sid") not in {o["Sid"] for o in ours}]
    document = {"Version": "2012-10-17", "Statement": kept + ours}
    _call(subject, s3.put_bucket_policy, Bucket=bucket, Policy=json.dumps(document))
    return True, "TLS 1.2+ only (policy" + (f", {len(kept)} other statement(s) kept)" if kept else ")")


def _same_statement(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """IAM stores a one-element list as a string and may normalise the principal: compare what they mean."""
    if current is None:
        return False

    def norm(statement: dict[str, Any]) -> dict[str, Any]:
        out = dict(statement)
        for key in ("Action", "Resource"):
            value = out.get(key)
            out[key] = sorted(str(v) for v in (value if isinstance(value, list) else [value]))
        if out.get("Principal") in ({"AWS": "*"}, "*"):
            out["Principal"] = "*"
        return out

    return norm(current) == norm(wanted)


def _lifecycle(s3, bucket: str, noncurrent_days: int) -> tuple[bool, str]:
    subject = f"s3://{bucket}"
    current = _missing(subject, s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration",),
                       Bucket=bucket)
    rules = (current or {}).get("Rules", [])
    wanted = {"ID": LIFECYCLE_RULE, "Status": "Enabled", "Filter": {"Prefix": ""},
              "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
              "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    mine = next((r for r in rules if r.get("ID") == LIFECYCLE_RULE), None)
    detail = f"old checkpoints kept {noncurrent_days} days"
    if mine and mine.get("Status") == "Enabled" and \
            mine.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == noncurrent_days and \
            mine.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 7:
        return False, detail
    others = [r for r in rules if r.get("ID") != LIFECYCLE_RULE]
    _call(subject, s3.put_bucket_lifecycle_configuration, Bucket=bucket,
          LifecycleConfiguration={"Rules": others + [wanted]})
    return True, detail


def caller_account(clients: Clients) -> str:
    try:
        return clients.sts.get_caller_identity()["Account"]
    except ClientError as error:
        _refuse_if_denied(error, "sts:GetCallerIdentity")
        raise


BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ALIAS_NAME = re.compile(r"^[A-Za-z0-9/_-]{1,250}$")


def check_names(bucket: str | None, alias: str, noncurrent_days: int) -> None:
    """Bad input is one line before any call: S3's and KMS's own naming rules."""
    if bucket is not None and (not BUCKET_NAME.match(bucket) or ".." in bucket or bucket.startswith("xn--")):
        raise OpsError(f"--state-bucket {bucket!r} is not an S3 bucket name: 3-63 lowercase letters, digits, dots "
                       "and hyphens, starting and ending with a letter or digit (e.g. acme-pulumi-state)")
    if not ALIAS_NAME.match(alias) or alias.startswith(("alias/", "aws/")):
        raise OpsError(f"--key-alias {alias!r} is not a KMS alias name: letters, digits, '/', '_' and '-', without "
                       "the alias/ prefix and not under aws/ (e.g. mlserve-pulumi-secrets)")
    if not 1 <= noncurrent_days <= 3650:
        raise OpsError(f"--noncurrent-days must be 1 to 3650, got {noncurrent_days}")


def bootstrap(clients: Clients, account: str, bucket: str | None, alias: str = DEFAULT_ALIAS,
              noncurrent_days: int = 90) -> Bootstrap:
    """Make (or confirm) the key, then the bucket encrypted with it."""
    check_names(bucket, alias, noncurrent_days)
    run = Bootstrap(account, clients.region, bucket or default_bucket(account, clients.region), alias)
    ensure_key(clients, run)
    ensure_bucket(clients, run, noncurrent_days)
    return run
