"""`python -m infra.ops bootstrap` against moto: the state bucket and the secrets key, made once, then left alone.

Refusals are AWS's own answers through a botocore Stubber (moto does not enforce IAM), which also checks that each
request bootstrap sends is valid against the real API model.
"""

import json

import boto3
import pytest
from botocore.stub import Stubber

from infra.ops import __main__ as cli
from infra.ops.bootstrap import IAM_ACTIONS, bootstrap_policy, default_bucket
from infra.ops.clients import Clients

ACCOUNT = "210987654321"  # the account Pulumi.dev.yaml pins
REGION = "us-east-1"
BUCKET = default_bucket(ACCOUNT, REGION)


@pytest.fixture
def account(aws, monkeypatch):
    """moto as dev's account: bootstrap refuses credentials of another account than the stack file pins."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    return aws


@pytest.fixture
def calls(monkeypatch):
    """Every AWS operation the clients made during the test, as (service, operation), in order."""
    made: list[tuple[str, str]] = []
    real = boto3.client

    def recording(*args, **kwargs):
        client = real(*args, **kwargs)
        client.meta.events.register("before-call.*.*", lambda model, **_: made.append(
            (model.service_model.endpoint_prefix, model.name)))
        return client

    monkeypatch.setattr(boto3, "client", recording)
    return made


def writes(made):
    return [op for _, op in made if op.startswith(("Create", "Put", "Enable", "Delete", "Tag"))]


def test_bootstrap_twice_creates_once_then_changes_nothing_and_says_so(account, calls, capsys):
    assert cli.main(["bootstrap", "--stack", "dev"]) == 0
    first = capsys.readouterr().out
    assert "bootstrap: 2 change(s) in account 210987654321 (us-east-1)" in first
    assert f"pulumi login 's3://{BUCKET}?region=us-east-1&awssdk=v2'" in first
    assert "pulumi stack init dev --secrets-provider 'awskms://alias/mlserve-pulumi-secrets?region=us-east-1'" in first
    created = len(calls)
    assert {"CreateKey", "CreateAlias", "CreateBucket", "PutBucketPolicy", "PutBucketEncryption"} <= set(writes(calls))

    assert cli.main(["bootstrap", "--stack", "dev"]) == 0
    second = capsys.readouterr().out
    assert "bootstrap: nothing changed: account 210987654321 (us-east-1) was already bootstrapped" in second
    assert second.count("unchanged") == 2 and "created" not in second
    assert writes(calls[created:]) == []  # read only: not one write the second time
    assert f"pulumi login 's3://{BUCKET}?region=us-east-1&awssdk=v2'" in second


def test_the_bucket_and_key_are_what_the_state_needs(account, capsys):
    assert cli.main(["bootstrap", "--stack", "dev"]) == 0
    s3, kms = account.s3, account.kms
    key = kms.describe_key(KeyId="alias/mlserve-pulumi-secrets")["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER" and key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"AWS": f"arn:aws:iam::{ACCOUNT}:root"}]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    [rule] = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    assert all(s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    statements = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    tls = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_a_weakened_bucket_is_repaired_and_statements_of_others_are_kept(account, capsys):
    assert cli.main(["bootstrap", "--region", REGION]) == 0
    s3 = account.s3
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=BUCKET)
    theirs = {"Sid": "AuditorsRead", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
              "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]}))
    capsys.readouterr()
    assert cli.main(["bootstrap", "--region", REGION]) == 0
    out = capsys.readouterr().out
    assert "bootstrap: 1 change(s)" in out and "versioning enabled" in out and "1 other statement(s) kept" in out
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    sids = {s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]}
    assert sids == {"AuditorsRead", "DenyInsecureTransport", "DenyOutdatedTls"}
    # stack lines name a placeholder when no stack was given
    assert "pulumi stack init <stack> --secrets-provider" in out


def stubbed(clients: Clients, service: str) -> Stubber:
    client = boto3.client(service, region_name=REGION)
    stubber = Stubber(client)
    clients.inject(service, client)
    return stubber


def with_stub(monkeypatch, service: str, program):
    """The CLI's clients, with `service` answered by a Stubber that `program` fills."""
    real = cli.Clients
    stubbers = []

    def clients_with_stub(region, endpoint_url=None):
        clients = real(region, endpoint_url)
        stubber = stubbed(clients, service)
        program(stubber)
        stubber.activate()
        stubbers.append(stubber)
        return clients

    monkeypatch.setattr(cli, "Clients", clients_with_stub)
    return stubbers


def test_a_denied_bucket_creation_is_one_line_naming_the_action(account, monkeypatch, capsys):
    def program(stubber):
        stubber.add_client_error("head_bucket", "404", "Not Found", 404,
                                 expected_params={"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT})
        stubber.add_client_error("create_bucket", "AccessDenied", "User is not authorized to perform: "
                                 "s3:CreateBucket", 403,
                                 expected_params={"Bucket": BUCKET, "ObjectOwnership": "BucketOwnerEnforced"})

    stubbers = with_stub(monkeypatch, "s3", program)
    assert cli.main(["bootstrap", "--stack", "dev"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"bootstrap: AWS denied s3:CreateBucket on s3://{BUCKET} (AccessDenied): the caller needs the policy that "
        "`python -m infra.ops bootstrap --print-policy` prints"]
    [stubber] = stubbers
    stubber.assert_no_pending_responses()


def test_a_denied_key_creation_is_one_line_naming_the_action(account, monkeypatch, capsys):
    def program(stubber):
        stubber.add_client_error("describe_key", "NotFoundException", "Alias is not found.", 400,
                                 expected_params={"KeyId": "alias/mlserve-pulumi-secrets"})
        stubber.add_client_error("create_key", "AccessDeniedException", "not authorized to perform kms:CreateKey", 400)

    with_stub(monkeypatch, "kms", program)
    assert cli.main(["bootstrap", "--stack", "dev"]) == 1
    err = capsys.readouterr().err
    assert "AWS denied kms:CreateKey on alias/mlserve-pulumi-secrets (AccessDeniedException)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_bucket_name_another_account_owns_is_refused(account, monkeypatch, capsys):
    def program(stubber):
        stubber.add_client_error("head_bucket", "403", "Forbidden", 403,
                                 expected_params={"Bucket": "taken-name", "ExpectedBucketOwner": ACCOUNT})

    with_stub(monkeypatch, "s3", program)
    assert cli.main(["bootstrap", "--stack", "dev", "--state-bucket", "taken-name"]) == 1
    err = capsys.readouterr().err
    assert "bucket taken-name exists but this account cannot use it: bucket names are global" in err


def test_an_alias_of_a_key_pending_deletion_is_refused_not_reused(account, capsys):
    key = account.kms.create_key()["KeyMetadata"]["KeyId"]
    account.kms.create_alias(AliasName="alias/mlserve-pulumi-secrets", TargetKeyId=key)
    account.kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert cli.main(["bootstrap", "--stack", "dev"]) == 1
    assert "names a key in state PendingDeletion" in capsys.readouterr().err


def test_without_credentials_it_says_so_in_one_line(monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["bootstrap", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "bootstrap: no AWS credentials (set AWS_PROFILE or run `aws sso login`)"


def test_pulumi_cloud_creates_nothing_and_prints_the_login_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "Clients", lambda *a, **k: pytest.fail("no AWS call for Pulumi Cloud"))
    assert cli.main(["bootstrap", "--backend", "pulumi-cloud", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "  pulumi login\n" in out and "  pulumi stack init dev\n" in out


@pytest.mark.parametrize("argv, message", [
    (["--region", REGION, "--state-bucket", "Not_A_Bucket"], "is not an S3 bucket name"),
    (["--region", REGION, "--key-alias", "alias/x"], "is not a KMS alias name"),
    (["--region", REGION, "--noncurrent-days", "0"], "--noncurrent-days must be 1 to 3650"),
    ([], "give --region, or --stack S"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(cli, "Clients", lambda *a, **k: pytest.fail("bad input must stop before any AWS call"))
    assert cli.main(["bootstrap", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_credentials_of_another_account_than_the_stack_pins_are_refused(aws, capsys):
    assert cli.main(["bootstrap", "--stack", "dev"]) == 2  # moto's default account is not dev's
    assert "stack dev pins account 210987654321 but these credentials are account 123456789012" in \
        capsys.readouterr().err


def test_the_printed_policy_allows_every_call_bootstrap_makes(account, calls, capsys):
    assert cli.main(["bootstrap", "--stack", "dev"]) == 0  # the creating run
    creating = list(calls)
    account.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    key = account.kms.describe_key(KeyId="alias/mlserve-pulumi-secrets")["KeyMetadata"]["KeyId"]
    account.kms.disable_key_rotation(KeyId=key)
    before = len(calls)
    assert cli.main(["bootstrap", "--stack", "dev"]) == 0  # the repairing run
    made = set(creating + calls[before:])
    assert {("kms", "EnableKeyRotation"), ("s3", "PutBucketVersioning"), ("s3", "CreateBucket")} <= made
    assert made - set(IAM_ACTIONS) == set(), "every call needs its IAM action listed"
    policy = bootstrap_policy(ACCOUNT, REGION, BUCKET, "mlserve-pulumi-secrets")
    allowed = {action for s in policy["Statement"] for action in s["Action"]}
    assert {IAM_ACTIONS[c] for c in made if IAM_ACTIONS[c]} <= allowed
    capsys.readouterr()
    assert cli.main(["bootstrap", "--stack", "dev", "--print-policy"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed.split("# what `bootstrap` needs:\n")[1].split("# what")[0]) == policy


@pytest.mark.parametrize("which", ["bootstrap", "state user"])
def test_the_policies_name_real_actions_on_the_resources_they_take(which):
    """Every action exists in the Service Authorization Reference and is granted on resources of the types it takes
    (a bucket ARN for bucket actions, objects for object actions, keys and the alias for KMS), `*` only for an
    action that takes no resource; the tag conditions are keys those actions support."""
    import iam_actions

    from infra.ops.bootstrap import state_user_policy

    make = bootstrap_policy if which == "bootstrap" else state_user_policy
    policy = make(ACCOUNT, REGION, BUCKET, "mlserve-pulumi-secrets")
    kinds = {f"arn:aws:s3:::{BUCKET}": "bucket", f"arn:aws:s3:::{BUCKET}/*": "object",
             f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*": "key",
             f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/mlserve-pulumi-secrets": "alias", "*": "*"}
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement["Action"]:
            service, name = action.split(":")
            entry = iam_actions.actions[service][name]
            for resource in resources:
                kind = kinds[resource]
                assert (kind == "*") == (entry["resources"] == []), (action, resource)
                assert kind == "*" or kind in entry["resources"], (action, resource)
            for condition in statement.get("Condition", {}).values():
                for key in condition:
                    if key.startswith("aws:RequestTag/"):
                        assert "aws:RequestTag/${TagKey}" in entry["condition_keys"], (action, key)
