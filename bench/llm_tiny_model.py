"""A tiny Llama made on this machine, for running the real vLLM server without a GPU or a model hub.

Random weights (a seeded `LlamaForCausalLM` from a small `LlamaConfig`, saved as safetensors) and a byte-level BPE
tokenizer trained here with `tokenizers` on a few sentences, with a chat template so `/v1/chat/completions` works.
It answers nonsense, fast: what it proves is the server (routes, streaming, errors, metrics, scheduling), never the
quality of an answer. Nothing is downloaded; `make_tiny_model` runs with HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1.

Sizes, and why: hidden 128 with 2 attention heads gives a head size of 64 (vLLM's CPU attention kernels refuse a
head size of 16); 2 layers; float32, which every CPU kernel takes. The tokenizer learns only from ASCII text and has
no byte alphabet beyond it, so any token decodes to whole characters and every generated token is streamed as text
(a byte-level token that is half a UTF-8 character would be held back by the server's detokenizer).

    python -m bench.llm_tiny_model DIR    # writes config.json, model.safetensors, tokenizer files into DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HIDDEN = 128
HEADS = 2
LAYERS = 2
INTERMEDIATE = 256
VOCAB = 512
MAX_POSITIONS = 2048

SPECIAL = ("<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

CORPUS = """\
The model server streams tokens to the client as they are generated, one chunk at a time.
A request waits in the queue when the scheduler has no room for it, and the autoscaler adds a replica.
Time to first token is what a user feels first; the gap between tokens is the pace of reading.
The quick brown fox jumps over the lazy dog while the cache of keys and values fills up.
Numbers such as 0 1 2 3 4 5 6 7 8 9 10 42 100 2048 appear in prompts, and so do words like the, of, and, to, in.
It is a small world: this sentence, that question, which answer, one day, all the time, from here to there.
Hello! How are you today? I am fine, thank you. What can I do for you? Tell me a story about a cloud.
"""


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def make_tokenizer(directory: Path):
    """A byte-level BPE of VOCAB tokens trained on CORPUS, saved with its special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=list(SPECIAL), show_progress=False,
                                  initial_alphabet=[])
    tokenizer.train_from_iterator(CORPUS.splitlines() * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   model_max_length=MAX_POSITIONS)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    return fast


def make_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Write the tiny model into `directory` (created if missing) and return it."""
    _offline()
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(directory)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                         num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=HEADS,
                         max_position_embeddings=MAX_POSITIONS, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False, torch_dtype="float32")
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(directory, safe_serialization=True)
    GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                     pad_token_id=config.pad_token_id).save_pretrained(directory)
    return directory


def is_model_dir(directory: Path) -> bool:
    return all((Path(directory) / name).is_file() for name in ("config.json", "model.safetensors",
                                                                "tokenizer.json"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.llm_tiny_model DIR")
    print(make_tiny_model(Path(sys.argv[1])))
