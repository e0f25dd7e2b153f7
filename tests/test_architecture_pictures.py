"""The README's architecture pictures are drawn from what the stacks declare (their component tree), and kept current."""

from infra.pictures import ARCHITECTURE_OUT, architecture
from tests.harness import stack_plan


def test_the_checked_in_architecture_pictures_match_the_stacks():
    for stack in ("dev", "prod"):
        name = f"architecture-{stack}.svg"
        assert (ARCHITECTURE_OUT / name).read_text() == architecture(stack_plan(stack)), \
            f"run `python -m infra.pictures --write` ({name} is stale)"


def test_the_prod_picture_shows_each_area_its_components_and_their_children():
    picture = architecture(stack_plan("prod"))
    for area in ("serving", "edge", "compute", "observability", "storage", "security", "network", "cost"):
        assert f'font-weight="bold">{area}</text>' in picture
    for component in ("KServeDeployment", "SageMakerDeployment", "EksCluster", "Karpenter", "ModelStore"):
        assert f'font-weight="bold">{component}</text>' in picture
    # A deployment's box lists the components it owns, each with the resources inside it.
    for child in ("PrivateLink", "CaptureSink", "KServeService", "EndpointAutoscaling", "SageMakerEndpoint"):
        assert f'font-size="11">{child} · ' in picture


def test_dev_has_no_cluster_in_its_picture():
    picture = architecture(stack_plan("dev"))
    assert ">compute<" not in picture and ">EksCluster<" not in picture
    assert 'font-size="11">InferenceComponent · ' in picture
