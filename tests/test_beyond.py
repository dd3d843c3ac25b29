"""Notebook 06's measurements on tiny models: the draft's own temperature, the cost of a
step against tau, acceptance per token, and drafts under a temperature schedule."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest

from tcsd_utils.leviathan import predicted_gamma
from tcsd_utils.teacher import teacher_data
from tcsd_utils import beyond as B
from tcsd_utils import evaluate as E
from tcsd_utils.temperature import Anneal

PROMPTS = [[1, 14, 4 + i % 8, 5 + (i * 3) % 7, 15] for i in range(6)]


@pytest.fixture(scope="module")
def samples(tiny_target, tokenizer, tmp_path_factory):
    return teacher_data(tiny_target, tokenizer, PROMPTS, [f"p{i}" for i in range(6)], 1.0,
                          tmp_path_factory.mktemp("s") / "t", max_new_tokens=5)


@pytest.fixture(scope="module")
def target_p(tiny_target, samples):
    return E.target_distributions(tiny_target, samples, 1.0, pad=3)


def test_draft_tau_sweep_adds_the_matched_point_and_a_twin_is_best_there(tiny_target, tiny_draft, target_p):
    rows = B.draft_tau_sweep(target_p, tiny_draft, 1.0, [0.5, 2.0], c=0.1, k=2, pad=3)
    assert [r["draft_tau"] for r in rows] == [0.5, 1.0, 2.0] and [r["matched"] for r in rows] == [False, True, False]
    assert rows[1]["alpha"] == pytest.approx(E.compare_draft(target_p, tiny_draft, 1.0, pad=3)["alpha"])
    for r in rows:
        assert r["alpha_lo"] <= r["alpha"] <= r["alpha_hi"]
        assert r["gamma_predicted"] == pytest.approx(predicted_gamma(r["alpha"], 0.1, 2))
        assert r["gamma_predicted_lo"] <= r["gamma_predicted"] <= r["gamma_predicted_hi"]
    twin = B.draft_tau_sweep(target_p, copy.deepcopy(tiny_target), 1.0, [0.5, 2.0], c=0.1, k=2, pad=3)
    assert twin[1]["alpha"] == pytest.approx(1.0, abs=1e-5) and max(twin[0]["alpha"], twin[2]["alpha"]) < 0.999
    gain = B.draft_tau_gain(twin)
    assert gain["best_draft_tau"] == 1.0 and gain["gain"] == pytest.approx(0.0, abs=1e-6)
    gain = B.draft_tau_gain(rows)
    assert gain["gain"] >= 0 and gain["alpha_best"] == max(r["alpha"] for r in rows)


def test_step_costs_split_a_step_and_slowdown_parts_multiply_back(tiny_target, tiny_draft):
    rows = B.step_costs(tiny_target, tiny_draft, PROMPTS[:2], [0.0, 1.5], k=2, max_new_tokens=6)
    assert [r["tau"] for r in rows] == [0.0, 1.5]
    for r in rows:
        assert 0 < r["ms_verify_per_step"] <= r["ms_target_per_step"] <= r["ms_per_step"]
        assert 1 <= r["tokens_per_step"] <= 3 and 0 <= r["alpha_lo"] <= r["alpha"] <= r["alpha_hi"] <= 1
        assert r["ms_per_token"] == pytest.approx(r["ms_per_step"] / r["tokens_per_step"])
        assert r["gamma"] == pytest.approx(r["plain_ms_per_token"] / r["ms_per_token"])
    parts = B.slowdown_parts(rows)
    assert parts["slowdown"] == pytest.approx(parts["step_cost"] * parts["acceptance"])
    assert parts["slowdown"] == pytest.approx(rows[1]["ms_per_token"] / rows[0]["ms_per_token"])


def test_slowdown_parts_name_the_larger_part():
    def row(tau, step, tokens):
        return {"tau": tau, "ms_per_step": step, "tokens_per_step": tokens, "ms_verify_per_step": 0.1}

    acceptance = B.slowdown_parts([row(0.0, 10.0, 2.0), row(2.0, 10.5, 1.2)])  # fewer tokens per step
    assert acceptance["explained_by"] == "acceptance" and acceptance["slowdown"] == pytest.approx(10.5 / 1.2 / 5)
    cost = B.slowdown_parts([row(0.0, 10.0, 2.0), row(1.0, 15.0, 1.9), row(2.0, 16.0, 1.9)], high=1.0)
    assert cost["explained_by"] == "per-step cost" and cost["high"] == 1.0 and 0.5 < cost["step_share"] <= 1


def test_token_table_lines_up_tokens_and_overlaps(tiny_draft, samples, target_p, tokenizer):
    table = B.token_table(target_p, tiny_draft, 1.0, tokenizer, pad=3, prompt_set="in")
    assert len(table) == sum(len(r["answer_ids"]) for r in samples)
    assert list(table["token_id"]) == [t for r in samples for t in r["answer_ids"]]
    assert list(table["chars"]) == [len(tokenizer.decode([t])) for t in table["token_id"]]
    assert table["overlap"].between(0, 1).all() and table["prompt"].nunique() == len(samples)


def test_acceptance_by_bin_means_and_leaves_out_empty_bins():
    table = pd.DataFrame({"prompt_set": ["a"] * 6 + ["b"] * 2, "prompt": [0, 0, 1, 1, 2, 2, 0, 1],
                          "chars": [1, 1, 2, 5, 5, 5, 1, 2], "overlap": [0.2, 0.4, 0.6, 0.1, 0.3, 0.5, 0.9, 0.7]})
    out = B.acceptance_by_bin(table, "chars", [1, 2, 3, 4, 6])
    a = out[out["prompt_set"] == "a"].set_index("bin")
    assert list(a.index) == ["1-1", "2-2", "4-5"]  # nothing of length 3
    assert a.loc["1-1", "alpha"] == pytest.approx(0.3) and a.loc["4-5", "alpha"] == pytest.approx(0.3)
    assert list(a["positions"]) == [2, 1, 3]
    assert a.loc["4-5", "alpha_lo"] <= 0.3 <= a.loc["4-5", "alpha_hi"]
    assert len(out[out["prompt_set"] == "b"]) == 2


def test_schedule_runs_a_twin_accepts_everything(tiny_target, tiny_draft):
    schedule = Anneal(1.0, 0.3, 6)
    rows = B.schedule_runs(tiny_target, {"twin": copy.deepcopy(tiny_target), "draft": tiny_draft}, PROMPTS[:2],
                           schedule, k=2, max_new_tokens=6)
    assert [r["draft"] for r in rows] == ["twin", "draft"]
    assert rows[0]["alpha"] == pytest.approx(1.0) and rows[0]["tested"] > 0
    assert 0 <= rows[1]["alpha_lo"] <= rows[1]["alpha"] <= rows[1]["alpha_hi"] <= 1
    assert all(r["gamma_raw"] > 0 and not math.isnan(r["gamma_raw"]) for r in rows)


# The sentences notebook 06 prints and gathers at its end, on rows built by hand.


def _gain(tau, best, gain, lo, hi, alpha_best=0.35, alpha_matched=0.3):
    return {"tau": tau, "best_draft_tau": best, "alpha_best": alpha_best, "alpha_matched": alpha_matched,
            "gain": gain, "gain_lo": lo, "gain_hi": hi}


def test_describe_draft_tau_gain_names_where_the_best_lies_and_whether_it_is_resolved():
    gains = [_gain(0.5, 0.5, 0.0, -0.01, 0.01, 0.412, 0.412), _gain(1.0, 1.5, 0.05, 0.02, 0.08)]
    sentence = B.describe_draft_tau_gain(gains)
    assert sentence == ("at τ = 0.5 the best is τ_q = τ itself (expected α 0.412 against 0.412 at τ_q = τ: +0.000 "
                        "[-0.010, +0.010], not resolved (the interval holds 0)); at τ = 1 the best is a hotter draft, "
                        "τ_q = 1.5 (expected α 0.350 against 0.300 at τ_q = τ: +0.050 [+0.020, +0.080], resolved).")
    assert B.describe_draft_tau_gain(pd.DataFrame(gains)) == sentence  # the notebook passes a DataFrame
    colder = B.describe_draft_tau_gain([_gain(1.0, 0.25, -0.04, -0.06, -0.02)])
    assert "a colder draft, τ_q = 0.25" in colder and "-0.040 [-0.060, -0.020], resolved)." in colder
    assert colder.count("; ") == 0 and colder.endswith(".")


def _cost(tau, ms, tokens, verify, speedup, alpha):
    return {"tau": tau, "ms_per_step": ms, "tokens_per_step": tokens, "ms_verify_per_step": verify,
            "gamma": speedup, "alpha": alpha}


def test_describe_slowdown_states_both_parts_and_the_branch_that_explains_the_change():
    rows = [_cost(0.0, 10.0, 2.0, 0.1, 1.5, 0.6), _cost(1.0, 10.2, 1.6, 0.11, 1.2, 0.4),
            _cost(2.0, 10.5, 1.2, 0.12, 0.9, 0.2)]
    sentence = B.describe_slowdown(rows)  # fewer tokens per step at tau 2: acceptance
    assert sentence == ("from τ = 0 to 2 speculative decoding's time per token changed x1.75 (slower; speedup over "
                        "plain decoding 1.50 -> 0.90): a step's cost changed x1.05 (the sampling criterion 0.10 -> "
                        "0.12 ms of a 10.0 -> 10.5 ms step) and the tokens a step commits x0.60 (α 0.60 -> 0.20); on "
                        "this pair the change is explained mostly by acceptance, not by the cost of a step (the "
                        "sampling criterion included).")
    assert B.describe_slowdown(rows, B.slowdown_parts(rows)) == sentence
    between = B.describe_slowdown(rows, B.slowdown_parts(rows, low=0.0, high=1.0))
    assert between.startswith("from τ = 0 to 1 ") and "10.0 -> 10.2 ms step" in between
    cost = B.describe_slowdown([_cost(0.0, 10.0, 1.5, 0.1, 1.1, 0.5), _cost(2.0, 5.0, 1.4, 0.3, 1.3, 0.4)])
    assert "changed x0.54 (faster; speedup over plain decoding 1.10 -> 1.30)" in cost
    assert cost.endswith("explained mostly by per-step cost; of the step's change of -5.0 ms the sampling "
                         "criterion makes +0.20 ms.")


def test_describe_hard_tokens_reads_the_spearman_rows_in_the_order_of_the_prompt_sets():
    def row(name, against, method, r, lo, hi):
        return {"prompt set": name, "against": against, "method": method, "r": r, "lo": lo, "hi": hi,
                "positions": 40}

    corr = pd.DataFrame([row("math", "chars", "spearman", 0.05, -0.1, 0.2),
                         row("math", "chars", "pearson", 0.5, 0.4, 0.6),  # not read: Spearman only
                         row("math", "token_id", "spearman", -0.01, -0.2, 0.15),
                         row("math", "token_id", "pearson", -0.5, -0.6, -0.4),
                         row("instructions", "chars", "spearman", 0.3, 0.1, 0.5),
                         row("instructions", "token_id", "spearman", -0.2, -0.4, -0.05)])
    sentence = B.describe_hard_tokens(corr)
    assert sentence == ("math: longer tokens are accepted no differently (not resolved) (Spearman ρ +0.05 [-0.10, "
                        "+0.20]), rarer ones no differently (not resolved) (ρ against the id -0.01 [-0.20, +0.15]); "
                        "instructions: longer tokens are accepted more (Spearman ρ +0.30 [+0.10, +0.50]), rarer ones "
                        "less (ρ against the id -0.20 [-0.40, -0.05]).")
    assert B.describe_hard_tokens(corr.to_dict("records")) == sentence


def test_describe_schedule_compares_each_modes_mixed_draft_with_its_fixed_one():
    def run(name, alpha, lo, hi, gamma):
        return {"draft": name, "alpha": alpha, "alpha_lo": lo, "alpha_hi": hi, "gamma_raw": gamma}

    rows = [run("offline_tau1", 0.3, 0.25, 0.35, 1.05), run("offline_mix", 0.5, 0.45, 0.55, 1.2),
            run("online_tau1", 0.38, 0.3, 0.46, 1.08), run("online_mix", 0.4, 0.3, 0.5, 1.1)]
    schedule = Anneal(1.0, 0.3, 8)
    pairs = {"offline": ("offline_tau1", "offline_mix"), "online": ("online_tau1", "online_mix")}
    sentence = B.describe_schedule(rows, schedule, pairs, 1.0)
    assert sentence == ("under τ 1 → 0.3 over 8 tokens: offline KD: mixed data α 0.50 [0.45, 0.55] against fixed "
                        "τ_kd 1 0.30 [0.25, 0.35] (apart; raw γ 1.20 against 1.05); online KD: mixed data α 0.40 "
                        "[0.30, 0.50] against fixed τ_kd 1 0.38 [0.30, 0.46] (the intervals overlap: not told apart; "
                        "raw γ 1.10 against 1.08).")
    swapped = B.describe_schedule(rows, 0.7, {"online": pairs["online"]}, 0.5)
    assert swapped.startswith("under 0.7: online KD:") and "against fixed τ_kd 0.5 0.38" in swapped
