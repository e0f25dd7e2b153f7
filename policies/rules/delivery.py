"""Changes roll out gradually with automatic rollback, every deployment is watched, prod keeps its evidence."""

from components.names import (
    COLD_START_TAG,
    INTER_TOKEN_LATENCY,
    KSERVE_ERROR_RATE,
    P99_LATENCY,
    TIME_TO_FIRST_TOKEN,
    TRACK_LABEL,
)

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule
from .llm import vllm_services

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
COMPONENT = "aws-native:sagemaker:InferenceComponent"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"


@stack_rule("progressive-rollout-with-rollback",
            description="Endpoints (or their inference components) update blue/green or rolling and roll back "
                        "automatically on alarms (prod: mandatory).",
            fix="Set rollout.strategy to canary, linear, blue_green or rolling for the deployment (rolling with "
                "inference components); mlserve then declares the deployment_config with the latency and 5xx alarms "
                "as auto-rollback alarms.")
def progressive_rollout_with_rollback(resources, config):
    components = {}
    for component in of_type(resources, COMPONENT):
        components.setdefault(component.props.get("endpointName"), []).append(component)
    for endpoint in of_type(resources, ENDPOINT):
        hosted = components.get(endpoint.props.get("name"))
        for resource in hosted or [endpoint]:
            for message in _rollout_weaknesses(resource.props, config, component=bool(hosted)):
                yield message, resource.urn


def _rollout_weaknesses(props, config, component: bool):
    deployment = props.get("deploymentConfig") or {}
    policy = deployment.get("blueGreenUpdatePolicy")
    rolling = deployment.get("rollingUpdatePolicy")
    alarms = as_list((deployment.get("autoRollbackConfiguration") or {}).get("alarms"))
    if rolling:
        if not alarms:
            yield "no auto-rollback alarms"
        batch = (rolling.get("maximumBatchSize") or {}).get("value") or 100
        if is_prod(config) and (not rolling.get("waitIntervalInSeconds") or batch >= 100):
            yield "prod replaces everything in one unbaked batch: a bad model reaches every copy before an alarm can fire"
        return
    if component:
        copies = (props.get("runtimeConfig") or {}).get("copyCount") or 0
        if not is_prod(config) and copies <= 1:
            return  # one copy cannot roll (a batch is 5-50% of the copies): dev's all_at_once is all there is
        if any(t.get("key") == COLD_START_TAG and t.get("value") == "true" for t in as_list(props.get("tags"))):
            return  # it scales to zero copies, and an update at one copy has no batch SageMaker would take
        yield "the inference component has no rolling update policy: a new model replaces every copy at once"
        return
    if not policy:
        yield "no blue/green or rolling update policy: a new model replaces the old one with no bake and no way back"
    if not alarms:
        yield "no auto-rollback alarms"
    routing = (policy or {}).get("trafficRoutingConfiguration") or {}
    if is_prod(config) and routing.get("type") == "ALL_AT_ONCE" and not routing.get("waitIntervalInSeconds"):
        yield "prod shifts all traffic at once with no bake time"


def _alarm_metrics(alarm):
    """(metric name, dimensions) pairs an alarm watches, directly or through metric math."""
    props = alarm.props
    pairs = []
    if props.get("metricName"):
        pairs.append((props.get("metricName"), props.get("dimensions") or {}))
    for query in as_list(props.get("metricQueries")):
        metric = query.get("metric")
        if metric:
            pairs.append((metric.get("metricName"), metric.get("dimensions") or {}))
    return pairs


@stack_rule("endpoint-latency-and-error-alarms",
            description="Every endpoint has a latency alarm and an error alarm that notify the alert topic.",
            fix="SageMaker: declare EndpointAlarms with the stack's SNS topic in alarm_actions. KServe: give the "
                "Prometheus release the deployment's slo_alert_rules and an Alertmanager sns_configs receiver.")
def endpoint_latency_and_error_alarms(resources, config):
    watched: dict[str, set[str]] = {}
    for alarm in of_type(resources, ALARM):
        notifies = alarm.props.get("actionsEnabled") is not False and any(
            str(a).startswith("arn:aws:sns:") for a in as_list(alarm.props.get("alarmActions")))
        if not notifies:
            continue
        for metric_name, dimensions in _alarm_metrics(alarm):
            watched_name = dimensions.get("EndpointName") or dimensions.get("InferenceComponentName")
            if watched_name:
                watched.setdefault(watched_name, set()).add(metric_name)
    hosted: dict[str, list[str]] = {}
    for component in of_type(resources, COMPONENT):
        hosted.setdefault(component.props.get("endpointName"), []).append(component.props.get("inferenceComponentName"))
    for endpoint in of_type(resources, ENDPOINT):
        name = endpoint.props.get("name")
        # An endpoint of inference components reports its invocations per component: each must be watched.
        for watched_name in hosted.get(name) or [name]:
            missing = {"ModelLatency", "Invocation5XXErrors"} - watched.get(watched_name, set())
            if missing:
                yield f"endpoint {watched_name} has no notifying alarm on {sorted(missing)}", endpoint.urn
        alarm_names = {a.props.get("name") for a in of_type(resources, ALARM)}
        rollback = as_list(((endpoint.props.get("deploymentConfig") or {}).get("autoRollbackConfiguration") or {})
                           .get("alarms"))
        for ref in rollback:
            if ref.get("alarmName") not in alarm_names:
                yield f"rollback alarm {ref.get('alarmName')} of {name} is not declared in the stack", endpoint.urn
    yield from _kserve_slo_alerts(resources)


def _kserve_slo_alerts(resources):
    """KServe deployments alert through Prometheus: latency and error rules, and an Alertmanager SNS receiver."""
    services = [r for r in of_type(resources, "kubernetes:serving.kserve.io/v1beta1:InferenceService")
                if ((r.props.get("metadata") or {}).get("labels") or {}).get(TRACK_LABEL) != "canary"]
    if not services:
        return
    rules, sns, llm_services = [], False, vllm_services(resources)
    for release in of_type(resources, "kubernetes:helm.sh/v3:Release"):
        values = release.props.get("values") or {}
        for group in as_list(((values.get("serverFiles") or {}).get("alerting_rules.yml") or {}).get("groups")):
            rules += as_list(group.get("rules"))
        receivers = as_list(((values.get("alertmanager") or {}).get("config") or {}).get("receivers"))
        sns = sns or any(str(c.get("topic_arn", "")).startswith("arn:aws:sns:") for r in receivers
                         for c in as_list(r.get("sns_configs")))
    for service in services:
        name = (service.props.get("metadata") or {}).get("name")
        kinds = {str(r.get("alert", "")).removeprefix(f"{name}-") for r in rules
                 if (r.get("labels") or {}).get("deployment") == name}
        # A language model is also held to its token latencies (what its users feel).
        wanted = {P99_LATENCY, KSERVE_ERROR_RATE, *((TIME_TO_FIRST_TOKEN, INTER_TOKEN_LATENCY)
                                                    if service in llm_services else ())}
        missing = wanted - kinds
        if missing:
            yield f"InferenceService {name} has no Prometheus alert for {sorted(missing)}", service.urn
        elif not sns:
            yield f"InferenceService {name}'s alerts reach no SNS topic (no Alertmanager sns_configs)", service.urn


@resource_rule("alarms-notify", types=[ALARM, COMPOSITE_ALARM],
               description="Every alarm, composite alarms included, notifies someone (or drives a scaling policy).",
               fix="Set actions_enabled=True and alarm_actions=[<the stack's alert topic ARN>].")
def alarms_notify(props, config):
    if props.get("actionsEnabled") is False:
        yield "actionsEnabled is false: the alarm guards nothing"
    actions = [str(a) for a in as_list(props.get("alarmActions"))]
    # A scaling alarm (its action a scaling policy, e.g. waking an async endpoint from zero) acts; it does not page.
    if actions and all(a.startswith("arn:aws:autoscaling:") for a in actions):
        return
    if not any(a.startswith("arn:aws:sns:") for a in actions):
        yield "no SNS topic in alarmActions"


@resource_rule("prod-data-capture", types=["aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                                           INFERENCE_SERVICE],
               description="Prod endpoints capture a sample of requests (drift monitoring and incident review): "
                           "SageMaker's data capture, KServe's request logger to the capture sink.",
               fix="Set deployments[].data_capture.enabled: true (and a sample_percent) in Pulumi.prod.yaml.")
def prod_data_capture(props, config):
    """A KServe canary track (label mlserve.io/track=canary) serves the candidate beside the stable track, which
    captures; the canary is not required to."""
    if not is_prod(config):
        return
    if props.get("kind") == "InferenceService":
        metadata = props.get("metadata") or {}
        if (metadata.get("labels") or {}).get(TRACK_LABEL) != "canary" and not (
                ((props.get("spec") or {}).get("predictor") or {}).get("logger") or {}).get("url"):
            yield f"InferenceService {metadata.get('name')} logs no requests to the capture sink (predictor.logger)"
        return
    if not (props.get("dataCaptureConfig") or {}).get("enableCapture"):
        yield "data capture is off"
