"""The weights manifest pins a language model's folder, and the gate holds vLLM until the folder is complete."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.weights_manifest import MANIFEST, build_manifest, gate_command, manifest_bytes


def folder(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 1000)
    (tmp_path / "tokenizer.json").write_text("{}")
    return tmp_path


def test_every_file_is_listed_with_its_size_and_sha256(tmp_path):
    manifest = build_manifest(folder(tmp_path))
    assert set(manifest["files"]) == {"config.json", "model.safetensors", "tokenizer.json"}
    assert manifest["files"]["model.safetensors"] == {"size": 1000,
                                                     "sha256": hashlib.sha256(b"\x00" * 1000).hexdigest()}


def test_the_same_folder_always_gives_the_same_bytes(tmp_path):
    assert manifest_bytes(build_manifest(folder(tmp_path))) == manifest_bytes(build_manifest(folder(tmp_path)))


@pytest.mark.parametrize("missing,why", [("model.safetensors", "no *.safetensors"), ("config.json", "no config.json")])
def test_a_folder_vllm_cannot_serve_is_refused(tmp_path, missing, why):
    (folder(tmp_path) / missing).unlink()
    with pytest.raises(ValueError, match=re.escape(why)):
        build_manifest(tmp_path)


def test_the_gate_waits_for_a_file_still_being_written_then_runs_the_server(tmp_path):
    root = folder(tmp_path)
    manifest = build_manifest(root)
    (root / MANIFEST).write_bytes(manifest_bytes(manifest))
    (root / "model.safetensors").write_bytes(b"\x00" * 10)  # the cache's download Job is not done yet
    marker = tmp_path / "served"
    command = gate_command(str(root), [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('ok')"])
    command[2] = command[2].replace("sys.argv[1:])", "sys.argv[1:], poll_seconds=0.1)")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert process.poll() is None and not marker.exists()
        (root / "model.safetensors").write_bytes(b"\x00" * 1000)
        out, _ = process.communicate(timeout=20)
    finally:
        process.kill()
    assert marker.read_text() == "ok"
    assert "waiting for 1 weight file(s)" in out and "model.safetensors" in out


def test_the_gate_waits_for_the_manifest_itself(tmp_path):
    root = folder(tmp_path)
    command = gate_command(str(root), [sys.executable, "-c", "print('started')"])
    command[2] = command[2].replace("sys.argv[1:])", "sys.argv[1:], poll_seconds=0.1)")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert process.poll() is None
        (root / MANIFEST).write_text(json.dumps(build_manifest(root)))
        out, _ = process.communicate(timeout=20)
    finally:
        process.kill()
    assert out.rstrip().endswith("started")
