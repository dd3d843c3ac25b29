"""Measuring a draft against its target: expected alpha, the cost ratio c, the theory.

- Expected alpha (Leviathan et al. 2023, arXiv 2211.17192, Definition 3.1): the mean over
  positions of target samples at ``tau`` of ``sum_x min(p(x), q(x))``, computed in one
  batched forward of each model, no decoding loop. Ouyang et al. 2024 (arXiv 2410.10141)
  report it as alpha alongside the wall-time speedup gamma.
- ``c``: the draft's forward time per token over the target's, both with a KV cache, timed
  by the same runner that decodes (`tcsd_utils.speculative.CausalLMRunner`).
- Leviathan et al.'s predicted speedup (their Theorem 3.8 with Eq. 1):
  ``(1 - alpha^(k+1)) / ((1 - alpha) (k c + 1))``.
"""

from __future__ import annotations

import torch

from .distill import _head_logits, _pack
from .temperature import check_tau, overlap, probs

__all__ = ["expected_alpha", "cost_ratio", "predicted_speedup", "expected_tokens_per_step"]


@torch.inference_mode()
def expected_alpha(target, draft, data, tau: float, batch_size: int = 16, pad: int = 0,
                   per_position: bool = False):
    """Mean acceptance probability of the draft on target samples at ``tau``.

    Args:
        target, draft: the two models (same vocabulary).
        data: rows with ``prompt_ids`` and ``answer_ids``: target continuations sampled at
            ``tau`` (`tcsd_utils.distill.teacher_data` on held-out prompts).
        tau: decoding temperature for both ``p`` and ``q`` (0 = greedy: overlap is 1 where
            the argmaxes agree, else 0).
        batch_size: sequences per forward.
        pad: padding id (masked out).
        per_position: also return the overlap at every answer position.

    Returns:
        ``alpha`` (float), or ``(alpha, overlaps)`` with ``per_position``.
    """
    tau = check_tau(tau)
    rows = [(r["prompt_ids"], r["answer_ids"]) for r in data if len(r["answer_ids"])]
    if not rows:
        raise ValueError("no target samples to evaluate on")
    values = []
    for start in range(0, len(rows), batch_size):
        ids, mask, r, c, _ = _pack(rows[start:start + batch_size], pad, target.device)
        p = probs(_head_logits(target, ids, mask, r, c), tau)
        d = draft.device
        q = probs(_head_logits(draft, ids.to(d), mask.to(d), r.to(d), c.to(d)), tau).to(p.device)
        values.append(overlap(p, q))
    values = torch.cat(values)
    alpha = float(values.mean())
    return (alpha, values.tolist()) if per_position else alpha


@torch.inference_mode()
def _per_token_time(model, prompt_len: int, n_tokens: int) -> float:
    from .speculative import CausalLMRunner, Clock

    runner = CausalLMRunner(model)
    runner.start([0] * prompt_len)
    runner.extend(torch.zeros(prompt_len, dtype=torch.long, device=runner.device))
    token = torch.zeros(1, dtype=torch.long, device=runner.device)
    for _ in range(3):  # warm-up
        runner.extend(token)
    clock = Clock(runner.device)
    t0 = clock()
    for _ in range(n_tokens):
        runner.extend(token)
    return (clock() - t0) / n_tokens


def cost_ratio(target, draft, prompt_len: int = 64, n_tokens: int = 32, repeats: int = 3) -> dict:
    """Measure ``c`` = draft time per token / target time per token (KV cache, batch 1).

    Returns:
        dict with ``c``, ``target_ms`` and ``draft_ms`` (medians over ``repeats``).
    """
    t = sorted(_per_token_time(target, prompt_len, n_tokens) for _ in range(repeats))[repeats // 2]
    d = sorted(_per_token_time(draft, prompt_len, n_tokens) for _ in range(repeats))[repeats // 2]
    return {"c": d / t, "target_ms": 1000 * t, "draft_ms": 1000 * d}


def expected_tokens_per_step(alpha: float, k: int) -> float:
    """Tokens per target forward, ``(1 - alpha^(k+1)) / (1 - alpha)`` (Leviathan Eq. 1)."""
    if alpha >= 1.0:
        return float(k + 1)
    return (1 - alpha ** (k + 1)) / (1 - alpha)


def predicted_speedup(alpha: float, c: float, k: int) -> float:
    """Leviathan et al.'s expected wall-time improvement, ``(1 - a^(k+1)) / ((1 - a)(k c + 1))``."""
    return expected_tokens_per_step(alpha, k) / (k * c + 1)
