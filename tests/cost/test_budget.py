"""The stack's AWS Budgets budget: valid for the Budgets API and accepted by moto, allowed to publish to the stack's
encrypted topic, and the policy pack's budget rule that uses the same estimator as `python -m infra.cost`."""

import json

import boto3
import pytest
from moto import mock_aws
from pulumi_policy import EnforcementLevel

from infra.config import ConfigError
from tests import aws_replay as replay
from tests.harness import config_of, edited, plan_config, policy_json, raw_config, stack_account, stack_plan
from tests.policies.conftest import plan_json, plan_json_for, resources, violations

ACCOUNT = "123456789012"  # moto's


def test_the_budget_filters_on_the_stack_tag_and_alerts_the_stack_topic(stack):
    plan = stack_plan(stack)
    budget = plan.one("aws:budgets/budget:Budget").inputs
    topic = plan.one("aws:sns/topic:Topic").inputs["name"]
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:mlserve:stack${stack}"]}]
    assert budget["limitAmount"] == {"dev": "2500.00", "prod": "25000.00"}[stack]
    alerts = {(n["notificationType"], n["threshold"]) for n in budget["notifications"]}
    assert alerts == {"dev": {("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)},
                      "prod": {("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)}}[stack]
    assert all(n["subscriberSnsTopicArns"] == [f"arn:aws:sns:us-east-1:{stack_account(stack)}:{topic}"]
               for n in budget["notifications"])
    provider_tags = json.loads(plan.one("pulumi:providers:aws").inputs["defaultTags"])["tags"]
    assert provider_tags["mlserve:stack"] == stack  # the tag the filter names is on every resource


def test_budgets_may_publish_to_the_encrypted_topic(stack):
    plan = stack_plan(stack)
    (allow,) = [s for s in policy_json(plan.one("aws:sns/topicPolicy:TopicPolicy"))["Statement"]
                if s["Effect"] == "Allow"]
    assert "budgets.amazonaws.com" in allow["Principal"]["Service"]
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": stack_account(stack)}}
    key = policy_json(plan.one("aws:kms/key:Key"))
    (budgets,) = [s for s in key["Statement"] if s["Principal"] == {"Service": "budgets.amazonaws.com"}]
    assert set(budgets["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_no_budget_means_no_budget_publisher():
    raw = raw_config("dev")
    del raw["mlserve:budget"]
    plan = plan_config(raw, "dev")
    assert not plan.of_type("aws:budgets/budget:Budget")
    (allow,) = [s for s in policy_json(plan.one("aws:sns/topicPolicy:TopicPolicy"))["Statement"]
                if s["Effect"] == "Allow"]
    assert "budgets.amazonaws.com" not in allow["Principal"]["Service"]


def test_the_budget_is_a_valid_create_budget_request(stack):
    budget = stack_plan(stack).one("aws:budgets/budget:Budget").inputs
    replay.assert_valid_request("budgets", "CreateBudget", replay.create_budget(budget, stack_account(stack)))


@mock_aws
def test_moto_takes_the_budget_and_its_notifications():
    budget = stack_plan("prod").one("aws:budgets/budget:Budget").inputs
    client = boto3.client("budgets", region_name="us-east-1")
    client.create_budget(**replay.create_budget(budget, ACCOUNT))
    described = client.describe_budget(AccountId=ACCOUNT, BudgetName=budget["name"])["Budget"]
    assert described["BudgetLimit"] == {"Amount": "25000.00", "Unit": "USD"}
    assert described["CostFilters"] == {"TagKeyValue": ["user:mlserve:stack$prod"]}
    notifications = client.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName=budget["name"])
    assert sorted((n["NotificationType"], n["Threshold"]) for n in notifications["Notifications"]) == [
        ("ACTUAL", 50.0), ("ACTUAL", 80.0), ("ACTUAL", 100.0), ("FORECASTED", 100.0)]


@pytest.mark.parametrize("budget, message", [
    ({"monthly_usd": 0}, "greater than 0"),
    ({"monthly_usd": 100, "actual_alert_percent": [50, 60, 70, 80], "forecast_alert_percent": [90, 100]},
     "at most 5 alerts"),
    ({"monthly_usd": 100, "actual_alert_percent": [80, 80]}, "repeats a percentage"),
])
def test_a_budget_aws_would_refuse_is_refused_in_the_stack_file(budget, message):
    with pytest.raises(ConfigError) as error:
        config_of(edited("dev", lambda raw: raw.update({"mlserve:budget": budget})))
    assert message in error.value.render() and "budget" in error.value.render()


def estimated(plan: dict):
    """What `python -m infra.cost --plan` says of the same plan: the rule must say the same."""
    from infra.cost import declared_from_plan, estimate, load_table
    return estimate(declared_from_plan(plan), load_table("us-east-1"))


def test_prod_over_its_budget_is_refused_naming_the_deployments_that_drive_it():
    plan = plan_json("prod")
    resources(plan, "aws:budgets/budget:Budget")[0]["inputs"]["limitAmount"] = "5000.00"
    (found,) = violations(plan, "prod", "monthly-budget")
    result = estimated(plan)
    assert found.level == EnforcementLevel.MANDATORY
    assert f"${result.total('max'):,.2f} a month, over its $5,000.00 budget" in found.message
    drivers = ", ".join(f"{group} ${cost:,.2f}" for group, cost in result.drivers("max"))
    assert f"(by deployment: {drivers})" in found.message and drivers.startswith("resnet50")
    assert found.urn == resources(plan, "aws:budgets/budget:Budget")[0]["urn"]


def test_dev_over_its_budget_is_only_advisory():
    plan = plan_json("dev")
    resources(plan, "aws:budgets/budget:Budget")[0]["inputs"]["limitAmount"] = "5.00"
    (found,) = violations(plan, "dev", "monthly-budget")
    assert found.level == EnforcementLevel.ADVISORY
    assert f"${estimated(plan).total('max'):,.2f} a month" in found.message


def test_gpus_the_table_cannot_price_cannot_hide_under_a_budget():
    # The review's case: dev edited to ml.p5.48xlarge x 20 under a $50 budget once passed, because the rule compared
    # only what the table prices. A GPU line without a price is a violation of its own, naming the line.
    def edit(raw):
        d = raw["mlserve:deployments"][0]
        d["compute"]["instance_type"] = "ml.p5.48xlarge"
        d["inference_component"]["accelerators"] = 8
        d["autoscaling"]["max"] = 20
        raw["mlserve:budget"]["monthly_usd"] = 50
    plan = plan_json_for(edited("dev", edit), "dev")
    found = violations(plan, "dev", "monthly-budget")
    (blind,) = [v for v in found if "cannot bound the bill" in v.message]
    assert blind.level == EnforcementLevel.ADVISORY  # dev; the same plan judged as prod is mandatory
    assert "sagemaker-hosting:ml.p5.48xlarge" in blind.message
    prod = [v for v in violations(plan, "prod", "monthly-budget") if "cannot bound the bill" in v.message]
    assert prod and prod[0].level == EnforcementLevel.MANDATORY


def test_prod_must_declare_a_budget_dev_need_not():
    for stack, expected in (("prod", 1), ("dev", 0)):
        plan = plan_json(stack)
        plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:budgets/budget:Budget"]
        found = violations(plan, stack, "monthly-budget")
        assert len(found) == expected
        assert all("declares no monthly budget" in v.message for v in found)
