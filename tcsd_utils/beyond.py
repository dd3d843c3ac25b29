"""Measurements beyond the paper (notebook 06): its open questions, and a draft temperature.

Ouyang et al. 2024 (arXiv 2410.10141) end with open questions; this module measures three
of them on the study's pair, and one knob the paper keeps fixed:

- `draft_tau_sweep`: the draft's own temperature tau_q apart from the target's tau.
  Speculative sampling is exact for any q (Leviathan et al. 2023, arXiv 2211.17192,
  Theorem 3.5), so tau_q is free; expected alpha is ``sum min(p_tau, q_tau_q)``
  (`evaluate.compare_draft` with ``draft_tau``) and Leviathan's predicted speedup follows.
- `step_costs` and `slowdown_parts` (open question 1, "why is high temperature slow?"):
  the time of a verification step, of a draft token and of the sampling criterion alone
  (`speculative.DecodeStats.time_verify`) against tau, beside the acceptance rate; the
  slowdown of speculative decoding split into the part from the cost of a step and the part
  from the tokens a step commits.
- `token_table`, `acceptance_by_bin` (open question 2, "which tokens are hard?"): every
  held-out position's overlap beside the length in characters of the target's token there
  and its id (a byte-pair tokenizer numbers tokens in merge order, so the id ranks their
  frequency); correlations with intervals come from `stats.correlation`.
- `schedule_runs`: a temperature that changes within one generation
  (`temperature.Anneal`), decoded for real with several drafts (`evaluate.measure_speedup`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .evaluate import compare_draft, measure_speedup, warm_up
from .leviathan import predicted_speedup
from .speculative import autoregressive_generate, speculative_generate
from .stats import indices, interval, ratio_replicates, wilson
from .timing import timing_threads

__all__ = ["draft_tau_sweep", "draft_tau_gain", "step_costs", "slowdown_parts", "token_table",
           "acceptance_by_bin", "schedule_runs"]


def draft_tau_sweep(target_p: list, draft, tau: float, draft_taus, c: float, k: int, pad: int = 0) -> list[dict]:
    """Expected alpha and Leviathan's predicted speedup at a fixed target tau, one row per
    draft temperature tau_q.

    Args:
        target_p: `evaluate.target_distributions` at ``tau``.
        draft: the draft model.
        tau: the target's decoding temperature.
        draft_taus: the draft temperatures to try (``tau`` itself is added if missing).
        c, k: the cost ratio and draft tokens per step of the predicted speedup.

    Returns:
        rows with ``tau``, ``draft_tau``, ``matched`` (tau_q == tau), ``alpha`` with
        ``alpha_lo``/``alpha_hi`` (bootstrap over prompts), ``alpha_prompts`` and
        ``positions_prompts`` (for paired differences), ``entropy_q`` and
        ``gamma_predicted`` with ``gamma_predicted_lo``/``_hi`` (the formula is monotone
        in alpha, so alpha's interval maps onto it).
    """
    rows = []
    for tq in sorted(set(map(float, draft_taus)) | {float(tau)}):
        out = compare_draft(target_p, draft, tau, pad=pad, draft_tau=tq)
        rows.append({"tau": float(tau), "draft_tau": tq, "matched": tq == float(tau),
                     "alpha": out["alpha"], "alpha_lo": out["alpha_lo"], "alpha_hi": out["alpha_hi"],
                     "alpha_prompts": out["alpha_prompts"], "positions_prompts": out["positions_prompts"],
                     "entropy_q": out["entropy_q"],
                     **{f"gamma_predicted{end}": predicted_speedup(out[f"alpha{end}"], c, k)
                        for end in ("", "_lo", "_hi")}})
    return rows


def draft_tau_gain(rows: list[dict], seed: int = 0) -> dict:
    """The best draft temperature of one target tau against tau_q = tau, paired by prompt.

    Args:
        rows: `draft_tau_sweep` rows of one target tau.

    Returns:
        dict with ``tau``, ``best_draft_tau``, ``alpha_best``, ``alpha_matched`` and
        ``gain`` (best minus matched expected alpha) with ``gain_lo``/``gain_hi``: a
        bootstrap over the same resampled prompts for both (the best is picked on the
        sample, so the interval flatters it a little).
    """
    matched = next(r for r in rows if r["matched"])
    best = max(rows, key=lambda r: r["alpha"])
    idx = indices(len(matched["positions_prompts"]), seed=seed)
    diff = (ratio_replicates(best["alpha_prompts"], best["positions_prompts"], idx)
            - ratio_replicates(matched["alpha_prompts"], matched["positions_prompts"], idx))
    gain, lo, hi = interval(diff)
    return {"tau": matched["tau"], "best_draft_tau": best["draft_tau"], "alpha_best": best["alpha"],
            "alpha_matched": matched["alpha"], "gain": gain, "gain_lo": lo, "gain_hi": hi}


def step_costs(target, draft, prompts: list, taus, k: int, max_new_tokens: int, seed: int = 0) -> list[dict]:
    """Where a speculative run's time goes at each tau, beside its acceptance rate.

    Every prompt is decoded once per tau by `speculative.speculative_generate` (no early
    stop at EOS) and once by plain decoding, after one warm-up; times come from the
    decoders' own clock (`timing.Clock`, through `DecodeStats`).

    Returns:
        one row per tau: ``ms_per_step`` (the whole step: drafting, the target's forward
        over k + 1 tokens and the sampling criterion), ``ms_target_per_step`` (the forward
        and the criterion), ``ms_verify_per_step`` (the criterion alone: acceptance test,
        residual and draw), ``ms_per_draft_token``, ``tokens_per_step``, ``ms_per_token``
        (speculative), ``plain_ms_per_token``, ``speedup`` (plain over speculative time),
        ``alpha`` (accepted / tested draft tokens) with its Wilson ``alpha_lo``/``alpha_hi``,
        ``steps`` and ``tested``.
    """
    if not prompts:
        raise ValueError("step_costs needs at least one prompt")
    with timing_threads():  # as the study times every gamma
        warm_up(target, draft, k)
        rows = []
        for tau in taus:
            steps = drafted = accepted = rejections = tokens = 0
            t_total = t_target = t_draft = t_verify = t_plain = 0.0
            for i, prompt in enumerate(prompts):
                st = speculative_generate(target, draft, prompt, max_new_tokens, k=k, tau=tau, seed=seed + i,
                                          eos_token_id=[]).stats
                t_plain += autoregressive_generate(target, prompt, max_new_tokens, tau=tau, seed=seed + i,
                                                   eos_token_id=[]).stats.time_total
                steps, drafted, tokens = steps + st.steps, drafted + st.drafted, tokens + st.new_tokens
                accepted, rejections = accepted + st.accepted, rejections + st.rejections
                t_total, t_target = t_total + st.time_total, t_target + st.time_target
                t_draft, t_verify = t_draft + st.time_draft, t_verify + st.time_verify
            lo, hi = wilson(accepted, accepted + rejections)
            rows.append({"tau": float(tau), "ms_per_step": 1000 * t_total / steps,
                         "ms_target_per_step": 1000 * t_target / steps, "ms_verify_per_step": 1000 * t_verify / steps,
                         "ms_per_draft_token": 1000 * t_draft / drafted if drafted else math.nan,
                         "tokens_per_step": tokens / steps, "ms_per_token": 1000 * t_total / tokens,
                         "plain_ms_per_token": 1000 * t_plain / tokens, "speedup": t_plain / t_total,
                         "alpha": accepted / (accepted + rejections) if accepted + rejections else math.nan,
                         "alpha_lo": lo, "alpha_hi": hi, "steps": steps, "tested": accepted + rejections})
    return rows


def slowdown_parts(rows: list[dict], low: float | None = None, high: float | None = None) -> dict:
    """Split the change in speculative time per token between two temperatures.

    Time per token = time per step / tokens per step, so on a log scale the change is the
    change in a step's cost minus the change in what a step commits (the acceptance's part).

    Args:
        rows: `step_costs` rows.
        low, high: the two temperatures (default: the lowest and the highest measured).

    Returns:
        dict with ``low``, ``high``, ``slowdown`` (ratio of speculative ms per token, high over
        low), ``step_cost`` (ratio of ms per step), ``acceptance`` (ratio of tokens per step,
        low over high: above 1 when fewer tokens per step make high tau slower), the
        ``verify_ms`` of a step at each end, ``step_share`` (the share of the log slowdown
        that the step's cost carries; the rest is acceptance) and ``explained_by``:
        ``"acceptance"`` or ``"per-step cost"``, whichever part is larger.
    """
    by = {r["tau"]: r for r in rows}
    low = min(by) if low is None else float(low)
    high = max(by) if high is None else float(high)
    a, b = by[low], by[high]
    step = math.log(b["ms_per_step"] / a["ms_per_step"])
    accept = math.log(a["tokens_per_step"] / b["tokens_per_step"])
    total = step + accept
    return {"low": low, "high": high, "slowdown": math.exp(total), "step_cost": math.exp(step),
            "acceptance": math.exp(accept), "verify_ms": (a["ms_verify_per_step"], b["ms_verify_per_step"]),
            "step_share": step / total if total else math.nan,
            "explained_by": "per-step cost" if abs(step) > abs(accept) else "acceptance"}


def token_table(target_p: list, draft, tau: float, tokenizer, pad: int = 0, prompt_set: str = "") -> "pd.DataFrame":  # noqa: F821
    """Every held-out answer position: the target's token there and the draft's overlap.

    Args:
        target_p: `evaluate.target_distributions` at ``tau``.
        draft: the draft model, compared at ``tau`` (`evaluate.compare_draft`, per position).
        tokenizer: decodes each token id (its text gives the length).
        prompt_set: a label for the rows.

    Returns:
        `pandas.DataFrame` with ``prompt_set``, ``prompt`` (index of the sample), ``token_id``,
        ``chars`` (characters of the decoded token, a leading space included) and
        ``overlap`` (``sum min(p, q)`` at that position: the chance a draft token there is
        accepted).
    """
    out = compare_draft(target_p, draft, tau, pad=pad, per_position=True)
    ids = [int(t) for chunk, _, _ in target_p for _, answer in chunk for t in answer]
    prompt = [i for i, n in enumerate(out["positions_prompts"]) for _ in range(n)]
    if len(ids) != len(out["overlaps"]):
        raise AssertionError(f"{len(ids)} answer tokens but {len(out['overlaps'])} overlaps")
    text = {t: tokenizer.decode([t]) for t in set(ids)}
    return pd.DataFrame({"prompt_set": prompt_set, "prompt": prompt, "token_id": ids,
                         "chars": [len(text[t]) for t in ids], "overlap": out["overlaps"]})


def acceptance_by_bin(table, feature: str, edges, seed: int = 0) -> "pd.DataFrame":  # noqa: F821
    """Mean overlap of the positions whose ``feature`` falls in each bin, per prompt set.

    Args:
        table: `token_table` rows (one or several prompt sets).
        feature: ``"chars"`` or ``"token_id"``.
        edges: bin edges, increasing; bin i holds ``edges[i] <= value < edges[i + 1]``.

    Returns:
        `pandas.DataFrame` with ``prompt_set``, ``bin`` (a label), ``x`` (the mean feature in
        the bin), ``alpha`` (mean overlap), ``alpha_lo``/``alpha_hi`` (bootstrap over prompts)
        and ``positions``; empty bins are left out.
    """
    edges = list(edges)
    rows = []
    for name, g in table.groupby("prompt_set", sort=False):
        prompts = sorted(g["prompt"].unique())
        idx = indices(len(prompts), seed=seed)
        b = np.digitize(g[feature].to_numpy(), edges) - 1
        for i in range(len(edges) - 1):
            inside = g[b == i]
            if not len(inside):
                continue
            per = inside.groupby("prompt")["overlap"].agg(["mean", "size"]).reindex(prompts, fill_value=0)
            with np.errstate(invalid="ignore"):
                alpha, lo, hi = interval(ratio_replicates(per["mean"], per["size"], idx))
            label = f"{edges[i]:g}-{edges[i + 1] - 1:g}" if feature == "chars" else f"{edges[i]:g}-{edges[i + 1]:g}"
            rows.append({"prompt_set": name, "bin": label, "x": float(inside[feature].mean()), "alpha": alpha,
                         "alpha_lo": lo, "alpha_hi": hi, "positions": len(inside)})
    return pd.DataFrame(rows)


def schedule_runs(target, drafts: dict, prompts: list, tau, k: int, max_new_tokens: int, repeats: int = 1,
                  seed: int = 0) -> list[dict]:
    """Real runs of each draft under one temperature (a number or a schedule such as
    `temperature.Anneal`), timed as one block against plain decoding under the same one
    (`evaluate.measure_speedup`).

    Returns:
        one row per draft: ``draft``, ``alpha`` (accepted / tested) with its Wilson
        ``alpha_lo``/``alpha_hi``, ``tested``, ``tokens_per_step`` and ``gamma_raw`` (plain
        over speculative time) with its t interval ``gamma_raw_lo``/``gamma_raw_hi``.
    """
    rows = []
    with timing_threads():
        for draft in drafts.values():
            warm_up(target, draft, k)
        timed = measure_speedup(target, drafts, prompts, tau, k, max_new_tokens, repeats, seed)  # one block
    for name, m in timed.items():
        rows.append({"draft": name, "alpha": m["alpha_empirical"], "alpha_lo": m["alpha_empirical_lo"],
                     "alpha_hi": m["alpha_empirical_hi"], "tested": m["tested"],
                     "tokens_per_step": m["tokens_per_step"],
                     **{f"gamma_raw{end}": m[f"gamma_raw{end}"] for end in ("", "_lo", "_hi")}})
    return rows
