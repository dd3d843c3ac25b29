"""Knowledge distillation on tiny random models: real measurements, no stubs."""

from __future__ import annotations

import json
import random

import pytest
import torch

from conftest import make_llama
from tcsd_utils.profiles import DIVERGENCES, KDConfig
from tcsd_utils.teacher import general_corpus, mix, target_scores, teacher_data
from tcsd_utils import batching as B
from tcsd_utils import distill as D
from tcsd_utils import evaluate as E
from tcsd_utils import teacher as T
from tcsd_utils.models import make_draft
from tcsd_utils.temperature import probs

_rng = random.Random(0)
PROMPTS = [[1, 14] + [_rng.randrange(4, 14) for _ in range(3)] + [15] for _ in range(96)]  # chat-like
NAMES = [f"p{i}" for i in range(96)]


@pytest.fixture()
def teacher(tokenizer):
    return make_llama(seed=0, scale=8.0)


def fresh_draft(teacher):
    return make_draft(teacher, n_layers=1, hidden_size=16, n_heads=2, intermediate_size=32).float()


def _mean_divergence(teacher, draft, data, tau, kind):
    """The divergence KD optimises, on held-out target samples."""
    from tcsd_utils.batching import head_logits, pack

    ids, mask, r, c, _ = pack([(x["prompt_ids"], x["answer_ids"]) for x in data], 3, "cpu")
    with torch.no_grad():
        return float(D.divergence(head_logits(teacher, ids, mask, r, c), head_logits(draft, ids, mask, r, c),
                                  tau, kind).mean())


def test_teacher_data_is_stored_with_config_and_reused(teacher, tokenizer, tmp_path):
    data = teacher_data(teacher, tokenizer, PROMPTS, NAMES, 0.7, tmp_path / "t", max_new_tokens=6,
                          batch_size=8, seed=1)
    assert len(data) == 96 and set(data.column_names) >= {"prompt_id", "prompt_ids", "answer_ids", "tau"}
    assert all(0 < len(a) <= 6 for a in data["answer_ids"])
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    assert cfg["tau"] == 0.7 and cfg["seed"] == 1 and cfg["prompt_ids"] == NAMES
    assert cfg["batch_size"] == 8 and cfg["dtype"] == str(teacher.dtype).removeprefix("torch.")
    (tmp_path / "t" / "marker").write_text("x")
    again = teacher_data(teacher, tokenizer, PROMPTS, NAMES, 0.7, tmp_path / "t", max_new_tokens=6, batch_size=8,
                         seed=1)
    assert again["answer_ids"] == data["answer_ids"] and (tmp_path / "t" / "marker").exists()  # reused
    # other batches draw other random numbers: those samples are made again, not mistaken for these
    other = teacher_data(teacher, tokenizer, PROMPTS, NAMES, 0.7, tmp_path / "t", max_new_tokens=6, batch_size=32,
                         seed=1)
    assert other["answer_ids"] != data["answer_ids"] and not (tmp_path / "t" / "marker").exists()
    with pytest.raises(ValueError, match="empty prompt set"):
        teacher_data(teacher, tokenizer, [], [], 0.7, tmp_path / "e")


def test_several_samples_per_prompt_at_a_temperature_one_at_greedy(teacher, tokenizer, tmp_path):
    hot = teacher_data(teacher, tokenizer, PROMPTS[:8], NAMES[:8], 1.0, tmp_path / "h", max_new_tokens=6,
                         samples_per_prompt=3)
    assert len(hot) == 24 and sorted(hot["prompt_id"]) == sorted(NAMES[:8] * 3)
    by_prompt = {}
    for row in hot:
        by_prompt.setdefault(row["prompt_id"], []).append(tuple(row["answer_ids"]))
    assert any(len(set(answers)) > 1 for answers in by_prompt.values())  # the copies are sampled apart
    assert json.loads((tmp_path / "h" / "config.json").read_text())["samples_per_prompt"] == 3
    cold = teacher_data(teacher, tokenizer, PROMPTS[:8], NAMES[:8], 0.0, tmp_path / "c", max_new_tokens=6,
                          samples_per_prompt=3)
    assert len(cold) == 8 and "samples_per_prompt" not in json.loads((tmp_path / "c" / "config.json").read_text())
    with pytest.raises(ValueError, match="samples_per_prompt must be a whole number"):
        teacher_data(teacher, tokenizer, PROMPTS[:8], NAMES[:8], 1.0, tmp_path / "x", samples_per_prompt=0)


def test_greedy_teacher_data_is_the_greedy_continuation(teacher, tokenizer, tmp_path):
    from tcsd_utils.speculative import autoregressive_generate

    data = teacher_data(teacher, tokenizer, PROMPTS[:4], NAMES[:4], 0.0, tmp_path / "g", max_new_tokens=5)
    for row in data:
        ref = autoregressive_generate(teacher, row["prompt_ids"], 5, tau=0).tokens
        assert row["answer_ids"] == ref


@pytest.mark.parametrize("mode, tau, kind", [("offline", 1.0, "fkl"), ("online", 1.0, "fkl"),
                                             ("online-draft", 1.0, "fkl"), ("online-data", 0.5, "fkl"),
                                             ("online", 0.0, "fkl"), ("online", 1.0, "tvd"),
                                             ("online", 0.5, "rkl"), ("online", 1.0, "jsd"),
                                             ("offline", 0.0, "fkl")])
def test_kd_lowers_divergence_and_raises_expected_alpha(teacher, tokenizer, tmp_path, mode, tau, kind):
    held_out = teacher_data(teacher, tokenizer, PROMPTS[64:], NAMES[64:], tau, tmp_path / "eval",
                              max_new_tokens=8)
    train = teacher_data(teacher, tokenizer, PROMPTS[:64], NAMES[:64], tau, tmp_path / "train",
                           max_new_tokens=8)
    draft = fresh_draft(teacher)
    before_kl = _mean_divergence(teacher, draft, held_out, tau, kind)
    before_alpha = E.expected_alpha(teacher, draft, held_out, tau, pad=3)
    mode, _, source = mode.partition("-")
    cfg = KDConfig(mode=mode, tau_kd=tau, divergence=kind, steps=60, batch_size=8, lr=3e-3, warmup=5,
                     max_new_tokens=8, source=source or "target")
    trained = D.train_draft(tmp_path / "draft", cfg, draft, tokenizer, target=teacher, data=train,
                            prompts=PROMPTS[:64], progress=False)
    after_kl = _mean_divergence(teacher, trained, held_out, tau, kind)
    after_alpha = E.expected_alpha(teacher, trained, held_out, tau, pad=3)
    # measured once: divergence falls by 40-65%, alpha rises by 0.035-0.22 across these cases
    assert after_kl < 0.8 * before_kl, (before_kl, after_kl)
    assert after_alpha > before_alpha + 0.02, (before_alpha, after_alpha)
    history = json.loads((tmp_path / "draft" / "loss.json").read_text())
    assert len(history) == 60 and history[-1]["loss"] < history[0]["loss"]


def test_offline_kd_masks_prompt_tokens():
    ids, mask, rows, cols, labels = B.pack([([1, 2, 3], [7, 8]), ([4], [9, 10, 11])], 0, "cpu")
    # only answer tokens are predicted: from the last prompt position onwards
    assert labels.tolist() == [7, 8, 9, 10, 11]
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 2), (0, 3), (1, 0), (1, 1), (1, 2)]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert all(ids[r, c + 1] == t for r, c, t in zip(rows.tolist(), cols.tolist(), labels.tolist()))


def test_divergences_vanish_at_equality_and_tau0_is_argmax_cross_entropy():
    logits = torch.randn(5, 11)
    for kind in DIVERGENCES:  # q is the draft's own distribution: q = p_0.7 at logits / 0.7
        assert D.divergence(logits, logits / 0.7, 0.7, kind).abs().max() < 1e-5
        assert D.divergence(logits, logits, 0.7, kind).min() > 1e-4
    draft = torch.randn(5, 11)
    ce = torch.nn.functional.cross_entropy(draft, logits.argmax(-1), reduction="none")
    torch.testing.assert_close(D.divergence(logits, draft, 0.0, "fkl"), ce)
    with pytest.raises(ValueError, match="divergence"):
        KDConfig(divergence="hellinger")
    with pytest.raises(ValueError, match="tau_kd"):
        KDConfig(tau_kd=-1)
    with pytest.raises(ValueError, match="source"):
        KDConfig(mode="online", source="web")


def test_online_kd_on_stored_samples_needs_them(teacher, tokenizer, tmp_path):
    cfg = KDConfig(mode="online", source="data", steps=2)
    with pytest.raises(ValueError, match="needs a non-empty `data`"):
        D.train_draft(tmp_path / "d", cfg, fresh_draft(teacher), tokenizer, target=teacher, prompts=PROMPTS)


def test_killed_training_resumes_and_matches_an_uninterrupted_run(teacher, tokenizer, tmp_path, monkeypatch):
    data = teacher_data(teacher, tokenizer, PROMPTS, NAMES, 1.0, tmp_path / "t", max_new_tokens=6)
    cfg = KDConfig(mode="offline", tau_kd=1.0, steps=12, batch_size=4, lr=5e-3, warmup=2, checkpoint_every=4)
    whole = D.train_draft(tmp_path / "whole", cfg, fresh_draft(teacher), tokenizer, data=data, progress=False)

    real_lr, calls = D._lr, []

    def dying_lr(c, step):  # the process is killed during step 10
        calls.append(step)
        if step == 9:
            raise KeyboardInterrupt
        return real_lr(c, step)

    monkeypatch.setattr(D, "_lr", dying_lr)
    with pytest.raises(KeyboardInterrupt):
        D.train_draft(tmp_path / "killed", cfg, fresh_draft(teacher), tokenizer, data=data, progress=False)
    assert (tmp_path / "killed" / "checkpoint.pt").is_file() and not D.is_finished(tmp_path / "killed")
    monkeypatch.setattr(D, "_lr", real_lr)
    resumed = D.train_draft(tmp_path / "killed", cfg, fresh_draft(teacher), tokenizer, data=data, progress=False)
    assert D.is_finished(tmp_path / "killed", cfg) and not (tmp_path / "killed" / "checkpoint.pt").exists()
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
    history = json.loads((tmp_path / "killed" / "loss.json").read_text())
    assert [h["step"] for h in history] == list(range(1, 13))
    # a finished draft is loaded, not trained again
    monkeypatch.setattr(D, "_lr", lambda *a: (_ for _ in ()).throw(AssertionError("trained again")))
    D.train_draft(tmp_path / "killed", cfg, fresh_draft(teacher), tokenizer, data=data, progress=False)


def test_checkpoints_by_time_and_how_often_is_not_part_of_the_drafts_identity(teacher, tokenizer, tmp_path,
                                                                               monkeypatch):
    data = teacher_data(teacher, tokenizer, PROMPTS, NAMES, 1.0, tmp_path / "t", max_new_tokens=6)
    cfg = KDConfig(mode="offline", tau_kd=1.0, steps=6, batch_size=4, warmup=1, checkpoint_every=0,
                     checkpoint_seconds=1e-9)  # every step is past the time: a checkpoint each step
    saves = []
    real_save = D.torch.save
    monkeypatch.setattr(D.torch, "save", lambda obj, path: (saves.append(obj["step"]), real_save(obj, path)))
    D.train_draft(tmp_path / "d", cfg, fresh_draft(teacher), tokenizer, data=data, progress=False)
    assert saves == [1, 2, 3, 4, 5]  # none after the last step: the finished draft is saved instead
    saves.clear()
    never = KDConfig(mode="offline", tau_kd=1.0, steps=6, batch_size=4, warmup=1, checkpoint_every=0)
    D.train_draft(tmp_path / "e", never, fresh_draft(teacher), tokenizer, data=data, progress=False)
    assert saves == []
    assert D.is_finished(tmp_path / "d", never)  # same draft, checkpointed differently
    assert not D.is_finished(tmp_path / "d", KDConfig(mode="offline", tau_kd=1.0, steps=7, batch_size=4, warmup=1))


@pytest.mark.parametrize("faster", ["bfloat16", "float32"])
def test_auto_precision_is_the_one_measured_faster_recorded_and_part_of_the_identity(teacher, tokenizer, tmp_path,
                                                                                   monkeypatch, faster):
    from dataclasses import replace

    from tcsd_utils import runners as K

    monkeypatch.setattr(K, "choose_train_dtype", lambda: getattr(torch, faster))  # what this CPU measured
    data = teacher_data(teacher, tokenizer, PROMPTS, NAMES, 1.0, tmp_path / "t", max_new_tokens=6)
    cfg = KDConfig(mode="offline", tau_kd=1.0, steps=3, batch_size=4, warmup=1)
    assert cfg.precision == "auto" and K.train_precision(cfg.precision, "cpu") == faster
    assert K.train_precision("float32", "cpu") == "float32" and K.train_precision("auto", "meta") == "float32"
    under_autocast, real_loss = [], D._loss

    def loss(*args, **kwargs):
        under_autocast.append(torch.is_autocast_enabled("cpu"))
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(D, "_loss", loss)
    draft = D.train_draft(tmp_path / "d", cfg, fresh_draft(teacher), tokenizer, data=data, progress=False)
    assert under_autocast == [faster == "bfloat16"] * 3
    assert all(p.dtype == torch.float32 for p in draft.parameters())  # the weights stay float32
    config = tmp_path / "d" / "config.json"
    assert json.loads(config.read_text())["kd"]["precision"] == faster  # as used, not "auto"
    other = "float32" if faster == "bfloat16" else "bfloat16"
    assert D.is_finished(tmp_path / "d", cfg) and D.is_finished(tmp_path / "d", replace(cfg, precision=faster))
    assert not D.is_finished(tmp_path / "d", replace(cfg, precision=other))
    # a draft made before precision was recorded was made in float32
    made = json.loads(config.read_text())
    del made["kd"]["precision"]
    config.write_text(json.dumps(made))
    assert D.is_finished(tmp_path / "d", replace(cfg, precision="float32"))
    assert not D.is_finished(tmp_path / "d", replace(cfg, precision="bfloat16"))
    with pytest.raises(ValueError, match="precision must be one of"):
        KDConfig(precision="fp16")


def test_mix_respects_weights(teacher, tokenizer, tmp_path):
    sets = {tau: teacher_data(teacher, tokenizer, PROMPTS, NAMES, tau, tmp_path / f"t{tau}", max_new_tokens=3)
            for tau in (0.0, 1.0, 2.0)}
    mixed = mix(sets, {0.0: 1, 1.0: 2, 2.0: 1}, n=40, seed=0)
    counts = {tau: mixed["tau"].count(tau) for tau in sets}
    assert counts == {0.0: 10, 1.0: 20, 2.0: 10}
    again = mix(sets, {0.0: 1, 1.0: 2, 2.0: 1}, n=40, seed=0)
    assert again["prompt_id"] == mixed["prompt_id"]
    assert mix(sets, {1.0: 1, 2.0: 0}, n=5)["tau"] == [1.0] * 5
    with pytest.raises(ValueError, match="no teacher data"):
        mix(sets, {0.5: 1}, n=4)
    with pytest.raises(ValueError, match="weights"):
        mix(sets, {1.0: -1}, n=4)


def test_online_mixing_samples_at_the_weighted_temperatures(teacher):
    import random

    cfg = KDConfig(mode="online", tau_kd=1.0, mix_weights={0.5: 3, 1.5: 1}, batch_size=2, max_new_tokens=2)
    seen = [D.sampling_tau(cfg, random.Random(step)) for step in range(2000)]
    assert set(seen) == {0.5, 1.5}
    assert 0.72 < seen.count(0.5) / len(seen) < 0.78  # weight 3 of 4
    assert D.sampling_tau(KDConfig(mode="online", tau_kd=0.25), random.Random(0)) == 0.25
    pairs, logits = D._online_samples(fresh_draft(teacher), PROMPTS, cfg, random.Random(0), 3, 2)
    assert len(pairs) == 2 and all(1 <= len(a) <= 2 for _, a in pairs) and logits is None


def test_online_target_samples_come_with_the_targets_logits(teacher):
    """The logits returned with target samples are the target's, at the answer positions."""
    import random

    cfg = KDConfig(mode="online", tau_kd=1.0, batch_size=3, max_new_tokens=4)
    pairs, logits = D._online_samples(teacher, PROMPTS, cfg, random.Random(1), 3, 2, with_logits=True)
    ids, mask, rows, cols, _ = B.pack(pairs, 3, "cpu")
    with torch.no_grad():
        ref = B.head_logits(teacher, ids, mask, rows, cols)
    assert logits.shape == ref.shape
    torch.testing.assert_close(logits.float(), ref, atol=1e-4, rtol=1e-4)


def test_seeded_sampling_and_training_leave_the_callers_random_state_alone(teacher, tokenizer, tmp_path):
    """Teacher samples, online KD on the target's samples and a new draft seed torch's
    generator inside a fork: the caller's state afterwards is what it was, and the same
    seed still gives the same numbers."""
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    data = teacher_data(teacher, tokenizer, PROMPTS[:8], NAMES[:8], 1.0, tmp_path / "t", max_new_tokens=4)
    assert torch.equal(torch.get_rng_state(), before)
    draft = fresh_draft(teacher)
    assert torch.equal(torch.get_rng_state(), before)
    cfg = KDConfig(mode="online", tau_kd=1.0, steps=2, batch_size=2, warmup=1, max_new_tokens=3)
    D.train_draft(tmp_path / "d", cfg, draft, tokenizer, target=teacher, prompts=PROMPTS, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)  # another caller state: the same samples
    again = teacher_data(teacher, tokenizer, PROMPTS[:8], NAMES[:8], 1.0, tmp_path / "t2", max_new_tokens=4)
    assert again["answer_ids"] == data["answer_ids"]


def test_general_corpus_is_offline_english_text():
    texts = general_corpus(max_chars=50_000)
    assert sum(map(len, texts)) >= 50_000
    assert all(len(t) >= 200 for t in texts)
    assert general_corpus(max_chars=50_000) == texts  # deterministic


def test_teacher_sampling_follows_the_temperature_definition(teacher, tokenizer, tmp_path):
    """`generate` as configured for teacher data samples from temperature.probs(logits, tau)."""
    from scipy import stats as sps

    prompt, tau, n = PROMPTS[0], 1.5, 3000
    data = teacher_data(teacher, tokenizer, [prompt] * n, [f"r{i}" for i in range(n)], tau, tmp_path / "s",
                          max_new_tokens=1, batch_size=250)
    with torch.no_grad():
        p = probs(teacher(torch.tensor([prompt])).logits[0, -1], tau)
    counts = torch.bincount(torch.tensor([a[0] for a in data["answer_ids"]]), minlength=p.numel())
    keep = p * n >= 5  # cells with fewer than 5 expected draws are pooled into one
    observed, expected = counts[keep].double(), (p[keep] * n).double()
    if (~keep).any():
        observed = torch.cat([observed, counts[~keep].sum(0, keepdim=True).double()])
        expected = torch.cat([expected, (p[~keep] * n).sum(0, keepdim=True).double()])
    expected = expected * observed.sum() / expected.sum()
    assert sps.chisquare(observed.numpy(), expected.numpy()).pvalue > 1e-3


def test_target_scores_are_the_targets_top_logits_and_are_cached(teacher, tokenizer, tmp_path):
    data = teacher_data(teacher, tokenizer, PROMPTS[:6], NAMES[:6], 1.0, tmp_path / "t", max_new_tokens=5)
    scored = target_scores(teacher, data, tmp_path / "s", top_k=4, pad=3)
    row = scored[2]
    seq = torch.tensor([row["prompt_ids"] + row["answer_ids"]])
    with torch.no_grad():
        logits = teacher(seq).logits[0, len(row["prompt_ids"]) - 1:-1]  # (answer tokens, vocab)
    top = logits.topk(4, dim=-1)
    assert row["top_ids"].dtype == torch.int32 and row["top_ids"].tolist() == top.indices.tolist()
    torch.testing.assert_close(row["top_logits"], top.values, rtol=1e-5, atol=1e-5)
    assert len(scored) == len(data) and scored.top_k == 4
    assert sum(len(scored[i]["top_ids"]) for i in range(len(scored))) == sum(len(a) for a in data["answer_ids"])
    assert (tmp_path / "s" / "config.json").is_file() and (tmp_path / "s" / "scores.safetensors").is_file()
    with pytest.MonkeyPatch.context() as mp:  # cached: read back, no forward
        mp.setattr(T, "head_logits", lambda *a, **k: pytest.fail("recomputed"))
        again = target_scores(teacher, data, tmp_path / "s", top_k=4, pad=3)[2]
    assert again["answer_ids"] == row["answer_ids"] and torch.equal(again["top_ids"], row["top_ids"])
    assert torch.equal(again["top_logits"], row["top_logits"])


# prompts of several lengths, so that sampling pads them on the left and scoring on the right
RAGGED = [PROMPTS[i][:3 + i % 4] + [15] for i in range(10)]


@pytest.mark.parametrize("tau", [0.0, 0.5])  # 0.5: recorded before the temperature, not after
def test_scores_recorded_while_sampling_are_the_forwards_top_logits(teacher, tokenizer, tmp_path, tau):
    data = teacher_data(teacher, tokenizer, RAGGED, NAMES[:10], tau, tmp_path / "t", max_new_tokens=6,
                        batch_size=4, top_k=5)
    recorded = T.load_scores(tmp_path / "t")
    assert json.loads((tmp_path / "t" / "config.json").read_text())["top_k"] == 5
    assert recorded.top_k == 5 and recorded.data["answer_ids"] == data["answer_ids"]
    scored = target_scores(teacher, data, tmp_path / "s", top_k=5, pad=3)  # a forward over the same rows
    for i in range(len(data)):
        assert recorded[i]["top_ids"].tolist() == scored[i]["top_ids"].tolist()
        torch.testing.assert_close(recorded[i]["top_logits"], scored[i]["top_logits"], rtol=1e-4, atol=1e-4)
    plain = teacher_data(teacher, tokenizer, RAGGED, NAMES[:10], tau, tmp_path / "u", max_new_tokens=6,
                         batch_size=4)  # recording changes no sample
    assert plain["answer_ids"] == data["answer_ids"]
    assert "top_k" not in json.loads((tmp_path / "u" / "config.json").read_text())
    assert not (tmp_path / "u" / "scores.safetensors").exists()


def test_target_scores_take_recorded_scores_and_score_only_the_other_rows(teacher, tokenizer, tmp_path):
    hot = teacher_data(teacher, tokenizer, RAGGED, NAMES[:10], 1.0, tmp_path / "hot", max_new_tokens=5,
                       batch_size=4, top_k=6)
    cold = teacher_data(teacher, tokenizer, RAGGED, NAMES[:10], 0.0, tmp_path / "cold", max_new_tokens=5)
    recorded = T.load_scores(tmp_path / "hot")
    assert target_scores(teacher, hot, tmp_path / "same", top_k=6, recorded=[recorded]) is recorded
    assert not (tmp_path / "same").exists()  # returned as it was: nothing stored again
    mixed = mix({1.0: hot, 0.0: cold}, {1.0: 1.0, 0.0: 1.0}, n=10, seed=0)
    from_cold = sum(len(a) for a in mixed.filter(lambda r: r["tau"] == 0.0)["answer_ids"])
    scored_rows, forward = [], T.head_logits

    def counting(model, ids, mask, rows, cols):
        scored_rows.append(len(rows))
        return forward(model, ids, mask, rows, cols)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(T, "head_logits", counting)
        both = target_scores(teacher, mixed, tmp_path / "both", top_k=4, pad=3, recorded=[recorded])
    assert sum(scored_rows) == from_cold  # only the cold rows went through the target
    plain = target_scores(teacher, mixed, tmp_path / "plain", top_k=4, pad=3)  # every row by a forward
    for i in range(len(mixed)):
        assert both[i]["top_ids"].tolist() == plain[i]["top_ids"].tolist()
        torch.testing.assert_close(both[i]["top_logits"], plain[i]["top_logits"], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="recorded at top 6 cannot stand for top 8"):
        target_scores(teacher, mixed, tmp_path / "more", top_k=8, recorded=[recorded])


def test_stored_scores_refuse_tensors_that_do_not_fit_the_samples(teacher, tokenizer, tmp_path):
    data = teacher_data(teacher, tokenizer, PROMPTS[:3], NAMES[:3], 1.0, tmp_path / "t", max_new_tokens=5)
    n = sum(len(a) for a in data["answer_ids"])
    with pytest.raises(ValueError, match=f"do not fit {n} answer tokens"):
        T.StoredScores(data, torch.zeros(n + 1, 4, dtype=torch.int32), torch.zeros(n + 1, 4))


@pytest.mark.parametrize("sub_vocab", [False, True])
def test_online_kd_on_stored_scores_equals_a_target_forward_per_step(teacher, tokenizer, tmp_path, sub_vocab):
    """With every logit stored (top_k = vocab), the stored path is the per-step forward.
    In float32: under "auto" a CPU that measures bfloat16 faster runs the per-step target forward
    in bfloat16 autocast, while the stored scores were computed in float32 (about 1e-3 apart)."""
    data = teacher_data(teacher, tokenizer, PROMPTS[:12], NAMES[:12], 0.5, tmp_path / "t", max_new_tokens=5)
    scored = target_scores(teacher, data, tmp_path / "s", top_k=16, pad=3)
    cfg = KDConfig(mode="online", source="data", tau_kd=0.5, steps=4, batch_size=4, warmup=1, precision="float32")
    losses = []
    for name, rows in (("forward", data), ("stored", scored)):
        start = make_draft(teacher, target_layers=[0], head_vocab=10) if sub_vocab else fresh_draft(teacher)
        D.train_draft(tmp_path / name, cfg, start, tokenizer, target=teacher, data=rows)
        losses.append([h["loss"] for h in json.loads((tmp_path / name / "loss.json").read_text())])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


@pytest.mark.parametrize("kind", DIVERGENCES)
@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
def test_compact_stored_scores_give_the_dense_loss(kind, tau):
    """A sub-vocabulary draft's compact stored logits (kept columns, then the top logits of
    ids it does not cover) give the same divergence as the dense (n, vocab) tensor."""
    gen = torch.Generator().manual_seed(1)
    vocab, top_k, n = 40, 6, 30
    kept = torch.tensor(sorted(random.Random(2).sample(range(vocab), 12)))
    slot = torch.full((vocab,), D.IGNORE, dtype=torch.long)
    slot[kept] = torch.arange(kept.numel())
    logits = torch.randn(n, vocab, generator=gen) * 3
    top = logits.topk(top_k, dim=-1)
    rows = [{"top_ids": top.indices[i:i + 1].int(), "top_logits": top.values[i:i + 1]} for i in range(n)]
    assert (slot[top.indices] < 0).any() and (slot[top.indices] >= 0).any()  # both kinds of top id occur
    dense = T.stored_logits(rows, vocab, "cpu")
    compact = T.stored_logits(rows, vocab, "cpu", slot)
    assert compact.shape == (n, kept.numel() + top_k)
    draft = torch.randn(n, kept.numel(), generator=gen)
    want = D.divergence(dense, draft, tau, kind, kept)
    got = D.divergence(compact, draft, tau, kind, slice(0, kept.numel()))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_compact_logits_are_told_apart_by_how_they_were_made_not_by_their_width(teacher, tokenizer, tmp_path):
    """A head of vocab - top_k ids makes the compact tensor exactly vocab wide; the loss must
    still read its first columns, as `_batch` says, and equal the dense tensor's loss."""
    data = teacher_data(teacher, tokenizer, PROMPTS[:6], NAMES[:6], 1.0, tmp_path / "t", max_new_tokens=5)
    scored = target_scores(teacher, data, tmp_path / "s", top_k=4, pad=3)
    vocab = teacher.config.vocab_size
    draft = make_draft(teacher, target_layers=[0], head_vocab=vocab - 4).float()
    kept, slot = D._head_slots(draft, draft.device)
    cfg = KDConfig(mode="online", source="data", tau_kd=1.0, batch_size=4)
    pairs, compact_logits, compact = D._batch(cfg, random.Random(0), draft, None, scored, None, None, 3, 15, slot)
    assert compact and compact_logits.shape[-1] == vocab  # the width alone cannot tell
    rng = random.Random(0)  # the same rows `_batch` drew
    dense_logits = T.stored_logits([scored[rng.randrange(len(scored))] for _ in range(4)], vocab, "cpu")
    with torch.no_grad():
        got, _ = D._loss(cfg, draft, None, pairs, compact_logits, 3, kept, slot, compact=True)
        want, _ = D._loss(cfg, draft, None, pairs, dense_logits, 3, kept, slot)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_online_kd_at_tau_0_on_stored_greedy_samples_is_offline_kd_at_tau_0(teacher, tokenizer, tmp_path):
    """What lets a study train one draft for both (`profiles.trained_as`): at tau_kd 0 p is
    one-hot on the target's argmax, which is its greedy answer's next token, so forward KL on
    the stored scores is the cross-entropy offline KD takes on the same batch."""
    data = teacher_data(teacher, tokenizer, PROMPTS[:8], NAMES[:8], 0.0, tmp_path / "t", max_new_tokens=6)
    scored = target_scores(teacher, data, tmp_path / "s", top_k=4, pad=3)
    draft = fresh_draft(teacher)
    online = KDConfig(mode="online", source="data", tau_kd=0.0, batch_size=4)
    offline = KDConfig(mode="offline", tau_kd=0.0, batch_size=4)
    for step in range(3):
        pairs, t_logits, compact = D._batch(online, random.Random(step), draft, None, scored, None, None, 3, 15)
        same_pairs, none, _ = D._batch(offline, random.Random(step), draft, None, data, None, None, 3, 15)
        assert pairs == same_pairs and none is None and not compact
        with torch.no_grad():
            on, n_on = D._loss(online, draft, None, pairs, t_logits, 3, None, None)
            off, n_off = D._loss(offline, draft, None, pairs, None, 3, None, None)
        assert n_on == n_off
        torch.testing.assert_close(on, off, rtol=1e-5, atol=1e-6)
    # at tau_kd 1 the two losses differ: online KD reads the target's whole distribution
    pairs, t_logits, _ = D._batch(online, random.Random(0), draft, None, scored, None, None, 3, 15)
    with torch.no_grad():
        soft, _ = D._loss(KDConfig(mode="online", source="data", tau_kd=1.0), draft, None, pairs, t_logits, 3, None, None)
        hard, _ = D._loss(offline, draft, None, pairs, None, 3, None, None)
    assert not torch.isclose(soft, hard, rtol=1e-3)
