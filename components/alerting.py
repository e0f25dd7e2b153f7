"""Alerting: one KMS-encrypted SNS topic per stack that every alarm notifies, with its subscriptions."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from .policy_document import Statement, render

# AWS services of the account that publish to the topic: alarm actions and EventBridge rules; a budget adds its own.
DEFAULT_PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")
BUDGETS_PUBLISHER = "budgets.amazonaws.com"


@dataclass(frozen=True)
class AlertingArgs:
    topic_name: str
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    emails: tuple[str, ...] = ()
    https_webhooks: tuple[str, ...] = ()
    publishers: tuple[str, ...] = field(default=DEFAULT_PUBLISHERS)


class Alerting(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:Alerting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        topic = aws.sns.Topic(f"{name}-alerts", name=args.topic_name, kms_master_key_id=args.kms_key_arn, opts=child)
        aws.sns.TopicPolicy(f"{name}-alerts", arn=topic.arn, policy=render(
            Statement(sid="AwsServicesOfThisAccountPublish", actions=["sns:Publish"], resources=[topic.arn],
                      principals={"Service": list(args.publishers)},
                      conditions={"StringEquals": {"aws:SourceAccount": args.account_id}}),
            Statement(sid="DenyInsecureTransport", effect="Deny", actions=["sns:Publish"], resources=[topic.arn],
                      principals={"AWS": "*"}, conditions={"Bool": {"aws:SecureTransport": "false"}}),
        ), opts=child)
        # Addresses are personal data and webhook URLs often carry a token: the state keeps both encrypted, whether
        # or not the stack file stores them with `pulumi config set --secret`.
        for index, email in enumerate(args.emails):
            aws.sns.TopicSubscription(f"{name}-email-{index}", topic=topic.arn, protocol="email",
                                      endpoint=pulumi.Output.secret(email), opts=child)
        for index, url in enumerate(args.https_webhooks):
            aws.sns.TopicSubscription(f"{name}-webhook-{index}", topic=topic.arn, protocol="https",
                                      endpoint=pulumi.Output.secret(url), endpoint_auto_confirms=True, opts=child)

        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": topic.arn})
