"""Names that several layers must spell identically: the components declare them, the program wires them, the
operator tools (`infra.ops`), the demo's stand-ins and the tests look them up.

One home, so a rename cannot leave a copy behind (the drift namespace once printed as `mlserve/drift` while the job
published `mlserve/Drift`). Names and name builders only, never configuration: components may import it.
Standalone packages keep what they need as a value they receive at deploy time (the drift job reads its namespace
from the environment the DriftMonitor sets) and a test pins their own default to the one here.
"""

from __future__ import annotations

import hashlib
import json

PROJECT = "mlserve"


def image_repository_name(stack: str, repository: str) -> str:
    """The ECR repository a stack owns for a config's `image.repository` (`mlserve-dev/triton`): ECR names are
    unique per account and region, so two stacks in one account (a dev and a feature stack) never claim the same."""
    return f"{PROJECT}-{stack}/{repository}"


STACK_TAG = "mlserve:stack"
"""On every resource of a stack (provider default tags): the cost-allocation tag its budget filters on."""


def resource_name(stack: str, *parts: str) -> str:
    """`resource_name("prod", "resnet50", "endpoint")` -> `mlserve-prod-resnet50-endpoint`."""
    return "-".join([PROJECT, stack, *parts])


def deployment_name(stack: str, deployment: str) -> str:
    """What a deployment's own resources are named after (`mlserve-prod-resnet50`): its SageMaker endpoint or
    inference component, its API, its alarms, its KServe namespace, its model package group."""
    return resource_name(stack, deployment)


def endpoint_name(stack: str, endpoint_group: str) -> str:
    """The SageMaker endpoint a deployment is served from: its own, or the one its `endpoint` group shares."""
    return resource_name(stack, endpoint_group)


def deployment_of(stack: str, name: str) -> str | None:
    """The deployment a `deployment_name` belongs to, or None for a name of the stack's shared resources."""
    prefix = resource_name(stack) + "-"
    return name.removeprefix(prefix) if name.startswith(prefix) else None


USAGE_TAG = "mlserve:usage"
"""On a deployment's API: the traffic it is expected to carry (`requests_per_second=10 request_kb=16 response_kb=4`),
which the cost estimate and the pack's budget rule price from the plan; a language model's adds the output tokens a
second one replica serves within its SLOs (`tokens_per_second_at_slo=1200`, or `unmeasured`), which the estimate
prices a million tokens from."""
TOKENS_UNMEASURED = "unmeasured"
"""`tokens_per_second_at_slo` of a language model whose throughput `python -m infra.ops profile` has not measured."""


def usage_tag(requests_per_second: float, request_kb: float, response_kb: float, *, llm: bool = False,
              tokens_per_second_at_slo: float | None = None) -> str:
    tag = f"requests_per_second={requests_per_second:g} request_kb={request_kb:g} response_kb={response_kb:g}"
    if llm:
        tokens = TOKENS_UNMEASURED if tokens_per_second_at_slo is None else f"{tokens_per_second_at_slo:.12g}"
        tag += f" tokens_per_second_at_slo={tokens}"
    return tag


def parse_usage_tag(value: str) -> dict[str, float]:
    """The figures of a `usage_tag` value; a malformed one gives what it can (the estimate falls back per figure)."""
    found = {}
    for part in str(value).split():
        key, _, number = part.partition("=")
        try:
            found[key] = float(number)
        except ValueError:
            continue
    return found


# ---- labels and tags several layers read ------------------------------------------------------------------------
GROUP_LABEL = "mlserve.io/node-group"
"""On every node (managed group or Karpenter pool): what serving pods select their GPUs by."""
DEPLOYMENT_LABEL = "mlserve.io/deployment"
"""On every Kubernetes object of a KServe deployment: the cost estimate and the pack group by it."""
TRACK_LABEL = "mlserve.io/track"
"""`stable` or `canary`, on a KServe deployment's InferenceServices and their scalers."""
ISVC_LABEL = "serving.kserve.io/inferenceservice"
"""KServe's own label on an InferenceService's pods (its name)."""
API_DESTINATION_KEY_TAG = "EventBridgeApiDestinations"
"""EventBridge uses a customer-managed key for a connection's secret only when the key carries this tag (true)."""


# ---- SageMaker -------------------------------------------------------------------------------------------------
PRIMARY_VARIANT = "primary"
"""The production variant every SageMaker deployment serves its main model from."""

P99_LATENCY, SERVER_ERROR_RATE, CLIENT_ERROR_RATE = "p99-latency", "5xx-rate", "4xx-rate"
GPU_UTILIZATION, GPU_MEMORY, SERVICE_UNHEALTHY = "gpu-utilization", "gpu-memory", "service-unhealthy"
ROLLBACK_ALARM_ROLES = (P99_LATENCY, SERVER_ERROR_RATE)
"""The alarms SageMaker's auto-rollback watches during a blue/green deployment."""
GUARD_ALARM_ROLES = (P99_LATENCY, SERVER_ERROR_RATE, SERVICE_UNHEALTHY)
"""The alarms `infra.ops rollout promote` watches at every step: the rollback ones and their composite."""


def alarm_name(endpoint_name: str, role: str) -> str:
    """CloudWatch alarm of one endpoint: `mlserve-prod-resnet50-5xx-rate`."""
    return f"{endpoint_name}-{role}"


def data_capture_destination(bucket: str, endpoint_name: str) -> str:
    """Where an endpoint's data capture is configured to write (S3 URI)."""
    return f"s3://{bucket}/{data_capture_prefix(endpoint_name)}"


def data_capture_prefix(endpoint_name: str) -> str:
    return f"data-capture/{endpoint_name}/"


# On an inference component whose config accepts scaling to zero copies in prod; the policy pack reads it.
COLD_START_TAG = "mlserve:tolerates-cold-start"


def async_prefix(endpoint_name: str, part: str) -> str:
    """Async inference in the model bucket: clients upload to `input/`, SageMaker writes `output/` and `failure/`."""
    assert part in ("input", "output", "failure")
    return f"async/{endpoint_name}/{part}/"


ENGINE_STORE_PREFIX = "engines/"
"""Where serving pods share built TensorRT engines in the model bucket (the image receives the URI as
MLSERVE_ENGINE_STORE)."""


def engine_store_prefix(deployment: str) -> str:
    """One deployment's engines (`engines/mlserve-prod-reranker/`): its serving role may read, list and write only
    there, so no deployment can replace another's engine (the stored sha256 catches corruption, not a writer)."""
    return f"{ENGINE_STORE_PREFIX}{deployment}/"


def captured_files_prefix(endpoint_name: str, variant: str = PRIMARY_VARIANT) -> str:
    """Where SageMaker actually puts a variant's capture files: `<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/`."""
    return f"{data_capture_prefix(endpoint_name)}{endpoint_name}/{variant}/"


# ---- drift -----------------------------------------------------------------------------------------------------
DRIFT_METRIC_NAMESPACE = "mlserve/Drift"
DRIFT_MAX_PSI = "MaxPopulationStabilityIndex"
"""The per-deployment worst feature's PSI: what the dashboard plots and the drift alarm watches."""
DRIFT_MAX_PREDICTION_PSI = "MaxPredictionStabilityIndex"
DRIFT_METRICS = ("PopulationStabilityIndex", DRIFT_MAX_PSI, "KolmogorovSmirnovStatistic", DRIFT_MAX_PREDICTION_PSI)
"""Every metric the drift job publishes (its own copies are pinned to these by a test)."""
DRIFT_NAMESPACE_ENV = "MLSERVE_METRIC_NAMESPACE"
"""The environment variable through which the drift job (a standalone Lambda bundle) receives the namespace."""

# ---- KServe on EKS ---------------------------------------------------------------------------------------------
PROMETHEUS_NAMESPACE, PROMETHEUS_SERVICE, PROMETHEUS_PORT = "monitoring", "prometheus-server", 80
PROMETHEUS_URL = f"http://{PROMETHEUS_SERVICE}.{PROMETHEUS_NAMESPACE}.svc.cluster.local:{PROMETHEUS_PORT}"
"""In-cluster address of the Prometheus chart's server (KEDA's trigger, Alertmanager's rules)."""
PROMETHEUS_PROXY = (PROMETHEUS_NAMESPACE, f"{PROMETHEUS_SERVICE}:{PROMETHEUS_PORT}")
"""The same server through the API server's service proxy, as `infra.ops` reaches it from outside the cluster."""


ELB_NAME_MAX = 32


def load_balancer_name(base: str, role: str) -> str:
    """An Elastic Load Balancing name (`mlserve-prod-reranker-nlb`): unique per account and region across ALBs and
    NLBs alike (DuplicateLoadBalancerName), at most 32 characters, no hyphen at either end. The role suffix survives
    truncation, so the NLB and the ALB in front of one deployment never share a name."""
    head = base[: ELB_NAME_MAX - len(role) - 1].rstrip("-")
    return f"{head}-{role}"


def alb_split_service(service: str) -> str:
    """The Ingress backend name that tells the AWS Load Balancer Controller to read the weighted-split action."""
    return f"{service}-split"


def alb_split_annotation(service: str) -> str:
    """The Ingress annotation holding the stable/canary forward weights of one KServe deployment."""
    return f"alb.ingress.kubernetes.io/actions.{alb_split_service(service)}"


def split_weights(annotation: str) -> dict[str, int]:
    """The forward weights of an `alb_split_annotation` value, by predictor Service name (`predictor_name`)."""
    groups = json.loads(annotation)["forwardConfig"]["targetGroups"]
    return {str(g["serviceName"]): int(g["weight"]) for g in groups}


def predictor_name(isvc: str) -> str:
    """What KServe (v0.20.0, Standard mode) names an InferenceService's predictor Deployment and Service; its pods'
    names start with it."""
    return f"{isvc}-predictor"


def canary_service(service: str) -> str:
    """The second InferenceService that serves a KServe deployment's candidate."""
    return f"{service}-canary"


def kserve_alert_name(deployment: str, role: str) -> str:
    """Prometheus alert of one KServe deployment: `reranker-p99-latency`, `reranker-error-rate`."""
    return f"{deployment}-{role}"


KSERVE_ERROR_RATE = "error-rate"
"""Failures over all requests, from Triton's counters (KServe has no 4xx/5xx split of its own)."""
TIME_TO_FIRST_TOKEN, INTER_TOKEN_LATENCY, SCALING_SIGNAL_ABSENT = "ttft-p99", "itl-p99", "scaling-signal-absent"
"""An LLM deployment's token-level SLOs (alert roles; CloudWatch alarms for SageMaker, Prometheus alerts for KServe).
Every firing alert of a deployment stops its canary, so these roll an LLM back as p99 latency does a tensor model."""


# ---- KServe's node-local model cache ---------------------------------------------------------------------------
MODEL_CACHE_NODE_LABEL = ("kserve/localmodel", "worker")
"""The label KServe v0.20.0's local-model agent DaemonSet selects nodes by (chart kserve-localmodel-resources'
default nodeSelector): nodes of a pool serving language models carry it."""
MODEL_CACHE_JOBS_NAMESPACE = "kserve-localmodel-jobs"
"""Where KServe's local-model controller runs the download Jobs (the chart's `jobNamespace` default)."""
MODEL_CACHE_HOST_PATH = "/models"
"""The node folder the agent DaemonSet keeps models in (a fixed hostPath in the chart's rendered DaemonSet): the node
group's volumes must point there, and it must exist writable before the agent (non-root) can use it."""
MODEL_CACHE_ACCOUNT = "model-cache"
"""The service account a LocalModelCache names, in the Jobs' namespace: KServe reads only its annotations (the S3
region and endpoint for the Job's environment); the Job pods themselves run as `default`, which gets the read role."""
NODE_GROUP_ANNOTATION = "serving.kserve.io/nodegroup"
"""On an InferenceService: which LocalModelNodeGroup's cache its pods use (KServe pkg/constants)."""


def model_cache_name(namespace: str, source_uri: str) -> str:
    """The LocalModelCache of one model version (cluster-scoped, so named after the namespace; one per source URI,
    which KServe keeps immutable and unique among caches): a new version is a new cache, and promoting a canary keeps
    the cache it already had."""
    return f"{namespace}-{hashlib.sha256(source_uri.encode()).hexdigest()[:12]}"


# ---- Karpenter -------------------------------------------------------------------------------------------------
KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT = "kube-system", "karpenter"
"""Where the controller runs, and the service account its EKS Pod Identity association names."""
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"
"""Tag on the private subnets (value: the cluster name) by which the EC2NodeClass finds where to launch nodes."""
