"""Facts about AWS that are not in botocore's models: GPUs per SageMaker instance type.

GPU metrics (GPUUtilization, GPUMemoryUtilization) add up over an instance's GPUs, so thresholds scale with this.
"""

_GPUS_BY_SIZE = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4,
                 "48xlarge": 8}
_EIGHT_GPU = {"ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.p5en.48xlarge"}


def sagemaker_gpus(instance_type: str) -> int:
    """GPUs on one instance; 0 for CPU instance types."""
    if instance_type in _EIGHT_GPU:
        return 8
    if instance_type == "ml.p5.4xlarge":
        return 1
    family, _, size = instance_type.removeprefix("ml.").partition(".")
    if family in ("g5", "g6", "g6e"):
        return _GPUS_BY_SIZE.get(size, 1)
    return 0
