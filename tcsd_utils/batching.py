"""Batches of (prompt, answer) pairs for one forward: the shared plumbing of KD and evaluation.

Distillation (`tcsd_utils.distill`) and evaluation (`tcsd_utils.evaluate`) both score every
answer position of many sequences in one forward. They pack the pairs the same way and
apply the output layer to those positions only; this module is the one place that does it.

It is also the one place that knows an encoder-decoder model (T5) batches differently: the
prompt goes to the encoder and the answer, after the decoder's start token, to the decoder
(`head_logits`), and `generate` returns the decoder's sequence rather than prompt and answer
(`new_tokens`). Callers pack and read the same way for both kinds.

Padding lives here too: `left_pad` for the prompts of one `generate` call, `cut_at_eos`
for an answer, `pad_id` for every batch.
"""

from __future__ import annotations

import torch

__all__ = ["pack", "head_logits", "new_tokens", "pad_id", "left_pad", "cut_at_eos"]


def head_logits(model, ids, mask, rows, cols, compact: bool = False):
    """Logits at chosen positions only: the vocabulary projection dominates a small draft's
    cost, so it is applied to the positions the loss uses (rows, cols), not to all. With
    ``compact``, a sub-vocabulary draft gives its kept ids' logits only, (n, len(ids)).
    An encoder-decoder model gives the logits predicting the same answer tokens
    (`_seq2seq_logits`)."""
    if getattr(model.config, "is_encoder_decoder", False):
        return _seq2seq_logits(model, ids, mask, rows, cols)
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    head = model.get_output_embeddings()
    if compact and hasattr(head, "compact"):
        return head.compact(hidden[rows, cols])
    return head(hidden[rows, cols])  # (n, vocab)


def _seq2seq_logits(model, ids, mask, rows, cols):
    """`head_logits` of an encoder-decoder model on a `pack` batch, in the same order.

    Row r of the batch holds prompt + answer, and its first scored position (``cols``) is the
    prompt's last token: from there the prompt goes to the encoder and ``[decoder start] +
    answer[:-1]`` to the decoder, whose position j predicts answer token j (the same token
    that position ``len(prompt) - 1 + j`` predicts in a decoder-only model). Rows without an
    answer position are left out. The model's own forward runs the output layer (on every
    decoder position), so T5's rescaling before a tied head stays transformers'.
    """
    first, count = {}, {}  # per row with answer positions: its first one, and how many
    for r, c in zip(rows.tolist(), cols.tolist()):
        first.setdefault(r, c)
        count[r] = count.get(r, 0) + 1
    keep = list(first)
    n_prompt = [first[r] + 1 for r in keep]
    enc = torch.zeros((len(keep), max(n_prompt)), dtype=torch.long, device=ids.device)  # past a prompt: masked, never read
    enc_mask = torch.zeros_like(enc)
    dec = torch.full((len(keep), max(count.values())), model.config.decoder_start_token_id, dtype=torch.long,
                     device=ids.device)
    dec_mask = torch.zeros_like(dec)
    for i, (r, n) in enumerate(zip(keep, n_prompt)):
        a = count[r]
        enc[i, :n], enc_mask[i, :n] = ids[r, :n], mask[r, :n]
        dec[i, 1:a] = ids[r, n:n + a - 1]
        dec_mask[i, :a] = 1
    logits = model(input_ids=enc, attention_mask=enc_mask, decoder_input_ids=dec,
                   decoder_attention_mask=dec_mask).logits
    where = {r: i for i, r in enumerate(keep)}
    at = torch.tensor([where[r] for r in rows.tolist()], device=ids.device)
    start = torch.tensor([first[r] for r in rows.tolist()], device=ids.device)
    return logits[at, cols - start]  # (n, vocab): decoder position j = col - (len(prompt) - 1)


def new_tokens(model, sequences, prompt_width: int):
    """The generated tokens in ``generate``'s ``sequences`` for prompts padded to
    ``prompt_width``: a decoder-only model returns the prompt before them, an
    encoder-decoder model its decoder start token."""
    return sequences[:, 1 if getattr(model.config, "is_encoder_decoder", False) else prompt_width:]


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


def cut_at_eos(answer: list, eos: int) -> list:
    """The answer up to and including its first EOS."""
    return answer[: answer.index(eos) + 1] if eos in answer else answer


def left_pad(batch, pad):
    """Left-padded ids and attention mask for `generate`: (batch, width) each."""
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(batch):
        ids[r, width - len(p):], mask[r, width - len(p):] = torch.tensor(list(p)), 1
    return ids, mask
