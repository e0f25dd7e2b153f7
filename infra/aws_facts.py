"""Facts about AWS instance types that botocore's models do not carry: the GPUs of each GPU type mlserve allows.

One home for every layer: config rules (a component's accelerators fit its instance), the program (GPU metrics add
up over an instance's GPUs, so alarm and scaling thresholds scale with them), preflight, the cost estimate and the
policy pack read it here. A SageMaker type (`ml.g5.xlarge`) is the EC2 type of the same name behind `ml.`.
`tests/test_aws_facts.py` checks every figure against the AWS Price List's GPU attribute as the price table carries
it (`infra/cost/prices/`).
"""

from __future__ import annotations

GPUS: dict[str, int] = {
    **{f"g5.{size}": gpus for size, gpus in (("xlarge", 1), ("2xlarge", 1), ("4xlarge", 1), ("8xlarge", 1),
                                              ("16xlarge", 1), ("12xlarge", 4), ("24xlarge", 4), ("48xlarge", 8))},
    **{f"g6.{size}": gpus for size, gpus in (("xlarge", 1), ("2xlarge", 1), ("4xlarge", 1), ("8xlarge", 1),
                                              ("16xlarge", 1), ("12xlarge", 4), ("24xlarge", 4), ("48xlarge", 8))},
    **{f"g6e.{size}": gpus for size, gpus in (("xlarge", 1), ("2xlarge", 1), ("4xlarge", 1), ("8xlarge", 1),
                                               ("16xlarge", 1), ("12xlarge", 4), ("24xlarge", 4), ("48xlarge", 8))},
    "p4d.24xlarge": 8, "p4de.24xlarge": 8,
    "p5.4xlarge": 1, "p5.48xlarge": 8, "p5e.48xlarge": 8, "p5en.48xlarge": 8,
}
"""NVIDIA GPUs per instance, by EC2 instance type."""

GPU_MEMORY_GIB: dict[str, int] = {
    "g5": 24, "g6": 24, "g6e": 48, "p4d": 40, "p4de": 80, "p5": 80, "p5e": 141, "p5en": 141,
}
"""Memory of one GPU, by family (A10G, L4, L40S, A100 40 GB, A100 80 GB, H100, H200): what an LLM's weights and KV
cache must fit in. AWS's accelerated computing instance pages state it per instance (GPU memory / GPUs);
`tests/test_aws_facts.py` pins each figure to that page's per-instance total."""

GPU_FAMILIES: tuple[str, ...] = tuple(sorted({t.split(".")[0] for t in GPUS}))
"""The GPU families mlserve serves on (g5, g6, g6e, p4d, p4de, p5, p5e, p5en)."""


def ec2_type(instance_type: str) -> str:
    """`ml.g5.xlarge` -> `g5.xlarge`: SageMaker hosts on the EC2 type of the same name."""
    return instance_type.removeprefix("ml.")


def gpus(instance_type: str) -> int:
    """GPUs on one instance (EC2 or SageMaker type); 0 for a type without GPUs or one not in the table."""
    return GPUS.get(ec2_type(instance_type), 0)


def gpu_memory_gib(instance_type: str) -> int:
    """Memory of one GPU of the type (EC2 or SageMaker); 0 for a type without GPUs."""
    return GPU_MEMORY_GIB.get(ec2_type(instance_type).split(".")[0], 0)


def is_gpu_family(instance_type: str) -> bool:
    """Whether the type belongs to a GPU family mlserve allows, whatever its size."""
    return ec2_type(instance_type).split(".")[0] in GPU_FAMILIES


def sagemaker_gpus(instance_type: str) -> int:
    """GPUs on one SageMaker instance (`ml.` type)."""
    return gpus(instance_type)
