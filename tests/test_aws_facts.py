"""GPUs per instance type: one table (infra/aws_facts.py) every layer reads, checked against AWS's own figures."""

import pytest

from infra import aws_facts
from infra.cost import load_table


def test_every_gpu_count_the_price_list_gives_is_the_table_s():
    # The price table's `gpus` is the AWS Price List's GPU attribute for the instance (sourced per figure).
    priced = {key.removeprefix("ec2:"): price.gpus for key, price in load_table("us-east-1").prices.items()
              if key.startswith("ec2:") and price.gpus is not None}
    gpu_types = {t: n for t, n in priced.items() if aws_facts.is_gpu_family(t)}
    assert gpu_types, "the price table names no GPU instance"
    assert {t: aws_facts.gpus(t) for t in gpu_types} == gpu_types
    assert all(aws_facts.gpus(t) == 0 for t, n in priced.items() if n == 0)


@pytest.mark.parametrize("instance_type,gpus", [
    ("ml.g5.xlarge", 1), ("g5.12xlarge", 4), ("ml.g6e.48xlarge", 8), ("p4d.24xlarge", 8), ("ml.p4d.24xlarge", 8),
    ("ml.p5.4xlarge", 1), ("p5.48xlarge", 8), ("m6i.xlarge", 0), ("ml.m5.large", 0)])
def test_sagemaker_and_ec2_names_of_one_machine_have_its_gpus(instance_type, gpus):
    # AWS's published figures (EC2 accelerated-computing instance pages): p4d.24xlarge has 8 A100s, p5.4xlarge one
    # H100; the SageMaker type runs on the EC2 machine of the same name.
    assert aws_facts.gpus(instance_type) == gpus


def test_the_policy_pack_and_the_program_count_gpus_with_the_same_table():
    from policies.rules import cost

    assert cost.gpus is aws_facts.gpus


@pytest.mark.parametrize("instance_type,total_gib", [
    # GPU memory per instance as AWS's accelerated-computing instance pages state it (GPUs x memory each).
    ("g5.xlarge", 24), ("g5.48xlarge", 192), ("g6.48xlarge", 192), ("g6e.xlarge", 48), ("g6e.48xlarge", 384),
    ("p4d.24xlarge", 320), ("p4de.24xlarge", 640), ("p5.48xlarge", 640), ("p5e.48xlarge", 1128),
    ("p5en.48xlarge", 1128)])
def test_gpu_memory_per_instance_is_awss_published_figure(instance_type, total_gib):
    assert aws_facts.gpus(instance_type) * aws_facts.gpu_memory_gib(instance_type) == total_gib
