"""Replay what the plan declares as the boto3 requests the provider would send, checked against AWS's API model.

botocore's own ParamValidator checks required members and types; `api_violations` adds what it leaves to the
service (enums, min/max, string patterns), read from the same service model, so a value AWS would reject fails here.
The converters mirror how the Terraform-bridged provider maps its arguments onto the API.
"""

from __future__ import annotations

import re
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator

_SESSION = botocore.session.get_session()


def _api_value(value: Any) -> Any:
    """Engine values to API values: the engine sends every number as a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def pascal(value: Any, renames: dict[str, str] | None = None) -> Any:
    """camelCase engine properties to the API's PascalCase members, recursively."""
    renames = renames or {}
    if isinstance(value, dict):
        return {renames.get(k, k[:1].upper() + k[1:]): pascal(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v, renames) for v in value]
    return _api_value(value)


def api_violations(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    shape = _SESSION.get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    _constraints(params, shape, operation, problems)
    return problems


def assert_valid_request(service: str, operation: str, params: dict[str, Any]) -> None:
    problems = api_violations(service, operation, params)
    assert not problems, f"{service}.{operation} would be rejected:\n" + "\n".join(problems)


def _constraints(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                _constraints(member, shape.members[key], f"{path}.{key}", problems)
    elif shape.type_name == "list" and isinstance(value, list):
        _bounds(len(value), meta, f"{path} (items)", problems)
        for index, item in enumerate(value):
            _constraints(item, shape.member, f"{path}[{index}]", problems)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            _constraints(item, shape.value, f"{path}[{key}]", problems)
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        _bounds(len(value), meta, f"{path} (length)", problems)
        pattern = _compiled(meta.get("pattern"))
        if pattern and not pattern.fullmatch(value):
            problems.append(f"{path}: {value!r} does not match {pattern.pattern}")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        _bounds(value, meta, path, problems)


def _compiled(pattern: str | None) -> re.Pattern | None:
    """A few AWS patterns use Java-only syntax (`\\u` ranges); those are left to the service."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _bounds(number: float, meta: dict, path: str, problems: list[str]) -> None:
    if "min" in meta and number < meta["min"]:
        problems.append(f"{path}: {number} is below the minimum {meta['min']}")
    if "max" in meta and number > meta["max"]:
        problems.append(f"{path}: {number} is above the maximum {meta['max']}")


# --- requests per resource type --------------------------------------------------------------------------------

def create_model(inputs: dict, name: str) -> dict:
    request = {"ModelName": name, "ExecutionRoleArn": inputs["executionRoleArn"],
               "PrimaryContainer": pascal(inputs["primaryContainer"]),
               "EnableNetworkIsolation": inputs.get("enableNetworkIsolation", False)}
    if "vpcConfig" in inputs:
        request["VpcConfig"] = pascal(inputs["vpcConfig"])
    return request


def create_endpoint_config(inputs: dict, name: str) -> dict:
    request = {"EndpointConfigName": name, "ProductionVariants": pascal(inputs["productionVariants"])}
    for variant in request["ProductionVariants"]:  # pulumi-aws's list of one is the API's single RoutingConfig
        if "RoutingConfigs" in variant:
            variant["RoutingConfig"] = variant.pop("RoutingConfigs")[0]
    if "executionRoleArn" in inputs:
        request["ExecutionRoleArn"] = inputs["executionRoleArn"]
    if "kmsKeyArn" in inputs:
        request["KmsKeyId"] = inputs["kmsKeyArn"]
    if "dataCaptureConfig" in inputs:
        request["DataCaptureConfig"] = pascal(inputs["dataCaptureConfig"])
    if inputs.get("shadowProductionVariants"):
        request["ShadowProductionVariants"] = pascal(inputs["shadowProductionVariants"])
    return request


def create_endpoint(inputs: dict) -> dict:
    request = {"EndpointName": inputs["name"], "EndpointConfigName": inputs["endpointConfigName"]}
    if "deploymentConfig" in inputs:  # an endpoint of inference components has none: the components roll out
        request["DeploymentConfig"] = pascal(inputs["deploymentConfig"])
    return request


def update_endpoint(inputs: dict) -> dict:
    """What a new model version sends: the same deployment config, with variant properties retained."""
    return {**create_endpoint(inputs), "RetainAllVariantProperties": True}


def register_scalable_target(inputs: dict) -> dict:
    return pascal({k: inputs[k] for k in ("serviceNamespace", "resourceId", "scalableDimension", "minCapacity",
                                          "maxCapacity")})


def put_scaling_policy(inputs: dict, name: str) -> dict:
    """Target tracking or step scaling, as the provider sends it."""
    request = pascal({k: inputs[k] for k in ("serviceNamespace", "resourceId", "scalableDimension", "policyType")})
    request["PolicyName"] = name
    if "targetTrackingScalingPolicyConfiguration" in inputs:
        request["TargetTrackingScalingPolicyConfiguration"] = pascal(inputs["targetTrackingScalingPolicyConfiguration"])
    if "stepScalingPolicyConfiguration" in inputs:
        step = request["StepScalingPolicyConfiguration"] = pascal(inputs["stepScalingPolicyConfiguration"])
        for adjustment in step["StepAdjustments"]:
            # pulumi-aws types the bounds as strings (empty means unbounded); the provider sends numbers.
            for bound in ("MetricIntervalLowerBound", "MetricIntervalUpperBound"):
                if adjustment.get(bound) in ("", None):
                    adjustment.pop(bound, None)
                else:
                    adjustment[bound] = float(adjustment[bound])
    return request


def create_inference_component(inputs: dict) -> dict:
    """CreateInferenceComponent from aws-native's inputs; the update policy is UpdateInferenceComponent's only."""
    return pascal({k: v for k, v in inputs.items() if k != "deploymentConfig"})


def _dimensions(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in mapping.items()]


def put_metric_alarm(inputs: dict) -> dict:
    direct = {"alarmDescription": "AlarmDescription", "actionsEnabled": "ActionsEnabled",
              "alarmActions": "AlarmActions", "okActions": "OKActions", "metricName": "MetricName",
              "namespace": "Namespace", "statistic": "Statistic", "extendedStatistic": "ExtendedStatistic",
              "period": "Period", "evaluationPeriods": "EvaluationPeriods", "datapointsToAlarm": "DatapointsToAlarm",
              "threshold": "Threshold", "comparisonOperator": "ComparisonOperator",
              "treatMissingData": "TreatMissingData"}
    request = {api: _api_value(inputs[key]) for key, api in direct.items() if key in inputs}
    request["AlarmName"] = inputs["name"]
    if "dimensions" in inputs:
        request["Dimensions"] = _dimensions(inputs["dimensions"])
    if "metricQueries" in inputs:
        request["Metrics"] = []
        for query in inputs["metricQueries"]:
            item = {"Id": query["id"], "ReturnData": query.get("returnData", False)}
            for key, api in (("expression", "Expression"), ("label", "Label")):
                if key in query:
                    item[api] = query[key]
            if "metric" in query:
                metric = query["metric"]
                item["MetricStat"] = {
                    "Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"],
                               "Dimensions": _dimensions(metric.get("dimensions", {}))},
                    "Period": _api_value(metric["period"]), "Stat": metric["stat"]}
            request["Metrics"].append(item)
    return request


def create_usage_plan(inputs: dict, api_id: str, stage: str) -> dict:
    """API Gateway's own API names members in camelCase; the provider's throttleSettings is `throttle`."""
    throttle, quota = inputs["throttleSettings"], inputs["quotaSettings"]
    return {"name": inputs["name"], "apiStages": [{"apiId": api_id, "stage": stage}],
            "throttle": {"rateLimit": float(throttle["rateLimit"]), "burstLimit": int(throttle["burstLimit"])},
            "quota": {"limit": int(quota["limit"]), "period": quota["period"]}}


def create_stage(inputs: dict, api_id: str, deployment_id: str) -> dict:
    return {"restApiId": api_id, "stageName": inputs["stageName"], "deploymentId": deployment_id,
            "tracingEnabled": inputs.get("xrayTracingEnabled", False)}


def update_stage_access_logs(inputs: dict, api_id: str) -> dict:
    """Access logging is set on a stage by patch operations, as the provider does after CreateStage."""
    settings = inputs["accessLogSettings"]
    return {"restApiId": api_id, "stageName": inputs["stageName"], "patchOperations": [
        {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": settings["destinationArn"]},
        {"op": "replace", "path": "/accessLogSettings/format", "value": settings["format"]}]}


def put_composite_alarm(inputs: dict) -> dict:
    return {"AlarmName": inputs["alarmName"], "AlarmRule": inputs["alarmRule"],
            "ActionsEnabled": inputs.get("actionsEnabled", True), "AlarmActions": inputs.get("alarmActions", []),
            "OKActions": inputs.get("okActions", []), "AlarmDescription": inputs.get("alarmDescription", "")}


def create_budget(inputs: dict, account_id: str) -> dict:
    """aws:budgets/budget:Budget as the provider sends it: CreateBudget with its notifications and subscribers."""
    budget = {"BudgetName": inputs["name"], "BudgetType": inputs["budgetType"], "TimeUnit": inputs["timeUnit"],
              "BudgetLimit": {"Amount": inputs["limitAmount"], "Unit": inputs["limitUnit"]},
              "CostFilters": {f["name"]: f["values"] for f in inputs.get("costFilters", [])}}
    notifications = [{
        "Notification": {"NotificationType": n["notificationType"], "ComparisonOperator": n["comparisonOperator"],
                         "Threshold": n["threshold"], "ThresholdType": n["thresholdType"]},
        "Subscribers": [{"SubscriptionType": "SNS", "Address": arn} for arn in n.get("subscriberSnsTopicArns", [])]
        + [{"SubscriptionType": "EMAIL", "Address": a} for a in n.get("subscriberEmailAddresses", [])],
    } for n in inputs.get("notifications", [])]
    return {"AccountId": account_id, "Budget": budget, "NotificationsWithSubscribers": notifications}
