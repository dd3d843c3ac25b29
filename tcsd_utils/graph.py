"""The study's stages as a graph, derived from a profile: what each stage makes, and from what.

The study is a chain of cached stages (DESIGN.md):

    teacher samples -> drafts (and c, the draft's cost) -> timing blocks -> results

Each stage writes its artifact under ``outputs/<run>/`` beside the config that made it, and
is skipped when that artifact exists. `stages` lists them in the order the notebooks make
them, each with the stages it reads (``needs``), so a scheduler may run any stage whose needs
are done: `cluster` runs them as Ray tasks, the dry run prints the graph (`describe`), and
the plan counts from it. Plain data, like `profiles.draft_specs`.

Kinds:
    teacher  target samples of a prompt set's split at one tau (`Study.samples`)
    draft    one draft, trained (`Study.draft`)
    cost     c, the draft's time per token over the target's (`Study.cost`)
    timing   the missing cells of one decoding tau, timed as one block that shares its plain
             runs (`Study.evaluate`), for the drafts one notebook asks for

Left to the notebooks (each a minute or two on the cpu profile): notebook 01's continuations,
notebook 02's expected alpha on held-out problems of unseen templates, notebook 06's sweeps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .profiles import Settings, draft_specs, grid_names, mix_names, ood_names, sample_taus, tau_tag, teacher_folder, trained_as

__all__ = ["Stage", "KINDS", "teacher_taus", "stages", "levels", "describe"]

KINDS = ("teacher", "draft", "cost", "timing")


@dataclass(frozen=True)
class Stage:
    """One cached stage of a run.

    Attributes:
        key: its name, unique in the run (``teacher/math_train_tau0``, ``draft/offline_tau0``,
            ``cost``, ``timing/math/tau0/offline_tau0+online_tau0``).
        kind: one of `KINDS`.
        needs: keys of the stages whose artifacts it reads.
        args: what it is made from: ``(prompt_set, split, tau)`` for teacher samples,
            ``(name,)`` for a draft, ``()`` for c, ``(prompt_set, tau, names)`` for timing.
        artifacts: files (relative to the run's folder) that exist once it is done.
    """

    key: str
    kind: str
    needs: tuple = ()
    args: tuple = ()
    artifacts: tuple = ()


def teacher_taus(s: Settings) -> list[float]:
    """The KD temperatures whose teacher samples (train split) some draft reads."""
    return sorted({t for mode, tau_kd, mix_weights in draft_specs(s).values() if mode != "none"
                   for t in sample_taus(s, mode, tau_kd, mix_weights)})


def _teacher(prompt_set: str, split: str, tau: float) -> Stage:
    key = teacher_folder(prompt_set, split, tau)  # also its folder
    return Stage(key, "teacher", (), (prompt_set, split, float(tau)), (f"{key}/config.json",))


def _draft_needs(s: Settings, mode: str, tau_kd: float, mix_weights) -> list[str]:
    """The teacher sets (train split) a KD draft reads (`profiles.sample_taus`)."""
    return [teacher_folder(s.train_set, "train", t) for t in sample_taus(s, mode, tau_kd, mix_weights)]


def stages(s: Settings) -> list[Stage]:
    """Every stage of a run with settings ``s``, in the order the notebooks make them (a
    topological order: each stage comes after those it needs)."""
    out: list[Stage] = []
    out += [_teacher(s.train_set, "train", t) for t in teacher_taus(s)]
    nokd = [] if s.paper_draft else ["draft/nokd"]  # a Hub draft is loaded, not made
    if nokd:
        out.append(Stage("draft/nokd", "draft", (), ("nokd",), ("drafts/nokd/config.json", "drafts/nokd/model")))
    for name, (mode, tau_kd, mix_weights) in draft_specs(s).items():
        if mode == "none" or trained_as(s, name) != name:  # trained as another, made by its stage
            continue
        needs = tuple(nokd + _draft_needs(s, mode, tau_kd, mix_weights))
        out.append(Stage(f"draft/{name}", "draft", needs, (name,),
                         (f"drafts/{name}/config.json", f"drafts/{name}/model")))
    out.append(Stage("cost", "cost", tuple(nokd), (), ("eval/cost.json",)))
    made = {stage.args[0] for stage in out if stage.kind == "draft"}  # (a Hub draft is not)
    held = {}  # (prompt set, tau) -> the teacher stage of its test split
    for prompt_set in dict.fromkeys([s.train_set, s.ood_set]):
        for tau in s.decode_taus:
            stage = _teacher(prompt_set, "test", tau)
            held[prompt_set, float(tau)] = stage.key
            out.append(stage)
    # the timing blocks, as notebooks 03, 04 and 05 ask for them: a cell already timed by an
    # earlier notebook is not timed again, so each block holds the cells that one is missing
    asks = [(grid_names(s), s.train_set), (ood_names(s), s.train_set), (ood_names(s), s.ood_set),
            (mix_names(s), s.train_set)]
    timed = set()
    for names, prompt_set in asks:
        for tau in s.decode_taus:
            todo = [n for n in names if (n, prompt_set, float(tau)) not in timed]
            if not todo:
                continue
            timed |= {(n, prompt_set, float(tau)) for n in todo}
            drafts = dict.fromkeys(trained_as(s, n) for n in todo)
            needs = tuple([f"draft/{n}" for n in drafts if n in made] + [held[prompt_set, float(tau)], "cost"])
            folder = f"eval/{prompt_set}/tau{tau_tag(tau)}"
            out.append(Stage(f"timing/{prompt_set}/tau{tau_tag(tau)}/{'+'.join(todo)}", "timing", needs,
                             (prompt_set, float(tau), tuple(todo)), tuple(f"{folder}/{n}.json" for n in todo)))
    return out


def levels(graph: list[Stage]) -> list[list[Stage]]:
    """The stages by depth: level 0 needs nothing, level n needs only stages of levels below
    n; the stages of one level can all run at once."""
    depth: dict[str, int] = {}
    for stage in graph:  # in topological order
        depth[stage.key] = 1 + max((depth[n] for n in stage.needs), default=-1)
    by = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for stage in graph:
        by[depth[stage.key]].append(stage)
    return by


def describe(graph: list[Stage]) -> str:
    """The graph in a few lines: stages per kind, then per level (a level's stages can run at
    once, each after the levels above it)."""
    kinds = Counter(stage.kind for stage in graph)
    lines = [f"stage graph: {len(graph)} stages (" + ", ".join(f"{kinds[k]} {k}" for k in KINDS if kinds[k]) + ")"]
    for i, level in enumerate(levels(graph)):
        counts = Counter(stage.kind for stage in level)
        lines.append(f"  level {i}: " + ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k]))
    return "\n".join(lines)
