"""Knowledge distillation of the draft at a temperature: the losses, offline and online KD, training.

The paper's remedy (Ouyang et al. 2024, arXiv 2410.10141, Sec. 3-5) for slow speculative
decoding at high temperature is to distil the draft from the target at the temperature it
will be used at. Two paradigms, as the paper compares them:

- offline KD, SeqKD (Kim and Rush 2016, arXiv 1606.07947): cross-entropy of the draft on
  teacher samples drawn from the target at ``tau_kd``, answer tokens only;
- online KD, token-level: the draft's own distribution ``q`` (its softmax, tau 1) is fitted
  to the target's ``p`` at ``tau_kd`` at every position of the training sequences,
  KL(p_tau_kd || q) by default (`divergence`). Only ``p`` is tempered: this is the
  token-level expectation of SeqKD's loss, so both paradigms aim at the same draft, and at
  tau_kd = 0 both are cross-entropy on the target's argmax. (An earlier version tempered
  ``q`` too, which left drafts distilled at low tau_kd with logits shrunk by tau_kd.) DistillSpec (Zhou et al. 2023,
  arXiv 2310.08461) compares data sources and finds the best one depends on the draft's
  quality; Online Speculative Decoding (Liu et al. 2023, arXiv 2310.07177) trains on what the
  target produces while serving. Three sources are here (``KDConfig.source``): ``"target"``
  (default) samples fresh sequences from the target at ``tau_kd`` and takes its logits from
  that same generation; ``"draft"`` samples on-policy from the draft and scores them with
  the target; ``"data"`` takes the sequences from stored teacher samples at ``tau_kd`` (the
  ones offline KD uses), with the target's top-64 logits per position recorded while they
  were sampled (`teacher.target_scores`) or, without them, one target forward per step; generating
  them during training costs about 3.7 s a step (batch 16, a 2-core CPU), so the
  cpu and smoke profiles use stored samples for the KD grid. Measured on the embedded pair: on-policy samples of the general no-KD draft
  are degenerate ("The world of a world of ...") and taught it nothing (expected alpha at
  tau 0 stayed at 0.075), hence the default. Forward KL by default; reverse KL, JSD and TVD
  are selectable (DistillSpec Table 1).

Both take their temperature from `tcsd_utils.temperature`, the one definition in the
project. What the drafts learn from (teacher samples, the target's stored scores, the
temperature mix of the data-centric recipe, general text for the "no KD" draft) is made in
`tcsd_utils.teacher`. A run's settings are a `tcsd_utils.profiles.KDConfig`.

Training saves a resumable checkpoint every few steps and the finished draft with
``save_pretrained`` beside its config and loss curve; a finished draft is never trained
again (`train_draft`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .batching import cut_at_eos, head_logits, left_pad, new_tokens, pack, pad_id
from .files import atomic_path, cached, write_json
from .files import progress as progress_bar
from .models import default_device, load_model
from .profiles import KDConfig
from .runners import train_precision
from .subvocab import head_ids
from .teacher import stored_logits
from .temperature import generation_config, local_rng, log_probs, probs

__all__ = ["divergence", "train_draft", "load_draft", "is_finished"]

LR_FLOOR = 0.1          # after warm-up the cosine decays the learning rate to 10% of its peak, not to 0
WEIGHT_DECAY = 0.01     # AdamW's decoupled weight decay (torch's default)
MAX_GRAD_NORM = 1.0     # each step's gradient is clipped to this global norm
STEP_SEED = 1_000_003   # a prime above any step count: seed * STEP_SEED + step differs for every (seed, step)
IGNORE = -100           # a label without loss: the ignore_index of F.cross_entropy


# ---------------------------------------------------------------------------- losses


def divergence(target_logits: torch.Tensor, draft_logits: torch.Tensor, tau: float,
               kind: str = "fkl", ids: torch.Tensor | None = None) -> torch.Tensor:
    """Token-level divergence between the target's ``p`` at ``tau`` and the draft's ``q``.

    Only ``p`` is tempered; ``q`` is the draft's own distribution, softmax(draft logits)
    (tau 1). Forward KL is then the expectation over ``y ~ p_tau`` of SeqKD's loss
    ``-log q(y)`` (up to the entropy of ``p``), so online KD at ``tau_kd`` fits the same
    draft that offline KD on samples at ``tau_kd`` fits, token by token instead of by
    sample; at tau 0 both are cross-entropy on the target's argmax. Tempering ``q`` too,
    KL(p_tau || q_tau), asked the draft to store ``p_tau`` with its logits shrunk by
    ``tau``: trained at tau 0.25 it was near uniform when decoding (DESIGN.md, notebook 02).

    Args:
        target_logits: `torch.Tensor` of shape ``(n, vocab)``.
        draft_logits: `torch.Tensor` of shape ``(n, vocab)``, or ``(n, len(ids))`` for a
            draft whose output layer covers only ``ids`` (`tcsd_utils.subvocab`).
        tau: KD temperature of ``p`` (0: one-hot on the target's argmax).
        kind: ``fkl`` KL(p||q), ``rkl`` KL(q||p), ``jsd`` Jensen-Shannon, ``tvd``.
        ids: the columns of ``target_logits`` the draft's logits cover (token ids, or a
            slice of a compact tensor: `teacher.stored_logits`), or None for the whole
            vocabulary. The sums then run over ``ids`` only: the draft has q = 0 elsewhere,
            where no loss can move it (forward KL would be infinite there).

    Returns:
        `torch.Tensor` of shape ``(n,)``.
    """
    log_q = log_probs(draft_logits, 1.0)
    p = probs(target_logits, tau).detach()
    if ids is not None:
        p = p[:, ids]  # (n, len(ids))
    if kind == "fkl":
        return (torch.special.xlogy(p, p) - p * log_q).sum(-1)
    if kind == "rkl":
        # Not in the definition, but needed at tau == 0: log p is -inf off the argmax; a
        # floor of log(1e-6) keeps the loss finite and still pushes q onto the argmax.
        log_p = torch.clamp(log_probs(target_logits, tau).detach(), min=math.log(1e-6))
        log_p = log_p[:, ids] if ids is not None else log_p
        return (log_q.exp() * (log_q - log_p)).sum(-1)
    q = log_q.exp()
    if kind == "tvd":
        return 0.5 * (p - q).abs().sum(-1)
    m = 0.5 * (p + q)
    log_m = torch.log(m.clamp_min(1e-12))  # m = 0 only where p = q = 0 (terms that are 0): no log(0)
    return 0.5 * ((torch.special.xlogy(p, p) - p * log_m).sum(-1) + (q * (log_q - log_m)).sum(-1))


# ---------------------------------------------------------------------------- training


def _lm_batch(stream, cfg, rng, device):
    starts = [rng.randrange(len(stream) - cfg.seq_len - 1) for _ in range(cfg.batch_size)]
    return [([stream[s]], stream[s + 1: s + cfg.seq_len + 1]) for s in starts]


def sampling_tau(cfg: KDConfig, rng: random.Random) -> float:
    """The temperature one online step samples its sequences at: ``tau_kd``, or drawn from
    ``cfg.mix_weights`` (the data-centric recipe), one temperature per step."""
    weights = cfg.mix_weights or {cfg.tau_kd: 1.0}
    return rng.choices(list(weights), weights=list(weights.values()), k=1)[0]


@torch.no_grad()
def _online_samples(model, prompts, cfg, rng, pad, eos, with_logits=False):
    """Online KD data: continuations of a batch of prompts, sampled during training.

    ``model`` is the draft (on-policy, ``cfg.source == "draft"``) or the target
    (``"target"``). With ``with_logits`` the target's raw logits at every answer position
    come back too, in `batching.pack` order, so the target needs no second forward.
    """
    batch = [prompts[rng.randrange(len(prompts))] for _ in range(cfg.batch_size)]
    tau = sampling_tau(cfg, rng)
    ids, mask = left_pad(batch, pad)
    was_training = model.training
    model.eval()
    out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                         generation_config=generation_config(tau, cfg.max_new_tokens, pad, eos,
                                                              return_dict_in_generate=True,
                                                              output_logits=with_logits))
    model.train(was_training)
    answers = new_tokens(model, out.sequences, ids.shape[1]).tolist()
    pairs, logits = [], []
    for r, (p, a) in enumerate(zip(batch, answers)):
        a = cut_at_eos(a, eos) or [eos]
        pairs.append((p, a))
        if with_logits:
            logits += [out.logits[j][r] for j in range(len(a))]  # logits[j]: (batch, vocab)
    return pairs, (torch.stack(logits) if with_logits else None)


def _lr(cfg, step):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


_NOT_IDENTITY = ("checkpoint_every", "checkpoint_seconds")


def is_finished(out_dir, cfg: KDConfig | None = None, device=None) -> bool:
    """True when ``out_dir`` holds a finished draft (made with ``cfg``, if given; `files.cached`),
    in the precision ``cfg`` trains in on ``device`` (`runners.train_precision`; a draft made before
    precision was recorded was made in float32 on a CPU). How often a run checkpoints does not
    change the draft, so it is left out of the comparison."""
    out_dir = Path(out_dir)
    if cfg is None:
        return (out_dir / "config.json").is_file() and (out_dir / "model" / "config.json").is_file()

    def identity(kd: dict) -> dict:
        return {"precision": "float32", **{key: value for key, value in kd.items() if key not in _NOT_IDENTITY}}

    made = asdict(replace(cfg, precision=train_precision(cfg.precision, default_device(device))))
    return cached(out_dir / "config.json", made, key="kd", artifact=out_dir / "model" / "config.json",
                  compare=identity) is not None


def load_draft(out_dir, device=None, dtype=None):
    """A finished draft from its folder (``out_dir/model``)."""
    return load_model(str(Path(out_dir) / "model"), device, dtype)


def _check_inputs(cfg: KDConfig, target, data, prompts, texts) -> None:
    """Refuse a training run that lacks what its mode and source read."""
    online_needs = ("data", data) if cfg.source == "data" else ("prompts", prompts)
    need = {"lm": ("texts", texts), "offline": ("data", data), "online": online_needs}[cfg.mode]
    if not need[1]:
        raise ValueError(f"{cfg.mode} training needs a non-empty `{need[0]}`")
    if cfg.mode == "online" and target is None:
        raise ValueError("online KD needs the target")


def _optimiser(draft, cfg: KDConfig):
    """The trained parameters (the input embedding frozen with ``train_embedding=False``) and
    their AdamW."""
    if not cfg.train_embedding:
        if draft.get_input_embeddings().weight is draft.get_output_embeddings().weight:
            raise ValueError("train_embedding=False needs a draft whose output layer is not tied to its embedding")
        draft.get_input_embeddings().weight.requires_grad_(False)
    params = [w for w in draft.parameters() if w.requires_grad]
    return params, torch.optim.AdamW(params, lr=cfg.lr, weight_decay=WEIGHT_DECAY)


def _head_slots(draft, device):
    """A sub-vocabulary draft's kept ids and, per token id, its column in the compact logits
    (`IGNORE` where not kept); None, None for a full head."""
    kept = head_ids(draft)
    if kept is None:
        return None, None
    slot = torch.full((draft.config.vocab_size,), IGNORE, dtype=torch.long, device=device)
    slot[kept] = torch.arange(kept.numel(), device=device)
    return kept, slot


def _batch(cfg: KDConfig, rng: random.Random, draft, target, data, prompts, stream, pad: int, eos: int, slot=None):
    """One step's (prompt, answer) pairs, the target's logits at their answer positions
    (`batching.pack` order) where they come with the pairs: from the target's own
    generation, or stored by `target_scores`; else None (`_loss` asks the target). Last,
    whether those logits are compact: stored scores for a sub-vocabulary draft (its
    ``slot``), laid out with the draft's columns first (`teacher.stored_logits`)."""
    if cfg.mode == "lm":
        return _lm_batch(stream, cfg, rng, draft.device), None, False
    if cfg.mode == "offline" or cfg.source == "data":
        rows = [data[rng.randrange(len(data))] for _ in range(cfg.batch_size)]
        pairs = [(r["prompt_ids"], r["answer_ids"]) for r in rows]
        if cfg.mode == "online" and "top_ids" in rows[0]:  # scored once (`target_scores`)
            return pairs, stored_logits(rows, draft.config.vocab_size, draft.device, slot), slot is not None
        return pairs, None, False
    by_target = cfg.source == "target"
    return *_online_samples(target if by_target else draft, prompts, cfg, rng, pad, eos, with_logits=by_target), False


def _loss(cfg: KDConfig, draft, target, pairs, t_logits, pad: int, kept, slot, compact: bool = False):
    """The step's loss on ``pairs``: the divergence from the target (online) or the
    cross-entropy on the answers (offline, lm). ``compact``: ``t_logits`` hold the draft's
    ``kept`` ids as their first columns (`_batch`), not the whole vocabulary. Returns the
    loss and its token count."""
    device = draft.device
    ids, mask, rows, cols, labels = pack(pairs, pad, device)
    logits = head_logits(draft, ids, mask, rows, cols, compact=True)  # (n, vocab or kept ids)
    if cfg.mode == "online":
        if t_logits is None:  # draft samples or stored ones: score them with the target now
            with torch.no_grad():
                t_logits = head_logits(target, ids.to(target.device), mask.to(target.device),
                                       rows.to(target.device), cols.to(target.device))
        covered = slice(0, kept.numel()) if compact else kept  # the columns of t_logits the draft covers
        loss = divergence(t_logits.to(device), logits, cfg.tau_kd, cfg.divergence, covered).mean()
    else:  # tokens the draft's head does not cover carry no loss
        loss = F.cross_entropy(logits.float(), labels if kept is None else slot[labels], ignore_index=IGNORE)
    return loss, int(labels.numel())


def _save(out_dir: Path, cfg: KDConfig, draft, tokenizer, history, extra_config) -> None:
    """The finished draft (``model/``), its loss curve and, last, its config."""
    draft.eval()
    with atomic_path(out_dir / "model") as tmp:
        draft.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    write_json(history, out_dir / "loss.json")
    write_json({"kd": asdict(cfg), **(extra_config or {})}, out_dir / "config.json")  # written last
    ckpt = out_dir / "checkpoint.pt"
    if ckpt.is_file():
        ckpt.unlink()


def train_draft(out_dir, cfg: KDConfig, draft, tokenizer, target=None, data=None, prompts=None,
                texts=None, extra_config: dict | None = None, progress: bool = True):
    """Train a draft, resumably, and save it with ``save_pretrained`` beside its config.

    Args:
        out_dir: the draft's folder: ``model/`` (safetensors and tokenizer), ``config.json``,
            ``loss.json``, and ``checkpoint.pt`` while training.
        cfg: `KDConfig`.
        draft: the starting draft (a model; its weights are kept in float32 on its device, and
            its steps run in `runners.train_precision`).
        tokenizer: the shared tokenizer (saved with the draft).
        target: the teacher, for ``online``.
        data: teacher samples (`teacher_data` or `mix`), for ``offline`` and ``online`` with
            ``source="data"``.
        prompts: chat-formatted prompt ids to sample from, for ``online`` (target or draft source).
        texts: general text, for ``lm``.
        extra_config: recorded in ``config.json`` (for example where the data came from).

    Returns:
        The trained draft in eval mode. When ``out_dir`` already holds a draft finished
        with the same ``cfg``, it is loaded and nothing is trained.
    """
    out_dir = Path(out_dir)
    device = draft.device
    cfg = replace(cfg, precision=train_precision(cfg.precision, device))  # recorded in config.json as used
    if is_finished(out_dir, cfg):
        return load_draft(out_dir, device, torch.float32)
    _check_inputs(cfg, target, data, prompts, texts)
    draft = draft.float().train()
    params, opt = _optimiser(draft, cfg)
    pad, eos = pad_id(tokenizer), tokenizer.eos_token_id
    step, history = 0, []
    ckpt = out_dir / "checkpoint.pt"
    if ckpt.is_file():  # resume
        state = torch.load(ckpt, map_location=device, weights_only=False)
        draft.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        step, history = state["step"], state["history"]
    kept, slot = _head_slots(draft, device)
    stream = None
    if cfg.mode == "lm":
        stream = [t for text in texts for t in tokenizer.encode(text, add_special_tokens=False) + [eos]]
    t0 = time.perf_counter() - (history[-1]["time"] if history else 0.0)
    saved = time.perf_counter()
    bar = progress_bar(total=cfg.steps, initial=step, desc=f"{cfg.mode} KD tau={cfg.tau_kd}" if cfg.mode != "lm"
               else "no-KD pretraining", disable=not progress, leave=False)
    devices = (device,) if target is None else (device, target.device)
    with local_rng(*devices):  # each step reseeds; the caller's random state is left as it was
        while step < cfg.steps:
            rng = random.Random(cfg.seed * STEP_SEED + step)  # batches depend on the step only
            torch.manual_seed(cfg.seed * STEP_SEED + step)
            pairs, t_logits, compact = _batch(cfg, rng, draft, target, data, prompts, stream, pad, eos, slot)
            # in bfloat16 the forward runs under autocast: the weights, their gradients and
            # AdamW's state stay float32 (`runners.train_precision`)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
                loss, tokens = _loss(cfg, draft, target, pairs, t_logits, pad, kept, slot, compact)
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            opt.step()
            step += 1
            history.append({"step": step, "loss": loss.item(), "lr": _lr(cfg, step - 1),
                            "tokens": tokens, "time": time.perf_counter() - t0})
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", refresh=False)
            by_steps = cfg.checkpoint_every and step % cfg.checkpoint_every == 0
            by_time = cfg.checkpoint_seconds and time.perf_counter() - saved >= cfg.checkpoint_seconds
            if (by_steps or by_time) and step < cfg.steps:
                saved = time.perf_counter()
                with atomic_path(ckpt) as tmp:
                    torch.save({"model": draft.state_dict(), "optim": opt.state_dict(), "step": step,
                                "history": history}, tmp)
    bar.close()
    _save(out_dir, cfg, draft, tokenizer, history, extra_config)
    return draft
