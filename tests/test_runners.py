"""The fast Llama runner computes what transformers computes, through cache growth and rollback."""

import pytest
import torch

from conftest import make_llama
from tcsd_utils import runners as R
from tcsd_utils.runners import KERNEL_ENV, KERNELS, SMALL, _cache_file, _machine_key, choose_kernel, kernel_choices
from tcsd_utils.timing import TIMING_THREADS_ENV, timing_thread_count, timing_threads
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


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_static_runner_matches_the_fast_path_through_rollback_and_gives_the_same_tokens(kv_heads):
    from tcsd_utils.runners import StaticLlamaRunner
    from tcsd_utils.speculative import autoregressive_generate, speculative_generate

    model = make_llama(vocab=24, hidden=32, heads=4, kv_heads=kv_heads, seed=3)
    prompt = [1, 7, 3, 9, 14, 2, 8]
    static, static_seq = _drive(StaticLlamaRunner(model, capacity=64), prompt, STEPS)
    fast, fast_seq = _drive(LlamaRunner(model), prompt, STEPS)
    assert static_seq == fast_seq
    for a, b in zip(static, fast):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    draft = make_llama(vocab=24, hidden=16, layers=1, seed=5)
    for tau in (0.0, 1.0):
        plain = autoregressive_generate(StaticLlamaRunner(model), prompt, 30, tau=tau, seed=1, eos_token_id=[])
        assert plain.tokens == autoregressive_generate(model, prompt, 30, tau=tau, seed=1, eos_token_id=[]).tokens
        spec = speculative_generate(StaticLlamaRunner(model), StaticLlamaRunner(draft), prompt, 30, k=3, tau=tau,
                                    seed=1, eos_token_id=[])
        assert spec.tokens == speculative_generate(model, draft, prompt, 30, k=3, tau=tau, seed=1,
                                                   eos_token_id=[]).tokens


def test_static_runner_refuses_more_tokens_than_it_holds():
    from tcsd_utils.runners import StaticLlamaRunner

    runner = StaticLlamaRunner(make_llama(vocab=24, seed=4), capacity=8)
    runner.start([1, 2, 3])
    runner.extend(torch.tensor([1, 2, 3, 4, 5, 6]))
    with pytest.raises(ValueError, match="holds 8 tokens; this step needs 9"):
        runner.extend(torch.tensor([7, 8, 9]))


def test_one_static_runner_per_model_is_reused_by_every_decode():
    from tcsd_utils import runners as R
    from tcsd_utils.speculative import autoregressive_generate

    model = make_llama(vocab=24, seed=6)
    first = R._static_runner(model)
    assert R._static_runner(model) is first and first.widths == tuple(range(1, SMALL + 1))
    a = autoregressive_generate(first, [1, 5, 7], 12, tau=1.0, seed=3, eos_token_id=[]).tokens
    b = autoregressive_generate(R._static_runner(model), [1, 5, 7], 12, tau=1.0, seed=3, eos_token_id=[]).tokens
    assert a == b  # start() resets the reused cache
    assert isinstance(R.as_runner(model), R.LlamaRunner) and not isinstance(R.as_runner(model), R.StaticLlamaRunner)


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


# ---------------------------------------------------------------- kernels chosen by measurement


@pytest.fixture
def fresh_kernels(monkeypatch, tmp_path):
    monkeypatch.setattr(R, "_CHOSEN", {})
    monkeypatch.setattr(R, "_DISK", None)
    monkeypatch.setenv("TCSD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    return R


@pytest.mark.parametrize("n", [1, 3])
def test_every_kernel_computes_the_same_product(n):
    w, x = torch.randn(24, 16), torch.randn(1, n, 16)
    want = x @ w.T
    for name, kernel in KERNELS.items():
        torch.testing.assert_close(kernel(x, w), want, rtol=1e-5, atol=1e-5, msg=name)


def test_kernel_is_timed_once_and_kept_on_disk(fresh_kernels):
    import json

    w = torch.randn(64, 32)
    state = torch.get_rng_state()
    one, step = choose_kernel(w, 1), choose_kernel(w, 4)
    assert torch.equal(torch.get_rng_state(), state)  # timing inputs come from a local generator
    assert one in ("mv", "linear", "matmul") and step in ("linear", "matmul")
    saved = json.loads((_cache_file()).read_text())
    assert saved[_machine_key()] == {"cpu|float32|64|32|1": one, "cpu|float32|64|32|4": step}  # one per width
    wide = choose_kernel(w, SMALL)
    assert json.loads((_cache_file()).read_text())[_machine_key()][f"cpu|float32|64|32|{SMALL}"] == wide
    with pytest.raises(ValueError, match=f"1 to {SMALL} new tokens"):
        choose_kernel(w, SMALL + 1)
    assert kernel_choices()["cpu|float32|64|32|1"] == one
    R._CHOSEN.clear()
    R._DISK = {"cpu|float32|64|32|1": "matmul"}  # a choice read back is used as it is
    assert choose_kernel(w, 1) == "matmul"


def test_kernel_can_be_forced_and_a_bad_name_is_refused(fresh_kernels, monkeypatch):
    monkeypatch.setenv(KERNEL_ENV, "linear")
    assert choose_kernel(torch.randn(8, 4), 1) == "linear"
    monkeypatch.setenv(KERNEL_ENV, "fastest")
    with pytest.raises(ValueError, match="TCSD_KERNEL must be one of"):
        choose_kernel(torch.randn(8, 5), 1)


def test_timing_threads_leaves_a_core_free_and_restores_the_thread_count(monkeypatch):
    import os


    before = torch.get_num_threads()
    monkeypatch.delenv(TIMING_THREADS_ENV, raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert timing_thread_count() == max(1, cores - 1)
    monkeypatch.setenv(TIMING_THREADS_ENV, "1")
    with timing_threads() as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), timing_threads():  # restored on an error too
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(TIMING_THREADS_ENV, bad)
        with pytest.raises(ValueError, match=TIMING_THREADS_ENV):
            timing_thread_count()


def test_the_test_run_keeps_its_own_kernel_cache():
    """The tests measure tiny shapes on a busy CPU: those choices must not land in the user's
    cache, where a study would read its dtype from them (tests/conftest.py)."""
    import tempfile
    from pathlib import Path

    from tcsd_utils.runners import _cache_file

    folder = _cache_file().parent
    assert folder.name.startswith("tcsd-test-cache-") and Path(tempfile.gettempdir()) in folder.parents
