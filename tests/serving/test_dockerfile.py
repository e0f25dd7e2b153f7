"""The image definition: hadolint-clean, non-root, exec-form entrypoint, SageMaker label, health check."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "serving_image" / "Dockerfile"


def test_dockerfile_lints_clean_with_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_keeps_the_serving_contract():
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert "FROM nvcr.io/nvidia/tritonserver:26.04-py3" in lines  # the last release on TensorRT 10
    assert "RUN ls /usr/lib/x86_64-linux-gnu/libnvinfer.so.10* > /dev/null" in lines  # refuses a TensorRT 11 base
    assert "LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \\" in lines
    assert "USER 1000:1000" in lines
    assert 'ENTRYPOINT ["python3", "-m", "serving_image"]' in lines  # exec form: SIGTERM reaches us
    assert 'CMD ["serve"]' in lines
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
