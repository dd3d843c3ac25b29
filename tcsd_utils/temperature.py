"""What a sampling temperature means, in one place.

Every part of tcsd that turns logits into a distribution goes through `probs` here: the
speculative sampler, plain decoding, knowledge distillation and the evaluation. The
definition follows the paper (Ouyang et al. 2024, arXiv 2410.10141, Sec. 2) and the
transformers `TemperatureLogitsWarper`:

- ``tau == 0`` is greedy decoding: the distribution is one-hot on the argmax (ties go to
  the lowest token id, as ``torch.argmax`` does);
- ``tau > 0`` is ``softmax(logits / tau)``, computed in float32 whatever the model dtype;
- values above 1 are legal (the U-curve of the paper goes to 2.0 and beyond);
- a negative, NaN or infinite ``tau`` raises ``ValueError``.

Symbols follow DESIGN.md: ``p`` is the target distribution, ``q`` the draft's, both after
temperature. The divergences between them live here too: total variation distance (TVD),
KL in both directions, entropy, and the overlap ``sum_x min(p(x), q(x)) = 1 - TVD(p, q)``,
which is the probability that speculative sampling accepts a draft token (Leviathan et
al. 2023, Sec. 3.1, "alpha = E[beta]").

`generate` samples from torch's global generator; `local_rng` lets a seeded sampling run
(teacher samples, online KD, the transformers baselines) reseed it without changing the
caller's random state.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from numbers import Real

import torch

__all__ = [
    "generation_config",
    "check_tau",
    "probs",
    "log_probs",
    "sample",
    "entropy",
    "tvd",
    "kl",
    "overlap",
    "top_k_mass",
    "Anneal",
    "tau_at",
    "local_rng",
]


def check_tau(tau, name: str = "tau") -> float:
    """Validate a temperature and return it as a float.

    Args:
        tau: the temperature; any real number >= 0 (0 means greedy).
        name: what to call it in the error message (for example ``"draft_tau"``).

    Returns:
        ``float(tau)``.

    Raises:
        ValueError: if ``tau`` is not a real number, is negative, NaN or infinite.
    """
    if isinstance(tau, bool) or not isinstance(tau, (Real, torch.Tensor)):
        raise ValueError(f"{name} must be a real number >= 0, got {tau!r}")
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError(f"{name} must be a single number, got a tensor of shape {tuple(tau.shape)}")
        tau = tau.item()
    tau = float(tau)
    if math.isnan(tau) or math.isinf(tau):
        raise ValueError(f"{name} must be finite, got {tau}")
    if tau < 0:
        raise ValueError(f"{name} must be >= 0 (0 means greedy), got {tau}")
    return tau


def probs(logits: torch.Tensor, tau) -> torch.Tensor:
    """The distribution a temperature makes of logits.

    Args:
        logits: `torch.Tensor` of shape ``(..., vocab)``, any float dtype.
        tau: temperature (see the module docstring).

    Returns:
        float32 `torch.Tensor` of shape ``(..., vocab)`` summing to 1 on the last axis:
        one-hot on the argmax for ``tau == 0``, ``softmax(logits / tau)`` otherwise.
    """
    tau = check_tau(tau)
    logits = logits.float()
    if tau == 0.0:
        one_hot = torch.zeros_like(logits)
        return one_hot.scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
    return torch.softmax(logits / tau, dim=-1)


def log_probs(logits: torch.Tensor, tau) -> torch.Tensor:
    """``log(probs(logits, tau))`` computed stably; ``-inf`` off the argmax when ``tau == 0``.

    Args:
        logits: `torch.Tensor` of shape ``(..., vocab)``.
        tau: temperature.

    Returns:
        float32 `torch.Tensor` of shape ``(..., vocab)``.
    """
    tau = check_tau(tau)
    if tau == 0.0:
        return torch.log(probs(logits, 0.0))
    return torch.log_softmax(logits.float() / tau, dim=-1)


def sample(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token id from each row of a distribution, by inverting its CDF.

    One float64 uniform per row, scaled by the row's total, located in the float64 running
    sum with ``searchsorted(right=True)``: token ``i`` is drawn exactly when
    ``cdf[i-1] <= u < cdf[i]``, so it has probability ``p_i`` (up to float64 rounding) and a
    zero-mass token is never drawn. Over a 49152-token vocabulary this costs about 0.05 ms on
    the CPU against about 0.9 ms for ``torch.multinomial``, which matters because speculative
    decoding draws k + 1 times per step (benchmarks/speed_bench.py).

    Args:
        p: `torch.Tensor` of shape ``(..., vocab)``, rows summing to 1 (any positive total
            works: each row is scaled by its own sum).
        generator: optional `torch.Generator` on ``p``'s device, for reproducible draws.

    Returns:
        `torch.LongTensor` of shape ``(...)``.
    """
    flat = p.reshape(-1, p.shape[-1])
    cdf = flat.double().cumsum(-1)
    u = torch.rand(flat.shape[0], 1, generator=generator, dtype=torch.float64, device=p.device)
    out = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=flat.shape[-1] - 1)
    return out.reshape(p.shape[:-1])


def _xlogy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.special.xlogy(x, y)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last axis; 0 for a one-hot distribution."""
    return -_xlogy(p, p).sum(-1)


def tvd(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Total variation distance ``0.5 * sum |p - q|`` over the last axis."""
    return 0.5 * (p - q).abs().sum(-1)


def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = sum p log(p / q)`` over the last axis (``inf`` where q = 0 < p)."""
    return (_xlogy(p, p) - _xlogy(p, q)).sum(-1)


def overlap(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``sum_x min(p(x), q(x))``: the chance that a draft token sampled from q is accepted.

    Equals ``1 - tvd(p, q)``. Averaged over positions of target samples it is the
    expected acceptance rate alpha (Leviathan et al. 2023, Definition 3.1).
    """
    return torch.minimum(p, q).sum(-1)


def top_k_mass(p: torch.Tensor, k: int) -> torch.Tensor:
    """Probability mass of the ``k`` most likely tokens, over the last axis."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return p.topk(min(k, p.shape[-1]), dim=-1).values.sum(-1)


@dataclass(frozen=True)
class Anneal:
    """A temperature that changes within one generation: ``start`` at the first new token,
    moving linearly to ``end`` at token ``n_tokens`` and staying there (notebook 06).

    A schedule is a callable of the number of tokens generated so far; the decoders
    (`tcsd_utils.speculative`) accept one wherever they accept a fixed ``tau``.
    """

    start: float
    end: float
    n_tokens: int

    def __post_init__(self):
        check_tau(self.start, "start")
        check_tau(self.end, "end")
        if not isinstance(self.n_tokens, int) or self.n_tokens < 1:
            raise ValueError(f"n_tokens must be an integer >= 1, got {self.n_tokens!r}")

    def __call__(self, n: int) -> float:
        share = min(max(n, 0), self.n_tokens) / self.n_tokens
        return self.start + (self.end - self.start) * share

    def __str__(self) -> str:
        return f"τ {self.start:g} → {self.end:g} over {self.n_tokens} tokens"


def tau_at(tau, n: int, name: str = "tau") -> float:
    """The temperature of new token ``n`` (0-based): ``tau`` itself, or ``tau(n)`` for a
    schedule (any callable of the number of tokens generated before it), checked."""
    return check_tau(tau(n) if callable(tau) else tau, name)


def generation_config(tau: float, max_new_tokens: int, pad: int, eos: int, **extra):
    """The same temperature in transformers' terms, for `generate` (teacher samples, online
    KD's sequences, the transformers baselines of `tcsd bench`): greedy at 0, else
    softmax(logits / tau) with no top-k or top-p truncation, exactly `probs`. A chi-square
    test keeps the two definitions in step (tests/test_distill.py,
    `test_teacher_sampling_follows_the_temperature_definition`)."""
    from transformers import GenerationConfig  # deferred: transformers reads HF_HUB_OFFLINE when first imported

    common = {"max_new_tokens": max_new_tokens, "pad_token_id": pad, "eos_token_id": eos, **extra}
    if tau == 0:
        return GenerationConfig(do_sample=False, **common)
    return GenerationConfig(do_sample=True, temperature=tau, top_k=0, top_p=1.0, **common)


@contextlib.contextmanager
def local_rng(*devices):
    """Torch's global random state, forked: inside, ``torch.manual_seed`` and every draw
    change it as usual; on exit the caller's state is back, on the CPU and on each
    accelerator device in ``devices`` (the devices the sampling runs on).

    The draws inside are those of the same code without the fork: only what the caller
    sees afterwards changes. ``torch.manual_seed`` reseeds every accelerator device; only
    those named here are restored.
    """
    accelerators = {torch.device(d) for d in devices if torch.device(d).type not in ("cpu", "meta")}
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))  # the CPU's state
        for kind in sorted({d.type for d in accelerators}):
            stack.enter_context(torch.random.fork_rng(devices=[d for d in accelerators if d.type == kind],
                                                      device_type=kind))
        yield
