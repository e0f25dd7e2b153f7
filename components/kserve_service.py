"""KServeService: one model on the EKS cluster behind an internal ALB, with a real canary split.

Resources, in the deployment's own namespace:
- an IRSA role that may read only this model's S3 prefixes and decrypt with the stack key, and its service account;
- the `mlserve-triton` ServingRuntime (the bundled image in KServe mode: v2 HTTP 8080, gRPC 9000, metrics 8002);
- the stable InferenceService (`model`) and, during a canary, a second one (`<name>-canary`, the candidate): Standard mode,
  GPU limits, the GPU toleration and node selector, readiness on /v2/health/ready, a startup allowance for engine builds,
  topology spread across zones in prod;
- a KEDA ScaledObject per InferenceService scaling on in-flight requests (Little's law over Triton's request
  duration counter, read from Prometheus), scale-in slower than scale-out;
- a PodDisruptionBudget per InferenceService;
- namespace isolation: Pod Security `restricted` enforced on the namespace, a default-deny NetworkPolicy (in and
  out), then only what serving needs: the serving port from the load-balancer subnets (the ALB's addresses), metrics
  from Prometheus, DNS, and HTTPS out (S3, STS);
- an internal ALB Ingress in the load-balancer subnets, behind the PrivateLink's security group (only the VPC link's
  NLB reaches it), whose forward action weighs the two predictor Services by the canary percent.

KServe ignores `canaryTrafficPercent` in Standard mode, and v0.20.0's `spec.canary` weighs traffic only through Gateway
API routes (and not yet in that release), so the split is the ALB's weighted target groups: config
`rollout: canary` with `percent: 10` ends in a 90/10 split; `percent: 0` (or `all_at_once`) removes the canary and
puts all traffic back on `model` - one config change either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .capture_sink import SINK_LABELS, SINK_PORT
from .cluster_addons import GPU_TOLERATION
from .eks_cluster import irsa_trust_policy
from .model_servers import RESTRICTED_CONTAINER, SERVING_PORT, LlmScaling, ModelServer, scale_signals
from .names import (
    DEPLOYMENT_LABEL,
    GROUP_LABEL,
    ISVC_LABEL,
    MODEL_CACHE_ACCOUNT,
    NODE_GROUP_ANNOTATION,
    TRACK_LABEL,
    alb_split_annotation,
    alb_split_service,
    canary_service,
    engine_store_prefix,
    load_balancer_name,
    model_cache_name,
    predictor_name,
)
from .policy_document import Statement, render, via_service

AGENT_PORT = 9081
"""KServe v0.20.0 injects its agent beside the model when the predictor has a `logger`, and the predictor Service then
targets the agent's port (`InferenceServiceDefaultAgentPort`, pkg/constants; the service reconciler). Pinned to the
upstream source by tests/kubernetes against schemas/kserve's record of it."""
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                  "seccompProfile": {"type": "RuntimeDefault"}}


@dataclass(frozen=True)
class ModelRef:
    uri: str  # s3://bucket/prefix/model.tar.gz (KServe's storage initializer unpacks it into /mnt/models)
    bucket: str
    prefix: str


@dataclass(frozen=True)
class ModelCache:
    """Serve from KServe's node-local model cache: each node of the pool downloads a model version once."""
    node_group: str
    """The LocalModelNodeGroup (named after the GPU pool) whose nodes keep the weights."""
    size_gib: int


@dataclass(frozen=True)
class KServeModelSpec:
    """What is served and how (the config's side); KServeServiceArgs adds where the traffic comes from."""
    name: str
    namespace: str
    server: ModelServer
    """Triton (tensors) or vLLM (language models): the runtime, its probes, its metrics and what KEDA scales on."""
    model: ModelRef
    candidate: ModelRef | None  # the canary's model; None: no canary
    canary_percent: int
    gpus: int
    cpu: str
    memory: str
    node_group: str
    min_replicas: int
    max_replicas: int
    target_concurrency: int | None
    """Triton: in-flight requests per replica KEDA holds."""
    llm_scaling: LlmScaling | None
    """vLLM: waiting requests and KV-cache use per replica KEDA holds."""
    scale_in_cooldown_seconds: int
    region: str
    kms_key_arn: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    load_balancer_cidrs: Sequence[str]
    """The load-balancer subnets: the only addresses the serving port admits (the ALB's IP targets)."""
    prometheus_url: str
    spread_across_zones: bool
    certificate_arn: str | None = None
    model_cache: ModelCache | None = None
    """Language models: the weights come from the node's cache instead of a download per replica."""


@dataclass(frozen=True)
class KServeServiceArgs:
    spec: KServeModelSpec
    alb_security_group_id: pulumi.Input[str]
    """The PrivateLink's ALB group: only its NLB may connect."""
    alb_subnet_ids: Sequence[pulumi.Input[str]]
    deletion_protection: bool
    capture_url: pulumi.Input[str] | None
    """Where KServe's logger posts the production track's requests and responses (the CaptureSink); None: off."""


def alb_name(spec: KServeModelSpec) -> str:
    return load_balancer_name(spec.namespace, "alb")


def logged(capture: bool, track: str) -> bool:
    """Capture covers the production track only: its traffic is what the baseline and the drift alarms are about."""
    return capture and track == "stable"


def target_port(capture: bool) -> int:
    """The pod port the predictor Service (and so the ALB's IP targets) sends to: the agent's once KServe injects it."""
    return AGENT_PORT if capture else SERVING_PORT


def served_tracks(spec: KServeModelSpec) -> list[str]:
    """`stable` always; `canary` while a candidate gets a share of traffic."""
    return ["stable", *(["canary"] if spec.candidate and spec.canary_percent > 0 else [])]


def target_ports(spec: KServeModelSpec, capture: bool) -> list[int]:
    """Every port the load balancer reaches the serving pods on, over the tracks served."""
    return sorted({target_port(logged(capture, track)) for track in served_tracks(spec)})


def serving_role_policy(args: KServeModelSpec) -> pulumi.Output[str]:
    models = [m for m in (args.model, args.candidate) if m]
    engines = (
        # Built engines are shared between this deployment's replicas through the bucket (serving_image/
        # engine_store.py): read and write only there. The list makes S3 answer a missing engine 404, not 403.
        Statement(sid="ShareBuiltEngines", actions=["s3:GetObject", "s3:PutObject"],
                  resources=[f"arn:aws:s3:::{args.model.bucket}/{engine_store_prefix(args.namespace)}*"]),
        Statement(sid="ListBuiltEngines", actions=["s3:ListBucket"], resources=[f"arn:aws:s3:::{args.model.bucket}"],
                  conditions={"StringLike": {"s3:prefix": [f"{engine_store_prefix(args.namespace)}*"]}}),
        Statement(sid="EncryptBuiltEngines", actions=["kms:GenerateDataKey"], resources=[args.kms_key_arn],
                  conditions=via_service("s3", args.kms_key_arn)),
    ) if args.server.shares_engines else ()
    return render(
        Statement(sid="ReadThisModel", actions=["s3:GetObject"],
                  resources=sorted({f"arn:aws:s3:::{m.bucket}/{m.prefix}*" for m in models})),
        Statement(sid="ListThisModel", actions=["s3:ListBucket"], resources=[f"arn:aws:s3:::{args.model.bucket}"],
                  conditions={"StringLike": {"s3:prefix": sorted({f"{m.prefix}*" for m in models})}}),
        Statement(sid="DecryptModels", actions=["kms:Decrypt"], resources=[args.kms_key_arn],
                  conditions=via_service("s3", args.kms_key_arn)),
        *engines,
    )


class KServeService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KServeServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:serving:KServeService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.spec.namespace
        labels = {"app.kubernetes.io/part-of": "mlserve", DEPLOYMENT_LABEL: args.spec.name}

        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": ns, "labels": {
            **labels, "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}},
            opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        role = aws.iam.Role(f"{name}-serving-role", assume_role_policy=irsa_trust_policy(
            args.spec.oidc_provider_arn, args.spec.oidc_issuer, ns, args.spec.name), opts=child)
        aws.iam.RolePolicy(f"{name}-serving-role", role=role.id, policy=serving_role_policy(args.spec), opts=child)
        # No Kubernetes API token in the pods: nothing there calls the API; IRSA projects its own AWS token.
        k8s.core.v1.ServiceAccount(f"{name}-service-account", automount_service_account_token=False, metadata={
            "name": args.spec.name, "namespace": ns, "labels": labels, "annotations": {
                "eks.amazonaws.com/role-arn": role.arn, "serving.kserve.io/s3-region": args.spec.region,
                "serving.kserve.io/s3-endpoint": f"s3.{args.spec.region}.amazonaws.com",
                "serving.kserve.io/s3-usehttps": "1"}}, opts=in_ns)

        server = args.spec.server
        k8s.apiextensions.CustomResource(
            f"{name}-runtime", api_version="serving.kserve.io/v1alpha1", kind="ServingRuntime",
            metadata={"name": server.runtime, "namespace": ns, "labels": labels},
            spec={
                "supportedModelFormats": [{"name": server.model_format, "autoSelect": False,
                                           **({"version": server.model_format_version}
                                              if server.model_format_version else {})}],
                **({"protocolVersions": list(server.protocol_versions)} if server.protocol_versions else {}),
                "annotations": {"prometheus.kserve.io/port": str(server.metrics_port),
                                "prometheus.kserve.io/path": "/metrics"},
                "containers": [server.container]},
            opts=in_ns)

        tracks = [("stable", args.spec.name, args.spec.model, args.spec.min_replicas, args.spec.max_replicas)]
        if "canary" in served_tracks(args.spec) and args.spec.candidate:
            tracks.append(("canary", canary_service(args.spec.name), args.spec.candidate, 1, args.spec.max_replicas))
        caches = self._model_caches(name, args.spec, args.spec.model_cache, [model for _, _, model, *_ in tracks],
                                    labels) if args.spec.model_cache else {}
        for track, isvc, model, low, high in tracks:
            # KServe labels an InferenceService with its cache only when it is admitted: the cache comes first (and
            # goes last: KServe refuses to delete a cache a service still uses).
            in_cache = pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[caches[model.uri]])) \
                if model.uri in caches else in_ns
            self._inference_service(name, args, track, isvc, model, low, high, labels, in_cache)

        self._network_policies(name, args, labels, {isvc: track for track, isvc, *_ in tracks}, in_ns)

        ingress = k8s.networking.v1.Ingress(f"{name}-ingress", metadata={
            "name": args.spec.name, "namespace": ns, "labels": labels,
            "annotations": {**self._alb_annotations(args, tracks),
                            # Our group (only the VPC link's NLB gets in); the controller adds the rule on the
                            # nodes' group that lets the ALB reach the pods.
                            "alb.ingress.kubernetes.io/security-groups": args.alb_security_group_id,
                            "alb.ingress.kubernetes.io/manage-backend-security-group-rules": "true",
                            "alb.ingress.kubernetes.io/subnets": pulumi.Output.all(*args.alb_subnet_ids).apply(
                                ",".join)}}, spec={
            "ingress_class_name": "alb",
            "rules": [{"http": {"paths": [{"path": "/", "path_type": "Prefix", "backend": {"service": (
                {"name": alb_split_service(args.spec.name), "port": {"name": "use-annotation"}} if len(tracks) > 1 else
                {"name": predictor_name(args.spec.name), "port": {"number": 80}})}}]}}]}, opts=in_ns)

        scheme = "https" if args.spec.certificate_arn else "http"
        self.url = ingress.status.apply(
            lambda s: f"{scheme}://{s.load_balancer.ingress[0].hostname}"
            if s and s.load_balancer and s.load_balancer.ingress else "")
        # The controller names the ALB after the annotation; it exists once the Ingress has an address.
        self.alb_arn = ingress.status.apply(lambda _: aws.lb.get_load_balancer_output(
            name=alb_name(args.spec), opts=pulumi.InvokeOptions(parent=self)).arn)
        self.alb_port = 443 if args.spec.certificate_arn else 80
        self.role_arn = role.arn
        self.register_outputs({"url": self.url, "role_arn": role.arn, "alb_arn": self.alb_arn})

    def _model_caches(self, name: str, spec: KServeModelSpec, cache: ModelCache, models: list[ModelRef],
                      labels: dict[str, str]) -> dict[str, pulumi.Resource]:
        """A LocalModelCache per served version, by source URI (KServe keeps a cache's URI immutable and unique):
        a new version is a new cache, and a promoted canary keeps the cache it had. The download Jobs read S3 as
        the cluster add-ons' model-cache identity."""
        caches: dict[str, pulumi.Resource] = {}
        for model in models:
            if model.uri in caches:
                continue
            cache_name = model_cache_name(spec.namespace, model.uri)
            caches[model.uri] = k8s.apiextensions.CustomResource(
                f"{name}-model-cache-{cache_name.rsplit('-', 1)[1]}", api_version="serving.kserve.io/v1alpha1",
                kind="LocalModelCache", metadata={"name": cache_name, "labels": labels},
                # KServe matches an InferenceService's storageUri to sourceModelUri (equal, or a folder under it).
                spec={"sourceModelUri": model.uri, "modelSize": f"{cache.size_gib}Gi",
                      "nodeGroups": [cache.node_group], "serviceAccountName": MODEL_CACHE_ACCOUNT},
                opts=pulumi.ResourceOptions(parent=self))
        return caches

    @staticmethod
    def _network_policies(name, args: KServeServiceArgs, labels, services: dict[str, str], opts) -> None:
        """Default deny, in and out, for every pod of the namespace; then only what serving needs."""
        ns = args.spec.namespace
        k8s.networking.v1.NetworkPolicy(f"{name}-default-deny", metadata={
            "name": "default-deny", "namespace": ns, "labels": labels}, spec={
            "pod_selector": {}, "policy_types": ["Ingress", "Egress"]}, opts=opts)
        k8s.networking.v1.NetworkPolicy(f"{name}-network-policy", metadata={
            "name": f"{args.spec.name}-serving", "namespace": ns, "labels": labels}, spec={
            "pod_selector": {"match_expressions": [{"key": ISVC_LABEL, "operator": "In", "values": list(services)}]},
            "policy_types": ["Ingress", "Egress"],
            "ingress": [
                {"from_": [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                 "ports": [{"port": args.spec.server.metrics_port, "protocol": "TCP"}]}],
            "egress": [
                {"to": [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
                         "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                # The model download (S3, through the gateway endpoint's public prefixes) and STS for IRSA.
                {"ports": [{"port": 443, "protocol": "TCP"}]},
                *([{"to": [{"pod_selector": {"match_labels": SINK_LABELS}}],
                    "ports": [{"port": SINK_PORT, "protocol": "TCP"}]}] if args.capture_url is not None else [])]}, opts=opts)
        # The ALB targets pod IPs from its ENIs, which live only in the load-balancer subnets, on the one port the
        # track's predictor Service targets: a logged track only through KServe's agent, so no request skips capture.
        for isvc, track in services.items():
            k8s.networking.v1.NetworkPolicy(f"{name}-{track}-from-load-balancer", metadata={
                "name": f"{isvc}-from-load-balancer", "namespace": ns, "labels": labels}, spec={
                "pod_selector": {"match_labels": {ISVC_LABEL: isvc}}, "policy_types": ["Ingress"],
                "ingress": [{"from_": [{"ip_block": {"cidr": cidr}} for cidr in args.spec.load_balancer_cidrs],
                             "ports": [{"port": target_port(logged(args.capture_url is not None, track)), "protocol": "TCP"}]}]}, opts=opts)

    @staticmethod
    def _alb_annotations(args: KServeServiceArgs, tracks) -> dict[str, str]:
        annotations = {
            "alb.ingress.kubernetes.io/load-balancer-name": alb_name(args.spec),
            "alb.ingress.kubernetes.io/scheme": "internal",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/healthcheck-path": args.spec.server.ready_path,
            "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join([
                "routing.http.drop_invalid_header_fields.enabled=true",
                f"deletion_protection.enabled={str(args.deletion_protection).lower()}",
                # A language model may think longer than the default 60 s before its first byte.
                *([f"idle_timeout.timeout_seconds={args.spec.server.idle_timeout_seconds}"]
                  if args.spec.server.idle_timeout_seconds else [])]),
        }
        if args.spec.certificate_arn:
            annotations.update({
                "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTPS": 443}]),
                "alb.ingress.kubernetes.io/certificate-arn": args.spec.certificate_arn,
                "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06"})
        else:
            annotations["alb.ingress.kubernetes.io/listen-ports"] = json.dumps([{"HTTP": 80}])
        if len(tracks) > 1:
            weights = {"stable": 100 - args.spec.canary_percent, "canary": args.spec.canary_percent}
            annotations[alb_split_annotation(args.spec.name)] = json.dumps({
                "type": "forward", "forwardConfig": {"targetGroups": [
                    {"serviceName": predictor_name(isvc), "servicePort": "80", "weight": weights[track]}
                    for track, isvc, *_ in tracks]}})
        return annotations

    def _inference_service(self, name, args: KServeServiceArgs, track, isvc, model: ModelRef, low, high, labels,
                           opts):
        ns = args.spec.namespace
        pod_labels = {**labels, TRACK_LABEL: track}
        server = args.spec.server
        probe = {"httpGet": {"path": server.ready_path, "port": SERVING_PORT}, "periodSeconds": 10}
        resources = {"cpu": args.spec.cpu, "memory": args.spec.memory, "nvidia.com/gpu": str(args.spec.gpus)}
        predictor = {
            "serviceAccountName": args.spec.name, "minReplicas": low, "maxReplicas": high,
            "tolerations": [GPU_TOLERATION], "nodeSelector": {GROUP_LABEL: args.spec.node_group},
            "securityContext": RESTRICTED_POD, "automountServiceAccountToken": False,
            **({"logger": {"mode": "all", "url": args.capture_url}} if logged(args.capture_url is not None, track) else {}),
            **({"terminationGracePeriodSeconds": server.drain_seconds} if server.drain_seconds else {}),
            "volumes": list(server.volumes),
            "model": {
                "modelFormat": {"name": server.model_format}, "runtime": server.runtime,
                **({"protocolVersion": "v2"} if "v2" in server.protocol_versions else {}),
                "storageUri": model.uri,
                "resources": {"requests": resources, "limits": resources},
                "env": list(server.env),
                "volumeMounts": list(server.volume_mounts),
                "securityContext": RESTRICTED_CONTAINER,
                **({"lifecycle": server.lifecycle} if server.lifecycle else {}),
                "readinessProbe": {**probe, "failureThreshold": 3},
                # Live but not ready leaves rotation; not live (a hung server) gets restarted. Checked only after
                # the startup probe passed, so an engine build or a weights load is never killed.
                "livenessProbe": {"httpGet": {"path": server.live_path, "port": SERVING_PORT},
                                  "periodSeconds": 15, "timeoutSeconds": 5, "failureThreshold": 4},
                "startupProbe": {**probe, "failureThreshold": server.startup_allowance_seconds // 10},
            },
        }
        if args.spec.spread_across_zones:
            predictor["topologySpreadConstraints"] = [{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {ISVC_LABEL: isvc}}}]
        service = k8s.apiextensions.CustomResource(
            f"{name}-{track}", api_version="serving.kserve.io/v1beta1", kind="InferenceService",
            metadata={"name": isvc, "namespace": ns, "labels": pod_labels, "annotations": {
                "serving.kserve.io/deploymentMode": "Standard",
                **({NODE_GROUP_ANNOTATION: args.spec.model_cache.node_group} if args.spec.model_cache else {}),
                # Our KEDA ScaledObject scales the predictor: KServe must not create a CPU HPA beside it.
                "serving.kserve.io/autoscalerClass": "external",
                "prometheus.io/scrape": "true", "prometheus.io/port": str(server.metrics_port)}},
            spec={"predictor": predictor}, opts=opts)
        depends = pulumi.ResourceOptions(parent=self, depends_on=[service])
        signals = scale_signals(ns, isvc, args.spec.target_concurrency, args.spec.llm_scaling)
        k8s.apiextensions.CustomResource(
            f"{name}-{track}-scaler", api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata={"name": isvc, "namespace": ns, "labels": pod_labels},
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": predictor_name(isvc)},
                "minReplicaCount": low, "maxReplicaCount": high, "pollingInterval": 15,
                "cooldownPeriod": args.spec.scale_in_cooldown_seconds,
                # Metrics unreadable: hold capacity at max rather than shrink a GPU fleet blind.
                "fallback": {"failureThreshold": 4, "replicas": high},
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0,
                                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60}]},
                    "scaleDown": {"stabilizationWindowSeconds": args.spec.scale_in_cooldown_seconds,
                                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]}}}},
                "triggers": [{"type": "prometheus", "metricType": "AverageValue", "metadata": {
                    "serverAddress": args.spec.prometheus_url, "query": signal.query,
                    "threshold": f"{signal.threshold:g}"}} for signal in signals]},
            opts=depends)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-{track}-pdb", metadata={
            "name": isvc, "namespace": ns, "labels": pod_labels}, spec={
            "max_unavailable": 1, "selector": {"match_labels": {ISVC_LABEL: isvc}}}, opts=depends)
