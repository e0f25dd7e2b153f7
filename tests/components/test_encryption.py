import json

from tests.harness import policy_json, stack_account


def test_key_rotates_and_has_an_alias(stack, plan):
    key = plan.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == {"dev": 7, "prod": 30}[stack]
    assert plan.one("aws:kms/alias:Alias").inputs["name"] == f"alias/mlserve-{stack}"


def test_key_policy_lets_logs_encrypt_only_for_this_account_and_region(stack, plan):
    account = stack_account(stack)
    statements = {s["Sid"]: s for s in policy_json(plan.one("aws:kms/key:Key"))["Statement"]}
    logs = statements["CloudWatchLogsEncrypt"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == f"arn:aws:logs:us-east-1:{account}:*"
    assert statements["CloudwatchPublishToEncryptedTopics"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account}}
    assert statements["AccountAdministersThroughIam"]["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}


def test_every_statement_is_valid_policy_grammar(plan):
    for statement in policy_json(plan.one("aws:kms/key:Key"))["Statement"]:
        assert statement["Effect"] in ("Allow", "Deny")
        assert statement["Action"] and all(":" in a for a in statement["Action"])
    json.dumps(policy_json(plan.one("aws:kms/key:Key")))
