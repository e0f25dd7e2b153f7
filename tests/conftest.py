import pytest


@pytest.fixture(params=["dev", "prod"])
def stack(request) -> str:
    return request.param


@pytest.fixture
def plan(stack):
    """The recorded plan of each checked-in stack."""
    from tests import harness  # lazily: tests/serving runs in the serving image's own environment

    return harness.stack_plan(stack)
