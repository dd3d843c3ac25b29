"""The cached stages of a study, end to end on a tiny local pair (no hub, seconds)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tcsd_utils.profiles import PROFILES, SETTINGS, KDConfig, grid_names, kd_name, trained_as
from tcsd_utils.rules import Estimates
from tcsd_utils.stats import interval
from tcsd_utils.study import Study
from tcsd_utils.timing import timing_thread_count
from tcsd_utils import distill as D
from tcsd_utils import stats


@pytest.fixture()
def study(tmp_path, tiny_pair_dir):
    return Study("smoke", root=tmp_path, target=str(tiny_pair_dir / "target"), train_set="instructions",
                 ood_set="math", n_train_prompts=8,
                 n_eval_prompts=4, new_tokens=4, corpus_chars=20_000,
                 draft_shape={"n_layers": 1, "hidden_size": 16, "n_heads": 2, "intermediate_size": 32},
                 nokd=KDConfig(mode="lm", steps=3, batch_size=2, seq_len=16),
                 offline=KDConfig(mode="offline", steps=3, batch_size=2),
                 online=KDConfig(mode="online", steps=2, batch_size=2, max_new_tokens=3))


def test_every_profile_has_settings():

    assert set(SETTINGS) == set(PROFILES) == {"smoke", "cpu", "gpu", "paper", "paper-t5"}
    with pytest.raises(ValueError, match="unknown profile"):
        Study("laptop")


def test_stages_write_artifacts_beside_their_configs_and_are_reused(study, monkeypatch):
    train, held_out = study.samples(0.5, "train"), study.samples(0.5, "test")
    assert len(train) == 8 and len(held_out) == 4
    assert not set(train["prompt_id"]) & set(held_out["prompt_id"])  # held-out prompts are unseen
    off = study.kd_draft("offline", 0.5)
    on = study.kd_draft("online", 0.5)
    assert off.config.vocab_size == on.config.vocab_size == study.target.config.vocab_size
    for name in ("nokd", "offline_tau0p5", "online_tau0p5"):
        d = study.draft_dir(name)
        assert (d / "model" / "model.safetensors").is_file() and (d / "loss.json").is_file()
        assert json.loads((d / "config.json").read_text())["kd"]["steps"] in (2, 3)
    assert json.loads((study.out / "teacher" / "instructions_train_tau0p5" / "config.json").read_text())["tau"] == 0.5
    # a second study over the same folder trains and samples nothing
    monkeypatch.setattr(D, "_lr", lambda *a: (_ for _ in ()).throw(AssertionError("trained again")))
    again = Study("smoke", root=study.out.parent, **{k: getattr(study.settings, k) for k in
                                                     ("target", "train_set", "n_train_prompts", "n_eval_prompts", "new_tokens",
                                                      "corpus_chars", "draft_shape", "nokd", "offline", "online")})
    again.kd_draft("online", 0.5)
    assert again.samples(0.5, "train")["answer_ids"] == train["answer_ids"]


@pytest.mark.parametrize("sample_dtype", ["bfloat16", "float32"])
def test_teacher_samples_are_drawn_in_the_sampling_dtype_and_held_out_ones_by_the_target(study, monkeypatch,
                                                                                          sample_dtype):
    """Where this CPU samples faster in bfloat16, the teacher samples (and the top logits online
    KD reads) come from a bfloat16 copy of the float32 target; held-out samples, whose
    distributions the study measures, from the target itself. Each set records its dtype."""
    from tcsd_utils.runners import SAMPLE_DTYPE_ENV

    monkeypatch.setenv(SAMPLE_DTYPE_ENV, sample_dtype)
    monkeypatch.setenv("TCSD_DTYPE", "float32")
    study.samples(1.0, "train"), study.samples(1.0, "test")

    def dtype(split):
        return json.loads((study.sample_path(1.0, split) / "config.json").read_text())["dtype"]

    assert study.target.dtype == torch.float32 and study.sampler.dtype == getattr(torch, sample_dtype)
    assert dtype("train") == sample_dtype and dtype("test") == "float32"


def test_a_joined_train_set_samples_its_union_and_holds_out_the_first_sets_test_split(study):
    """The gpu profile's train set: the composed instructions join the train prompts only."""
    study.settings.train_set, study.settings.n_train_prompts = "instructions+composed", 40
    train, held_out = study.samples(0.0, "train"), study.samples(0.0, "test")
    assert (study.out / "teacher" / "instructions+composed_train_tau0" / "config.json").is_file()
    assert any(i.startswith("comp-") for i in train["prompt_id"])  # 9,000 of the 9,334 train prompts
    assert len(held_out) == 4 and all(i.startswith("inst-") for i in held_out["prompt_id"])


def test_online_kd_at_tau_0_on_stored_samples_trains_once_as_offline_kd_at_tau_0(study, monkeypatch):
    """The same loss on the same batches (tests/test_distill.py): one draft, both names, no
    scoring of the tau-0 samples. Any other online draft, or other settings, trains its own."""
    from dataclasses import replace

    s = study.settings
    s.online, s.online_top_k = replace(s.offline, mode="online", source="data"), 5
    assert trained_as(s, "online_tau0") == "offline_tau0"
    assert [trained_as(s, n) for n in ("offline_tau0", "online_tau1", "nokd")] == ["offline_tau0", "online_tau1", "nokd"]
    for change in ({"divergence": "rkl"}, {"steps": s.offline.steps + 1}, {"lr": 2e-3}, {"source": "target"}):
        assert trained_as(replace(s, online=replace(s.online, **change)), "online_tau0") == "online_tau0", change
    assert trained_as(replace(s, online_samples_tau=1.0), "online_tau0") == "online_tau0"
    off = study.kd_draft("offline", 0.0)
    monkeypatch.setattr(D, "_lr", lambda *a: (_ for _ in ()).throw(AssertionError("trained again")))
    on = study.kd_draft("online", 0.0)
    assert study.draft_dir("online_tau0") == study.draft_dir("offline_tau0")
    want = off.state_dict()
    assert all(torch.equal(w, want[k].to(w.dtype)) for k, w in on.state_dict().items()), "not offline KD's weights"
    assert not (study.out / "drafts" / "online_tau0").exists()
    assert study.draft("online_tau0") is study.draft("offline_tau0")  # loaded once for both names
    assert not list((study.out / "teacher").glob("scores_*"))


def test_mixed_drafts_are_named_by_their_weights(study):
    assert kd_name("online", 1.0, {0.5: 1, 1.5: 2}) == "online_tau1_mix0p5x1-1p5x2"
    draft = study.kd_draft("offline", 1.0, {0.0: 1, 1.0: 1})
    assert draft is not None
    cfg = json.loads((study.draft_dir("offline_tau1_mix0x1-1x1") / "config.json").read_text())
    assert cfg["mix"] == {"0.0": 1, "1.0": 1}


LIST_COLUMNS = ["alpha_prompts", "positions_prompts", "log_ratio_runs", "log_step_ratio_runs", "plain_gap_runs"]


def test_evaluation_cells_are_cached_and_form_the_results_table(study, monkeypatch):
    import pandas as pd

    from tcsd_utils import study as study_mod

    s = study.settings
    s.kd_taus, s.decode_taus, s.spec_prompts, s.spec_tokens, s.k = (1.0,), (0.0, 1.0), 2, 4, 2
    names = grid_names(study.settings)
    assert names == ["nokd", "offline_tau1", "online_tau1"]
    cells = study.evaluate(names)
    assert len(cells) == 6 and set(cells["tau"]) == {0.0, 1.0}
    for col in ("alpha_expected", "alpha_empirical", "gamma", "gamma_predicted", "c", "entropy_p", "entropy_q",
                "alpha_expected_lo", "alpha_expected_hi", "gamma_lo", "gamma_hi", "gamma_raw_lo", "gamma_raw_hi",
                "alpha_empirical_lo", "alpha_empirical_hi", "load_before"):
        assert cells[col].notna().all(), col
    assert (cells["alpha_expected_lo"] <= cells["alpha_expected"]).all()
    assert (cells["gamma_lo"] <= cells["gamma"]).all() and (cells["gamma"] <= cells["gamma_hi"]).all()
    assert cells["log_step_ratio_runs"].map(len).eq(2).all()  # 2 prompts x 1 repeat
    for tau, block in cells.groupby("tau"):  # the 3 drafts at a tau were timed as one block
        assert block["timing_block"].nunique() == 1 and block["plain_gap_runs"].map(tuple).nunique() == 1
    assert cells["timing_block"].nunique() == 2
    # gamma's clock spread is pooled over the run's 6 timed cells: 6 x (2 - 1) degrees of freedom
    sd, df = stats.pooled_sd(cells["log_step_ratio_runs"])
    assert cells["clock_df"].eq(df).all() and df == 6 and cells["clock_sd"].eq(sd).all()
    own, own_df = stats.interaction_sd([list(b["log_step_ratio_runs"]) for _, b in cells.groupby("tau")])
    assert own_df == 2 * (3 - 1) * (2 - 1)  # 2 blocks of 3 drafts x 2 prompts
    assert cells["clock_shared_sd"].eq(math.sqrt(max(sd * sd - own * own, 0.0))).all()
    # one definition of gamma's interval: results.csv holds, for every cell, the interval of the
    # replicates the rules behind report.md use (`rules.Estimates`), in whatever order the rows come
    study.results()
    written = pd.read_csv(study.out / "results.csv").set_index(["draft", "tau"])
    shuffled = pd.read_parquet(study.out / "results.parquet").sample(frac=1, random_state=1).reset_index(drop=True)
    est = Estimates(shuffled)
    for i, r in shuffled.iterrows():
        want = written.loc[(r["draft"], r["tau"]), ["gamma", "gamma_lo", "gamma_hi"]].tolist()
        assert list(interval(est.gamma(i))) == pytest.approx(want, rel=1e-9)
    cell = json.loads((study.out / "eval" / "instructions" / "tau1" / "online_tau1.json").read_text())
    assert cell["config"]["threads"] == timing_thread_count()  # timed with a core left free
    machine = json.loads((study.out / "eval" / "machine.json").read_text())
    assert machine["dtype"] == str(study.target.dtype).removeprefix("torch.")  # report.md states it
    assert cells["alpha_expected"].between(0, 1).all() and (cells["gamma"] > 0).all()
    assert (study.out / "eval" / "instructions" / "tau1" / "online_tau1.json").is_file()
    # a second pass recomputes nothing; a changed setting recomputes its cells
    monkeypatch.setattr(study_mod, "measure_gamma", lambda *a, **k: (_ for _ in ()).throw(AssertionError("again")))
    assert study.evaluate(names).equals(cells)
    s.k = 1
    with pytest.raises(AssertionError, match="again"):
        study.evaluate(names[:1], taus=[0.0])
    table = study.results()
    assert len(table) == 6
    back = pd.read_parquet(study.out / "results.parquet")
    assert back.drop(columns=LIST_COLUMNS).equals(table.drop(columns=LIST_COLUMNS))
    assert all(list(a) == list(b) for a, b in zip(back["alpha_prompts"], table["alpha_prompts"]))
    assert len(pd.read_csv(study.out / "results.csv")) == 6
    with pytest.raises(ValueError, match="unknown draft"):
        study.draft("online_tau7")
    # c is measured once per draft config: a stale cost.json (another draft) is measured again
    cost = study.out / "eval" / "cost.json"
    assert study.cost() == json.loads(cost.read_text())
    stale = {**json.loads(cost.read_text()), "c": 99.0}
    stale["config"]["draft_shape"] = {"n_layers": 7}
    cost.write_text(json.dumps(stale))
    assert study.cost()["c"] != 99.0


def test_online_kd_on_stored_samples_reads_the_scores_recorded_while_sampling(study, monkeypatch):
    """The cpu profile's online KD: stored teacher samples, the target's top logits recorded
    beside them while sampling (no scoring forward), and a draft cut from the target with a
    restricted head."""
    from dataclasses import replace
    from tcsd_utils import teacher

    s = study.settings
    s.online = replace(s.online, source="data", steps=2, batch_size=2)
    s.online_top_k = 5
    s.draft_shape = {"target_layers": [1], "head_vocab": 12}
    s.nokd = replace(s.nokd, train_embedding=False)
    with monkeypatch.context() as mp:
        mp.setattr(teacher, "head_logits", lambda *a, **k: pytest.fail("a scoring forward"))
        draft = study.kd_draft("online", 0.5)
    assert draft.lm_head.weight.shape[0] == 12 and len(draft.model.layers) == 1
    samples = study.sample_path(0.5)
    assert json.loads((samples / "config.json").read_text())["top_k"] == 5
    assert (samples / "scores.safetensors").is_file()
    assert not (study.out / "teacher" / "scores_online_tau0p5_top5").exists()  # not stored twice
    cfg = json.loads((study.draft_dir("online_tau0p5") / "config.json").read_text())
    assert cfg["target_scores"].startswith("top 5 logits")
    s.online_top_k = None  # a forward per step instead: no scores are stored
    study.kd_draft("online", 1.0)
    assert not (study.out / "teacher" / "scores_online_tau1_top5").exists()
    # its frozen embedding is the target's: the study holds one copy for all its drafts
    s.online = replace(s.online, train_embedding=False)
    held = study.draft("online_tau1")
    assert held.get_input_embeddings().weight is study.target.get_input_embeddings().weight


def test_sample_once_score_many_trains_every_online_draft_on_one_scored_pool(study, monkeypatch):
    """With ``online_samples_tau`` every online draft reads the teacher samples at that tau,
    scored once; each re-tempers the stored logits to its own tau_kd."""
    from dataclasses import replace
    from tcsd_utils import study as study_mod

    s = study.settings
    s.online = replace(s.online, source="data", steps=2, batch_size=2)
    s.online_top_k, s.online_samples_tau = 5, 1.0
    scored = []
    real = study_mod.target_scores
    monkeypatch.setattr(study_mod, "target_scores", lambda *a, **k: scored.append(a[2].name) or real(*a, **k))
    study.kd_draft("online", 0.5)
    study.kd_draft("online", 0.0)
    assert scored == ["scores_pool_tau1_top5"] * 2
    # the pool is the samples at tau 1, whose scores were recorded while sampling: no copy
    assert json.loads((study.sample_path(1.0) / "config.json").read_text())["top_k"] == 5
    assert not (study.out / "teacher" / "scores_pool_tau1_top5").exists()
    assert not (study.out / "teacher" / "instructions_train_tau0p5").exists()  # no samples at tau_kd
    for name, tau in (("online_tau0p5", 0.5), ("online_tau0", 0.0)):
        cfg = json.loads((study.draft_dir(name) / "config.json").read_text())
        assert cfg["kd"]["tau_kd"] == tau and cfg["sequences"] == "teacher samples at tau [1.0]"


def test_held_out_alpha_on_new_problems_and_on_templates_never_seen_is_cached(study, monkeypatch):
    from tcsd_utils import data
    from tcsd_utils import study as study_mod

    assert not study.has_split("unseen")  # the instructions have no held-out templates
    assert set(study.held_out(["nokd"], [0.0])["split"]) == {"test"}
    math_study = Study("smoke", root=study.out.parent / "m", **{k: getattr(study.settings, k) for k in
                       ("target", "n_train_prompts", "n_eval_prompts", "new_tokens", "corpus_chars", "draft_shape",
                        "nokd", "offline", "online")}, train_set="math")
    assert math_study.has_split("unseen")
    unseen = {r["template"] for r in data.load_prompts("math", split="unseen")}
    sampled = set(math_study.samples(0.0, "unseen")["prompt_id"])
    by_id = {r["id"]: r for r in data.load_prompts("math")}
    assert sampled and {by_id[i]["template"] for i in sampled} <= unseen
    assert not {by_id[i]["template"] for i in math_study.samples(0.0, "train")["prompt_id"]} & unseen
    table = math_study.held_out(["nokd", "offline_tau0"], [0.0])
    assert len(table) == 4 and set(table["split"]) == {"test", "unseen"}
    assert (table["alpha_expected_lo"] <= table["alpha_expected"]).all()
    assert (table["alpha_expected"] <= table["alpha_expected_hi"]).all() and table["alpha_expected"].between(0, 1).all()
    monkeypatch.setattr(study_mod, "compare_draft", lambda *a, **k: (_ for _ in ()).throw(AssertionError("again")))
    again = math_study.held_out(["nokd", "offline_tau0"], [0.0])  # read back from heldout/, not measured again
    assert again["alpha_expected"].tolist() == table["alpha_expected"].tolist()
    from tcsd_utils.report import held_out_lines

    lines = held_out_lines(again.to_dict("records"))
    assert len(lines) == 2 and "templates never seen" in lines[1] and "the target 0.50" in lines[1]
