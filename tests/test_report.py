"""The claims checks on synthetic results tables whose answers are known, and report.md."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tcsd_utils import report
from tcsd_utils.stages import Settings

S = Settings(kd_taus=(0.0, 0.5, 1.0), decode_taus=(0.0, 0.5, 1.0, 1.5, 2.0), mix={0.5: 1, 1.5: 1},
             mix_baseline=1.0, ood_taus=(1.0,))


def make_table(alpha, gamma=None, ood_gamma=None, mix_gain=0.0):
    """Rows like `Study.results`; ``alpha(mode, tau_kd, tau)`` gives expected alpha, ``gamma``
    defaults to 1 + alpha; ``ood_gamma(tau)`` fills the math rows; mixed drafts get
    ``(1 + mix_gain)`` times the single-temperature gamma."""
    gamma = gamma or (lambda mode, kd, tau: 1 + alpha(mode, kd, tau))
    rows = []

    def add(draft, mode, kd, mix, tau, prompt_set, a, g):
        rows.append({"draft": draft, "mode": mode, "tau_kd": kd, "mix": mix, "prompt_set": prompt_set,
                     "in_domain": prompt_set == "instructions", "tau": tau, "alpha_expected": a, "gamma": g})

    for tau in S.decode_taus:
        add("nokd", "none", math.nan, "", tau, "instructions", alpha("none", None, tau), gamma("none", None, tau))
        for mode in ("offline", "online"):
            for kd in S.kd_taus:
                add(f"{mode}_tau{kd}", mode, kd, "", tau, "instructions", alpha(mode, kd, tau), gamma(mode, kd, tau))
            g = gamma(mode, 1.0, tau)
            add(f"{mode}_mix", mode, 1.0, "0.5,1.5", tau, "instructions", alpha(mode, 1.0, tau), g * (1 + mix_gain))
            if ood_gamma:
                add(f"{mode}_tau1", mode, 1.0, "", tau, "math", 0.3, ood_gamma(tau))
    return pd.DataFrame(rows)


def paper_like(mode, kd, tau):
    """Falls with tau, best on the diagonal, online ahead by more at high tau."""
    base = 0.6 - 0.2 * tau
    if mode == "none":
        return base - 0.2
    return base - 0.1 * abs(kd - tau) + (0.02 + 0.05 * tau if mode == "online" else 0.0)


def test_a_table_shaped_like_the_paper_agrees_on_every_claim():
    table = make_table(paper_like, ood_gamma=lambda tau: 1.2 - 0.8 * tau + 0.35 * tau ** 2, mix_gain=0.15)
    verdicts = {c: r["verdict"] for c, r in report.claims(table, S).items()}
    assert verdicts == {"F1": "agree", "F2": "agree", "F3": "agree", "F4": "agree", "F5": "agree"}
    assert "15.0%" in report.claims(table, S)["F5"]["measured"]


def test_a_table_against_the_paper_disagrees():
    def against(mode, kd, tau):  # rises with tau, best far from the diagonal, offline ahead
        return 0.2 + 0.1 * tau + 0.2 * abs((kd or 0.0) - tau) + (0.05 if mode == "offline" else 0.0)

    table = make_table(against, ood_gamma=lambda tau: 1.5 - 0.2 * tau, mix_gain=-0.05)
    verdicts = {c: r["verdict"] for c, r in report.claims(table, S).items()}
    assert verdicts == {"F1": "disagree", "F2": "disagree", "F3": "disagree", "F4": "disagree", "F5": "disagree"}


def test_small_gains_and_some_curves_are_partly():
    table = make_table(paper_like, ood_gamma=lambda tau: 1.2 - 0.8 * tau + 0.35 * tau ** 2, mix_gain=0.05)
    assert report.check_f5(table, S)["verdict"] == "partly"
    # no KD gets faster with tau: F1 holds for 4 of 5 drafts
    table.loc[table["mode"] == "none", "gamma"] = 1 + 0.1 * table.loc[table["mode"] == "none", "tau"]
    f1 = report.check_f1(table, S)
    assert f1["verdict"] == "partly" and "nokd" in f1["measured"]


def test_missing_rows_are_not_measured_and_u_shape_needs_an_inner_minimum():
    table = make_table(paper_like)  # no out-of-domain rows
    assert report.check_f4(table, S)["verdict"] == "not measured"
    assert all(r["verdict"] == "not measured" for r in report.claims(table.iloc[:0], S).values())
    assert report.u_shape([0, 1, 2], [1.0, 0.8, 1.0], 0.02) == (True, 1.0)
    assert report.u_shape([0, 1, 2], [1.0, 0.9, 0.8], 0.02) == (False, 2.0)
    assert report.u_shape([0, 1, 2], [1.0, 0.99, 1.0], 0.02)[0] is False  # within the margin


def test_write_report_states_every_claim_with_its_rule(tmp_path):
    class FakeStudy:
        profile, settings, out = "cpu", S, tmp_path

        def results(self):
            return make_table(paper_like, ood_gamma=lambda tau: 1.2 - 0.8 * tau + 0.35 * tau ** 2, mix_gain=0.15)

    text = report.write_report(FakeStudy()).read_text()
    for claim in ("F1", "F2", "F3", "F4", "F5"):
        assert f"| {claim} |" in text and f"- {claim}: Rule:" in text
    assert text.count("**agree**") == 5
    table = report.claims_table(report.claims(FakeStudy().results(), S))
    assert list(table.columns) == ["claim", "paper", "this run", "verdict"]


def test_draft_regime_states_the_aligned_draft_against_its_target():
    rows = []
    for draft, mode, tau_kd, alpha0, alpha1 in [("nokd", "none", float("nan"), 0.10, 0.30),
                                                ("offline_tau0", "offline", 0.0, 0.62, 0.3),
                                                ("online_tau0", "online", 0.0, 0.55, 0.3),
                                                ("online_tau1", "online", 1.0, 0.2, 0.45)]:
        for tau, a in ((0.0, alpha0), (1.0, alpha1)):
            rows.append({"draft": draft, "mode": mode, "tau_kd": tau_kd, "mix": "", "in_domain": True,
                         "tau": tau, "alpha_expected": a})
    lines = report.draft_regime(pd.DataFrame(rows))
    assert lines[0].startswith("at tau 0, aligned KD (offline_tau0) has expected alpha 0.620: meets the target 0.60")
    assert lines[0].endswith("no KD 0.100 (at most half of it)")
    assert "aligned KD (online_tau1) has expected alpha 0.450: misses the target 0.50" in lines[1]
    assert "no KD 0.300 (more than half of it)" in lines[1]
