"""Notebook 06's measurements on tiny models: the draft's own temperature, the cost of a
step against tau, acceptance per token, and drafts under a temperature schedule."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest

from tcsd_utils.leviathan import predicted_speedup
from tcsd_utils.teacher import teacher_data
from tcsd_utils import beyond as B
from tcsd_utils import distill as D
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
        assert r["gamma_predicted"] == pytest.approx(predicted_speedup(r["alpha"], 0.1, 2))
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
        assert r["speedup"] == pytest.approx(r["plain_ms_per_token"] / r["ms_per_token"])
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
