"""What the drafts learn from: the target's samples and scores, and general text.

Knowledge distillation (`tcsd_utils.distill`) trains a draft on what the target writes at a
temperature. This module makes and stores those data, each once per configuration (a
folder with the `datasets.Dataset` and the ``config.json`` it was made with, reused when
the config matches):

- `teacher_data`: the target's answers to chat prompts, sampled at ``tau`` (the samples
  offline KD trains on, and the sequences of online KD with ``source="data"``);
- `target_scores`: the target's top-64 logits at every answer position of such samples,
  one forward for every KD temperature and step, kept as tensors on disk (`StoredScores`;
  `stored_logits` turns them back into logits for the loss). `teacher_data` can record them
  while it samples (``top_k``), the logits it sampled from, and then no forward is needed;
- `mix`: teacher samples at several temperatures composed in chosen ratios, the
  data-centric recipe of the paper (Ouyang et al. 2024, arXiv 2410.10141, Sec. 5.3);
- `general_corpus`: general English text the target never wrote, for the no-KD draft:
  the part JackFram/llama-68m, pretrained on web text, plays in the paper.

Sampling goes through `tcsd_utils.temperature` (`generation_config`), the one definition
of a temperature in the project, and reseeds torch only inside `temperature.local_rng`.
"""

from __future__ import annotations

import ast
import math
import random
import sysconfig
from pathlib import Path

import torch

from .batching import cut_at_eos, head_logits, left_pad, new_tokens, pack, pad_id
from .files import atomic_path, cached, write_json
from .files import progress as progress_bar
from .temperature import check_tau, generation_config, local_rng

__all__ = ["general_corpus", "teacher_data", "target_scores", "StoredScores", "load_scores", "mix", "stored_logits"]

MIN_DOC_CHARS = 200  # general_corpus keeps docstrings of at least this length: prose, not one-line summaries


def general_corpus(max_chars: int = 3_000_000) -> list[str]:
    """General English text found on any machine with Python: the standard library's docstrings.

    Deterministic for a given Python version; no network. Used to pretrain the no-KD draft.
    """
    texts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if any(part in {"test", "tests", "idle_test", "site-packages"} for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= MIN_DOC_CHARS:
                    texts.append(doc)
                    total += len(doc)
        if total >= max_chars:
            break
    return texts


def _cached(path: Path, config: dict):
    """The dataset at ``path`` if it was made with ``config`` (`files.cached`), else None."""
    from datasets import load_from_disk  # deferred: datasets is absent where only KD runs (scripts/device_check.py)

    found = cached(path / "config.json", config, artifact=path / "data")
    return load_from_disk(str(path / "data")) if found is not None else None


class _RecordTopK:
    """A logits processor that records the top ``k`` of the logits it is given at each
    generation step and passes them on unchanged. `generate` runs the processors it is given
    before its temperature warper, so these are the target's raw logits, those a sample at
    any temperature is drawn from (tests/test_distill.py checks them against a forward)."""

    def __init__(self, k: int):
        self.k, self.ids, self.logits = k, [], []

    def __call__(self, input_ids, scores):
        top = scores.float().topk(self.k, dim=-1)  # kept on the device until `rows`: no sync per step
        self.ids.append(top.indices.to(torch.int32))
        self.logits.append(top.values)
        return scores

    def rows(self, n_answer_tokens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The recorded ids and logits of each row's first ``n`` answer tokens, the rows'
        tokens one after another (the layout of `StoredScores`)."""
        ids, logits = torch.stack(self.ids, 1).cpu(), torch.stack(self.logits, 1).cpu()  # (batch, steps, k)
        return (torch.cat([ids[r, :n] for r, n in enumerate(n_answer_tokens)]),
                torch.cat([logits[r, :n] for r, n in enumerate(n_answer_tokens)]))


def _processors(record):
    """``generate``'s ``logits_processor`` argument: ``record`` alone, or None."""
    if record is None:
        return None
    from transformers import LogitsProcessorList  # deferred, as in `temperature.generation_config`

    return LogitsProcessorList([record])


@torch.inference_mode()
def teacher_data(target, tokenizer, prompt_ids: list[list[int]], prompt_names: list[str], tau: float,
                 path, max_new_tokens: int = 64, batch_size: int = 32, seed: int = 0, samples_per_prompt: int = 1,
                 top_k: int | None = None):
    """Sample the target's answers at ``tau`` and store them as a `datasets.Dataset` on disk.

    Args:
        target: the teacher.
        tokenizer: its tokenizer (for padding).
        prompt_ids: chat-formatted prompts, token ids.
        prompt_names: an id per prompt (stored with each row).
        tau: sampling temperature (0 = greedy).
        path: folder for the dataset and its ``config.json``; reused when both match.
        max_new_tokens, batch_size, seed: sampling settings.
        samples_per_prompt: answers sampled per prompt (each its own row), for more teacher
            tokens from the same prompts at tau > 0; at tau 0 every answer would be the same,
            so one is kept.
        top_k: also store the target's top ``top_k`` logits at every answer position, those
            the samples were drawn from (``scores.safetensors``, read by `load_scores`), so
            that online KD on these samples needs no scoring forward (`target_scores`).

    Returns:
        `datasets.Dataset` with columns ``prompt_id``, ``prompt_ids``, ``answer_ids``, ``tau``;
        answers end at the first EOS (kept) or after ``max_new_tokens``.
    """
    tau, path = check_tau(tau), Path(path)
    if not prompt_ids:
        raise ValueError("empty prompt set: no prompts to sample teacher data from")
    if not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be a whole number, 1 or more, got {samples_per_prompt!r}")
    copies = samples_per_prompt if tau > 0 else 1
    config = {"kind": "teacher_data", "tau": tau, "seed": seed, "max_new_tokens": max_new_tokens,
              "prompt_ids": list(prompt_names), "teacher": str(target.config._name_or_path),
              # the batches draw the random numbers, the dtype rounds the logits: both decide the samples
              "batch_size": batch_size, "dtype": str(target.dtype).replace("torch.", "")}
    if copies > 1:  # recorded only when used, so that earlier sets stay valid
        config["samples_per_prompt"] = copies
        prompt_ids, prompt_names = list(prompt_ids) * copies, list(prompt_names) * copies
    if top_k:  # recorded only when asked, as above
        config["top_k"] = top_k
    cached = _cached(path, config)
    if cached is not None:
        return cached
    eos = target.config.eos_token_id
    pad = pad_id(tokenizer)
    gen = generation_config(tau, max_new_tokens, pad, eos)
    rows = {"prompt_id": [], "prompt_ids": [], "answer_ids": [], "tau": []}
    recorded = []  # per batch: the top ids and logits of its answers' tokens, as the rows
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))  # less padding
    with local_rng(target.device):  # seeded here; the caller's random state is left as it was
        torch.manual_seed(seed)
        for start in progress_bar(range(0, len(order), batch_size), desc=f"teacher samples tau={tau}", leave=False):
            idx = order[start:start + batch_size]
            ids, mask = left_pad([prompt_ids[i] for i in idx], pad)
            record = _RecordTopK(top_k) if top_k else None
            out = target.generate(input_ids=ids.to(target.device), attention_mask=mask.to(target.device),
                                  generation_config=gen, logits_processor=_processors(record))
            out = new_tokens(target, out, ids.shape[1]).tolist()
            answers = [cut_at_eos(out[r], eos) for r in range(len(idx))]
            if record is not None:
                recorded.append(record.rows([len(a) for a in answers]))
            for r, i in enumerate(idx):
                rows["prompt_id"].append(prompt_names[i])
                rows["prompt_ids"].append(list(prompt_ids[i]))
                rows["answer_ids"].append(answers[r])
                rows["tau"].append(tau)
    from datasets import Dataset  # deferred, as in `_cached`

    data = Dataset.from_dict(rows)
    with atomic_path(path) as tmp:
        data.save_to_disk(str(tmp / "data"))
        if top_k:  # the layout `load_scores` reads
            from safetensors.torch import save_file

            save_file({"top_ids": torch.cat([i for i, _ in recorded]), "top_logits": torch.cat([v for _, v in recorded])},
                      str(tmp / "scores.safetensors"))
        write_json(config, tmp / "config.json")
    return _cached(path, config)


class StoredScores:
    """Teacher samples with the target's top logits at their answer positions (`target_scores`).

    Row ``i`` is row ``i`` of the samples with two more entries, ``top_ids`` (int32) and
    ``top_logits`` (float32), each an ``(answer tokens, top_k)`` tensor sliced from one array
    per column: about 0.5 GB for 1M answer tokens at top 64, where Python lists took about
    8 GB at 2M tokens.
    """

    def __init__(self, data, top_ids: torch.Tensor, top_logits: torch.Tensor):
        self.starts = _starts(data["answer_ids"])
        if top_ids.shape != top_logits.shape or top_ids.shape[0] != self.starts[-1]:
            raise ValueError(f"stored scores of shape {tuple(top_ids.shape)} and {tuple(top_logits.shape)} "
                             f"do not fit {self.starts[-1]} answer tokens")
        self.data, self.top_ids, self.top_logits = data, top_ids, top_logits

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        a, b = self.starts[i], self.starts[i + 1]
        return {**self.data[i], "top_ids": self.top_ids[a:b], "top_logits": self.top_logits[a:b]}

    @property
    def top_k(self) -> int:
        return self.top_ids.shape[1]


def load_scores(path, data=None) -> StoredScores:
    """The scores `target_scores` stored at ``path`` (its samples ``data`` when already read)."""
    from datasets import load_from_disk  # deferred, as in `_cached`
    from safetensors.torch import load_file

    path = Path(path)
    top = load_file(str(path / "scores.safetensors"))
    return StoredScores(data if data is not None else load_from_disk(str(path / "data")), top["top_ids"], top["top_logits"])


def _stored_scores(path: Path, config: dict):
    """The scores at ``path`` if they were made with ``config``, else None."""
    data = _cached(path, config)
    if data is None or not (path / "scores.safetensors").is_file():
        return None
    return load_scores(path, data)


@torch.inference_mode()
def target_scores(target, data, path, top_k: int = 64, batch_size: int = 16, pad: int = 0,
                  recorded=()) -> StoredScores:
    """The target's top-``top_k`` logits at every answer position of ``data``, stored on disk.

    Online KD on stored sequences needs the target's distribution at each position. It does
    not depend on ``tau_kd`` (only its tempering does), so one forward over the sequences
    serves every KD temperature and every step, instead of one target forward per step.
    Keeping the top ``top_k`` logits is the usual sparse-KD approximation: ``p`` at tau is
    renormalised over those tokens (exact at tau 0; at tau 1 the top 64 hold most of the
    target's mass, docs/method.md).

    Stored in ``path``: the samples (``data/``), the ids and logits as two tensors of
    ``(answer tokens, top_k)`` (``scores.safetensors``, the rows' tokens one after another)
    and, last, ``config.json``.

    Args:
        recorded: scores `teacher_data` recorded while sampling (`load_scores` of its
            folders, each of ``top_k`` or more): a row of ``data`` with the same prompt and
            answer as one of theirs takes its scores from there, and only the other rows
            are scored by a forward. When ``data`` is one of them, whole and in order, that
            one is returned and nothing is stored.

    Returns:
        `StoredScores`: the rows of ``data``, each with its ``top_ids`` and ``top_logits``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    keys = _keys(data)
    recorded = [(r, _keys(r.data)) for r in recorded]
    for r, their_keys in recorded:
        if r.top_k < top_k:
            raise ValueError(f"scores recorded at top {r.top_k} cannot stand for top {top_k}")
        if r.top_k == top_k and their_keys == keys:
            return r
    # each row named by its prompt, answer length and first 8 answer tokens: scores of other samples do not match
    config = {"kind": "target_scores", "format": "tensors", "top_k": top_k,
              "teacher": str(target.config._name_or_path),
              "rows": [[p, len(a), list(a[:8])] for p, a in keys]}
    found = _stored_scores(path, config)
    if found is not None:
        return found
    known = {key: (r, i) for r, their_keys in recorded for i, key in enumerate(their_keys)}
    starts = _starts([a for _, a in keys])
    top_ids = torch.empty(starts[-1], top_k, dtype=torch.int32)
    top_logits = torch.empty(starts[-1], top_k, dtype=torch.float32)
    missing = []  # rows no recorded scores hold: scored by a forward, in batches
    for j, key in enumerate(keys):
        if key in known:
            r, i = known[key]
            top_ids[starts[j]:starts[j + 1]] = r.top_ids[r.starts[i]:r.starts[i + 1], :top_k]
            top_logits[starts[j]:starts[j + 1]] = r.top_logits[r.starts[i]:r.starts[i + 1], :top_k]
        else:
            missing.append(j)
    rows = [(data[j]["prompt_ids"], data[j]["answer_ids"]) for j in missing]
    for start in progress_bar(range(0, len(rows), batch_size), desc="target scores", leave=False):
        ids, mask, r, c, _ = pack(rows[start:start + batch_size], pad, target.device)
        top = head_logits(target, ids, mask, r, c).float().topk(top_k, dim=-1)  # (answer tokens, top_k)
        at = 0
        for j in missing[start:start + batch_size]:  # pack's order: each row's answer tokens in turn
            n = starts[j + 1] - starts[j]
            top_ids[starts[j]:starts[j + 1]] = top.indices[at:at + n].cpu()
            top_logits[starts[j]:starts[j + 1]] = top.values[at:at + n].cpu()
            at += n
    with atomic_path(path) as tmp:
        data.save_to_disk(str(tmp / "data"))
        save_file({"top_ids": top_ids, "top_logits": top_logits}, str(tmp / "scores.safetensors"))
        write_json(config, tmp / "config.json")
    return _stored_scores(path, config)


def _starts(answers) -> list[int]:
    """Where each answer's tokens start in the rows' tokens one after another, and the total
    last (`StoredScores`' layout)."""
    starts = [0]
    for a in answers:
        starts.append(starts[-1] + len(a))
    return starts


def _keys(data) -> list[tuple]:
    """Each row's (prompt id, answer ids): what names a row's scores."""
    return list(zip(data["prompt_id"], map(tuple, data["answer_ids"])))


def stored_logits(rows, vocab: int, device, slot: torch.Tensor | None = None) -> torch.Tensor:
    """The stored top logits of ``rows`` (rows of `StoredScores`, in `batching.pack` order)
    as logits for the loss.

    Without ``slot``: a dense ``(n, vocab)`` tensor, ``-inf`` off each position's top tokens,
    the same shape as a target forward's logits, so the loss treats both alike.

    With ``slot`` (per token id, its column in a sub-vocabulary draft's compact logits, or a
    negative number where the draft's head does not cover it; `subvocab`): a compact ``(n,
    kept + top_k)`` tensor. Its first ``kept`` columns are the draft's columns; the last
    ``top_k`` hold each position's top logits of ids the draft does not cover, so that a
    softmax at any temperature has the same normaliser as over the whole vocabulary, and the
    probabilities of the first ``kept`` columns equal the dense tensor's at the kept ids. The
    dense tensor for the cpu draft (49152 ids) is 6 times the compact one (8192 + 64).
    """
    ids = torch.cat([r["top_ids"] for r in rows]).to(device=device, dtype=torch.long)  # (n, top_k)
    val = torch.cat([r["top_logits"] for r in rows]).to(device=device, dtype=torch.float32)
    if slot is None:
        return torch.full((ids.shape[0], vocab), float("-inf"), device=device).scatter_(1, ids, val)
    kept = int((slot >= 0).sum())
    column = slot.to(device)[ids]  # (n, top_k)
    rest = kept + torch.arange(ids.shape[1], device=device).expand_as(ids)  # one spare column per top slot
    column = torch.where(column >= 0, column, rest)
    return torch.full((ids.shape[0], kept + ids.shape[1]), float("-inf"), device=device).scatter_(1, column, val)


def mix(datasets_by_tau: dict, weights: dict, n: int, seed: int = 0):
    """Compose ``n`` rows from teacher data at several temperatures in the ratio ``weights``.

    The data-centric recipe of the paper (Sec. 5.3). Counts are proportional to the
    weights (largest remainder); rows are drawn without replacement while a set lasts.

    Returns:
        `datasets.Dataset` of ``n`` rows, shuffled.
    """
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"mix weights must be non-negative with a positive sum, got {weights}")
    missing = set(weights) - set(datasets_by_tau)
    if missing:
        raise ValueError(f"no teacher data for temperature(s) {sorted(missing)}")
    total = sum(weights.values())
    exact = {t: n * w / total for t, w in weights.items()}
    counts = {t: int(math.floor(v)) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: exact[t] - counts[t], reverse=True)[: n - sum(counts.values())]:
        counts[t] += 1
    rng, parts = random.Random(seed), []
    for t, c in counts.items():
        if c:
            size = len(datasets_by_tau[t])
            idx = rng.sample(range(size), c) if c <= size else [rng.randrange(size) for _ in range(c)]
            parts.append(datasets_by_tau[t].select(idx))
    from datasets import concatenate_datasets  # deferred, as in `_cached`

    return concatenate_datasets(parts).shuffle(seed=seed)


