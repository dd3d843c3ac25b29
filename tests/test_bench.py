"""The speed benchmark on a tiny pair: every method runs, lengths match, speedups use the faster baseline."""

from __future__ import annotations

from tcsd_utils import cli
from tcsd_utils.cli import _bench_draft, main
from tcsd_utils import bench


def test_bench_runs_every_method_on_equal_lengths(tiny_target, tiny_draft):
    result = bench.run_bench(tiny_target, tiny_draft, [[1, 4, 5], [1, 12, 6]], taus=[0.0, 1.0], k=3,
                             max_new_tokens=6, repeats=2, pad=3, progress=False)
    assert {(r["tau"], r["method"]) for r in result["rows"]} == {(t, m) for t in (0.0, 1.0) for m in bench.METHODS}
    assert {r["new_tokens"] for r in result["rows"]} == {12}  # 2 prompts x 6 tokens, EOS ignored
    for tau in (0.0, 1.0):
        rows = {r["method"]: r for r in result["rows"] if r["tau"] == tau}
        fastest_plain = [max(a, b) for a, b in zip(rows["ours_plain"]["runs"], rows["hf_plain"]["runs"])]
        for r in rows.values():
            assert r["min"] <= r["tokens_per_s"] <= r["max"] and len(r["runs"]) == 2
            paired = sorted(t / b for t, b in zip(r["runs"], fastest_plain))  # within each repeat
            assert abs(r["gamma"] - (paired[0] + paired[1]) / 2) < 1e-9
            assert (r["gamma_min"], r["gamma_max"]) == (paired[0], paired[1])
        spec = rows["ours_speculative"]
        assert 0 <= spec["alpha_drafted"] <= 1 and spec["predicted_gamma"] > 0
        assert spec["bound"] == bench.predicted_gamma(spec["alpha_tested"], result["c"], 3, spec["verify_cost"])
        assert abs(spec["of_bound"] - spec["gamma"] / spec["bound"]) < 1e-12
    assert result["c"] > 0 and result["peak_memory_gb"] > 0
    table = bench.format_table(result)
    assert "hf_assisted" in table and "efficiency" in table and "of bound" in table


def test_transformers_baseline_leaves_the_callers_random_state_alone(tiny_target, tiny_draft):
    import torch

    torch.manual_seed(5)
    before = torch.get_rng_state()
    first = bench._hf_generate(tiny_target, [1, 4, 5], 1.0, 4, seed=3, pad=3, draft=tiny_draft, k=2)
    assert torch.equal(torch.get_rng_state(), before)
    assert bench._hf_generate(tiny_target, [1, 4, 5], 1.0, 4, seed=3, pad=3, draft=tiny_draft, k=2) == first


def test_bench_refuses_an_empty_prompt_set(tiny_target, tiny_draft):
    import pytest

    with pytest.raises(ValueError, match="empty prompt set"):
        bench.run_bench(tiny_target, tiny_draft, [], progress=False)


def test_tcsd_bench_command_prints_the_table(tiny_pair_dir, tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.setattr(cli, "regressions", lambda result: [])  # tiny models: speed is not the point here

    out = tmp_path / "bench.json"
    assert main(["bench", "--target", str(tiny_pair_dir / "target"), "--draft", str(tiny_pair_dir / "draft"),
                 "--taus", "0.5", "--k", "2", "--prompts", "1", "--max-new-tokens", "3", "--repeats", "1",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ours_speculative" in printed and "predicted" in printed
    assert "machine: " in printed and "torch" in printed and "kernels (out|in|tokens)" in printed
    saved = json.loads(out.read_text())
    assert len(saved["rows"]) == 4 and saved["machine"]["cores"] >= 1 and saved["kernels"]
    monkeypatch.setattr(cli, "regressions", lambda result: ["tau=0.5: our plain decoder is 9% slower"])
    assert main(["bench", "--target", str(tiny_pair_dir / "target"), "--draft", str(tiny_pair_dir / "draft"),
                 "--taus", "0.5", "--k", "2", "--prompts", "1", "--max-new-tokens", "3", "--repeats", "1"]) == 1
    assert "REGRESSION: tau=0.5: our plain decoder is 9% slower" in capsys.readouterr().err


def test_tcsd_bench_device_cuda_runs_end_to_end_and_names_what_it_skipped(tiny_pair_dir, tmp_path, capsys,
                                                                           monkeypatch):
    import json

    import torch

    monkeypatch.setattr(cli, "regressions", lambda result: [])
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cuda", "--target", str(tiny_pair_dir / "target"), "--draft",
                 str(tiny_pair_dir / "draft"), "--taus", "1.0", "--k", "1", "--prompts", "1", "--max-new-tokens", "3",
                 "--repeats", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert "ours_speculative" in printed and len(saved["rows"]) == 4
    if torch.cuda.is_available():
        assert saved["device"].startswith("cuda")
    else:
        assert "--device cuda: no CUDA device" in printed and "skipped" in printed and saved["device"] == "cpu"


def test_regression_is_more_than_five_percent_behind_generate():
    from tcsd_utils.bench import regressions

    def result(ours, hf):
        return {"rows": [{"tau": 0.0, "method": "ours_plain", "tokens_per_s": ours},
                         {"tau": 0.0, "method": "hf_plain", "tokens_per_s": hf}]}

    assert regressions(result(96.0, 100.0)) == []
    (msg,) = regressions(result(94.0, 100.0))
    assert "tau=0: our plain decoder 94.0 tok/s is 6% slower than transformers generate() 100.0" in msg


def test_regression_compares_the_plain_decoders_within_each_repeat():
    """The machine's speed drifts between repeats (FINDINGS.md, 2026-12-02 fifth session): the
    medians of 3 repeats can come from different repeats; the ratios of each repeat cannot."""
    from tcsd_utils.bench import regressions

    def result(ours, hf):
        return {"rows": [{"tau": 1.0, "method": "ours_plain", "tokens_per_s": sorted(ours)[1], "runs": ours},
                         {"tau": 1.0, "method": "hf_plain", "tokens_per_s": sorted(hf)[1], "runs": hf}]}

    # medians 30 against 33 (9% slower), but ours was ahead in two of the three repeats: no regression
    assert regressions(result([20.0, 30.0, 40.0], [19.0, 33.0, 39.0])) == []
    # medians equal (30 and 30), but ours was 10% behind in two of three repeats: a regression
    (msg,) = regressions(result([27.0, 30.0, 36.0], [30.0, 28.0, 40.0]))
    assert "tau=1: our plain decoder 30.0 tok/s is 10% slower" in msg and "the median of the repeats' ratios" in msg


def test_bench_auto_k_picks_the_predicted_best_per_temperature(tiny_target, tiny_draft, monkeypatch):
    import copy

    import pytest

    picked, costs = [], {}
    real = bench.best_k

    def spy(a, c, verify):
        picked.append(a)
        return real(a, c, verify=lambda k: costs.setdefault(k, verify(k)))

    monkeypatch.setattr(bench, "best_k", spy)
    twin = copy.deepcopy(tiny_target)  # alpha = 1: the longest draft pays
    result = bench.run_bench(tiny_target, twin, [[1, 4, 5]], taus=[1.0], k="auto", max_new_tokens=6, repeats=1,
                             pad=3, progress=False, methods=("ours_plain", "ours_speculative"))
    assert picked == [1.0] and 1 in costs  # the verification costs were measured, not assumed
    k = real(1.0, result["c"], verify=costs.__getitem__)
    assert {r["k"] for r in result["rows"]} == {k} and result["k"] == "auto"
    spec = next(r for r in result["rows"] if r["method"] == "ours_speculative")
    assert spec["verify_cost"] == costs[k] and result["verify_costs"] == costs  # reported as measured
    assert "verification cost by k (one-token forwards): 1: " in bench.format_table(result)
    with pytest.raises(ValueError, match="k must be"):
        bench.run_bench(tiny_target, tiny_draft, [[1, 4, 5]], k=0, progress=False)


def test_bench_draft_is_a_folder_or_a_study_draft_name(tiny_pair_dir, tmp_path):
    import shutil

    import pytest


    assert _bench_draft(str(tiny_pair_dir / "draft")) == str(tiny_pair_dir / "draft")
    # a study's draft folder (outputs/cpu/drafts/online_tau1: its KD config.json beside model/)
    made = tmp_path / "drafts" / "online_tau1"
    made.mkdir(parents=True)
    (made / "config.json").write_text("{}")
    shutil.copytree(tiny_pair_dir / "draft", made / "model")
    assert _bench_draft(str(made)) == str(made / "model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="neither a model .no config.json. nor a study's draft"):
        _bench_draft(str(tmp_path / "empty"))
    with pytest.raises(SystemExit, match="no draft folder at"):
        _bench_draft(str(tmp_path / "missing" / "draft"))
    with pytest.raises(SystemExit, match="unknown draft 'offline_tau7'.*offline_tau0"):
        _bench_draft("offline_tau7", "smoke", tmp_path)


def test_draft_tau_reaches_our_speculative_decoder_and_the_command(tiny_pair_dir, tiny_target, tiny_draft,
                                                                   monkeypatch, capsys):

    seen = []
    real = bench.speculative_generate
    monkeypatch.setattr(bench, "speculative_generate",
                        lambda *a, **kw: (seen.append(kw["draft_tau"]), real(*a, **kw))[1])
    n, acc = bench._run("ours_speculative", tiny_target, tiny_draft, [1, 4, 5], 1.0, 2, 4, 0, 3, draft_tau=1.5)
    assert n == 4 and seen == [1.5] and acc is not None
    bench._run("ours_speculative", tiny_target, tiny_draft, [1, 4, 5], 1.0, 2, 4, 0, 3)
    assert seen == [1.5, None]  # default: the draft samples at the target's tau

    given = {}

    def fake_run_bench(*args, **kwargs):
        given.update(kwargs)
        return {"c": 0.1, "target_ms": 1.0, "draft_ms": 0.1, "k": 2, "prompts": 1, "max_new_tokens": 3,
                "repeats": 1, "peak_memory_gb": 0.1, "device": "cpu", "draft_tau": kwargs["draft_tau"], "rows": []}

    monkeypatch.setattr(cli, "run_bench", fake_run_bench)
    args = ["bench", "--target", str(tiny_pair_dir / "target"), "--draft", str(tiny_pair_dir / "draft"),
            "--taus", "0.5", "--k", "2", "--prompts", "1", "--max-new-tokens", "3", "--repeats", "1"]
    assert main(args + ["--draft-tau", "1.5"]) == 0
    assert given["draft_tau"] == 1.5 and "our draft samples at tau_q = 1.5" in capsys.readouterr().out
    assert main(args) == 0
    assert given["draft_tau"] is None and "our draft samples at the target's tau" in capsys.readouterr().out


def test_bench_takes_one_draft_per_temperature(tiny_target, tiny_draft, monkeypatch):
    import copy

    import pytest

    other = copy.deepcopy(tiny_draft)
    used = []
    real = bench._run
    monkeypatch.setattr(bench, "_run", lambda method, target, draft, *a, **kw: (
        used.append((a[1], method, draft)), real(method, target, draft, *a, **kw))[1])
    result = bench.run_bench(tiny_target, {0.0: tiny_draft, 1.0: other}, [[1, 4, 5]], taus=[0.0, 1.0], k=2,
                             max_new_tokens=3, repeats=1, pad=3, progress=False)
    assert {(r["tau"], r["method"]) for r in result["rows"]} == {(t, m) for t in (0.0, 1.0) for m in bench.METHODS}
    for tau, draft in ((0.0, tiny_draft), (1.0, other)):
        assert all(d is draft for t, m, d in used if t == tau)  # every method at tau got that tau's draft
    with pytest.raises(ValueError, match="no draft for tau 1.0"):
        bench.run_bench(tiny_target, {0.0: tiny_draft}, [[1, 4, 5]], taus=[0.0, 1.0], progress=False)
    result.update(draft={"0": "offline_tau0", "1": "online_tau1"})
    assert "drafts: tau 0: offline_tau0, tau 1: online_tau1" in bench.format_table(result)


def test_aligned_drafts_are_distilled_at_each_tau_the_better_paradigm_by_the_study(tmp_path):
    import pandas as pd
    import pytest

    from tcsd_utils.cli import _aligned_drafts
    from tcsd_utils.files import output_dir

    with pytest.raises(SystemExit, match="distils no draft at tau 0.7.*KD temperatures: 0, 0.5, 1"):
        _aligned_drafts("cpu", [0.0, 0.7], tmp_path)
    # before the study has measured them: online KD at each tau (tau 0's trains as offline_tau0)
    assert _aligned_drafts("cpu", [0.0, 1.0], tmp_path) == {0.0: "online_tau0", 1.0: "online_tau1"}
    rows = [("offline_tau1", "offline", 1.0, 1.0, 0.41, True, ""), ("online_tau1", "online", 1.0, 1.0, 0.44, True, ""),
            ("offline_tau0", "offline", 0.0, 0.0, 0.64, True, ""), ("online_tau0", "online", 0.0, 0.0, 0.60, True, ""),
            ("online_tau0.5", "online", 0.5, 0.5, 0.50, True, ""), ("offline_tau0.5", "offline", 0.5, 0.5, 0.54, True, ""),
            ("offline_tau0.5", "offline", 0.5, 0.5, 0.90, False, ""),  # out of domain: not the study's choice
            ("online_tau1_mix", "online", 1.0, 1.0, 0.95, True, "mix"),  # data-mixing: not aligned KD alone
            ("offline_tau0", "offline", 0.0, 1.0, 0.99, True, "")]  # another tau_kd
    table = pd.DataFrame(rows, columns=["draft", "mode", "tau_kd", "tau", "alpha_expected", "in_domain", "mix"])
    out = output_dir("cpu", tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "results.parquet")
    assert _aligned_drafts("cpu", [0.0, 0.5, 1.0], tmp_path) == {0.0: "offline_tau0", 0.5: "offline_tau0.5",
                                                               1.0: "online_tau1"}
