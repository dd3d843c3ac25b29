"""The profiles: every setting of a run, in one place.

A profile is the one config a run composes (STYLE.md item 5). `Settings` holds the stages'
settings (`tcsd_utils.stages`); `notebook_parameters` derives from them what papermill passes
to the notebooks (whose ``parameters`` cells hold the smoke profile's values, which nbval
re-executes; a test keeps the two equal). Profiles (DESIGN.md):

    smoke  CI and the committed notebook outputs: minutes on a 2-core CPU;
    cpu    the default full study on a laptop-class CPU;
    gpu    the paper's 0.1 grid on the embedded pair, on a GPU;
    paper     the paper's own models from the Hub, on a GPU, with the network;
    paper-t5  the same grid on the paper's second family, T5 (encoder-decoder), from the Hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .distill import KDConfig
from .models import PAPER_DRAFT, PAPER_T5_DRAFT, PAPER_T5_TARGET, PAPER_TARGET

__all__ = ["Settings", "SETTINGS", "MODES", "GRID_01", "notebook_parameters", "PROFILES", "run_name", "split_run_name"]


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
    teacher_batch: int = 32
    samples_per_prompt: int = 1           # teacher answers per train prompt at tau > 0 (more tokens, same prompts)
    # the draft (models.make_draft): cut from the target, its layers 0-2 at full width and an
    # output layer over the 8192 lowest (most frequent) token ids; docs/method.md, "The draft"; FINDINGS.md, the draft ablation
    draft_shape: dict = field(default_factory=lambda: {"target_layers": [0, 1, 2], "head_vocab": 8192})
    corpus_chars: int = 1_000_000         # general text for the no-KD draft
    nokd: KDConfig = field(default_factory=lambda: KDConfig(mode="lm", steps=100, batch_size=8, lr=3e-4,
                                                            seq_len=128, train_embedding=False))
    # 200 steps of 16: about four passes over the 780 problems. Aligned KD on new problems of
    # the training templates: 100 steps reached expected alpha 0.556 at tau 0 and 0.394 at
    # tau 1, 200 steps 0.639 and 0.438 (FINDINGS.md, 2026-11-30)
    offline: KDConfig = field(default_factory=lambda: KDConfig(mode="offline", steps=200, batch_size=16,
                                                               lr=1e-3, train_embedding=False))
    online: KDConfig = field(default_factory=lambda: KDConfig(mode="online", source="data", steps=200,
                                                              batch_size=16, lr=1e-3, train_embedding=False))
    online_pool: bool = False             # online KD on the stored samples of every KD tau (source "data")
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
    k: int = 1                            # draft tokens per step (evaluate.best_k at alpha 0.1-0.3)
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

    @property
    def from_hub(self) -> bool:
        """The paper profiles: their models come from the Hub (a run needs the network)."""
        return self.paper_draft is not None


GRID_01 = tuple(round(0.1 * i, 1) for i in range(11))  # the paper's 0.1 grid


_BY_TIME = {"checkpoint_every": 0, "checkpoint_seconds": 300}  # GPU profiles: a checkpoint every 5 min


def _paper(target: str, draft: str) -> Settings:
    """The paper's grid on one of its model pairs (a Hub target, its Hub draft as the no-KD draft)."""
    return Settings(target=target, paper_draft=draft, train_set="alpaca", n_train_prompts=2000, n_eval_prompts=128,
                    new_tokens=128, ood_set="gsm8k",
                    offline=KDConfig(mode="offline", steps=2000, batch_size=32, lr=1e-4, **_BY_TIME),
                    # online KD on the stored samples, the target's top-64 logits stored once
                    # (a departure: the paper samples afresh; here that was most of the time)
                    online=KDConfig(mode="online", source="data", steps=2000, batch_size=32, lr=1e-4,
                                    max_new_tokens=128, **_BY_TIME),
                    kd_taus=GRID_01, decode_taus=GRID_01 + (1.25, 1.5, 1.75, 2.0), ood_taus=(0.0, 0.5, 1.0),
                    k=4, spec_prompts=16, spec_tokens=128, explore_prompts=64, cell_timeout=8 * 60 * 60)


SETTINGS: dict[str, Settings] = {
    "smoke": Settings(n_train_prompts=32, n_eval_prompts=8, new_tokens=24,
                      corpus_chars=100_000,
                      nokd=KDConfig(mode="lm", steps=20, batch_size=4, lr=3e-4, seq_len=64, train_embedding=False),
                      offline=KDConfig(mode="offline", steps=12, batch_size=8, lr=1e-3, train_embedding=False),
                      online=KDConfig(mode="online", source="data", steps=12, batch_size=8, lr=1e-3,
                                      train_embedding=False),
                      kd_taus=(0.0, 1.0), decode_taus=(0.0, 1.0, 2.0), mix={0.0: 1.0, 1.0: 1.0},
                      spec_prompts=2, spec_tokens=8,
                      explore_prompts=4, explore_taus=(0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
                      cell_timeout=20 * 60),
    "cpu": Settings(),
    # Sized by the dry run for one H100/H200-class GPU in about an hour (`tcsd study --profile
    # gpu --dry-run --gpu H200`; a datasheet estimate until a GPU measures it):
    # - n_eval_prompts 64: the instructions' test split holds 83 (128 was refused by the check);
    # - teacher data of about 1M answer tokens per KD temperature above 0: 24 answers to each
    #   of the 334 train prompts, sampled 512 at a time; at tau_kd 0 one greedy answer each
    #   (more distinct prompts would need more of the generator's seeds in data/);
    # - KD: 500 steps of 64 sequences, about two passes over 1M tokens; the no-KD draft 500
    #   steps over the whole 3M-character corpus (it saw its 1M characters 100 times before);
    # - online KD on the stored samples with the target's top-64 logits stored once, not a
    #   batch generated at every step (about 85% of the time the first dry run estimated);
    # - timed runs of 8 prompts x 64 tokens (16 x 128 took 3.3 h of the estimate);
    # - checkpoints every 5 min, not every 25 steps (a GPU step takes milliseconds).
    "gpu": Settings(train_set="instructions", ood_set="math", n_eval_prompts=64, new_tokens=128,
                    teacher_batch=512, samples_per_prompt=24, corpus_chars=3_000_000,
                    nokd=KDConfig(mode="lm", steps=500, batch_size=32, lr=3e-4, seq_len=256, train_embedding=False,
                                  **_BY_TIME),
                    offline=KDConfig(mode="offline", steps=500, batch_size=64, lr=1e-3, train_embedding=False,
                                     **_BY_TIME),
                    online=KDConfig(mode="online", source="data", steps=500, batch_size=64, lr=1e-3,
                                    max_new_tokens=128, train_embedding=False, **_BY_TIME),
                    kd_taus=GRID_01, decode_taus=GRID_01 + (1.25, 1.5, 1.75, 2.0), ood_taus=(0.0, 0.5, 1.0),
                    k=4, spec_prompts=8, spec_tokens=64, explore_prompts=64, cell_timeout=2 * 60 * 60),
    "paper": _paper(PAPER_TARGET, PAPER_DRAFT),
    "paper-t5": _paper(PAPER_T5_TARGET, PAPER_T5_DRAFT),  # Flan-T5 XL and small: why, at models.PAPER_T5_TARGET
}


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
