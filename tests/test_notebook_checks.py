"""The notebooks' ``# NBVAL_CHECK_OUTPUT`` cells: no committed output records a failed check,
and every kind of check prints ``False`` when its condition is broken.

nbval compares a check cell's output with the committed one, and nothing more: a check that
printed ``False`` when the outputs were committed then "passes" on every run that prints
``False`` again (notebooks 04 and 05 once left "inconclusive at this scale" out of their list of
verdicts, and their committed outputs said ``False``). So the committed outputs are read here,
and each kind of check cell is executed, from its committed source, on tiny inputs built
below: once as the notebook feeds it and once with its condition broken. No model is loaded.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from tcsd_utils import rules
from tcsd_utils.profiles import kd_name
from tcsd_utils.speculative import DecodeStats
from tcsd_utils.temperature import entropy, probs, top_k_mass

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
MARK = "# NBVAL_CHECK_OUTPUT"


def check_cells(path: Path) -> list[dict]:
    """Every check cell of a notebook: its index, source and committed text output."""
    cells = json.loads(path.read_text())["cells"]
    out = []
    for i, c in enumerate(cells):
        source = "".join(c["source"])
        if c["cell_type"] != "code" or not source.startswith(MARK):
            continue
        outputs = c.get("outputs", [])
        text = "".join("".join(o["text"]) for o in outputs if o.get("output_type") == "stream")
        out.append({"index": i, "source": source, "text": text,
                    "errors": [o for o in outputs if o.get("output_type") == "error"]})
    return out


FALSE = re.compile(r"(^|[:|]\s*)False\b")  # a printed bool: "label: False", "... | label: False", a bare False
COUNT = re.compile(r":\s*(\d+)\s*\|\s*expected:\s*(\d+)")  # "cells: 17 | expected: 18"


def failures(text: str) -> list[str]:
    """The lines of a check cell's output that report a failed check: a printed ``False``, or
    a count that differs from the count printed beside it as expected."""
    bad = []
    for line in text.splitlines():
        counts = COUNT.search(line)
        if FALSE.search(line.strip()) or (counts and counts.group(1) != counts.group(2)):
            bad.append(line)
    return bad


def test_failures_reads_a_false_and_an_unequal_count_and_nothing_else():
    assert failures("verdict is one of agree, partly: False") == ["verdict is one of agree, partly: False"]
    assert failures("False") == ["False"]
    assert failures("offline τ_kd=0: saved: True | config records τ_kd and mode: False") != []
    assert failures("grid cells: 14 | expected: 15") == ["grid cells: 14 | expected: 15"]
    assert failures("grid cells: 15 | expected: 15\nevery α is a probability: True\nrows: 6\n"
                    "claims: ['F1 (alpha)', 'F5']") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_committed_check_output_reports_a_failed_check(path):
    cells = check_cells(path)
    assert cells, f"{path.name} has no {MARK} cell"
    for c in cells:
        where = f"{path.name} cell {c['index']}"
        assert not c["errors"], f"{where} committed an error"
        assert c["text"].strip(), f"{where} has no committed output to compare"
        assert failures(c["text"]) == [], f"{where} committed a failed check: {failures(c['text'])}"


# -- every check cell, by kind ---------------------------------------------------------------
# (notebook prefix, a line of the cell's source) -> the kind of check. A new check cell must be
# placed here, and a new kind needs its mutant below.
KINDS = {
    ("01", 'print("vocabulary:"'): "order",
    ("01", 'print("prompts:"'): "monotone",
    ("01", 'print("every prompt has a continuation'): "range",
    ("01", 's = spec.stats'): "consistency",
    ("02", 'print("drafts:", len(drafts))'): "artifacts",
    ("02", 'print("every α is a probability:", bool(table'): "range",
    ("03", 'print("grid cells:"'): "count",
    ("03", 'print(f"verdicts are one of'): "verdict",
    ("04", 'print("cells:"'): "count",
    ("04", 'print(f"verdict is one of'): "verdict",
    ("05", 'print("cells:"'): "count",
    ("05", 'print(f"verdicts are one of'): "verdict",
    ("06", 'print("rows:", len(sweep)'): "count",
    ("06", 'print("one row per timed τ:"'): "order",
    ("06", 'print("prompt sets:"'): "range",
    ("06", 'print("drafts:", [r["draft"] for r in runs])'): "interval",
}


def find_cell(prefix: str, line: str) -> dict:
    (path,) = [p for p in NOTEBOOKS if p.name.startswith(prefix)]
    found = [c for c in check_cells(path) if line in c["source"]]
    assert len(found) == 1, f"{len(found)} check cells of {path.name} hold {line!r}"
    return found[0]


def run_cell(cell: dict, **names) -> str:
    """Execute a check cell's committed source with ``names`` as its globals; its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(cell["source"], "<check cell>", "exec"), {"math": math, "rules": rules, **names})
    return out.getvalue()


def test_every_check_cell_has_a_kind():
    placed = {(p.name[:2], c["index"]) for p in NOTEBOOKS for c in check_cells(p)}
    kinds = {(prefix, find_cell(prefix, line)["index"]) for prefix, line in KINDS}
    assert placed == kinds, f"check cells without a kind: {sorted(placed - kinds)}"
    assert set(KINDS.values()) == set(MUTANTS), "a kind of check cell without a mutant"


# -- one mutant per kind: the cell as fed, then its condition broken -------------------------
def verdict_cells():
    """The three verdict checks (notebooks 03, 04, 05), fed verdicts the rules can give or not."""
    def nb03(verdict, tmp):  # rules.claims stands in for the rules run on a results table
        (tmp / "results.parquet").touch(), (tmp / "results.csv").touch()
        results = {"F1 (alpha)": {"verdict": rules.INCONCLUSIVE}, "F5": {"verdict": verdict}}
        return dict(table=None, s=None, study=SimpleNamespace(out=tmp),
                    rules=SimpleNamespace(VERDICTS=rules.VERDICTS, claims=lambda table, s: results))

    def nb04(verdict, tmp):
        vocab = 16
        curves = pd.DataFrame({"entropy_p": [0.0, 1.0, math.log(vocab)], "entropy_q": [0.0, 2.0, 2.5]})
        target = SimpleNamespace(config=SimpleNamespace(vocab_size=vocab))
        return dict(curves=curves, study=SimpleNamespace(target=target), f4={"verdict": verdict})

    def nb05(verdict, tmp):
        claims = pd.DataFrame({"claim": ["F1 (alpha)", "F1 (gamma)", "F2", "F3", "F4", "F5"],
                               "verdict": [rules.INCONCLUSIVE] * 4 + [verdict, rules.DISAGREE]})
        return dict(claims=claims)

    return {"03": nb03, "04": nb04, "05": nb05}


@pytest.mark.parametrize("prefix", ["03", "04", "05"])
def test_verdict_check_passes_every_rule_verdict_and_fails_any_other(prefix, tmp_path):
    cell = find_cell(prefix, "verdict")
    feed = verdict_cells()[prefix]
    for verdict in rules.VERDICTS:
        assert failures(run_cell(cell, **feed(verdict, tmp_path))) == [], verdict
    # what the committed run gave (inconclusive on F1-F4, disagree on F5) prints the committed output
    assert run_cell(cell, **feed(rules.INCONCLUSIVE, tmp_path)) == cell["text"]
    for wrong in ("inconclusive", "Inconclusive at this scale", "maybe", None):  # a string copy that drifted
        broken = failures(run_cell(cell, **feed(wrong, tmp_path)))
        assert len(broken) == 1 and "verdict" in broken[0], (wrong, broken)


def _count(cell, tmp):
    """Notebook 04's cells: one per draft x decoding tau x prompt set; then a row lost, a set lost."""
    s = SimpleNamespace(decode_taus=(0.0, 1.0, 2.0), train_set="instructions", ood_set="math")
    names = ["nokd", "offline_tau1", "online_tau1"]
    cells = pd.DataFrame([{"prompt_set": p} for p in (s.train_set, s.ood_set) for _ in names for _ in s.decode_taus])
    good = run_cell(cell, cells=cells, names=names, s=s)
    assert good == cell["text"]  # the committed run's 18 cells
    lost_row = failures(run_cell(cell, cells=cells.iloc[1:], names=names, s=s))
    lost_set = failures(run_cell(cell, cells=cells[cells["prompt_set"] == s.train_set], names=names, s=s))
    return good, lost_row + lost_set


def _range(cell, tmp):
    """Notebook 02's expected alpha per draft and tau; then one above 1."""
    table = pd.DataFrame({"draft": ["no KD", "offline", "online"] * 2, "tau": [0.0] * 3 + [1.0] * 3,
                          "alpha": [0.076, 0.109, 0.114, 0.093, 0.074, 0.106]})
    good = run_cell(cell, table=table)
    assert good == cell["text"]
    return good, failures(run_cell(cell, table=table.assign(alpha=table["alpha"] + [0, 0, 0, 0, 0, 1])))


def _monotone(cell, tmp):
    """Notebook 01's entropy and top-10 mass of p against tau; then two taus swapped."""
    taus = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    logits = torch.randn(4, 64, generator=torch.Generator().manual_seed(0)) * 3  # (prompts, vocab)
    P = torch.stack([probs(logits, t) for t in taus], dim=1)  # (prompts, n_tau, vocab)
    H, top10 = entropy(P), top_k_mass(P, 10)
    feed = dict(records=[{}] * 4, TAUS=taus, H=H, top10=top10)
    good = run_cell(cell, **feed)
    assert good == cell["text"]
    swap = [0, 1, 2, 4, 3, 5, 6]  # tau 0.75 and 1 exchanged
    return good, failures(run_cell(cell, **{**feed, "H": H[:, swap], "top10": top10[:, swap]}))


def _consistency(cell, tmp):
    """Notebook 01's demo run: counts of one speculative run; then a step without its target forward."""
    spec = DecodeStats(new_tokens=8, steps=5, target_forwards=6, drafted=20, accepted=3)
    plain = DecodeStats(new_tokens=8, steps=8, target_forwards=9)
    feed = dict(spec=SimpleNamespace(stats=spec), plain=SimpleNamespace(stats=plain), MAX_NEW_TOKENS=8)
    good = run_cell(cell, **feed)
    assert good == cell["text"]
    broken = DecodeStats(new_tokens=8, steps=5, target_forwards=5, drafted=20, accepted=3)
    return good, failures(run_cell(cell, **{**feed, "spec": SimpleNamespace(stats=broken)}))


def _artifacts(cell, tmp):
    """Notebook 02's saved drafts, each with its weights and config (online KD at tau_kd 0
    reads offline KD's); then a config that names the other mode, and weights that are missing."""
    taus = [0.0, 1.0]

    def save(root, mode_of=lambda mode: mode, weights=True):
        for tau in taus:
            for mode in ("offline", "online"):
                d = root / f"{mode}_tau{tau:g}"
                (d / "model").mkdir(parents=True)
                (d / "config.json").write_text(json.dumps({"kd": {"tau_kd": tau, "mode": mode_of(mode)}}))
                if weights:
                    (d / "model" / "model.safetensors").touch()
        return SimpleNamespace(draft_dir=lambda name: root / trained_as(None, name))

    def trained_as(settings, name):  # as every profile: online KD at tau_kd 0 is offline KD's draft
        return "offline_tau0" if name == "online_tau0" else name

    feed = dict(drafts=dict.fromkeys(range(5)), TAU_KDS=taus, kd_name=kd_name, trained_as=trained_as, s=None)
    good = run_cell(cell, study=save(tmp / "good"), **feed)
    assert good == cell["text"]
    swapped = failures(run_cell(cell, study=save(tmp / "swapped", {"offline": "online", "online": "offline"}.get),
                                **feed))
    missing = failures(run_cell(cell, study=save(tmp / "missing", weights=False), **feed))
    assert len(swapped) == len(missing) == 4
    return good, swapped + missing


def _order(cell, tmp):
    """Notebook 06's step costs: the criterion inside the target's time inside the step; then
    a criterion that takes longer than the target's forward, and a timed tau that is missing."""
    taus = [0.0, 0.5, 1.0, 1.5, 2.0]
    costs = [{"tau": t, "ms_verify_per_step": 0.5, "ms_target_per_step": 60.0, "ms_per_step": 77.0} for t in taus]
    good = run_cell(cell, costs=costs, COST_TAUS=taus)
    assert good == cell["text"]
    slow = [{**costs[0], "ms_verify_per_step": 61.0}] + costs[1:]
    return good, failures(run_cell(cell, costs=slow, COST_TAUS=taus)) + failures(
        run_cell(cell, costs=costs[:-1], COST_TAUS=taus))


def _interval(cell, tmp):
    """Notebook 06's scheduled runs: alpha inside its interval inside [0, 1]; then an interval
    that misses its point."""
    names = ["offline_tau1", "offline_tau1_mix0x1-1x1", "online_tau1", "online_tau1_mix0x1-1x1"]
    runs = [{"draft": n, "alpha": 0.2, "alpha_lo": 0.05, "alpha_hi": 0.5} for n in names]
    good = run_cell(cell, runs=runs)
    assert good == cell["text"]
    return good, failures(run_cell(cell, runs=runs[:-1] + [{**runs[-1], "alpha_hi": 0.1}]))


def _verdict(cell, tmp):
    """Notebook 05's claims table: the committed run's verdicts; then one the rules never give."""
    feed = verdict_cells()["05"]
    return run_cell(cell, **feed(rules.INCONCLUSIVE, tmp)), failures(run_cell(cell, **feed("maybe", tmp)))


MUTANTS = {"count": ("04", _count), "range": ("02", _range), "monotone": ("01", _monotone),
           "consistency": ("01", _consistency), "artifacts": ("02", _artifacts), "order": ("06", _order),
           "interval": ("06", _interval), "verdict": ("05", _verdict)}


@pytest.mark.parametrize("kind", sorted(MUTANTS))
def test_each_kind_of_check_prints_false_when_its_condition_breaks(kind, tmp_path):
    prefix, mutant = MUTANTS[kind]
    line = next(line for (p, line), k in KINDS.items() if p == prefix and k == kind)
    good, broken = mutant(find_cell(prefix, line), tmp_path)
    assert failures(good) == [], good
    assert broken, f"the {kind} check printed no failure with its condition broken"
