"""Speculative sampling and plain autoregressive decoding, with their statistics.

Implements Algorithm 1 of Leviathan et al. 2023 ("Fast Inference from Transformers via
Speculative Decoding", arXiv 2211.17192), equivalently Chen et al. 2023 (arXiv
2302.01318), the decoder whose temperature dependence Ouyang et al. 2024 (arXiv
2410.10141) study. Variable names match the papers (and transformers'
``_speculative_sampling``): ``p`` target and ``q`` draft distributions after temperature,
``k`` draft tokens per step (Leviathan et al. call it gamma; here gamma is the wall-time speedup), ``n`` the number accepted.

One step: the draft proposes ``x_1..x_k ~ q`` one at a time; the target scores all of them
in one forward pass, giving ``p_1..p_{k+1}``; ``x_i`` is accepted with probability
``min(1, p_i(x_i) / q_i(x_i))``; at the first rejection a token is drawn from
``norm(max(0, p_i - q_i))`` and the step ends; when all ``k`` pass, a bonus token is drawn
from ``p_{k+1}``. The output has exactly the target's distribution at ``tau``, whatever the
draft (tests/test_speculative.py checks this against enumerated distributions).

Both models keep KV caches, cropped on rejection and never recomputed from the prompt.
Models are called only through a runner (``start``/``extend``/``rollback``,
`tcsd_utils.runners`), so plain decoding uses the same forward and cache code as
speculative decoding (fair timings), and an encoder-decoder pair (T5) runs the same loop
with its prompt in the encoder (`runners.Seq2SeqRunner`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch

from .runners import as_runner
from .temperature import probs, sample, tau_at
from .timing import Clock

__all__ = ["DecodeStats", "DecodeResult", "verify", "token_sources",
           "speculative_generate", "autoregressive_generate"]


@dataclass
class DecodeStats:
    """What one decoding call did. Times are seconds of wall clock.

    Two empirical acceptance rates, named by their denominators: ``alpha_drafted =
    accepted / drafted`` (DESIGN.md's alpha) and ``alpha_tested = accepted / (accepted +
    rejections)``, the results table's ``alpha_empirical``. For k > 1 the first is lower,
    because the drafts after a rejection count as drafted though never tested; the second
    counts only the tested tokens and estimates Leviathan's alpha (the expected alpha of
    `tcsd_utils.evaluate` and the input of the predicted speedup); they agree at k = 1.
    ``mean_accepted_length`` is the number of tokens committed per verification step
    (accepted drafts plus the one token from the target), which Leviathan et al. predict
    as ``(1 - alpha^(k+1)) / (1 - alpha)``. ``time_verify`` is the share of ``time_target``
    spent on the sampling criterion alone (`verify`: the acceptance test, the residual and
    the draw), which the paper's open question 1 suspects of making high tau slow.
    """

    new_tokens: int = 0
    steps: int = 0
    target_forwards: int = 0
    draft_forwards: int = 0
    drafted: int = 0
    accepted: int = 0
    rejections: int = 0
    time_target: float = 0.0
    time_draft: float = 0.0
    time_verify: float = 0.0  # the acceptance test and the draw after it: part of time_target
    time_total: float = 0.0
    accepted_per_step: list = field(default_factory=list)
    drafted_per_step: list = field(default_factory=list)  # k, or fewer at the end of the budget

    @property
    def alpha_drafted(self) -> float:
        return self.accepted / self.drafted if self.drafted else math.nan

    @property
    def alpha_tested(self) -> float:
        tested = self.accepted + self.rejections
        return self.accepted / tested if tested else math.nan

    @property
    def mean_accepted_length(self) -> float:
        return self.new_tokens / self.steps if self.steps else math.nan

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.time_total if self.time_total > 0 else math.nan

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("accepted_per_step")
        d.pop("drafted_per_step")
        d.update(alpha_drafted=self.alpha_drafted, alpha_tested=self.alpha_tested,
                 mean_accepted_length=self.mean_accepted_length,
                 tokens_per_s=self.tokens_per_s)
        return d


def token_sources(stats: DecodeStats, n_tokens: int | None = None) -> list[str]:
    """Where each committed token of a speculative run came from, in order.

    A step commits its ``n`` accepted draft tokens, then one token of the target's: drawn
    from the residual max(0, p - q) after a rejection (``"resampled"``), or from p when all
    drafted tokens were accepted (``"bonus"``). Leviathan et al. 2023, Algorithm 1.

    Returns:
        ``"draft"``, ``"resampled"`` or ``"bonus"`` per token, cut to ``n_tokens`` (the run's
        last step can commit past its EOS or its budget).
    """
    out = []
    for n, drafted in zip(stats.accepted_per_step, stats.drafted_per_step):
        out += ["draft"] * n + ["bonus" if n == drafted else "resampled"]
    return out if n_tokens is None else out[:n_tokens]


@dataclass
class DecodeResult:
    tokens: list  # the new token ids, prompt excluded
    stats: DecodeStats


_IDS_HINT = ("pass token ids: a list of ints or a 1-D LongTensor, such as the tokenizer's output "
             "tokenizer(text)[\"input_ids\"], or tcsd_utils.data.chat_ids(tokenizer, text) for a "
             "chat-formatted prompt")


def _is_integer_dtype(dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _is_token_id(t) -> bool:
    """An int, a numpy integer or a 0-d integer tensor; a bool is none of these here."""
    if isinstance(t, (bool, np.bool_)):
        return False
    if isinstance(t, torch.Tensor):
        return t.ndim == 0 and _is_integer_dtype(t.dtype)
    return isinstance(t, (int, np.integer))


def _token_ids(prompt_ids) -> list[int]:
    """The prompt as a list of Python ints, or a `ValueError` that names what came instead.

    Args:
        prompt_ids: token ids: a sequence of ints (numpy integers and 0-d integer tensors
            count as ints), or a 1-D integer tensor or array.

    Returns:
        The ids as a ``list[int]``; not yet checked against any vocabulary.

    Raises:
        ValueError: ``None``; text (``str``, ``bytes``); a mapping such as the tokenizer's
            whole output; a float, bool or complex tensor or array, or one that is not 1-D;
            an element that is not an integer (a float, a bool, a nested list, ``None``);
            anything that is not a sequence. The message names the type received and what
            to pass. Without this check a float id reaches torch as a bare ``RuntimeError``
            and a string fails in ``int()``.
    """
    if prompt_ids is None:
        raise ValueError("empty prompt: prompt_ids must hold at least one token, got None")
    if isinstance(prompt_ids, (str, bytes, bytearray)):
        raise ValueError(f"prompt_ids is text (a {type(prompt_ids).__name__}), not token ids; {_IDS_HINT}")
    if isinstance(prompt_ids, Mapping):
        keys = ", ".join(repr(k) for k in list(prompt_ids)[:4])
        raise ValueError(f"prompt_ids is a {type(prompt_ids).__name__} (a mapping with keys {keys}), not token ids; "
                         f"{_IDS_HINT}")
    if isinstance(prompt_ids, (torch.Tensor, np.ndarray)):
        is_int = (_is_integer_dtype(prompt_ids.dtype) if isinstance(prompt_ids, torch.Tensor)
                  else prompt_ids.dtype.kind in "iu")
        kind = f"a {type(prompt_ids).__name__} of dtype {prompt_ids.dtype} and shape {tuple(prompt_ids.shape)}"
        if not is_int:
            raise ValueError(f"prompt_ids is {kind}: token ids are integers; {_IDS_HINT}")
        if prompt_ids.ndim != 1:
            batch_of_one = prompt_ids.ndim == 2 and len(prompt_ids) == 1
            one = " (a batch of one prompt: pass prompt_ids[0])" if batch_of_one else ""
            raise ValueError(f"prompt_ids is {kind}, not 1-D{one}; {_IDS_HINT}")
        return [int(t) for t in prompt_ids.tolist()]
    try:
        items = list(prompt_ids)
    except TypeError:
        raise ValueError(f"prompt_ids is a {type(prompt_ids).__name__}, not a sequence of token ids; "
                         f"{_IDS_HINT}") from None
    for i, t in enumerate(items):
        if not _is_token_id(t):
            raise ValueError(f"prompt_ids[{i}] is a {type(t).__name__} ({t!r}), not an integer token id; {_IDS_HINT}")
    return [int(t) for t in items]


def _check_inputs(prompt_ids, max_new_tokens, runners):
    if prompt_ids is None or len(prompt_ids) == 0:
        raise ValueError("empty prompt: prompt_ids must hold at least one token")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    sizes = {name: getattr(r, "vocab_size", None) for name, r in runners}
    known = {name: v for name, v in sizes.items() if v is not None}
    if len(set(known.values())) > 1:
        raise ValueError("draft and target vocabularies differ: "
                         + ", ".join(f"{name} has {v} tokens" for name, v in known.items())
                         + "; speculative sampling compares p and q token by token")
    if known:
        vocab = min(known.values())
        bad = [int(t) for t in prompt_ids if not 0 <= int(t) < vocab]
        if bad:
            raise ValueError(f"prompt_ids hold token id {bad[0]}, outside the vocabulary [0, {vocab})"
                             + (f" ({len(bad)} such ids)" if len(bad) > 1 else ""))
    for name, r in runners:
        if len(prompt_ids) + max_new_tokens > r.context_length:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens plus max_new_tokens={max_new_tokens} exceeds "
                f"the {name} model's context of {r.context_length} tokens")


def _eos_set(eos_token_id, model_or_runner) -> set:
    if eos_token_id is None:  # the generation config, else the model config (GGUF models)
        model = getattr(model_or_runner, "model", model_or_runner)
        for cfg in (getattr(model, "generation_config", None), getattr(model, "config", None)):
            eos_token_id = getattr(cfg, "eos_token_id", None)
            if eos_token_id is not None:
                break
    if eos_token_id is None:
        return set()
    return {int(eos_token_id)} if isinstance(eos_token_id, int) else {int(e) for e in eos_token_id}


def _make_generator(device, generator, seed):
    if generator is None and seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(seed))
    return generator


def _commit(seq, new, eos, max_len) -> bool:
    """Append ``new`` to ``seq`` up to and including the first EOS; True if decoding stops."""
    for t in new:
        seq.append(t)
        if t in eos or len(seq) >= max_len:
            return True
    return False


def _probs_at(logits: torch.Tensor, taus: list[float]) -> torch.Tensor:
    """Row i of ``logits`` (shape ``(n, vocab)``) at temperature ``taus[i]``; one call when
    they are all the same (a fixed tau: the usual case costs nothing extra)."""
    if all(t == taus[0] for t in taus):
        return probs(logits, taus[0])
    return torch.stack([probs(row, t) for row, t in zip(logits, taus)])


def verify(p: torch.Tensor, q: torch.Tensor, x: torch.Tensor,
           generator: torch.Generator | None = None) -> tuple[int, int]:
    """The acceptance rule: how a draft is verified (Leviathan et al. 2023, Algorithm 1).

    Args:
        p: target distributions, shape ``(k + 1, vocab)``; row i scores position i.
        q: draft distributions the draft tokens were sampled from, shape ``(k, vocab)``.
        x: the draft tokens, shape ``(k,)``; ``k`` may be 0.
        generator: random source.

    Returns:
        ``(n, token)``: the number of draft tokens accepted (a prefix of ``x``) and the
        token that follows them: drawn from ``norm(max(0, p_n - q_n))`` after a rejection,
        or the bonus token from ``p_{k+1}`` when all ``k`` are accepted.
    """
    k = x.shape[0]
    if k:
        idx = torch.arange(k, device=p.device)
        p_x, q_x = p[idx, x], q[idx, x]
        r = torch.rand(k, generator=generator, device=p.device)
        # accept x_i when r_i < p_i(x_i) / q_i(x_i), written without the division
        n = int((r * q_x < p_x).cumprod(0).sum())
    else:
        n = 0
    if n < k:  # rejected at position n: draw from norm(max(0, p - q))
        p_prime = torch.clamp(p[n] - q[n], min=0)
        # Not in Algorithm 1, but needed for correct behaviour: if p == q to the last bit
        # the residual is all zeros; rejection then had probability 0, so keep p.
        total = p_prime.sum()
        p_prime = p_prime / total if total > 0 else p[n]
    else:  # all accepted (or nothing drafted): the bonus token from p_{k+1}
        p_prime = p[n]
    return n, int(sample(p_prime, generator))


def speculative_generate(target, draft, prompt_ids: Sequence[int], max_new_tokens: int = 64,
                         k: int = 4, tau=0.0, draft_tau=None,
                         seed: int | None = None, generator: torch.Generator | None = None,
                         eos_token_id=None) -> DecodeResult:
    """Speculative sampling (Leviathan et al. 2023, Algorithm 1) at batch size 1.

    Args:
        target: the target model (p), or a `Runner`.
        draft: the draft model (q), or a `Runner`; same vocabulary as the target.
        prompt_ids: the prompt's token ids (already chat-formatted), at least one: a list of
            ints (numpy integers and 0-d integer tensors count) or a 1-D integer tensor or
            array, e.g. ``tokenizer(text)["input_ids"]``.
        max_new_tokens: the most tokens to generate (>= 1).
        k: draft tokens proposed per step (>= 1).
        tau: decoding temperature of the target; 0 is greedy. Or a schedule: a callable of
            the number of tokens generated so far (`temperature.Anneal`), so that new token
            ``n`` is drawn from p at ``tau(n)``. Within a step, the drafted position that
            would become token ``n`` uses ``tau(n)`` for both p and q, so the output has
            exactly the distribution of plain decoding with the same schedule.
        draft_tau: temperature the draft samples at (a number or a schedule); defaults to
            ``tau``. Any value keeps the output exact: the acceptance rule corrects for
            whatever q the draft sampled from.
        seed: seeds a fresh `torch.Generator` on the target's device (ignored if
            ``generator`` is given).
        generator: the random source for every draw.
        eos_token_id: id or ids that end generation; ``None`` reads the target's
            generation config; ``[]`` never stops early.

    Returns:
        `DecodeResult` with the new tokens and their `DecodeStats`.

    Raises:
        ValueError: empty prompt, a prompt that is not token ids (text, a mapping, a float
            or bool id, a tensor that is not 1-D and integer; the message names the type
            received), ``max_new_tokens < 1``, ``k < 1``, an invalid ``tau`` or
            ``draft_tau``, a prompt that does not fit either model's context, a token id
            outside the vocabulary, or a draft whose vocabulary size differs from the
            target's; all checked before any forward pass.
    """
    prompt_ids = _token_ids(prompt_ids)  # before anything touches a model
    draft_tau = tau if draft_tau is None else draft_tau
    tau_at(tau, 0), tau_at(draft_tau, 0, "draft_tau")  # checked before any forward pass
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (draft tokens per step) must be an integer >= 1, got {k!r}")
    t_run, d_run = as_runner(target), as_runner(draft)
    _check_inputs(prompt_ids, max_new_tokens, [("target", t_run), ("draft", d_run)])
    device, eos = t_run.device, _eos_set(eos_token_id, target)
    g = _make_generator(device, generator, seed)
    clock, stats = Clock(device), DecodeStats()

    t0 = clock()
    seq = t_run.start(prompt_ids)
    d_seq = d_run.start(prompt_ids)
    assert d_seq == seq, "draft and target runners must share the decoder sequence"
    n_prompt, max_len = len(seq), len(seq) + max_new_tokens
    if len(seq) > 1:  # prefill everything but the last token, which the first step feeds
        prefix = torch.tensor(seq[:-1], device=device)
        t_run.extend(prefix)
        d_run.extend(prefix.to(d_run.device))
        stats.target_forwards += 1
        stats.draft_forwards += 1
    stats.time_target = stats.time_draft = 0.0  # prefill counts in time_total only
    done = False
    while not done:
        k_eff = min(k, max_len - len(seq) - 1)  # never propose past max_new_tokens
        n0 = len(seq) - n_prompt  # drafted position i would be new token n0 + i
        taus_p = [tau_at(tau, n0 + i) for i in range(k_eff + 1)]
        # -- draft: x_1..x_k ~ q, one at a time, each fed back for the next --------------
        ta = clock()
        feed = torch.tensor(seq[d_run.length:], device=d_run.device)
        xs, qs = [], []
        for i in range(k_eff):
            q_i = probs(d_run.extend(feed)[-1], tau_at(draft_tau, n0 + i, "draft_tau"))  # (vocab,)
            x_i = sample(q_i, g)
            qs.append(q_i)
            xs.append(x_i)
            feed = x_i.view(1)
            stats.draft_forwards += 1
        tb = clock()
        stats.time_draft += tb - ta
        # -- target: one forward over [last token, x_1..x_k] gives p_1..p_{k+1} ----------
        x = torch.stack(xs).to(device) if xs else torch.empty(0, dtype=torch.long, device=device)
        logits = t_run.extend(torch.cat([torch.tensor(seq[-1:], device=device), x]))
        p = _probs_at(logits[-(k_eff + 1):], taus_p)  # (k+1, vocab)
        stats.target_forwards += 1
        tc = clock()
        stats.time_target += tc - tb
        q = torch.stack(qs).to(device) if qs else p[:0]
        n, new_token = verify(p, q, x, g)
        td = clock()
        stats.time_verify += td - tc
        stats.time_target += td - tc  # verification and resampling count as target time
        stats.steps += 1
        stats.drafted += k_eff
        stats.accepted += n
        stats.rejections += int(n < k_eff)
        stats.accepted_per_step.append(n)
        stats.drafted_per_step.append(k_eff)
        # -- crop both caches to the accepted prefix and commit ---------------------------
        t_run.rollback(len(seq) + n)
        d_run.rollback(min(d_run.length, len(seq) + n))
        done = _commit(seq, x[:n].tolist() + [new_token], eos, max_len)
    stats.time_total = clock() - t0
    stats.new_tokens = len(seq) - n_prompt
    return DecodeResult(seq[n_prompt:], stats)


def autoregressive_generate(target, prompt_ids: Sequence[int], max_new_tokens: int = 64,
                            tau=0.0, seed: int | None = None,
                            generator: torch.Generator | None = None,
                            eos_token_id=None) -> DecodeResult:
    """Plain decoding of the target, one token per forward, with the same runner and cache.

    Args and Raises: as `speculative_generate`, without the draft; ``tau`` may be a schedule
    there too (new token ``n`` at ``tau(n)``).

    Returns:
        `DecodeResult`; its stats have ``drafted == 0`` and ``steps == new_tokens``.
    """
    prompt_ids = _token_ids(prompt_ids)  # before anything touches a model
    tau_at(tau, 0)
    t_run = as_runner(target)
    _check_inputs(prompt_ids, max_new_tokens, [("target", t_run)])
    device, eos = t_run.device, _eos_set(eos_token_id, target)
    g = _make_generator(device, generator, seed)
    clock, stats = Clock(device), DecodeStats()
    t0 = clock()
    seq = t_run.start(prompt_ids)
    n_prompt, max_len = len(seq), len(seq) + max_new_tokens
    if len(seq) > 1:  # prefill as speculative_generate does, so timings compare fairly
        t_run.extend(torch.tensor(seq[:-1], device=device))
        stats.target_forwards += 1
    feed = torch.tensor(seq[-1:], device=device)
    done = False
    while not done:
        ta = clock()
        token = int(sample(probs(t_run.extend(feed)[-1], tau_at(tau, len(seq) - n_prompt)), g))
        stats.target_forwards += 1
        stats.steps += 1
        stats.time_target += clock() - ta
        feed = torch.tensor([token], device=device)
        done = _commit(seq, [token], eos, max_len)
    stats.time_total = clock() - t0
    stats.new_tokens = len(seq) - n_prompt
    return DecodeResult(seq[n_prompt:], stats)
