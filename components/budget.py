"""A monthly AWS Budgets budget over the resources one stack tags, alerting the stack's SNS topic on actual and
forecasted spend.

The filter is the stack's cost-allocation tag, which the AWS provider's default tags put on every resource. AWS
Budgets only sees a tag once it is activated as a cost-allocation tag in the billing console (or by the payer
account of an AWS Organization): until then the budget tracks nothing, which docs/cost.md says.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class StackBudgetArgs:
    budget_name: str
    monthly_usd: float
    tag_key: str
    """The cost-allocation tag that marks the stack's resources, e.g. `mlserve:stack`."""
    tag_value: str
    topic_arn: pulumi.Input[str]
    """The stack's alert topic; its policy and key must let budgets.amazonaws.com publish."""
    actual_percent: tuple[int, ...] = (80, 100)
    forecast_percent: tuple[int, ...] = (100,)


class StackBudget(pulumi.ComponentResource):
    budget_name: pulumi.Output[str]

    def __init__(self, name: str, args: StackBudgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:cost:StackBudget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        notifications = [
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN", threshold=float(percent), threshold_type="PERCENTAGE",
                notification_type=kind, subscriber_sns_topic_arns=[args.topic_arn])
            for kind, percents in (("ACTUAL", args.actual_percent), ("FORECASTED", args.forecast_percent))
            for percent in percents
        ]
        budget = aws.budgets.Budget(
            name, name=args.budget_name, budget_type="COST", time_unit="MONTHLY",
            limit_amount=f"{args.monthly_usd:.2f}", limit_unit="USD",
            # Budgets spells a user tag filter `user:<key>$<value>` (the AWS CLI's create-budget example).
            cost_filters=[aws.budgets.BudgetCostFilterArgs(name="TagKeyValue",
                                                           values=[f"user:{args.tag_key}${args.tag_value}"])],
            notifications=notifications, opts=child)

        self.budget_name = budget.name
        self.register_outputs({"budget_name": self.budget_name})
