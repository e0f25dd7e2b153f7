"""Docker HEALTHCHECK: healthy when the model answers ready on the mode's health endpoint."""

import os
import sys
import urllib.request


def main() -> int:
    mode = os.environ.get("MLSERVE_MODE", "sagemaker")
    port = os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080") if mode == "sagemaker" else "8080"
    path = "/ping" if mode == "sagemaker" else "/v2/health/ready"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
