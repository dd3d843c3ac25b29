"""report.md: the claims table of a run, and what else a reader needs to trust it.

The verdicts come from `tcsd_utils.rules`, one rule per claim. This module writes them down: the claims table (what the paper says,
what this run measured, the verdict), the paper's own figures beside ours, whether the
draft is in the paper's regime, the machine and the load the timings ran under, the key
figures as PNG, and `tcsd compare`'s side-by-side of two runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .files import artifacts, atomic_path
from .rules import CHECKS, INCONCLUSIVE, NOT_MEASURED, PAPER, claims, fmt, grid_cells

__all__ = ["PAPER_NUMBERS", "DRAFT_TARGETS", "aligned", "claims_table", "compare_runs", "draft_regime", "markdown", "write_report",
           "figure_lines",
           "REPORT_FIGURES", "timing_notes", "paper_beside"]

# The paper's figures this run can be set beside (DESIGN.md; the speedups are second-hand).
PAPER_NUMBERS = {
    "speedup without alignment at tau 0 / 1 / 2 (Llama-2-13B-chat + Llama-68M, A100; second-hand)":
        "2.23x / 1.72x / 1.35x",
    "expected alpha after aligned KD": "0.6-0.9",
    "speedup gain of the data-mixing recipe at high tau": "12-20%",
}
# Is the draft in the paper's regime? Expected alpha of the aligned KD draft (tau_kd = tau, the
# better paradigm) the study needs; the paper's drafts reach 0.6-0.9 after KD.
DRAFT_TARGETS = {0.0: 0.60, 1.0: 0.50}


def aligned(cells: pd.DataFrame, tau: float):
    """The aligned KD cell at ``tau`` among ``cells`` (rows with ``tau``, ``tau_kd``, ``mode``,
    ``alpha_expected``): of the offline and online drafts distilled at tau_kd = tau, the one
    with the higher expected alpha at tau; None when there is neither."""
    kd = cells[(cells["tau"] == tau) & (cells["tau_kd"] == tau) & cells["mode"].isin(["offline", "online"])]
    return None if kd.empty else kd.loc[kd["alpha_expected"].idxmax()]


def draft_regime(table) -> list[str]:
    """One sentence per tau of `DRAFT_TARGETS`: the aligned KD draft's expected alpha (the
    better of offline and online, in domain) with its interval against its target, and the
    no-KD draft's, which should stay at most half of it so that what KD does stays visible."""
    t = grid_cells(table)
    out = []
    for tau, goal in DRAFT_TARGETS.items():
        best = aligned(t, tau)
        nokd = t[(t["draft"] == "nokd") & (t["tau"] == tau)]["alpha_expected"]
        if best is None:
            continue
        a = float(best["alpha_expected"])
        ci = (f" [{best['alpha_expected_lo']:.3f}, {best['alpha_expected_hi']:.3f}]"
              if "alpha_expected_lo" in best and np.isfinite(best["alpha_expected_lo"]) else "")
        line = (f"at tau {tau:g}, aligned KD ({best['draft']}) has expected alpha {a:.3f}{ci}: "
                f"{'meets' if a >= goal else 'misses'} the target {goal:.2f}")
        if len(nokd):
            b = float(nokd.iloc[0])
            line += f"; no KD {b:.3f} ({'at most' if b <= a / 2 else 'more than'} half of it)"
        out.append(line)
    return out


UNSEEN_TARGET = 0.50  # expected alpha at tau 0 on templates never seen in training (aligned KD)


def precision_line(configs: list[Path]) -> list[str]:
    """How the run's drafts were trained (each ``drafts/<name>/config.json``'s ``precision``,
    `profiles.KDConfig`): float32, or bfloat16 autocast where this machine measured it faster
    (`runners.train_precision`). A draft that records none was made in float32."""
    by = {}
    for path in configs:
        kd = json.loads(path.read_text()).get("kd", {})
        by.setdefault(kd.get("precision", "float32"), []).append(path.parent.name)
    if not by:
        return []
    parts = [f"{p} ({len(names)} draft{'s' if len(names) > 1 else ''})" if len(by) > 1 else p
             for p, names in sorted(by.items())]
    return ["- the drafts trained in " + ", ".join(parts) + " (`KDConfig.precision`; weights and AdamW in float32)"]


def held_out_lines(rows: list[dict]) -> list[str]:
    """One line per held-out split of the training set (`study.Study.held_out`'s cells):
    the aligned KD drafts' expected alpha (tau_kd = tau, the better paradigm) at each tau,
    and the no-KD draft's. The "unseen" split (templates never seen in training) says how
    much of alpha is memorised, against its target at tau 0."""
    if not rows:
        return []
    t = pd.DataFrame(rows)
    out = []
    for split, g in t.groupby("split", sort=False):
        parts = []
        for tau, h in g.groupby("tau"):
            best = aligned(h, tau)
            if best is None:
                continue
            part = (f"tau {tau:g}: {best['draft']} {best['alpha_expected']:.3f} "
                    f"[{best['alpha_expected_lo']:.3f}, {best['alpha_expected_hi']:.3f}]")
            nokd = h[h["draft"] == "nokd"]
            if len(nokd):
                part += f", no KD {nokd['alpha_expected'].iloc[0]:.3f}"
            if split == "unseen" and tau == 0:
                part += f" ({'meets' if best['alpha_expected'] >= UNSEEN_TARGET else 'misses'} the target {UNSEEN_TARGET:.2f})"
            parts.append(part)
        what = ("new prompts" if split == "test" else "templates never seen in training")
        if parts:
            out.append(f"- expected alpha on held-out `{split}` prompts ({what}), aligned KD: " + "; ".join(parts))
    return out


def claims_table(results: dict) -> pd.DataFrame:
    """The claims as a table: claim, what the paper says, what this run measured (with what
    would settle it, when inconclusive), verdict."""
    return pd.DataFrame([{"claim": c, "paper": PAPER[c],
                          "this run": r["measured"] + (f". To settle it: {r['settle']}" if r.get("settle") else ""),
                          "verdict": r["verdict"]} for c, r in results.items()])


def paper_beside(table) -> list[tuple[str, str, str]]:
    """(figure, the paper's, this run's) for each figure of `PAPER_NUMBERS` this run has."""
    rows = []
    t = grid_cells(table)
    if "gamma" in t and len(t):
        def cell(g):
            if not len(g):
                return "-"
            r = g.loc[g["gamma"].idxmax()]
            ci = f" [{r['gamma_lo']:.2f}, {r['gamma_hi']:.2f}]" if "gamma_lo" in r and np.isfinite(r["gamma_lo"]) else ""
            return f"{r['gamma']:.2f}x{ci}"

        at = {tau: t[(t["tau"] == tau) & t["gamma"].notna()] for tau in (0.0, 1.0, 2.0)}
        key = list(PAPER_NUMBERS)[0]
        rows.append((key, PAPER_NUMBERS[key], "no-KD draft: " + " / ".join(cell(g[g["draft"] == "nokd"])
                                                                          for g in at.values())
                     + "; fastest draft: " + " / ".join(cell(g) for g in at.values())))
    regime = draft_regime(table)
    if regime:
        rows.append((list(PAPER_NUMBERS)[1], PAPER_NUMBERS[list(PAPER_NUMBERS)[1]], "; ".join(
            r.split(": ")[0].replace("has expected alpha ", "") for r in regime)))
    return rows


def timing_notes(table, machine: dict | None) -> list[str]:
    """The machine the timings ran on, the load while they ran (a warning when it exceeded
    the cores), and how often the plain time ratio's interval holds the steadier gamma."""
    lines = []
    if machine:
        lines.append(f"- timed on: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('threads')} torch "
                     f"threads, torch {machine.get('torch')}, flags {', '.join(machine.get('flags', [])) or 'none'}"
                     + (f"; the models in {machine['dtype']} (`models.default_dtype`)" if machine.get("dtype") else ""))
    if "load_before" in table and table["load_before"].notna().any():
        loads = pd.concat([table["load_before"], table["load_after"]]).dropna()
        cores = (machine or {}).get("cores") or 0
        line = (f"- load average (1 min) while timing: first cell {table['load_before'].dropna().iloc[0]:.2f}, "
                f"last {table['load_after'].dropna().iloc[-1]:.2f}, highest {loads.max():.2f}")
        if cores and loads.max() > cores:
            busy = int(((table["load_before"] > cores) | (table["load_after"] > cores)).sum())
            line += (f". **Warning: the load exceeded the {cores} cores in {busy} cells**: other work shared "
                     "the CPU, so gamma is noisier there (its intervals include what the runs saw)")
        lines.append(line)
    if "clock_df" in table and table["clock_df"].notna().any():
        lines.append(f"- the clock's spread (log of plain time per token over speculative time per step, within a "
                     f"cell), pooled over the timed cells: {float(table['clock_sd'].dropna().iloc[0]):.3f} with "
                     f"{int(table['clock_df'].dropna().iloc[0])} degrees of freedom (`stats.pooled_sd`)"
                     + (f"; the drafts timed in one block share their plain runs, and {shared:.3f} of it with them "
                        "(report's replicates draw that part once per block)"
                        if "clock_shared_sd" in table and np.isfinite(shared := float(table["clock_shared_sd"].iloc[0]))
                        and shared > 0 else ""))
    if {"gamma_raw_lo", "gamma"} <= set(table) and table["gamma_raw_lo"].notna().any():
        ok = ((table["gamma_raw_lo"] <= table["gamma"]) & (table["gamma"] <= table["gamma_raw_hi"]))
        n = int(table["gamma_raw_lo"].notna().sum())
        half = ((table["gamma_hi"] - table["gamma_lo"]) / 2).median()
        raw_half = ((table["gamma_raw_hi"] - table["gamma_raw_lo"]) / 2).median()
        lines.append(f"- gamma (acceptance luck taken out, `rules.steady_gamma`) lies inside the plain time "
                     f"ratio's 95% interval in {int(ok.sum())} of {n} cells; median half-width of the intervals: "
                     f"gamma {half:.3f}, plain ratio {raw_half:.3f}")
    return lines


# The figure each claim is judged from (notebooks 03-05 save them), embedded in report.md as
# PNG so that the report reads on its own; the HTML beside each one is interactive.
REPORT_FIGURES = {
    "F1": ("03_gamma_vs_tau", "gamma against the decoding tau, per draft"),
    "F2": ("03_gamma_heatmap", "gamma over the (tau_kd, tau) grid; ≈ marks a cell whose interval overlaps the diagonal's"),
    "F3": ("03_online_vs_offline", "online against offline KD"),
    "F4": ("04_u_curve_gamma", "gamma against tau out of domain (the U-curve)"),
    "F5": ("05_mixing_gamma", "the mixed-data draft against single-tau KD"),
}


def figure_lines(figures) -> list[str]:
    """report.md's figures: each claim's PNG where it was written, else where its HTML is
    and why there is no PNG."""
    figures = Path(figures)
    lines = ["", "## Figures", ""]
    missing = []
    for claim, (name, what) in REPORT_FIGURES.items():
        if (figures / f"{name}.png").is_file():
            lines += [f"**{claim}**: {what} (`figures/{name}.html` is the interactive one).", "",
                      f"![{claim}: {what}](figures/{name}.png)", ""]
        elif (figures / f"{name}.html").is_file():
            missing.append(f"`figures/{name}.html` ({claim})")
    if missing:
        lines.append("No PNG for " + ", ".join(missing) + ": PNG figures need kaleido and a Chrome or Chromium "
                     "(apt-get install chromium); the HTML figures open in any browser.")
    return lines if len(lines) > 3 else []


def write_report(study, table=None) -> "Path":  # noqa: F821
    """Write ``outputs/<run>/report.md`` (atomically) from the results table."""
    table = study.results() if table is None else table
    s = study.settings
    results = claims(table, s)
    cost_path = study.out / "eval" / "cost.json"
    c = json.loads(cost_path.read_text()) if cost_path.is_file() else None
    machine_path = study.out / "eval" / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.is_file() else None
    lines = [f"# tcsd report: `{study.out.name}` (profile `{study.profile}`, seed {s.seed})", "",
             f"Written {time.strftime('%Y-%m-%d %H:%M')} from `results.parquet` ({len(table)} rows: draft x "
             f"decoding tau x prompt set). Paper: Ouyang et al. 2024, arXiv 2410.10141.", "",
             f"- target `{s.target}`; drafts distilled on `{s.train_set}` (train split); out of domain: `{s.ood_set}`",
             f"- KD taus {list(s.kd_taus)}; decoding taus {list(s.decode_taus)}; k = {s.k}; "
             f"{s.spec_prompts} prompts x {s.spec_repeats} repeats x {s.spec_tokens} tokens per speed cell, the drafts at "
             f"a tau timed as one block (plain runs bracket each prompt's speculative runs); expected alpha on {s.n_eval_prompts} held-out prompts x {s.new_tokens} tokens"]
    if c:
        lines.append(f"- c = {c['c']:.3f} (target {c['target_ms']:.1f} ms, draft {c['draft_ms']:.1f} ms per token)")
    lines += timing_notes(table, machine)
    lines += precision_line(artifacts(study.out / "drafts", "*/config.json"))
    regime = draft_regime(table)
    if regime:
        lines.append("- the draft: " + "; ".join(regime) + ". Below the targets the claims are measured on a "
                     "draft weaker than the paper's (FINDINGS.md, the draft ablation).")
    held = artifacts(study.out / "heldout", "*/tau*/*.json")
    lines += held_out_lines([json.loads(p.read_text())["row"] for p in held])
    if study.profile == "smoke":
        lines.append("- **smoke profile**: drafts train for a few steps and runs are a few tokens long, "
                     "so these verdicts test the pipeline, not the paper.")
    lines += ["", "Every figure below is an estimate with its 95% interval in brackets. A verdict other than "
              f"*{INCONCLUSIVE}* is given only when the interval supports it.", "",
              "| claim | the paper | this run | verdict |", "|---|---|---|---|"]
    for name, row in claims_table(results).iterrows():
        lines.append(f"| {row['claim']} | {row['paper']} | {row['this run']} | **{row['verdict']}** |")
    beside = paper_beside(table)
    if beside:
        lines += ["", "The paper beside this run:", "", "| figure | the paper | this run |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c_} |" for a, b, c_ in beside]
        f5 = results.get("F5", {})
        if f5.get("effect"):
            lines.append(f"| {list(PAPER_NUMBERS)[2]} | {PAPER_NUMBERS[list(PAPER_NUMBERS)[2]]} | "
                         f"{fmt(*f5['effect'], 1, '%')} |")
    lines += figure_lines(study.out / "figures")
    lines += ["", "How each verdict is decided (tcsd_utils/rules.py):", ""]
    for c_name, check in CHECKS.items():
        rule = " ".join((check.__doc__ or "").split())
        lines.append(f"- {c_name}: {rule}")
    lines.append("")
    path = study.out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown (no extra dependency)."""
    cells = [list(map(str, table.columns))] + [[str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "|" + "---|" * len(table.columns)] + lines[1:])


def compare_runs(*results: tuple[str, dict]) -> pd.DataFrame:
    """Claims of several runs side by side (``tcsd compare``): one row per claim, a verdict
    and an effect column per run, and whether the runs' decided verdicts agree (rows where a
    run is inconclusive or not measured are left out of that test).

    Args:
        results: ``(run name, claims(...))`` pairs.
    """
    rows = []
    undecided = {INCONCLUSIVE, NOT_MEASURED}
    for claim in CHECKS:
        row = {"claim": claim}
        decided = set()
        for name, res in results:
            r = res.get(claim, {"verdict": NOT_MEASURED})
            row[f"{name} verdict"] = r["verdict"]
            row[f"{name} effect"] = fmt(*r["effect"]) if r.get("effect") else ""
            if r["verdict"] not in undecided:
                decided.add(r["verdict"])
        row["same decided verdict"] = "yes" if len(decided) <= 1 else "no"
        rows.append(row)
    return pd.DataFrame(rows)
