"""ApiGatewayAccount: the region-wide role API Gateway uses to write access and execution logs.

One per account and region (a singleton in AWS), so it is its own component declared once by the program.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .policy_document import assume_role_policy

# The AWS-managed policy made for exactly this role (logs:CreateLogGroup/Stream, PutLogEvents, Describe*, Get*).
PUSH_TO_CLOUDWATCH = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class ApiGatewayAccount(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:edge:ApiGatewayAccount", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(f"{name}-apigateway-logs", assume_role_policy=assume_role_policy("apigateway.amazonaws.com"),
                            opts=child)
        attachment = aws.iam.RolePolicyAttachment(f"{name}-apigateway-logs", role=role.name,
                                                  policy_arn=PUSH_TO_CLOUDWATCH, opts=child)
        self.account = aws.apigateway.Account(f"{name}-apigateway", cloudwatch_role_arn=role.arn,
                                              opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]))
        self.register_outputs({"cloudwatch_role_arn": role.arn})
