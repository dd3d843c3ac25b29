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
  (`temperature.Anneal`), decoded for real with several drafts (`evaluate.measure_gamma`).

Each measurement has its sentence, the one notebook 06 prints and gathers at its end:
`describe_draft_tau_gain`, `describe_slowdown`, `describe_hard_tokens` and
`describe_schedule` (tests/test_beyond.py checks their numbers and branch words).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .evaluate import compare_draft, measure_gamma, warm_up
from .leviathan import predicted_gamma
from .speculative import autoregressive_generate, speculative_generate
from .stats import indices, interval, ratio_replicates, wilson
from .timing import timing_threads

__all__ = ["draft_tau_sweep", "draft_tau_gain", "describe_draft_tau_gain", "step_costs", "slowdown_parts",
           "describe_slowdown", "token_table", "acceptance_by_bin", "describe_hard_tokens", "schedule_runs",
           "describe_schedule"]


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
                     **{f"gamma_predicted{end}": predicted_gamma(out[f"alpha{end}"], c, k)
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


def _resolved(lo: float, hi: float) -> str:
    return "resolved" if lo > 0 or hi < 0 else "not resolved (the interval holds 0)"


def describe_draft_tau_gain(gains) -> str:
    """One sentence on the best draft temperature at each target tau (notebook 06, section 1).

    Args:
        gains: `draft_tau_gain` results, one per target tau (a list of dicts or a
            `pandas.DataFrame` of them).

    Returns:
        per target tau, where the best tau_q lies (tau_q = tau itself, or a hotter or colder
        draft), its expected alpha against the matched one and the gain with its interval,
        ``resolved`` when the interval excludes 0; the parts joined by ``"; "``, ending in a
        full stop.
    """
    parts = []
    for g in pd.DataFrame(gains).to_dict("records"):
        tau, best = g["tau"], g["best_draft_tau"]
        where = ("τ_q = τ itself" if best == tau
                 else f"a {'hotter' if best > tau else 'colder'} draft, τ_q = {best:g}")
        parts.append(f"at τ = {tau:g} the best is {where} (expected α {g['alpha_best']:.3f} against "
                     f"{g['alpha_matched']:.3f} at τ_q = τ: {g['gain']:+.3f} [{g['gain_lo']:+.3f}, "
                     f"{g['gain_hi']:+.3f}], {_resolved(g['gain_lo'], g['gain_hi'])})")
    return "; ".join(parts) + "."


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
        (speculative), ``plain_ms_per_token``, ``gamma`` (plain over speculative time),
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
                         "plain_ms_per_token": 1000 * t_plain / tokens, "gamma": t_plain / t_total,
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


def describe_slowdown(rows: list[dict], parts: dict | None = None) -> str:
    """One sentence on why speculative decoding's time per token changes from a low tau to
    a high one (notebook 06, section 2).

    Args:
        rows: `step_costs` rows.
        parts: `slowdown_parts` of ``rows`` (default: computed here, lowest against highest tau).

    Returns:
        the change in time per token (``slower`` or ``faster``) with the speedup at both
        ends, the step's cost (the sampling criterion's ms beside the step's) and the tokens
        a step commits (alpha at both ends), and which part explains the change: for the
        acceptance, that the step's cost does not; for the per-step cost, how many of the
        step's extra ms the sampling criterion makes.
    """
    sd = slowdown_parts(rows) if parts is None else parts
    lo_row, hi_row = (next(r for r in rows if r["tau"] == t) for t in (sd["low"], sd["high"]))
    if sd["explained_by"] == "acceptance":
        ending = ", not by the cost of a step (the sampling criterion included)."
    else:
        ending = (f"; of the step's change of {hi_row['ms_per_step'] - lo_row['ms_per_step']:+.1f} ms the sampling "
                  f"criterion makes {sd['verify_ms'][1] - sd['verify_ms'][0]:+.2f} ms.")
    return (f"from τ = {sd['low']:g} to {sd['high']:g} speculative decoding's time per token changed "
            f"x{sd['slowdown']:.2f} ({'slower' if sd['slowdown'] > 1 else 'faster'}; speedup over plain decoding "
            f"{lo_row['gamma']:.2f} -> {hi_row['gamma']:.2f}): a step's cost changed x{sd['step_cost']:.2f} "
            f"(the sampling criterion {sd['verify_ms'][0]:.2f} -> {sd['verify_ms'][1]:.2f} ms of a "
            f"{lo_row['ms_per_step']:.1f} -> {hi_row['ms_per_step']:.1f} ms step) and the tokens a step commits "
            f"x{1 / sd['acceptance']:.2f} (α {lo_row['alpha']:.2f} -> {hi_row['alpha']:.2f}); on this pair the "
            f"change is explained mostly by {sd['explained_by']}" + ending)


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


def _more_or_less(lo: float, hi: float) -> str:
    if lo > 0:
        return "more"
    if hi < 0:
        return "less"
    return "no differently (not resolved)"


def describe_hard_tokens(corr) -> str:
    """One sentence on which tokens the draft gets accepted (notebook 06, section 3).

    Args:
        corr: correlations of the overlap, one row each with ``prompt set``, ``against``
            (``"chars"`` or ``"token_id"``), ``method`` (only ``"spearman"`` rows are read),
            ``r``, ``lo`` and ``hi`` (`stats.correlation`); a `pandas.DataFrame` or a list
            of dicts.

    Returns:
        per prompt set (in the order they first appear), whether longer tokens and rarer
        ones (higher ids) are accepted ``more``, ``less`` or ``no differently (not
        resolved)``, by whether the interval of Spearman's rho lies above 0, below it or
        holds it; the parts joined by ``"; "``, ending in a full stop.
    """
    corr = pd.DataFrame(corr)
    parts = []
    for name, g in corr[corr["method"] == "spearman"].groupby("prompt set", sort=False):
        length, rank = (g[g["against"] == f].iloc[0] for f in ("chars", "token_id"))
        parts.append(f"{name}: longer tokens are accepted {_more_or_less(length['lo'], length['hi'])} (Spearman ρ "
                     f"{length['r']:+.2f} [{length['lo']:+.2f}, {length['hi']:+.2f}]), rarer ones "
                     f"{_more_or_less(rank['lo'], rank['hi'])} (ρ against the id {rank['r']:+.2f} "
                     f"[{rank['lo']:+.2f}, {rank['hi']:+.2f}])")
    return "; ".join(parts) + "."


def schedule_runs(target, drafts: dict, prompts: list, tau, k: int, max_new_tokens: int, repeats: int = 1,
                  seed: int = 0) -> list[dict]:
    """Real runs of each draft under one temperature (a number or a schedule such as
    `temperature.Anneal`), timed as one block against plain decoding under the same one
    (`evaluate.measure_gamma`).

    Returns:
        one row per draft: ``draft``, ``alpha`` (accepted / tested) with its Wilson
        ``alpha_lo``/``alpha_hi``, ``tested``, ``tokens_per_step`` and ``gamma_raw`` (plain
        over speculative time) with its t interval ``gamma_raw_lo``/``gamma_raw_hi``.
    """
    rows = []
    with timing_threads():
        for draft in drafts.values():
            warm_up(target, draft, k)
        timed = measure_gamma(target, drafts, prompts, tau, k, max_new_tokens, repeats, seed)  # one block
    for name, m in timed.items():
        rows.append({"draft": name, "alpha": m["alpha_empirical"], "alpha_lo": m["alpha_empirical_lo"],
                     "alpha_hi": m["alpha_empirical_hi"], "tested": m["tested"],
                     "tokens_per_step": m["tokens_per_step"],
                     **{f"gamma_raw{end}": m[f"gamma_raw{end}"] for end in ("", "_lo", "_hi")}})
    return rows


def describe_schedule(rows: list[dict], schedule, pairs: dict, baseline: float) -> str:
    """One sentence on mixed-temperature drafts against single-temperature ones under a
    temperature schedule (notebook 06, section 4).

    Args:
        rows: `schedule_runs` rows.
        schedule: the temperature the runs decoded under (its ``str`` opens the sentence).
        pairs: per KD mode (``"offline"``, ``"online"``, in the order given), the names of
            its ``(fixed, mixed)`` drafts: KD at the single temperature ``baseline`` and on
            the temperature mix.
        baseline: the fixed draft's KD temperature tau_kd.

    Returns:
        per mode, the mixed draft's alpha with its interval against the fixed one's, ``apart``
        when the two intervals do not overlap (else that they are not told apart), and both
        raw speedups.
    """
    by = {r["draft"]: r for r in rows}
    parts = []
    for mode, (fixed_name, mixed_name) in pairs.items():
        fixed, mixed = by[fixed_name], by[mixed_name]
        apart = mixed["alpha_lo"] > fixed["alpha_hi"] or fixed["alpha_lo"] > mixed["alpha_hi"]
        parts.append(f"{mode} KD: mixed data α {mixed['alpha']:.2f} [{mixed['alpha_lo']:.2f}, "
                     f"{mixed['alpha_hi']:.2f}] against fixed τ_kd {baseline:g} {fixed['alpha']:.2f} "
                     f"[{fixed['alpha_lo']:.2f}, {fixed['alpha_hi']:.2f}] "
                     f"({'apart' if apart else 'the intervals overlap: not told apart'}; "
                     f"raw γ {mixed['gamma_raw']:.2f} against {fixed['gamma_raw']:.2f})")
    return f"under {schedule}: " + "; ".join(parts) + "."
