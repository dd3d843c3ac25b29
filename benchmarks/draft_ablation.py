"""Ablation of the draft: which lever lifts expected alpha on the embedded pair (draft issue).

Each arm is a cpu-profile `Study` with some settings changed; all arms share one set of
teacher samples (train split) and held-out evaluation samples (test split). For each arm it
trains the no-KD draft, offline KD at tau_kd = 0 and online KD at tau_kd = 1, and prints
expected alpha at the matching decoding temperature (tau 0 and tau 1) on the held-out
instruction prompts, the no-KD draft's alpha at tau 0, c, and the training time. Run it on
an otherwise idle machine:

    .venv/bin/python benchmarks/draft_ablation.py [--arms old,cut,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from tcsd_utils.files import repo_root
from tcsd_utils.profiles import SETTINGS, KDConfig, kd_name
from tcsd_utils.study import Study
from tcsd_utils.timing import machine_info
from tcsd_utils.evaluate import compare_draft, cost_ratio, target_distributions

CPU = SETTINGS["cpu"]
NARROW = {"n_layers": 2, "hidden_size": 256, "n_heads": 4, "intermediate_size": 768}
CUT = {"target_layers": [0, 1, 2], "head_vocab": 8192}
OLD_SCHEDULE = dict(nokd=KDConfig(mode="lm", steps=200, batch_size=8, lr=2e-3, seq_len=128),
                    offline=KDConfig(mode="offline", steps=100, batch_size=16, lr=3e-3),
                    online=KDConfig(mode="online", source="data", steps=64, batch_size=16, lr=3e-3))

# arm -> (what it changes, Settings overrides)
ARMS = {
    "old": ("the previous cpu draft: 2 layers x 256, full head, SVD-initialised embedding",
            dict(draft_shape=NARROW, **OLD_SCHEDULE)),
    "wide": ("deeper and wider narrow draft, 4 x 384, frequency-restricted head (8192 ids)",
             dict(draft_shape={"n_layers": 4, "hidden_size": 384, "n_heads": 6, "intermediate_size": 1024,
                               "head_vocab": 8192}, **OLD_SCHEDULE)),
    "cut": ("cut from the target: its embedding, layers 0-2 and norm, restricted head (8192 ids)",
            dict(draft_shape=CUT)),
    "cut-334": ("cut, distilled on all 334 train prompts instead of 192 (more data)",
                dict(draft_shape=CUT, n_train_prompts=None)),
    "cut-pool": ("cut, and online KD on the teacher samples of every KD temperature (more data)",
                 dict(draft_shape=CUT, online_pool=True)),
    "cut-long": ("cut, with twice the KD steps (schedule)",
                 dict(draft_shape=CUT, offline=replace(CPU.offline, steps=2 * CPU.offline.steps),
                      online=replace(CPU.online, steps=2 * CPU.online.steps))),
}


def machine() -> str:
    m = machine_info()
    return f"{m['cpu']} ({', '.join(m['flags'])}), {m['cores']} cores, torch {m['torch']} with {m['threads']} threads"


def run_arm(name: str, root, shared) -> dict:
    what, overrides = ARMS[name]
    study = Study("cpu", root=root / name, **overrides)
    teacher = study.out / "teacher"
    if not teacher.exists() and study.settings.n_train_prompts == CPU.n_train_prompts:  # same samples
        teacher.parent.mkdir(parents=True, exist_ok=True)
        teacher.symlink_to(shared, target_is_directory=True)
    t0 = time.perf_counter()
    nokd = study.draft("nokd")
    t_nokd = time.perf_counter() - t0
    row = {"arm": name, "what": what, "nokd_s": round(t_nokd)}
    for mode, tau in (("offline", 0.0), ("online", 1.0)):
        t0 = time.perf_counter()
        draft = study.draft(kd_name(mode, tau))
        row[f"{mode}_s"] = round(time.perf_counter() - t0)
        p = target_distributions(study.target, study.samples(tau, "test"), tau, pad=study.pad_id())
        row[f"alpha_tau{tau:g}"] = round(compare_draft(p, draft, tau, pad=study.pad_id())["alpha"], 3)
        if tau == 0.0:
            row["alpha_nokd_tau0"] = round(compare_draft(p, nokd, 0.0, pad=study.pad_id())["alpha"], 3)
    row["c"] = round(cost_ratio(study.target, nokd)["c"], 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {list(ARMS)}")
    parser.add_argument("--root", default=str(repo_root() / "outputs" / "ablation"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from pathlib import Path

    root = Path(args.root)
    shared = root / "teacher"
    shared.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    rows = []
    for name in args.arms.split(","):
        rows.append(run_arm(name, root, shared.resolve()))
        print(json.dumps(rows[-1]), flush=True)
    print("| arm | what | alpha tau 0 (offline KD) | alpha tau 1 (online KD) | no-KD alpha tau 0 | c | "
          "training s (no-KD + offline + online) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arm']} | {r['what']} | {r['alpha_tau0']} | {r['alpha_tau1']} | {r['alpha_nokd_tau0']} | "
              f"{r['c']} | {r['nokd_s']} + {r['offline_s']} + {r['online_s']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
