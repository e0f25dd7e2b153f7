"""The EKS cluster, node groups, add-ons and KServe deployment on the recorded plan (prod), and dev staying small."""

import json

import pytest

from infra.config.loader import load_stack
from tests.harness import edited, plan_config, policy_json, stack_plan

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


def one(plan, type_token, name_part=""):
    [found] = [r for r in plan.of_type(type_token) if name_part in r.name]
    return found


def release(plan, chart_name):
    return next(r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == chart_name)


def isvcs(plan):
    return {r.inputs["metadata"]["name"]: r for r in plan.resources if r.type.endswith(":InferenceService")}


def weights(plan):
    ingress = one(plan, "kubernetes:networking.k8s.io/v1:Ingress")
    action = ingress.inputs["metadata"]["annotations"].get("alb.ingress.kubernetes.io/actions.reranker-split")
    if action is None:
        return None, ingress
    return {g["serviceName"]: g["weight"] for g in json.loads(action)["forwardConfig"]["targetGroups"]}, ingress


def test_dev_stays_small_without_a_cluster():
    types = {r.type for r in stack_plan("dev").resources}
    assert not any(t.startswith(("aws:eks/", "kubernetes:")) for t in types)


def test_prod_cluster_is_private_encrypted_and_logs_everything():
    cluster = one(stack_plan("prod"), "aws:eks/cluster:Cluster").inputs
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    key = one(stack_plan("prod"), "aws:kms/key:Key").id
    encryption = cluster["encryptionConfig"]
    assert encryption["resources"] == ["secrets"] and key in encryption["provider"]["keyArn"]
    assert set(cluster["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager",
                                                      "scheduler"}
    assert cluster["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    logs = one(stack_plan("prod"), "aws:cloudwatch/logGroup:LogGroup", "control-plane").inputs
    assert logs["name"] == "/aws/eks/mlserve-prod/cluster" and logs["kmsKeyId"] and logs["retentionInDays"] == 365


def test_admin_role_gets_cluster_admin_through_an_access_entry():
    plan = stack_plan("prod")
    admin = "arn:aws:iam::123456789012:role/platform-admin"
    entries = {e.inputs["principalArn"]: e for e in plan.of_type("aws:eks/accessEntry:AccessEntry")}
    associations = {a.inputs["principalArn"]: a.inputs for a in
                    plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert admin in entries and associations[admin]["policyArn"].endswith("AmazonEKSClusterAdminPolicy")
    # Cluster admin: the config's admins and CI's deploy role (prod deploys from its build in the VPC), no one else
    # (Karpenter's node role has a node entry, no policy).
    assert {arn.rsplit("/", 1)[-1] for arn in associations} == {"platform-admin", "mlserve-prod-deploy"}


def test_addons_are_pinned_from_config():
    addons = {r.inputs["addonName"]: r.inputs["addonVersion"] for r in stack_plan("prod").of_type("aws:eks/addon:Addon")}
    pins = load_stack("prod").cluster.addons
    assert addons == {"vpc-cni": pins.vpc_cni, "coredns": pins.coredns, "kube-proxy": pins.kube_proxy,
                      "eks-pod-identity-agent": pins.eks_pod_identity_agent,
                      "aws-ebs-csi-driver": pins.aws_ebs_csi_driver,
                      "eks-node-monitoring-agent": pins.eks_node_monitoring_agent}
    assert pins.kube_proxy.startswith("v1.36.") and pins.vpc_cni == "v1.23.0-eksbuild.1"


def with_gpu_node_group(raw):
    """GPU managed groups remain possible beside (or instead of) Karpenter's pools."""
    raw["mlserve:cluster"]["node_groups"].append({
        "name": "gpu-managed", "instance_types": ["g5.2xlarge"], "min_size": 1, "max_size": 2, "desired_size": 1})


def test_prod_manages_only_the_system_group_and_gpu_capacity_comes_from_karpenter():
    plan = stack_plan("prod")
    [system] = [g.inputs for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")]
    assert system["nodeGroupName"] == "system" and system["amiType"] == "AL2023_x86_64_STANDARD"
    assert "taints" not in system and system["nodeRepairConfig"] == {"enabled": True}
    assert [p.inputs["metadata"]["name"] for p in plan.resources if p.type.endswith(":NodePool")] == ["gpu-a10g"]


def test_a_gpu_managed_group_in_config_is_tainted_labelled_repaired_and_on_an_nvidia_ami():
    plan = plan_config(edited("prod", with_gpu_node_group), "prod")
    gpu = one(plan, "aws:eks/nodeGroup:NodeGroup", "gpu-managed").inputs
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA" and gpu["capacityType"] == "ON_DEMAND"
    assert gpu["taints"] == [GPU_TAINT] and gpu["nodeRepairConfig"] == {"enabled": True}
    assert gpu["labels"] == {"mlserve.io/node-group": "gpu-managed", "nvidia.com/gpu.present": "true"}
    private = {s.id for s in plan.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert set(gpu["subnetIds"]) == private
    template = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "gpu-managed").inputs
    assert template["blockDeviceMappings"][0]["ebs"]["volumeSize"] >= 200  # serving images are large
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1  # pods cannot reach the node's credentials


def test_node_launch_templates_require_imdsv2_and_encrypt_the_root_volume():
    templates = stack_plan("prod").of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 1
    for template in templates:
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        [disk] = template.inputs["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3" and disk["ebs"]["kmsKeyId"]


def test_node_role_carries_only_the_node_policies():
    plan = plan_config(edited("prod", with_gpu_node_group), "prod")
    groups = plan.of_type("mlserve:compute:NodeGroup")
    assert len(groups) == 2
    for group in groups:
        attached = [r.inputs["policyArn"].rsplit("/", 1)[1] for r in plan.children_of(group.urn)
                    if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"]
        assert sorted(attached) == ["AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy",
                                    "AmazonEKS_CNI_Policy"]
        assert not [r for r in plan.children_of(group.urn) if r.type == "aws:iam/rolePolicy:RolePolicy"]


def test_key_policy_lets_auto_scaling_launch_encrypted_node_volumes():
    statements = {s["Sid"]: s for s in policy_json(one(stack_plan("prod"), "aws:kms/key:Key"))["Statement"]}
    grant = statements["AutoScalingAttachesNodeVolumes"]
    assert grant["Principal"]["AWS"].endswith("AWSServiceRoleForAutoScaling")
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    dev_sids = {s["Sid"] for s in policy_json(one(stack_plan("dev"), "aws:kms/key:Key"))["Statement"]}
    assert "AutoScalingAttachesNodeVolumes" not in dev_sids  # no cluster in dev, no grant


def test_gpu_addons_tolerate_the_taint_and_stay_on_gpu_nodes():
    for chart in ("nvidia-device-plugin", "dcgm-exporter"):
        values = release(stack_plan("prod"), chart).inputs["values"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
        assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_helm_releases_are_pinned_and_kserve_runs_standard_deployments():
    plan = stack_plan("prod")
    versions = {r.inputs["name"]: (r.inputs["chart"], r.inputs["version"])
                for r in plan.of_type("kubernetes:helm.sh/v3:Release")}
    assert versions == {
        "nvidia-device-plugin": ("nvidia-device-plugin", "0.20.0"), "dcgm-exporter": ("dcgm-exporter", "4.8.2"),
        "prometheus": ("prometheus", "29.27.0"), "cert-manager": ("cert-manager", "v1.21.1"), "keda": ("keda", "2.20.2"),
        "kserve-crd": ("oci://ghcr.io/kserve/charts/kserve-crd", "v0.20.0"),
        "kserve": ("oci://ghcr.io/kserve/charts/kserve-resources", "v0.20.0"),  # v0.20's chart name for the controller
        "aws-load-balancer-controller": ("aws-load-balancer-controller", "3.5.0"),
        "karpenter-crd": ("oci://public.ecr.aws/karpenter/karpenter-crd", "1.14.1"),
        "karpenter": ("oci://public.ecr.aws/karpenter/karpenter", "1.14.1"), "grafana": ("grafana", "12.11.1")}
    controller = release(plan, "kserve").inputs["values"]["kserve"]["controller"]
    assert controller["deploymentMode"] == "Standard"  # v0.20's name for RawDeployment, which is deprecated
    assert controller["gateway"]["disableIngressCreation"] is True


def test_serving_role_trusts_exactly_the_deployment_service_account_and_reads_only_its_models():
    plan = stack_plan("prod")
    role = one(plan, "aws:iam/role:Role", "reranker-serving-role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    issuer = "oidc.eks.us-east-1.amazonaws.com/id/5C3D0F0E1A2B3C4D5E6F7A8B9C0D1E2F"
    assert trust["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert trust["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:mlserve-prod-reranker:reranker", f"{issuer}:aud": "sts.amazonaws.com"}
    account = one(plan, "kubernetes:core/v1:ServiceAccount", "service-account").inputs["metadata"]
    assert (account["namespace"], account["name"]) == ("mlserve-prod-reranker", "reranker")
    assert account["annotations"]["eks.amazonaws.com/role-arn"].endswith(role.inputs["name"])
    statements = {s["Sid"]: s for s in policy_json(one(plan, "aws:iam/rolePolicy:RolePolicy", "reranker-serving"))
                  ["Statement"]}
    assert statements["ReadThisModel"]["Resource"] == ["arn:aws:s3:::mlserve-prod-models/reranker/3/*",
                                                        "arn:aws:s3:::mlserve-prod-models/reranker/4/*"]
    assert statements["DecryptModels"]["Action"] == ["kms:Decrypt"]


def test_inference_services_ask_for_gpus_tolerate_the_taint_and_use_the_service_account():
    assert set(isvcs(stack_plan("prod"))) == {"reranker", "reranker-canary"}
    for isvc in isvcs(stack_plan("prod")).values():
        predictor = isvc.inputs["spec"]["predictor"]
        assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]
        assert predictor["nodeSelector"] == {"mlserve.io/node-group": "gpu-a10g"}
        assert predictor["serviceAccountName"] == "reranker"
        assert predictor["model"]["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert predictor["model"]["startupProbe"]["failureThreshold"] * 10 >= 1800  # engine builds
        assert predictor["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
        assert isvc.inputs["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert isvcs(stack_plan("prod"))["reranker"].inputs["spec"]["predictor"]["minReplicas"] == 2


def test_keda_scales_each_predictor_on_in_flight_requests_not_cpu():
    plan = stack_plan("prod")
    scalers = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.resources
               if r.type.endswith(":ScaledObject")}
    assert set(scalers) == {"reranker", "reranker-canary"}
    stable = scalers["reranker"]
    assert stable["scaleTargetRef"]["name"] == "reranker-predictor"
    assert (stable["minReplicaCount"], stable["maxReplicaCount"]) == (2, 4)
    [trigger] = stable["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "8"
    assert "nv_inference_request_duration_us" in trigger["metadata"]["query"]
    behavior = stable["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] > behavior["scaleUp"]["stabilizationWindowSeconds"]


def test_canary_percent_from_config_is_the_declared_split():
    split, ingress = weights(stack_plan("prod"))
    assert split == {"reranker-predictor": 90, "reranker-canary-predictor": 10}
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'

    def quarter(raw):
        raw["mlserve:deployments"][1]["rollout"]["percent"] = 25

    split, _ = weights(plan_config(edited("prod", quarter), "prod"))
    assert split == {"reranker-predictor": 75, "reranker-canary-predictor": 25}


@pytest.mark.parametrize("rollback", [
    lambda rollout: rollout.update(percent=0),
    lambda rollout: (rollout.clear(), rollout.update(strategy="all_at_once")),
], ids=["percent-0", "all_at_once"])
def test_rollback_is_one_config_change_that_removes_the_canary(rollback):
    plan = plan_config(edited("prod", lambda raw: rollback(raw["mlserve:deployments"][1]["rollout"])), "prod")
    assert set(isvcs(plan)) == {"reranker"}
    split, ingress = weights(plan)
    assert split is None
    backend = ingress.inputs["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "reranker-predictor", "port": {"number": 80}}


def test_serving_network_policy_admits_the_load_balancer_subnets_and_prometheus_and_lets_out_dns_and_https():
    plan = stack_plan("prod")
    policy = one(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "-network-policy").inputs["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (metrics,) = policy["ingress"]
    for track in ("stable", "canary"):
        (serving,) = one(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                         f"-{track}-from-load-balancer").inputs["spec"]["ingress"]
        assert serving["from"] == [{"ipBlock": {"cidr": c}} for c in ("10.50.48.0/22", "10.50.52.0/22",
                                                                       "10.50.56.0/22")]
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    dns, https, capture = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53} and https == {"ports": [{"port": 443, "protocol": "TCP"}]}
    # KServe's logger, in the serving pods, posts every request and response to the capture sink, and nowhere else.
    assert capture == {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "capture-sink",
                                                               "app.kubernetes.io/part-of": "mlserve"}}}],
                       "ports": [{"port": 8080, "protocol": "TCP"}]}


def test_each_inference_service_has_a_disruption_budget():
    budgets = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in
               stack_plan("prod").of_type("kubernetes:policy/v1:PodDisruptionBudget")}
    assert set(budgets) == {"reranker", "reranker-canary"}
    assert budgets["reranker"]["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "reranker"}


def test_aws_resources_use_the_stack_provider_and_kubernetes_ones_the_cluster():
    for resource in stack_plan("prod").resources:
        if not resource.custom or resource.type.startswith("pulumi:providers"):
            continue
        if resource.type.startswith("random:"):  # generated locally (Grafana's admin password): no cloud, no region
            assert not resource.provider or "default_" in resource.provider, resource.urn  # the default provider
            continue
        provider = resource.provider.split("::")[-2]
        expected = "mlserve-prod-k8s" if resource.type.startswith("kubernetes:") else "aws"
        assert provider == expected, resource.urn


def test_kubeconfig_output_is_secret_and_uses_aws_eks_get_token():
    plan = stack_plan("prod")
    provider = one(plan, "pulumi:providers:kubernetes")
    kubeconfig = provider.inputs["kubeconfig"]
    assert isinstance(kubeconfig, dict) and kubeconfig.get("4dabf18193072939515e22adb298388d") \
        == "1b47061264138c4ac30d75fd1eb44270"  # the engine's secret marker
    user = json.loads(kubeconfig["value"])["users"][0]["user"]["exec"]
    assert user["command"] == "aws" and user["args"][:2] == ["eks", "get-token"]


def test_kserve_slos_alert_through_alertmanager_to_the_stack_topic():
    plan = stack_plan("prod")
    values = release(plan, "prometheus").inputs["values"]
    rules = {r["alert"]: r for r in values["serverFiles"]["alerting_rules.yml"]["groups"][0]["rules"]}
    assert set(rules) == {"reranker-p99-latency", "reranker-error-rate"}
    assert 'quantile="0.99"' in rules["reranker-p99-latency"]["expr"]
    assert rules["reranker-p99-latency"]["expr"].endswith("> 120")  # slo.p99_latency_ms of the reranker
    assert rules["reranker-error-rate"]["expr"].endswith("> 1")  # slo.error_rate_percent
    [receiver] = values["alertmanager"]["config"]["receivers"]
    assert receiver["sns_configs"][0]["topic_arn"] == plan.outputs["alert_topic_arn"]
    role = one(plan, "aws:iam/role:Role", "alertmanager")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert "system:serviceaccount:monitoring:alertmanager" in trust["Condition"]["StringEquals"].values()
    statements = {s["Sid"]: s for s in policy_json(one(plan, "aws:iam/rolePolicy:RolePolicy", "alertmanager"))
                  ["Statement"]}
    assert statements["PublishAlerts"]["Action"] == ["sns:Publish"]
    assert statements["PublishAlerts"]["Resource"] == [receiver["sns_configs"][0]["topic_arn"]]


def test_gpu_health_alerts_go_the_same_way_as_the_slo_alerts():
    values = release(stack_plan("prod"), "prometheus").inputs["values"]
    groups = {g["name"]: g["rules"] for g in values["serverFiles"]["alerting_rules.yml"]["groups"]}
    health = {r["alert"]: r for r in groups["mlserve-gpu-health"]}
    assert set(health) == {"gpu-xid-error", "gpu-memory-pressure", "gpu-pool-near-limit"}
    assert "DCGM_FI_DEV_XID_ERRORS" in health["gpu-xid-error"]["expr"]
    assert health["gpu-memory-pressure"]["expr"].endswith("> 0.95") and health["gpu-memory-pressure"]["for"] == "10m"
    assert 'karpenter_nodepools_limit{resource_type="nvidia.com/gpu"}' in health["gpu-pool-near-limit"]["expr"]
    route = values["alertmanager"]["config"]["route"]
    assert route["receiver"] == "stack-topic" and "routes" not in route  # every group, one receiver: the SNS topic
    karpenter = release(stack_plan("prod"), "karpenter").inputs["values"]
    assert karpenter["podAnnotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}


def test_kserve_pods_share_built_engines_and_may_write_only_the_engines_prefix():
    plan = stack_plan("prod")
    (service,) = [s for s in plan.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
                  if s.inputs["metadata"]["name"] == "reranker"]
    env = {e["name"]: e["value"] for e in service.inputs["spec"]["predictor"]["model"]["env"]}
    assert env["MLSERVE_ENGINE_STORE"] == "s3://mlserve-prod-models/engines/mlserve-prod-reranker/"
    role = one(plan, "aws:iam/rolePolicy:RolePolicy", "reranker-serving-role")
    writes = [s for s in json.loads(role.inputs["policy"])["Statement"]
              if any(a.startswith("s3:Put") for a in s["Action"])]
    assert [(s["Action"], s["Resource"]) for s in writes] == [
        (["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::mlserve-prod-models/engines/mlserve-prod-reranker/*"])]


def test_kserve_capture_goes_to_the_sink_which_may_only_write_the_capture_prefix_the_drift_job_reads():
    plan = stack_plan("prod")
    loggers = {s.inputs["metadata"]["name"]: s.inputs["spec"]["predictor"].get("logger")
               for s in plan.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")}
    # The production track only: the canary's traffic is another model's.
    assert loggers == {"reranker": {"mode": "all", "url": "http://capture-sink.mlserve-prod-reranker.svc.cluster.local"},
                       "reranker-canary": None}
    sink = one(plan, "kubernetes:apps/v1:Deployment", "capture-sink").inputs["spec"]
    assert sink["replicas"] == 1 and sink["strategy"] == {"type": "Recreate"}  # a pair must meet in one process
    env = {e["name"]: e["value"] for e in sink["template"]["spec"]["containers"][0]["env"]}
    prefix = "data-capture/mlserve-prod-reranker/mlserve-prod-reranker/primary/"
    assert (env["MLSERVE_CAPTURE_PREFIX"], env["MLSERVE_CAPTURE_SAMPLE_PERCENT"]) == (prefix, "10")
    assert env["MLSERVE_CAPTURE_KMS_KEY"] == plan.outputs["kms_key_arn"]
    statements = policy_json(one(plan, "aws:iam/rolePolicy:RolePolicy", "reranker-capture-sink"))["Statement"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        (["s3:PutObject"], [f"arn:aws:s3:::mlserve-prod-models/{prefix}*"]),
        (["kms:GenerateDataKey"], [plan.outputs["kms_key_arn"]])]
    (drift,) = [f.inputs for f in plan.of_type("aws:lambda/function:Function") if "reranker" in f.name]
    assert drift["environment"]["variables"]["MLSERVE_CAPTURE_PREFIX"] == prefix
