"""A draft whose output layer covers only part of the vocabulary (q = 0 elsewhere).

A draft's cost per token on a CPU is mostly reading its weights, and at the target's width
(576 for SmolLM2) a full 49152-row output layer alone would cost a fifth of the target's
forward. FR-Spec (Zhao et al. 2025, arXiv 2502.14856) and EAGLE-3 (Li et al. 2025, arXiv
2503.01840) cut the draft's output layer to the most frequent tokens. Speculative sampling
stays exact for any q (Leviathan et al. 2023, arXiv 2211.17192, Theorem 3.5): a token the
draft cannot propose is still produced by the residual max(0, p - q) when the draft is
rejected. Expected alpha counts it correctly, because q is 0 there and sum_x min(p, q)
gets nothing from it.

`SubVocabLlamaForCausalLM` is a transformers ``LlamaForCausalLM`` whose ``lm_head`` is a
`SubVocabHead`: logits for the kept token ids, ``-inf`` for the others, so every caller
(our decoders, ``generate``, assisted generation, expected alpha) sees an ordinary
full-vocabulary model. Training takes the compact logits (`SubVocabHead.compact`). The kept
ids are stored in the config (``head_vocab``), so ``save_pretrained`` and
``AutoModelForCausalLM.from_pretrained`` round-trip it; importing this module registers the
model type with transformers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

__all__ = ["SubVocabLlamaConfig", "SubVocabHead", "SubVocabLlamaForCausalLM", "head_ids"]

MODEL_TYPE = "tcsd_subvocab_llama"


class SubVocabLlamaConfig(LlamaConfig):
    """A Llama config plus ``head_vocab``: the token ids the output layer covers (sorted)."""

    model_type = MODEL_TYPE

    def __init__(self, head_vocab: list[int] | None = None, **kwargs):
        self.head_vocab = sorted(int(i) for i in head_vocab) if head_vocab is not None else None
        kwargs["tie_word_embeddings"] = False  # the head has its own rows
        super().__init__(**kwargs)


class SubVocabHead(torch.nn.Module):
    """``hidden -> logits`` over ``vocab_size`` tokens, computed for ``ids`` only.

    ``weight`` has shape ``(len(ids), hidden)``; ``forward`` returns ``(..., vocab_size)``
    with ``-inf`` off ``ids``, ``compact`` the ``(..., len(ids))`` logits.
    """

    def __init__(self, hidden_size: int, vocab_size: int, ids: list[int]):
        super().__init__()
        ids = [int(i) for i in ids]
        if not ids or min(ids) < 0 or max(ids) >= vocab_size:
            raise ValueError(f"head_vocab must hold ids in [0, {vocab_size}), got {len(ids)} ids "
                             f"from {min(ids, default=None)} to {max(ids, default=None)}")
        self.vocab_size = vocab_size
        self.weight = torch.nn.Parameter(torch.empty(len(ids), hidden_size))
        torch.nn.init.normal_(self.weight, std=0.02)
        # saved with the weights too, so a model built on the meta device gets real ids
        self.register_buffer("ids", torch.tensor(ids, dtype=torch.long))

    def compact(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.weight)

    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """Compact logits (..., len(ids)) to full ones (..., vocab_size), -inf off ``ids``."""
        out = compact.new_full((*compact.shape[:-1], self.vocab_size), float("-inf"))
        return out.index_copy_(-1, self.ids, compact)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.expand(self.compact(hidden))


class SubVocabLlamaForCausalLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` with a `SubVocabHead` (see the module docstring)."""

    config_class = SubVocabLlamaConfig
    _tied_weights_keys = {}

    def __init__(self, config: SubVocabLlamaConfig):
        super().__init__(config)
        ids = config.head_vocab if config.head_vocab is not None else list(range(config.vocab_size))
        self.lm_head = SubVocabHead(config.hidden_size, config.vocab_size, ids)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, SubVocabHead):
            torch.nn.init.normal_(module.weight, std=self.config.initializer_range)
            return
        super()._init_weights(module)


def head_ids(model) -> torch.Tensor | None:
    """The token ids a model's output layer covers, or None when it covers the vocabulary."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return getattr(head, "ids", None)


AutoConfig.register(MODEL_TYPE, SubVocabLlamaConfig, exist_ok=True)
AutoModelForCausalLM.register(SubVocabLlamaConfig, SubVocabLlamaForCausalLM, exist_ok=True)
