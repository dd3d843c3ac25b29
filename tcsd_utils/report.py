"""The claims table: for each claim, what the paper says, what this run measured, a verdict.

Every verdict is computed from the results table (`Study.results`) by one rule per claim,
each a function below whose docstring quotes what it tests. A rule measures an effect size
with its 95% interval and decides:

- ``agree`` / ``partly`` / ``disagree`` only when the interval supports it;
- ``inconclusive at this scale`` otherwise, naming the measurement that would settle it;
- ``not measured`` when the rows a rule needs are absent.

Intervals come from replicates (`tcsd_utils.stats`): expected alpha resampled over held-out
prompts, shared by every cell of a prompt set so that differences stay paired; gamma's
clock part drawn per cell from its runs, with the spread pooled over the run's timed cells
where the table records it (`tcsd_utils.evaluate.steady_gamma`, columns ``clock_sd`` and
``clock_df``), and the part that the cells of one timing block share (their plain runs,
column ``clock_shared_sd``) drawn once per block (column ``timing_block``). A table
without those per-unit columns (a synthetic one, an old run) falls back to each cell's own
interval columns, taken as independent normals, or to no interval at all.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .stats import LEVEL, N_BOOT, indices, interval, normal_replicates, ratio_replicates

__all__ = ["PAPER", "PAPER_NUMBERS", "DRAFT_TARGETS", "INCONCLUSIVE", "NOT_MEASURED", "Estimates", "claims", "claims_table",
           "compare_runs", "draft_regime", "markdown", "write_report", "figure_lines", "REPORT_FIGURES"]

# What each rule tests. The paper's own sentences where this project has them (the F2 quote
# and the abstract); otherwise the claim as DESIGN.md states it from the paper.
PAPER = {  # Ouyang et al. 2024 (arXiv 2410.10141)
    "F1 (alpha)": "Decoding at a higher temperature lowers the acceptance rate alpha, for every draft "
                  "(the paper's explanation of the slowdown; abstract: \"the challenge of decoding at "
                  "higher temperatures\").",
    "F1 (gamma)": "Decoding at a higher temperature makes speculative decoding slower (lower wall-time "
                  "speedup gamma), for every draft.",
    "F2": "\"The diagonals ... typically yield the most accelerated decoding speeds\": KD at the decoding "
          "temperature is best (abstract: \"KD in a consistent temperature setting could be a remedy\").",
    "F3": "Online KD (token-level distributions) beats offline KD (SeqKD), most at high temperatures.",
    "F4": "Out of range (decoding tau above the KD range, out-of-domain prompts) the speedup follows "
          "a U-curve.",
    "F5": "Training data composed from several sampling temperatures raises speedup at high "
          "decoding temperatures by 12-20%.",
}
# The paper's figures this run can be set beside (DESIGN.md; the speedups are second-hand).
PAPER_NUMBERS = {
    "speedup without alignment at tau 0 / 1 / 2 (Llama-2-13B-chat + Llama-68M, A100; second-hand)":
        "2.23x / 1.72x / 1.35x",
    "expected alpha after aligned KD": "0.6-0.9",
    "speedup gain of the data-mixing recipe at high tau": "12-20%",
}
NOT_MEASURED = "not measured"
INCONCLUSIVE = "inconclusive at this scale"
# Is the draft in the paper's regime? Expected alpha of the aligned KD draft (tau_kd = tau, the
# better paradigm) the study needs; the paper's drafts reach 0.6-0.9 after KD.
DRAFT_TARGETS = {0.0: 0.60, 1.0: 0.50}
MIX_GAIN = (12.0, 20.0)  # percent, the paper's range for F5


def _listlike(v) -> bool:
    return isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0


class Estimates:
    """Replicates (element 0 the estimate) of expected alpha or gamma for rows of a results
    table, so that a rule's effect, computed with numpy on them, carries its interval.

    Args:
        table: the results table.
        n_boot: replicates per cell.
        seed: for resampled prompts and clock draws (fixed: a report is reproducible).
    """

    def __init__(self, table: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0):
        self.table, self.n_boot, self.seed = table, n_boot, seed
        self._idx: dict = {}
        self._cache: dict = {}

    def _prompt_idx(self, prompt_set: str, n: int) -> np.ndarray:
        if (prompt_set, n) not in self._idx:  # one resampling of the prompts per prompt set
            self._idx[(prompt_set, n)] = indices(n, self.n_boot, self.seed)
        return self._idx[(prompt_set, n)]

    def alpha(self, i) -> np.ndarray:
        """Expected alpha's replicates for row ``i`` (an index of the table)."""
        if ("alpha", i) not in self._cache:
            row = self.table.loc[i]
            if _listlike(row.get("alpha_prompts")):
                m, w = np.asarray(row["alpha_prompts"], float), np.asarray(row["positions_prompts"], float)
                rep = ratio_replicates(m, w, self._prompt_idx(row.get("prompt_set", ""), len(m)))
                rep[0] = row["alpha_expected"]
            else:
                rep = self._from_interval(row, "alpha_expected", i)
            self._cache[("alpha", i)] = rep
        return self._cache[("alpha", i)]

    def gamma(self, i) -> np.ndarray:
        """Gamma's replicates for row ``i``."""
        if ("gamma", i) not in self._cache:
            row = self.table.loc[i]
            if _listlike(row.get("log_step_ratio_runs")):
                from .evaluate import steady_gamma

                block = row.get("timing_block")  # the cells timed together share their plain runs' noise
                rep = steady_gamma(row["log_step_ratio_runs"], self.alpha(i), int(row["k"]),
                                   seed=self.seed + 7919 * (1 + self.table.index.get_loc(i)),
                                   clock_sd=row.get("clock_sd"), clock_df=row.get("clock_df"),  # (`Study.results`)
                                   shared_sd=row.get("clock_shared_sd", 0.0),
                                   shared_seed=self.seed + zlib.crc32(block.encode()) if isinstance(block, str) else None)
            else:
                rep = self._from_interval(row, "gamma", i)
            self._cache[("gamma", i)] = rep
        return self._cache[("gamma", i)]

    def get(self, metric: str, i) -> np.ndarray:
        return self.alpha(i) if metric == "alpha" else self.gamma(i)

    def _from_interval(self, row, column: str, i) -> np.ndarray:
        value = float(row[column])
        lo, hi = float(row.get(f"{column}_lo", math.nan)), float(row.get(f"{column}_hi", math.nan))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo = hi = value  # no interval known: the point alone
        return normal_replicates(value, lo, hi, self.n_boot, self.seed + 104729 * (1 + self.table.index.get_loc(i)))


# -- helpers of the rules -------------------------------------------------------------------
COLUMN = {"alpha": "alpha_expected", "gamma": "gamma"}
SYMBOL = {"alpha": "expected alpha", "gamma": "gamma"}
UNITS = {"alpha": "held-out prompts (n_eval_prompts)",
         "gamma": "held-out prompts (n_eval_prompts) and speed runs (spec_prompts x spec_repeats)"}
SETTLE_LIMIT = 100   # needing more than 100x the data to tell an effect from 0, call it near zero
SETTLE_MARGIN = 1.1  # 10% more data than the 1/sqrt(n) estimate, which assumes the estimate stays put


def _has(table, metric) -> bool:
    col = COLUMN[metric]
    return col in table and not table[col].isna().all()


def _fmt(point, lo, hi, digits=3, unit="") -> str:
    if not np.isfinite(lo) or lo == hi == point:
        return f"{point:+.{digits}f}{unit} (no interval)"
    return f"{point:+.{digits}f}{unit} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _settle(point, lo, hi, metric) -> str:
    """What would settle an inconclusive effect: the interval shrinks as 1/sqrt(n)."""
    half = (hi - lo) / 2
    if not np.isfinite(half) or half <= 0:
        return f"an interval: more {UNITS[metric]}"
    if abs(point) < 1e-12 or (half / abs(point)) ** 2 > SETTLE_LIMIT:  # 1e-12: a point estimate of 0
        return (f"the effect is near zero; to tell it from none would take over {SETTLE_LIMIT}x the {UNITS[metric]}, "
                f"or a stronger draft (README, the draft ablation)")
    more = math.ceil((half / abs(point)) ** 2 * SETTLE_MARGIN)
    return f"about {more}x the {UNITS[metric]} (interval half-width {half:.3g})"


def _slope(x, y) -> np.ndarray:
    """Least-squares slope of each column of ``y`` (taus x replicates) against ``x``."""
    x = np.asarray(x, float)
    xc = x - x.mean()
    return (xc[:, None] * (y - y.mean(0))).sum(0) / (xc ** 2).sum()


def _grid(table, settings, mode):
    """Rows of one mode's KD grid in domain (single-temperature drafts): {(tau_kd, tau): index}."""
    t = table[(table["mode"] == mode) & (table["mix"] == "") & table["in_domain"]
              & table["tau_kd"].isin(settings.kd_taus) & table["tau"].isin(settings.kd_taus)]
    return {(float(r.tau_kd), float(r.tau)): i for i, r in t.iterrows()}


def _signed_verdict(lo: float, hi: float, sign: int, supported: str) -> str:
    """The verdict of an effect whose sign the paper states (``sign`` +1 or -1):
    ``supported`` when its interval lies wholly on the paper's side of 0, "disagree" when
    wholly on the other side, inconclusive otherwise (a nan interval included)."""
    lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
    return supported if lo > 0 else "disagree" if hi < 0 else INCONCLUSIVE


def _result(measured: str, verdict: str, effect=None, settle: str | None = None, **detail) -> dict:
    out = {"measured": measured, "verdict": verdict, "effect": effect, "detail": detail}
    if verdict == INCONCLUSIVE and settle:
        out["settle"] = settle
    return out


# -- the rules ------------------------------------------------------------------------------
def _f1(table, settings, metric, est) -> dict:
    t = table[table["in_domain"] & (table["mix"] == "") & (table["tau"] <= max(settings.kd_taus))]
    if t.empty or not _has(t, metric):
        return _result("no in-domain cells", NOT_MEASURED)
    slopes = {}
    for draft, g in t.groupby("draft"):
        if g["tau"].nunique() >= 2:
            slopes[draft] = _slope(g["tau"].to_numpy(), np.vstack([est.get(metric, i) for i in g.index]))
    if not slopes:
        return _result("fewer than two decoding taus per draft", NOT_MEASURED)
    n = len(slopes)
    point, lo, hi = interval(np.mean(list(slopes.values()), 0))
    each = 1 - (1 - LEVEL) / n  # simultaneous intervals for the per-draft counts (Bonferroni)
    per = {d: interval(s, each) for d, s in slopes.items()}
    falls = [d for d, (_, _, h) in per.items() if h < 0]
    rises = [d for d, (_, l, _) in per.items() if l > 0]
    verdict = _signed_verdict(lo, hi, -1, "agree" if not rises else "partly")
    text = (f"mean slope of {SYMBOL[metric]} against tau over 0-{max(settings.kd_taus):g}: "
            f"{_fmt(point, lo, hi)} per unit tau over {n} drafts; it falls for {len(falls)} and rises for "
            f"{len(rises)} of them (simultaneous 95% intervals)")
    if rises:
        text += f": rises for {', '.join(rises)}"
    return _result(text, verdict, (point, lo, hi), _settle(point, lo, hi, metric), per_draft=per)


def check_f1_alpha(table, settings, est=None) -> dict:
    """F1 on acceptance. The paper explains the slowdown at high temperature by acceptance.
    Effect: the least-squares slope of expected alpha against decoding tau over the KD range,
    per draft, averaged over drafts. agree: the mean slope's interval lies below 0 and no
    draft's slope lies above 0 (simultaneous intervals); partly: below 0, but some draft
    rises; disagree: the interval lies above 0; inconclusive otherwise."""
    return _f1(table, settings, "alpha", est or Estimates(table))


def check_f1_gamma(table, settings, est=None) -> dict:
    """F1 on speed: "decoding at a higher temperature makes speculative decoding slower".
    The same rule as F1 (alpha) on gamma."""
    return _f1(table, settings, "gamma", est or Estimates(table))


def _diagonal_advantage(table, settings, metric, est):
    """Per (mode, decoding tau) column of the KD grid: the matching KD tau's value minus the
    mean of the other KD taus' values. Returns (mean advantage replicates, argmax hits, columns)."""
    adv, hits, cols = [], 0, 0
    for mode in ("offline", "online"):
        grid = _grid(table, settings, mode)
        for tau in sorted({b for _, b in grid}):
            column = {kd: est.get(metric, i) for (kd, b), i in grid.items() if b == tau}
            if tau not in column or len(column) < 2:
                continue
            others = np.mean([v for kd, v in column.items() if kd != tau], 0)
            adv.append(column[tau] - others)
            hits += max(column, key=lambda kd: column[kd][0]) == tau
            cols += 1
    return (np.mean(adv, 0) if adv else None), hits, cols


def check_f2(table, settings, est=None) -> dict:
    """F2: "the diagonals ... typically yield the most accelerated decoding speeds". Effect:
    in each (mode, decoding tau) column of the KD grid, gamma of the draft distilled at that
    tau minus the mean gamma of the other KD taus, averaged over columns. agree: its interval
    lies above 0 and the diagonal is the column's best in at least half the columns; partly:
    above 0, best in fewer; disagree: the interval lies below 0; inconclusive otherwise. The
    same effect on expected alpha is reported beside it."""
    est = est or Estimates(table)
    if not _has(table, "gamma"):
        return _result("no gamma in the KD grid", NOT_MEASURED)
    adv, hits, cols = _diagonal_advantage(table, settings, "gamma", est)
    if adv is None:
        return _result("no KD grid cells", NOT_MEASURED)
    point, lo, hi = interval(adv)
    verdict = _signed_verdict(lo, hi, +1, "agree" if hits >= cols / 2 else "partly")
    text = (f"gamma of the matching KD tau minus the other KD taus' mean: {_fmt(point, lo, hi)}; "
            f"the matching KD tau is fastest in {hits} of {cols} columns")
    a_adv, a_hits, _ = _diagonal_advantage(table, settings, "alpha", est)
    if a_adv is not None:
        text += f"; on expected alpha: {_fmt(*interval(a_adv))}, best in {a_hits} of {cols}"
    return _result(text, verdict, (point, lo, hi), _settle(point, lo, hi, "gamma"))


def _online_lead(table, settings, metric, est):
    on, off = _grid(table, settings, "online"), _grid(table, settings, "offline")
    taus = [t for t in sorted(settings.kd_taus) if (t, t) in on and (t, t) in off]
    gaps = [est.get(metric, on[(t, t)]) - est.get(metric, off[(t, t)]) for t in taus]
    if not gaps:
        return None, None, taus
    half = len(taus) // 2
    trend = (np.mean(gaps[half:], 0) - np.mean(gaps[:max(half, 1)], 0)) if len(taus) >= 2 else None
    return np.mean(gaps, 0), trend, taus


def check_f3(table, settings, est=None) -> dict:
    """F3: online KD beats offline KD, most at high temperatures. Effect: on the diagonal
    (tau_kd = tau), online minus offline gamma averaged over taus, and its trend (the mean
    lead in the upper half of taus minus that in the lower half). agree: the lead's interval
    lies above 0 and so does the trend's; partly: the lead is above 0, its growth with tau
    is not shown; disagree: the lead's interval lies below 0; inconclusive otherwise. The
    same effect on expected alpha is reported beside it."""
    est = est or Estimates(table)
    if not _has(table, "gamma"):
        return _result("no gamma on the diagonal", NOT_MEASURED)
    lead, trend, taus = _online_lead(table, settings, "gamma", est)
    if lead is None:
        return _result("no diagonal cells for both modes", NOT_MEASURED)
    point, lo, hi = interval(lead)
    grows = trend is not None and interval(trend)[1] > 0
    verdict = _signed_verdict(lo, hi, +1, "agree" if grows else "partly")
    text = f"online minus offline gamma on the diagonal: {_fmt(point, lo, hi)}"
    if trend is not None:
        text += f"; high-tau lead minus low-tau lead {_fmt(*interval(trend))}"
    a_lead, a_trend, _ = _online_lead(table, settings, "alpha", est)
    text += f"; on expected alpha: {_fmt(*interval(a_lead))}"
    if a_trend is not None:
        text += f", trend {_fmt(*interval(a_trend))}"
    return _result(text, verdict, (point, lo, hi), _settle(point, lo, hi, "gamma"))


def quadratic(taus, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``a tau^2 + b tau + c`` through each column of ``values`` (taus x
    replicates): returns (curvature a, tau of the vertex -b / 2a)."""
    x = np.asarray(taus, float)
    beta = np.linalg.pinv(np.vstack([np.ones_like(x), x, x ** 2]).T) @ values
    with np.errstate(divide="ignore", invalid="ignore"):
        return beta[2], -beta[1] / (2 * beta[2])


def u_shape(taus, values, level: float = LEVEL) -> str:
    """One curve's shape from its replicates (taus x replicates): ``"U"`` when the fitted
    parabola's curvature is above 0 and its vertex inside the tau range, both with the
    interval at ``level``; ``"not U"`` when the curvature is below 0 (a cap), or above 0
    with the vertex outside the range (a curve that only falls or only rises);
    ``"unresolved"`` otherwise."""
    taus = np.asarray(taus, float)
    a, vertex = quadratic(taus, np.asarray(values, float))
    _, a_lo, a_hi = interval(a, level)
    _, v_lo, v_hi = interval(np.where(a > 0, vertex, np.nan), level)
    inside = np.isfinite(v_lo) and taus.min() < v_lo and v_hi < taus.max()
    outside = np.isfinite(v_lo) and (v_hi < taus.min() or v_lo > taus.max())
    if a_lo > 0 and inside:
        return "U"
    if a_hi < 0 or (a_lo > 0 and outside):
        return "not U"
    return "unresolved"


def check_f4(table, settings, est=None) -> dict:
    """F4: out of range (tau above the KD range, out-of-domain prompts) "the speedup follows
    a U-curve". Per out-of-domain draft, a parabola through gamma against decoding tau
    (`u_shape`, simultaneous intervals over the drafts). agree: every curve is a U; partly:
    some are; disagree: none is and at least one is clearly not (a cap, or one arm only);
    inconclusive: no curve is resolved either way."""
    est = est or Estimates(table)
    t = table[~table["in_domain"]] if "in_domain" in table else table.iloc[:0]
    if t.empty or not _has(t, "gamma"):
        return _result("no out-of-domain speed cells", NOT_MEASURED)
    groups = {d: g.sort_values("tau") for d, g in t.groupby("draft") if g["tau"].nunique() >= 3}
    if not groups:
        return _result("fewer than 3 decoding taus out of domain", NOT_MEASURED)
    each = 1 - (1 - LEVEL) / len(groups)
    shapes, mins = {}, {}
    for d, g in groups.items():
        values = np.vstack([est.gamma(i) for i in g.index])
        shapes[d] = u_shape(g["tau"].to_numpy(), values, each)
        mins[d] = float(g["tau"].to_numpy()[values[:, 0].argmin()])
    n_u = sum(v == "U" for v in shapes.values())
    n_not = sum(v == "not U" for v in shapes.values())
    if n_u == len(shapes):
        verdict = "agree"
    elif n_u:
        verdict = "partly"
    else:
        verdict = "disagree" if n_not else INCONCLUSIVE
    text = (f"on {t['prompt_set'].iloc[0]} prompts, gamma against tau is a U for {n_u}, clearly not for {n_not}, "
            f"unresolved for {len(shapes) - n_u - n_not} of {len(shapes)} drafts (lowest gamma at tau: "
            + ", ".join(f"{d} {m:g}" for d, m in mins.items()) + ")")
    return _result(text, verdict, None, "more speed runs per cell (spec_prompts x spec_repeats) and more decoding "
                   "taus out of range", shapes=shapes)


def _mix_gain(table, settings, metric, est):
    gains = []
    t = table[table["in_domain"] & (table["tau"] > settings.mix_baseline) & (table["tau_kd"] == settings.mix_baseline)]
    for mode in ("offline", "online"):
        m = t[t["mode"] == mode]
        mixed = {float(r.tau): i for i, r in m[m["mix"] != ""].iterrows()}
        single = {float(r.tau): i for i, r in m[m["mix"] == ""].iterrows()}
        gains += [100 * (est.get(metric, mixed[x]) / est.get(metric, single[x]) - 1) for x in mixed if x in single]
    return np.mean(gains, 0) if gains else None


def check_f5(table, settings, est=None) -> dict:
    """F5: the data-mixing recipe "raises speedup at high decoding temperatures by 12-20%".
    Effect: the gain in gamma of the mixed-data draft over single-temperature KD at
    ``mix_baseline``, in percent, averaged over decoding taus above it and both modes.
    agree: the interval lies above 0 and reaches 12%; partly: above 0, below 12% (a gain,
    smaller than the paper's); disagree: the interval lies below 12% and does not exclude
    0 (the paper's gain is ruled out and no gain is shown); inconclusive: it spans both 0
    and 12%. The gain in expected alpha is reported beside it."""
    est = est or Estimates(table)
    gain = _mix_gain(table, settings, "gamma", est) if _has(table, "gamma") else None
    if gain is None:
        return _result(f"no mixed-data cells above tau {settings.mix_baseline:g}", NOT_MEASURED)
    point, lo, hi = interval(gain)
    low, high = MIX_GAIN
    if lo > 0:
        verdict = "agree" if hi >= low else "partly"
    else:
        verdict = "disagree" if hi < low else INCONCLUSIVE
    text = (f"gamma gain of mixed over single-tau KD at tau > {settings.mix_baseline:g}: "
            f"{_fmt(point, lo, hi, 1, '%')} (paper {low:g}-{high:g}%)")
    a_gain = _mix_gain(table, settings, "alpha", est)
    if a_gain is not None:
        text += f"; expected alpha: {_fmt(*interval(a_gain), 1, '%')}"
    return _result(text, verdict, (point, lo, hi), _settle(point, lo, hi, "gamma"))


CHECKS = {"F1 (alpha)": check_f1_alpha, "F1 (gamma)": check_f1_gamma, "F2": check_f2, "F3": check_f3,
          "F4": check_f4, "F5": check_f5}


def draft_regime(table) -> list[str]:
    """One sentence per tau of `DRAFT_TARGETS`: the aligned KD draft's expected alpha (the
    better of offline and online, in domain) with its interval against its target, and the
    no-KD draft's, which should stay at most half of it so that what KD does stays visible."""
    t = table[table["in_domain"] & (table["mix"] == "")] if len(table) else table
    out = []
    for tau, goal in DRAFT_TARGETS.items():
        cells = t[(t["tau"] == tau) & (t["tau_kd"] == tau) & t["mode"].isin(["offline", "online"])]
        nokd = t[(t["draft"] == "nokd") & (t["tau"] == tau)]["alpha_expected"]
        if cells.empty:
            continue
        best = cells.loc[cells["alpha_expected"].idxmax()]
        a = float(best["alpha_expected"])
        ci = (f" [{best['alpha_expected_lo']:.3f}, {best['alpha_expected_hi']:.3f}]"
              if "alpha_expected_lo" in best and np.isfinite(best["alpha_expected_lo"]) else "")
        line = (f"at tau {tau:g}, aligned KD ({best['draft']}) has expected alpha {a:.3f}{ci}: "
                f"{'meets' if a >= goal else 'misses'} the target {goal:.2f}")
        if len(nokd):
            b = float(nokd.iloc[0])
            line += f"; no KD {b:.3f} ({'at most' if b <= a / 2 else 'more than'} half of it)"
        out.append(line)
    return out


def claims(table, settings, n_boot: int = N_BOOT) -> dict:
    """Every claim's rule on the results table, with one set of replicates shared by all:
    {claim: {measured, verdict, effect, detail[, settle]}}."""
    if table is None or len(table) == 0:
        return {c: _result("no results", NOT_MEASURED) for c in CHECKS}
    table = table.reset_index(drop=True)
    est = Estimates(table, n_boot)
    return {c: check(table, settings, est) for c, check in CHECKS.items()}


def claims_table(results: dict) -> pd.DataFrame:
    """The claims as a table: claim, what the paper says, what this run measured (with what
    would settle it, when inconclusive), verdict."""
    return pd.DataFrame([{"claim": c, "paper": PAPER[c],
                          "this run": r["measured"] + (f". To settle it: {r['settle']}" if r.get("settle") else ""),
                          "verdict": r["verdict"]} for c, r in results.items()])


def paper_beside(table) -> list[tuple[str, str, str]]:
    """(figure, the paper's, this run's) for each figure of `PAPER_NUMBERS` this run has."""
    rows = []
    t = table[table["in_domain"] & (table["mix"] == "")] if len(table) else table
    if "gamma" in t and len(t):
        def cell(g):
            if not len(g):
                return "-"
            r = g.loc[g["gamma"].idxmax()]
            ci = f" [{r['gamma_lo']:.2f}, {r['gamma_hi']:.2f}]" if "gamma_lo" in r and np.isfinite(r["gamma_lo"]) else ""
            return f"{r['gamma']:.2f}x{ci}"

        at = {tau: t[(t["tau"] == tau) & t["gamma"].notna()] for tau in (0.0, 1.0, 2.0)}
        key = list(PAPER_NUMBERS)[0]
        rows.append((key, PAPER_NUMBERS[key], "no-KD draft: " + " / ".join(cell(g[g["draft"] == "nokd"])
                                                                          for g in at.values())
                     + "; fastest draft: " + " / ".join(cell(g) for g in at.values())))
    regime = draft_regime(table)
    if regime:
        rows.append((list(PAPER_NUMBERS)[1], PAPER_NUMBERS[list(PAPER_NUMBERS)[1]], "; ".join(
            r.split(": ")[0].replace("has expected alpha ", "") for r in regime)))
    return rows


def timing_notes(table, machine: dict | None) -> list[str]:
    """The machine the timings ran on, the load while they ran (a warning when it exceeded
    the cores), and how often the plain time ratio's interval holds the steadier gamma."""
    lines = []
    if machine:
        lines.append(f"- timed on: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('threads')} torch "
                     f"threads, torch {machine.get('torch')}, flags {', '.join(machine.get('flags', [])) or 'none'}")
    if "load_before" in table and table["load_before"].notna().any():
        loads = pd.concat([table["load_before"], table["load_after"]]).dropna()
        cores = (machine or {}).get("cores") or 0
        line = (f"- load average (1 min) while timing: first cell {table['load_before'].dropna().iloc[0]:.2f}, "
                f"last {table['load_after'].dropna().iloc[-1]:.2f}, highest {loads.max():.2f}")
        if cores and loads.max() > cores:
            busy = int(((table["load_before"] > cores) | (table["load_after"] > cores)).sum())
            line += (f". **Warning: the load exceeded the {cores} cores in {busy} cells**: other work shared "
                     "the CPU, so gamma is noisier there (its intervals include what the runs saw)")
        lines.append(line)
    if "clock_df" in table and table["clock_df"].notna().any():
        lines.append(f"- the clock's spread (log of plain time per token over speculative time per step, within a "
                     f"cell), pooled over the timed cells: {float(table['clock_sd'].dropna().iloc[0]):.3f} with "
                     f"{int(table['clock_df'].dropna().iloc[0])} degrees of freedom (`stats.pooled_sd`)"
                     + (f"; the drafts timed in one block share their plain runs, and {shared:.3f} of it with them "
                        "(report's replicates draw that part once per block)"
                        if "clock_shared_sd" in table and np.isfinite(shared := float(table["clock_shared_sd"].iloc[0]))
                        and shared > 0 else ""))
    if {"gamma_raw_lo", "gamma"} <= set(table) and table["gamma_raw_lo"].notna().any():
        ok = ((table["gamma_raw_lo"] <= table["gamma"]) & (table["gamma"] <= table["gamma_raw_hi"]))
        n = int(table["gamma_raw_lo"].notna().sum())
        half = ((table["gamma_hi"] - table["gamma_lo"]) / 2).median()
        raw_half = ((table["gamma_raw_hi"] - table["gamma_raw_lo"]) / 2).median()
        lines.append(f"- gamma (acceptance luck taken out, `evaluate.steady_gamma`) lies inside the plain time "
                     f"ratio's 95% interval in {int(ok.sum())} of {n} cells; median half-width of the intervals: "
                     f"gamma {half:.3f}, plain ratio {raw_half:.3f}")
    return lines


# The figure each claim is judged from (notebooks 03-05 save them), embedded in report.md as
# PNG so that the report reads on its own; the HTML beside each one is interactive.
REPORT_FIGURES = {
    "F1": ("03_gamma_vs_tau", "gamma against the decoding tau, per draft"),
    "F2": ("03_gamma_heatmap", "gamma over the (tau_kd, tau) grid; ≈ marks a cell whose interval overlaps the diagonal's"),
    "F3": ("03_online_vs_offline", "online against offline KD"),
    "F4": ("04_u_curve_gamma", "gamma against tau out of domain (the U-curve)"),
    "F5": ("05_mixing_gamma", "the mixed-data draft against single-tau KD"),
}


def figure_lines(figures) -> list[str]:
    """report.md's figures: each claim's PNG where it was written, else where its HTML is
    and why there is no PNG."""
    figures = Path(figures)
    lines = ["", "## Figures", ""]
    missing = []
    for claim, (name, what) in REPORT_FIGURES.items():
        if (figures / f"{name}.png").is_file():
            lines += [f"**{claim}**: {what} (`figures/{name}.html` is the interactive one).", "",
                      f"![{claim}: {what}](figures/{name}.png)", ""]
        elif (figures / f"{name}.html").is_file():
            missing.append(f"`figures/{name}.html` ({claim})")
    if missing:
        lines.append("No PNG for " + ", ".join(missing) + ": PNG figures need kaleido and a Chrome or Chromium "
                     "(apt-get install chromium); the HTML figures open in any browser.")
    return lines if len(lines) > 3 else []


def write_report(study, table=None) -> "Path":  # noqa: F821
    """Write ``outputs/<run>/report.md`` (atomically) from the results table."""
    from .files import atomic_path

    table = study.results() if table is None else table
    s = study.settings
    results = claims(table, s)
    cost_path = study.out / "eval" / "cost.json"
    c = json.loads(cost_path.read_text()) if cost_path.is_file() else None
    machine_path = study.out / "eval" / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.is_file() else None
    lines = [f"# tcsd report: `{study.out.name}` (profile `{study.profile}`, seed {s.seed})", "",
             f"Written {time.strftime('%Y-%m-%d %H:%M')} from `results.parquet` ({len(table)} rows: draft x "
             f"decoding tau x prompt set). Paper: Ouyang et al. 2024, arXiv 2410.10141.", "",
             f"- target `{s.target}`; drafts distilled on `{s.train_set}` (train split); out of domain: `{s.ood_set}`",
             f"- KD taus {list(s.kd_taus)}; decoding taus {list(s.decode_taus)}; k = {s.k}; "
             f"{s.spec_prompts} prompts x {s.spec_repeats} repeats x {s.spec_tokens} tokens per speed cell, each run "
             f"paired with a plain run; expected alpha on {s.n_eval_prompts} held-out prompts x {s.new_tokens} tokens"]
    if c:
        lines.append(f"- c = {c['c']:.3f} (target {c['target_ms']:.1f} ms, draft {c['draft_ms']:.1f} ms per token)")
    lines += timing_notes(table, machine)
    regime = draft_regime(table)
    if regime:
        lines.append("- the draft: " + "; ".join(regime) + ". Below the targets the claims are measured on a "
                     "draft weaker than the paper's (README, the draft ablation).")
    if study.profile == "smoke":
        lines.append("- **smoke profile**: drafts train for a few steps and runs are a few tokens long, "
                     "so these verdicts test the pipeline, not the paper.")
    lines += ["", "Every figure below is an estimate with its 95% interval in brackets. A verdict other than "
              f"*{INCONCLUSIVE}* is given only when the interval supports it.", "",
              "| claim | the paper | this run | verdict |", "|---|---|---|---|"]
    for name, row in claims_table(results).iterrows():
        lines.append(f"| {row['claim']} | {row['paper']} | {row['this run']} | **{row['verdict']}** |")
    beside = paper_beside(table)
    if beside:
        lines += ["", "The paper beside this run:", "", "| figure | the paper | this run |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c_} |" for a, b, c_ in beside]
        f5 = results.get("F5", {})
        if f5.get("effect"):
            lines.append(f"| {list(PAPER_NUMBERS)[2]} | {PAPER_NUMBERS[list(PAPER_NUMBERS)[2]]} | "
                         f"{_fmt(*f5['effect'], 1, '%')} |")
    lines += figure_lines(study.out / "figures")
    lines += ["", "How each verdict is decided (tcsd_utils/report.py):", ""]
    for c_name, check in CHECKS.items():
        rule = " ".join((check.__doc__ or "").split())
        lines.append(f"- {c_name}: {rule}")
    lines.append("")
    path = study.out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown (no extra dependency)."""
    cells = [list(map(str, table.columns))] + [[str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "|" + "---|" * len(table.columns)] + lines[1:])


def compare_runs(*results: tuple[str, dict]) -> pd.DataFrame:
    """Claims of several runs side by side (``tcsd compare``): one row per claim, a verdict
    and an effect column per run, and whether the runs' decided verdicts agree (rows where a
    run is inconclusive or not measured are left out of that test).

    Args:
        results: ``(run name, claims(...))`` pairs.
    """
    rows = []
    undecided = {INCONCLUSIVE, NOT_MEASURED}
    for claim in CHECKS:
        row = {"claim": claim}
        decided = set()
        for name, res in results:
            r = res.get(claim, {"verdict": NOT_MEASURED})
            row[f"{name} verdict"] = r["verdict"]
            row[f"{name} effect"] = _fmt(*r["effect"]) if r.get("effect") else ""
            if r["verdict"] not in undecided:
                decided.add(r["verdict"])
        row["same decided verdict"] = "yes" if len(decided) <= 1 else "no"
        rows.append(row)
    return pd.DataFrame(rows)
