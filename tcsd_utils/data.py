"""Prompt sets: the instructions and math word problems that the study decodes and distils.

The paper (Ouyang et al. 2024, "Temperature-Centric Investigation of Speculative Decoding
with Knowledge Distillation", arXiv 2410.10141) draws its prompts from two public sets:
Alpaca (general instructions) and GSM8K (grade-school math word problems). Both play two
parts: prompts for knowledge distillation (the draft learns from the target's answers) and
prompts on which speculative decoding is measured at each temperature.

This project ships offline stand-ins built by ``scripts/make_prompts.py``:

- ``"instructions"`` (``data/instructions.jsonl``) plays Alpaca's part;
- ``"math"`` (``data/math.jsonl``) plays GSM8K's part; each record has an integer answer;
- ``"composed"`` (``data/instructions_composed.jsonl``): 9,000 more instructions, composed
  from slot vocabularies, all in ``"train"``. ``"instructions+composed"`` (sets joined by
  ``+``) gives the gpu profile about 1M answer tokens of distinct prompts per KD
  temperature, while its held-out test stays the hand-written instructions'.

The real sets load by the names ``"alpaca"`` and ``"gsm8k"`` through ``datasets`` when the
network and the Hugging Face Hub can be reached. ``load_prompts(..., split=...)`` gives
fixed splits, so distillation can train on ``"train"`` and be evaluated on prompts it never
saw:

- a record that carries a ``"split"`` field belongs to that split only. The math set marks
  the problems of six of its templates this way (``"split": "unseen"``, the generator's
  ``UNSEEN_TEMPLATES``): they test the draft on templates it was never trained on;
- every other record goes to ``"train"`` or ``"test"`` by a hash of its id (``TEST_PERCENT``
  % to test), so ``"test"`` holds new problems of the training templates.

``"all"`` is every record. The Hub sets and the instructions carry no ``"split"`` field,
so for them ``"unseen"`` is empty and train/test is the id hash alone. ``chat_ids`` turns a
prompt into token ids through the tokenizer's chat template.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import random
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["PROMPT_SETS", "SPLITS", "TEST_PERCENT", "data_dir", "from_hub", "load_prompts", "chat_ids",
           "encode_prompts"]

REPO_ROOT = Path(__file__).resolve().parent.parent

PROMPT_SETS: dict[str, str] = {
    "instructions": "offline instructions, data/instructions.jsonl (plays Alpaca's part)",
    "math": "offline math word problems with integer answers, data/math.jsonl (plays GSM8K's part)",
    "composed": "offline instructions composed from slot vocabularies, data/instructions_composed.jsonl "
                "(training only: more of Alpaca's part, for the gpu profile)",
    "alpaca": "tatsu-lab/alpaca, train split, from the Hub (needs the network)",
    "gsm8k": "openai/gsm8k 'main', test split, from the Hub (needs the network)",
}
SPLITS = ("all", "train", "test", "unseen")
TEST_PERCENT = 20  # share of the records without a "split" field, by id hash, in "test"
_FILES = {"instructions": "instructions.jsonl", "math": "math.jsonl", "composed": "instructions_composed.jsonl"}
_HUB = {"alpaca": ("tatsu-lab/alpaca", None, "train", "instructions"),
        "gsm8k": ("openai/gsm8k", "main", "test", "math")}


def data_dir() -> Path:
    """The folder that holds the offline prompt files.

    Returns:
        ``$TCSD_DATA_DIR`` when that variable is set, else ``<repo root>/data``.
    """
    env = os.environ.get("TCSD_DATA_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path} "
                                "(run `python scripts/make_prompts.py` to create it)")
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err})") from err
    if not records:
        raise ValueError(f"prompt file is empty: {path}")
    return records


def _gsm8k_answer(text: str) -> int:
    """The integer after '####' in a GSM8K answer, e.g. '... #### 1,234' -> 1234."""
    return int(re.sub(r"[,\s$]", "", text.split("####")[-1]))


@lru_cache(maxsize=None)
def _load_hub(name: str) -> tuple[dict, ...]:
    hub_id, config, split, offline = _HUB[name]
    try:
        import datasets  # deferred: only for a Hub prompt set (it reads HF_HUB_OFFLINE when first imported)

        ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as err:  # offline, Hub down, datasets missing: all mean the same here
        raise RuntimeError(
            f"could not load the Hub data set {hub_id!r} (prompt set {name!r}): it needs the "
            f"network and the Hugging Face Hub ({type(err).__name__}: {err}). Offline, use the "
            f"project's own sets: {offline!r} plays its part ('instructions' for Alpaca, "
            f"'math' for GSM8K).") from err
    out = []
    for i, row in enumerate(ds):
        if name == "alpaca":
            text = row["instruction"].strip()
            if (row.get("input") or "").strip():
                text = f"{text}\n\n{row['input'].strip()}"
            out.append({"id": f"alpaca-{i:05d}", "prompt": text})
        else:
            solution = row["answer"].split("####")[0].strip()
            out.append({"id": f"gsm8k-{i:04d}", "prompt": row["question"].strip(),
                        "answer": _gsm8k_answer(row["answer"]), "solution": solution})
    return tuple(out)


def from_hub(name: str) -> bool:
    """Whether prompt set ``name`` (sets joined by ``+`` included) loads a part from the Hub."""
    return any(part in _HUB for part in name.split("+"))


def _in_test(record_id: str) -> bool:
    """Whether a record without a "split" field is held out ("test"): fixed by its id alone."""
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100 < TEST_PERCENT


def _split_of(record: dict) -> str:
    """The one split (besides "all") that a record belongs to: its own "split" field when it
    has one, else "test" or "train" by the hash of its id."""
    if "split" in record:
        return record["split"]
    return "test" if _in_test(record["id"]) else "train"


def load_prompts(name: str, n: int | None = None, seed: int | None = 0,
                 split: str = "all") -> list[dict]:
    """Load a prompt set, optionally one split of it, shuffled and cut to ``n`` records.

    Args:
        name: one of ``PROMPT_SETS``: ``"instructions"``, ``"math"``, ``"composed"`` (offline
            files), or ``"alpaca"``, ``"gsm8k"`` (Hub data sets, need the network); or several
            joined by ``+`` (``"instructions+composed"``): their records together, each split
            the union of theirs.
        n: how many records to return; ``None`` means all of the split.
        seed: seed of a deterministic shuffle (``random.Random(seed)``) applied before taking
            the first ``n``; ``None`` keeps file order.
        split: ``"all"``, ``"train"``, ``"test"`` or ``"unseen"``, independent of ``seed``
            and ``n``. A record with a ``"split"`` field belongs to that split only (the
            math problems of held-out templates say ``"unseen"``), so ``"train"`` and
            ``"test"`` never hold them; the others go to ``"test"`` by a hash of their id
            (``TEST_PERCENT`` %) and to ``"train"`` otherwise. ``"unseen"`` is empty for a
            set without such records (the instructions, the Hub sets).

    Returns:
        A list of new dicts, each with at least ``id`` and ``prompt``; math sets also carry
        an integer ``answer`` and a ``solution`` (the offline one also its ``template``, and
        ``split`` where held out); instructions carry a ``task``.

    Raises:
        ValueError: unknown name or split, ``n`` < 1, ``n`` larger than the split, or a
            malformed/empty data file (also a ``"split"`` field naming no split).
        FileNotFoundError: the data file of an offline set is missing.
        RuntimeError: a Hub set could not be loaded (offline); the cause is chained.
    """
    parts = name.split("+")
    for part in parts:
        if part not in PROMPT_SETS:
            raise ValueError(f"unknown prompt set {part!r}; known sets: {', '.join(PROMPT_SETS)} "
                             "(several may be joined by '+')")
    if len(set(parts)) != len(parts):
        raise ValueError(f"prompt set {name!r} names a set twice")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    records = [dict(r) for part in parts for r in _records(part) if split == "all" or _split_of(r) == split]
    if seed is not None:
        random.Random(seed).shuffle(records)
    if n is not None:
        if n > len(records):
            raise ValueError(f"asked for n={n} prompts but {name!r} (split {split!r}) has only "
                             f"{len(records)}")
        records = records[:int(n)]
    return records


def _records(name: str) -> tuple[dict, ...] | list[dict]:
    """Every record of one prompt set, checked (offline files) or from the Hub."""
    if name not in _FILES:
        return _load_hub(name)
    path = data_dir() / _FILES[name]
    records = _read_jsonl(path)
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict) or "id" not in rec or "prompt" not in rec:
            raise ValueError(f"{path}: record {i} lacks an 'id' or a 'prompt'")
        if rec.get("split", "train") not in SPLITS[1:]:
            raise ValueError(f"{path}: record {i} has split {rec['split']!r}; a record's "
                             f"split is one of {', '.join(SPLITS[1:])}")
    return records


def _as_id_list(out) -> list[int]:
    """Plain token ids from whatever ``apply_chat_template``/``encode`` returned."""
    if hasattr(out, "keys") and "input_ids" in out:  # BatchEncoding or dict
        out = out["input_ids"]
    if hasattr(out, "tolist"):  # torch / numpy
        out = out.tolist()
    out = list(out)
    if out and isinstance(out[0], (list, tuple)):  # a batch of one
        if len(out) != 1:
            raise ValueError(f"expected the ids of one prompt, got a batch of {len(out)}")
        out = list(out[0])
    return [int(t) for t in out]


def chat_ids(tokenizer, prompt: str, system: str | None = None) -> list[int]:
    """Token ids of one user prompt, formatted by the tokenizer's chat template.

    Args:
        tokenizer: a transformers tokenizer.
        prompt: the user's message.
        system: an optional system message. If the template rejects a system role, it is
            put in front of the user's message instead.

    Returns:
        A plain list of token ids, ending with the assistant's generation prompt. Without a
        chat template, ``tokenizer.encode`` of the (system and) prompt text.

    Raises:
        ValueError: ``prompt`` is empty or whitespace only ("empty prompt").
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("empty prompt")
    folded = prompt if not system else f"{system}\n\n{prompt}"
    if not getattr(tokenizer, "chat_template", None):
        return _as_id_list(tokenizer.encode(folded))
    user = [{"role": "user", "content": prompt}]
    if system:
        try:
            out = tokenizer.apply_chat_template([{"role": "system", "content": system}] + user,
                                                add_generation_prompt=True, tokenize=True)
            return _as_id_list(out)
        except Exception:  # e.g. jinja2 TemplateError "System role not supported"
            user = [{"role": "user", "content": folded}]
    out = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True)
    return _as_id_list(out)


def encode_prompts(tokenizer, records, system: str | None = None) -> list[list[int]]:
    """``chat_ids`` for each record (a dict with ``prompt``) or plain string.

    Args:
        tokenizer: a transformers tokenizer.
        records: records from ``load_prompts``, or prompt strings.
        system: an optional system message for every prompt.

    Returns:
        One list of token ids per record, in order.

    Raises:
        ValueError: a prompt is empty.
    """
    return [chat_ids(tokenizer, r if isinstance(r, str) else r["prompt"], system)
            for r in records]
