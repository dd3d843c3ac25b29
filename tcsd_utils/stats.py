"""Intervals: how sure one run of the study can be of each figure.

One home for the uncertainty of every estimate in the results table and of every effect
the claims are judged on (`tcsd_utils.report`):

- expected alpha: a bootstrap over held-out prompts (the prompt is the unit that was
  sampled; its positions are not independent of each other);
- empirical alpha: the Wilson interval of a binomial proportion (accepted / tested);
- gamma: runs of the same prompt and seed, speculative bracketed by plain, give one log
  ratio each (`tcsd_utils.timing.measure_gamma`): a t interval over runs for the plain ratio, and for the steadier
  estimate the clock's part over runs with expected alpha's part over prompts
  (`tcsd_utils.rules.steady_gamma`).

Replicates are arrays whose element 0 is the point estimate and elements 1..B bootstrap
replicates, so that an effect computed with numpy arithmetic on them carries its own
interval (`interval`). Effects across cells of one prompt set use the same resampled
prompts and runs (`indices`), which keeps paired comparisons paired.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata
from scipy.stats import t as student_t

__all__ = ["LEVEL", "N_BOOT", "indices", "ratio_replicates", "normal_replicates", "interval", "wilson",
           "mean_interval", "pooled_sd", "interaction_sd", "correlation"]

LEVEL = 0.95    # every interval in the study
N_BOOT = 2000   # bootstrap replicates: the 2.5% tail rests on 50 of them


def indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Row 0 is the sample itself; rows 1..n_boot resample ``n`` units with replacement.

    Returns:
        int array of shape ``(n_boot + 1, n)``.
    """
    rng = np.random.default_rng(seed)
    return np.vstack([np.arange(n)[None, :], rng.integers(0, n, size=(n_boot, n))])


def ratio_replicates(means, weights, idx: np.ndarray) -> np.ndarray:
    """The weighted mean ``sum(w m) / sum(w)`` on each row of resampled units ``idx``
    (per-prompt mean overlaps weighted by their positions give expected alpha)."""
    m, w = np.asarray(means, float), np.asarray(weights, float)
    return (m * w)[idx].sum(1) / w[idx].sum(1)


def normal_replicates(value: float, lo: float, hi: float, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Replicates of an estimate known only by its point and 95% interval, drawn as a normal
    with the interval's half-width / 1.96 as its standard error (tables without per-unit
    columns; cells drawn this way are independent of each other)."""
    se = (hi - lo) / (2 * 1.959964) if np.isfinite(lo) and np.isfinite(hi) else 0.0
    rng = np.random.default_rng(seed)
    return np.concatenate([[value], value + se * rng.standard_normal(n_boot)])


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(point, lo, hi): the point estimate and the percentile interval of the replicates."""
    r = np.asarray(replicates, float)
    tail = 100 * (1 - level) / 2
    rest = r[1:][np.isfinite(r[1:])]
    if not len(rest):
        return float(r[0]), math.nan, math.nan
    lo, hi = np.percentile(rest, [tail, 100 - tail])
    return float(r[0]), float(lo), float(hi)


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927); (nan, nan) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0 or n successes one end is exactly 0 or 1 (centre - half rounds to about 1e-17 there)
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))


def mean_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, lo, hi): Student's t interval of a mean; one value gives (value, nan, nan)."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return (float(v[0]) if len(v) else math.nan), math.nan, math.nan
    half = float(student_t.ppf(0.5 + level / 2, len(v) - 1)) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def pooled_sd(groups) -> tuple[float, int]:
    """(sd, degrees of freedom): the pooled within-group standard deviation of several groups
    of values, ``sqrt(sum of squares about each group's mean / sum(n - 1))``; groups of one
    value add nothing; (nan, 0) when no group has two.

    For spreads that are one property shared by every group (the clock's noise in the timed
    cells of one run, `tcsd_utils.rules.steady_gamma`): a few values per group then borrow
    the degrees of freedom of all of them."""
    ss, df = 0.0, 0
    for g in groups:
        v = np.asarray(g, float)
        if len(v) > 1:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
    return (math.sqrt(ss / df), df) if df else (math.nan, 0)


def interaction_sd(blocks) -> tuple[float, int]:
    """(sd, degrees of freedom): the residual spread of two-way tables without replication
    (rows x columns, one value each), pooled over ``blocks``: each table minus its row
    means and its column means, plus its grand mean (Tukey's additive model); a table with
    one row or one column adds nothing; (nan, 0) when none has two of each.

    For a timing block (`tcsd_utils.timing.measure_gamma`; rows: drafts, columns: runs
    of the same prompt and seed), a column's effect holds what the drafts share (their plain
    runs, the prompt), a row's effect each draft's own clock, and the residual the noise of
    each speculative run alone."""
    ss, df = 0.0, 0
    for block in blocks:
        x = np.asarray(block, float)
        if x.ndim == 2 and min(x.shape) > 1:
            r = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
            ss += float((r * r).sum())
            df += (x.shape[0] - 1) * (x.shape[1] - 1)
    return (math.sqrt(ss / df), df) if df else (math.nan, 0)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    scale = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / scale) if scale > 0 else math.nan


def correlation(x, y, groups, method: str = "spearman", n_boot: int = N_BOOT, seed: int = 0,
                level: float = LEVEL) -> tuple[float, float, float]:
    """(r, lo, hi): Spearman's or Pearson's correlation of paired values, with a bootstrap
    interval that resamples whole groups (the prompts: positions of one answer are not
    independent of each other), as the intervals of expected alpha do.

    Args:
        x, y: paired values, shape ``(n,)``.
        groups: the group of each pair (a prompt index), shape ``(n,)``.
        method: ``"spearman"`` (Pearson's on ranks, ties averaged) or ``"pearson"``.

    Returns:
        The correlation over all pairs and its percentile interval over resampled groups;
        nan where a resample holds no variation.
    """
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    x, y, groups = (np.asarray(v) for v in (x, y, groups))
    if not len(x) == len(y) == len(groups):
        raise ValueError(f"x, y and groups differ in length: {len(x)}, {len(y)}, {len(groups)}")
    names, codes = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(codes == g) for g in range(len(names))]

    def corr(rows):
        a, b = x[rows].astype(float), y[rows].astype(float)
        if method == "spearman":
            a, b = rankdata(a), rankdata(b)
        return _pearson(a, b)

    reps = [corr(np.concatenate([members[g] for g in row])) for row in indices(len(names), n_boot, seed)]
    return interval(np.asarray(reps), level)
