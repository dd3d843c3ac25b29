"""Measuring a draft against its target: expected alpha, c, and timed speculative runs.

- Expected alpha (Leviathan et al. 2023, arXiv 2211.17192, Definition 3.1): the mean over
  positions of target samples at ``tau`` of ``sum_x min(p(x), q(x))``, computed in one
  batched forward of each model, no decoding loop. Ouyang et al. 2024 (arXiv 2410.10141)
  report it as alpha alongside the wall-time speedup gamma.
- ``c``: the draft's forward time per token over the target's, both with a KV cache, timed
  by the same runner that decodes (`tcsd_utils.runners.as_runner`) and the same clock
  (`tcsd_utils.timing.Clock`); `verify_cost`, a verification step's cost.
- `measure_gamma`: real runs, each speculative run bracketed by plain runs of the same
  prompt, seed and length; the drafts at one tau share the plain runs (one timing block).
  Gamma's estimate and interval from them: `tcsd_utils.rules.steady_gamma`.
- `warm_up`: first-call costs kept out of the timings.

What alpha is worth in theory (Leviathan's equations) lives in `tcsd_utils.leviathan`. The
study times everything on one thread fewer than the cores (`timing.timing_threads`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .batching import head_logits, pack
from .runners import as_runner
from .speculative import autoregressive_generate, speculative_generate
from .stats import indices, interval, mean_interval, ratio_replicates, wilson
from .temperature import check_tau, entropy, overlap, probs
from .timing import Clock

__all__ = ["target_distributions", "compare_draft", "expected_alpha", "logit_scale", "cost_ratio", "verify_cost",
           "measure_gamma", "warm_up", "describe_temperature_effect"]


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


@torch.inference_mode()
def _forward_time(model, prompt_len: int, n_calls: int, width: int = 1, fast: bool = True) -> float:
    """Seconds per forward over ``width`` new tokens after a ``prompt_len``-token cache (the
    cache is rolled back after each, so every call sees the same length)."""

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
    than its matrix-vector kernel for one (`runners.linear`). Each repeat times one-token
    forwards, then k + 1 tokens, then one token again, and divides by the mean of the two that
    bracket it, so a drift of the machine's speed cancels (as `measure_gamma` brackets its
    runs); the median over ``repeats``. (Before, every wide forward was timed, then every
    one-token forward, and a drift between the two blocks entered the ratio.)"""
    kw = dict(prompt_len=prompt_len, n_calls=n_calls, fast=fast)
    ratios = []
    for _ in range(repeats):
        before = _forward_time(target, **kw)
        wide = _forward_time(target, width=k + 1, **kw)
        ratios.append(wide / ((before + _forward_time(target, **kw)) / 2))
    return sorted(ratios)[repeats // 2]


def _log_plain_at(before: tuple, after: tuple, t: float) -> float:
    """The log time per token of plain decoding at clock time ``t``, interpolated in time
    between the plain runs ``before`` and ``after`` (each ``(midpoint, log time per token)``)
    that bracket it: a linear drift of the machine's speed cancels."""
    (t0, y0), (t1, y1) = before, after
    w = min(max((t - t0) / (t1 - t0), 0.0), 1.0) if t1 > t0 else 0.5
    return y0 + w * (y1 - y0)


def measure_gamma(target, draft, prompts: list, tau, k: int, max_new_tokens: int, repeats: int = 1,
                    seed: int = 0) -> dict:
    """Empirical alpha and wall-time speedup gamma of real runs, speculative against plain.

    ``draft`` is one draft, or a dict ``{name: draft}`` of drafts of one shape timed as one
    block. Every prompt is decoded ``repeats`` times, each time with its own seed: first by
    `autoregressive_generate`, then by `speculative_generate` with every draft (their order
    rotating from prompt to prompt), then by `autoregressive_generate` again, all with the
    same seed and length. Each speculative run is compared with the plain decoder's time per
    token interpolated in time between the two plain runs that bracket it
    (`_log_plain_at`), so a drift of the machine's speed cancels, and one pair of plain runs
    serves every draft: with 11 drafts a block costs 13 runs per prompt where pairs cost 22.
    The drafts of one block then share their plain runs' noise: `Study.results` separates it
    from each run's own (`stats.interaction_sd`), and report.md's replicates share it between
    the cells of a block (`steady_gamma`'s ``shared_sd``). Each run's ``plain_gap_runs`` (log
    plain time per token before minus after) records the drift across a bracket. No early stop
    at EOS: every run makes exactly ``max_new_tokens`` tokens. Call after a warm-up
    (`warm_up`).

    Returns:
        for one draft, one dict (for a dict of drafts, ``{name: dict}``) with ``gamma_raw``
        (geometric mean over runs of plain time / speculative time) and its 95% t interval
        ``gamma_raw_lo``, ``gamma_raw_hi``; ``log_ratio_runs`` (each run's log time ratio)
        and ``log_step_ratio_runs`` (each run's log of plain time per token over
        speculative time per step: the clock's part, for `steady_gamma`); ``plain_gap_runs``;
        ``alpha_empirical`` (accepted / tested draft tokens, pooled: Leviathan's alpha) with
        its Wilson interval ``alpha_empirical_lo``, ``alpha_empirical_hi``;
        ``alpha_drafted`` (accepted / drafted), ``tested``, ``runs``, ``tokens_per_step``,
        ``spec_ms_per_token`` and ``plain_ms_per_token``.
    """

    drafts = draft if isinstance(draft, dict) else {None: draft}
    if repeats < 1 or not prompts or not drafts:
        raise ValueError(f"need at least one prompt, one repeat and one draft, got {len(prompts)} prompts x "
                         f"{repeats} repeats and {len(drafts)} drafts")
    names = list(drafts)
    runs = {name: {"log_ratio": [], "log_step": [], "plain": [], "spec": 0.0, "acc": 0, "rej": 0, "drafted": 0,
                   "steps": 0} for name in names}
    gaps = []

    def timed(fn):
        start = time.perf_counter()
        stats = fn().stats
        return (start + time.perf_counter()) / 2, stats

    for r in range(repeats):
        for i, p in enumerate(prompts):
            run_seed = seed + i + 1000 * r  # a repeat's seeds stay clear of the prompts' (fewer than 1000)
            shift = (r * len(prompts) + i) % len(names)

            def plain():
                t, st = timed(lambda: autoregressive_generate(target, p, max_new_tokens, tau=tau, seed=run_seed,
                                                              eos_token_id=[]))
                return t, math.log(st.time_total / max_new_tokens)

            before = plain()
            spec = {name: timed(lambda: speculative_generate(target, drafts[name], p, max_new_tokens, k=k, tau=tau,
                                                             seed=run_seed, eos_token_id=[]))
                    for name in names[shift:] + names[:shift]}
            after = plain()
            gaps.append(before[1] - after[1])
            for name, (t, st) in spec.items():
                log_plain, acc = _log_plain_at(before, after, t), runs[name]
                acc["log_ratio"].append(log_plain + math.log(max_new_tokens) - math.log(st.time_total))
                acc["log_step"].append(log_plain - math.log(st.time_total / st.steps))
                acc["plain"].append(math.exp(log_plain))
                acc["spec"] += st.time_total
                for key, value in (("acc", st.accepted), ("rej", st.rejections), ("drafted", st.drafted),
                                   ("steps", st.steps)):
                    acc[key] += value
    out = {}
    for name, acc in runs.items():
        mean, lo, hi = mean_interval(acc["log_ratio"])
        tested = acc["acc"] + acc["rej"]
        a_lo, a_hi = wilson(acc["acc"], tested)
        n_tokens = max_new_tokens * len(acc["log_ratio"])
        out[name] = {"gamma_raw": math.exp(mean), "gamma_raw_lo": math.exp(lo), "gamma_raw_hi": math.exp(hi),
                     "log_ratio_runs": acc["log_ratio"], "log_step_ratio_runs": acc["log_step"],
                     "plain_gap_runs": list(gaps), "runs": len(acc["log_ratio"]),
                     "alpha_empirical": acc["acc"] / tested if tested else math.nan,
                     "alpha_empirical_lo": a_lo, "alpha_empirical_hi": a_hi,
                     "alpha_drafted": acc["acc"] / acc["drafted"] if acc["drafted"] else math.nan, "tested": tested,
                     "tokens_per_step": n_tokens / acc["steps"], "spec_ms_per_token": 1000 * acc["spec"] / n_tokens,
                     "plain_ms_per_token": 1000 * float(np.mean(acc["plain"]))}
    return out if isinstance(draft, dict) else out[None]


def warm_up(target, draft, k: int = 1) -> None:
    """One short speculative run, so that first-call costs stay out of the timings.

    Its prompt is any four valid token ids and it decodes 4 tokens: enough to build both
    runners' caches, choose their kernels and run a verification step, short enough to
    cost well under a second."""

    speculative_generate(target, draft, [1, 2, 3, 4], 4, k=k, tau=1.0, seed=0, eos_token_id=[])


def describe_temperature_effect(n_prompts: int, taus, entropy_p, top10_mass, alpha, draft_name: str,
                                demo_tau: float, k: int, spec, plain) -> str:
    """Notebook 01's finding in one paragraph: how the target's entropy, its top-10 mass and
    the draft's expected alpha move from the lowest to the highest tau (with alpha's peak
    when it lies inside the range), and what one speculative run did against plain decoding.

    Args:
        n_prompts: prompts the curves average over.
        taus: the temperatures, ascending; ``entropy_p``, ``top10_mass`` and ``alpha`` hold
            one mean per tau.
        draft_name: the draft's name.
        demo_tau, k: the demo run's temperature and draft length.
        spec, plain: the demo's `speculative.DecodeStats`, speculative and plain.
    """
    h, m, a = list(map(float, entropy_p)), list(map(float, top10_mass)), list(map(float, alpha))
    best = taus[max(range(len(a)), key=a.__getitem__)]
    peak = f" (peak {max(a):.3f} at τ = {best:g})" if best not in (taus[0], taus[-1]) else ""
    ratio = spec.tokens_per_s / plain.tokens_per_s
    return (f"On {n_prompts} instruction prompts, raising τ from {taus[0]:g} to {taus[-1]:g} raised the target's "
            f"entropy H(p) from {h[0]:.2f} to {h[-1]:.2f} nats and lowered its top-10 mass from {m[0]:.2f} to "
            f"{m[-1]:.2f}. The {draft_name}'s expected acceptance α = Σ min(p, q) {'rose' if a[-1] > a[0] else 'fell'} "
            f"from {a[0]:.3f} at τ = {taus[0]:g} to {a[-1]:.3f} at τ = {taus[-1]:g}{peak}. In the demo at "
            f"τ = {demo_tau:g} with k = {k}, it had {spec.accepted} of {spec.drafted} draft tokens accepted "
            f"(α = {spec.alpha_drafted:.2f}), and speculative decoding ran at {spec.tokens_per_s:.1f} tokens/s "
            f"against {plain.tokens_per_s:.1f} for the target alone ({ratio:.2f}x).")
