"""Measuring a draft against its target: expected alpha, the cost ratio c, the theory.

- Expected alpha (Leviathan et al. 2023, arXiv 2211.17192, Definition 3.1): the mean over
  positions of target samples at ``tau`` of ``sum_x min(p(x), q(x))``, computed in one
  batched forward of each model, no decoding loop. Ouyang et al. 2024 (arXiv 2410.10141)
  report it as alpha alongside the wall-time speedup gamma.
- ``c``: the draft's forward time per token over the target's, both with a KV cache, timed
  by the same runner that decodes (`tcsd_utils.runners.as_runner`).
- Leviathan et al.'s predicted speedup (their Theorem 3.8 with Eq. 1):
  ``(1 - alpha^(k+1)) / ((1 - alpha) (k c + 1))``.
"""

from __future__ import annotations

import math

import torch

from .distill import _head_logits, _pack
from .temperature import check_tau, entropy, overlap, probs

__all__ = ["target_distributions", "compare_draft", "expected_alpha", "logit_scale", "cost_ratio", "predicted_speedup",
           "expected_tokens_per_step", "best_k", "plain_times", "measure_speedup", "warm_up"]


def _rows(data):
    rows = [(r["prompt_ids"], r["answer_ids"]) for r in data if len(r["answer_ids"])]
    if not rows:
        raise ValueError("no target samples to evaluate on")
    return rows


@torch.inference_mode()
def target_distributions(target, data, tau: float, batch_size: int = 16, pad: int = 0) -> list:
    """The target's ``p`` at ``tau`` at every answer position of ``data``, batch by batch.

    Computed once per (prompt set, tau) and reused for every draft (`compare_draft`): the
    target's forward is the expensive half of expected alpha.

    Returns:
        list of ``(rows, p, h_p)``: the batch's (prompt_ids, answer_ids) pairs, a float32
        tensor of shape ``(answer tokens, vocab)`` and the entropy of each row of ``p``.
    """
    tau = check_tau(tau)
    rows, out = _rows(data), []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids, mask, r, c, _ = _pack(chunk, pad, target.device)
        p = probs(_head_logits(target, ids, mask, r, c), tau)
        out.append((chunk, p, entropy(p)))
    return out


@torch.inference_mode()
def compare_draft(target_p: list, draft, tau: float, pad: int = 0, per_position: bool = False) -> dict:
    """Expected alpha of ``draft`` against precomputed target distributions, and why.

    Args:
        target_p: `target_distributions` at the same ``tau``.
        draft: the draft model.
        tau: decoding temperature for ``q`` (the same as ``p``'s).
        per_position: also return every position's overlap.

    Returns:
        dict with ``alpha`` (mean of ``sum min(p, q)``), ``entropy_p`` and ``entropy_q``
        (mean entropies in nats, which show both distributions flattening as tau grows),
        ``positions``, and ``overlaps`` with ``per_position``.
    """
    tau = check_tau(tau)
    values, h_p, h_q = [], [], []
    for chunk, p, entropy_p in target_p:
        ids, mask, r, c, _ = _pack(chunk, pad, draft.device)
        q = probs(_head_logits(draft, ids, mask, r, c), tau).to(p.device)
        values.append(overlap(p, q))
        h_p.append(entropy_p)
        h_q.append(entropy(q))
    values = torch.cat(values)
    out = {"alpha": float(values.mean()), "entropy_p": float(torch.cat(h_p).mean()),
           "entropy_q": float(torch.cat(h_q).mean()), "positions": int(values.numel())}
    if per_position:
        out["overlaps"] = values.tolist()
    return out


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
    out = compare_draft(target_distributions(target, data, tau, batch_size, pad), draft, tau, pad,
                        per_position=per_position)
    return (out["alpha"], out["overlaps"]) if per_position else out["alpha"]


@torch.inference_mode()
def logit_scale(draft, data, batch_size: int = 16, pad: int = 0) -> dict:
    """How sharp a draft is on its own, at tau 1: the spread of its logits and its entropy.

    A draft fitted with its logits divided by ``tau_kd`` stores them shrunk by ``tau_kd``
    (the objective KL(p_tau || q_tau) did that); decoded at another tau it is then far too
    flat or too sharp. Notebook 02 shows this per draft.

    Args:
        draft: the draft model.
        data: rows with ``prompt_ids`` and ``answer_ids`` (held-out target samples).

    Returns:
        dict with ``logit_std`` (standard deviation over the tokens the draft can propose,
        mean over answer positions) and ``entropy_q`` (mean entropy of q at tau 1, nats).
    """
    rows, std, h = _rows(data), [], []
    for start in range(0, len(rows), batch_size):
        ids, mask, r, c, _ = _pack(rows[start:start + batch_size], pad, draft.device)
        logits = _head_logits(draft, ids, mask, r, c, compact=True).float()  # (n, kept ids)
        std.append(logits.std(-1))
        h.append(entropy(probs(logits, 1.0)))
    return {"logit_std": float(torch.cat(std).mean()), "entropy_q": float(torch.cat(h).mean())}


@torch.inference_mode()
def _forward_time(model, prompt_len: int, n_calls: int, width: int = 1, fast: bool = True) -> float:
    """Seconds per forward over ``width`` new tokens after a ``prompt_len``-token cache (the
    cache is rolled back after each, so every call sees the same length)."""
    from .runners import as_runner
    from .speculative import Clock

    runner = as_runner(model, fast)
    runner.start([0] * prompt_len)
    runner.extend(torch.zeros(prompt_len, dtype=torch.long, device=runner.device))
    ids = torch.zeros(width, dtype=torch.long, device=runner.device)
    clock = Clock(runner.device)
    for i in range(3 + n_calls):  # three warm-up calls
        if i == 3:
            t0 = clock()
        runner.extend(ids)
        runner.rollback(prompt_len)
    return (clock() - t0) / n_calls


def _median_time(model, repeats: int, **kw) -> float:
    return sorted(_forward_time(model, **kw) for _ in range(repeats))[repeats // 2]


def cost_ratio(target, draft, prompt_len: int = 64, n_tokens: int = 32, repeats: int = 3,
               fast: bool = True) -> dict:
    """Measure ``c`` = draft time per token / target time per token (KV cache, batch 1), with
    the runner the decoders use (``fast=False``: transformers' forward, `runners.as_runner`).

    Returns:
        dict with ``c``, ``target_ms`` and ``draft_ms`` (medians over ``repeats``).
    """
    kw = dict(prompt_len=prompt_len, n_calls=n_tokens, fast=fast)
    t, d = _median_time(target, repeats, **kw), _median_time(draft, repeats, **kw)
    return {"c": d / t, "target_ms": 1000 * t, "draft_ms": 1000 * d}


def verify_cost(target, k: int, prompt_len: int = 64, n_calls: int = 16, repeats: int = 3,
                fast: bool = True) -> float:
    """The cost of a verification step (one target forward over k + 1 new tokens) as a
    multiple of a one-token forward. Leviathan et al.'s prediction takes it as 1, as on a GPU
    where both are bound by reading the weights; a CPU's kernels for a few rows can be slower
    than its matrix-vector kernel for one (`runners._linear`)."""
    kw = dict(prompt_len=prompt_len, n_calls=n_calls, fast=fast)
    return _median_time(target, repeats, width=k + 1, **kw) / _median_time(target, repeats, **kw)


def expected_tokens_per_step(alpha: float, k: int) -> float:
    """Tokens per target forward, ``(1 - alpha^(k+1)) / (1 - alpha)`` (Leviathan Eq. 1)."""
    if alpha >= 1.0:
        return float(k + 1)
    return (1 - alpha ** (k + 1)) / (1 - alpha)


def predicted_speedup(alpha: float, c: float, k: int, verify: float = 1.0) -> float:
    """Leviathan et al.'s expected wall-time improvement, ``(1 - a^(k+1)) / ((1 - a)(k c + 1))``.

    ``verify`` (default 1, Leviathan's assumption) is the cost of the target's forward over
    k + 1 tokens in units of a one-token forward; with the measured `verify_cost` the formula
    is the bound this machine allows: ``(1 - a^(k+1)) / ((1 - a)(k c + verify))``."""
    return expected_tokens_per_step(alpha, k) / (k * c + verify)


def best_k(alpha: float, c: float, k_max: int = 8) -> int:
    """The draft length that maximises `predicted_speedup` for a measured alpha and c.

    Leviathan et al. 2023, Sec. 3.4: the optimal k grows with alpha and shrinks with c. At
    the alphas of the embedded pair (about 0.1-0.3, c about 0.07) it is 1.
    """
    if not 0 <= alpha <= 1 or c < 0:
        raise ValueError(f"alpha must lie in [0, 1] and c be >= 0, got alpha={alpha}, c={c}")
    return max(range(1, k_max + 1), key=lambda k: predicted_speedup(alpha, c, k))


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def plain_times(target, prompts: list, tau: float, max_new_tokens: int, seed: int = 0) -> list[float]:
    """Seconds of plain target decoding for each prompt (exactly ``max_new_tokens`` each)."""
    from .speculative import autoregressive_generate

    return [autoregressive_generate(target, p, max_new_tokens, tau=tau, seed=seed + i, eos_token_id=[])
            .stats.time_total for i, p in enumerate(prompts)]


def measure_speedup(target, draft, prompts: list, tau: float, k: int, max_new_tokens: int, plain: list,
                    seed: int = 0) -> dict:
    """Empirical alpha and wall-time speedup gamma of real speculative runs.

    Each prompt is decoded by `speculative_generate` with the same seed and length as its
    plain run in ``plain`` (`plain_times`); no early stop at EOS, so every run makes exactly
    ``max_new_tokens`` tokens. Call after a warm-up (`warm_up`).

    Returns:
        dict with ``gamma`` (median over prompts of plain time / speculative time),
        ``gamma_min``, ``gamma_max``, ``alpha_empirical`` (accepted / tested draft tokens,
        pooled: Leviathan's alpha), ``alpha_drafted`` (accepted / drafted), ``tested``,
        ``tokens_per_step``, ``spec_ms_per_token`` and ``plain_ms_per_token``.
    """
    from .speculative import speculative_generate

    if len(plain) != len(prompts):
        raise ValueError(f"{len(plain)} plain timings for {len(prompts)} prompts")
    ratios, spec_time, acc, rej, drafted, steps = [], 0.0, 0, 0, 0, 0
    for i, (p, t_plain) in enumerate(zip(prompts, plain)):
        st = speculative_generate(target, draft, p, max_new_tokens, k=k, tau=tau, seed=seed + i,
                                  eos_token_id=[]).stats
        ratios.append(t_plain / st.time_total)
        spec_time += st.time_total
        acc, rej, drafted, steps = acc + st.accepted, rej + st.rejections, drafted + st.drafted, steps + st.steps
    n_tokens = max_new_tokens * len(prompts)
    return {"gamma": _median(ratios), "gamma_min": min(ratios), "gamma_max": max(ratios),
            "alpha_empirical": acc / (acc + rej) if acc + rej else math.nan,
            "alpha_drafted": acc / drafted if drafted else math.nan, "tested": acc + rej,
            "tokens_per_step": n_tokens / steps, "spec_ms_per_token": 1000 * spec_time / n_tokens,
            "plain_ms_per_token": 1000 * sum(plain) / n_tokens}


def warm_up(target, draft, k: int = 1) -> None:
    """One short speculative run, so that first-call costs stay out of the timings."""
    from .speculative import speculative_generate

    speculative_generate(target, draft, [1, 2, 3, 4], 4, k=k, tau=1.0, seed=0, eos_token_id=[])
