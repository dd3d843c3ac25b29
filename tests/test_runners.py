"""The fast Llama runner computes what transformers computes, through cache growth and rollback."""

import pytest
import torch

from conftest import make_llama
from tcsd_utils.runners import CausalLMRunner, LlamaRunner, as_runner


def _full_logits(model, seq):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([seq])).logits[0]


def _drive(runner, prompt, steps):
    """Prefill, then extend by each chunk in ``steps`` and roll back ``back`` tokens after it;
    return the logits of every chunk and the sequence the cache holds at the end."""
    seq = runner.start(prompt)
    outs = [runner.extend(torch.tensor(seq))]
    for chunk, back in steps:
        outs.append(runner.extend(torch.tensor(chunk)))
        seq = seq + chunk
        if back:
            seq = seq[:-back]
            runner.rollback(len(seq))
    assert runner.length == len(seq)
    return outs, seq


STEPS = [([5, 6, 7], 2), ([8], 0), ([9, 10, 11, 12], 3), ([4, 4], 0), ([13], 1),
         ([(3 * i) % 20 + 4 for i in range(12)], 5), ([6, 2], 0)]  # 12 tokens: past the small-batch path


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_llama_runner_matches_transformers_through_rollback(kv_heads):
    model = make_llama(vocab=24, hidden=32, heads=4, kv_heads=kv_heads, seed=3)
    prompt = [1, 7, 3, 9, 14, 2, 8]
    fast, fast_seq = _drive(LlamaRunner(model), prompt, STEPS)
    ref, ref_seq = _drive(CausalLMRunner(model), prompt, STEPS)
    assert fast_seq == ref_seq
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the cache holds exactly the committed sequence: the next token's logits equal a
    # forward over the whole sequence without a cache
    runner = LlamaRunner(model)
    _drive(runner, prompt, STEPS)
    nxt = runner.extend(torch.tensor([6]))
    torch.testing.assert_close(nxt[-1], _full_logits(model, fast_seq + [6])[-1], rtol=1e-5, atol=1e-5)


def test_llama_runner_grows_its_cache():
    model = make_llama(vocab=24, context=1024, seed=4)
    runner = LlamaRunner(model)
    seq = runner.start([1, 2, 3])
    runner.extend(torch.tensor(seq))
    first = runner.capacity
    g = torch.Generator().manual_seed(0)
    while runner.length <= first + 10:  # past the first allocation, in uneven chunks
        chunk = torch.randint(4, 24, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
        logits = runner.extend(torch.tensor(chunk))
        seq += chunk
    assert runner.capacity > first
    torch.testing.assert_close(logits, _full_logits(model, seq)[-len(chunk):], rtol=1e-4, atol=1e-4)


def test_llama_runner_bf16_matches_to_rounding():
    model = make_llama(vocab=24, hidden=32, heads=4, kv_heads=2, seed=5).to(torch.bfloat16)
    prompt = [1, 7, 3, 9, 14, 2, 8]
    fast, _ = _drive(LlamaRunner(model), prompt, STEPS)
    ref, _ = _drive(CausalLMRunner(model), prompt, STEPS)
    for a, b in zip(fast, ref):  # bfloat16: the kernels round differently
        torch.testing.assert_close(a, b, rtol=2e-2, atol=4e-3)


def test_llama_runner_follows_weight_updates():
    model = make_llama(seed=6)
    runner = LlamaRunner(model)
    before = runner.extend(torch.tensor(runner.start([1, 5, 9])))
    with torch.no_grad():
        model.lm_head.weight.mul_(2.0)
    after = runner.extend(torch.tensor(runner.start([1, 5, 9])))
    torch.testing.assert_close(after, 2 * before)


@pytest.mark.parametrize("extra", [{"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
                                   {"mlp_bias": True}, {"attention_bias": True}, {"hidden_act": "gelu"}])
def test_unsupported_llama_falls_back_to_transformers(extra):
    model = make_llama(seed=7, **extra)
    assert not LlamaRunner.supports(model)
    assert isinstance(as_runner(model), CausalLMRunner)
    with pytest.raises(ValueError, match="CausalLMRunner"):
        LlamaRunner(model)


def test_as_runner_picks_the_fast_path_and_can_be_told_not_to():
    model = make_llama(seed=8)
    assert isinstance(as_runner(model), LlamaRunner)
    assert isinstance(as_runner(model, fast=False), CausalLMRunner)
    runner = CausalLMRunner(model)
    assert as_runner(runner) is runner
