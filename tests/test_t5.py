"""The paper's second family, T5 (encoder-decoder), through the interfaces the Llama pair uses.

Tiny random T5 models built from a config (no download): decoding, the KV cache, expected
alpha and both KD paradigms, with the prompt in the encoder and the answer in the decoder.
"""

from __future__ import annotations

import json

import pytest
import torch

from test_speculative import N_SAMPLES, P_FAIL, P_PASS, accept_everything, chi_square, exact_distribution
from tcsd_utils.evaluate import cost_ratio
from tcsd_utils.profiles import KDConfig
from tcsd_utils.teacher import teacher_data
from tcsd_utils import distill as D
from tcsd_utils import speculative as S
from tcsd_utils.batching import head_logits, pack
from tcsd_utils.evaluate import expected_alpha
from tcsd_utils.runners import Seq2SeqRunner, as_runner, next_token_logits
from tcsd_utils.temperature import overlap, probs

PAD, EOS = 3, 2  # the ids of conftest's tokenizer; the decoder starts from the pad id, as T5's does
PROMPTS = [[5, 6, 7, 8, EOS], [9, 4, EOS], [12, 13, 14, 10, 11, 4, EOS]]


def make_t5(vocab=64, d_model=32, layers=2, seed=0, scale=1.0):
    """A tiny random T5 (v1.1 layout: gated MLP, own output layer) in float32. Its output layer
    is drawn apart from the embedding with std ``scale``: tied to it, a random T5 mostly
    repeats its input token."""
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=vocab, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=layers, num_heads=4,
                   relative_attention_num_buckets=8, dropout_rate=0.0, feed_forward_proj="gated-gelu",
                   tie_word_embeddings=False, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(cfg)
    model.lm_head.weight = torch.nn.Parameter(torch.randn(vocab, d_model) * scale)
    return model.eval()


@pytest.fixture(scope="module")
def t5_target():
    return make_t5(seed=0, scale=2.0)


@pytest.fixture(scope="module")
def t5_draft():
    return make_t5(d_model=16, layers=1, seed=1, scale=2.0)


def decoder_logits(model, prompt, decoder_ids):
    """A fresh forward, no cache: logits after each decoder token."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([prompt]), decoder_input_ids=torch.tensor([decoder_ids])).logits[0]


def test_as_runner_encodes_the_prompt_and_starts_the_decoder(t5_target):
    runner = as_runner(t5_target)
    assert isinstance(runner, Seq2SeqRunner) and runner.vocab_size == 64
    assert runner.start(PROMPTS[0]) == [PAD] and runner.length == 0


@pytest.mark.parametrize("k", [1, 3])
def test_greedy_equals_autoregressive_and_transformers(t5_target, t5_draft, k):
    seen = set()
    for prompt in PROMPTS:
        ar = S.autoregressive_generate(t5_target, prompt, max_new_tokens=16, tau=0, eos_token_id=[])
        sd = S.speculative_generate(t5_target, t5_draft, prompt, max_new_tokens=16, k=k, tau=0, eos_token_id=[])
        ref = t5_target.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False,
                                 eos_token_id=None)[0, 1:].tolist()  # after the decoder start token
        assert sd.tokens == ar.tokens == ref
        seen |= set(ref)
    assert len(seen) > 5  # real continuations, not one token repeated


def test_rollback_then_extend_equals_a_fresh_forward(t5_target):
    runner = as_runner(t5_target)
    prompt = PROMPTS[2]
    seq = runner.start(prompt) + [10, 11, 12, 13]
    first = runner.extend(torch.tensor(seq))
    torch.testing.assert_close(first, decoder_logits(t5_target, prompt, seq), rtol=1e-5, atol=1e-5)
    runner.rollback(2)  # keep [start, 10]: drafts 11, 12, 13 rejected
    assert runner.length == 2 and runner.cache.get_seq_length() == 2
    again = runner.extend(torch.tensor([20, 21]))
    fresh = decoder_logits(t5_target, prompt, [PAD, 10, 20, 21])
    torch.testing.assert_close(again, fresh[2:], rtol=1e-5, atol=1e-5)
    # a new prompt starts over: nothing of the old decoder or encoder is left
    runner.start(PROMPTS[0])
    torch.testing.assert_close(runner.extend(torch.tensor([PAD, 7])), decoder_logits(t5_target, PROMPTS[0], [PAD, 7]),
                               rtol=1e-5, atol=1e-5)


def test_next_token_logits_reads_either_kind(t5_target, tiny_target):
    """The notebooks' one-position forward: prompt + answer for a decoder-only model, the
    prompt in the encoder and [start] + answer in the decoder for T5."""
    torch.testing.assert_close(next_token_logits(t5_target, PROMPTS[0], [10, 11]),
                               decoder_logits(t5_target, PROMPTS[0], [PAD, 10, 11])[-1])
    with torch.no_grad():
        expected = tiny_target(torch.tensor([[1, 4, 5, 6]])).logits[0, -1]
    assert torch.equal(next_token_logits(tiny_target, [1, 4], [5, 6]), expected)


def _t5_counts(target, draft, prompt, tau, n):
    g = torch.Generator().manual_seed(1234)
    t_run, d_run = Seq2SeqRunner(target), Seq2SeqRunner(draft)
    counts = {}
    for _ in range(n):
        key = tuple(S.speculative_generate(t_run, d_run, prompt, max_new_tokens=3, k=2, tau=tau, generator=g,
                                           eos_token_id=[]).tokens)
        counts[key] = counts.get(key, 0) + 1
    return counts


N_T5 = N_SAMPLES // 8  # a T5 run costs about 7 ms on one core: 2,500 runs per test (the mutant is far off)


@pytest.fixture(scope="module")
def small_pair():
    """Vocabulary 6: every 3-token continuation can be enumerated (216 of them)."""
    return make_t5(vocab=6, d_model=16, seed=3, scale=1.5), make_t5(vocab=6, d_model=16, layers=1, seed=4, scale=1.5)


@pytest.mark.parametrize("tau, broken", [(0.5, False), (1.0, False), (1.7, False), (1.0, True)])
def test_distribution_matches_target(small_pair, tau, broken, monkeypatch):
    """Speculative sampling through two T5 models and their cropped caches draws exactly the
    target's distribution at tau; a verifier that accepts every draft token is caught."""
    target, draft = small_pair
    prompt = [1, 4, 5, EOS]
    # the decoder starts from [PAD]: row j of the logits after [PAD] + seq scores token j
    exact = exact_distribution(lambda full: decoder_logits(target, prompt, full), [PAD], 6, tau)
    if broken:
        monkeypatch.setattr(S, "verify", accept_everything)
    pvalue, tvd = chi_square(_t5_counts(target, draft, prompt, tau, N_T5), exact, N_T5)
    assert (pvalue < P_FAIL) if broken else (pvalue > P_PASS), (pvalue, tvd)


PAIRS = [(PROMPTS[0], [10, 11, 12]), (PROMPTS[1], [20, 21, 22, 23, EOS]), (PROMPTS[2], [30])]


def test_batched_answer_logits_equal_the_runners(t5_target):
    """`head_logits` on a `pack` batch (prompts of different lengths, right-padded) gives, in
    pack order, the logits the decoding runner gives after each answer token's prefix."""
    ids, mask, rows, cols, labels = pack(PAIRS, PAD, "cpu")
    with torch.no_grad():
        batched = head_logits(t5_target, ids, mask, rows, cols)
    runner = as_runner(t5_target)
    expected = torch.cat([runner.extend(torch.tensor(runner.start(p) + a[:-1])) for p, a in PAIRS])
    assert batched.shape == (labels.numel(), 64)
    torch.testing.assert_close(batched, expected, rtol=1e-4, atol=1e-4)


def test_expected_alpha_and_cost_ratio(t5_target, t5_draft):
    data = [{"prompt_ids": p, "answer_ids": a} for p, a in PAIRS]
    assert expected_alpha(t5_target, t5_target, data, 1.0, pad=PAD) == pytest.approx(1.0)
    alpha, per_position = expected_alpha(t5_target, t5_draft, data, 1.0, batch_size=2, pad=PAD, per_position=True)
    t_run, d_run = Seq2SeqRunner(t5_target), Seq2SeqRunner(t5_draft)
    manual = []
    for p, a in PAIRS:
        dec = torch.tensor(t_run.start(p) + a[:-1])
        d_run.start(p)
        manual += overlap(probs(t_run.extend(dec), 1.0), probs(d_run.extend(dec), 1.0)).tolist()
    assert per_position == pytest.approx(manual, abs=1e-5) and 0 < alpha < 1
    assert cost_ratio(t5_target, t5_draft, prompt_len=4, n_tokens=2, repeats=1)["c"] > 0


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_one_kd_step_lowers_the_loss_on_a_fixed_batch(t5_target, mode):
    """Offline: cross-entropy on the answers (decoder labels); online: KL of the target's p at
    tau 1 and the draft's q at every answer position."""
    draft = make_t5(d_model=16, layers=1, seed=5).train()
    cfg = KDConfig(mode=mode, tau_kd=1.0, lr=1e-2, source="data")
    params, opt = D._optimiser(draft, cfg)
    before, _ = D._loss(cfg, draft, t5_target, PAIRS, None, PAD, None, None)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after, tokens = D._loss(cfg, draft, t5_target, PAIRS, None, PAD, None, None)
    assert tokens == sum(len(a) for _, a in PAIRS)
    assert after.item() < before.item()


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_train_draft_on_teacher_samples_and_online_generation(t5_target, tokenizer, tmp_path, mode):
    """The whole path of a T5 pair: teacher samples from `generate` (answers without the decoder
    start token), training, saving, and loading back as an encoder-decoder model."""
    prompts = [p for p in PROMPTS for _ in range(3)]
    data = teacher_data(t5_target, tokenizer, prompts, [f"p{i}" for i in range(len(prompts))], 1.0,
                          tmp_path / "teacher", max_new_tokens=5, batch_size=4)
    greedy = S.autoregressive_generate(t5_target, PROMPTS[0], 5, tau=0, eos_token_id=EOS).tokens
    assert teacher_data(t5_target, tokenizer, PROMPTS[:1], ["g"], 0.0, tmp_path / "greedy",
                          max_new_tokens=5)["answer_ids"][0] == greedy
    assert all(0 < len(a) <= 5 for a in data["answer_ids"])
    cfg = KDConfig(mode=mode, steps=2, batch_size=3, warmup=1, max_new_tokens=4, checkpoint_every=1)
    draft = D.train_draft(tmp_path / mode, cfg, make_t5(d_model=16, layers=1, seed=5), tokenizer, target=t5_target,
                          data=data, prompts=prompts, progress=False)
    loaded = D.load_draft(tmp_path / mode, "cpu", torch.float32)
    assert loaded.config.is_encoder_decoder and len(json.loads((tmp_path / mode / "loss.json").read_text())) == 2
    torch.testing.assert_close(decoder_logits(loaded, PROMPTS[0], [PAD, 5]),
                               decoder_logits(draft, PROMPTS[0], [PAD, 5]))
