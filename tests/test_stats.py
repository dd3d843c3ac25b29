"""Intervals: each against a value computed by hand or a known property."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tcsd_utils import stats


def test_wilson_matches_the_textbook_formula_and_stays_in_0_1():
    lo, hi = stats.wilson(8, 10)  # Wilson (1927) at z = 1.96: about [0.490, 0.943]
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert stats.wilson(0, 20)[0] == 0.0 and stats.wilson(20, 20)[1] == 1.0
    assert all(math.isnan(v) for v in stats.wilson(0, 0))


def test_mean_interval_is_students_t():
    mean, lo, hi = stats.mean_interval([1.0, 2.0, 3.0])  # sd 1, n 3, t(2) = 4.303
    assert mean == 2.0 and hi - mean == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4) and mean - lo == hi - mean
    assert math.isnan(stats.mean_interval([5.0])[1])


def test_bootstrap_rows_start_with_the_sample_and_give_a_sensible_interval():
    idx = stats.indices(5, n_boot=100, seed=1)
    assert idx.shape == (101, 5) and (idx[0] == np.arange(5)).all()
    rng = np.random.default_rng(0)
    means, weights = rng.uniform(0.2, 0.4, 200), rng.integers(10, 60, 200)
    rep = stats.ratio_replicates(means, weights, stats.indices(200, 2000))
    point, lo, hi = stats.interval(rep)
    assert point == pytest.approx((means * weights).sum() / weights.sum())
    se = means.std() / math.sqrt(200)  # roughly, for weights of similar size
    assert lo < point < hi and 2.5 * se < hi - lo < 6 * se


def test_normal_replicates_recover_the_interval_they_were_made_from():
    rep = stats.normal_replicates(1.0, 0.9, 1.1, n_boot=20000)
    point, lo, hi = stats.interval(rep)
    assert point == 1.0 and lo == pytest.approx(0.9, abs=0.01) and hi == pytest.approx(1.1, abs=0.01)
    assert (stats.normal_replicates(0.5, math.nan, math.nan, 10) == 0.5).all()


def test_pooled_sd_pools_the_sums_of_squares_about_each_groups_mean():
    import numpy as np

    groups = [[1.0, 3.0], [10.0, 10.0, 13.0], [7.0]]  # the single value adds nothing
    ss = 2.0 + (1 + 1 + 4)  # about means 2 and 11
    sd, df = stats.pooled_sd(groups)
    assert df == 3 and sd == pytest.approx(math.sqrt(ss / 3))
    assert stats.pooled_sd([[5.0], [6.0]]) == (pytest.approx(float("nan"), nan_ok=True), 0)
    rng = np.random.default_rng(0)  # many small groups of one spread recover it
    sd, df = stats.pooled_sd([rng.normal(i, 0.3, 4) for i in range(300)])
    assert df == 900 and sd == pytest.approx(0.3, rel=0.08)


def test_correlation_ranks_resamples_groups_and_refuses_unknown_methods():
    import numpy as np
    import pytest

    x = np.arange(20, dtype=float)
    groups = np.repeat(np.arange(5), 4)
    r, lo, hi = stats.correlation(x, np.exp(x), groups)  # monotone: Spearman is 1 in every resample
    assert r == pytest.approx(1.0) and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    r, lo, hi = stats.correlation(x, np.exp(x), groups, method="pearson")
    assert r == pytest.approx(np.corrcoef(x, np.exp(x))[0, 1]) and r < 1
    rng = np.random.default_rng(0)
    y = x + rng.normal(0, 8, 20)
    r, lo, hi = stats.correlation(x, y, groups, n_boot=500)
    assert lo < r < hi and -1 <= lo and hi <= 1
    with pytest.raises(ValueError, match="method"):
        stats.correlation(x, y, groups, method="kendall")


def test_wilson_ends_exactly_at_0_and_1():
    assert stats.wilson(0, 14)[0] == 0.0 and stats.wilson(14, 14)[1] == 1.0


def test_interaction_sd_recovers_the_noise_of_each_run_beside_row_and_column_effects():
    import numpy as np

    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(40):  # 11 drafts x 4 prompts: a draft's own clock, a prompt's shared plain runs, run noise
        blocks.append(rng.normal(0, 0.05, (11, 1)) + rng.normal(0, 0.08, (1, 4)) + rng.normal(0, 0.02, (11, 4)))
    sd, df = stats.interaction_sd(blocks)
    assert df == 40 * 10 * 3 and sd == pytest.approx(0.02, rel=0.05)  # the effects do not leak into it
    x = np.array([[1.0, 2.0, 4.0], [2.0, 3.0, 5.0]])  # purely additive: no residual
    assert stats.interaction_sd([x]) == (pytest.approx(0.0, abs=1e-12), 2)
    assert stats.interaction_sd([np.ones((1, 4)), np.ones((3, 1))]) == (pytest.approx(float("nan"), nan_ok=True), 0)
