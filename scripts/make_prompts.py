#!/usr/bin/env python3
"""Write the project's offline prompt sets: data/instructions.jsonl, data/math.jsonl and
data/instructions_composed.jsonl.

The paper (Ouyang et al. 2024, arXiv 2410.10141) takes its prompts from Alpaca (general
instructions) and GSM8K (grade-school math word problems). Neither can be fetched offline,
so this script builds stand-ins that play the same two roles:

- instructions.jsonl: varied, natural user requests (explain, list, rewrite, classify,
  advise, write, summarise, compare, define, brainstorm, restyle, translate, plan, how-to,
  question), made from hand-written templates and hand-written subject lists in which
  every subject fits every template of its set;
- math.jsonl: two- to four-step word problems from 44 templates (the ``m_*`` functions
  of ``scripts/math_templates.py``), with the integer answer computed there and a short
  worked solution whose every step ``a op b = c`` is checked. Each record names its
  template; the records of the six templates in ``UNSEEN_TEMPLATES`` carry
  ``"split": "unseen"`` and are never trained on (``tcsd_utils.data.load_prompts``);
- instructions_composed.jsonl: a larger, training-only set of Alpaca-like requests
  (``N_COMPOSED``, 9,000 by default), drawn from every combination of the templates and
  slot vocabularies of the templates file's ``"composed"`` part. Each record carries
  ``"split": "train"``, so it is never held out: the held-out test prompts stay those of
  instructions.jsonl, and no composed prompt equals any prompt the hand-written sets can
  make. It exists because a GPU profile's teacher data (about 1M greedy answer tokens,
  about 128 a prompt) needs thousands of distinct prompts, more than the hand-written
  sets can give.

The templates and vocabularies are data, not code: they live in
``data/prompt_templates.json`` (its ``"about"`` entry describes the layout), and this
script only combines them. The math templates stay code because they draw the numbers
and compute the answers; their word lists (names, shops, vehicles, ...) are in the
JSON file's ``"math"`` part.

The output is deterministic (fixed seed, ``random.Random``, stdlib only): running
``python scripts/make_prompts.py`` reproduces the committed files byte for byte, and
``data/README.md`` records how each set was made. Use ``--out DIR`` to write somewhere
else, ``--templates FILE`` to read other templates and ``--n-composed N`` to draw another
number of composed instructions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import string
from pathlib import Path

from math_templates import MATH_TEMPLATES, UNSEEN_TEMPLATES  # scripts/: the 44 templates

SEED = 2410
MATH_PER_TEMPLATE = 25
N_COMPOSED = 9000
DATA = Path(__file__).resolve().parent.parent / "data"
TEMPLATES = DATA / "prompt_templates.json"


def load_templates(path: Path = TEMPLATES) -> dict:
    """The templates file, with the math number words' keys back to ints (JSON has only
    string keys)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("times", "count_words"):
        data["math"][key] = {int(k): v for k, v in data["math"][key].items()}
    return data


# --------------------------------------------------------------------------------------
# Instructions: each set of the templates file draws, for each of its subjects, in the
# way its "draw" names. The order of the sets and of these draws fixes the output.
# --------------------------------------------------------------------------------------

def _template(rng, s, slots):
    return [rng.choice(s["templates"]).format(**slots)]


def _template_then_count(rng, s, slots):
    return [rng.choice(s["templates"]).format(n=rng.choice(s["counts"]), **slots)]


def _count_then_template(rng, s, slots):
    n = rng.choice(s["counts"])
    return [rng.choice(s["templates"]).format(n=n, **slots)]


def _two_templates(rng, s, slots):
    return [t.format(**slots) for t in rng.sample(s["templates"], 2)]


def _two_languages(rng, s, slots):
    return [rng.choice(s["templates"]).format(lang=lang, **slots)
            for lang in rng.sample(s["languages"], 2)]


DRAWS = {
    "template": _template,                      # one template per subject
    "template, then count": _template_then_count,
    "count, then template": _count_then_template,
    "two templates": _two_templates,            # two different templates per subject
    "two languages, a template each": _two_languages,
    "as written": lambda rng, s, slots: [slots["x"]],  # the subject is the prompt; no draw
}


def build_instructions(rng: random.Random, sets: list[dict], seed: int = SEED) -> list[dict]:
    """All instruction records, shuffled and numbered: ``inst-0001`` ... for the default
    seed (the committed file), ``inst-<seed>-0001`` ... for any other, so that sets made with
    several seeds can be joined without two records sharing an id."""
    out: list[tuple[str, str]] = []
    for s in sets:
        draw, fields = DRAWS[s["draw"]], s.get("fields", ["x"])
        for subject in s["subjects"]:
            values = subject if isinstance(subject, list) else [subject]
            assert len(values) == len(fields), (s["task"], subject)
            out.extend((s["task"], p) for p in draw(rng, s, dict(zip(fields, values))))

    prompts = [p for _, p in out]
    assert len(set(prompts)) == len(prompts), "duplicate instruction prompt"
    rng.shuffle(out)
    prefix = "inst-" if seed == SEED else f"inst-{seed}-"
    return [{"id": f"{prefix}{i:04d}", "task": task, "prompt": prompt}
            for i, (task, prompt) in enumerate(out, 1)]


def all_instruction_prompts(sets: list[dict]) -> set[str]:
    """Every prompt the hand-written sets could make under any seed: each template with each
    subject and, where the set has them, each count and each language."""
    out: set[str] = set()
    for s in sets:
        fields = s.get("fields", ["x"])
        extras = {key: s[src] for key, src in (("n", "counts"), ("lang", "languages")) if src in s}
        for subject in s["subjects"]:
            values = subject if isinstance(subject, list) else [subject]
            slots = dict(zip(fields, values))
            if s["draw"] == "as written":
                out.add(slots["x"])
                continue
            for template in s["templates"]:
                for combo in itertools.product(*extras.values()):
                    out.add(template.format(**slots, **dict(zip(extras, combo))))
    return out


# --------------------------------------------------------------------------------------
# Composed instructions: each set of the templates file's "composed" part makes every
# (template, one value per slot) prompt; a set with "pairs" fills {a} and {b} with each
# unordered pair of two items of one group of that slot. The sets, templates and values
# are enumerated in file order, so the pools, and with them the draws, are deterministic.
# --------------------------------------------------------------------------------------

def composed_prompts(s: dict) -> list[str]:
    """Every prompt of one composed set, in a fixed order: template, then slot values."""
    names, choices = [], []
    for name, values in s["slots"].items():
        names.append(name)
        if name == s.get("pairs"):
            choices.append([p for group in values for p in itertools.combinations(group, 2)])
        else:
            choices.append(values)
    wanted = ({"a", "b"} | (set(names) - {s["pairs"]})) if "pairs" in s else set(names)
    out = []
    for template in s["templates"]:
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        assert used == wanted, (s["task"], template, sorted(used ^ wanted))
        for combo in itertools.product(*choices):
            fill = {}
            for name, value in zip(names, combo):
                if name == s.get("pairs"):
                    fill["a"], fill["b"] = value
                else:
                    fill[name] = value
            out.append(template.format(**fill))
    return out


def build_composed(rng: random.Random, sets: list[dict], n: int = N_COMPOSED, seed: int = SEED,
                   avoid: set[str] | frozenset[str] = frozenset()) -> list[dict]:
    """``n`` distinct composed prompts, drawn without replacement, shuffled and numbered
    ``comp-<seed>-00001`` ... (every id carries the seed, so sets made with several seeds
    join without two records sharing an id). Every record has ``"split": "train"``.

    The draw is even across sets, not in proportion to their sizes (one large travel-plan
    set alone holds about half of all combinations): the sets are visited from the smallest
    up, and each gets the ceiling of an equal share of what is left, capped at its size, so
    a set smaller than its share gives all of its prompts and the rest is spread over the
    larger ones. Each set then draws its quota with ``rng.sample`` from its prompts in
    ``composed_prompts`` order, the sets in file order; one shuffle mixes them.

    ``avoid`` holds prompts that must not appear (the hand-written instructions'): the
    held-out test prompts come from those, so none may be trained on.
    """
    pools = [composed_prompts(s) for s in sets]
    every = [p for pool in pools for p in pool]
    assert len(set(every)) == len(every), "duplicate composed prompt"
    clash = set(every) & set(avoid)
    assert not clash, f"composed prompt equals a hand-written one: {sorted(clash)[:3]}"
    assert all("{" not in p and "}" not in p for p in every), "unfilled slot"
    if not 0 < n <= len(every):
        raise ValueError(f"asked for {n} composed prompts; the sets hold {len(every)}")
    quota, left = [0] * len(sets), n
    order = sorted(range(len(sets)), key=lambda j: (len(pools[j]), j))
    for rank, j in enumerate(order):
        quota[j] = min(len(pools[j]), -(-left // (len(sets) - rank)))
        left -= quota[j]
    assert left == 0 and sum(quota) == n
    out = [(s["task"], p) for s, pool, k in zip(sets, pools, quota) for p in rng.sample(pool, k)]
    rng.shuffle(out)
    return [{"id": f"comp-{seed}-{i:05d}", "task": task, "prompt": prompt, "split": "train"}
            for i, (task, prompt) in enumerate(out, 1)]


# --------------------------------------------------------------------------------------
# Math: each template draws numbers, computes the answer step by step with `eq`, and
# writes a worked solution. Every "a op b = c" in a solution is evaluated and checked.
# ``vocab`` is the templates file's "math" part; ``vocab[key]`` holds m_<key>'s words.
# --------------------------------------------------------------------------------------


def build_math(seed: int, vocab: dict, per_template: int = MATH_PER_TEMPLATE) -> list[dict]:
    """``per_template`` distinct problems from each template, shuffled and numbered.

    The draws come from ``random.Random(seed)``, and every id carries the seed
    (``math-<seed>-0001``), so that a set made with another seed can join this one without
    two records sharing an id. Each record names its ``template``; those of
    ``UNSEEN_TEMPLATES`` also carry ``"split": "unseen"``.
    """
    rng = random.Random(seed)
    rows: list[tuple[str, str, int, str]] = []
    seen: set[str] = set()
    for template in MATH_TEMPLATES:
        got = 0
        for _ in range(200 * per_template):
            q, ans, sol = template(rng, vocab)
            if q in seen:
                continue
            assert isinstance(ans, int) and ans >= 0, (template.__name__, q, ans)
            seen.add(q)
            rows.append((template.__name__, q, ans, f"{sol}\n#### {ans}"))
            got += 1
            if got == per_template:
                break
        assert got == per_template, f"{template.__name__}: only {got} distinct problems"
    names = {t.__name__ for t in MATH_TEMPLATES}
    assert set(UNSEEN_TEMPLATES) <= names and len(names) == len(MATH_TEMPLATES)
    rng.shuffle(rows)
    out = []
    for i, (name, q, ans, sol) in enumerate(rows, 1):
        rec = {"id": f"math-{seed}-{i:04d}", "template": name}
        if name in UNSEEN_TEMPLATES:
            rec["split"] = "unseen"
        out.append(rec | {"prompt": q, "answer": ans, "solution": sol})
    return out


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DATA,
                    help="output folder (default: the repository's data/)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    ap.add_argument("--templates", type=Path, default=TEMPLATES,
                    help="templates file (default: data/prompt_templates.json)")
    ap.add_argument("--n-composed", type=int, default=N_COMPOSED,
                    help=f"composed training instructions to draw (default {N_COMPOSED})")
    args = ap.parse_args(argv)
    templates = load_templates(args.templates)
    inst = build_instructions(random.Random(args.seed), templates["instructions"], args.seed)
    math = build_math(args.seed + 1, templates["math"])
    comp = build_composed(random.Random(args.seed + 2), templates["composed"], args.n_composed,
                          args.seed, avoid=all_instruction_prompts(templates["instructions"]))
    write_jsonl(args.out / "instructions.jsonl", inst)
    write_jsonl(args.out / "math.jsonl", math)
    write_jsonl(args.out / "instructions_composed.jsonl", comp)
    unseen = [r["template"] for r in math if r.get("split") == "unseen"]
    print(f"wrote {len(inst)} instructions, {len(math)} math problems and {len(comp)} composed "
          f"training instructions to {args.out} ({len(MATH_TEMPLATES)} templates; "
          f"{len(unseen)} problems of {len(set(unseen))} held-out templates marked unseen; "
          f"{len(templates['composed'])} composed sets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
