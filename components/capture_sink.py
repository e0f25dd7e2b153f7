"""CaptureSink: where a KServe deployment's request capture goes, and the sink that writes it to S3.

Reads top to bottom as what it makes in the deployment's namespace: an IRSA role that may only put objects under the
deployment's capture prefix (encrypted with the stack key), its service account, the sink (the serving image's
`capture-sink` command: pairs KServe logger events, samples, batches JSON Lines to S3 in SageMaker's data-capture
layout, flushes on SIGTERM) as one replica, since a request and its response must reach the same process, a Service
KServe's logger posts to, and a NetworkPolicy that admits only the serving pods (and Prometheus for /metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .eks_cluster import irsa_trust_policy
from .policy_document import Statement, render, via_service

SINK_NAME = "capture-sink"
SINK_PORT = 8080
SINK_LABELS = {"app.kubernetes.io/name": SINK_NAME, "app.kubernetes.io/part-of": "mlserve"}


@dataclass(frozen=True)
class CaptureSinkArgs:
    namespace: str
    image_uri: pulumi.Input[str]
    bucket: str
    prefix: str
    """captured_files_prefix(<namespace>): where the drift job reads, as for a SageMaker endpoint."""
    sample_percent: int
    kms_key_arn: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    serving_label: str
    """A label every serving pod has (KServe's logger runs in them): the only clients the sink admits."""
    node_selector: dict[str, str]
    flush_seconds: int = 60


def sink_url(namespace: str) -> str:
    """What the InferenceService's `logger.url` names."""
    return f"http://{SINK_NAME}.{namespace}.svc.cluster.local"


class CaptureSink(pulumi.ComponentResource):
    def __init__(self, name: str, args: CaptureSinkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:CaptureSink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace

        role = aws.iam.Role(f"{name}-capture-sink", assume_role_policy=irsa_trust_policy(
            args.oidc_provider_arn, args.oidc_issuer, ns, SINK_NAME), opts=child)
        aws.iam.RolePolicy(f"{name}-capture-sink", role=role.id, policy=render(
            Statement(sid="WriteCaptures", actions=["s3:PutObject"],
                      resources=[f"arn:aws:s3:::{args.bucket}/{args.prefix}*"]),
            Statement(sid="EncryptCaptures", actions=["kms:GenerateDataKey"], resources=[args.kms_key_arn],
                      conditions=via_service("s3", args.kms_key_arn))),
                           opts=child)
        k8s.core.v1.ServiceAccount(f"{name}-capture-sink", automount_service_account_token=False, metadata={
            "name": SINK_NAME, "namespace": ns, "labels": SINK_LABELS,
            "annotations": {"eks.amazonaws.com/role-arn": role.arn}}, opts=child)
        env: dict[str, pulumi.Input[str]] = {"MLSERVE_CAPTURE_BUCKET": args.bucket, "MLSERVE_CAPTURE_PREFIX": args.prefix,
               "MLSERVE_CAPTURE_KMS_KEY": args.kms_key_arn, "MLSERVE_CAPTURE_SAMPLE_PERCENT": str(args.sample_percent),
               "MLSERVE_CAPTURE_FLUSH_SECONDS": str(args.flush_seconds), "MLSERVE_CAPTURE_PORT": str(SINK_PORT)}
        probe = k8s.core.v1.ProbeArgs(http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=SINK_PORT),
                                      period_seconds=10)
        k8s.apps.v1.Deployment(f"{name}-capture-sink", metadata={"name": SINK_NAME, "namespace": ns, "labels": SINK_LABELS},
                               spec=k8s.apps.v1.DeploymentSpecArgs(
            # One replica: a request and its response must meet in one process. Recreate: never two at once.
            replicas=1, strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=SINK_LABELS),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=SINK_LABELS, annotations={
                    "prometheus.io/scrape": "true", "prometheus.io/port": str(SINK_PORT)}),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=SINK_NAME, automount_service_account_token=False,
                    node_selector=args.node_selector,
                    # Pod Security `restricted`, as the serving pods: non-root, no privilege, read-only root, seccomp.
                    security_context=k8s.core.v1.PodSecurityContextArgs(
                        run_as_non_root=True, run_as_user=1000, run_as_group=1000,
                        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")),
                    termination_grace_period_seconds=args.flush_seconds + 30,  # time to flush on SIGTERM
                    containers=[k8s.core.v1.ContainerArgs(
                        name=SINK_NAME, image=args.image_uri, args=["capture-sink"],
                        env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()],
                        ports=[k8s.core.v1.ContainerPortArgs(container_port=SINK_PORT, name="http")],
                        security_context=k8s.core.v1.SecurityContextArgs(
                            allow_privilege_escalation=False, read_only_root_filesystem=True,
                            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])),
                        resources=k8s.core.v1.ResourceRequirementsArgs(
                            requests={"cpu": "250m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "512Mi"}),
                        readiness_probe=probe, liveness_probe=probe)]))), opts=child)
        k8s.core.v1.Service(f"{name}-capture-sink", metadata={"name": SINK_NAME, "namespace": ns, "labels": SINK_LABELS}, spec={
            "selector": SINK_LABELS, "ports": [{"port": 80, "target_port": SINK_PORT, "protocol": "TCP"}]},
            opts=child)
        k8s.networking.v1.NetworkPolicy(f"{name}-capture-sink", metadata={"name": SINK_NAME, "namespace": ns, "labels": SINK_LABELS}, spec={
            "pod_selector": {"match_labels": SINK_LABELS}, "policy_types": ["Ingress", "Egress"],
            "ingress": [
                {"from_": [{"pod_selector": {"match_expressions": [
                    {"key": args.serving_label, "operator": "Exists"}]}}],
                 "ports": [{"port": SINK_PORT, "protocol": "TCP"}]},
                {"from_": [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                 "ports": [{"port": SINK_PORT, "protocol": "TCP"}]}],
            "egress": [
                {"to": [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
                         "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                {"ports": [{"port": 443, "protocol": "TCP"}]}]}, opts=child)  # S3 and STS (IRSA)
        self.url = sink_url(ns)
        self.register_outputs({"role_arn": role.arn})
