"""Measuring a draft against its target: expected alpha, and the theory that turns it into a speedup.

- Expected alpha (Leviathan et al. 2023, arXiv 2211.17192, Definition 3.1): the mean over
  positions of target samples at ``tau`` of ``sum_x min(p(x), q(x))``, computed in one
  batched forward of each model, no decoding loop. Ouyang et al. 2024 (arXiv 2410.10141)
  report it as alpha alongside the wall-time speedup gamma.
- Leviathan et al.'s predicted speedup (their Theorem 3.8 with Eq. 1):
  ``(1 - alpha^(k+1)) / ((1 - alpha) (k c + 1))``, and the best k by it.

What is timed (c, a verification step's cost, the speculative runs behind empirical alpha
and gamma) is `tcsd_utils.timing`'s job; its names are importable from here too.
"""

from __future__ import annotations

import torch

from .batching import head_logits, pack
from .stats import indices, interval, ratio_replicates
from .temperature import check_tau, entropy, overlap, probs
# re-exported: notebook 02 and the benchmarks import cost_ratio from here
from .timing import cost_ratio, measure_speedup, steady_gamma, verify_cost, warm_up  # noqa: F401

__all__ = ["target_distributions", "compare_draft", "expected_alpha", "logit_scale", "predicted_speedup",
           "expected_tokens_per_step", "best_k"]


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
        ids, mask, r, c, _ = pack(chunk, pad, target.device)
        p = probs(head_logits(target, ids, mask, r, c), tau)
        out.append((chunk, p, entropy(p)))
    return out


@torch.inference_mode()
def compare_draft(target_p: list, draft, tau: float, pad: int = 0, per_position: bool = False,
                  draft_tau: float | None = None) -> dict:
    """Expected alpha of ``draft`` against precomputed target distributions, and why.

    Args:
        target_p: `target_distributions` at the same ``tau``.
        draft: the draft model.
        tau: decoding temperature of ``p`` (that of ``target_p``); ``q``'s too by default.
        per_position: also return every position's overlap.
        draft_tau: the draft's own temperature ``tau_q``, apart from the target's: the
            overlap is then ``sum min(p_tau, q_tau_q)``, the acceptance rate of a draft that
            samples at ``tau_q`` (speculative sampling stays exact for any q). Default ``tau``.

    Returns:
        dict with ``alpha`` (mean of ``sum min(p, q)`` over positions), ``alpha_lo`` and
        ``alpha_hi`` (its 95% interval, a bootstrap over prompts: `tcsd_utils.stats`),
        ``alpha_prompts`` and ``positions_prompts`` (each prompt's mean overlap and its
        number of positions, for paired comparisons), ``entropy_p`` and ``entropy_q`` (mean
        entropies in nats, which show both distributions flattening as tau grows),
        ``positions``, and ``overlaps`` with ``per_position``.
    """
    tau = check_tau(tau)
    draft_tau = tau if draft_tau is None else check_tau(draft_tau, "draft_tau")
    values, h_p, h_q, lens = [], [], [], []
    for chunk, p, entropy_p in target_p:
        ids, mask, r, c, _ = pack(chunk, pad, draft.device)
        q = probs(head_logits(draft, ids, mask, r, c), draft_tau).to(p.device)
        values.append(overlap(p, q))
        h_p.append(entropy_p)
        h_q.append(entropy(q))
        lens += [len(a) for _, a in chunk]
    values = torch.cat(values)
    per_prompt = [float(v.mean()) for v in torch.split(values, lens)]
    _, lo, hi = interval(ratio_replicates(per_prompt, lens, indices(len(lens))))
    out = {"alpha": float(values.mean()), "alpha_lo": lo, "alpha_hi": hi,
           "alpha_prompts": per_prompt, "positions_prompts": lens,
           "entropy_p": float(torch.cat(h_p).mean()), "entropy_q": float(torch.cat(h_q).mean()),
           "positions": int(values.numel())}
    if per_position:
        out["overlaps"] = values.tolist()
    return out


def expected_alpha(target, draft, data, tau: float, batch_size: int = 16, pad: int = 0,
                   per_position: bool = False, draft_tau: float | None = None):
    """Mean acceptance probability of the draft on target samples at ``tau``.

    Args:
        target, draft: the two models (same vocabulary).
        data: rows with ``prompt_ids`` and ``answer_ids``: target continuations sampled at
            ``tau`` (`tcsd_utils.teacher.teacher_data` on held-out prompts).
        tau: decoding temperature for both ``p`` and ``q`` (0 = greedy: overlap is 1 where
            the argmaxes agree, else 0).
        batch_size: sequences per forward.
        pad: padding id (masked out).
        per_position: also return the overlap at every answer position.
        draft_tau: the draft's own temperature, apart from ``tau`` (`compare_draft`).

    Returns:
        ``alpha`` (float), or ``(alpha, overlaps)`` with ``per_position``.
    """
    out = compare_draft(target_distributions(target, data, tau, batch_size, pad), draft, tau, pad,
                        per_position=per_position, draft_tau=draft_tau)
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
        ids, mask, r, c, _ = pack(rows[start:start + batch_size], pad, draft.device)
        logits = head_logits(draft, ids, mask, r, c, compact=True).float()  # (n, kept ids)
        std.append(logits.std(-1))
        h.append(entropy(probs(logits, 1.0)))
    return {"logit_std": float(torch.cat(std).mean()), "entropy_q": float(torch.cat(h).mean())}


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
