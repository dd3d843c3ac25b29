"""One rule per claim of the paper, on the results table, with intervals.

Every verdict is computed from the results table (`Study.results`) by one rule per claim,
each a function below whose docstring quotes what it tests. A rule measures an effect size
with its 95% interval and decides:

- ``agree`` / ``partly`` / ``disagree`` only when the interval supports it;
- ``inconclusive at this scale`` otherwise, naming the measurement that would settle it;
- ``not measured`` when the rows a rule needs are absent.

Intervals come from replicates (`Estimates`, `tcsd_utils.stats`): expected alpha resampled
over held-out prompts, shared by every cell of a prompt set so that differences stay
paired; gamma's clock part drawn per cell from its runs, with the spread pooled over the
run's timed cells where the table records it (`tcsd_utils.rules.steady_gamma`, columns
``clock_sd`` and ``clock_df``), and the part that the cells of one timing block share
(their plain runs, column ``clock_shared_sd``) drawn once per block (column
``timing_block``). A table without those per-unit columns (a synthetic one, an old run)
falls back to each cell's own interval columns, taken as independent normals, or to no
interval at all. `tcsd_utils.report` writes the verdicts into report.md.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from .leviathan import expected_tokens_per_step
from .stats import LEVEL, N_BOOT, indices, interaction_sd, interval, normal_replicates, pooled_sd, ratio_replicates

__all__ = ["PAPER", "AGREE", "PARTLY", "DISAGREE", "INCONCLUSIVE", "NOT_MEASURED", "VERDICTS", "MIX_GAIN", "Estimates",
           "CHECKS", "claims", "check_f1_alpha", "check_f1_gamma", "check_f2", "check_f3", "check_f4", "check_f5",
           "quadratic", "u_shape", "fmt", "steady_gamma", "with_gamma_intervals", "pool_clock", "verdict_line",
           "grid_cells"]

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
# The verdicts: a rule returns one of these and nothing else (the notebooks' checks test it).
AGREE, PARTLY, DISAGREE = "agree", "partly", "disagree"
INCONCLUSIVE = "inconclusive at this scale"
NOT_MEASURED = "not measured"
VERDICTS = (AGREE, PARTLY, DISAGREE, INCONCLUSIVE, NOT_MEASURED)
MIX_GAIN = (12.0, 20.0)  # percent, the paper's range for F5


def _listlike(v) -> bool:
    return isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0


def _cell_key(row) -> int:
    """A cell's own seed offset, from what the cell is (draft, prompt set, tau, k), not from
    where it sits in a table: every table that holds the cell gives it the same replicates."""
    key = f"{row.get('draft')}|{row.get('prompt_set')}|{float(row.get('tau', math.nan)):g}|{row.get('k')}"
    return zlib.crc32(key.encode())


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
                block = row.get("timing_block")  # the cells timed together share their plain runs' noise
                rep = steady_gamma(row["log_step_ratio_runs"], self.alpha(i), int(row["k"]),
                                   seed=self.seed + _cell_key(row),
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
        return normal_replicates(value, lo, hi, self.n_boot, self.seed + 104729 + _cell_key(row))


def with_gamma_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every timed cell's ``gamma``, ``gamma_lo`` and ``gamma_hi`` from
    `Estimates.gamma`: the one definition of gamma's interval, used by the results table
    (`study.Study.results`) and by the rules behind report.md alike."""
    if "log_step_ratio_runs" not in table or not len(table):
        return table
    table, est = table.copy(), Estimates(table)
    for i in table.index[table["log_step_ratio_runs"].map(_listlike)]:
        for column, value in zip(("gamma", "gamma_lo", "gamma_hi"), interval(est.gamma(i))):
            table.at[i, column] = value
    return table


def pool_clock(table: pd.DataFrame, run_rows: list) -> pd.DataFrame:
    """``table`` with every timed cell's gamma interval drawn from the clock's spread
    pooled over all timed cells of this run, ``run_rows`` (`stats.pooled_sd`), recorded in
    columns ``clock_sd`` and ``clock_df``: one machine's noise, measured on all its runs at once.
    ``clock_shared_sd`` is the part of it that a timing block's cells share: what is left
    of it once each speculative run's own noise (`stats.interaction_sd`) is taken out."""
    if "log_step_ratio_runs" not in table or not len(table):
        return table
    sd, df = pooled_sd(r["log_step_ratio_runs"] for r in run_rows if r.get("log_step_ratio_runs"))
    table = table.copy()
    table["clock_sd"], table["clock_df"] = sd, df
    blocks: dict = {}  # cells timed together (`evaluate.measure_gamma`) share their plain runs
    for r in run_rows:
        if r.get("timing_block") and r.get("log_step_ratio_runs"):
            blocks.setdefault(r["timing_block"], []).append(r["log_step_ratio_runs"])
    own, _ = interaction_sd([b for b in blocks.values() if len({len(x) for x in b}) == 1])
    table["clock_shared_sd"] = math.sqrt(max(sd * sd - own * own, 0.0)) if math.isfinite(own) else 0.0
    return with_gamma_intervals(table)  # the one definition of gamma's interval, as the report's


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


def fmt(point, lo, hi, digits=3, unit="") -> str:
    """An effect and its interval as text: ``+0.123 [+0.010, +0.250]``."""
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
                f"or a stronger draft (FINDINGS.md, the draft ablation)")
    more = math.ceil((half / abs(point)) ** 2 * SETTLE_MARGIN)
    return f"about {more}x the {UNITS[metric]} (interval half-width {half:.3g})"


def _slope(x, y) -> np.ndarray:
    """Least-squares slope of each column of ``y`` (taus x replicates) against ``x``."""
    x = np.asarray(x, float)
    xc = x - x.mean()
    return (xc[:, None] * (y - y.mean(0))).sum(0) / (xc ** 2).sum()


def grid_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The cells of the alpha-gamma grid: in domain, of drafts distilled at one temperature (no
    data mixing). F1-F3 judge these; `report` and `tcsd bench --draft aligned` read them too."""
    return table[table["in_domain"] & (table["mix"] == "")] if len(table) else table


def _grid(table, settings, mode):
    """Rows of one mode's KD grid in domain (single-temperature drafts): {(tau_kd, tau): index}."""
    t = grid_cells(table)
    t = t[(t["mode"] == mode) & t["tau_kd"].isin(settings.kd_taus) & t["tau"].isin(settings.kd_taus)]
    return {(float(r.tau_kd), float(r.tau)): i for i, r in t.iterrows()}


def _signed_verdict(lo: float, hi: float, sign: int, supported: str) -> str:
    """The verdict of an effect whose sign the paper states (``sign`` +1 or -1):
    ``supported`` when its interval lies wholly on the paper's side of 0, "disagree" when
    wholly on the other side, inconclusive otherwise (a nan interval included)."""
    lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
    return supported if lo > 0 else DISAGREE if hi < 0 else INCONCLUSIVE


def _result(measured: str, verdict: str, effect=None, settle: str | None = None, **detail) -> dict:
    out = {"measured": measured, "verdict": verdict, "effect": effect, "detail": detail}
    if verdict == INCONCLUSIVE and settle:
        out["settle"] = settle
    return out


# -- the rules ------------------------------------------------------------------------------
def _f1(table, settings, metric, est) -> dict:
    t = grid_cells(table)
    t = t[t["tau"] <= max(settings.kd_taus)] if len(t) else t
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
    verdict = _signed_verdict(lo, hi, -1, AGREE if not rises else PARTLY)
    text = (f"mean slope of {SYMBOL[metric]} against tau over 0-{max(settings.kd_taus):g}: "
            f"{fmt(point, lo, hi)} per unit tau over {n} drafts; it falls for {len(falls)} and rises for "
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
    verdict = _signed_verdict(lo, hi, +1, AGREE if hits >= cols / 2 else PARTLY)
    text = (f"gamma of the matching KD tau minus the other KD taus' mean: {fmt(point, lo, hi)}; "
            f"the matching KD tau is fastest in {hits} of {cols} columns")
    a_adv, a_hits, _ = _diagonal_advantage(table, settings, "alpha", est)
    if a_adv is not None:
        text += f"; on expected alpha: {fmt(*interval(a_adv))}, best in {a_hits} of {cols}"
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
    verdict = _signed_verdict(lo, hi, +1, AGREE if grows else PARTLY)
    text = f"online minus offline gamma on the diagonal: {fmt(point, lo, hi)}"
    if trend is not None:
        text += f"; high-tau lead minus low-tau lead {fmt(*interval(trend))}"
    a_lead, a_trend, _ = _online_lead(table, settings, "alpha", est)
    text += f"; on expected alpha: {fmt(*interval(a_lead))}"
    if a_trend is not None:
        text += f", trend {fmt(*interval(a_trend))}"
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
        verdict = AGREE
    elif n_u:
        verdict = PARTLY
    else:
        verdict = DISAGREE if n_not else INCONCLUSIVE
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
        verdict = AGREE if hi >= low else PARTLY
    else:
        verdict = DISAGREE if hi < low else INCONCLUSIVE
    text = (f"gamma gain of mixed over single-tau KD at tau > {settings.mix_baseline:g}: "
            f"{fmt(point, lo, hi, 1, '%')} (paper {low:g}-{high:g}%)")
    a_gain = _mix_gain(table, settings, "alpha", est)
    if a_gain is not None:
        text += f"; expected alpha: {fmt(*interval(a_gain), 1, '%')}"
    return _result(text, verdict, (point, lo, hi), _settle(point, lo, hi, "gamma"))


CHECKS = {"F1 (alpha)": check_f1_alpha, "F1 (gamma)": check_f1_gamma, "F2": check_f2, "F3": check_f3,
          "F4": check_f4, "F5": check_f5}


def claims(table, settings, n_boot: int = N_BOOT) -> dict:
    """Every claim's rule on the results table, with one set of replicates shared by all:
    {claim: {measured, verdict, effect, detail[, settle]}}."""
    if table is None or len(table) == 0:
        return {c: _result("no results", NOT_MEASURED) for c in CHECKS}
    table = table.reset_index(drop=True)
    est = Estimates(table, n_boot)
    return {c: check(table, settings, est) for c, check in CHECKS.items()}


def steady_gamma(log_step_ratio_runs, alpha_replicates, k: int, seed: int = 0,
                 clock_sd: float | None = None, clock_df: int | None = None,
                 shared_sd: float = 0.0, shared_seed: int | None = None) -> np.ndarray:
    """Replicates of gamma with the luck of acceptance in a few short runs taken out.

    A speculative run's time is its number of steps times the time of a step. Of the spread
    of gamma over runs, most comes from how many tokens the draft happened to get accepted
    (binomial luck over a few dozen steps), little from the clock. This estimate keeps the
    clock's part as measured (each run's plain time per token over its speculative time per
    step, `measure_gamma`) and takes the tokens per step from expected alpha, which every
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

    The drafts of one timing block share its plain runs (`measure_gamma`), so part of the
    clock's noise, ``shared_sd`` per run, is common to the block's cells. Given
    ``shared_seed`` (the same for every cell of a block), that part is drawn from it and the
    rest from ``seed``: the total spread is unchanged, and an effect that compares the cells
    of one block (or averages them) gets the right spread from their replicates.

    Args:
        log_step_ratio_runs: `measure_gamma`'s per-run clock ratios (logs).
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
    return np.exp(np.clip(clock, -50, 50)) * expected_tokens_per_step(alpha, k)  # t with 1 df has huge tails


def verdict_line(claim: str, result: dict) -> str:
    """What the notebooks print for one claim: the claim with the paper's sentence
    (`PAPER`), this run's measurement and the verdict, with what would settle it when the
    rule names that.

    Args:
        claim: a key of `PAPER` (``"F1 (alpha)"``, ..., ``"F5"``).
        result: the claim's rule's result (`CHECKS`, `claims`): ``measured``, ``verdict`` and
            optionally ``settle``.

    Returns:
        three lines, ``"<claim> (<paper>)"``, ``"this run: <measured>."`` and
        ``"verdict: <verdict>"`` followed by ``" (to settle it: <settle>)"`` when ``settle``
        is given and not empty.
    """
    return (f"{claim} ({PAPER[claim]})\nthis run: {result['measured']}.\nverdict: {result['verdict']}"
            + (f" (to settle it: {result['settle']})" if result.get("settle") else ""))
