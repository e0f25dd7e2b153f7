import pytest

from tests import harness


@pytest.fixture(params=["dev", "prod"])
def stack(request) -> str:
    return request.param


@pytest.fixture
def plan(stack):
    """The recorded plan of each checked-in stack."""
    return harness.stack_plan(stack)
