"""A language model's weights folder and the manifest that pins it: every file's size and sha256, written at release
(`python -m infra.ops release-model --llm`), checked by preflight in S3, and waited for by the serving pod.

The pod's wait matters because the weights may come from KServe's node-local model cache, which a DaemonSet fills
on each new node by a download Job of its own: KServe mounts the cache into the pod whether or not that Job has
finished, and vLLM started on a half-written folder dies and restarts with back-off. The gate (`serve_when_complete`)
holds vLLM until every file of the manifest is on disk at its recorded size, then execs it.

Standard library only: the gate runs inside vLLM's own image (as `python3 -c`), and the LLM tests' venv imports it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path

MANIFEST = "mlserve-manifest.json"
"""Written beside the weights; the config's model.sha256 is this file's sha256."""


def file_sha256(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(folder: Path) -> dict:
    """Every file under `folder` (but the manifest itself), by relative path: size and sha256."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    if not any(name.endswith(".safetensors") for name in files):
        raise ValueError(f"{folder}: no *.safetensors file; vLLM serves a Hugging Face folder of safetensors weights")
    if "config.json" not in files:
        raise ValueError(f"{folder}: no config.json; vLLM reads the model's architecture from it")
    return {"format": "safetensors", "files": files}


def manifest_bytes(manifest: dict) -> bytes:
    """Canonical bytes, so the same folder always gives the same sha256."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def serve_when_complete(folder: str, argv: list[str], poll_seconds: float = 5.0) -> None:
    """Wait until every file the manifest names is in `folder` at its size, then replace this process by `argv`.

    Sizes, not digests: a digest of tens of GiB would add minutes to every start; the digests were checked when the
    folder was released and are checked by preflight in S3. Source-copied into the pod (`gate_command`), so it
    imports what it uses."""
    import json
    import os
    import time
    from pathlib import Path

    root, waited = Path(folder), 0.0
    while True:
        manifest_path = root / "mlserve-manifest.json"
        missing = ["mlserve-manifest.json"]
        if manifest_path.is_file():
            try:
                files = json.loads(manifest_path.read_text())["files"]
                missing = [name for name, meta in files.items()
                           if not (root / name).is_file() or (root / name).stat().st_size != meta["size"]]
            except (ValueError, KeyError, TypeError, OSError):
                missing = ["mlserve-manifest.json (unreadable)"]
        if not missing:
            break
        if waited % 60 < poll_seconds:
            print(f"mlserve: waiting for {len(missing)} weight file(s) in {folder} (e.g. {missing[0]}), "
                  f"{waited:.0f} s so far", flush=True)
        time.sleep(poll_seconds)
        waited += poll_seconds
    os.execvp(argv[0], argv)


def gate_command(folder: str, argv: list[str]) -> list[str]:
    """The container command that runs `serve_when_complete` from this source, then vLLM."""
    source = inspect.getsource(serve_when_complete)
    return ["python3", "-c", f"{source}\nimport sys\nserve_when_complete({folder!r}, sys.argv[1:])\n", *argv]


if __name__ == "__main__":  # pragma: no cover - `python -m components.weights_manifest FOLDER` prints a manifest
    print(json.dumps(build_manifest(Path(sys.argv[1])), indent=2))
