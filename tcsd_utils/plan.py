"""The dry run: a profile checked against its data, models, memory and disk, and its plan.

`check` runs before any heavy work, at the start of every `tcsd study` and alone with
``tcsd study --dry-run``. It refuses a profile whose settings cannot run here, with a
`ProfileError` that names every problem and its numbers (a test split smaller than the
prompts asked of it, a model neither on disk nor reachable, more memory or disk than the
machine has), so that a run never fails hours in. The parts that need the Hub are skipped
with their reason where the Hub cannot be reached (a dry run) or refused (a real run).

`estimate` adds the plan: each stage, how many of it, and an estimated time from per-step
costs measured on this machine in a few seconds (`measure_costs`), or, for a GPU that is
not here, from its datasheet (`GPUS`; an estimate, marked as such, until a run on that GPU
measures it). The stages are those of `tcsd_utils.study.Study` as the notebooks call them.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field

import psutil
import torch

from .data import from_hub, load_prompts
from .files import repo_root
from .graph import stages as stage_graph, teacher_taus
from .models import EMBEDDED_TARGET, load_model, make_draft, sampling_model, smollm2_gguf
from .profiles import MODES, Settings, draft_specs, settings, trained_as
from .runners import train_precision

__all__ = ["ProfileError", "Plan", "check", "estimate", "measure_costs", "gpu_costs", "GPUS", "format_plan"]

GB = 1024 ** 3

# Sizes of the models the profiles name, so that memory and disk are checked without
# loading them (params, decoder layers, hidden size, vocabulary; model cards and configs).
SIZES = {
    EMBEDDED_TARGET: (134.5e6, 30, 576, 49152),
    "meta-llama/Llama-2-13b-chat-hf": (13.0e9, 40, 5120, 32000),
    "JackFram/llama-68m": (68e6, 2, 768, 32000),
    "google/flan-t5-xl": (2.85e9, 48, 2048, 32128),
    "google/flan-t5-small": (77e6, 16, 512, 32128),
}

# GPUs whose costs come from the datasheet when none is at hand: memory bandwidth (bytes/s)
# and dense bf16 tensor FLOP/s (NVIDIA H100 SXM and H200 SXM datasheets), and memory.
GPUS = {"H100": (3.35e12, 989e12, 80), "H200": (4.8e12, 989e12, 141)}
GPU_EFFICIENCY = (0.6, 0.4)  # share of the datasheet's bandwidth and FLOP/s a run reaches (assumed)
KERNEL_LAUNCH_S = 6e-6       # per kernel, eager PyTorch (transformers' generate: teacher samples)
GRAPH_KERNEL_S = 2.5e-6      # per kernel replayed in a CUDA graph (our decoders' steps on CUDA, `runners`)
KERNELS_PER_LAYER = 40       # one decoder layer's forward, op by op


class ProfileError(ValueError):
    """A profile that cannot run here; the message lists every problem found."""


@dataclass
class Plan:
    """What `check` found and `estimate` planned: ``checks`` are (what, status, detail) with
    status "ok", "skipped" or "refused"; ``stages`` are (stage, count, seconds or None)."""

    profile: str
    settings: Settings
    checks: list = field(default_factory=list)
    stages: list = field(default_factory=list)
    memory_gb: float = math.nan
    memory_free_gb: float = math.nan
    disk_gb: float = math.nan
    disk_free_gb: float = math.nan
    costs: dict = field(default_factory=dict)
    costs_from: str = ""

    @property
    def problems(self) -> list[str]:
        return [f"{what}: {detail}" for what, status, detail in self.checks if status == "refused"]

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.stages if s is not None) if self.stages else math.nan


def _hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False, "HF_HUB_OFFLINE is set"
    result = [False, f"huggingface.co did not answer within {timeout:g} s"]

    def connect():  # in a thread: a name lookup can outlast the socket's own timeout
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            result[:] = [True, ""]
        except OSError as err:
            result[:] = [False, f"huggingface.co cannot be reached ({err.__class__.__name__})"]

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return tuple(result)


def _hub_cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache  # deferred: only for a Hub profile

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:  # noqa: BLE001 (an old huggingface_hub: treat as not cached)
        return False


def _needed_sets(s: Settings) -> list[tuple[str, str, int | None, str]]:
    """(prompt set, split, prompts asked, who asks) of every prompt set a run reads."""
    needs = [(s.train_set, "train", s.n_train_prompts or 1, "n_train_prompts (KD data)"),
             (s.train_set, "test", s.n_eval_prompts, "n_eval_prompts (held-out evaluation, notebooks 02-06)"),
             (s.ood_set, "test", s.n_eval_prompts, "n_eval_prompts (out of domain, notebook 04)"),
             ("instructions", "all", s.explore_prompts, "explore_prompts (notebook 01)")]
    if s.train_set == "math":  # templates never seen in training (notebook 02, report.md)
        needs.append(("math", "unseen", s.n_eval_prompts, "n_eval_prompts (held out, unseen templates)"))
    return needs


def _check_settings(s: Settings) -> list[tuple[str, str, str]]:
    checks = []
    if s.spec_prompts > s.n_eval_prompts:
        checks.append(("spec_prompts", "refused", f"{s.spec_prompts} timed prompts are taken from the "
                                                   f"{s.n_eval_prompts} held-out ones (n_eval_prompts)"))
    for name, value in (("k", s.k), ("spec_tokens", s.spec_tokens), ("new_tokens", s.new_tokens),
                        ("teacher_batch", s.teacher_batch), ("n_eval_prompts", s.n_eval_prompts),
                        ("samples_per_prompt", s.samples_per_prompt)):
        if not isinstance(value, int) or value < 1:
            checks.append((name, "refused", f"must be a whole number, 1 or more, got {value!r}"))
    if not s.kd_taus or not s.decode_taus:
        checks.append(("taus", "refused", "kd_taus and decode_taus must each hold one temperature or more"))
    return checks


def _check_data(s: Settings, dry_run: bool, hub: tuple[bool, str]) -> list[tuple[str, str, str]]:
    checks, seen = [], {}
    for name, split, n, who in _needed_sets(s):
        what = f"prompts {name!r} ({split} split)"
        if from_hub(name):  # never downloaded by a check
            if hub[0]:
                checks.append((what, "ok", f"from the Hub ({n} asked; its size is checked when the run loads it)"))
            else:
                checks.append((what, "skipped" if dry_run else "refused",
                               f"from the Hub, which is not reachable: {hub[1]}"))
            continue
        key = (name, split)
        if key not in seen:
            try:
                seen[key] = len(load_prompts(name, None, None, split=split))
            except (OSError, ValueError) as err:
                checks.append((what, "refused", str(err)))
                continue
        have = seen[key]
        if n is not None and n > have:
            checks.append((what, "refused", f"{who} asks for {n}, but the split has only {have}"))
        else:
            asked = "all" if name == s.train_set and split == "train" and s.n_train_prompts is None else n
            checks.append((what, "ok", f"{have} prompts, {asked} asked"))
    return checks


def _check_models(s: Settings, dry_run: bool, hub: tuple[bool, str]) -> list[tuple[str, str, str]]:
    checks = []
    for role, name in (("target", s.target), ("no-KD draft", s.paper_draft)):
        if name is None:
            continue
        if name == EMBEDDED_TARGET:
            try:
                smollm2_gguf()
                checks.append((f"{role} {name}", "ok", "embedded GGUF on disk"))
            except FileNotFoundError as err:
                checks.append((f"{role} {name}", "refused", str(err)))
        elif os.path.isdir(name) or name.endswith(".gguf"):
            ok = os.path.exists(name)
            checks.append((f"{role} {name}", "ok" if ok else "refused", "on disk" if ok else "not found"))
        elif _hub_cached(name):
            checks.append((f"{role} {name}", "ok", "in the Hugging Face cache"))
        elif hub[0]:
            checks.append((f"{role} {name}", "ok", "from the Hub (downloaded on first use)"))
        else:
            checks.append((f"{role} {name}", "skipped" if dry_run else "refused",
                           f"not in the Hugging Face cache and the Hub is not reachable: {hub[1]}"))
    return checks


def _drafts(s: Settings) -> dict[str, list]:
    """The KD drafts a run trains, per mode, as (tau_kd, mix) (`profiles.draft_specs`); one
    that trains as another (`profiles.trained_as`) is not counted."""
    made = {name: spec for name, spec in draft_specs(s).items() if trained_as(s, name) == name}
    return {m: [(t, mix) for mode, t, mix in made.values() if mode == m] for m in MODES}


def _draft_params(s: Settings) -> tuple[float, float]:
    """(all, trained) parameters of the profile's draft: the cut draft's layers and head
    (its embedding is the target's, frozen), or the Hub draft."""
    if s.paper_draft:
        p = SIZES.get(s.paper_draft, (100e6,))[0]
        return p, p
    params, layers, hidden, vocab = SIZES.get(s.target, SIZES[EMBEDDED_TARGET])
    per_layer = (params - vocab * hidden) / layers
    shape = s.draft_shape or {}
    trained = per_layer * len(shape.get("target_layers", [0, 1])) + shape.get("head_vocab", vocab) * hidden
    return trained + vocab * hidden, trained


def _memory_gb(s: Settings, device: str) -> float:
    """Peak memory of one notebook kernel (an estimate): the target's weights, the drafts the
    grid holds at once, one draft's training state and the target's distributions that are
    kept for evaluation."""
    params, layers, hidden, vocab = SIZES.get(s.target, SIZES[EMBEDDED_TARGET])
    width = 2 if device == "cuda" else 4  # bf16 on a GPU; float32 on a CPU without bf16 instructions
    _, trained = _draft_params(s)
    n_grid = 1 + len(MODES) * len(s.kd_taus)
    weights = params * width + n_grid * trained * width
    train = trained * 16 + s.offline.batch_size * (s.new_tokens + 64) * hidden * 40 * 4  # AdamW + activations
    seq = s.new_tokens + 64
    target_p = 2 * s.n_eval_prompts * s.new_tokens * vocab * 4  # two (set, tau) tables of fp32 p
    scoring = 16 * seq * vocab * 4 * 2  # a forward's logits, 16 sequences at a time (`evaluate.target_distributions`)
    # sampling: a bfloat16 copy of the target on a CPU (`models.sampling_model`), and the cache
    # of a teacher batch, keys and values over at most the whole width
    sampling = (params * 2 if device == "cpu" else 0) + s.teacher_batch * seq * layers * 2 * hidden * width
    return (weights + train + target_p + scoring + sampling) / GB + 1.0  # + about 1 GB of Python, torch and data


def _n_train(s: Settings) -> int:
    """The train prompts a run samples teacher data from (a Hub set counted as 1000 unless given)."""
    if s.n_train_prompts or from_hub(s.train_set):
        return s.n_train_prompts or 1000
    try:
        return len(load_prompts(s.train_set, None, None, split="train"))
    except (OSError, ValueError):  # refused by name in the data check
        return 1000


def _disk_gb(s: Settings) -> float:
    all_params, trained = _draft_params(s)
    n_drafts = sum(len(v) for v in _drafts(s).values()) + 1
    n_train = _n_train(s)
    seq = s.new_tokens + 64
    teacher = len(teacher_taus(s)) * n_train * s.samples_per_prompt * seq * 8 * 2
    # stored scores: an int32 id and a float32 logit per answer token and top slot, recorded
    # with every teacher set while sampling, and copied for each online draft on mixed data
    # (`teacher.target_scores`)
    copies = len(teacher_taus(s)) + sum(1 for _, mix in _drafts(s)["online"] if mix)
    scores = copies * n_train * s.samples_per_prompt * s.new_tokens * (s.online_top_k or 0) * 8
    drafts = n_drafts * trained * 4 + trained * 16  # the drafts, and one checkpoint with AdamW's state
    return (teacher + scores + drafts) / GB + 0.1


def _memory_free_gb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.mem_get_info()[0] / GB
    return psutil.virtual_memory().available / GB


def check(profile: str, root=None, device: str | None = None, gpu: str | None = None,
          dry_run: bool = False, **overrides) -> Plan:
    """Check ``profile`` (a name of `SETTINGS`, or ``cpu-seed1``) against the data, the
    models, memory and disk, without loading a model (a second or two; the Hub parts up to
    3 s more).

    Args:
        profile: the run.
        root: where ``outputs/`` is (as `tcsd study`), for the disk check.
        device: "cpu" or "cuda" (default: CUDA when there is one).
        gpu: check memory against this GPU of `GPUS` (its datasheet memory) rather than this
            machine's: the plan of a GPU run, made on a machine without one.
        dry_run: Hub parts that cannot be reached are skipped (with their reason), not refused.
        **overrides: `Settings` fields to change (as `study.Study`).

    Returns:
        The `Plan` with its checks (no stages yet: `estimate` adds them).

    Raises:
        ProfileError: naming every refused check.
    """
    s = settings(profile, **overrides)
    if gpu is not None and gpu not in GPUS:
        raise ValueError(f"unknown GPU {gpu!r}; the table has {sorted(GPUS)}")
    if gpu is not None:
        device = "cuda"
    elif device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    plan = Plan(profile, s)
    needs_hub = s.from_hub or from_hub(s.train_set) or from_hub(s.ood_set)
    hub = _hub_reachable() if needs_hub else (False, "not needed")
    plan.checks += _check_settings(s) + _check_data(s, dry_run, hub) + _check_models(s, dry_run, hub)
    plan.memory_gb = _memory_gb(s, device)
    plan.memory_free_gb = GPUS[gpu][2] * 1e9 / GB if gpu else _memory_free_gb(device)
    device = f"{gpu} (datasheet)" if gpu else device
    if plan.memory_gb > plan.memory_free_gb:
        plan.checks.append(("memory", "refused", f"the plan needs about {plan.memory_gb:.1f} GB on {device}, "
                                                 f"{plan.memory_free_gb:.1f} GB are free"))
    else:
        plan.checks.append(("memory", "ok", f"about {plan.memory_gb:.1f} GB needed on {device}, "
                                            f"{plan.memory_free_gb:.1f} GB free"))
    where = root or os.environ.get("TCSD_OUTPUTS") or repo_root()
    where = where if os.path.exists(where) else repo_root()
    plan.disk_gb, plan.disk_free_gb = _disk_gb(s), shutil.disk_usage(where).free / GB
    status = "refused" if plan.disk_gb > plan.disk_free_gb else "ok"
    plan.checks.append(("disk", status, f"about {plan.disk_gb:.1f} GB of outputs, {plan.disk_free_gb:.1f} GB free"))
    if plan.problems:
        raise ProfileError(f"profile {profile!r} cannot run here:\n  - " + "\n  - ".join(plan.problems))
    return plan


# ---------------------------------------------------------------------------- costs

def measure_costs(s: Settings, device: str | None = None) -> dict:
    """Per-step costs of this profile's models on this machine, in about 15 s on a CPU:

    - ``load``: loading the target (each notebook does it once);
    - ``step_b``: one sampled decoding step of the target for ``teacher_batch`` sequences;
      ``step_1``: the same for one sequence;
    - ``forward``: the target on ``teacher_batch`` sequences of a prompt and ``new_tokens``
      (scoring, the target's distributions);
    - ``train``: one KD step of the cut draft on ``offline.batch_size`` such sequences, its
      embedding frozen as in the study; ``train_lm``: one no-KD step.

    On a CPU the forward and the training step are timed on 4 sequences and scaled by the
    tokens (a CPU is compute-bound there); on a GPU at full size. Each is the better of two
    calls after a warm-up."""
    t0 = time.perf_counter()
    target = load_model(s.target, device)
    costs = {"load": time.perf_counter() - t0}
    dev = target.device
    seq = 96 + s.new_tokens  # the math prompts are about 90 tokens with the chat template
    vocab = target.config.vocab_size
    small = dev.type == "cpu"

    def best(fn, n=2):
        fn()
        times = []
        for _ in range(n):
            t1 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t1)
        return min(times)

    def step_cost(batch, model):  # generate's time per sampled token: (5 tokens - 1 token) / 4, a short prefill left out
        ids = torch.randint(0, vocab, (batch, 16), device=dev)
        eos = target.config.eos_token_id
        pad = (eos[0] if isinstance(eos, (list, tuple)) else eos) or 0

        def gen(n):
            return lambda: model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                           temperature=1.0, top_k=0, top_p=1.0, min_new_tokens=n,
                                           max_new_tokens=n, pad_token_id=pad)
        with torch.inference_mode():
            return max(best(gen(5), n=1) - best(gen(1), n=1), 0.0) / 4

    # teacher samples as the study draws them (`models.sampling_model`); held-out ones by the target
    costs.update(step_b=step_cost(s.teacher_batch, sampling_model(target)), step_1=step_cost(1, target))
    rows = 4 if small else s.teacher_batch
    with torch.inference_mode():
        ids = torch.randint(0, vocab, (rows, seq), device=dev)
        costs["forward"] = best(lambda: target(ids)) * s.teacher_batch / rows
    draft = make_draft(target, seed=0, **(s.draft_shape or {})).to(dev).float().train()
    draft.get_input_embeddings().weight.requires_grad_(False)  # frozen, as train_embedding=False
    opt = torch.optim.AdamW([p for p in draft.parameters() if p.requires_grad], lr=1e-4)

    def train_step(batch, length, positions, precision):
        n = min(batch, 4) if small else batch
        ids = torch.randint(0, vocab, (n, length), device=dev)
        bf16 = train_precision(precision, dev) == "bfloat16"  # as the study's steps run here

        def fn():  # the head at the answer positions only, as the study's loss
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                hidden = draft.model(ids).last_hidden_state[:, -positions:]
                logits = draft.lm_head(hidden)
            logits.float().logsumexp(-1).mean().backward()
            opt.step()
            opt.zero_grad()
        return best(fn) * batch / n

    costs["train"] = train_step(s.offline.batch_size, seq, s.new_tokens, s.offline.precision)
    costs["train_lm"] = train_step(s.nokd.batch_size, s.nokd.seq_len, s.nokd.seq_len, s.nokd.precision)  # a loss at every position
    costs["device"] = str(dev)
    return costs


def gpu_costs(s: Settings, gpu: str) -> dict:
    """The costs of `measure_costs` for a GPU of `GPUS` from its datasheet: the larger of
    the time to read the weights and the time of the FLOPs, at `GPU_EFFICIENCY`, plus
    `KERNEL_LAUNCH_S` per kernel launched eagerly (teacher sampling, training) or
    `GRAPH_KERNEL_S` per kernel of a CUDA graph (a decoding step). An estimate until a run on
    that GPU measures it."""
    if gpu not in GPUS:
        raise ValueError(f"unknown GPU {gpu!r}; the table has {sorted(GPUS)}")
    bandwidth, flops, _ = GPUS[gpu]
    bandwidth, flops = bandwidth * GPU_EFFICIENCY[0], flops * GPU_EFFICIENCY[1]
    params, layers, _, _ = SIZES.get(s.target, SIZES[EMBEDDED_TARGET])
    _, trained = _draft_params(s)
    launch = layers * KERNELS_PER_LAYER * KERNEL_LAUNCH_S
    replay = layers * KERNELS_PER_LAYER * GRAPH_KERNEL_S
    draft_layers = len((s.draft_shape or {}).get("target_layers", [0, 1])) if not s.paper_draft else 2
    draft_launch = 3 * draft_layers * KERNELS_PER_LAYER * KERNEL_LAUNCH_S  # forward, backward, optimiser
    seq = 64 + s.new_tokens

    def run(p, tokens, bytes_per=2, flops_per=2):
        return max(p * bytes_per / bandwidth, flops_per * p * tokens / flops)

    return {"load": params * 2 / 2e9 + 10,  # the weights from disk at about 2 GB/s, and CUDA's start
            "step_b": run(params, s.teacher_batch) + launch, "step_1": run(params, 1) + replay,
            "forward": run(params, s.teacher_batch * seq) + launch,
            "train": run(trained, s.offline.batch_size * seq, 16, 6) + draft_launch,
            "train_lm": run(trained, s.nokd.batch_size * s.nokd.seq_len, 16, 6) + draft_launch,
            "device": f"{gpu} (datasheet estimate)"}


def estimate(plan: Plan, costs: dict) -> Plan:
    """The stages of ``plan``'s profile with their counts and times from ``costs``."""
    s = plan.settings
    c = costs
    n_train = _n_train(s)
    batches = math.ceil(n_train / s.teacher_batch)
    eval_batches = math.ceil(s.n_eval_prompts / s.teacher_batch)
    drafts = _drafts(s)
    n_online = len(drafts["online"])
    stages = []

    def add(name, count, seconds):
        stages.append((name, count, seconds))

    add("six notebooks: kernel start and loading the target", "6 x", 6 * (c.get("load", 0.0) + 10))
    add("01 the target alone (greedy continuations)", f"{s.explore_prompts} prompts x {s.new_tokens} tokens",
        s.explore_prompts * s.new_tokens * c["step_1"])
    if not s.paper_draft:
        add("no-KD draft", f"{s.nokd.steps} steps", s.nokd.steps * c["train_lm"])
    taus = teacher_taus(s)
    copies = sum(s.samples_per_prompt if t > 0 else 1 for t in taus)  # answer sets over the taus
    per = f" x {s.samples_per_prompt} samples at tau > 0" if s.samples_per_prompt > 1 else ""
    add("teacher samples (train)", f"{len(taus)} taus x {n_train} prompts{per} x {s.new_tokens} tokens "
        f"({copies * n_train * s.new_tokens / 1e6:.2f}M answer tokens at most)",
        copies * batches * (s.new_tokens * c["step_b"]))
    add("offline KD drafts", f"{len(drafts['offline'])} x {s.offline.steps} steps",
        len(drafts["offline"]) * s.offline.steps * c["train"])
    online = n_online * s.online.steps * c["train"]
    if s.online.source == "data":  # the target's top logits recorded while sampling: no forward
        what = f"{n_online} x {s.online.steps} steps on stored samples"
    else:  # the target generates a batch and scores it at every step
        online += n_online * s.online.steps * (s.online.max_new_tokens * c["step_b"] + c["forward"])
        what = f"{n_online} x {s.online.steps} steps, each generating {s.online.batch_size} x " \
               f"{s.online.max_new_tokens} tokens"
    add("online KD drafts", what, online)
    eval_sets = {(s.train_set, t) for t in set(s.decode_taus) | set(s.kd_taus)}
    eval_sets |= {(s.ood_set, t) for t in s.decode_taus}
    if s.train_set == "math":
        eval_sets |= {("math unseen", t) for t in s.kd_taus}
    add("held-out samples and the target's distributions", f"{len(eval_sets)} (set, tau)",
        len(eval_sets) * eval_batches * (s.new_tokens * c["step_b"] + c["forward"]))
    timing = [st for st in stage_graph(s) if st.kind == "timing"]  # 03's grid, 04 out of domain, 05's mixes
    cells, blocks = sum(len(st.args[2]) for st in timing), len(timing)
    run_tokens = s.spec_prompts * s.spec_repeats * s.spec_tokens
    add("speculative runs, timed (03-05)", f"{cells} cells in {blocks} blocks, {run_tokens} tokens each",
        (cells + 2 * blocks) * run_tokens * c["step_1"] * (1 + s.k * 0.1))
    add("06 beyond the paper (rough)", "sweeps and schedules", 4 * len(s.decode_taus) * run_tokens * c["step_1"])
    plan.stages, plan.costs, plan.costs_from = stages, costs, costs.get("device", "")
    return plan


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(plan: Plan) -> str:
    lines = [f"profile {plan.profile}: checks"]
    lines += [f"  {status:8s} {what}: {detail}" for what, status, detail in plan.checks]
    if plan.stages:
        lines.append(f"plan (costs: {plan.costs_from}; an estimate, within a factor of about 1.5)")
        width = max(len(n) for n, _, _ in plan.stages)
        lines += [f"  {name:{width}s}  {_duration(sec):>7s}  {count}" for name, count, sec in plan.stages]
        lines.append(f"  {'total':{width}s}  {_duration(plan.seconds):>7s}")
    return "\n".join(lines)
