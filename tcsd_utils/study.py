"""The study (`Study`): one run's cached stages, prompts -> teacher samples -> drafts -> evaluation cells.

DESIGN.md's data flow, as one object per profile (`Study`). Each stage writes its artifact
under ``outputs/<profile>/`` beside the config that made it, atomically, and is skipped when
that artifact exists with the same config: a killed run resumes where it stopped, and
notebooks 02-05 share the drafts that notebook 02 trained. The settings of every profile
live in `tcsd_utils.profiles` (one place; notebooks only choose the profile), and so do the
names of the drafts a run uses (`profiles.draft_specs`).

Layout of ``outputs/<profile>/``:
    teacher/<set>_<split>_tau<t>/    target samples (`datasets` on disk) + config.json
    drafts/nokd/                     the no-KD draft (general text, no target outputs)
    drafts/<mode>_tau<t>[_mix...]/   KD drafts: model/, config.json, loss.json
    eval/cost.json                   c, the draft's cost per token over the target's
    eval/<set>/tau<t>/<draft>.json   one evaluated cell (alpha, gamma, their intervals, ...) + its config
    results.parquet, results.csv     every cell, one table (`Study.results`)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
from datasets import concatenate_datasets

from .batching import pad_id
from .data import encode_prompts, load_prompts
from .distill import is_finished, load_draft, train_draft
from .evaluate import compare_draft, cost_ratio, measure_gamma, target_distributions, warm_up
from .files import artifacts, atomic_path, cached, canonical, output_dir, progress, write_json
from .leviathan import predicted_gamma
from .models import load_model, load_tokenizer, make_draft, sampling_model, share_embedding
from .profiles import MODES, draft_specs, kd_name, sample_taus, settings, split_run_name, tau_tag, teacher_folder, trained_as
from .rules import pool_clock, with_gamma_intervals
from .teacher import general_corpus, load_scores, mix, target_scores, teacher_data
from .timing import machine_info, timing_thread_count, timing_threads


__all__ = ["Study"]


KEY_COLUMNS = ["draft", "mode", "tau_kd", "mix", "prompt_set", "in_domain", "tau", "k"]


def _ordered(table):
    """The cell columns in one order, whether a cell was just computed or read back from JSON:
    the keys of a cell first, then the measurements alphabetically."""
    return table[[c for c in KEY_COLUMNS if c in table] + sorted(c for c in table if c not in KEY_COLUMNS)]


def _load() -> float:
    """The 1-minute load average (nan where the OS has none): timing on a busy machine is
    flagged in report.md."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


class Study:
    """The stages of one profile. Models load on first use and stay loaded.

    Args:
        profile: a run: a profile of `profiles.SETTINGS`, or ``<profile>-seed<S>``.
        root: folder for ``outputs/`` (default: the project's).
        paper_draft: for the paper profile, the Hub id used as the no-KD draft.
        **overrides: fields of `Settings` to change for this run.
    """

    def __init__(self, profile: str = "cpu", root=None, paper_draft: str | None = None, **overrides):
        self.profile = split_run_name(profile)[0]
        self.settings = settings(profile, **overrides)
        self.out = output_dir(profile, root)
        self.paper_draft = paper_draft or self.settings.paper_draft
        self._target = self._tokenizer = self._sampler = None
        self._drafts: dict = {}

    # -- models ------------------------------------------------------------------------
    @property
    def target(self):
        if self._target is None:
            self._tokenizer = load_tokenizer(self.settings.target)
            self._target = load_model(self.settings.target)
        return self._target

    @property
    def sampler(self):
        """The target as it draws the teacher samples (train split): the target, or its copy in
        the dtype this CPU samples faster in (`models.sampling_model`). Held-out samples are
        drawn by the target itself, the model whose distributions and speed the study measures."""
        if self._sampler is None:
            self._sampler = sampling_model(self.target)
        return self._sampler

    @property
    def tokenizer(self):
        self.target  # noqa: B018 (loads both)
        return self._tokenizer

    # -- prompts and samples -----------------------------------------------------------
    def prompts(self, split: str, prompt_set: str | None = None, n: int | None = None):
        """Prompt records and their chat-formatted ids."""
        name = prompt_set or self.settings.train_set
        records = load_prompts(name, n, self.settings.seed, split=split)
        return records, encode_prompts(self.tokenizer, records)

    def samples(self, tau: float, split: str = "train", prompt_set: str | None = None):
        """Target samples at ``tau``: teacher data (train split) or evaluation samples (test).

        Teacher data for online KD on stored samples also keep the target's top logits,
        recorded while sampling (`teacher.teacher_data`'s ``top_k``; `kd_draft` reads them)."""
        s, name = self.settings, prompt_set or self.settings.train_set
        n = s.n_train_prompts if split == "train" else s.n_eval_prompts
        records, ids = self.prompts(split, name, n)
        copies = s.samples_per_prompt if split == "train" else 1
        top_k = s.online_top_k if split == "train" and s.online.source == "data" else None
        model = self.sampler if split == "train" else self.target
        return teacher_data(model, self.tokenizer, ids, [r["id"] for r in records], tau,
                            self.sample_path(tau, split, name), s.new_tokens, s.teacher_batch, s.seed, copies, top_k)

    def sample_path(self, tau: float, split: str = "train", prompt_set: str | None = None) -> Path:
        """The folder of `samples`' data."""
        return self.out / teacher_folder(prompt_set or self.settings.train_set, split, tau)

    # -- drafts ------------------------------------------------------------------------
    def draft_dir(self, name: str) -> Path:
        """The folder of draft ``name``: that of the draft it trains as (`profiles.trained_as`)."""
        return self.out / "drafts" / trained_as(self.settings, name)

    def nokd_draft(self):
        """The general draft every KD draft starts from (the part Llama-68M plays)."""
        if self.paper_draft:
            return load_model(self.paper_draft, self.target.device)
        s = self.settings
        if is_finished(self.draft_dir("nokd"), s.nokd):  # skip building a draft only to load one
            return load_draft(self.draft_dir("nokd"), self.target.device)
        start = make_draft(self.target, seed=s.seed, **s.draft_shape)
        return train_draft(self.draft_dir("nokd"), s.nokd, start, self.tokenizer, texts=general_corpus(s.corpus_chars),
                           extra_config={"data": "python stdlib docstrings", "shape": s.draft_shape})

    def kd_draft(self, mode: str, tau_kd: float, mix_weights: dict | None = None):
        """A draft distilled at ``tau_kd`` (offline or online), optionally on mixed data.

        With ``mix_weights`` ({tau: weight}) the training sequences are composed from teacher
        samples at several temperatures (the data-centric recipe, `teacher.mix`); the online
        loss still compares ``p`` and ``q`` at ``tau_kd``.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if trained_as(self.settings, kd_name(mode, tau_kd, mix_weights)) == kd_name("offline", tau_kd):
            mode = "offline"  # online KD at tau_kd 0 here is offline KD at tau_kd 0: trained once
        base = self.settings.offline if mode == "offline" else self.settings.online
        cfg = replace(base, tau_kd=tau_kd, mix_weights=dict(mix_weights or {}) if mode == "online" else {})
        out = self.draft_dir(kd_name(mode, tau_kd, mix_weights))
        if is_finished(out, cfg):
            return load_draft(out, self.target.device)
        start = self.nokd_draft()
        extra = {"start": "nokd", "mix": mix_weights or {}}
        if mode == "online" and cfg.source != "data":
            _, ids = self.prompts("train", n=self.settings.n_train_prompts)
            return train_draft(out, cfg, start, self.tokenizer, target=self.target, prompts=ids, extra_config=extra)
        taus = sample_taus(self.settings, mode, tau_kd, mix_weights)
        sets = {t: self.samples(t) for t in taus}
        if mix_weights:
            data = mix(sets, mix_weights, n=sum(len(d) for d in sets.values()) // len(sets), seed=self.settings.seed)
        else:  # one set, or the pool of several (p still at tau_kd)
            data = concatenate_datasets(list(sets.values())) if len(sets) > 1 else sets[taus[0]]
        if taus != [tau_kd] and not mix_weights:
            extra["sequences"] = f"teacher samples at tau {taus}"
        if mode == "online" and self.settings.online_top_k:  # the target's top logits, not a forward per step
            k = self.settings.online_top_k
            # recorded while sampling; stored again only for a mix or a pool of several sets
            scored = (f"pool_tau{'-'.join(map(tau_tag, taus))}" if self.settings.online_samples_tau is not None
                      else out.name)
            recorded = [load_scores(self.sample_path(t)) for t in taus]  # while sampling (`samples`), by `sampler`
            data = target_scores(self.sampler, data, self.out / "teacher" / f"scores_{scored}_top{k}", k,
                                 pad=self.pad_id(), recorded=recorded)
            extra["target_scores"] = f"top {k} logits per position, stored"
        return train_draft(out, cfg, start, self.tokenizer, target=self.target, data=data, extra_config=extra)

    def loss_history(self, name: str) -> list[dict]:
        return json.loads((self.draft_dir(name) / "loss.json").read_text())

    def draft(self, name: str):
        """A draft of this profile by name (trained on first use), in the target's dtype."""
        if name not in self._drafts:
            specs = draft_specs(self.settings)
            if name not in specs:
                raise ValueError(f"unknown draft {name!r}; this profile has {sorted(specs)}")
            made = trained_as(self.settings, name)
            if made != name:  # one draft under two names: loaded once
                self._drafts[name] = self.draft(made)
                return self._drafts[name]
            mode, tau, mix_weights = specs[name]
            model = self.nokd_draft() if mode == "none" else self.kd_draft(mode, tau, mix_weights)
            self._drafts[name] = share_embedding(model.to(self.target.dtype).eval(), self.target)
        return self._drafts[name]

    def _draft_config(self, name: str) -> dict:
        if name == "nokd" and self.paper_draft:
            return {"hub": self.paper_draft}
        return json.loads((self.draft_dir(name) / "config.json").read_text())

    # -- evaluation (notebooks 03-05) ----------------------------------------------------
    def cost(self) -> dict:
        """c: the draft's time per token over the target's (all drafts share one shape),
        measured once and reused while the target, the draft's shape and its config stay the
        same (a new draft shape or target measures it again)."""
        path = self.out / "eval" / "cost.json"
        draft = self.draft("nokd")  # trained first if needed: its config is part of the key
        config = canonical({"target": self.settings.target, "draft_shape": self.settings.draft_shape,
                            "nokd": self._draft_config("nokd"), "threads": timing_thread_count()})
        found = cached(path, config, key="config")
        if found is not None:
            return found
        with timing_threads():  # as every gamma is timed
            c = cost_ratio(self.target, draft)
        result = {**c, "draft_shape": self.settings.draft_shape, "config": config}
        write_json(result, path)
        return result

    def pad_id(self) -> int:
        """The padding id of every batch (`batching.pad_id`)."""
        return pad_id(self.tokenizer)

    def evaluate(self, names: list[str], taus=None, prompt_set: str | None = None, speed: bool = True):
        """Evaluate drafts at decoding temperatures; one cached cell per draft x tau x set.

        A cell holds the expected alpha (with the mean entropies of p and q) on held-out
        target samples at tau and, with ``speed``, the empirical alpha and wall-time speedup
        of real speculative runs, each bracketed by plain runs of the same prompt, seed and
        length; the missing cells of a tau are timed as one block that shares those plain
        runs (`evaluate.measure_gamma`): ``gamma_raw``, the plain time ratio, and
        ``gamma``, the same with the luck of acceptance taken out (`rules.steady_gamma`);
        c and Leviathan's predicted speedup. Every estimate has a 95% interval in columns
        ``<name>_lo`` and ``<name>_hi`` (`tcsd_utils.stats`). Cells are written atomically under
        ``eval/<set>/tau<t>/<draft>.json`` with their config and skipped when present.

        Returns:
            `pandas.DataFrame`, one row per cell (the results table's rows).
        """
        s = self.settings
        prompt_set = prompt_set or s.train_set
        taus = list(s.decode_taus if taus is None else taus)
        cost = self.cost() if speed else None
        if speed:  # what the timings were measured on (report.md states it)
            with timing_threads():
                write_json({**machine_info(), "dtype": str(self.target.dtype).removeprefix("torch.")},
                           self.out / "eval" / "machine.json")
        rows = []
        bar = progress(total=len(taus) * len(names), desc=f"evaluating on {prompt_set}", leave=False)
        for tau in taus:
            folder = self.out / "eval" / prompt_set / f"tau{tau_tag(tau)}"
            cells, todo = {}, {}
            for name in names:
                config = {"draft": name, "draft_config": None, "tau": tau, "set": prompt_set, "speed": speed,
                          "k": s.k, "spec_prompts": s.spec_prompts, "spec_repeats": s.spec_repeats,
                          "spec_tokens": s.spec_tokens, "timing": "bracketed",
                          "threads": timing_thread_count() if speed else None,
                          "n_eval_prompts": s.n_eval_prompts, "new_tokens": s.new_tokens, "seed": s.seed}
                draft = self.draft(name)  # trains it if needed, so its config exists
                config["draft_config"] = self._draft_config(name)
                config = canonical(config)
                path = folder / f"{name}.json"
                cell = cached(path, config, key="config")
                if cell is not None:
                    cells[name] = cell
                    bar.update(1)
                else:
                    todo[name] = (config, draft)
            if todo:  # the missing cells of this tau: one timing block (`evaluate.measure_gamma`)
                for name, row in self._cells(todo, tau, prompt_set, cost).items():
                    cells[name] = {"config": todo[name][0], "row": row}
                    write_json(cells[name], folder / f"{name}.json")
                    bar.update(1)
            rows.extend(cells[name]["row"] for name in names)
        bar.close()
        return pool_clock(_ordered(pd.DataFrame(rows)), self._cell_rows())

    def has_split(self, split: str, prompt_set: str | None = None) -> bool:
        """Whether the prompt set has any record in ``split`` (the math set's "unseen" split:
        problems of templates never used in training; the instructions have none)."""
        return bool(load_prompts(prompt_set or self.settings.train_set, None, None, split=split))

    def held_out(self, names: list[str], taus, splits=("test", "unseen")):
        """Expected alpha, with its 95% interval, of drafts on held-out prompts of the set they
        were distilled on, split by split: ``"test"`` holds new prompts (for math, new problems
        of the training templates); ``"unseen"`` holds problems of templates never used in
        training, so the gap between the two is what the draft memorised of its templates. A
        split the set lacks is skipped. One cell per draft x split x tau, cached under
        ``heldout/<set>_<split>/tau<t>/<draft>.json`` beside its config (not part of the
        results table, whose rows are the claims' cells).

        Returns:
            `pandas.DataFrame` with columns draft, mode, tau_kd, split, tau, alpha_expected
            and its ``_lo`` and ``_hi``.
        """
        s, rows = self.settings, []
        for split in [x for x in splits if self.has_split(x)]:
            for tau in taus:
                folder = self.out / "heldout" / f"{s.train_set}_{split}" / f"tau{tau_tag(tau)}"
                target_p = None
                for name in names:
                    draft = self.draft(name)
                    config = canonical({"draft": name, "draft_config": self._draft_config(name), "split": split,
                                        "tau": tau, "n_eval_prompts": s.n_eval_prompts, "new_tokens": s.new_tokens,
                                        "seed": s.seed})
                    path = folder / f"{name}.json"
                    cell = cached(path, config, key="config")
                    if cell is None:
                        if target_p is None:
                            target_p = target_distributions(self.target, self.samples(tau, split), tau, pad=self.pad_id())
                        mode, tau_kd, _ = draft_specs(self.settings)[name]
                        a = compare_draft(target_p, draft, tau, pad=self.pad_id())
                        cell = {"config": config, "row": {"draft": name, "mode": mode, "tau_kd": tau_kd, "split": split,
                                                          "tau": tau, "alpha_expected": a["alpha"],
                                                          "alpha_expected_lo": a["alpha_lo"],
                                                          "alpha_expected_hi": a["alpha_hi"]}}
                        write_json(cell, path)
                    rows.append(cell["row"])
        return pd.DataFrame(rows)

    def _cells(self, todo: dict, tau, prompt_set, cost) -> dict:
        """The rows of the cells ``todo`` (``{name: (config, draft)}``) at ``tau``: expected
        alpha for each, then, with ``cost``, their speculative runs timed as one block that
        shares its plain runs, on one thread fewer than the cores (`timing.timing_threads`).
        A run killed during the block times the block again (about 100 s in the cpu profile)."""
        s = self.settings
        target_p = target_distributions(self.target, self.samples(tau, "test", prompt_set), tau, pad=self.pad_id())
        spec_ids = self.prompts("test", prompt_set, s.n_eval_prompts)[1][: s.spec_prompts]
        rows = {}
        for name, (_, draft) in todo.items():
            mode, tau_kd, mix_weights = draft_specs(self.settings)[name]
            row = {"draft": name, "mode": mode, "tau_kd": tau_kd,
                   "mix": ",".join(f"{t:g}" for t in sorted(mix_weights)) if mix_weights else "",
                   "prompt_set": prompt_set, "in_domain": prompt_set == s.train_set, "tau": tau, "k": s.k}
            row.update(compare_draft(target_p, draft, tau, pad=self.pad_id()))
            for end in ("", "_lo", "_hi"):
                row[f"alpha_expected{end}"] = row.pop(f"alpha{end}")
            rows[name] = row
        if cost is None:
            return rows
        drafts = {name: draft for name, (_, draft) in todo.items()}
        with timing_threads():  # a core left to the rest of the machine
            for draft in drafts.values():
                warm_up(self.target, draft, s.k)
            load_before = _load()
            timed = measure_gamma(self.target, drafts, spec_ids, tau, s.k, s.spec_tokens, s.spec_repeats, s.seed)
            load_after = _load()
        block = f"{prompt_set} tau={float(tau):g}: {', '.join(drafts)}"
        for name, row in rows.items():
            row.update(timed[name], load_before=load_before, load_after=load_after, timing_block=block)
            row.update(with_gamma_intervals(pd.DataFrame([row])).iloc[0][["gamma", "gamma_lo", "gamma_hi"]])
            row["c"] = cost["c"]
            row["gamma_predicted"] = predicted_gamma(row["alpha_expected"], cost["c"], s.k)
        return rows

    def _cell_rows(self) -> list:
        """Every evaluated cell's row in this run's results folder."""
        cells = artifacts(self.out / "eval", "*/tau*/*.json")
        return [json.loads(p.read_text())["row"] for p in cells if p.name != "plain.json"]  # (older runs' timings)

    def results(self):
        """Every evaluated cell of this profile as one table, also written to
        ``results.parquet`` and ``results.csv`` (atomically). Figures are drawn from it."""
        rows = self._cell_rows()
        table = pool_clock(_ordered(pd.DataFrame(rows)), rows)
        if len(table):
            table = table.sort_values(["prompt_set", "draft", "tau"]).reset_index(drop=True)
        with atomic_path(self.out / "results.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        with atomic_path(self.out / "results.csv") as tmp:
            table.to_csv(tmp, index=False)
        return table
