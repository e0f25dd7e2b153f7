"""Grafana: the cluster's dashboards over its Prometheus, one provisioned dashboard per KServe deployment.

Reads top to bottom as what it makes: a generated admin password (kept secret in state) in a Kubernetes Secret the
chart reads, the Grafana Helm release (grafana-community chart, pinned) on the system nodes with Prometheus
provisioned as its only data source, no ingress and no public endpoint (reach it with `kubectl port-forward`), sign-up
and anonymous access off, and a ConfigMap per dashboard that the chart's sidecar loads (it watches only its own
namespace, so its RBAC is namespaced).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from .grafana_dashboard import PROMETHEUS_UID

DASHBOARD_LABEL = "grafana_dashboard"
ADMIN_USER_KEY, ADMIN_PASSWORD_KEY = "admin-user", "admin-password"
CHART_REPOSITORY = "https://grafana-community.github.io/helm-charts"


@dataclass(frozen=True)
class GrafanaArgs:
    chart_version: str
    namespace: str
    prometheus_url: str
    node_selector: dict[str, str]
    dashboards: dict[str, dict] = field(default_factory=dict)
    """Dashboard JSON by deployment name (components/grafana_dashboard.py)."""
    after: list[pulumi.Resource] = field(default_factory=list)
    """What must exist first (the Prometheus release and its namespace)."""


def grafana_values(args: GrafanaArgs, admin_secret: str) -> dict:
    return {
        "admin": {"existingSecret": admin_secret, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
        "nodeSelector": args.node_selector,
        "service": {"type": "ClusterIP"},
        "ingress": {"enabled": False},
        "persistence": {"enabled": False},  # dashboards and the data source are provisioned, not stored
        "rbac": {"namespaced": True},
        "testFramework": {"enabled": False},
        "grafana.ini": {"users": {"allow_sign_up": False}, "auth.anonymous": {"enabled": False},
                        "analytics": {"reporting_enabled": False, "check_for_updates": False}},
        "datasources": {"datasources.yaml": {"apiVersion": 1, "datasources": [{
            "name": "Prometheus", "uid": PROMETHEUS_UID, "type": "prometheus", "url": args.prometheus_url,
            "access": "proxy", "isDefault": True, "editable": False}]}},
        # No searchNamespace: the sidecar watches its own namespace only (the chart's default), as RBAC allows.
        "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                                   "resource": "configmap"}},
    }


class Grafana(pulumi.ComponentResource):
    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:observability:Grafana", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        password = random.RandomPassword(f"{name}-grafana-admin", length=32, special=False, opts=child)
        secret_name = "grafana-admin"
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin", metadata={"name": secret_name, "namespace": args.namespace},
            string_data={ADMIN_USER_KEY: "admin", ADMIN_PASSWORD_KEY: password.result},
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
        dashboards = [k8s.core.v1.ConfigMap(
            f"{name}-dashboard-{deployment}",
            metadata={"name": f"grafana-dashboard-{deployment}", "namespace": args.namespace,
                      "labels": {DASHBOARD_LABEL: "1"}},
            data={f"{deployment}.json": json.dumps(body, sort_keys=True)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
            for deployment, body in sorted(args.dashboards.items())]
        release = k8s.helm.v3.Release(
            f"{name}-grafana", name="grafana", chart="grafana", version=args.chart_version, namespace=args.namespace,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values=grafana_values(args, secret_name), atomic=True, cleanup_on_fail=True, timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, *dashboards]))
        self.admin_password = pulumi.Output.secret(password.result)
        self.register_outputs({"release": release.name, "admin_password": self.admin_password})
