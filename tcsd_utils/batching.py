"""Batches of (prompt, answer) pairs for one forward: the shared plumbing of KD and evaluation.

Distillation (`tcsd_utils.distill`) and evaluation (`tcsd_utils.evaluate`) both score every
answer position of many sequences in one forward. They pack the pairs the same way and
apply the output layer to those positions only; this module is the one place that does it.
"""

from __future__ import annotations

import torch

__all__ = ["pack", "head_logits", "pad_id"]


def head_logits(model, ids, mask, rows, cols, compact: bool = False):
    """Logits at chosen positions only: the vocabulary projection dominates a small draft's
    cost, so it is applied to the positions the loss uses (rows, cols), not to all. With
    ``compact``, a sub-vocabulary draft gives its kept ids' logits only, (n, len(ids))."""
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    head = model.get_output_embeddings()
    if compact and hasattr(head, "compact"):
        return head.compact(hidden[rows, cols])
    return head(hidden[rows, cols])  # (n, vocab)


def pack(pairs, pad, device):
    """Right-padded (ids, mask) and the positions predicting each answer token.

    Returns:
        ``(ids, mask, rows, cols, labels)``: rows and cols index the logits that predict
        each answer token, in row-major order (all of the first pair's answer, then the
        second's, ...); labels are those tokens.
    """
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    rows, cols, labels = [], [], []
    for r, (p, a) in enumerate(pairs):
        seq = list(p) + list(a)
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        rows += [r] * len(a)
        cols += range(len(p) - 1, len(p) - 1 + len(a))  # logits at i predict token i + 1
        labels += list(a)
    return (ids.to(device), mask.to(device), torch.tensor(rows, device=device),
            torch.tensor(cols, device=device), torch.tensor(labels, device=device))


def pad_id(tokenizer) -> int:
    """The padding id of batches: the tokenizer's pad token, else its EOS (masked out either way)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
