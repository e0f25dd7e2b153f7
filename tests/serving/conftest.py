import pytest

from serving_image import local_server


@pytest.fixture(scope="module")
def server():
    """The real local Triton with the sample model, KServe v2 on 127.0.0.1; stopped after the module."""
    # A 4 MiB body limit, so that the oversized-body case stays small.
    with local_server.running(extra_env={"MLSERVE_MAX_BODY_BYTES": str(4 * 1024 * 1024)}) as running:
        yield running
