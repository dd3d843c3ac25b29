"""The study's cached stages: prompts -> teacher samples -> drafts -> evaluation samples.

DESIGN.md's data flow, as one object per profile (`Study`). Each stage writes its artifact
under ``outputs/<profile>/`` beside the config that made it, atomically, and is skipped when
that artifact exists with the same config: a killed run resumes where it stopped, and
notebooks 02-05 share the drafts that notebook 02 trained. The stage settings of every
profile live here, in `SETTINGS` (one place; notebooks only choose the profile).

Layout of ``outputs/<profile>/``:
    teacher/<set>_<split>_tau<t>/    target samples (`datasets` on disk) + config.json
    drafts/nokd/                     the no-KD draft (general text, no target outputs)
    drafts/<mode>_tau<t>[_mix...]/   KD drafts: model/, config.json, loss.json
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

from .distill import KDConfig, general_corpus, is_finished, load_draft, mix, teacher_data, train_draft
from .study import output_dir

__all__ = ["Settings", "SETTINGS", "Study"]


@dataclass
class Settings:
    """Stage settings of one profile. Defaults are the cpu profile (measured in benchmarks/)."""

    target: str = "smollm2"
    train_set: str = "instructions"       # prompts the drafts are distilled on (train split)
    n_train_prompts: int | None = None    # None: the whole train split
    n_eval_prompts: int = 48              # held-out prompts (test split) for evaluation
    new_tokens: int = 64                  # tokens per teacher / evaluation sample
    teacher_batch: int = 32
    draft_shape: dict = field(default_factory=lambda: {"n_layers": 2, "hidden_size": 256, "n_heads": 4,
                                                       "intermediate_size": 768})
    corpus_chars: int = 1_000_000         # general text for the no-KD draft
    nokd: KDConfig = field(default_factory=lambda: KDConfig(mode="lm", steps=300, batch_size=8,
                                                            lr=2e-3, seq_len=128))
    offline: KDConfig = field(default_factory=lambda: KDConfig(mode="offline", steps=250, batch_size=16,
                                                               lr=3e-3))
    online: KDConfig = field(default_factory=lambda: KDConfig(mode="online", steps=60, batch_size=16,
                                                              lr=3e-3, max_new_tokens=48))
    seed: int = 0


SETTINGS: dict[str, Settings] = {
    "smoke": Settings(n_train_prompts=32, n_eval_prompts=8, new_tokens=24,
                      corpus_chars=100_000,
                      nokd=KDConfig(mode="lm", steps=20, batch_size=4, lr=2e-3, seq_len=64),
                      offline=KDConfig(mode="offline", steps=12, batch_size=8, lr=1e-3),
                      online=KDConfig(mode="online", steps=6, batch_size=4, lr=1e-3, max_new_tokens=16)),
    "cpu": Settings(),
    "gpu": Settings(n_eval_prompts=128, new_tokens=128,
                    nokd=KDConfig(mode="lm", steps=3000, batch_size=32, lr=2e-3, seq_len=256),
                    offline=KDConfig(mode="offline", steps=2000, batch_size=32, lr=1e-3),
                    online=KDConfig(mode="online", steps=1000, batch_size=32, lr=1e-3, max_new_tokens=128)),
    "paper": Settings(target="meta-llama/Llama-2-13b-chat-hf", train_set="alpaca", n_train_prompts=2000,
                      n_eval_prompts=128, new_tokens=128,
                      offline=KDConfig(mode="offline", steps=2000, batch_size=32, lr=1e-4),
                      online=KDConfig(mode="online", steps=1000, batch_size=32, lr=1e-4, max_new_tokens=128)),
}


def _tau_tag(tau: float) -> str:
    return f"{float(tau):g}".replace(".", "p")


class Study:
    """The stages of one profile. Models load on first use and stay loaded.

    Args:
        profile: a key of `SETTINGS`.
        root: folder for ``outputs/`` (default: the project's).
        paper_draft: for the paper profile, the Hub id used as the no-KD draft.
        **overrides: fields of `Settings` to change for this run.
    """

    def __init__(self, profile: str = "cpu", root=None, paper_draft: str | None = None, **overrides):
        if profile not in SETTINGS:
            raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(SETTINGS)}")
        self.profile = profile
        self.settings = replace(copy.deepcopy(SETTINGS[profile]), **overrides)
        self.out = output_dir(profile, root)
        self.paper_draft = paper_draft or ("JackFram/llama-68m" if profile == "paper" else None)
        self._target = self._tokenizer = None

    # -- models ------------------------------------------------------------------------
    @property
    def target(self):
        if self._target is None:
            from .models import load_model, load_tokenizer

            self._tokenizer = load_tokenizer(self.settings.target)
            self._target = load_model(self.settings.target)
        return self._target

    @property
    def tokenizer(self):
        self.target  # noqa: B018 (loads both)
        return self._tokenizer

    # -- prompts and samples -----------------------------------------------------------
    def prompts(self, split: str, prompt_set: str | None = None, n: int | None = None):
        """Prompt records and their chat-formatted ids."""
        from .data import encode_prompts, load_prompts

        name = prompt_set or self.settings.train_set
        records = load_prompts(name, n, self.settings.seed, split=split)
        return records, encode_prompts(self.tokenizer, records)

    def samples(self, tau: float, split: str = "train", prompt_set: str | None = None):
        """Target samples at ``tau``: teacher data (train split) or evaluation samples (test)."""
        name = prompt_set or self.settings.train_set
        n = self.settings.n_train_prompts if split == "train" else self.settings.n_eval_prompts
        records, ids = self.prompts(split, name, n)
        path = self.out / "teacher" / f"{name}_{split}_tau{_tau_tag(tau)}"
        return teacher_data(self.target, self.tokenizer, ids, [r["id"] for r in records], tau, path,
                            self.settings.new_tokens, self.settings.teacher_batch, self.settings.seed)

    # -- drafts ------------------------------------------------------------------------
    def draft_dir(self, name: str) -> Path:
        return self.out / "drafts" / name

    def nokd_draft(self):
        """The general draft every KD draft starts from (the part Llama-68M plays)."""
        if self.paper_draft:
            from .models import load_model

            return load_model(self.paper_draft, self.target.device)
        from .models import make_draft

        s = self.settings
        if is_finished(self.draft_dir("nokd"), s.nokd):  # skip building a draft only to load one
            return load_draft(self.draft_dir("nokd"), self.target.device)
        start = make_draft(self.target, seed=s.seed, **s.draft_shape)
        return train_draft(self.draft_dir("nokd"), s.nokd, start, self.tokenizer, texts=general_corpus(s.corpus_chars),
                           extra_config={"data": "python stdlib docstrings", "shape": s.draft_shape})

    def kd_name(self, mode: str, tau_kd: float, mix_weights: dict | None = None) -> str:
        name = f"{mode}_tau{_tau_tag(tau_kd)}"
        if mix_weights:
            name += "_mix" + "-".join(f"{_tau_tag(t)}x{w:g}" for t, w in sorted(mix_weights.items()))
        return name

    def kd_draft(self, mode: str, tau_kd: float, mix_weights: dict | None = None):
        """A draft distilled at ``tau_kd`` (offline or online), optionally on mixed data."""
        base = self.settings.offline if mode == "offline" else self.settings.online
        cfg = replace(base, tau_kd=tau_kd, mix_weights=dict(mix_weights or {}) if mode == "online" else {})
        out = self.draft_dir(self.kd_name(mode, tau_kd, mix_weights))
        if is_finished(out, cfg):
            return load_draft(out, self.target.device)
        start = self.nokd_draft()
        if mode == "offline":
            if mix_weights:
                sets = {t: self.samples(t) for t in mix_weights}
                data = mix(sets, mix_weights, n=sum(len(d) for d in sets.values()) // len(sets),
                           seed=self.settings.seed)
            else:
                data = self.samples(tau_kd)
            return train_draft(out, cfg, start, self.tokenizer, data=data,
                               extra_config={"start": "nokd", "mix": mix_weights or {}})
        _, ids = self.prompts("train", n=self.settings.n_train_prompts)
        return train_draft(out, cfg, start, self.tokenizer, target=self.target, prompts=ids,
                           extra_config={"start": "nokd", "mix": mix_weights or {}})

    def loss_history(self, name: str) -> list[dict]:
        import json

        return json.loads((self.draft_dir(name) / "loss.json").read_text())
