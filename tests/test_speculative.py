"""Speculative sampling is lossless: greedy parity, exact distributions, forced accept/reject."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from scipy import stats as sps

from conftest import make_llama
from tcsd_utils import speculative as S
from tcsd_utils.temperature import probs

NEG = float("-inf")


class TableRunner:
    """A fast random "model": next-token logits = table[position, current token].

    It stands behind the same `Runner` interface as a Hugging Face model, so the real
    decoding loop runs unchanged; it only makes 20,000-sample tests cheap. It counts the
    tokens it is fed, to prove the prompt is never recomputed.
    """

    def __init__(self, table):
        self.table = table  # (context, vocab, vocab)
        self.device = torch.device("cpu")
        self.context_length = table.shape[0]
        self.length = 0
        self.fed = 0

    def start(self, prompt_ids):
        self.length, self.fed = 0, 0
        return list(prompt_ids)

    def extend(self, ids):
        pos = torch.arange(self.length, self.length + ids.numel())
        self.length += ids.numel()
        self.fed += ids.numel()
        return self.table[pos, ids]

    def rollback(self, length):
        self.length = min(self.length, length)


def exact_distribution(logits_fn, prompt, vocab, tau, n_tokens=3):
    """P(first n_tokens) under the target at tau, by enumerating every continuation."""
    out = {}
    for seq in itertools.product(range(vocab), repeat=n_tokens):
        full = list(prompt) + list(seq)
        logits = logits_fn(full)  # (len(full), vocab): logits after each token
        prob = 1.0
        for j, t in enumerate(seq):
            prob *= probs(logits[len(prompt) - 1 + j], tau)[t].item()
        out[seq] = prob
    return out


def chi_square(counts, exact, n):
    """Pearson chi-square over cells with expected count >= 5; the rest pooled in one cell."""
    obs, exp, rest_o, rest_e = [], [], 0, 0.0
    for cell, pr in exact.items():
        if pr * n >= 5:
            obs.append(counts.get(cell, 0))
            exp.append(pr * n)
        else:
            rest_o += counts.get(cell, 0)
            rest_e += pr * n
    if rest_e > 0:
        obs.append(rest_o)
        exp.append(rest_e)
    total = sum(exp)
    exp = [e * sum(obs) / total for e in exp]  # float32 probabilities: renormalise the last ulp
    chi2, pvalue = sps.chisquare(obs, exp)
    tvd = 0.5 * sum(abs(counts.get(c, 0) / n - pr) for c, pr in exact.items())
    return pvalue, tvd


def sample_counts(target, draft, prompt, tau, n, k=2, n_tokens=3):
    g = torch.Generator().manual_seed(1234)
    counts = {}
    for _ in range(n):
        out = S.speculative_generate(target, draft, prompt, max_new_tokens=n_tokens, k=k, tau=tau,
                                     generator=g, eos_token_id=[])
        key = tuple(out.tokens)
        counts[key] = counts.get(key, 0) + 1
    return counts


def table_pair(vocab=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (TableRunner(torch.randn(16, vocab, vocab, generator=g) * 2.0),
            TableRunner(torch.randn(16, vocab, vocab, generator=g) * 2.0))


def table_logits(runner, full):
    return runner.table[torch.arange(len(full)), torch.tensor(full)]


def accept_everything(p, q, x, generator=None):
    """A broken verifier: every draft token passes."""
    return x.shape[0], int(torch.multinomial(p[x.shape[0]], 1, generator=generator))


# Thresholds: a correct sampler gives p-values spread uniformly on [0, 1], so with fixed
# seeds it passes `pvalue > 1e-3`; a broken one must be rejected far below that.
P_PASS, P_FAIL, N_SAMPLES = 1e-3, 1e-6, 20_000


@pytest.mark.parametrize("tau", [0.5, 1.0, 1.7])
def test_distribution_matches_target_table_models(tau):
    target, draft = table_pair()
    prompt = [1, 2]
    exact = exact_distribution(lambda s: table_logits(target, s), prompt, 6, tau)
    counts = sample_counts(target, draft, prompt, tau, N_SAMPLES)
    pvalue, tvd = chi_square(counts, exact, N_SAMPLES)
    assert pvalue > P_PASS, (pvalue, tvd)


@pytest.mark.parametrize("tau", [0.5, 1.7])
def test_broken_sampler_is_caught(tau, monkeypatch):
    target, draft = table_pair()
    prompt = [1, 2]
    exact = exact_distribution(lambda s: table_logits(target, s), prompt, 6, tau)
    monkeypatch.setattr(S, "verify", accept_everything)
    counts = sample_counts(target, draft, prompt, tau, N_SAMPLES)
    pvalue, _ = chi_square(counts, exact, N_SAMPLES)
    assert pvalue < P_FAIL


def test_distribution_matches_target_tiny_llama():
    """The same test through Hugging Face Llama models and real KV caches (tau = 1)."""
    target = make_llama(vocab=6, hidden=16, layers=2, heads=2, seed=3, scale=8.0)
    draft = make_llama(vocab=6, hidden=16, layers=1, heads=2, seed=4, scale=8.0)
    prompt = [1, 4, 5]

    def logits_fn(full):
        with torch.no_grad():
            return target(torch.tensor([full])).logits[0]

    exact = exact_distribution(logits_fn, prompt, 6, 1.0)
    counts = sample_counts(target, draft, prompt, 1.0, N_SAMPLES)
    pvalue, tvd = chi_square(counts, exact, N_SAMPLES)
    assert pvalue > P_PASS, (pvalue, tvd)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_equals_autoregressive_and_transformers(tiny_target, tiny_draft, k):
    for prompt in ([1, 4, 5], [1, 12, 13, 14, 6], [7]):
        ar = S.autoregressive_generate(tiny_target, prompt, max_new_tokens=20, tau=0, eos_token_id=[])
        sd = S.speculative_generate(tiny_target, tiny_draft, prompt, max_new_tokens=20, k=k, tau=0,
                                    eos_token_id=[])
        ref = tiny_target.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False,
                                   eos_token_id=None, pad_token_id=3)[0, len(prompt):].tolist()
        assert sd.tokens == ar.tokens == ref
        assert len(sd.tokens) == 20


def test_draft_equal_to_target_accepts_everything(tiny_target):
    out = S.speculative_generate(tiny_target, tiny_target, [1, 4, 5], max_new_tokens=21, k=4, tau=1.0,
                                 seed=0, eos_token_id=[])
    assert out.stats.alpha_drafted == 1.0 and out.stats.alpha_tested == 1.0 and out.stats.rejections == 0
    # 4 steps of 4 accepted + 1 bonus = 20 tokens; the 21st step may add only one token, so it
    # proposes nothing and takes the target's token (never generating past max_new_tokens)
    assert out.stats.accepted_per_step == [4, 4, 4, 4, 0]
    assert out.stats.new_tokens == 21 and out.stats.drafted == 16


def test_token_sources_label_every_committed_token():
    everything = S.DecodeStats(accepted_per_step=[4, 4, 4, 4, 0], drafted_per_step=[4, 4, 4, 4, 0])
    sources = S.token_sources(everything)
    assert sources == (["draft"] * 4 + ["bonus"]) * 4 + ["bonus"]  # the last step drafted nothing
    mixed = S.DecodeStats(accepted_per_step=[0, 2, 1], drafted_per_step=[3, 3, 1])
    assert S.token_sources(mixed) == ["resampled", "draft", "draft", "resampled", "draft", "bonus"]
    assert S.token_sources(mixed, 4) == ["resampled", "draft", "draft", "resampled"]
    target, draft = table_pair(vocab=6, seed=7)
    out = S.speculative_generate(target, draft, [1, 2], max_new_tokens=12, k=3, tau=1.0, seed=5, eos_token_id=[])
    sources = S.token_sources(out.stats, len(out.tokens))
    assert len(sources) == len(out.tokens) and sources.count("draft") == out.stats.accepted
    assert sources.count("resampled") == out.stats.rejections


def test_stats_are_consistent_and_prompt_is_fed_once():
    target, draft = table_pair(vocab=6, seed=7)
    prompt = [1, 2, 3, 4]
    out = S.speculative_generate(target, draft, prompt, max_new_tokens=12, k=3, tau=1.0, seed=5,
                                 eos_token_id=[])
    s = out.stats
    assert s.new_tokens == len(out.tokens) == 12
    assert s.new_tokens == s.accepted + s.steps  # each step: accepted drafts + one target token
    assert s.target_forwards == s.steps + 1  # + the prefill
    assert 0 <= s.accepted <= s.drafted and s.alpha_drafted == s.accepted / s.drafted
    # a step that proposed k tokens and accepted fewer had exactly one rejection
    k_eff, done = [], 0
    for n in s.accepted_per_step:  # what each step proposed: k, or less where max_new_tokens cuts it
        k_eff.append(min(3, 12 - done - 1))
        done += n + 1
    assert sum(k_eff) == s.drafted
    assert s.rejections == sum(n < k for n, k in zip(s.accepted_per_step, k_eff))
    assert s.alpha_tested == s.accepted / (s.accepted + s.rejections) >= s.alpha_drafted
    # the prompt is fed once; afterwards only the last token and the drafts are fed
    assert target.fed == (len(prompt) - 1) + s.steps + s.drafted
    assert target.length == len(prompt) + 12 - 1
    assert s.time_total >= s.time_target + s.time_draft > 0


def test_eos_stops_generation(tiny_target, tiny_draft):
    free = S.autoregressive_generate(tiny_target, [1, 4, 5], max_new_tokens=10, tau=0, eos_token_id=[])
    eos = free.tokens[3]
    for run in (lambda: S.autoregressive_generate(tiny_target, [1, 4, 5], max_new_tokens=10, tau=0,
                                                  eos_token_id=eos),
                lambda: S.speculative_generate(tiny_target, tiny_draft, [1, 4, 5], max_new_tokens=10,
                                               k=4, tau=0, eos_token_id=[eos])):
        out = run()
        first = free.tokens.index(eos)
        assert out.tokens == free.tokens[: first + 1]


# Forced outcomes, in the style of transformers' test_speculative_sampling: logits of +-10
# and -inf make accept and reject certain.
def test_verify_forced_accept_and_reject():
    x = torch.tensor([0, 1, 2])
    q = probs(torch.tensor([[10.0, NEG, NEG, NEG],
                            [NEG, 10.0, NEG, NEG],
                            [NEG, NEG, 10.0, NEG]]), 1.0)  # q is one-hot on each draft token
    p = probs(torch.tensor([[10.0, NEG, NEG, NEG],   # accepts x_1 = 0 (p = q)
                            [NEG, 10.0, NEG, NEG],   # accepts x_2 = 1
                            [NEG, NEG, NEG, 10.0],   # rejects x_3 = 2 (p(2) = 0) -> token 3
                            [10.0, NEG, NEG, NEG]]), 1.0)
    for seed in range(20):
        assert S.verify(p, q, x, torch.Generator().manual_seed(seed)) == (2, 3)
    p_all = p.clone()
    p_all[2] = q[2]                                   # now accepts all three ...
    p_all[3] = probs(torch.tensor([NEG, 10.0, NEG, NEG]), 1.0)  # ... and the bonus is token 1
    assert S.verify(p_all, q, x, torch.Generator().manual_seed(0)) == (3, 1)
    # rejects the first: the draft's token has zero target mass; the residual has only token 2
    p_first = probs(torch.tensor([[NEG, NEG, 10.0, NEG]] * 4), 1.0)
    assert S.verify(p_first, q, x, torch.Generator().manual_seed(0)) == (0, 2)
    # nothing drafted: the token comes from p_1
    assert S.verify(p_all[:1], q[:0], x[:0], torch.Generator().manual_seed(0)) == (0, 0)


def test_verify_rejection_draws_from_residual():
    """After rejection the token follows norm(max(0, p - q)), never the rejected token."""
    p = torch.tensor([[0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3]])
    q = torch.tensor([[0.0, 0.9, 0.1]])
    x = torch.tensor([1])
    # three seeded streams pooled: one seed's stream can sit 3-4 sigma off by chance (torch's
    # seed-0 stream, read every third 32-bit word, has 32.0% of its floats below 1/3)
    outs = []
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        outs += [S.verify(p, q, x, g) for _ in range(6000)]
    rejected = [t for n, t in outs if n == 0]
    accept_rate = 1 - len(rejected) / len(outs)
    sigma = (1 / 3 * 2 / 3 / len(outs)) ** 0.5
    assert abs(accept_rate - 0.3 / 0.9) < 4 * sigma  # min(1, p/q) for x = 1
    # residual max(0, p - q) = [0.5, 0, 0.1] -> [5/6, 0, 1/6]
    assert 1 not in rejected
    sigma = (5 / 6 * 1 / 6 / len(rejected)) ** 0.5
    assert abs(rejected.count(0) / len(rejected) - 5 / 6) < 4 * sigma


@pytest.mark.parametrize("kwargs, match", [
    (dict(prompt_ids=[]), "empty prompt"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(k=0), "k"),
    (dict(tau=-1.0), "tau"),
    (dict(tau=float("nan")), "tau"),
    (dict(draft_tau=float("inf")), "draft_tau"),
    (dict(prompt_ids=list(range(4)) * 40), "context"),
])
def test_bad_input_raises(tiny_target, tiny_draft, kwargs, match):
    args = dict(prompt_ids=[1, 4, 5], max_new_tokens=5, k=2, tau=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        S.speculative_generate(tiny_target, tiny_draft, **args)
    if "k" not in kwargs and "draft_tau" not in kwargs:
        args.pop("k"), args.pop("draft_tau", None)
        with pytest.raises(ValueError, match=match):
            S.autoregressive_generate(tiny_target, **args)


class Untouchable:
    """A runner that fails the test if anything starts or runs it: bad prompts must be refused
    before any model work."""

    device = torch.device("cpu")
    context_length, vocab_size, length = 128, 16, 0

    def start(self, prompt_ids):
        raise AssertionError("a model was started with a bad prompt")

    def extend(self, ids):
        raise AssertionError("a model ran on a bad prompt")

    def rollback(self, length):
        raise AssertionError("a model was rolled back on a bad prompt")


@pytest.mark.parametrize("prompt, received", [
    ([1.5, 2], r"prompt_ids\[0\] is a float \(1\.5\)"),
    ([1, 4.0], r"prompt_ids\[1\] is a float \(4\.0\)"),  # a whole number is still not an id
    ([1, True], r"prompt_ids\[1\] is a bool"),
    ([1, np.bool_(True)], r"prompt_ids\[1\] is a bool"),
    ([1, None], r"prompt_ids\[1\] is a NoneType"),
    ([[1, 4, 5]], r"prompt_ids\[0\] is a list"),
    ([torch.tensor(1.0)], r"prompt_ids\[0\] is a Tensor"),
    ("hello world", r"text \(a str\)"),
    (b"\x01\x04", r"text \(a bytes\)"),
    ({"input_ids": [1, 4, 5], "attention_mask": [1, 1, 1]}, r"a dict \(a mapping with keys 'input_ids'"),
    (torch.tensor([1.0, 4.0]), r"Tensor of dtype torch\.float32"),
    (torch.tensor([True, False]), r"Tensor of dtype torch\.bool"),
    (np.array([1.5, 4.0]), r"ndarray of dtype float64"),
    (torch.tensor([[1, 4, 5]]), r"shape \(1, 3\), not 1-D \(a batch of one prompt: pass prompt_ids\[0\]\)"),
    (7, r"prompt_ids is a int, not a sequence"),
])
def test_a_prompt_that_is_not_token_ids_raises_before_any_model_work(prompt, received):
    hint = r"pass token ids: a list of ints or a 1-D LongTensor.*tokenizer\(text\)\[\"input_ids\"\]"
    for decode in (lambda: S.speculative_generate(Untouchable(), Untouchable(), prompt, max_new_tokens=4, k=2),
                   lambda: S.autoregressive_generate(Untouchable(), prompt, max_new_tokens=4)):
        with pytest.raises(ValueError, match=received) as err:
            decode()
        assert re.search(hint, str(err.value)), str(err.value)


@pytest.mark.parametrize("prompt", [
    [1, 4, 5],
    [np.int64(1), np.int32(4), np.uint8(5)],
    [torch.tensor(1), torch.tensor(4), torch.tensor(5)],
    torch.tensor([1, 4, 5]),
    torch.tensor([1, 4, 5], dtype=torch.int32),
    np.array([1, 4, 5]),
    (1, 4, 5),
], ids=["ints", "numpy ints", "0-d tensors", "LongTensor", "IntTensor", "ndarray", "tuple"])
def test_integer_prompts_of_every_accepted_type_decode_alike(tiny_target, tiny_draft, prompt):
    want = S.speculative_generate(tiny_target, tiny_draft, [1, 4, 5], max_new_tokens=5, k=2, eos_token_id=[]).tokens
    got = S.speculative_generate(tiny_target, tiny_draft, prompt, max_new_tokens=5, k=2, eos_token_id=[])
    plain = S.autoregressive_generate(tiny_target, prompt, max_new_tokens=5, eos_token_id=[])
    assert got.tokens == want == plain.tokens  # greedy: both decoders give the target's argmax path
    assert all(type(t) is int for t in got.tokens)


def exact_scheduled(logits_fn, prompt, vocab, taus):
    """P(first len(taus) tokens) under the target when new token j is drawn at taus[j]."""
    out = {}
    for seq in itertools.product(range(vocab), repeat=len(taus)):
        logits, prob = logits_fn(list(prompt) + list(seq)), 1.0
        for j, t in enumerate(seq):
            prob *= probs(logits[len(prompt) - 1 + j], taus[j])[t].item()
        out[seq] = prob
    return out


def test_a_temperature_schedule_stays_exact_and_plain_decoding_follows_it():
    """New token n is drawn at tau(n) by both decoders; a draft at tau_q keeps it exact."""
    from tcsd_utils.temperature import Anneal

    target, draft = table_pair()
    prompt, schedule = [1, 2], Anneal(1.7, 0.3, 2)  # tokens 0, 1, 2 at tau 1.7, 1.0, 0.3
    assert [schedule(n) for n in range(4)] == pytest.approx([1.7, 1.0, 0.3, 0.3])
    exact = exact_scheduled(lambda s: table_logits(target, s), prompt, 6, [1.7, 1.0, 0.3])
    for draft_tau in (None, 2.0):
        g, counts = torch.Generator().manual_seed(99), {}
        for _ in range(N_SAMPLES):
            key = tuple(S.speculative_generate(target, draft, prompt, 3, k=2, tau=schedule, draft_tau=draft_tau,
                                               generator=g, eos_token_id=[]).tokens)
            counts[key] = counts.get(key, 0) + 1
        pvalue, tvd = chi_square(counts, exact, N_SAMPLES)
        assert pvalue > P_PASS, (draft_tau, pvalue, tvd)
    fixed = exact_distribution(lambda s: table_logits(target, s), prompt, 6, 1.7)  # the schedule matters
    assert chi_square(counts, fixed, N_SAMPLES)[0] < P_FAIL
    g, counts = torch.Generator().manual_seed(7), {}
    for _ in range(N_SAMPLES // 4):
        key = tuple(S.autoregressive_generate(target, prompt, 3, tau=schedule, generator=g, eos_token_id=[]).tokens)
        counts[key] = counts.get(key, 0) + 1
    assert chi_square(counts, exact, N_SAMPLES // 4)[0] > P_PASS
    with pytest.raises(ValueError, match="tau must be >= 0"):
        S.speculative_generate(target, draft, prompt, 3, tau=lambda n: -1.0)
    with pytest.raises(ValueError, match="n_tokens"):
        Anneal(1.0, 0.3, 0)


def test_time_verify_is_part_of_the_target_time(tiny_target, tiny_draft):
    st = S.speculative_generate(tiny_target, tiny_draft, [1, 4, 5], 6, k=2, tau=1.0, seed=0, eos_token_id=[]).stats
    assert 0 < st.time_verify <= st.time_target and "time_verify" in st.as_dict()
