"""A language model's Hugging Face folder, tiny and written here: what `release-model --llm` is given.

The files are real in their formats (a safetensors file with its header and tensor bytes, a config.json with the
architecture vLLM reads, a tokenizer.json in the `tokenizers` library's layout); only their sizes are small. The LLM
example stack (examples/Pulumi.llm-kserve.yaml) is what the tests release it for.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from infra.config.loader import PROJECT_ROOT, read_stack_file
from tests.harness import config_of

EXAMPLE = PROJECT_ROOT / "examples" / "Pulumi.llm-kserve.yaml"
STACK = "llm"
DEPLOYMENT = "assistant"
BUCKET = "example-llm-models"


def llm_raw() -> dict:
    return read_stack_file(EXAMPLE)


def llm_config(raw: dict | None = None):
    return config_of(raw or llm_raw(), STACK)


def safetensors_bytes(tensors: dict[str, tuple[list[int], bytes]]) -> bytes:
    """The safetensors layout: an 8-byte little-endian header length, the JSON header (dtype, shape, data offsets),
    then the tensors' bytes back to back."""
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (shape, raw) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the header is padded to 8 bytes, as the library writes it
    return struct.pack("<Q", len(encoded)) + encoded + data


def floats(count: int, start: float = 0.0) -> bytes:
    return struct.pack(f"<{count}f", *(start + i / 64 for i in range(count)))


def write_llm_folder(folder: Path, seed: float = 0.0, shards: int = 1) -> Path:
    """config.json, generation_config.json, tokenizer.json and tokenizer_config.json, and the weights: one
    model.safetensors, or `shards` files with their model.safetensors.index.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
        "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 2, "vocab_size": 4,
        "max_position_embeddings": 128, "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 1}, indent=2))
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 1}))
    (folder / "tokenizer.json").write_text(json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": "<s>", "special": True, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False},
                         {"id": 1, "content": "</s>", "special": True, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False}],
        "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                              "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3}, "merges": []}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "</s>", "model_max_length": 128, "tokenizer_class": "PreTrainedTokenizerFast"}))
    names = {"model.embed_tokens.weight": [4, 8], "lm_head.weight": [4, 8]}
    if shards == 1:
        (folder / "model.safetensors").write_bytes(safetensors_bytes(
            {name: (shape, floats(32, seed + i)) for i, (name, shape) in enumerate(names.items())}))
        return folder
    weight_map = {}
    for i, (name, shape) in enumerate(names.items()):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        (folder / shard).write_bytes(safetensors_bytes({name: (shape, floats(32, seed + i))}))
        weight_map[name] = shard
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 256},
                                                                      "weight_map": weight_map}))
    return folder
