import pytest

from serving_image import local_server


@pytest.fixture(scope="module")
def server():
    """The real local Triton with the sample model, KServe v2 on 127.0.0.1; stopped after the module."""
    with local_server.running() as running:
        yield running
