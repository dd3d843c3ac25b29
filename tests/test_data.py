"""The offline prompt sets, their loader and chat-template encoding. Nothing is downloaded."""

from __future__ import annotations

import itertools
import json
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tcsd_utils import data as D

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"(\d+(?: [-+*/] \d+)+) = (\d+)")
ID = {"instructions": re.compile(r"inst-(\d{4})"), "math": re.compile(r"math-2411-(\d{4})"),
      "instructions_composed": re.compile(r"comp-2410-(\d{5})")}
GENERATED = ["instructions.jsonl", "math.jsonl", "instructions_composed.jsonl"]


def _raw(name):
    with open(ROOT / "data" / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("name", ["instructions", "math"])
def test_sets_are_large_and_unique(name):
    recs = D.load_prompts(name, seed=None)
    assert len(recs) >= 300
    assert recs == _raw(name)  # seed=None keeps file order
    ids = [r["id"] for r in recs]
    prompts = [r["prompt"] for r in recs]
    assert len(set(ids)) == len(ids)
    assert len(set(prompts)) == len(prompts)
    assert all(isinstance(p, str) and len(p.strip()) > 15 for p in prompts)
    # numbered in file order; a math id also carries the generator's seed (2410 + 1)
    assert [int(ID[name].fullmatch(i).group(1)) for i in ids] == list(range(1, len(ids) + 1))


def test_instruction_task_variety():
    recs = D.load_prompts("instructions")
    tasks = {r["task"] for r in recs}
    assert len(tasks) >= 6
    assert {"explain", "list", "rewrite", "classify", "advise", "write", "summarise"} <= tasks
    # no task dominates: the largest is under a sixth of the set
    assert max(sum(r["task"] == t for r in recs) for t in tasks) < len(recs) / 6
    assert len({r["prompt"].split()[0] for r in recs}) >= 30  # varied openings


def test_math_answers_recompute():
    recs = D.load_prompts("math")
    for r in recs:
        assert isinstance(r["answer"], int) and not isinstance(r["answer"], bool)
        assert r["answer"] >= 0
        body, final = r["solution"].rsplit("\n#### ", 1)
        assert int(final) == r["answer"]
        steps = STEP.findall(body)
        assert 2 <= len(steps) <= 5, r
        for expr, value in steps:
            assert eval(expr, {"__builtins__": {}}, {}) == int(value), (r["id"], expr, value)
        assert int(steps[-1][1]) == r["answer"]  # the last step is the answer
        assert r["prompt"].rstrip().endswith("?")
        assert 15 <= len(body.split()) <= 70, r  # a short worked solution
    # many templates, varied numbers
    openings = {" ".join(r["prompt"].split()[1:3]) for r in recs}
    assert len(openings) >= 12
    assert len({r["answer"] for r in recs}) >= 100


def test_load_prompts_seeded_shuffle():
    a = D.load_prompts("instructions", n=50, seed=1)
    assert a == D.load_prompts("instructions", n=50, seed=1)
    b = D.load_prompts("instructions", n=50, seed=2)
    assert [r["id"] for r in a] != [r["id"] for r in b]
    full = D.load_prompts("instructions", seed=1)
    assert a == full[:50]  # the first n of the same shuffle
    assert sorted(r["id"] for r in full) == sorted(r["id"] for r in _raw("instructions"))
    a[0]["prompt"] = "changed"  # callers get copies
    assert D.load_prompts("instructions", n=1, seed=1)[0]["prompt"] != "changed"


@pytest.mark.parametrize("name", ["instructions", "math"])
def test_split_disjoint_stable(name):
    every = {r["id"] for r in D.load_prompts(name)}
    train = {r["id"] for r in D.load_prompts(name, split="train", seed=3)}
    test = {r["id"] for r in D.load_prompts(name, split="test", seed=9)}
    unseen = {r["id"] for r in D.load_prompts(name, split="unseen", seed=4)}
    assert not train & test and not train & unseen and not test & unseen
    assert train | test | unseen == every  # the three splits partition "all"
    assert len(train) + len(test) + len(unseen) == len(every)
    assert 0.1 < len(test) / len(train | test) < 0.3
    assert bool(unseen) == (name == "math")  # the instructions hold no unseen records
    # independent of seed and n
    assert {r["id"] for r in D.load_prompts(name, split="test", seed=0)} == test
    few = {r["id"] for r in D.load_prompts(name, n=10, split="test", seed=5)}
    assert few <= test and len(few) == 10


def test_math_size_and_templates():
    recs = D.load_prompts("math", seed=None)
    assert len(recs) >= 1000
    counts = {}
    for r in recs:
        assert re.fullmatch(r"m_[a-z_]+", r["template"]), r
        counts[r["template"]] = counts.get(r["template"], 0) + 1
    assert len(counts) >= 40
    assert len(set(counts.values())) == 1  # as many problems from each template
    assert len({r["id"] for r in recs}) == len(recs)


def test_math_unseen_templates_are_held_out():
    recs = D.load_prompts("math", seed=None)
    split = {s: D.load_prompts("math", split=s, seed=None) for s in ("train", "test", "unseen")}
    unseen = {r["template"] for r in split["unseen"]}
    assert len(unseen) >= 5
    # the unseen split is exactly the records marked so, and each of its templates is whole
    assert split["unseen"] == [r for r in recs if r.get("split") == "unseen"]
    assert split["unseen"] == [r for r in recs if r["template"] in unseen]
    assert all(r.get("split") != "unseen" for r in split["train"] + split["test"])
    train = {r["template"] for r in split["train"]}
    test = {r["template"] for r in split["test"]}
    assert not unseen & train and not unseen & test
    assert test <= train  # "test" holds new problems of the training templates
    assert len(train) + len(unseen) == len({r["template"] for r in recs})


def test_split_field_decides(tmp_path, monkeypatch):
    ids = [f"m{i}" for i in range(40)]
    hashed_test = [i for i in ids if D._in_test(i)]
    assert hashed_test and len(hashed_test) < len(ids)
    marked = {ids[0]: "unseen", ids[1]: "unseen", hashed_test[0]: "train"}
    lines = [json.dumps({"id": i, "prompt": f"What is {n} + {n}?", "answer": 2 * n}
                        | ({"split": marked[i]} if i in marked else {}))
             for n, i in enumerate(ids)]
    (tmp_path / "math.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("TCSD_DATA_DIR", str(tmp_path))
    got = {s: [r["id"] for r in D.load_prompts("math", split=s, seed=None)] for s in D.SPLITS}
    assert got["unseen"] == [ids[0], ids[1]]
    assert hashed_test[0] in got["train"] and hashed_test[0] not in got["test"]
    assert got["test"] == [i for i in hashed_test if i not in marked]
    assert sorted(got["train"] + got["test"] + got["unseen"]) == sorted(got["all"])
    lines[2] = json.dumps({"id": "bad", "prompt": "What is 1 + 1?", "split": "validation"})
    (tmp_path / "math.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="record 3 has split 'validation'"):
        D.load_prompts("math", split="train")


def test_errors():
    with pytest.raises(ValueError, match="instructions.*math"):
        D.load_prompts("nope")
    with pytest.raises(ValueError, match="only"):
        D.load_prompts("math", n=100_000)
    with pytest.raises(ValueError):
        D.load_prompts("math", n=0)
    with pytest.raises(ValueError):
        D.load_prompts("math", n=-3)
    with pytest.raises(ValueError, match="split"):
        D.load_prompts("math", split="validation")


def test_joined_sets_are_the_union_of_each_split():
    """The gpu profile trains on ``instructions+composed``: the composed instructions add to
    the train split only, so the held-out test is the hand-written one's."""
    for split in ("train", "test", "all"):
        joined = D.load_prompts("instructions+composed", None, None, split=split)
        parts = D.load_prompts("instructions", None, None, split=split) + D.load_prompts("composed", None, None, split=split)
        assert joined == parts, split
    assert not D.load_prompts("composed", None, None, split="test")
    assert len(D.load_prompts("instructions+composed", None, None, split="train")) == 9334
    assert D.load_prompts("instructions+composed", 50, 3, split="train") == \
        D.load_prompts("instructions+composed", 50, 3, split="train")
    assert not D.from_hub("instructions+composed") and D.from_hub("alpaca") and D.from_hub("math+gsm8k")
    with pytest.raises(ValueError, match="unknown prompt set 'nope'"):
        D.load_prompts("instructions+nope")
    with pytest.raises(ValueError, match="names a set twice"):
        D.load_prompts("composed+composed")


def test_data_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("TCSD_DATA_DIR", str(tmp_path))
    assert D.data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="instructions.jsonl"):
        D.load_prompts("instructions")
    (tmp_path / "math.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.*math.jsonl"):
        D.load_prompts("math")
    (tmp_path / "math.jsonl").write_text(
        '{"id": "m1", "prompt": "What is 2 + 2?", "answer": 4}\n', encoding="utf-8")
    assert D.load_prompts("math") == [{"id": "m1", "prompt": "What is 2 + 2?", "answer": 4}]


@pytest.mark.parametrize("name,offline", [("alpaca", "instructions"), ("gsm8k", "math")])
def test_hub_sets_offline_raise_clear_error(name, offline, monkeypatch):
    import datasets

    def refuse(*args, **kwargs):
        raise ConnectionError("no network in tests")

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    D._load_hub.cache_clear()
    with pytest.raises(RuntimeError) as info:
        D.load_prompts(name, n=5)
    msg = str(info.value)
    assert ("alpaca" if name == "alpaca" else "gsm8k") in msg
    assert "network" in msg and "Hub" in msg and repr(offline) in msg
    assert isinstance(info.value.__cause__, ConnectionError)


def test_hub_sets_parse(monkeypatch):
    import datasets

    rows = {
        "tatsu-lab/alpaca": [{"instruction": "Name a colour.", "input": "", "output": "Red"},
                             {"instruction": "Translate this.", "input": "Bonjour", "output": "Hi"}],
        "openai/gsm8k": [{"question": "What is 1000 + 234?", "answer": "1000+234=1234\n#### 1,234"}],
    }
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id, config, split: rows[hub_id])
    D._load_hub.cache_clear()
    try:
        alpaca = D.load_prompts("alpaca", seed=None)
        assert [r["prompt"] for r in alpaca] == ["Name a colour.", "Translate this.\n\nBonjour"]
        (g,) = D.load_prompts("gsm8k")
        assert g["answer"] == 1234 and g["prompt"] == "What is 1000 + 234?"
        for name, n in [("alpaca", 2), ("gsm8k", 1)]:  # no record of a Hub set is "unseen"
            assert D.load_prompts(name, split="unseen") == []
            both = D.load_prompts(name, split="train") + D.load_prompts(name, split="test")
            assert len(both) == n
    finally:
        D._load_hub.cache_clear()


def _tokenizer(words, template=True):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", "<pad>", "user", "assistant",
                                          "system", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    if template:
        fast.chat_template = ("{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> "
                              "{% endfor %}{% if add_generation_prompt %}<s> assistant {% endif %}")
    return fast


def _contains(seq, sub):
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_chat_ids_with_tiny_tokenizer():
    tok = _tokenizer(["why", "is", "the", "sky", "blue", "be", "brief"])
    prompt = "why is the sky blue"
    body = tok.encode(prompt, add_special_tokens=False)
    ids = D.chat_ids(tok, prompt)
    assert isinstance(ids, list) and all(type(t) is int for t in ids)
    assert _contains(ids, body)
    v = tok.get_vocab()
    assert ids[:2] == [v["<s>"], v["user"]]
    assert ids[-2:] == [v["<s>"], v["assistant"]]  # the generation prompt
    with_sys = D.chat_ids(tok, prompt, system="be brief")
    assert _contains(with_sys, tok.encode("be brief", add_special_tokens=False))
    assert _contains(with_sys, body) and len(with_sys) > len(ids)
    for bad in ["", "   \n\t"]:
        with pytest.raises(ValueError, match="empty prompt"):
            D.chat_ids(tok, bad)
    assert D.encode_prompts(tok, [{"id": "x", "prompt": prompt}, prompt]) == [ids, ids]


def test_chat_ids_without_template_falls_back_to_encode():
    tok = _tokenizer(["hello", "world"], template=False)
    assert D.chat_ids(tok, "hello world") == tok.encode("hello world")


@pytest.mark.parametrize("kind", ["list", "dict", "batch", "tensor"])
def test_chat_ids_accepts_every_return_type(kind):
    import torch

    class Fake:
        chat_template = "x"

        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            assert add_generation_prompt and tokenize and messages[-1]["role"] == "user"
            ids = [5, 6, 7]
            return {"list": ids, "dict": {"input_ids": ids, "attention_mask": [1, 1, 1]},
                    "batch": [ids], "tensor": torch.tensor([ids])}[kind]

    assert D.chat_ids(Fake(), "hi") == [5, 6, 7]


def test_generator_reproduces_committed_files(tmp_path):
    script = ROOT / "scripts" / "make_prompts.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (ROOT / "data" / name).read_bytes(), name


def test_sets_made_with_other_seeds_join_the_committed_ones_without_shared_ids(tmp_path):
    script = ROOT / "scripts" / "make_prompts.py"
    ids = {r["id"] for name in GENERATED
           for r in map(json.loads, (ROOT / "data" / name).read_text().splitlines())}
    for seed in (7, 8):
        subprocess.run([sys.executable, str(script), "--out", str(tmp_path / str(seed)), "--seed", str(seed)],
                       check=True, capture_output=True)
        new = [r["id"] for name in GENERATED
               for r in map(json.loads, (tmp_path / str(seed) / name).read_text().splitlines())]
        assert len(new) == len(set(new)) and not ids & set(new), seed
        assert any(i.startswith(f"inst-{seed}-") for i in new)
        comp = [r["id"] for r in map(json.loads, (tmp_path / str(seed) / "instructions_composed.jsonl")
                                     .read_text().splitlines())]
        assert len(comp) == 9000 and all(re.fullmatch(rf"comp-{seed}-\d{{5}}", i) for i in comp)
        ids |= set(new)


def _slots_used(template):
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def test_composed_set_is_distinct_training_only_and_apart_from_the_hand_written_one():
    recs = _raw("instructions_composed")
    hand = _raw("instructions")
    prompts = [r["prompt"] for r in recs]
    assert len(recs) == 9000 and len(set(prompts)) == 9000  # 9,000 distinct prompts
    ids = [r["id"] for r in recs]
    # numbered in file order, and the id carries the generator's seed (2410)
    assert [int(ID["instructions_composed"].fullmatch(i).group(1)) for i in ids] == \
        list(range(1, len(ids) + 1))
    others = {r["id"] for name in ["instructions", "math"] for r in _raw(name)}
    assert not others & set(ids)
    tasks = {r["task"] for r in hand}
    for r in recs:
        assert set(r) == {"id", "task", "prompt", "split"}, r
        assert r["split"] == "train", r  # never held out
        assert r["task"] in tasks, r
        assert "{" not in r["prompt"] and "}" not in r["prompt"], r  # no unfilled slot
        assert len(r["prompt"].strip()) > 15 and r["prompt"] == r["prompt"].strip(), r
    assert not set(prompts) & {r["prompt"] for r in hand}  # the test prompts stay unseen
    counts = {t: sum(r["task"] == t for r in recs) for t in {r["task"] for r in recs}}
    assert len(counts) >= 10
    assert max(counts.values()) <= 3 * min(counts.values())  # drawn evenly over the sets
    assert len({r["prompt"].split()[0] for r in recs}) >= 20  # varied openings


def test_composed_templates_fill_every_slot_and_are_new():
    data = json.loads((ROOT / "data" / "prompt_templates.json").read_text(encoding="utf-8"))
    sets, hand = data["composed"], data["instructions"]
    tasks = {s["task"] for s in hand}
    assert 12 <= len(sets) <= 20 and len({s["task"] for s in sets}) >= 10
    # the hand-written templates, with every placeholder blanked, against the composed ones
    blank = re.compile(r"\{[a-z_]+\}")
    old = {blank.sub("{}", t) for s in hand for t in s.get("templates", [])}
    total = 0
    for s in sets:
        assert s["task"] in tasks, s["task"]
        assert set(s) <= {"task", "templates", "slots", "pairs"}, sorted(s)
        wanted = set(s["slots"])
        size = 1
        for name, values in s["slots"].items():
            assert values and all(isinstance(v, (str, list)) for v in values), name
            if name == s.get("pairs"):
                wanted = (wanted - {name}) | {"a", "b"}
                assert all(isinstance(g, list) and len(g) >= 2 for g in values), name
                size *= sum(len(list(itertools.combinations(g, 2))) for g in values)
            else:
                assert all(isinstance(v, str) for v in values), name
                assert len(set(values)) == len(values), name
                size *= len(values)
        for t in s["templates"]:
            assert _slots_used(t) == wanted, (s["task"], t)  # every template uses every slot
            assert blank.sub("{}", t) not in old, t
        total += size * len(s["templates"])
    assert total >= 20_000  # so a draw of 9,000 is varied
