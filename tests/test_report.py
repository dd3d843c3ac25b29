"""The claims' rules on synthetic results tables whose answers are known, and report.md.

Each rule must say ``agree`` on a table with the paper's effect, ``disagree`` on a table
against it, and, on tables of pure noise with no effect at all, ``inconclusive`` or
``disagree`` at least 95% of the time (benchmarks/null_rules.py runs 2000 draws per rule;
the tests run fewer, with fixed seeds).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tcsd_utils.profiles import Settings
from tcsd_utils.rules import CHECKS, Estimates, INCONCLUSIVE, check_f1_gamma, check_f3, check_f4, check_f5, claims, u_shape
from tcsd_utils import report, stats

S = Settings(kd_taus=(0.0, 0.5, 1.0), decode_taus=(0.0, 0.5, 1.0, 1.5, 2.0), mix={0.5: 1, 1.5: 1},
             mix_baseline=1.0, ood_taus=(1.0,))
CLAIMS = ["F1 (alpha)", "F1 (gamma)", "F2", "F3", "F4", "F5"]


def make_table(alpha, gamma=None, ood_gamma=None, mix_gain=0.0, se=0.0, rng=None):
    """Rows like `Study.results`; ``alpha(mode, tau_kd, tau)`` gives expected alpha, ``gamma``
    defaults to 1 + alpha; ``ood_gamma(tau)`` fills the math rows; mixed drafts get
    ``(1 + mix_gain)`` times the single-temperature gamma. With ``se`` every value gets
    normal noise of that size (from ``rng``) and a 95% interval of +-1.96 se around it."""
    gamma = gamma or (lambda mode, kd, tau: 1 + alpha(mode, kd, tau))
    rows = []

    def noisy(v):
        return v + se * rng.standard_normal() if se else v

    def add(draft, mode, kd, mix, tau, prompt_set, a, g):
        a, g = noisy(a), noisy(g)
        rows.append({"draft": draft, "mode": mode, "tau_kd": kd, "mix": mix, "prompt_set": prompt_set,
                     "in_domain": prompt_set == "instructions", "tau": tau, "k": 1,
                     "alpha_expected": a, "alpha_expected_lo": a - 1.96 * se, "alpha_expected_hi": a + 1.96 * se,
                     "gamma": g, "gamma_lo": g - 1.96 * se, "gamma_hi": g + 1.96 * se})

    for tau in S.decode_taus:
        add("nokd", "none", math.nan, "", tau, "instructions", alpha("none", None, tau), gamma("none", None, tau))
        for mode in ("offline", "online"):
            for kd in S.kd_taus:
                add(f"{mode}_tau{kd}", mode, kd, "", tau, "instructions", alpha(mode, kd, tau), gamma(mode, kd, tau))
            g = gamma(mode, 1.0, tau)
            add(f"{mode}_mix", mode, 1.0, "0.5,1.5", tau, "instructions", alpha(mode, 1.0, tau), g * (1 + mix_gain))
            if ood_gamma:
                add(f"{mode}_tau1", mode, 1.0, "", tau, "math", 0.3, ood_gamma(tau))
        if ood_gamma:
            add("nokd", "none", math.nan, "", tau, "math", 0.2, ood_gamma(tau))
    return pd.DataFrame(rows)


def paper_like(mode, kd, tau):
    """Falls with tau, best on the diagonal, online ahead by more at high tau."""
    base = 0.6 - 0.2 * tau
    if mode == "none":
        return base - 0.2
    return base - 0.1 * abs(kd - tau) + (0.02 + 0.05 * tau if mode == "online" else 0.0)


def against(mode, kd, tau):
    """Rises with tau, best far from the diagonal, offline ahead."""
    return 0.2 + 0.1 * tau + 0.2 * abs((kd or 0.0) - tau) + (0.05 if mode == "offline" else 0.0)


def u_curve(tau):
    return 1.2 - 0.8 * tau + 0.35 * tau ** 2


def flat(mode, kd, tau):
    return 0.3


def verdicts(table, n_boot=400):
    return {c: r["verdict"] for c, r in claims(table, S, n_boot=n_boot).items()}


def test_a_table_shaped_like_the_paper_agrees_on_every_claim():
    table = make_table(paper_like, ood_gamma=u_curve, mix_gain=0.15, se=0.003, rng=np.random.default_rng(0))
    assert verdicts(table) == dict.fromkeys(CLAIMS, "agree")
    f5 = claims(table, S, n_boot=400)["F5"]
    assert "paper 12-20%" in f5["measured"] and 13 < f5["effect"][0] < 17 and f5["effect"][1] > 0


def test_a_table_against_the_paper_disagrees_on_every_claim():
    cap = make_table(against, ood_gamma=lambda tau: 1.5 + 0.1 * tau - 0.3 * tau ** 2, mix_gain=-0.05,
                     se=0.003, rng=np.random.default_rng(1))
    assert verdicts(cap) == dict.fromkeys(CLAIMS, "disagree")
    # a curve that only rises (no falling arm) is clearly not a U either
    rising = make_table(against, ood_gamma=lambda tau: 0.8 + 0.1 * tau + 0.1 * tau ** 2, se=0.003,
                        rng=np.random.default_rng(2))
    assert check_f4(rising, S)["verdict"] == "disagree"


def test_the_same_effects_drowned_in_noise_are_inconclusive_and_name_what_would_settle_them():
    table = make_table(lambda m, kd, tau: 0.3 + 0.01 * paper_like(m, kd, tau), ood_gamma=lambda t: 1 + 0.01 * u_curve(t),
                       mix_gain=0.0, se=0.05, rng=np.random.default_rng(3))
    results = claims(table, S, n_boot=400)
    for claim in ("F1 (gamma)", "F2", "F3", "F4"):
        assert results[claim]["verdict"] == INCONCLUSIVE, claim
        assert results[claim]["settle"], claim
    assert "To settle it:" in report.claims_table(results).set_index("claim").loc["F2", "this run"]


def test_partly_when_the_effect_is_real_but_smaller_or_not_for_every_draft():
    rng = np.random.default_rng(4)
    small_gain = make_table(paper_like, ood_gamma=u_curve, mix_gain=0.05, se=0.003, rng=rng)
    assert check_f5(small_gain, S)["verdict"] == "partly"
    # the no-KD draft gets faster with tau: F1 holds on average, not for every draft
    small_gain.loc[small_gain["mode"] == "none", "gamma"] = 1 + 0.3 * small_gain.loc[small_gain["mode"] == "none", "tau"]
    f1 = check_f1_gamma(small_gain, S)
    assert f1["verdict"] == "partly" and "nokd" in f1["measured"]
    # online ahead by the same amount at every tau: the lead is shown, its growth is not
    even = make_table(lambda m, kd, tau: paper_like(m, kd, tau) - (0.05 * tau if m == "online" else 0),
                      se=0.003, rng=rng)
    assert check_f3(even, S)["verdict"] == "partly"


@pytest.mark.parametrize("claim", CLAIMS)
def test_on_noise_with_no_effect_a_rule_says_inconclusive_or_disagree_at_least_95_percent(claim):
    """The null of the independent audit: every cell the same value plus noise."""
    rng = np.random.default_rng(100 + CLAIMS.index(claim))
    check = CHECKS[claim]
    draws, bad = 400, 0
    for _ in range(draws):
        table = make_table(flat, gamma=lambda m, kd, tau: 1.0, ood_gamma=lambda tau: 1.0, se=0.02, rng=rng)
        verdict = check(table, S, Estimates(table, n_boot=300, seed=int(rng.integers(1 << 30))))["verdict"]
        bad += verdict in ("agree", "partly")
    assert bad / draws <= 0.05, f"{claim}: agree or partly on {bad} of {draws} null tables"


def test_f4_on_curves_that_only_rise_never_agrees():
    rng = np.random.default_rng(7)
    bad = 0
    for _ in range(120):
        table = make_table(flat, ood_gamma=lambda tau: 0.9 + 0.1 * tau, se=0.02, rng=rng)
        bad += check_f4(table, S, Estimates(table, n_boot=300, seed=int(rng.integers(1 << 30))))[
            "verdict"] in ("agree", "partly")
    assert bad <= 6


def test_missing_rows_are_not_measured_and_u_shape_reads_the_parabola():
    table = make_table(paper_like)  # no out-of-domain rows
    assert check_f4(table, S)["verdict"] == "not measured"
    assert all(r["verdict"] == "not measured" for r in claims(table.iloc[:0], S).values())
    rng = np.random.default_rng(0)

    def reps(values):  # taus x replicates, a little noise
        return np.asarray(values, float)[:, None] + np.hstack([np.zeros((len(values), 1)),
                                                               0.005 * rng.standard_normal((len(values), 200))])
    assert u_shape([0, 1, 2], reps([1.0, 0.8, 1.0])) == "U"
    assert u_shape([0, 1, 2], reps([1.0, 1.2, 1.0])) == "not U"   # a cap
    assert u_shape([0, 1, 2, 3], reps([1.0, 0.7, 0.45, 0.25])) == "not U"  # only falls
    assert u_shape([0, 1, 2], reps([1.0, 0.999, 1.0])) == "unresolved"  # within the noise


def test_replicates_from_per_prompt_columns_keep_differences_paired():
    """Two drafts measured on the same prompts: their difference is far surer than either."""
    rng = np.random.default_rng(0)
    hard = rng.uniform(0.1, 0.6, 32)  # prompts differ a lot
    rows = [{"draft": d, "prompt_set": "instructions", "k": 1, "alpha_expected": float((hard + shift).mean()),
             "alpha_prompts": list(hard + shift), "positions_prompts": [10] * 32}
            for d, shift in (("a", 0.0), ("b", 0.02))]
    est = Estimates(pd.DataFrame(rows), n_boot=500)
    diff = stats.interval(est.alpha(1) - est.alpha(0))
    single = stats.interval(est.alpha(0))
    assert diff[0] == pytest.approx(0.02) and diff[1] > 0.019 and diff[2] < 0.021
    assert single[2] - single[1] > 0.05


def test_write_report_states_every_claim_its_rule_and_the_paper_beside(tmp_path):
    class FakeStudy:
        profile, settings, out = "cpu", S, tmp_path

        def results(self):
            return make_table(paper_like, ood_gamma=u_curve, mix_gain=0.15, se=0.003, rng=np.random.default_rng(0))

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "machine.json").write_text('{"cpu": "Test CPU", "cores": 2, "threads": 2, '
                                                    '"torch": "2.13.0", "flags": ["avx2"], "dtype": "bfloat16"}')
    for name, kd in (("nokd", {"mode": "lm"}), ("offline_tau0", {"mode": "offline", "precision": "float32"})):
        (tmp_path / "drafts" / name).mkdir(parents=True)
        (tmp_path / "drafts" / name / "config.json").write_text(json.dumps({"kd": kd}))
    text = report.write_report(FakeStudy()).read_text()
    assert "- the drafts trained in float32 (`KDConfig.precision`" in text  # one recorded none: float32
    for claim in CLAIMS:
        assert f"| {claim} |" in text and f"- {claim}: " in text
    assert text.count("**agree**") == len(CLAIMS)
    assert "Test CPU, 2 cores, 2 torch threads" in text and "The paper beside this run" in text
    assert "flags avx2; the models in bfloat16 (`models.default_dtype`)" in text
    assert "2.23x / 1.72x / 1.35x" in text and "| 12-20% |" not in text.split("The paper beside")[0]
    table = report.claims_table(claims(FakeStudy().results(), S, n_boot=200))
    assert list(table.columns) == ["claim", "paper", "this run", "verdict"]


def test_the_report_says_when_drafts_trained_in_two_precisions(tmp_path):
    for name, precision in (("a", "bfloat16"), ("b", "float32"), ("c", "bfloat16")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"kd": {"precision": precision}}))
    line, = report.precision_line(sorted(tmp_path.glob("*/config.json")))
    assert line.startswith("- the drafts trained in bfloat16 (2 drafts), float32 (1 draft)")
    assert report.precision_line([]) == []


def test_report_embeds_each_claims_png_and_says_why_one_is_missing(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "03_gamma_heatmap.png").write_bytes(b"\x89PNG")
    (figures / "03_gamma_heatmap.html").write_text("<html>")
    (figures / "04_u_curve_gamma.html").write_text("<html>")  # HTML only: no PNG was made
    text = "\n".join(report.figure_lines(figures))
    assert "![F2: " in text and "(figures/03_gamma_heatmap.png)" in text
    assert "No PNG for `figures/04_u_curve_gamma.html` (F4)" in text and "chromium" in text
    assert "F1" not in text  # neither file: nothing to show or explain
    assert report.figure_lines(tmp_path / "nowhere") == []


def test_timing_notes_warn_when_the_load_exceeded_the_cores():
    table = pd.DataFrame({"load_before": [0.5, 3.1], "load_after": [0.7, 2.5]})
    lines = report.timing_notes(table, {"cpu": "X", "cores": 2, "threads": 2, "torch": "t", "flags": []})
    assert "Warning: the load exceeded the 2 cores in 1 cells" in lines[-1]
    assert "Warning" not in " ".join(report.timing_notes(table.iloc[:1], {"cores": 2}))
    table["clock_sd"], table["clock_df"] = 0.0241, 78
    assert "pooled over the timed cells: 0.024 with 78 degrees of freedom" in " ".join(report.timing_notes(table, None))


def test_compare_runs_puts_verdicts_side_by_side_and_ignores_undecided_ones():
    a = {"F2": {"verdict": "agree", "effect": (0.1, 0.05, 0.15)}, "F3": {"verdict": "agree"}}
    b = {"F2": {"verdict": INCONCLUSIVE, "effect": (0.01, -0.05, 0.07)}, "F3": {"verdict": "disagree"}}
    table = report.compare_runs(("cpu", a), ("cpu-seed1", b)).set_index("claim")
    assert table.loc["F2", "same decided verdict"] == "yes"
    assert table.loc["F3", "same decided verdict"] == "no"
    assert table.loc["F2", "cpu effect"] == "+0.100 [+0.050, +0.150]"
    assert table.loc["F1 (alpha)", "cpu verdict"] == "not measured"


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


def test_verdict_line_prints_the_claim_the_paper_this_run_and_the_verdict():
    from tcsd_utils.rules import PAPER, verdict_line

    agreed = {"measured": "gamma falls by 0.20 [0.10, 0.30]", "verdict": "agree", "settle": None}
    assert verdict_line("F1 (gamma)", agreed) == (f"F1 (gamma) ({PAPER['F1 (gamma)']})\n"
                                                  "this run: gamma falls by 0.20 [0.10, 0.30].\nverdict: agree")
    assert verdict_line("F5", {"measured": "x", "verdict": "agree", "settle": ""}).endswith("\nverdict: agree")
    assert verdict_line("F5", {"measured": "x", "verdict": "agree"}).endswith("\nverdict: agree")
    unsettled = {"measured": "0.01 [-0.02, 0.04]", "verdict": INCONCLUSIVE, "settle": "about 9x the prompts"}
    assert verdict_line("F2", unsettled).splitlines()[-1] == (
        "verdict: inconclusive at this scale (to settle it: about 9x the prompts)")
    # on every rule's own result: three lines, the claim first, the verdict last
    table = make_table(paper_like, ood_gamma=u_curve, mix_gain=0.15, se=0.003, rng=np.random.default_rng(0))
    for claim, r in claims(table, S, n_boot=200).items():
        first, measured, verdict = verdict_line(claim, r).split("\n")
        assert first == f"{claim} ({PAPER[claim]})" and measured == f"this run: {r['measured']}."
        assert verdict == f"verdict: {r['verdict']}" + (f" (to settle it: {r['settle']})" if r.get("settle") else "")
