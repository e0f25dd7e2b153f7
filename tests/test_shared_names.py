"""Names every layer shares come from components.names, and standalone copies stay pinned to it."""

from __future__ import annotations

import re

from rich.console import Console

import drift.job
from components import names
from infra.ops.kserve_rollout import KServeRollout
from infra.ops.rollout import guard_alarm_names
from tests.harness import rollback_alarm_names, stack_plan


def test_the_drift_job_default_namespace_is_the_shared_one():
    assert drift.job.NAMESPACE == names.DRIFT_METRIC_NAMESPACE


def test_the_drift_job_publishes_the_shared_metric_names():
    assert {drift.job.PSI_METRIC, drift.job.MAX_PSI_METRIC, drift.job.KS_METRIC,
            drift.job.MAX_PREDICTION_PSI_METRIC} == set(names.DRIFT_METRICS)
    assert drift.job.MAX_PSI_METRIC == names.DRIFT_MAX_PSI
    assert drift.job.MAX_PREDICTION_PSI_METRIC == names.DRIFT_MAX_PREDICTION_PSI


def test_the_drift_lambda_receives_the_namespace_it_publishes_to():
    (function,) = [f for f in stack_plan("prod").of_type("aws:lambda/function:Function")
                   if f.name == "mlserve-prod-reranker-drift"]  # the KServe deployment's, like SageMaker's
    env = function.inputs["environment"]["variables"]
    assert env[names.DRIFT_NAMESPACE_ENV] == names.DRIFT_METRIC_NAMESPACE
    job = drift.job.DriftJob.from_environment(env)
    assert job.namespace == names.DRIFT_METRIC_NAMESPACE


def test_ops_guards_alarms_the_stack_declares_and_rollback_uses_the_shared_roles(stack):
    plan = stack_plan(stack)
    declared = {a.inputs.get("name") or a.inputs.get("alarmName") for a in plan.resources
                if a.type in ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm")}
    endpoint = f"mlserve-{stack}-resnet50"
    assert set(guard_alarm_names(endpoint)) <= declared
    assert {names.alarm_name(endpoint, r) for r in names.ROLLBACK_ALARM_ROLES} <= declared
    if stack == "prod":  # dev's single copy updates all at once: no rolling policy carries rollback alarms
        assert set(rollback_alarm_names(plan, endpoint)) == {names.alarm_name(endpoint, r)
                                                             for r in names.ROLLBACK_ALARM_ROLES}


class PlannedIngress:
    """A KubeApi that answers with the Ingress exactly as the prod plan declares it."""

    def ingress_annotations(self, namespace, name):
        ingress = next(r for r in stack_plan("prod").resources if r.type.endswith(":Ingress"))
        assert (ingress.inputs["metadata"]["namespace"], ingress.inputs["metadata"]["name"]) == (namespace, name)
        return ingress.inputs["metadata"]["annotations"]


def test_ops_reads_the_split_the_ingress_declares():
    rollout = KServeRollout(PlannedIngress(), "reranker", "mlserve-prod-reranker", Console())  # type: ignore[arg-type]
    split = rollout.split()
    assert split is not None and split.canary == names.canary_service("reranker")
    assert 0 < split.canary_percent < 100


def test_the_keda_trigger_and_ops_reach_the_same_prometheus():
    scaled = next(r for r in stack_plan("prod").resources if r.type.endswith(":ScaledObject"))
    address = scaled.inputs["spec"]["triggers"][0]["metadata"]["serverAddress"]
    namespace, service = names.PROMETHEUS_PROXY
    host = re.match(r"http://([^.]+)\.([^.]+)\.svc\.cluster\.local:(\d+)$", address)
    assert host and (host[2], f"{host[1]}:{host[3]}") == (namespace, service)

