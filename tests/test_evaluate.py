"""Evaluation of a draft: expected alpha and its pieces, best k; and what is timed (`timing`):
c, empirical alpha and gamma."""

from __future__ import annotations

import copy
import math

import pytest

from tcsd_utils.evaluate import _log_plain_at, cost_ratio, measure_gamma, verify_cost
from tcsd_utils.leviathan import best_k, predicted_gamma
from tcsd_utils.rules import steady_gamma
from tcsd_utils.teacher import teacher_data
from tcsd_utils import evaluate as E

PROMPTS = [[1, 14, 4 + i % 8, 5 + (i * 3) % 7, 15] for i in range(8)]


@pytest.fixture(scope="module")
def samples(tiny_target, tokenizer, tmp_path_factory):
    return teacher_data(tiny_target, tokenizer, PROMPTS, [f"p{i}" for i in range(8)], 1.0,
                          tmp_path_factory.mktemp("s") / "t", max_new_tokens=6)


def test_a_draft_identical_to_the_target_has_alpha_one(tiny_target, samples):
    twin = copy.deepcopy(tiny_target)
    out = E.compare_draft(E.target_distributions(tiny_target, samples, 1.0, pad=3), twin, 1.0, pad=3)
    assert out["alpha"] == pytest.approx(1.0, abs=1e-5)
    assert out["entropy_p"] == pytest.approx(out["entropy_q"], abs=1e-5)
    assert out["positions"] == sum(len(r["answer_ids"]) for r in samples)


def test_compare_draft_matches_expected_alpha_and_entropy_grows_with_tau(tiny_target, tiny_draft, samples):
    p1 = E.target_distributions(tiny_target, samples, 1.0, batch_size=3, pad=3)
    out = E.compare_draft(p1, tiny_draft, 1.0, pad=3, per_position=True)
    alpha, overlaps = E.expected_alpha(tiny_target, tiny_draft, samples, 1.0, pad=3, per_position=True)
    assert out["alpha"] == pytest.approx(alpha) and out["overlaps"] == pytest.approx(overlaps)
    assert 0 <= alpha < 0.99  # a random draft is not the target
    hot = E.compare_draft(E.target_distributions(tiny_target, samples, 3.0, pad=3), tiny_draft, 3.0, pad=3)
    cold = E.compare_draft(E.target_distributions(tiny_target, samples, 0.0, pad=3), tiny_draft, 0.0, pad=3)
    assert cold["entropy_p"] == 0 and cold["entropy_q"] == 0  # one-hot at tau 0
    assert hot["entropy_p"] > out["entropy_p"] and hot["entropy_q"] > out["entropy_q"]
    assert hot["entropy_p"] <= math.log(16) + 1e-5


def test_best_k_maximises_the_predicted_speedup():
    for alpha in (0.0, 0.2, 0.5, 0.8, 0.95):
        for c in (0.01, 0.07, 0.3):
            k = best_k(alpha, c, k_max=12)
            assert all(predicted_gamma(alpha, c, k) >= predicted_gamma(alpha, c, j) for j in range(1, 13))
    assert best_k(0.2, 0.07) == 1 and best_k(0.9, 0.02) > 4  # low alpha: short drafts
    # with measured verification costs, k maximises the bound they give; a k whose cost-1
    # prediction cannot win is not measured
    asked = []
    costs = {1: 1.1, 2: 1.6, 3: 1.0, 4: 1.7, 5: 1.9, 6: 2.0, 7: 2.1, 8: 2.2}
    k = best_k(0.7, 0.12, verify=lambda k: asked.append(k) or costs[k])
    assert k == max(costs, key=lambda j: predicted_gamma(0.7, 0.12, j, costs[j])) == 3
    assert best_k(0.7, 0.12) == 4 and asked == [1, 2, 3, 4]  # k >= 5 cannot beat k = 3 even at cost 1
    assert best_k(0.7, 0.12, verify=lambda k: 0.5) == 4  # a cost below 1 counts as 1
    with pytest.raises(ValueError, match="alpha"):
        best_k(1.5, 0.1)


def test_measure_speedup_brackets_runs_counts_tested_tokens_and_a_twin_is_always_accepted(tiny_target, tiny_draft):
    out = measure_gamma(tiny_target, tiny_draft, PROMPTS[:2], 1.0, 2, 6, repeats=2)
    assert out["runs"] == 4 and len(out["log_ratio_runs"]) == len(out["log_step_ratio_runs"]) == 4
    assert 0 <= out["alpha_empirical_lo"] <= out["alpha_empirical"] <= out["alpha_empirical_hi"] <= 1
    assert out["gamma_raw_lo"] <= out["gamma_raw"] <= out["gamma_raw_hi"]
    assert out["gamma_raw"] == pytest.approx(math.exp(sum(out["log_ratio_runs"]) / 4))
    assert out["alpha_drafted"] <= out["alpha_empirical"] + 1e-12  # untested drafts only lower it
    assert 1 <= out["tokens_per_step"] <= 3
    twin = measure_gamma(tiny_target, copy.deepcopy(tiny_target), PROMPTS[:2], 1.0, 2, 6)
    assert twin["alpha_empirical"] == 1.0 and twin["tokens_per_step"] > 2  # p == q: nothing is rejected
    with pytest.raises(ValueError, match="at least one prompt"):
        measure_gamma(tiny_target, tiny_draft, [], 1.0, 2, 6)
    with pytest.raises(ValueError, match="one draft"):
        measure_gamma(tiny_target, {}, PROMPTS[:2], 1.0, 2, 6)


def test_a_block_of_drafts_shares_its_plain_runs_and_each_draft_gets_its_own_row(tiny_target, tiny_draft,
                                                                                monkeypatch):
    from tcsd_utils import evaluate

    calls = []
    for fn in ("autoregressive_generate", "speculative_generate"):
        real = getattr(evaluate, fn)
        monkeypatch.setattr(evaluate, fn, lambda *a, _real=real, _fn=fn, **k: calls.append(_fn) or _real(*a, **k))
    twin = copy.deepcopy(tiny_target)
    block = measure_gamma(tiny_target, {"draft": tiny_draft, "twin": twin}, PROMPTS[:3], 1.0, 2, 6)
    assert set(block) == {"draft", "twin"}
    # per prompt: plain, the two drafts, plain again (12 runs where pairs would take the same
    # 12; with 11 drafts a block takes 13 runs per prompt, pairs 22)
    assert calls.count("autoregressive_generate") == 6 and calls.count("speculative_generate") == 6
    assert calls[:4] == ["autoregressive_generate", "speculative_generate", "speculative_generate",
                         "autoregressive_generate"]
    for row in block.values():
        assert row["runs"] == 3 and len(row["plain_gap_runs"]) == 3
    assert block["draft"]["plain_gap_runs"] == block["twin"]["plain_gap_runs"]  # the same plain runs
    assert block["twin"]["alpha_empirical"] == 1.0 and block["draft"]["alpha_empirical"] < 1.0
    one = measure_gamma(tiny_target, tiny_draft, PROMPTS[:3], 1.0, 2, 6)
    assert one["alpha_empirical"] == block["draft"]["alpha_empirical"]  # the same seeds: the same tokens


def test_the_plain_reference_is_interpolated_in_time_between_its_two_runs():
    before, after = (10.0, math.log(0.050)), (20.0, math.log(0.060))
    assert _log_plain_at(before, after, 10.0) == pytest.approx(math.log(0.050))
    assert _log_plain_at(before, after, 15.0) == pytest.approx((math.log(0.050) + math.log(0.060)) / 2)
    assert _log_plain_at(before, after, 20.0) == pytest.approx(math.log(0.060))
    assert _log_plain_at(before, after, 99.0) == pytest.approx(math.log(0.060))  # clamped to the bracket
    assert _log_plain_at((5.0, 1.0), (5.0, 3.0), 5.0) == 2.0  # no time between them: the mean


def test_steady_gamma_shares_a_blocks_part_of_the_clock_noise_and_keeps_the_total():
    import numpy as np

    logs = [math.log(0.80), math.log(0.82), math.log(0.78), math.log(0.81)]
    alpha = np.full(4001, 0.5)
    sd = 0.04

    def cell(seed, shared):
        return np.log(steady_gamma(logs, alpha, k=1, seed=seed, clock_sd=sd, clock_df=400, shared_sd=shared,
                                     shared_seed=None if shared == 0 else 12345)[1:])

    a, b, lone = cell(1, 0.03), cell(2, 0.03), cell(1, 0.0)
    assert np.std(a) == pytest.approx(np.std(lone), rel=0.08)  # the same spread per cell
    r = np.corrcoef(a, b)[0, 1]
    assert r == pytest.approx(0.03 ** 2 / sd ** 2, abs=0.06)  # the shared share of the variance
    assert abs(np.corrcoef(lone, cell(2, 0.0))[0, 1]) < 0.06  # nothing shared: independent
    spread_of_difference = np.std(a - b)
    assert spread_of_difference == pytest.approx(np.sqrt(2 * (sd ** 2 - 0.03 ** 2)) / 2, rel=0.1)
    assert np.std(cell(1, 0.5)) == pytest.approx(np.std(lone), rel=0.08)  # shared part capped at the total


def test_steady_gamma_is_the_clock_ratio_times_the_expected_tokens_per_step():
    import numpy as np

    logs = [math.log(0.80), math.log(0.82), math.log(0.78)]
    alpha = np.array([0.5, 0.45, 0.55, 0.5])
    rep = steady_gamma(logs, alpha, k=1)
    clock = math.exp(sum(logs) / 3)
    assert rep[0] == pytest.approx(clock * 1.5)  # k = 1: 1 + alpha tokens per step
    assert len(rep) == 4 and np.isfinite(rep).all()
    assert np.isnan(steady_gamma(logs[:1], alpha, k=1)[1:]).all()  # one run: no spread known
    assert steady_gamma(logs, np.array([0.5]), k=3)[0] == pytest.approx(clock * 1.875)


def test_steady_gamma_with_a_pooled_clock_spread_uses_its_degrees_of_freedom():
    import numpy as np

    logs = [math.log(0.80), math.log(0.82), math.log(0.78), math.log(0.81)]
    alpha = np.full(4001, 0.5)  # no spread from alpha: the interval is the clock's alone
    sd = float(np.std(logs, ddof=1))

    def half_width(rep):
        lo, hi = np.percentile(np.log(rep[1:] / 1.5), [2.5, 97.5])
        return (hi - lo) / 2

    own = half_width(steady_gamma(logs, alpha, k=1))
    pooled = half_width(steady_gamma(logs, alpha, k=1, clock_sd=sd, clock_df=400))
    se = sd / 2  # 4 runs
    assert own == pytest.approx(3.182 * se, rel=0.1)   # t with 3 degrees of freedom
    assert pooled == pytest.approx(1.966 * se, rel=0.1)  # t with 400: the same spread, a narrower interval
    assert steady_gamma(logs, alpha, k=1, clock_sd=2 * sd, clock_df=400)[0] == pytest.approx(
        steady_gamma(logs, alpha, k=1)[0])  # the estimate itself does not change
    one = steady_gamma(logs[:1], alpha, k=1, clock_sd=sd, clock_df=400)
    assert np.isfinite(one).all()  # one run borrows the pooled spread
    for sd_, df_ in ((float("nan"), 0), (float("nan"), float("nan")), (None, None)):  # no pooled spread: its own
        assert np.array_equal(steady_gamma(logs, alpha, k=1, clock_sd=sd_, clock_df=df_), steady_gamma(logs, alpha, k=1))


def test_predicted_speedup_with_a_measured_verification_cost():
    # Leviathan's Eq. 1 at alpha 0.5, k 2: (1 - 0.125) / 0.5 = 1.75 tokens per target forward
    assert abs(predicted_gamma(0.5, 0.1, 2) - 1.75 / 1.2) < 1e-12
    assert predicted_gamma(0.5, 0.1, 2, verify=1.0) == predicted_gamma(0.5, 0.1, 2)
    assert abs(predicted_gamma(0.5, 0.1, 2, verify=1.3) - 1.75 / 1.5) < 1e-12


def test_cost_ratio_and_verify_cost_time_the_runner(tiny_target, tiny_draft):
    cost = cost_ratio(tiny_target, tiny_draft, prompt_len=8, n_tokens=4, repeats=1)
    assert cost["c"] == cost["draft_ms"] / cost["target_ms"] and cost["target_ms"] > 0
    v = verify_cost(tiny_target, 3, prompt_len=8, n_calls=4, repeats=1)
    assert 0 < v < 50  # a ratio of two forward times, not seconds or milliseconds


def test_verify_cost_brackets_each_wide_timing_so_a_drift_cancels(monkeypatch):
    """A machine slowing down linearly, on which a (k + 1)-token forward costs exactly 1.5
    one-token forwards: bracketing gives 1.5; timing every wide forward first would not."""
    clock = iter(range(1000))

    def drifting(model, prompt_len, n_calls, width=1, fast=True):
        speed = 1.0 + 0.1 * next(clock)  # each call 10% slower than the last
        return speed * (1.5 if width > 1 else 1.0)

    monkeypatch.setattr(E, "_forward_time", drifting)
    assert verify_cost(None, 3, repeats=5) == pytest.approx(1.5)
    clock = iter(range(1000))
    blocks = E._median_time(None, 5, prompt_len=64, n_calls=16, width=4) / E._median_time(None, 5, prompt_len=64, n_calls=16)
    assert blocks < 1.4  # the earlier measurement: the one-token block ran later, on a slower machine


def test_compare_draft_with_its_own_draft_tau(tiny_target, tiny_draft, samples):
    p1 = E.target_distributions(tiny_target, samples, 1.0, pad=3)
    same = E.compare_draft(p1, tiny_draft, 1.0, pad=3)
    assert E.compare_draft(p1, tiny_draft, 1.0, pad=3, draft_tau=1.0)["alpha"] == pytest.approx(same["alpha"])
    hot = E.compare_draft(p1, tiny_draft, 1.0, pad=3, draft_tau=2.5)
    assert hot["entropy_q"] > same["entropy_q"] and hot["entropy_p"] == pytest.approx(same["entropy_p"])
    twin = copy.deepcopy(tiny_target)  # a twin is best at tau_q = tau and loses overlap away from it
    assert E.compare_draft(p1, twin, 1.0, pad=3, draft_tau=1.0)["alpha"] == pytest.approx(1.0, abs=1e-5)
    assert E.expected_alpha(tiny_target, twin, samples, 1.0, pad=3, draft_tau=0.5) < 0.99
    with pytest.raises(ValueError, match="draft_tau"):
        E.compare_draft(p1, tiny_draft, 1.0, pad=3, draft_tau=-1.0)


def test_notebook_01s_sentence_names_the_direction_of_alpha_its_peak_and_the_demo():
    from tcsd_utils.evaluate import describe_temperature_effect
    from tcsd_utils.speculative import DecodeStats

    spec = DecodeStats(new_tokens=40, drafted=30, accepted=12, time_total=2.0)
    plain = DecodeStats(new_tokens=40, time_total=4.0)
    text = describe_temperature_effect(16, [0.0, 0.5, 1.0], [0.5, 1.0, 2.0], [0.9, 0.8, 0.6], [0.30, 0.35, 0.20],
                                       "cut draft", 1.0, 2, spec, plain)
    assert text.startswith("On 16 instruction prompts, raising τ from 0 to 1 raised the target's entropy H(p) "
                           "from 0.50 to 2.00 nats and lowered its top-10 mass from 0.90 to 0.60.")
    assert "The cut draft's expected acceptance α = Σ min(p, q) fell from 0.300 at τ = 0 to 0.200 at τ = 1 " \
           "(peak 0.350 at τ = 0.5)." in text
    assert text.endswith("In the demo at τ = 1 with k = 2, it had 12 of 30 draft tokens accepted (α = 0.40), and "
                         "speculative decoding ran at 20.0 tokens/s against 10.0 for the target alone (2.00x).")
    rising = describe_temperature_effect(16, [0.0, 1.0], [0.5, 2.0], [0.9, 0.6], [0.2, 0.3], "d", 1.0, 2, spec, plain)
    assert "rose from 0.200 at τ = 0 to 0.300 at τ = 1. In the demo" in rising  # no peak inside the range
