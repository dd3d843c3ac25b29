"""How a cost is timed: the cost ratio c, a verification step's cost, and the speculative
runs behind empirical alpha and the wall-time speedup gamma.

- ``c``: the draft's forward time per token over the target's, both with a KV cache, timed
  by the same runner that decodes (`tcsd_utils.runners.as_runner`) and the same clock
  (`tcsd_utils.speculative.Clock`).
- `measure_speedup`: real runs, each speculative run bracketed by plain runs of the same
  prompt, seed and length; the drafts at one tau share the plain runs (one timing block).
- `steady_gamma`: gamma with the luck of acceptance taken out, and its replicates.
- `warm_up`: first-call costs kept out of the timings.

The study times everything on one thread fewer than the cores (`kernels.timing_threads`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .stats import mean_interval, wilson

__all__ = ["cost_ratio", "verify_cost", "measure_speedup", "tokens_per_step_replicates", "steady_gamma", "warm_up"]


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
    than its matrix-vector kernel for one (`kernels.linear`)."""
    kw = dict(prompt_len=prompt_len, n_calls=n_calls, fast=fast)
    return _median_time(target, repeats, width=k + 1, **kw) / _median_time(target, repeats, **kw)


def _log_plain_at(before: tuple, after: tuple, t: float) -> float:
    """The log time per token of plain decoding at clock time ``t``, interpolated in time
    between the plain runs ``before`` and ``after`` (each ``(midpoint, log time per token)``)
    that bracket it: a linear drift of the machine's speed cancels."""
    (t0, y0), (t1, y1) = before, after
    w = min(max((t - t0) / (t1 - t0), 0.0), 1.0) if t1 > t0 else 0.5
    return y0 + w * (y1 - y0)


def measure_speedup(target, draft, prompts: list, tau, k: int, max_new_tokens: int, repeats: int = 1,
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
    from .speculative import autoregressive_generate, speculative_generate

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


def tokens_per_step_replicates(alpha, k: int) -> np.ndarray:
    """`expected_tokens_per_step` on an array of alphas."""
    a = np.clip(np.asarray(alpha, float), 0.0, 1.0)
    safe = np.where(a < 1, a, 0.5)
    return np.where(a < 1, (1 - safe ** (k + 1)) / (1 - safe), k + 1.0)


def steady_gamma(log_step_ratio_runs, alpha_replicates, k: int, seed: int = 0,
                 clock_sd: float | None = None, clock_df: int | None = None,
                 shared_sd: float = 0.0, shared_seed: int | None = None) -> np.ndarray:
    """Replicates of gamma with the luck of acceptance in a few short runs taken out.

    A speculative run's time is its number of steps times the time of a step. Of the spread
    of gamma over runs, most comes from how many tokens the draft happened to get accepted
    (binomial luck over a few dozen steps), little from the clock. This estimate keeps the
    clock's part as measured (each run's plain time per token over its speculative time per
    step, `measure_speedup`) and takes the tokens per step from expected alpha, which every
    position of the held-out samples pins down (Leviathan et al. 2023, Eq. 1; exact in
    expectation for k = 1, where tokens per step is 1 + alpha at each position). It is the
    difference estimator of survey sampling with the realised tokens per step as the
    auxiliary variable (Cochran 1977, *Sampling Techniques*, Sec. 7.7); ``gamma_raw`` is
    the plain ratio, and the report counts how often the two agree.

    The clock's part is drawn from Student's t around the runs' mean. Its spread is the
    runs' own (``len - 1`` degrees of freedom), or, given ``clock_sd`` and ``clock_df``, a
    spread pooled over every timed cell of the run (`stats.pooled_sd`; the clock's noise is
    the machine's, the same in every cell): with 4 runs a cell's own spread has 3 degrees of
    freedom, and t's quantile 3.18 instead of 1.97 widens its interval by 60%. Expected
    alpha's replicates come from resampled prompts and are shared by every cell of a prompt
    set.

    The drafts of one timing block share its plain runs (`measure_speedup`), so part of the
    clock's noise, ``shared_sd`` per run, is common to the block's cells. Given
    ``shared_seed`` (the same for every cell of a block), that part is drawn from it and the
    rest from ``seed``: the total spread is unchanged, and an effect that compares the cells
    of one block (or averages them) gets the right spread from their replicates.

    Args:
        log_step_ratio_runs: `measure_speedup`'s per-run clock ratios (logs).
        alpha_replicates: expected alpha's replicates (element 0 the estimate).
        k: draft tokens per step.
        seed: for the clock's draws.
        clock_sd, clock_df: the pooled spread of one run's log clock ratio and its degrees
            of freedom (None, nan or 0 degrees of freedom: this cell's own).
        shared_sd: the spread per run of the block's shared part (at most the total).
        shared_seed: the block's seed for that part (None: nothing is shared).

    Returns:
        replicates of gamma, element 0 the estimate; all but element 0 are nan when no
        spread is known (one run and no pooled spread).
    """
    logs = np.asarray(log_step_ratio_runs, float)
    alpha = np.asarray(alpha_replicates, float)
    clock = np.full(len(alpha), logs.mean())
    if not (clock_sd is not None and clock_df and np.isfinite(clock_sd) and np.isfinite(clock_df)):
        clock_sd, clock_df = (float(logs.std(ddof=1)), len(logs) - 1) if len(logs) > 1 else (math.nan, 0)
    if clock_df:
        se = clock_sd / math.sqrt(len(logs))
        se_shared = min(float(shared_sd or 0.0) / math.sqrt(len(logs)), se) if shared_seed is not None else 0.0
        if not np.isfinite(se_shared):
            se_shared = 0.0
        own = math.sqrt(se * se - se_shared * se_shared)
        clock[1:] += own * np.random.default_rng(seed).standard_t(clock_df, size=len(alpha) - 1)
        if se_shared > 0:
            clock[1:] += se_shared * np.random.default_rng(shared_seed).standard_t(clock_df, size=len(alpha) - 1)
    else:
        clock[1:] = np.nan
    return np.exp(np.clip(clock, -50, 50)) * tokens_per_step_replicates(alpha, k)  # t with 1 df has huge tails


def warm_up(target, draft, k: int = 1) -> None:
    """One short speculative run, so that first-call costs stay out of the timings.

    Its prompt is any four valid token ids and it decodes 4 tokens: enough to build both
    runners' caches, choose their kernels and run a verification step, short enough to
    cost well under a second."""
    from .speculative import speculative_generate

    speculative_generate(target, draft, [1, 2, 3, 4], 4, k=k, tau=1.0, seed=0, eos_token_id=[])
