"""Drafts cut from the target, and drafts whose output layer covers part of the vocabulary.

Speculative sampling must stay exact with a draft that has q = 0 on most tokens; expected
alpha must count those tokens as never proposed; training must leave them out of the loss.
"""

from __future__ import annotations

import pytest
import torch

from conftest import make_llama
from test_speculative import N_SAMPLES, P_FAIL, P_PASS, accept_everything, chi_square, exact_distribution, \
    sample_counts
from tcsd_utils.profiles import KDConfig
from tcsd_utils import speculative as S
from tcsd_utils.distill import divergence, train_draft
from tcsd_utils.evaluate import expected_alpha
from tcsd_utils.models import load_model, make_draft
from tcsd_utils.runners import CausalLMRunner, LlamaRunner
from tcsd_utils.subvocab import SubVocabLlamaForCausalLM, head_ids
from tcsd_utils.temperature import overlap, probs


def _target(vocab=6, seed=3, scale=8.0):
    return make_llama(vocab=vocab, hidden=16, layers=3, heads=2, seed=seed, scale=scale)


def test_cut_with_every_layer_and_full_head_is_the_target():
    target = make_llama(vocab=16, hidden=32, layers=3, heads=4, kv_heads=2, seed=1)
    draft = make_draft(target, target_layers=[0, 1, 2])
    ids = torch.tensor([[1, 4, 5, 9, 12]])
    with torch.no_grad():
        torch.testing.assert_close(draft(ids).logits, target(ids).logits, rtol=1e-5, atol=1e-5)


def test_cut_draft_copies_the_chosen_layers():
    target = make_llama(vocab=16, hidden=32, layers=4, heads=4, seed=1)
    draft = make_draft(target, target_layers=[0, 3], head_vocab=8)
    assert len(draft.model.layers) == 2
    torch.testing.assert_close(draft.model.layers[1].mlp.up_proj.weight, target.model.layers[3].mlp.up_proj.weight)
    torch.testing.assert_close(draft.lm_head.weight, target.lm_head.weight[:8])


@pytest.mark.parametrize("kwargs, match", [(dict(target_layers=[0, 9]), "target_layers"),
                                           (dict(target_layers=[]), "target_layers"),
                                           (dict(head_vocab=0), "head_vocab"),
                                           (dict(head_vocab=17), "head_vocab")])
def test_bad_draft_shape_raises(kwargs, match):
    target = make_llama(vocab=16, hidden=32, layers=3, heads=4, seed=1)
    with pytest.raises(ValueError, match=match):
        make_draft(target, **kwargs)


def test_sub_vocabulary_logits_are_minus_inf_off_the_head_and_round_trip(tmp_path):
    target = make_llama(vocab=16, hidden=32, layers=2, heads=4, seed=1)
    draft = make_draft(target, target_layers=[1], head_vocab=5)
    assert isinstance(draft, SubVocabLlamaForCausalLM) and head_ids(draft).tolist() == [0, 1, 2, 3, 4]
    assert head_ids(target) is None
    ids = torch.tensor([[1, 4, 12, 7]])
    with torch.no_grad():
        logits = draft(ids).logits[0]
    assert torch.isinf(logits[:, 5:]).all() and torch.isfinite(logits[:, :5]).all()
    q = probs(logits, 1.0)
    assert float(q[:, 5:].sum()) == 0.0 and torch.allclose(q.sum(-1), torch.ones(4))
    assert probs(logits, 0.0).argmax(-1).max() < 5
    draft.save_pretrained(tmp_path / "d")
    loaded = load_model(str(tmp_path / "d"), "cpu", torch.float32)
    assert isinstance(loaded, SubVocabLlamaForCausalLM)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits[0], logits)


def test_fast_runner_matches_transformers_for_a_sub_vocabulary_draft():
    target = make_llama(vocab=16, hidden=32, layers=2, heads=4, kv_heads=2, seed=2)
    draft = make_draft(target, target_layers=[0, 1], head_vocab=7)
    assert LlamaRunner.supports(draft)
    fast, ref = LlamaRunner(draft), CausalLMRunner(draft)
    for r in (fast, ref):
        r.start([1, 4, 5])
    for chunk in ([1, 4, 5], [6], [7, 8, 9]):
        ids = torch.tensor(chunk)
        a, b = fast.extend(ids), ref.extend(ids)
        assert torch.equal(torch.isinf(a), torch.isinf(b))
        torch.testing.assert_close(a[:, :7], b[:, :7], rtol=1e-5, atol=1e-5)


def _sub_pair():
    """A 6-token target and a draft cut from it that can propose tokens 0-2 only."""
    target = _target()
    draft = make_draft(target, target_layers=[0], head_vocab=3)
    with torch.no_grad():
        draft.lm_head.weight.mul_(3.0)  # sharper, still different from the target
    return target, draft


def _exact(target, prompt, tau):
    def logits_fn(full):
        with torch.no_grad():
            return target(torch.tensor([full])).logits[0]

    return exact_distribution(logits_fn, prompt, 6, tau)


@pytest.mark.parametrize("tau", [0.5, 1.0, 1.7])
def test_distribution_matches_target_with_a_sub_vocabulary_draft(tau):
    """Tokens 3-5 can only come from the residual max(0, p - q): they must still appear
    exactly as often as the target gives them."""
    target, draft = _sub_pair()
    prompt = [1, 4, 5]
    exact = _exact(target, prompt, tau)
    counts = sample_counts(target, draft, prompt, tau, N_SAMPLES)
    pvalue, tvd = chi_square(counts, exact, N_SAMPLES)
    assert pvalue > P_PASS, (pvalue, tvd)
    assert sum(c for seq, c in counts.items() if max(seq) >= 3) > 0.05 * N_SAMPLES  # residual-only tokens drawn


def test_broken_sampler_is_caught_with_a_sub_vocabulary_draft(monkeypatch):
    target, draft = _sub_pair()
    prompt = [1, 4, 5]
    exact = _exact(target, prompt, 1.0)
    monkeypatch.setattr(S, "verify", accept_everything)
    counts = sample_counts(target, draft, prompt, 1.0, N_SAMPLES)
    pvalue, _ = chi_square(counts, exact, N_SAMPLES)
    assert pvalue < P_FAIL


def test_greedy_is_unchanged_by_a_sub_vocabulary_draft():
    target, draft = _sub_pair()
    for prompt in ([1, 4, 5], [2, 0, 3]):
        ar = S.autoregressive_generate(target, prompt, max_new_tokens=12, tau=0, eos_token_id=[])
        sd = S.speculative_generate(target, draft, prompt, max_new_tokens=12, k=3, tau=0, eos_token_id=[])
        assert sd.tokens == ar.tokens


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_expected_alpha_counts_q_zero_off_the_head(tau):
    target, draft = _sub_pair()
    data = [{"prompt_ids": [1, 4], "answer_ids": [5, 0, 3, 2]}, {"prompt_ids": [2], "answer_ids": [4, 4, 1]}]
    alpha = expected_alpha(target, draft, data, tau, pad=3)
    want = []
    for row in data:
        seq = torch.tensor([row["prompt_ids"] + row["answer_ids"]])
        with torch.no_grad():
            p, q = probs(target(seq).logits[0], tau), probs(draft(seq).logits[0], tau)
        n = len(row["prompt_ids"])
        want += overlap(p[n - 1:-1], q[n - 1:-1]).tolist()
        assert float(q[:, 3:].sum()) == 0.0
    assert alpha == pytest.approx(sum(want) / len(want), abs=1e-5)


def test_divergence_over_the_head_is_finite_and_minimal_at_p():
    t = torch.randn(5, 6) * 2
    ids = torch.tensor([0, 1, 2])
    for tau in (0.0, 0.5, 1.0):
        p = probs(t, tau)[:, ids]
        best = torch.log(p.clamp_min(1e-30))  # q proportional to p on the head
        other = torch.randn(5, 3)
        assert torch.isfinite(divergence(t, other, tau, "fkl", ids)).all()
        assert (divergence(t, best, tau, "fkl", ids) <= divergence(t, other, tau, "fkl", ids) + 1e-6).all()


def test_divergence_tempers_p_only():
    """KL(p_tau || q_1): a draft whose own distribution is p_tau has the least loss."""
    t = torch.randn(4, 6) * 3
    tau = 0.25
    stored = t / tau  # q_1 = p_tau
    shrunk = t  # q_tau = p_tau, the old objective's optimum
    assert (divergence(t, stored, tau) < divergence(t, shrunk, tau)).all()
    assert divergence(t, stored, tau).abs().max() < 1e-4


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_kd_on_a_sub_vocabulary_draft_lowers_its_loss(tmp_path, tokenizer, mode):
    target = make_llama(vocab=16, hidden=32, layers=2, heads=4, seed=5, scale=4.0)
    draft = make_draft(target, target_layers=[1], head_vocab=8)
    data = [{"prompt_ids": [1, 4, 5], "answer_ids": [6, 7, 12, 4, 2]},
            {"prompt_ids": [1, 13], "answer_ids": [5, 14, 8, 2]}] * 4  # ids 12-14 are off the head
    cfg = KDConfig(mode=mode, source="data", tau_kd=0.5, steps=12, batch_size=4, lr=3e-3, warmup=1,
                   checkpoint_every=100)
    train_draft(tmp_path / mode, cfg, draft, tokenizer, target=target, data=data)
    import json

    losses = [h["loss"] for h in json.loads((tmp_path / mode / "loss.json").read_text())]
    assert all(map(lambda v: v == v and v < float("inf"), losses))
    assert losses[-1] < losses[0]


def test_decoders_refuse_out_of_range_ids_and_other_vocabularies(tiny_target):
    with pytest.raises(ValueError, match="token id 16, outside the vocabulary"):
        S.autoregressive_generate(tiny_target, [1, 16], max_new_tokens=3)
    with pytest.raises(ValueError, match="token id -1"):
        S.speculative_generate(tiny_target, tiny_target, [1, -1], max_new_tokens=3)
    other = make_llama(vocab=20, seed=2)
    with pytest.raises(ValueError, match="target has 16 tokens, draft has 20 tokens"):
        S.speculative_generate(tiny_target, other, [1, 4], max_new_tokens=3)


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_transformers_generate_and_assisted_generation_take_a_sub_vocabulary_draft(tau):
    """The benchmark's baselines run the same draft through transformers."""
    from tcsd_utils.bench import _hf_generate

    target = make_llama(vocab=16, hidden=32, layers=2, heads=4, seed=5, scale=4.0)
    draft = make_draft(target, target_layers=[0], head_vocab=8)
    n, _ = _hf_generate(target, [1, 4, 5], tau, 6, seed=0, pad=3, draft=draft, k=2)
    assert n == 6
    out = draft.generate(torch.tensor([[1, 4, 5]]), max_new_tokens=5, do_sample=tau > 0, pad_token_id=3)
    assert out[0, 3:].max() < 8  # the draft alone only proposes its kept ids


def test_load_pair_takes_a_saved_sub_vocabulary_draft(tiny_pair_dir, tmp_path):
    """The benchmark loads the study's drafts by folder: a restricted head is not another vocabulary."""
    from tcsd_utils.models import load_pair, load_tokenizer

    target = load_model(str(tiny_pair_dir / "target"), "cpu", torch.float32)
    draft = make_draft(target, target_layers=[0], head_vocab=8)
    draft.save_pretrained(tmp_path / "d")
    load_tokenizer(str(tiny_pair_dir / "target")).save_pretrained(tmp_path / "d")
    pair = load_pair(str(tiny_pair_dir / "target"), str(tmp_path / "d"), "cpu", torch.float32)
    assert head_ids(pair.draft).numel() == 8
    other = make_llama(vocab=20, seed=2)
    other.save_pretrained(tmp_path / "o")
    with pytest.raises(ValueError, match="vocabulary sizes differ"):
        from tcsd_utils.models import check_same_tokenizer

        tok = load_tokenizer(str(tiny_pair_dir / "target"))
        check_same_tokenizer(tok, tok, "t", "o", target, other)
