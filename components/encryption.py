"""Encryption: the stack's customer-managed KMS key, which every encrypted resource in the stack uses."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .names import API_DESTINATION_KEY_TAG
from .policy_document import Statement, render

# Services that encrypt with the key on their own behalf (not through an IAM role's grant),
# so the key policy must name them. Roles of the stack get kms:* permissions from their own IAM policies.
LOGS = "logs"
CLOUDWATCH_ALARMS = "cloudwatch"
EVENTS = "events"
BUDGETS = "budgets"


@dataclass(frozen=True)
class EncryptionArgs:
    alias: str  # without the "alias/" prefix
    account_id: pulumi.Input[str]
    region: str
    partition: str = "aws"
    deletion_window_days: int = 30
    service_principals: tuple[str, ...] = (LOGS, CLOUDWATCH_ALARMS, EVENTS)
    node_volumes: bool = False  # EKS node groups launch encrypted root volumes through EC2 Auto Scaling
    api_destination_secrets: bool = False
    """EventBridge connections keep their credentials in Secrets Manager under this key: it must carry
    EventBridge's opt-in tag (retraining_trigger.API_DESTINATION_KEY_TAG)."""


class Encryption(pulumi.ComponentResource):
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:security:Encryption", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_root = pulumi.Output.concat("arn:", args.partition, ":iam::", args.account_id, ":root")

        statements = [
            # A key policy's Resource "*" means "this key", and this statement is the AWS default that lets the
            # account's IAM policies grant use of the key. Without it only the key policy could grant access,
            # and a mistake there locks the key (and everything encrypted with it) for good.
            Statement(sid="AccountAdministersThroughIam", actions=["kms:*"], principals={"AWS": account_root}),
        ]
        if LOGS in args.service_principals:
            statements.append(Statement(
                sid="CloudWatchLogsEncrypt",
                principals={"Service": f"logs.{args.region}.amazonaws.com"},
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
                    "arn:", args.partition, ":logs:", args.region, ":", args.account_id, ":*")}},
            ))
        for service in (s for s in args.service_principals if s != LOGS):
            # Alarms and EventBridge publish to the stack's encrypted SNS topic: they need a data key.
            statements.append(Statement(
                sid=f"{service.capitalize()}PublishToEncryptedTopics",
                principals={"Service": f"{service}.amazonaws.com"},
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                conditions={"StringEquals": {"aws:SourceAccount": args.account_id}},
            ))

        # CloudTrail encrypts the model store's audit trail; only for trails of this account.
        statements.append(Statement(
            sid="CloudTrailEncryptsTrailsOfThisAccount", principals={"Service": "cloudtrail.amazonaws.com"},
            actions=["kms:GenerateDataKey*"],
            conditions={"StringEquals": {"aws:SourceAccount": args.account_id},
                        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": pulumi.Output.concat(
                            "arn:", args.partition, ":cloudtrail:*:", args.account_id, ":trail/*")}}))
        statements.append(Statement(
            sid="CloudTrailDescribesKey", principals={"Service": "cloudtrail.amazonaws.com"},
            actions=["kms:DescribeKey"]))

        if args.node_volumes:
            # Auto Scaling's service-linked role launches the nodes; IAM policies cannot reach it, the key policy must.
            autoscaling = pulumi.Output.concat(
                "arn:", args.partition, ":iam::", args.account_id,
                ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")
            statements.append(Statement(
                sid="AutoScalingUsesKeyForNodeVolumes", principals={"AWS": autoscaling},
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]))
            statements.append(Statement(
                sid="AutoScalingAttachesNodeVolumes", principals={"AWS": autoscaling}, actions=["kms:CreateGrant"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))

        key = aws.kms.Key(
            f"{name}-key",
            description=f"mlserve {name}: data at rest (models, captures, logs, topics, images)",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=render(*statements),
            tags={API_DESTINATION_KEY_TAG: "true"} if args.api_destination_secrets else None,
            opts=child,
        )
        alias = aws.kms.Alias(f"{name}-alias", name=f"alias/{args.alias}", target_key_id=key.key_id, opts=child)

        self.key_arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name
        self.register_outputs({"key_arn": key.arn, "key_id": key.key_id, "alias_name": alias.name})
