"""Typed stack configuration: the whole `mlserve:` namespace of a Pulumi.<stack>.yaml file.

Every model forbids unknown keys so that a typo (`instance_typ`) is an error, not a silently ignored
setting. Field-level limits live here; rules that relate several fields (prod capacity, GPU families,
canary sizing) live in `rules.py`, where each can name the exact key path it is about.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..aws_facts import GPU_FAMILIES, sagemaker_gpus

# DNS-1035 label: valid as a Kubernetes object name and inside SageMaker/IAM names (which allow more).
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A deployment name becomes part of `mlserve-<stack>-<name>-<role>` physical names; SageMaker caps those at 63.
MAX_DEPLOYMENT_NAME = 32

GPU_EC2_FAMILIES = tuple(f"{family}." for family in GPU_FAMILIES)
GPU_SAGEMAKER_FAMILIES = tuple(f"ml.{family}" for family in GPU_EC2_FAMILIES)

Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=MAX_DEPLOYMENT_NAME)]


class Strict(BaseModel):
    # `pulumi config set --path` stores an integer-looking value as a number (`tags.cost-center 4410`): a string
    # field takes it as the text the user typed.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class NetworkConfig(Strict):
    cidr: str = Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$", description="VPC CIDR, /16 to /24")
    availability_zones: int = Field(ge=2, le=3, description="How many AZs the VPC spans")
    flow_log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365, 731] = Field(
        default=90, description="Days VPC flow logs are kept")


class ModelStoreConfig(Strict):
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,55}[a-z0-9]$",
                        description="S3 bucket the stack creates (at most 57 characters: its audit bucket, "
                                    "`<bucket>-audit`, must fit S3's 63)")
    noncurrent_version_days: int = Field(default=90, ge=1, le=3650,
                                         description="Days an overwritten or deleted model version is kept")


class NodeGroupConfig(Strict):
    name: Name = Field(description="Node group name and its `mlserve.io/node-group` label")
    gpu: bool = Field(
        default=True,
        description="GPU nodes: NVIDIA AMI, the nvidia.com/gpu taint, hop limit 1; false for the CPU system group")
    instance_types: list[str] = Field(description="EC2 instance types, first preferred", min_length=1)
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(
        default="ON_DEMAND",
        description="ON_DEMAND or SPOT (prod GPU groups: ON_DEMAND)")
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "AL2023_x86_64_STANDARD"] = Field(
        default="AL2023_x86_64_NVIDIA",
        description="EKS AMI type: an NVIDIA one for GPU groups, AL2023_x86_64_STANDARD for the system group")
    min_size: int = Field(description="Fewest nodes (prod GPU groups: at least 1)", ge=0, le=100)
    max_size: int = Field(description="Most nodes", ge=1, le=100)
    desired_size: int = Field(
        ge=0, le=100,
        description="Nodes at creation; later changes are left to scaling (ignored by pulumi up)")
    disk_size_gib: int = Field(description="Encrypted gp3 root volume size", default=200, ge=50, le=2000)
    allow_scale_to_zero: bool = Field(
        default=False,
        description="Dev only: a GPU group may have min_size 0 (cold starts take minutes)")


ADDON_VERSION = r"^v\d+\.\d+\.\d+-eksbuild\.\d+$"
_UNLISTED = ("; the eksbuild number is not listable offline: `python -m infra.ops preflight` checks every pin "
             "against EKS's DescribeAddonVersions before `pulumi up`")


class KarpenterNodeClass(Strict):
    """The one EC2NodeClass every GPU pool launches from."""
    ami_alias: str = Field(
        pattern=r"^(al2023|bottlerocket)@v\d[\w.-]*$",
        description="Karpenter AMI alias, pinned (never @latest, so that a new AMI is a reviewed change): "
        "al2023@v<date> (EKS AL2023; Karpenter picks its NVIDIA variant for GPU types) or bottlerocket@v<version>. "
        "al2023@v20260818 is amazon-eks-ami's release of 2026-08-18; `python -m infra.ops preflight` checks that "
        "its NVIDIA image exists for kubernetes_version")
    disk_size_gib: int = Field(default=200, ge=50, le=2000,
                               description="Root (AL2023) or data (Bottlerocket) gp3 volume; serving images are large")


DURATION = r"^\d+(s|m|h)$"


class GpuPoolConfig(Strict):
    """A Karpenter NodePool: GPU nodes that appear when serving pods are pending and leave when empty."""
    name: Name = Field(description="NodePool name and the `mlserve.io/node-group` label that KServe pods select on")
    instance_types: list[str] = Field(
        min_length=1, description="EC2 instance families (g5, g6) or exact types (g5.2xlarge), not both in one pool")
    capacity_types: list[Literal["on-demand", "spot"]] = Field(
        default=["on-demand"], min_length=1, description="Karpenter capacity types; with both, Karpenter launches "
        "spot while it is offered and falls back to on-demand. Prod requires on-demand")
    gpu_limit: int = Field(ge=1, le=1024, description="Most GPUs (nvidia.com/gpu) the pool's nodes may hold in "
                           "total; must cover its deployments at max replicas")
    cpu_limit: int = Field(ge=1, le=100000, description="Most vCPUs the pool's nodes may hold in total (also what "
                           "preflight checks against the EC2 vCPU quota)")
    consolidate_after: str = Field(default="10m", pattern=DURATION,
                                   description="How long a node stays empty before Karpenter removes it")
    expire_after: str = Field(default="720h", pattern=r"^(\d+h|Never)$",
                              description="Node lifetime: expired nodes are replaced (fresh AMI and patches)")
    max_disrupted_nodes: int = Field(default=1, ge=1, le=100, description="Disruption budget: at most this many "
                                     "nodes drained at once (prod: 1)")
    disk_size_gib: int | None = Field(
        default=None, ge=50, le=16000, description="This pool's own root volume (an EC2NodeClass of its own): a pool "
        "serving language models needs room for their weights in the node's model cache; unset: node_class's")


class ClusterAddonVersions(Strict):
    """EKS managed add-ons, pinned to exact builds so that an upgrade is a reviewed config change."""
    vpc_cni: str = Field(pattern=ADDON_VERSION, description="Amazon VPC CNI (upstream v1.23.0, 2026-07-31)" + _UNLISTED)
    coredns: str = Field(pattern=ADDON_VERSION,
                         description="CoreDNS (v1.14.7, what EKS Distro 1-36-eks-10 ships, 2026-10-28)" + _UNLISTED)
    kube_proxy: str = Field(pattern=ADDON_VERSION, description="kube-proxy: its minor version must equal "
                            "kubernetes_version (v1.36.5 in EKS Distro 1-36-eks-10, 2026-10-28)" + _UNLISTED)
    eks_pod_identity_agent: str = Field(pattern=ADDON_VERSION, description="EKS Pod Identity agent (the add-on's "
                                        "own numbering, unrelated to the agent's upstream tags)" + _UNLISTED)
    aws_ebs_csi_driver: str = Field(pattern=ADDON_VERSION,
                                    description="EBS CSI driver (upstream v1.64.0, 2026-08-18)" + _UNLISTED)
    eks_node_monitoring_agent: str = Field(
        pattern=ADDON_VERSION, description="EKS node monitoring agent (upstream v1.7.0, 2026-08-04): sets the node "
        "conditions (AcceleratedHardwareReady for NVIDIA XID errors, ...) that node auto-repair acts on" + _UNLISTED)


CHART_VERSION = r"^v?\d+\.\d+\.\d+$"


class HelmChartVersions(Strict):
    """Pinned chart versions of the cluster add-ons (Helm releases); docs/versions.md has their dates."""
    nvidia_device_plugin: str = Field(pattern=CHART_VERSION,
                                      description="NVIDIA device plugin chart (latest: 0.20.0, 2026-08-19)")
    dcgm_exporter: str = Field(pattern=CHART_VERSION,
                               description="DCGM exporter chart (latest: 4.8.2 for DCGM 4.5.3, 2026-05-06)")
    cert_manager: str = Field(pattern=CHART_VERSION, description="cert-manager chart (latest: v1.21.1, 2026-07-29)")
    kserve: str = Field(pattern=CHART_VERSION, description="KServe charts kserve-crd and kserve-resources (latest: "
                        "v0.20.0); must equal schemas/versions.yaml, the CRDs the objects are validated against")
    keda: str = Field(pattern=CHART_VERSION, description="KEDA chart (latest: 2.20.2, 2026-07-31); must equal "
                      "schemas/versions.yaml without the v")
    aws_load_balancer_controller: str = Field(pattern=CHART_VERSION, description="AWS Load Balancer Controller "
                                              "chart (latest: 3.5.0 for controller v3.5.0, 2026-08-03)")
    prometheus: str = Field(pattern=CHART_VERSION, description="prometheus-community prometheus chart (latest: "
                            "29.27.0 for Prometheus v3.14.0, 2026-08-18)")
    grafana: str = Field(pattern=CHART_VERSION, description="grafana-community grafana chart (the grafana/helm-charts "
                         "chart moved there on 2026-01-30; latest: 12.11.1 for Grafana 13.2.0, 2026-08-19)")
    karpenter: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Karpenter charts karpenter-crd and karpenter "
                           "(OCI, public.ecr.aws/karpenter; latest: 1.14.1); must equal schemas/versions.yaml without "
                           "the v, the CRDs the NodePools are validated against")


class ClusterConfig(Strict):
    kubernetes_version: str = Field(pattern=r"^1\.\d{2}$", description="EKS Kubernetes minor version. 1.36: the "
                                    "newest that Karpenter v1.14.1 supports (its compatibility matrix); EKS also "
                                    "offers 1.37, which waits for a Karpenter release that supports it")
    public_access_cidrs: list[str] = Field(default_factory=list, description="Empty: private endpoint only")
    admin_role_arns: list[str] = Field(
        min_length=1,
        description="IAM roles given cluster admin through EKS access entries (the creator gets none implicitly)")
    log_retention_days: Literal[30, 60, 90, 180, 365] = Field(
        default=90,
        description="Days the control-plane logs are kept")
    addons: ClusterAddonVersions = Field(description="EKS managed add-on versions")
    charts: HelmChartVersions = Field(description="Helm chart versions of the cluster add-ons")
    node_groups: list[NodeGroupConfig] = Field(min_length=1, description="EKS managed node groups: a CPU system "
                                               "group for the controllers; GPU groups remain possible")
    node_class: KarpenterNodeClass | None = Field(default=None, description="Required with gpu_pools")
    gpu_pools: list[GpuPoolConfig] = Field(default_factory=list, description="Karpenter GPU NodePools")
    ingress_certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+",
        description="ACM certificate for the KServe ALBs' HTTPS listener (required in prod)")
    ingress_domain: str | None = Field(
        default=None, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="<deployment>.<domain> is the name API Gateway verifies the ALB certificate against")

    def system_group(self) -> NodeGroupConfig | None:
        """The node group the controllers and monitoring run on: the first without GPUs (a config rule requires one)."""
        return next((g for g in self.node_groups if not g.gpu), None)

    def pool_disk_gib(self, pool: GpuPoolConfig) -> int:
        """The root volume a pool's nodes get: its own, or the node class's."""
        return pool.disk_size_gib or (self.node_class.disk_size_gib if self.node_class else 0)

    @field_validator("admin_role_arns")
    @classmethod
    def _role_arns(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", arn):
                raise ValueError(f"not an IAM role ARN: {arn!r} (expected arn:aws:iam::<account>:role/<name>)")
        return arns


class ModelArtifact(Strict):
    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+", description="s3://bucket/key")
    format: Literal["onnx", "tensorrt_plan", "safetensors"] = Field(
        description="onnx (engines built at start or shipped) or tensorrt_plan (needs a GPU), both one object; "
        "safetensors: a language model's Hugging Face folder (config.json, tokenizer, *.safetensors) for runtime "
        "vllm, the uri then being the folder (ending in /)")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The artifact's sha256: preflight and the image check it. For a safetensors folder, the sha256 of "
        "its release manifest (`mlserve-manifest.json`, which `python -m infra.ops release-model` writes with every "
        "file's sha256 and size): one value pins every file")
    triton_model_name: Name = Field(default="model", description="The model's name in Triton (`/v2/models/<name>`)")

    @property
    def bucket(self) -> str:
        return self.uri[len("s3://"):].split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.uri[len("s3://"):].split("/", 1)[1]

    @property
    def prefix(self) -> str:
        """The key's folder: what the serving role may read."""
        return self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""


class ServingImage(Strict):
    repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$",
                            description="The image's repository in the stack: ECR names it mlserve-<stack>/<this>")
    tag: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="Immutable version tag (never latest); or give digest")
    digest: str | None = Field(
        default=None, pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256 digest: pins the exact bytes (prod's choice)")

    @field_validator("tag")
    @classmethod
    def _no_latest(cls, tag: str | None) -> str | None:
        if tag == "latest":
            raise ValueError("tag 'latest' is mutable; pin an immutable version tag or a digest")
        return tag

    @property
    def reference(self) -> str:
        return f"@{self.digest}" if self.digest else f":{self.tag}"


class SageMakerCompute(Strict):
    instance_type: str = Field(
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
        description="SageMaker instance type (ml.g5.2xlarge, ...); botocore's list of valid types is checked")
    instance_count: int = Field(
        ge=1, le=100,
        description="Instances at deployment (autoscaling moves between min and max)")
    startup_health_check_timeout_seconds: int = Field(
        default=900, ge=60, le=3600,
        description="How long SageMaker waits for /ping (engine builds take minutes)")
    model_download_timeout_seconds: int = Field(
        default=900, ge=60, le=3600,
        description="How long SageMaker waits for the model download")
    inference_ami_version: str = Field(
        default="al2023-ami-sagemaker-inference-gpu-4-1",
        description="SageMaker host image: its NVIDIA driver must run the serving image's CUDA. The default (driver "
                    "580, CUDA 13.0) runs the Triton 26.04 image (CUDA 13); one of botocore's "
                    "ProductionVariantInferenceAmiVersion values")


class KServeCompute(Strict):
    gpus: int = Field(description="nvidia.com/gpu per replica (requests = limits)", ge=0, le=8)
    cpu: str = Field(description="CPU per replica (requests = limits)", default="4", pattern=r"^\d+(\.\d+)?m?$")
    memory: str = Field(description="Memory per replica (requests = limits)", default="16Gi", pattern=r"^\d+(Mi|Gi)$")
    node_group: Name = Field(description="A GPU pool (cluster.gpu_pools) or managed node group the pods run on")


class Autoscaling(Strict):
    min: int = Field(description="Fewest instances or replicas (prod: at least 2)", ge=0, le=100)
    max: int = Field(description="Most instances or replicas", ge=1, le=100)
    target_invocations_per_instance: int | None = Field(
        default=None, ge=1, description="SageMaker: invocations/minute/instance; derived from the SLO when unset")
    max_rps_per_instance_at_slo: float | None = Field(
        default=None, gt=0, description="Measured: requests/second one instance serves within the p99 SLO (bench)")
    headroom_percent: int = Field(default=30, ge=0, le=80, description="Capacity kept free for bursts")
    target_concurrency: int | None = Field(default=None, ge=1, description="In-flight requests per replica (KServe) "
                                           "or per instance (SageMaker: high-resolution concurrency tracking, "
                                           "measured with `infra.ops profile`)")
    scale_in_cooldown_seconds: int = Field(
        default=600, ge=60, le=3600,
        description="Wait after a scale-in before the next one (slow: GPUs are slow to come back)")
    scale_out_cooldown_seconds: int = Field(
        default=60, ge=0, le=3600,
        description="Wait after a scale-out before the next one")


class AllAtOnce(Strict):
    strategy: Literal["all_at_once"] = Field(description="Replace the model in one step (dev)")


class Canary(Strict):
    strategy: Literal["canary"] = Field(description="A share of traffic to the new model, baked, then the rest")
    percent: int = Field(ge=0, le=50, description="0 only for kserve: the candidate gets no traffic (rolled back)")
    bake_minutes: int = Field(
        ge=1, le=60 * 24,
        description="How long the canary share is watched before the rest moves")
    candidate: ModelArtifact | None = Field(
        default=None, description="kserve: the model under test, served beside `model` with `percent` of traffic")


class Linear(Strict):
    strategy: Literal["linear"] = Field(description="Traffic moves in equal steps, each baked")
    step_percent: int = Field(description="Share of traffic moved per step", ge=5, le=50)
    step_bake_minutes: int = Field(description="How long each step is watched", ge=1, le=60 * 24)


class BlueGreen(Strict):
    strategy: Literal["blue_green"] = Field(description="A full new fleet, all traffic at once after the bake")
    bake_minutes: int = Field(description="How long the new fleet is watched before the old one goes", ge=0, le=60 * 24)


class Rolling(Strict):
    strategy: Literal["rolling"] = Field(description="SageMaker replaces the fleet in place, batch by batch, each "
                                                     "baked: max capacity plus one batch, not a second fleet")
    batch_percent: int = Field(ge=5, le=50, description="Instances replaced per batch, as a share of the variant "
                               "(the API's 5-50%)")
    bake_minutes: int = Field(ge=0, le=60, description="How long each batch is watched (the API's 0-3600 s)")
    rollback_batch_percent: int | None = Field(default=None, ge=5, le=100, description="Batch size when rolling "
                                               "back; unset: the old fleet comes back all at once")
    timeout_minutes: int | None = Field(default=None, ge=10, le=480, description="The whole update's limit (the "
                                        "API's 600-28800 s); unset: every batch's bake plus half an hour")


class Shadow(Strict):
    strategy: Literal["shadow"] = Field(
        description="The candidate gets a copy of traffic; its answers are not returned")
    sample_percent: int = Field(description="Share of requests copied to the candidate", ge=1, le=100)
    candidate: ModelArtifact = Field(description="The model under test")


Rollout = Annotated[AllAtOnce | Canary | Linear | BlueGreen | Rolling | Shadow, Field(discriminator="strategy")]


class DataCapture(Strict):
    enabled: bool = Field(description="Capture requests and responses (KMS-encrypted, in the model bucket)")
    sample_percent: int = Field(description="Share of requests captured", default=10, ge=1, le=100)


class PipelineRetraining(Strict):
    """Start a SageMaker Pipeline execution (the retraining pipeline) when drift alarms."""
    kind: Literal["sagemaker_pipeline"] = Field(description="sagemaker_pipeline: StartPipelineExecution")
    pipeline_arn: str = Field(pattern=r"^arn:aws:sagemaker:[a-z0-9-]+:\d{12}:pipeline/[A-Za-z0-9-]{1,256}$",
                              description="The pipeline, in the stack's region")


class StateMachineRetraining(Strict):
    """Start a Step Functions execution when drift alarms; it gets the alarm event as its input."""
    kind: Literal["step_functions"] = Field(description="step_functions: StartExecution")
    state_machine_arn: str = Field(pattern=r"^arn:aws:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$",
                                   description="The state machine, in the stack's region")


class HttpsRetraining(Strict):
    """POST the alarm event to an HTTPS endpoint (a CI system's webhook) through an EventBridge API destination."""
    kind: Literal["https"] = Field(description="https: an EventBridge API destination")
    url: str = Field(pattern=r"^https://[^\s/$.?#][^\s]*$", max_length=2048, description="Where the event is POSTed")
    api_key_secret_arn: str = Field(
        pattern=r"^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$",
        description="A Secrets Manager secret holding the API key; read at deploy time into the EventBridge "
        "connection, which keeps it in its own secret under the stack key")
    header: str = Field(default="x-api-key", pattern=r"^[A-Za-z0-9-]{1,64}$",
                        description="The header that carries the key")
    max_per_second: int = Field(default=1, ge=1, le=300, description="Invocation rate limit of the destination")


RetrainingTarget = Annotated[PipelineRetraining | StateMachineRetraining | HttpsRetraining, Field(discriminator="kind")]


class DriftMonitoring(Strict):
    """Our scheduled job: captured inputs (and predictions) of the last window vs a baseline from reference data."""
    enabled: bool = Field(description="Run the drift job on a schedule and alarm on PSI")
    baseline_uri: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.json$",
        description="s3://.../baseline.json made from reference data")
    schedule_minutes: int = Field(
        default=60, ge=5, le=1440,
        description="How often the job runs (and the window it reads)")
    psi_alarm_threshold: float = Field(
        default=0.2, gt=0, le=5,
        description="Population stability index at which the drift alarm fires")
    prediction_psi_alarm_threshold: float | None = Field(
        default=None, gt=0, le=5,
        description="PSI of the predictions at which the prediction-drift alarm fires; set it when the baseline "
        "watches outputs (`python -m drift baseline --responses ... --output NAME=classes|values`); unset: no alarm")
    on_alarm: RetrainingTarget | None = Field(
        default=None, description="What a drift alarm starts (retraining): a SageMaker Pipeline, a Step Functions "
        "state machine or an HTTPS endpoint; unset: the alarm only notifies")


class Slo(Strict):
    p99_latency_ms: int = Field(
        ge=1, le=900_000,
        description="p99 latency of a whole request the alarms (and `infra.ops profile`) hold the deployment to (an "
        "LLM: the whole generation, up to the gateway's 15-minute streaming limit; a tensor model: at most 60 s)")
    ttft_p99_ms: int | None = Field(
        default=None, ge=1, le=600_000,
        description="runtime vllm (required there): p99 time to first token, what a chat user waits before text "
        "appears (vLLM's vllm:time_to_first_token_seconds)")
    itl_p99_ms: int | None = Field(
        default=None, ge=1, le=60_000,
        description="runtime vllm (required there): p99 inter-token latency, the pace of the text once it flows "
        "(vLLM's vllm:inter_token_latency_seconds)")
    error_rate_percent: float = Field(gt=0, le=50, description="5xx share of invocations")
    client_error_rate_percent: float = Field(default=5, gt=0, le=100, description="4xx share that pages someone")


class Usage(Strict):
    """What the deployment is expected to carry: the estimate prices traffic from it (requests, WAF, data out, load
    balancer capacity, captured data). It is carried on the deployment's API as a tag, so the policy pack's budget
    rule, which sees only the plan, prices the same traffic."""
    requests_per_second: float = Field(default=1, ge=0, le=100_000,
                                       description="Average requests per second over a month")
    request_kb: float = Field(default=16, ge=0, le=10 * 1024, description="Average request body, KB")
    response_kb: float = Field(default=4, ge=0, le=10 * 1024, description="Average response body, KB")


class LlmEngine(Strict):
    """vLLM's engine settings (`vllm serve` flags), for runtime vllm: the same on both backends."""
    served_model_name: Name | None = Field(
        default=None, description="The `model` clients name in OpenAI requests (/v1/models lists it); unset: the "
        "deployment's name")
    weights_gib: float = Field(
        gt=0, le=2048, description="Size of the weights folder: sizes the node's disk and the model cache, and is "
        "checked to fit the GPUs' memory")
    max_model_len: int = Field(
        ge=128, le=1_048_576, description="Longest prompt plus completion in tokens (--max-model-len): bounds the "
        "KV cache each sequence may need")
    tensor_parallel: int = Field(
        default=1, ge=1, le=8, description="GPUs one replica shards the model over (--tensor-parallel-size): must "
        "equal the replica's GPUs (KServe compute.gpus; SageMaker inference_component.accelerators)")
    gpu_memory_utilization: float = Field(
        default=0.9, ge=0.5, le=0.98, description="Share of each GPU's memory vLLM takes for weights and KV cache "
        "(--gpu-memory-utilization)")
    dtype: Literal["auto", "bfloat16", "float16"] = Field(
        default="auto", description="Weights and activations type (--dtype); auto: the model config's")
    quantization: Literal["none", "fp8", "awq", "gptq"] = Field(
        default="none", description="--quantization: fp8 (Ada and Hopper GPUs: g6, g6e, p5), awq or gptq (weights "
        "already quantized that way); none: as the weights are")
    max_num_seqs: int = Field(
        default=64, ge=1, le=4096, description="Sequences the engine batches at once (--max-num-seqs): requests "
        "beyond it wait, and waiting requests are what KEDA scales on")
    scale_at_waiting: int = Field(
        default=2, ge=1, le=1000, description="KServe: waiting requests per replica (vllm:num_requests_waiting) at "
        "which KEDA adds a replica")
    scale_at_kv_cache_percent: int = Field(
        default=85, ge=10, le=100, description="KServe: KV-cache use per replica (vllm:kv_cache_usage_perc) at which "
        "KEDA adds a replica, before requests start to wait")
    tokens_per_second_at_slo: float | None = Field(
        default=None, gt=0, description="Measured by `python -m infra.ops profile`: output tokens per second one "
        "replica serves within the TTFT and inter-token SLOs; the estimate prices a million tokens from it")

    def model_name(self, deployment: str) -> str:
        return self.served_model_name or deployment


class DeploymentBase(Strict):
    name: Name = Field(description="Deployment name: part of every resource name and the API path")
    model: ModelArtifact = Field(description="The released model artifact")
    image: ServingImage = Field(description="The serving image (ECR repository of the stack, by tag or digest)")
    autoscaling: Autoscaling = Field(description="Capacity bounds and scaling targets")
    rollout: Rollout = Field(description="How a new model version goes live")
    data_capture: DataCapture = Field(description="Request/response capture")
    slo: Slo = Field(description="Latency and error objectives the alarms watch")
    usage: Usage = Field(default_factory=lambda: Usage(),
                         description="Expected traffic, for the cost estimate (defaults printed beside it)")
    drift: DriftMonitoring = Field(
        default=DriftMonitoring(enabled=False),
        description="Scheduled input drift monitoring")
    needs_gpu: bool = Field(
        default=True,
        description="The model needs a GPU (a GPU instance type or node group is then required)")
    runtime: Literal["triton", "vllm"] = Field(
        default="triton", description="triton: the serving image (Triton behind mlserve's front, tensors over the v2 "
        "protocol); vllm: a language model on vLLM's OpenAI-compatible server (/v1/chat/completions, "
        "/v1/completions, /v1/models, streamed), the image being vLLM's own, copied into the stack's ECR")
    llm: LlmEngine | None = Field(default=None, description="runtime vllm (required there): the engine's settings")

    @property
    def is_llm(self) -> bool:
        return self.runtime == "vllm"


class AsyncInference(Strict):
    """SageMaker asynchronous inference: requests queue inside SageMaker, inputs and results live in S3."""
    max_concurrent_invocations_per_instance: int = Field(
        default=4, ge=1, le=1000, description="Requests one instance works on at once; the rest wait in the queue")
    backlog_per_instance: int = Field(
        default=5, ge=1, le=10_000, description="Target of ApproximateBacklogSizePerInstance: queued requests per "
                                                "instance before another instance is added")


class InferenceComponentConfig(Strict):
    """One model as a SageMaker inference component: copies of it, each with its own reservation, on an endpoint
    whose instances SageMaker adds and removes with the copies (managed instance scaling)."""
    accelerators: int = Field(default=1, ge=0, le=8, description="GPUs reserved per copy")
    cpu_cores: float = Field(default=2, gt=0, le=192, description="CPU cores reserved per copy")
    min_memory_mb: int = Field(default=8192, ge=128, le=2_000_000, description="Memory reserved per copy")
    copies: int = Field(default=1, ge=1, le=100, description="Copies at deployment (autoscaling then moves them "
                                                             "between autoscaling.min and max)")
    tolerates_cold_start: bool = Field(
        default=False, description="Prod only: allow autoscaling.min 0 copies. Named for what it costs: after an "
        "idle period the first requests fail (NoCapacityInvocationFailures) while an instance starts and the "
        "model loads, minutes; clients must retry")


class WeightedVariant(Strict):
    """Another model served beside the primary for an A/B test, with its share of traffic."""
    name: Name = Field(description="Variant name")
    model: ModelArtifact = Field(description="The variant's model")
    weight_percent: int = Field(description="Share of traffic", ge=1, le=50)
    instance_count: int = Field(description="Instances of the variant", default=1, ge=1, le=100)


class SageMakerDeployment(DeploymentBase):
    backend: Literal["sagemaker"] = Field(description="sagemaker: a SageMaker endpoint")
    mode: Literal["realtime", "async"] = Field(
        default="realtime", description="realtime: InvokeEndpoint answers in the request (at most 60 s, 25 MB); "
                                        "async: InvokeEndpointAsync queues a request whose input is in S3 (up to 1 "
                                        "GB, 1 hour) and notifies SNS when its result is there; may scale to 0")
    async_inference: AsyncInference = Field(default_factory=lambda: AsyncInference(),
                                            description="Settings of mode: async")
    compute: SageMakerCompute = Field(description="SageMaker instance settings")
    hosting: Literal["endpoint", "inference_components"] = Field(
        default="endpoint", description="endpoint: the model is the endpoint's production variant (blue/green, at "
        "least one instance); inference_components: the model is an inference component with its own CPU/GPU/memory "
        "reservation and copy count, instances follow the copies, and copies may scale to zero")
    inference_component: InferenceComponentConfig = Field(
        default_factory=lambda: InferenceComponentConfig(), description="Settings of hosting: inference_components")
    endpoint: Name | None = Field(
        default=None, description="hosting: inference_components: the endpoint the inference component runs on; deployments "
        "naming the same one share it and its instances (small models packed onto one GPU instance). Unset: an "
        "endpoint of its own, named after the deployment")
    ab_variants: list[WeightedVariant] = Field(
        default_factory=list,
        description="Other models served beside the primary, with their traffic shares")

    def copies_per_instance(self) -> int:
        """hosting: inference_components: how many copies one instance holds, packed by GPU (at least one): the
        instances an endpoint needs for N copies are ceil(N / this), at deployment, at max, and during an update."""
        return max(1, sagemaker_gpus(self.compute.instance_type) // max(1, self.inference_component.accelerators))

    def target_invocations_per_minute(self) -> int | None:
        """Per instance, for target tracking: measured capacity at the SLO, less headroom, in invocations/minute;
        None when the deployment tracks concurrency instead (rules.autoscaling_target allows exactly one)."""
        scaling = self.autoscaling
        if scaling.target_invocations_per_instance is not None:
            return scaling.target_invocations_per_instance
        if scaling.max_rps_per_instance_at_slo is None:
            return None
        return max(1, int(scaling.max_rps_per_instance_at_slo * 60 * (100 - scaling.headroom_percent) / 100))

    @property
    def endpoint_group(self) -> str:
        """The endpoint this deployment is served from: its `endpoint` group, or its own name."""
        return self.endpoint or self.name


class KServeDeployment(DeploymentBase):
    backend: Literal["kserve"] = Field(description="kserve: an InferenceService on the stack's EKS cluster")
    compute: KServeCompute = Field(description="Pod resources and the node group or GPU pool")


# The backend picks the compute model, so an error names the fields that backend really has.
Deployment = Annotated[SageMakerDeployment | KServeDeployment, Field(discriminator="backend")]
SAGEMAKER_MAX_BAKE_MINUTES = 60  # the API's WaitIntervalInSeconds is at most 3600
DISCRIMINATOR_TAGS = {"sagemaker", "kserve", "all_at_once", "canary", "linear", "blue_green", "rolling", "shadow",
                      "sagemaker_pipeline", "step_functions", "https"}


class ApiTier(Strict):
    name: Name = Field(description="Tier (usage plan) name")
    rate_per_second: float = Field(description="Steady request rate per API key", gt=0, le=10_000)
    burst: int = Field(description="Burst per API key", ge=1, le=5_000)
    quota_per_day: int = Field(description="Requests per key per day", ge=1)


class GatewayConfig(Strict):
    authorization: Literal["api_key", "iam", "jwt"] = Field(
        default="api_key", description="Every route also requires an API key (usage plans meter by key)")
    cognito_user_pool_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/.+",
        description="The user pool whose JWTs are accepted (authorization jwt)")
    tiers: list[ApiTier] = Field(description="Usage plans: each API key belongs to one", min_length=1)
    max_body_bytes: int = Field(default=6 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024,
                                description="API Gateway's own ceiling is 10 MiB")
    waf_rate_limit_per_ip: int = Field(default=2000, ge=100, le=2_000_000_000, description="requests per 5 minutes")
    access_log_retention_days: Literal[30, 60, 90, 180, 365, 731] = Field(
        default=90,
        description="Days the API's access logs (and WAF logs) are kept")
    domain_name: str | None = Field(default=None, description="Custom domain for the API (with certificate_arn)")
    certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+",
        description="Regional ACM certificate for domain_name")
    account_settings: Literal["manage", "existing"] = Field(
        default="manage",
        description="API Gateway's account-level CloudWatch role (one per account and region, which stage logging "
                    "needs): manage sets it; existing relies on the one another stack of the same account and "
                    "region manages (only one may)")


class AlertingConfig(Strict):
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(
        default_factory=list,
        description="Addresses subscribed to the alert topic (stored as secrets)")
    https_webhooks: list[Annotated[str, Field(pattern=r"^https://")]] = Field(
        default_factory=list,
        description="HTTPS endpoints subscribed to the alert topic (stored as secrets)")


Tags = dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]]


class LogsConfig(Strict):
    retention_days: Literal[30, 60, 90, 180, 365, 731, 1827, 2557, 3653] = Field(
        default=90, description="Days the stack keeps the drift job's logs and the model store's object-level audit "
                                "trail (locked for that long in prod); flow, control-plane and API access logs have "
                                "their own keys")


class BudgetConfig(Strict):
    monthly_usd: float = Field(
        gt=0, le=10_000_000,
        description="The stack's monthly budget in USD. AWS Budgets tracks the spend of resources tagged with this "
                    "stack (the mlserve:stack cost-allocation tag), and the policy pack refuses (prod) or flags (dev) "
                    "a change whose maximum estimated monthly cost exceeds it")
    actual_alert_percent: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [80, 100], max_length=5,
        description="Alert the stack's SNS topic when this month's actual spend passes these percentages")
    forecast_alert_percent: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [100], max_length=5,
        description="Alert when AWS forecasts this month's spend to pass these percentages")

    @model_validator(mode="after")
    def _fits_aws_budgets(self) -> BudgetConfig:
        if len(self.actual_alert_percent) + len(self.forecast_alert_percent) > 5:
            raise ValueError("AWS Budgets allows at most 5 alerts per budget (actual and forecast together)")
        for name, values in (("actual_alert_percent", self.actual_alert_percent),
                             ("forecast_alert_percent", self.forecast_alert_percent)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} repeats a percentage")
        return self


class CiConfig(Strict):
    """How GitHub Actions deploys the stack: roles with an exact trust, a build in the VPC for a private cluster API.

    docs/ci-deploy.md says where each piece lives and why."""
    repository: str = Field(
        pattern=r"^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$",
        description="The GitHub repository (owner/name) whose workflow deploys the stack: the only subjects the "
                    "roles trust are built from it")
    environment: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,255}$",
        description="The GitHub environment the deploy job runs in (give prod's required reviewers): the deploy "
                    "role trusts exactly the token subject repo:<repository>:environment:<environment>")
    runner: Literal["github", "codebuild"] = Field(
        description="Where `pulumi up` runs. github: in the workflow's job (the stack's APIs are public); codebuild: "
                    "in a CodeBuild project in the stack's private subnets, started by the job (a private cluster "
                    "API, which GitHub's runners cannot reach)")
    backend_url: str = Field(
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s?]*)?(\?[^\s]*)?|https://[^\s]+)$",
        description="Where the state lives, as `pulumi login` takes it (`python -m infra.ops bootstrap` prints it)")
    access_token_secret_arn: str | None = Field(
        default=None, pattern=r"^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$",
        description="runner codebuild with a Pulumi Cloud backend (https://): the Secrets Manager secret holding "
                    "PULUMI_ACCESS_TOKEN, which the build reads (the workflow's jobs use the repository secret)")
    secrets_key_alias: str = Field(
        default="mlserve-pulumi-secrets", pattern=r"^[A-Za-z0-9/_-]{1,250}$",
        description="The alias (without alias/) of the KMS key of the stack's secrets provider, "
                    "awskms://alias/<alias> (bootstrap's default): pull-request previews may decrypt with it")
    github_oidc_provider: Literal["manage", "existing"] = Field(
        default="manage",
        description="GitHub's OIDC provider (token.actions.githubusercontent.com), one per account: manage creates "
                    "it; existing uses the one another stack of the same account manages (only one may)")
    pulumi_version: str = Field(
        default="3.272.0", pattern=r"^\d+\.\d+\.\d+$",
        description="The Pulumi CLI the workflow and the build install (the SDK pinned in constraints.txt)")

    @model_validator(mode="after")
    def _token_for_a_cloud_backend(self) -> CiConfig:
        if self.runner == "codebuild" and self.backend_url.startswith("https://") and not self.access_token_secret_arn:
            raise ValueError("a Pulumi Cloud backend (https://) needs access_token_secret_arn: the build reads "
                             "PULUMI_ACCESS_TOKEN from it")
        return self


class StackConfig(Strict):
    environment: Literal["dev", "prod"] = Field(
        description="Which rule set applies: prod is stricter (capacity, rollouts, deletion protection, the pack)")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$",
                        description="AWS region of every resource (commercial partition only)")
    account_id: str | None = Field(
        default=None, pattern=r"^\d{12}$",
        description="The AWS account the stack deploys to: any other is refused before a change (the provider's "
                    "allowed_account_ids); required in prod")
    tags: Tags = Field(description="Tags on every resource (owner and cost-center required)")
    network: NetworkConfig = Field(description="The VPC")
    model_store: ModelStoreConfig = Field(description="The model bucket and image repositories")
    cluster: ClusterConfig | None = Field(default=None, description="The EKS cluster for KServe deployments (optional)")
    deployments: list[Deployment] = Field(description="The models this stack serves", min_length=1)
    gateway: GatewayConfig = Field(description="The API front door of every deployment")
    alerting: AlertingConfig = Field(description="Who hears the alarms")
    logs: LogsConfig = Field(default_factory=lambda: LogsConfig(),
                             description="The stack's own logs and audit trail")
    budget: BudgetConfig | None = Field(
        default=None, description="A monthly budget with alerts; prod's policy pack requires one")
    phase: Literal["stores", "all"] = Field(
        default="all",
        description="What `pulumi up` declares. stores: a new stack's first up, only what holds the image and the "
                    "model (the stack key, the model bucket and its audit trail, the ECR repositories, the alert topic "
                    "and budget they report to), so that the image can be pushed and the model released before "
                    "anything serves them; all: everything. Switch to all when `python -m infra.ops preflight` says "
                    "the stack is ready; never back on a stack that serves (that up would delete everything else)")
    ci: CiConfig | None = Field(
        default=None,
        description="How GitHub Actions deploys the stack (with account_id: the workflow assumes the stack's roles "
                    "by their ARNs); unset: tested and checked offline in CI, deployed by hand")

    @field_validator("ci")
    @classmethod
    def _ci_names_the_account(cls, ci: CiConfig | None, info: ValidationInfo) -> CiConfig | None:
        if ci is not None and "account_id" in info.data and info.data["account_id"] is None:
            raise ValueError("set mlserve:account_id too: the workflow assumes the stack's roles by their ARNs")
        return ci

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


REQUIRED_TAGS = ("owner", "cost-center")
