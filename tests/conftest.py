"""Tiny random models and tokenizers, built locally: no test downloads anything."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# The kernel and dtype choices are measured once per machine and kept in ~/.cache/tcsd
# (`runners`). A test run measures tiny shapes, on a CPU busy with the tests, so it keeps its
# own cache (the notebooks nbval runs and the Ray workers inherit it) and leaves the user's
# choices, which decide a study's dtype, alone.
_CACHE = tempfile.mkdtemp(prefix="tcsd-test-cache-")
os.environ["TCSD_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
# Tiny models are all overhead: one thread avoids OpenMP spin-waiting, which made the
# sampling tests 20x slower when another process shared the two cores.
torch.set_num_threads(1)

WORDS = ["<unk>", "<s>", "</s>", "<pad>", "a", "b", "c", "d", "e", "f", "g", "h",
         "hello", "world", "user", "assistant"]
CHAT_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<s> assistant {% endif %}")


def make_tokenizer(words=WORDS):
    """A whitespace word-level tokenizer with a chat template (ids = positions in ``words``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_llama(vocab=16, hidden=32, layers=2, heads=4, seed=0, scale=1.0, context=128, kv_heads=None, **extra):
    """A tiny random Llama in float32. ``scale`` multiplies the output layer (sharper logits);
    ``kv_heads`` below ``heads`` gives grouped-query attention; ``extra`` goes to the config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                      max_position_embeddings=context, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, pad_token_id=3, **extra)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)
    return model.eval()


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session")
def tiny_target():
    return make_llama(seed=0, scale=60.0)


@pytest.fixture(scope="session")
def tiny_draft():
    return make_llama(hidden=16, layers=1, seed=1, scale=60.0)


@pytest.fixture(scope="session")
def tiny_pair_dir(tmp_path_factory, tokenizer, tiny_target, tiny_draft):
    """Target and draft saved like Hub models, each with the tokenizer."""
    root = tmp_path_factory.mktemp("pair")
    for name, model in [("target", tiny_target), ("draft", tiny_draft)]:
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    other = make_tokenizer(WORDS[:4] + [w.upper() for w in WORDS[4:]])
    tiny_draft.save_pretrained(root / "other_draft")
    other.save_pretrained(root / "other_draft")
    return root
