"""The profiles: every setting of a run, in one place.

A profile is the one config a run composes (STYLE.md item 5). `Settings` holds the stages'
settings (`tcsd_utils.study`); `notebook_parameters` derives from them what papermill passes
to the notebooks (whose ``parameters`` cells hold the smoke profile's values, which nbval
re-executes; a test keeps the two equal). Profiles (DESIGN.md):

    smoke  CI and the committed notebook outputs: minutes on a 2-core CPU;
    cpu    the default full study on a laptop-class CPU;
    gpu    the paper's 0.1 grid on the embedded pair, on a GPU;
    paper     the paper's own models from the Hub, on a GPU, with the network;
    paper-t5  the same grid on the paper's second family, T5 (encoder-decoder), from the Hub.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

from .temperature import check_tau

__all__ = ["teacher_folder", "Settings", "SETTINGS", "MODES", "GRID_01", "notebook_parameters", "PROFILES", "run_name", "split_run_name",
           "KDConfig", "DIVERGENCES", "SOURCES", "PRECISIONS", "PAPER_TARGET", "PAPER_DRAFT", "PAPER_T5_TARGET", "PAPER_T5_DRAFT",
           "kd_name", "draft_specs", "trained_as", "sample_taus", "grid_names", "ood_names", "mix_names", "tau_tag", "settings"]

# The paper's models (Hub ids), for the paper profiles.
PAPER_TARGET = "meta-llama/Llama-2-13b-chat-hf"
PAPER_DRAFT = "JackFram/llama-68m"
# The paper's second family is T5: T5-XL (3B) as target, T5-small (60M) as draft. It names
# sizes, not Hub ids; these are the instruction-tuned Flan-T5 checkpoints of those sizes, which
# answer the study's instructions (plain T5 v1.1 is pretrained only) and share one SentencePiece
# vocabulary (32128 logits), as speculative sampling needs. Flan-T5-small counts 77M parameters
# (T5 v1.1's untied head and gated MLP), not the 60M of the original t5-small.
PAPER_T5_TARGET = "google/flan-t5-xl"
PAPER_T5_DRAFT = "google/flan-t5-small"


DIVERGENCES = ("fkl", "rkl", "jsd", "tvd")


SOURCES = ("target", "draft", "data")


# how a draft's steps compute: "auto" is bfloat16 autocast on a GPU and, on a CPU, whichever of
# the two this CPU measures faster (`runners.train_precision`); the weights and AdamW's state
# stay float32 either way
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass
class KDConfig:
    """One draft's training. Each field has its default here (STYLE.md item 5)."""

    mode: str = "offline"          # "lm" (no-KD pretraining), "offline" (SeqKD), "online"
    tau_kd: float = 1.0            # KD temperature; 0 = target's argmax (one-hot p)
    divergence: str = "fkl"        # online only: fkl | rkl | jsd | tvd
    steps: int = 200               # optimiser steps
    batch_size: int = 16           # sequences per step
    lr: float = 1e-3               # AdamW peak learning rate, cosine decay after warm-up
    warmup: int = 20               # linear warm-up steps
    max_new_tokens: int = 64       # online: tokens sampled per prompt during training
    source: str = "target"         # online: where sequences come from: "target", "draft", "data"
    seq_len: int = 128             # lm: tokens per training chunk
    mix_weights: dict = field(default_factory=dict)  # online: {tau: weight} for sampling taus
    train_embedding: bool = True   # False: keep the input embedding as it starts (a draft cut from the target)
    seed: int = 0
    checkpoint_every: int = 25     # steps between resumable checkpoints (0: none by steps)
    checkpoint_seconds: float = 0  # also one when this long has passed since the last (0: none by time)
    precision: str = "auto"        # one of PRECISIONS; a finished draft's config records the one it used

    def __post_init__(self):
        if self.mode not in ("lm", "offline", "online"):
            raise ValueError(f"mode must be 'lm', 'offline' or 'online', got {self.mode!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {self.divergence!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        self.tau_kd = check_tau(self.tau_kd, "tau_kd")
        self.mix_weights = {float(check_tau(t, "mix tau")): float(w) for t, w in self.mix_weights.items()}


def _cut(**kw) -> KDConfig:
    """A KD config for a draft cut from the target: its input embedding (the target's) stays frozen."""
    return KDConfig(train_embedding=False, **kw)


MODES = ("offline", "online")  # the two KD paradigms every profile distils with


@dataclass
class Settings:
    """Stage settings of one profile. Defaults are the cpu profile (measured in benchmarks/)."""

    target: str = "smollm2"
    # prompts the drafts are distilled on (train split): the GSM8K-like math set, the paper's
    # second domain, where a CPU-sized draft reaches the paper's regime (README: why math);
    # the gpu and paper profiles distil on instructions (Alpaca), as the paper's main grid
    train_set: str = "math"
    n_train_prompts: int | None = None    # None: the whole train split (780 math problems)
    n_eval_prompts: int = 32              # held-out prompts (test split) for evaluation
    new_tokens: int = 64                  # tokens per teacher / evaluation sample
    # sequences sampled at a time: 64 took 0.86x the time of 32 for the same teacher samples on
    # a 2-core EPYC (Zen 4) in float32, 128 about as long as 64 (FINDINGS.md, 2026-12-08)
    teacher_batch: int = 64
    samples_per_prompt: int = 1           # teacher answers per train prompt at tau > 0 (more tokens, same prompts)
    # the draft (models.make_draft): cut from the target, its layers 0-2 at full width and an
    # output layer over the 8192 lowest (most frequent) token ids; docs/method.md, "The draft"; FINDINGS.md, the draft ablation
    draft_shape: dict = field(default_factory=lambda: {"target_layers": [0, 1, 2], "head_vocab": 8192})
    corpus_chars: int = 1_000_000         # general text for the no-KD draft
    nokd: KDConfig = field(default_factory=lambda: _cut(mode="lm", steps=100, batch_size=8, lr=3e-4,
                                                       seq_len=128))
    # 400 steps of 16 at a peak lr of 3e-3: about eight passes over the 780 problems, in both
    # paradigms (F3 compares them). Aligned KD on new problems of the training templates: 200
    # steps at 1e-3 reached expected alpha 0.643 at tau 0, 0.438 at tau 1 and 0.475 on unseen
    # templates; 400 steps at 3e-3 0.681, 0.503 and 0.509 (FINDINGS.md, 2026-12-07), and in the
    # cpu study 0.703, 0.483 and 0.505, for about 3 min more per draft on a 2-core CPU
    # (FINDINGS.md, 2026-12-08)
    offline: KDConfig = field(default_factory=lambda: _cut(mode="offline", steps=400, batch_size=16,
                                                          lr=3e-3))
    online: KDConfig = field(default_factory=lambda: _cut(mode="online", source="data", steps=400,
                                                         batch_size=16, lr=3e-3))
    online_pool: bool = False             # online KD on the stored samples of every KD tau (source "data")
    # "sample once, score many": every online draft (source "data") trains on the teacher
    # samples at this one tau, scored once, each re-tempering the stored logits to its tau_kd
    # (None: each on the samples at its own tau_kd)
    online_samples_tau: float | None = None
    online_top_k: int | None = 64         # source "data": store the target's top-k logits once (None: a forward per step)
    # the grid (notebooks 03-05)
    # KD temperatures: three in the cpu profile, so that the study keeps to its 45 minutes on a
    # 2-core CPU (each costs its teacher samples and two drafts, about 4.7 min there; FINDINGS.md)
    kd_taus: tuple = (0.0, 0.5, 1.0)
    decode_taus: tuple = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)     # decoding temperatures
    ood_set: str = "instructions"         # out-of-domain prompts (notebook 04)
    ood_taus: tuple = (1.0,)              # KD temperatures of the drafts measured out of domain
    mix: dict = field(default_factory=lambda: {0.5: 1.0, 1.0: 1.0, 1.5: 1.0})  # data-mixing recipe
    mix_baseline: float = 1.0             # the single-temperature KD it is compared with
    # speculative runs (empirical alpha and wall-time speedup gamma)
    k: int = 1                            # draft tokens per step (leviathan.best_k at alpha 0.1-0.3)
    spec_prompts: int = 3                 # held-out prompts decoded per cell (a block of drafts shares the plain runs)
    spec_repeats: int = 1                 # runs per prompt (each its own seed), speculative bracketed by plain
    spec_tokens: int = 24                 # tokens per run (no early stop at EOS); 32 took the cpu study to 45.6 min
    seed: int = 0
    # notebook 01 (the target alone, and one untrained or given draft)
    explore_prompts: int = 16             # prompts its temperature curves average over
    explore_taus: tuple | None = None     # the temperatures of those curves (None: decode_taus)
    paper_draft: str | None = None        # a Hub draft used as the no-KD draft (paper profiles)
    # seconds one notebook cell may run before `tcsd study` stops it and says where it was
    # (`tcsd study --cell-timeout` overrides it): well above the profile's longest cell
    cell_timeout: int = 2 * 60 * 60  # notebook 02 trains every draft in one cell: 20 min or more on a slow 2-core CPU

    def __post_init__(self):
        """Every temperature of a run is checked here, once, where its settings are built: a
        bad one is refused by name before any stage starts (`temperature.check_tau`)."""
        for name in ("kd_taus", "decode_taus", "ood_taus"):
            setattr(self, name, tuple(check_tau(t, name) for t in getattr(self, name)))
        if self.explore_taus is not None:
            self.explore_taus = tuple(check_tau(t, "explore_taus") for t in self.explore_taus)
        self.mix = {check_tau(t, "mix"): float(w) for t, w in self.mix.items()}
        self.mix_baseline = check_tau(self.mix_baseline, "mix_baseline")
        if self.online_samples_tau is not None:
            self.online_samples_tau = check_tau(self.online_samples_tau, "online_samples_tau")
            if self.online_pool:
                raise ValueError("online_pool and online_samples_tau each choose online KD's sequences: set one")
        # the run's seed is also its drafts' (their batches): a run with another seed varies
        # training as well as the prompt split, sampling and timing (`run_name`)
        for name in ("nokd", "offline", "online"):
            if getattr(self, name).seed != self.seed:
                setattr(self, name, replace(getattr(self, name), seed=self.seed))

    @property
    def from_hub(self) -> bool:
        """The paper profiles: their models come from the Hub (a run needs the network)."""
        return self.paper_draft is not None


GRID_01 = tuple(round(0.1 * i, 1) for i in range(11))  # the paper's 0.1 grid


_BY_TIME = {"checkpoint_every": 0, "checkpoint_seconds": 300}  # GPU profiles: a checkpoint every 5 min


def _paper(target: str, draft: str) -> Settings:
    """The paper's grid on one of its model pairs (a Hub target, its Hub draft as the no-KD draft).

    Sized as the gpu profile: teacher data of about 1M answer tokens per KD temperature, one
    answer to each of 8,000 distinct Alpaca instructions (of its 52k), sampled 128 at a time;
    KD of 500 steps of 64 sequences, four passes (2000 steps of 32 over 2000 prompts were 32).
    """
    return Settings(target=target, paper_draft=draft, train_set="alpaca", n_train_prompts=8000, n_eval_prompts=128,
                    new_tokens=128, ood_set="gsm8k", teacher_batch=128,
                    offline=KDConfig(mode="offline", steps=500, batch_size=64, lr=1e-4, **_BY_TIME),
                    # online KD on the stored samples, the target's top-64 logits stored once
                    # (a departure: the paper samples afresh; here that was most of the time)
                    online=KDConfig(mode="online", source="data", steps=500, batch_size=64, lr=1e-4,
                                    max_new_tokens=128, **_BY_TIME),
                    kd_taus=GRID_01, decode_taus=GRID_01 + (1.25, 1.5, 1.75, 2.0), ood_taus=(0.0, 0.5, 1.0),
                    k=4, spec_prompts=16, spec_tokens=128, explore_prompts=64, cell_timeout=8 * 60 * 60)


SETTINGS: dict[str, Settings] = {
    "smoke": Settings(n_train_prompts=32, n_eval_prompts=8, new_tokens=24,
                      corpus_chars=100_000,
                      nokd=_cut(mode="lm", steps=20, batch_size=4, lr=3e-4, seq_len=64),
                      offline=_cut(mode="offline", steps=12, batch_size=8, lr=1e-3),
                      online=_cut(mode="online", source="data", steps=12, batch_size=8, lr=1e-3),
                      kd_taus=(0.0, 1.0), decode_taus=(0.0, 1.0, 2.0), mix={0.0: 1.0, 1.0: 1.0},
                      spec_prompts=2, spec_tokens=8,
                      explore_prompts=4, explore_taus=(0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
                      cell_timeout=20 * 60),
    "cpu": Settings(),
    # Sized by the dry run for one H100/H200-class GPU in about an hour (`tcsd study --profile
    # gpu --dry-run --gpu H200`; a datasheet estimate until a GPU measures it):
    # - n_eval_prompts 64: the instructions' test split holds 83 (128 was refused by the check);
    # - teacher data of about 1M answer tokens per KD temperature, tau_kd 0 included: one
    #   answer to each of 9,334 distinct train prompts (the 334 hand-written instructions of
    #   the train split and the 9,000 composed ones, data/README.md), sampled 512 at a time;
    #   the held-out test stays the hand-written instructions' (24 answers to each of 334
    #   prompts gave 1M tokens above tau 0 but 43k at tau 0, where every answer is the same);
    # - KD: 500 steps of 64 sequences, about 3.4 passes; the no-KD draft 500 steps over the
    #   whole 3M-character corpus (it saw its 1M characters 100 times before);
    # - online KD on the stored samples with the target's top-64 logits stored once, not a
    #   batch generated at every step (about 85% of the time the first dry run estimated);
    # - timed runs of 8 prompts x 64 tokens (16 x 128 took 3.3 h of the estimate);
    # - checkpoints every 5 min, not every 25 steps (a GPU step takes milliseconds).
    "gpu": Settings(train_set="instructions+composed", ood_set="math", n_eval_prompts=64, new_tokens=128,
                    teacher_batch=512, corpus_chars=3_000_000,
                    nokd=_cut(mode="lm", steps=500, batch_size=32, lr=3e-4, seq_len=256, **_BY_TIME),
                    offline=_cut(mode="offline", steps=500, batch_size=64, lr=1e-3, **_BY_TIME),
                    online=_cut(mode="online", source="data", steps=500, batch_size=64, lr=1e-3,
                                max_new_tokens=128, **_BY_TIME),
                    kd_taus=GRID_01, decode_taus=GRID_01 + (1.25, 1.5, 1.75, 2.0), ood_taus=(0.0, 0.5, 1.0),
                    k=4, spec_prompts=8, spec_tokens=64, explore_prompts=64, cell_timeout=2 * 60 * 60),
    "paper": _paper(PAPER_TARGET, PAPER_DRAFT),
    "paper-t5": _paper(PAPER_T5_TARGET, PAPER_T5_DRAFT),  # Flan-T5 XL and small: why, at PAPER_T5_TARGET above
}


def settings(run: str, **overrides) -> Settings:
    """The settings of a run: ``<profile>`` or ``<profile>-seed<S>`` (`split_run_name`), with
    ``overrides`` (fields of `Settings`), checked as they are built."""
    base, seed = split_run_name(run)
    if seed is not None:
        overrides.setdefault("seed", seed)
    return replace(copy.deepcopy(SETTINGS[base]), **overrides)


def tau_tag(tau: float) -> str:
    """A temperature in a file name: 0.5 -> ``0p5``."""
    return f"{float(tau):g}".replace(".", "p")


def teacher_folder(prompt_set: str, split: str, tau: float) -> str:
    """The folder of a run's target samples of ``prompt_set`` (``split``) at ``tau``, under the
    run's outputs: ``teacher/math_train_tau0p5`` (`study.Study.sample_path`, `graph`'s stage key)."""
    return f"teacher/{prompt_set}_{split}_tau{tau_tag(tau)}"


def kd_name(mode: str, tau_kd: float, mix_weights: dict | None = None) -> str:
    """A KD draft's name (its folder under ``drafts/``): ``offline_tau0``, ``online_tau1_mix0p5x1-1x1-1p5x1``."""
    name = f"{mode}_tau{tau_tag(tau_kd)}"
    if mix_weights:
        name += "_mix" + "-".join(f"{tau_tag(t)}x{w:g}" for t, w in sorted(mix_weights.items()))
    return name


def draft_specs(s: Settings) -> dict:
    """Every draft a run of these settings uses, by name: ``(mode, tau_kd, mix_weights)``, with
    mode ``"none"`` for the no-KD draft. Plain data: the study trains from it, the plan counts it."""
    specs = {"nokd": ("none", math.nan, None)}
    for m in MODES:
        for t in sorted(set(s.kd_taus) | set(s.ood_taus) | {s.mix_baseline}):
            specs[kd_name(m, t)] = (m, t, None)
        specs[kd_name(m, s.mix_baseline, s.mix)] = (m, s.mix_baseline, dict(s.mix))
    return specs


def trained_as(s: Settings, name: str) -> str:
    """The draft whose training draft ``name`` is: itself, except online KD at tau_kd 0 on the
    stored tau-0 samples with forward KL and the offline settings, which trains as offline KD
    at tau_kd 0. There p is one-hot on the target's argmax, which is its greedy answer's next
    token, so forward KL is the cross-entropy on the very samples offline KD reads, batch by
    batch (`distill.divergence`): one draft is trained, and both names load it."""
    spec = draft_specs(s).get(name)
    if spec is None or spec[0] != "online" or spec[1] != 0 or spec[2] or s.online.source != "data" \
            or s.online.divergence != "fkl" or sample_taus(s, "online", 0.0) != [0.0]:
        return name
    o = s.offline
    same = replace(s.online, mode=o.mode, source=o.source, max_new_tokens=o.max_new_tokens, seq_len=o.seq_len) == o
    return kd_name("offline", 0.0) if same else name


def sample_taus(s: Settings, mode: str, tau_kd: float, mix_weights=None) -> list[float]:
    """The temperatures of the teacher samples (train split) a KD draft trains on: the mix's
    for mixed data; for online KD on stored samples every KD tau (``online_pool``) or the one
    pool's (``online_samples_tau``); none where the target generates while the draft trains;
    else ``tau_kd``. `study.Study.kd_draft` reads them, `graph` makes them first."""
    if mix_weights:
        return sorted(mix_weights)
    if mode == "online" and s.online.source != "data":
        return []
    if mode == "online" and s.online_pool:
        return sorted(s.kd_taus)
    if mode == "online" and s.online_samples_tau is not None:
        return [s.online_samples_tau]
    return [tau_kd]


def grid_names(s: Settings, modes=MODES) -> list[str]:
    """The no-KD draft and a KD draft per mode and KD temperature (notebook 03's grid)."""
    return ["nokd"] + [kd_name(m, t) for m in modes for t in s.kd_taus]


def ood_names(s: Settings, modes=MODES) -> list[str]:
    """The no-KD draft and the KD drafts measured out of range and out of domain (notebook 04)."""
    return ["nokd"] + [kd_name(m, t) for m in modes for t in s.ood_taus]


def mix_names(s: Settings, modes=MODES) -> list[str]:
    """Per mode: single-temperature KD at ``mix_baseline`` and the mixed-data draft (notebook 05)."""
    return [n for m in modes for n in (kd_name(m, s.mix_baseline), kd_name(m, s.mix_baseline, s.mix))]


def notebook_parameters(profile: str) -> dict:
    """What papermill passes to every notebook for ``profile`` (a notebook ignores keys it
    does not have). The smoke profile's values are also the notebooks' own defaults, in
    their ``parameters`` cells (tests/test_packaging.py checks that the two agree)."""
    if profile not in SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(SETTINGS)}")
    s = SETTINGS[profile]
    params = {"N_PROMPTS": s.explore_prompts, "MAX_NEW_TOKENS": s.new_tokens,
              "TAUS": list(s.explore_taus or s.decode_taus)}
    if s.paper_draft:
        params = {"TARGET": s.target, "DRAFT": s.paper_draft, **params}
    return params


PROFILES: dict[str, dict] = {name: notebook_parameters(name) for name in SETTINGS}


def run_name(profile: str, seed: int | None = None) -> str:
    """The folder name of a run under ``outputs/``: ``<profile>``, or ``<profile>-seed<S>``
    for a run with its own seed (prompt split, sampling, training and timing)."""
    split_run_name(profile)
    return profile if seed is None else f"{profile}-seed{int(seed)}"


def split_run_name(name: str) -> tuple[str, int | None]:
    """``"cpu-seed1"`` -> ``("cpu", 1)``; ``"cpu"`` -> ``("cpu", None)``. Raises `ValueError`
    naming the known profiles for anything else."""
    base, _, seed = name.partition("-seed")
    if base not in SETTINGS or (seed and not seed.isdigit()) or (_ and not seed):
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(SETTINGS)}, "
                         "optionally with -seed<N> (cpu-seed1)")
    return base, int(seed) if seed else None
