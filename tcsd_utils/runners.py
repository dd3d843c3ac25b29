"""How the decoders call a model: one forward over new tokens, with a KV cache that can be cropped.

Every decoder in tcsd (plain, speculative, the cost ratio c) calls a model only through a
runner, so plain and speculative decoding share one forward and one cache (fair timings).

- `LlamaRunner` is the fast path for Llama-architecture models (the embedded SmolLM2 target
  and every draft this project builds). It runs the same arithmetic as transformers'
  ``LlamaForCausalLM`` (equal logits up to float rounding, tests/test_runners.py; for the
  embedded target in bfloat16 they came out bit-identical when measured) straight
  from the model's own weight tensors, into a preallocated KV cache. Rolling back is moving
  a length; appending is one slice copy per layer. What it removes is not model compute: the
  module-call and mask-building overhead of transformers' forward, and the per-token
  ``torch.cat`` of ``DynamicCache``; and it picks the fastest kernel for the number of new
  tokens, timed once per weight shape on the machine that runs (`choose_kernel`, below), and
  `LlamaRunner._attention`. On one 2-core CPU a token of the target
  takes 22 ms instead of 33-34, a verification step of 2-5 tokens 25-26 ms instead of
  35-36, and a token of the 2-layer draft 1.4-1.5 ms instead of 2.5 (FINDINGS.md, speed against transformers).
- `CausalLMRunner` calls any transformers decoder-only model with a ``DynamicCache``; it is
  the fallback for other architectures and the reference the fast path is tested against.
- `Seq2SeqRunner` calls an encoder-decoder model (T5, the paper's second family): the prompt
  goes to the encoder once per `start`, the decoder continues from its start token with an
  ``EncoderDecoderCache`` whose self-attention half is cropped on rollback.

`as_runner` picks: `Seq2SeqRunner` for an encoder-decoder model, the fast path when
`LlamaRunner.supports` the model, else the fallback.
"""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Protocol, Sequence

import torch
import torch.nn.functional as F

from .files import write_json
from .timing import Clock, cpu_info

__all__ = ["Runner", "CausalLMRunner", "Seq2SeqRunner", "LlamaRunner", "StaticLlamaRunner", "as_runner",
           "next_token_logits", "context_length", "SMALL", "linear", "choose_kernel", "choose_dtype",
           "choose_train_dtype", "train_precision", "TRAIN_DTYPE_ENV", "choose_sample_dtype", "SAMPLE_DTYPE_ENV",
           "kernel_choices",
           "KERNELS", "KERNEL_ENV"]


# -- the kernels: what runs fastest on this machine ----------------------------------------
#
# Batch-1 decoding on a CPU is bound by reading the weights, and which kernel reads them
# fastest depends on the machine (the speed issue: a choice fixed on one 2-core CPU made the
# plain decoder 0.92x of transformers' on another of the same kind). So `linear` computes
# ``x @ weight.T`` by the kernel measured fastest for the weight's shape and the number of new
# tokens (`choose_kernel`: ``torch.mv``, ``F.linear`` or ``weight @ x.T``, timed once per
# machine and kept under the user's cache folder; ``$TCSD_KERNEL`` forces one), and
# `choose_dtype` picks bfloat16 or float32 on a CPU, whichever multiplies faster here
# (`tcsd_utils.models.default_dtype` asks it); `choose_train_dtype` the same for training a
# draft, where the products are wide and a backward follows (`tcsd_utils.distill`), and
# `choose_sample_dtype` for drawing teacher samples, a batch of sequences at a time
# (`tcsd_utils.models.sampling_model`).

SMALL = 8  # up to this many new tokens count as a verification step (small-batch kernels)


def linear(x, weight):
    """``x @ weight.T`` for x of shape (1, n, in), by the kernel measured fastest for its shape.

    Batch-1 decoding is bound by reading the weights, and which kernel reads them fastest
    depends on the machine: on one 2-core CPU a matrix-vector product ran the target's token
    in 22.7 ms against 29.3 with ``F.linear``; on another of the same kind ``F.linear`` was
    the faster (62 against 96 us for a 1536 x 576 bfloat16 weight). So for one token and for
    each width of a verification step (2 to `SMALL` tokens), each weight shape's kernel is
    timed once (`choose_kernel`); longer inputs take ``F.linear``."""
    n = x.shape[1]
    if n > SMALL:
        return F.linear(x, weight)
    return KERNELS[choose_kernel(weight, n)](x, weight)


def _mv(x, weight):
    if x.shape[1] != 1:
        return F.linear(x, weight)
    return torch.mv(weight, x.view(-1)).view(1, 1, -1)


def _matmul(x, weight):
    # x.T stays a strided view: made contiguous, a 2-4-token product with the 49152 x 576 head
    # took 21 ms on a 2-core AVX2 CPU, as a view 7.4-7.8 ms (a one-token product: 9.3 ms)
    n = x.shape[1]
    return (weight @ x.view(n, -1).t()).t().reshape(1, n, -1)


KERNELS = {"mv": _mv, "linear": lambda x, weight: F.linear(x, weight), "matmul": _matmul}
KERNEL_ENV = "TCSD_KERNEL"  # force one kernel for every shape: mv (one token; else linear), linear, matmul
_CHOSEN: dict = {}  # (device, dtype, out, in, new tokens 1..SMALL) -> kernel name, this process
_DISK: dict | None = None
# raised when a kernel's code or what a choice covers changes: choices measured before are measured
# again (v3: one choice per verification width, not one for widths 2 to SMALL; v4: bfloat16 only
# by a margin, `BF16_MARGIN`)
KERNELS_VERSION = 4


def _machine_key() -> str:
    """The machine a choice was measured on: CPU model, torch, threads, and the GPU's name
    where there is one (a choice for one GPU model is not reused on another), and the
    kernels' version."""
    gpu = f" | {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu_info()[0]} | torch {torch.__version__} | {torch.get_num_threads()} threads{gpu}"
            f" | kernels v{KERNELS_VERSION}")


def _cache_file():
    base = os.environ.get("TCSD_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tcsd"
    return Path(base) / "kernels.json"


def _disk() -> dict:
    """Choices measured earlier on this machine (same CPU model, torch version, threads)."""
    global _DISK
    if _DISK is None:
        try:
            _DISK = json.loads(_cache_file().read_text()).get(_machine_key(), {})
        except (OSError, ValueError):
            _DISK = {}
    return _DISK


def _save_disk() -> None:
    path = _cache_file()
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[_machine_key()] = _DISK
        write_json(data, path)
    except (OSError, ValueError):
        pass  # a read-only home: the choice is only kept for this process


def _time(kernel, x, weight, calls: int = 8) -> float:
    clock = Clock(weight.device)
    best = float("inf")
    for _ in range(3):
        kernel(x, weight)
        t0 = clock()  # on CUDA it waits for the warm-up call first
        for _ in range(calls):
            kernel(x, weight)
        best = min(best, clock() - t0)
    return best / calls


@torch.inference_mode()
def choose_kernel(weight, n: int) -> str:
    """The fastest kernel for ``weight`` and ``n`` new tokens (one token, or a verification
    step of ``n`` <= `SMALL`: which kernel wins changes with the width, so each is timed),
    timed once per machine and kept in ``~/.cache/tcsd/kernels.json`` (``$TCSD_CACHE_DIR``
    moves it); ``$TCSD_KERNEL`` forces one."""
    if not 1 <= n <= SMALL:
        raise ValueError(f"choose_kernel covers 1 to {SMALL} new tokens, got {n}")
    key = (weight.device.type, str(weight.dtype).replace("torch.", ""), *weight.shape, n)
    if key in _CHOSEN:
        return _CHOSEN[key]

    forced = os.environ.get(KERNEL_ENV)
    if forced:
        if forced not in KERNELS:
            raise ValueError(f"${KERNEL_ENV} must be one of {sorted(KERNELS)}, got {forced!r}")
        _CHOSEN[key] = forced
        return forced
    text = "|".join(map(str, key))
    kind = _disk().get(text)
    if kind not in KERNELS:
        g = torch.Generator(device=weight.device).manual_seed(0)  # timing input only: leave the global RNG alone
        x = torch.randn(1, n, weight.shape[1], generator=g, device=weight.device).to(weight.dtype)
        candidates = ("mv", "linear", "matmul") if n == 1 else ("linear", "matmul")
        kind = min(candidates, key=lambda name: _time(KERNELS[name], x, weight))
        _disk()[text] = kind
        _save_disk()
    _CHOSEN[key] = kind
    return kind


# bfloat16 changes every number the study reports (its rounding), so it must win by a margin: on
# a 2-core Xeon with avx512_bf16 and AMX (2026-12-01) it took 0.92-1.04x float32's time with one
# thread, a tie that one process measured one way and the next the other, and the study's
# artifacts then depended on which process made them (tests/test_cluster.py).
BF16_MARGIN = 1.25
DTYPE_SHAPE = (1536, 576)  # a SmolLM2 MLP weight (out, in): what one decoding step reads most


@torch.inference_mode()
def choose_dtype() -> torch.dtype:
    """bfloat16 or float32 for models on this CPU, whichever runs a decoder's products faster.

    bfloat16 halves the bytes a token reads, but only CPUs with bfloat16 instructions
    (avx512_bf16, AMX) multiply in it natively; elsewhere torch converts on the fly. On a
    2-core AMD EPYC with avx2 only (2026-11-30), a 1536 x 576 product took 115 us in bfloat16
    against 88 us in float32 for one token, and 3408 us against 701 for 32 tokens (a teacher
    batch), so the study ran 4.6 times slower in bfloat16. Both are timed here once per
    machine (one token and a batch of 32, interleaved, the best of three; under a second) and
    the choice is kept in ``~/.cache/tcsd/kernels.json`` beside the kernels'. bfloat16 must be
    `BF16_MARGIN` times faster: a near tie keeps float32, the exact one, so that a noisy
    measurement cannot change the study's numbers from one process to the next."""
    return _kept_dtype("dtype|cpu", lambda: _product_times((1, 32)))


def _product_times(widths, rounds: int = 1) -> tuple[float, float]:
    """(bfloat16 seconds, float32 seconds) per row of a product by a `DTYPE_SHAPE` weight, summed
    over ``widths`` (rows at a time) and ``rounds``, the two dtypes timed one after the other on
    the same shapes."""
    g = torch.Generator().manual_seed(0)  # timing input only: leave the global RNG alone
    weight = torch.randn(*DTYPE_SHAPE, generator=g)
    xs = [torch.randn(1, n, DTYPE_SHAPE[1], generator=g) for n in widths]
    total = {torch.bfloat16: 0.0, torch.float32: 0.0}
    for _ in range(rounds):
        for x in xs:
            for dtype in total:  # interleaved
                total[dtype] += _time(KERNELS["linear"], x.to(dtype), weight.to(dtype), calls=20) / x.shape[1]
    return total[torch.bfloat16], total[torch.float32]


def _forced(env: str) -> torch.dtype | None:
    """The dtype the environment variable ``env`` forces (bfloat16 or float32), else None."""
    forced = os.environ.get(env)
    if not forced:
        return None
    if forced not in ("bfloat16", "float32"):
        raise ValueError(f"${env} must be bfloat16 or float32, got {forced!r}")
    return getattr(torch, forced)


def _kept_dtype(text: str, measure) -> torch.dtype:
    """The dtype kept in the cache under ``text``; else ``measure()``'s (bfloat16 seconds,
    float32 seconds) decide, bfloat16 only by `BF16_MARGIN`, and the choice is kept."""
    chosen = _disk().get(text)
    if chosen not in ("bfloat16", "float32"):
        bf16, fp32 = measure()
        chosen = "bfloat16" if bf16 * BF16_MARGIN <= fp32 else "float32"
        _disk()[text] = chosen
        _save_disk()
    return getattr(torch, chosen)


TRAIN_DTYPE_ENV = "TCSD_TRAIN_DTYPE"  # bfloat16 | float32: forces `choose_train_dtype`'s answer
TRAIN_SHAPE = (2048, 576, 1536)  # a KD step's tokens (16 x 128), a SmolLM2 MLP weight's (in, out)


def _time_train(x, weight, bf16: bool) -> float:
    """Seconds for a forward and backward of ``x @ weight.T`` (the best of three of 3 calls),
    under bfloat16 autocast or in float32; the tensors stay float32, as a draft's weights do."""
    def call():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.linear(x, weight)
        y.float().sum().backward()
    clock, best = Clock(x.device), float("inf")
    for _ in range(3):
        call()
        t0 = clock()
        for _ in range(3):
            call()
        best = min(best, (clock() - t0) / 3)
    return best


def choose_train_dtype() -> torch.dtype:
    """bfloat16 (autocast) or float32 for training a draft on this CPU, whichever runs a KD
    step's products faster here (`train_precision` asks it).

    Training multiplies wide batches, forward and backward, where bfloat16 instructions pay
    off where they exist and cost where they do not: a whole online KD step took 0.49x the
    float32 step's time under bfloat16 autocast on a 2-core AMD EPYC (Zen 4, avx512_bf16),
    while on a 2-core Xeon with avx512_bf16 but no AMX exposed a 2048 x 576 x 1536 product,
    forward and backward, took 1.55x float32's (FINDINGS.md, 2026-12-02). So both are timed,
    interleaved, at `TRAIN_SHAPE` (about 3 s, once per machine), and the choice is
    kept in ``~/.cache/tcsd/kernels.json``; ``$TCSD_TRAIN_DTYPE`` forces one (a run on Ray
    gives its workers the driver's). bfloat16 must win by `BF16_MARGIN`, as for decoding: it
    changes the draft's weights, so a near tie keeps float32."""
    forced = _forced(TRAIN_DTYPE_ENV)
    if forced:
        return forced

    def measure():
        g = torch.Generator().manual_seed(0)  # timing input only: leave the global RNG alone
        n, d_in, d_out = TRAIN_SHAPE
        x = torch.randn(n, d_in, generator=g)
        weight = torch.randn(d_out, d_in, generator=g, requires_grad=True)
        total = {True: 0.0, False: 0.0}
        for _ in range(2):
            for bf16 in total:  # interleaved
                total[bf16] += _time_train(x, weight, bf16)
        return total[True], total[False]

    return _kept_dtype("train_dtype|cpu", measure)


SAMPLE_DTYPE_ENV = "TCSD_SAMPLE_DTYPE"  # bfloat16 | float32: forces `choose_sample_dtype`'s answer
SAMPLE_ROWS = 64  # the sequences of one teacher batch (the cpu profile's `Settings.teacher_batch`)


@torch.inference_mode()
def choose_sample_dtype() -> torch.dtype:
    """bfloat16 or float32 for drawing teacher samples on this CPU, whichever runs the target's
    products for a batch of sequences faster (`models.sampling_model` asks it).

    Sampling multiplies `SAMPLE_ROWS` rows at a time, where bfloat16 instructions pay even on a
    CPU whose one-token decoding (`choose_dtype`) is as fast in float32: on a 2-core AMD EPYC
    (Zen 4, avx512_bf16) that decodes in float32, 128 teacher samples of 64 tokens took 33 s in
    bfloat16 against 53 s in float32 (FINDINGS.md, 2026-12-08). Both are timed, interleaved, on
    a SmolLM2 MLP weight (`DTYPE_SHAPE`, under a second, once per machine) and the choice is kept
    in ``~/.cache/tcsd/kernels.json``; ``$TCSD_SAMPLE_DTYPE`` forces one (a run on Ray gives its
    workers the driver's). bfloat16 must win by `BF16_MARGIN`: it changes the samples."""
    forced = _forced(SAMPLE_DTYPE_ENV)
    if forced:
        return forced
    return _kept_dtype("sample_dtype|cpu", lambda: _product_times((SAMPLE_ROWS,), rounds=2))


def train_precision(precision: str, device) -> str:
    """``"bfloat16"`` (autocast) or ``"float32"``: how a draft's training steps compute on
    ``device`` for a `profiles.KDConfig`'s ``precision``: itself where it names one; for
    ``"auto"``, bfloat16 on a GPU, and on a CPU whichever `choose_train_dtype` measured faster
    (`tcsd_utils.distill` trains so, `tcsd_utils.plan` times a step so)."""
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cpu":
        return str(choose_train_dtype()).replace("torch.", "")
    return "bfloat16" if kind == "cuda" else "float32"


def kernel_choices() -> dict:
    """The kernels chosen so far in this process: ``"device|dtype|out|in|width" -> name``."""
    return {"|".join(map(str, k)): v for k, v in sorted(_CHOSEN.items(), key=str)}


# -- the runners ---------------------------------------------------------------------------


def context_length(model) -> int:
    """The longest sequence the model accepts (``max_position_embeddings``; T5's ``n_positions``,
    the length it was trained at: its relative positions set no hard limit)."""
    cfg = model.config
    return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))


class Runner(Protocol):
    """How the decoding loop calls a model. ``length`` is the number of cached tokens."""

    device: torch.device
    length: int
    context_length: int
    vocab_size: int  # optional: checked against the other model's and the prompt's ids when present

    def start(self, prompt_ids: Sequence[int]) -> list[int]:
        """Reset the cache for a prompt; return the decoder sequence to continue."""

    def extend(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ``ids`` (n,), return the logits (n, vocab) after each of them."""

    def rollback(self, length: int) -> None:
        """Crop the cache to its first ``length`` tokens."""


class CausalLMRunner:
    """A decoder-only Hugging Face model behind the `Runner` interface, with a DynamicCache."""

    def __init__(self, model):
        self.model = model
        self.device = model.device
        self.context_length = context_length(model)
        self.vocab_size = int(model.config.vocab_size)
        self.cache = None
        self.length = 0

    def start(self, prompt_ids):
        from transformers import DynamicCache  # deferred: transformers reads HF_HUB_OFFLINE when first imported

        self.cache = DynamicCache(config=self.model.config)
        self.length = 0
        return list(prompt_ids)

    @torch.inference_mode()
    def extend(self, ids):
        out = self.model(input_ids=ids.view(1, -1), cache=self.cache, use_cache=True)
        self.length += ids.numel()
        return out.logits[0]  # (n, vocab)

    def rollback(self, length):
        if length < self.length:
            self.cache.crop(length - self.length)  # a negative count removes that many tokens
            self.length = length


class Seq2SeqRunner:
    """An encoder-decoder Hugging Face model (T5) behind the `Runner` interface.

    `start` encodes the prompt once and returns the decoder's start sequence
    (``[decoder_start_token_id]``): the decoding loop then continues the decoder only, the
    prompt never entering its cache. ``length`` counts decoder tokens. The cache is an
    ``EncoderDecoderCache``: its self-attention half grows with the decoder and is cropped
    on rollback; its cross-attention half (the encoder's keys and values) is computed at
    the first extend and kept for the prompt.
    """

    def __init__(self, model):
        self.model = model
        self.device = model.device
        self.context_length = context_length(model)
        self.vocab_size = int(model.config.vocab_size)
        self.start_id = int(model.config.decoder_start_token_id)
        self.encoded = self.cache = None
        self.length = 0

    @torch.inference_mode()
    def start(self, prompt_ids):
        from transformers import DynamicCache, EncoderDecoderCache  # deferred, as above

        ids = torch.tensor([list(prompt_ids)], device=self.device)
        self.encoded = self.model.get_encoder()(input_ids=ids)
        cfg = self.model.config
        self.cache = EncoderDecoderCache(DynamicCache(config=cfg), DynamicCache(config=cfg))
        self.length = 0
        return [self.start_id]

    @torch.inference_mode()
    def extend(self, ids):
        out = self.model(encoder_outputs=self.encoded, decoder_input_ids=ids.view(1, -1), cache=self.cache,
                         use_cache=True)
        self.length += ids.numel()
        return out.logits[0]  # (n, vocab)

    def rollback(self, length):
        if length < self.length:
            self.cache.crop(length - self.length)  # self-attention only: the encoder's part stays
            self.length = length


_ROPE: dict = {}  # (theta, head_dim, device, dtype) -> (cos, sin), grown on demand
_ROPE_START = 1024  # positions in the first table: a prompt and an answer of this study, without regrowth


def _rope(theta: float, head_dim: int, n: int, device, dtype):
    """cos and sin of the rotary embedding for positions 0..n-1, computed as transformers
    does (inverse frequencies and angles in float32, then cast to the model's dtype)."""
    key = (theta, head_dim, str(device), dtype)
    if key not in _ROPE or _ROPE[key][0].shape[0] < n:
        n = max(n, 2 * _ROPE[key][0].shape[0] if key in _ROPE else _ROPE_START)
        inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float)
                               / head_dim))
        angles = torch.outer(torch.arange(n, device=device, dtype=torch.float), inv)
        angles = torch.cat([angles, angles], dim=-1)
        _ROPE[key] = (angles.cos().to(dtype), angles.sin().to(dtype))
    return _ROPE[key]


class LlamaRunner:
    """A transformers ``LlamaForCausalLM`` run by hand, batch 1, with a preallocated KV cache.

    It reads the model's parameters at every call (no copies), so a draft that is being
    trained is always run with its current weights.
    """

    def __init__(self, model):
        if not self.supports(model):
            raise ValueError(f"LlamaRunner cannot run a {type(model).__name__} with this config; "
                             "use CausalLMRunner")
        cfg = model.config
        self.model, self.device = model, model.device
        self.context_length = context_length(model)
        self.vocab_size = int(cfg.vocab_size)
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.theta = float(_rope_parameters(cfg)["rope_theta"])
        self.dtype = model.get_input_embeddings().weight.dtype
        self.capacity = self.length = 0
        self.k = self.v = None
        self._bias_key = self._bias_val = None

    @staticmethod
    def supports(model) -> bool:
        """True for a Llama model with the plain architecture this runner implements
        (default RoPE, SiLU MLP, no biases, no tensor-parallel split)."""
        cfg = getattr(model, "config", None)
        if getattr(cfg, "model_type", None) not in _LLAMA_TYPES or not hasattr(model, "lm_head"):
            return False
        rope = _rope_parameters(cfg)
        return (rope is not None and rope.get("rope_type", "default") == "default" and "rope_theta" in rope
                and cfg.hidden_act == "silu" and not getattr(cfg, "attention_bias", False)
                and not getattr(cfg, "mlp_bias", False) and getattr(cfg, "pretraining_tp", 1) == 1)

    def start(self, prompt_ids):
        self.length = 0
        self._reserve(len(prompt_ids) + _HEADROOM)
        return list(prompt_ids)

    def _reserve(self, n: int) -> None:
        """Make the cache hold at least ``n`` tokens, doubling so growth is amortised."""
        if n <= self.capacity:
            return
        cap = max(n, 2 * self.capacity, _MIN_CAPACITY)
        shape = (len(self.model.model.layers), 1, self.n_kv, cap, self.head_dim)
        k = torch.empty(shape, dtype=self.dtype, device=self.device)
        v = torch.empty_like(k)
        if self.length:
            k[:, :, :, :self.length] = self.k[:, :, :, :self.length]
            v[:, :, :, :self.length] = self.v[:, :, :, :self.length]
        self.k, self.v, self.capacity = k, v, cap

    def _norm(self, x, weight):
        """RMSNorm as transformers' LlamaRMSNorm: statistics in float32, scale in the model dtype."""
        x32 = x.float()
        return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    @torch.inference_mode()
    def extend(self, ids):
        n, start = ids.numel(), self.length
        end = start + n
        self._reserve(end)
        cos, sin = _rope(self.theta, self.head_dim, end, self.device, self.dtype)
        cos, sin = cos[start:end], sin[start:end]

        def store(i, k, v):
            self.k[i, :, :, start:end] = k
            self.v[i, :, :, start:end] = v

        logits = self._forward(ids, cos, sin, store, lambda i, q: self._attention(q, i, start))
        self.length = end
        head = self.model.lm_head
        return head.expand(logits) if hasattr(head, "expand") else logits  # sub-vocabulary draft: -inf off its ids

    def _forward(self, ids, cos, sin, store, attend):
        """The decoder stack over the n new tokens ``ids``, with the rotary ``cos`` and ``sin``
        of their positions: ``store(i, k, v)`` puts layer i's rotated keys and values in the
        cache, ``attend(i, q)`` attends its rotated queries over it. Returns the logits (n,
        vocab or the kept ids of a cut head), before a sub-vocabulary head expands them."""
        n, half = ids.numel(), self.head_dim // 2

        def rotate(t):
            return t * cos + torch.cat([-t[..., half:], t[..., :half]], dim=-1) * sin

        body = self.model.model
        x = F.embedding(ids.view(1, n), body.embed_tokens.weight)
        for i, layer in enumerate(body.layers):
            attn, mlp = layer.self_attn, layer.mlp
            h = self._norm(x, layer.input_layernorm.weight)
            q = linear(h, attn.q_proj.weight).view(1, n, self.n_heads, self.head_dim).transpose(1, 2)
            k = linear(h, attn.k_proj.weight).view(1, n, self.n_kv, self.head_dim).transpose(1, 2)
            v = linear(h, attn.v_proj.weight).view(1, n, self.n_kv, self.head_dim).transpose(1, 2)
            store(i, rotate(k), v)
            a = attend(i, rotate(q))
            x = x + linear(a.transpose(1, 2).reshape(1, n, -1), attn.o_proj.weight)
            h = self._norm(x, layer.post_attention_layernorm.weight)
            x = x + linear(F.silu(linear(h, mlp.gate_proj.weight)) * linear(h, mlp.up_proj.weight),
                            mlp.down_proj.weight)
        return linear(self._norm(x, body.norm.weight), self.model.lm_head.weight)[0]

    def _attention(self, q, layer: int, start: int):
        """Causal attention of the new queries ``q`` (1, heads, n, dim) over the cache: query j
        sees positions up to ``start + j``."""
        gqa, n = self.n_kv != self.n_heads, q.shape[2]
        k, v = self.k[layer][:, :, :start + n], self.v[layer][:, :, :start + n]
        if n == 1 or start == 0:  # no cache before the new tokens: plain causal attention
            return F.scaled_dot_product_attention(q, k, v, is_causal=n > 1, enable_gqa=gqa)
        if n > SMALL or q.device.type != "cpu":  # on a GPU in the model's dtype: no float32 copy of K and V
            return F.scaled_dot_product_attention(q, k, v, attn_mask=_causal(n, start, q.device), enable_gqa=gqa)
        # a verification step, written out in float32 (CPU kernels for small bfloat16 batched
        # products are slow), each key/value head shared by its group of query heads as a
        # batch: no mask conversion, no repeated keys
        g = self.n_heads // self.n_kv
        qg = q.reshape(self.n_kv, g * n, self.head_dim).float()
        scores = torch.baddbmm(self._bias(n, start), qg, k[0].float().transpose(1, 2), alpha=self.head_dim ** -0.5)
        out = torch.bmm(scores.softmax(-1), v[0].float())
        return out.to(q.dtype).view(1, self.n_heads, n, self.head_dim)

    def _bias(self, n: int, start: int):
        """The causal mask of n queries after ``start`` cached tokens, additive, float32, shape
        (1, g * n, start + n) for the g query heads of a group; built once per forward."""
        key = (n, start)
        if self._bias_key != key:
            bias = torch.zeros(n, start + n, device=self.device).masked_fill_(~_causal(n, start, self.device),
                                                                              float("-inf"))
            self._bias_key, self._bias_val = key, bias.repeat(self.n_heads // self.n_kv, 1).unsqueeze(0)
        return self._bias_val

    def rollback(self, length):
        self.length = min(self.length, length)


class StaticLlamaRunner(LlamaRunner):
    """`LlamaRunner` with static shapes, for CUDA graphs: a KV cache of fixed capacity, and
    the position, the rotary angles and the causal mask read from device tensors, so that a
    step of n new tokens runs the same kernels on the same shapes every time. With
    ``graphs=True`` on CUDA, each width in ``widths`` (1, and k + 1 for verification) is
    captured once as a CUDA graph and replayed: one launch instead of about 40 kernels per
    layer. Other widths, and every step on a CPU, run the same code eagerly.

    Attention covers the whole capacity, with the slots after each query masked (they hold
    zeros or stale keys, never NaN), so it costs more per step than `LlamaRunner` on a CPU;
    it exists for the GPU. It gives the same tokens as `LlamaRunner` (tests/test_runners.py).

    Args:
        model: a Llama model `LlamaRunner.supports`.
        capacity: cache slots (default: the model's context, at most 2048).
        graphs: capture CUDA graphs (ignored off CUDA).
        widths: the step widths to capture.
    """

    def __init__(self, model, capacity: int | None = None, graphs: bool = False, widths=(1,)):
        super().__init__(model)
        cap = min(self.context_length, capacity or 2048)
        shape = (len(model.model.layers), 1, self.n_kv, cap, self.head_dim)
        self.k = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.v = torch.zeros_like(self.k)
        self.capacity = cap
        cos, sin = _rope(self.theta, self.head_dim, cap, self.device, self.dtype)
        self.cos, self.sin = cos[:cap], sin[:cap]
        self.slots = torch.arange(cap, device=self.device)
        self.pos = torch.zeros((), dtype=torch.long, device=self.device)
        self.graphs = bool(graphs) and self.device.type == "cuda"
        self.widths = tuple(widths)
        self._captured: dict = {}

    def _reserve(self, n: int) -> None:
        if n > self.capacity:
            raise ValueError(f"StaticLlamaRunner holds {self.capacity} tokens; this step needs {n} "
                             "(pass a larger capacity)")

    def start(self, prompt_ids):
        self.length = 0
        self._reserve(len(prompt_ids))
        return list(prompt_ids)

    @torch.inference_mode()
    def extend(self, ids):
        n, start = ids.numel(), self.length
        self._reserve(start + n)
        self.pos.fill_(start)
        if self.graphs and n in self.widths:
            logits = self._replay(ids.view(n), n)
        else:
            logits = self._step(ids.view(n))
        self.length = start + n
        head = self.model.lm_head
        return head.expand(logits) if hasattr(head, "expand") else logits

    def _step(self, ids):
        """One forward of the n tokens ``ids`` at positions ``pos`` .. ``pos + n - 1``."""
        n, gqa = ids.shape[0], self.n_kv != self.n_heads
        positions = self.pos + self.slots[:n]
        cos, sin = self.cos.index_select(0, positions), self.sin.index_select(0, positions)
        visible = self.slots[None, :] <= positions[:, None]  # (n, capacity): query j sees slots up to pos + j

        def store(i, k, v):
            self.k[i, 0].index_copy_(1, positions, k[0])
            self.v[i, 0].index_copy_(1, positions, v[0])

        def attend(i, q):
            return F.scaled_dot_product_attention(q, self.k[i], self.v[i], attn_mask=visible, enable_gqa=gqa)

        return self._forward(ids, cos, sin, store, attend)

    def _replay(self, ids, n: int):
        """The step of width n as a CUDA graph, captured on first use (after two warm-up
        steps on a side stream, which write the same cache slots the real step then writes)."""
        if n not in self._captured:
            static_ids = ids.clone()
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._step(static_ids)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._step(static_ids)
            self._captured[n] = (graph, static_ids, out)
        graph, static_ids, out = self._captured[n]
        static_ids.copy_(ids)
        graph.replay()
        return out.clone()  # the graph's output buffer is overwritten by the next replay


_LLAMA_TYPES = ("llama", "tcsd_subvocab_llama")  # the second: tcsd_utils.subvocab, a Llama with a cut head
_HEADROOM = 64  # cache slots reserved past the prompt at start: the first steps never regrow it
_MIN_CAPACITY = 256  # the smallest cache allocated; growth doubles it (amortised, like a list)


def _causal(n: int, start: int, device):
    """Which positions each of n new queries after ``start`` cached tokens sees: query j sees
    positions up to ``start + j`` (a boolean (n, start + n) mask, True = visible)."""
    return torch.ones(n, start + n, dtype=torch.bool, device=device).tril(start)


def _rope_parameters(cfg):
    rope = getattr(cfg, "rope_parameters", None)
    if rope is None and getattr(cfg, "rope_scaling", None) is None and hasattr(cfg, "rope_theta"):
        rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    return rope


CUDA_GRAPHS_ENV = "TCSD_CUDA_GRAPHS"  # "0": on CUDA, the eager fast path instead of CUDA graphs
_STATIC: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _static_runner(model) -> "StaticLlamaRunner":
    """One `StaticLlamaRunner` per model, kept while the model lives: its cache and captured
    graphs (steps of 1 to `SMALL` tokens: a draft's step, verification) are reused by every
    decode, as `start` resets it. The graphs read the weight tensors in place: a model whose
    tensors are replaced (``.to`` another dtype) is a new model here only if it is a new object."""
    runner = _STATIC.get(model)
    if runner is None or runner.dtype != model.get_input_embeddings().weight.dtype:
        runner = _STATIC[model] = StaticLlamaRunner(model, graphs=True, widths=tuple(range(1, SMALL + 1)))
    return runner


def as_runner(model_or_runner, fast: bool = True) -> Runner:
    """A runner for a model (`Seq2SeqRunner` for an encoder-decoder model; for a Llama model
    that `LlamaRunner` supports, with ``fast``: on CUDA the static runner with CUDA graphs,
    one per model, unless ``TCSD_CUDA_GRAPHS=0``, else `LlamaRunner`; else `CausalLMRunner`);
    a runner is returned as it is."""
    if hasattr(model_or_runner, "extend") and hasattr(model_or_runner, "rollback"):
        return model_or_runner
    if getattr(getattr(model_or_runner, "config", None), "is_encoder_decoder", False):
        return Seq2SeqRunner(model_or_runner)
    if fast and LlamaRunner.supports(model_or_runner):
        if model_or_runner.device.type == "cuda" and os.environ.get(CUDA_GRAPHS_ENV, "1") != "0":
            return _static_runner(model_or_runner)
        return LlamaRunner(model_or_runner)
    return CausalLMRunner(model_or_runner)


@torch.inference_mode()
def next_token_logits(model, prompt_ids, answer_ids=()) -> torch.Tensor:
    """The logits (vocab,) of the token after a prompt and the answer so far, in one forward
    without a cache (what the notebooks plot): a decoder-only model reads prompt + answer; an
    encoder-decoder model the prompt in its encoder and [decoder start] + answer in its decoder."""
    def batch(ids):
        return torch.tensor([list(ids)], device=model.device)

    if getattr(model.config, "is_encoder_decoder", False):
        out = model(input_ids=batch(prompt_ids), decoder_input_ids=batch([model.config.decoder_start_token_id,
                                                                          *answer_ids]))
    else:
        out = model(batch([*prompt_ids, *answer_ids]))
    return out.logits[0, -1]
