"""Is the cpu profile's draft in the paper's regime? Expected alpha on held-out math.

Trains (or reuses, from ``outputs/cpu/``) the cpu profile's no-KD draft and its offline and
online KD drafts at the KD temperatures given, then prints expected alpha with its 95%
interval on the math set's two held-out splits (`study.Study.held_out`): ``test``, new
problems of the training templates, and ``unseen``, problems of templates never seen in
training; plus the training time of each draft. The issue's targets: aligned KD >= 0.60 at
tau 0 and >= 0.50 at tau 1 on ``test``, >= 0.50 at tau 0 on ``unseen``; no KD at most half.

    .venv/bin/python benchmarks/math_regime.py [--taus 0 1] [--threads N] [--json out.json]
        [--steps N --root DIR] [--skip online_tau0] [--divergence tvd --root DIR]
        [--precision bfloat16 --root DIR] [--lr X --root DIR] [--samples-per-prompt N --root DIR]

The drafts and cells it makes are the study's own (same folder, same configs), so a later
`make study` reuses them. ``--steps`` trains the KD drafts for N steps instead of the
profile's; give it its own ``--root`` (the teacher samples and the no-KD draft of
``outputs/cpu`` are linked there, not copied or remade). At tau_kd 0 offline and online KD
train the same draft (cross-entropy on greedy answers), so ``--skip online_tau0`` saves one.
``--divergence`` trains online KD with another divergence (DistillSpec, Zhou et al. 2024,
found that the best one depends on the task and the decoding; TVD is 1 - expected alpha).
``--precision bfloat16`` trains the KD drafts under bfloat16 autocast (``float32``: without),
not in the precision this CPU measured faster (`runners.train_precision`): run on the same
teacher samples, it checks that bfloat16 keeps the drafts' alpha.
"""

from __future__ import annotations

import argparse
import json
import time

from dataclasses import replace
from pathlib import Path

import torch

from tcsd_utils.profiles import DIVERGENCES, PRECISIONS, kd_name
from tcsd_utils.study import Study
from tcsd_utils.timing import machine_info
from tcsd_utils.files import output_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taus", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--steps", type=int, default=None, help="KD steps (default: the profile's)")
    parser.add_argument("--root", default=None, help="outputs folder (needed with --steps)")
    parser.add_argument("--skip", nargs="*", default=[], help="drafts not to train, e.g. online_tau0")
    parser.add_argument("--divergence", choices=DIVERGENCES, default=None,
                        help="online KD's divergence (default: the profile's); needs its own --root")
    parser.add_argument("--lr", type=float, default=None, help="KD's peak learning rate; needs its own --root")
    parser.add_argument("--online-samples-tau", type=float, default=None,
                        help="'sample once, score many': every online draft on the teacher samples at this tau; "
                             "needs its own --root")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="the KD drafts' precision (default: the profile's); needs its own --root")
    parser.add_argument("--samples-per-prompt", type=int, default=None,
                        help="teacher answers per train prompt at tau > 0 (default: the profile's); needs its own "
                             "--root, where those teacher samples are made (not linked)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    changed = {"--steps": args.steps, "--divergence": args.divergence, "--lr": args.lr,
               "--online-samples-tau": args.online_samples_tau, "--precision": args.precision,
               "--samples-per-prompt": args.samples_per_prompt}
    if any(v is not None for v in changed.values()) and not args.root:
        parser.error(f"{', '.join(k for k, v in changed.items() if v is not None)} need their own --root, "
                     "or they would replace the study's drafts")
    base = Study("cpu").settings
    kd = {key: value for key, value in (("steps", args.steps), ("lr", args.lr), ("precision", args.precision))
          if value is not None}
    overrides = {"offline": replace(base.offline, **kd), "online": replace(base.online, **kd)}
    if args.divergence:
        overrides["online"] = replace(overrides["online"], divergence=args.divergence)
    if args.online_samples_tau is not None:
        overrides["online_samples_tau"] = args.online_samples_tau
    if args.samples_per_prompt is not None:
        overrides["samples_per_prompt"] = args.samples_per_prompt
    study = Study("cpu", root=args.root, **overrides)
    if args.root:  # reuse the study's teacher samples and scores (each folder linked) and no-KD draft
        home = output_dir("cpu")
        parts = [p.relative_to(home) for p in sorted((home / "teacher").glob("*")) if p.is_dir()] + [Path("drafts/nokd")]
        if args.samples_per_prompt is not None:  # the study's training samples are one per prompt: made anew
            parts = [p for p in parts if "_train_" not in p.name and not p.name.startswith("scores_")]
        for part in parts:
            link = study.out / part
            if not link.exists() and (home / part).exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to((home / part).resolve())
    print(json.dumps(machine_info()), flush=True)
    names, seconds = ["nokd"], {}
    for tau in args.taus:
        for mode in ("offline", "online"):
            if kd_name(mode, tau) not in args.skip:
                names.append(kd_name(mode, tau))
    for name in names:
        t0 = time.perf_counter()
        study.draft(name)
        seconds[name] = round(time.perf_counter() - t0)
        print(f"{name}: ready in {seconds[name]} s (teacher samples and scores included when made)", flush=True)
    table = study.held_out(names, args.taus)
    table["ci"] = table.apply(lambda r: f"{r.alpha_expected:.3f} [{r.alpha_expected_lo:.3f}, {r.alpha_expected_hi:.3f}]",
                              axis=1)
    print(table.pivot_table(index=["split", "draft"], columns="tau", values="ci", aggfunc="first").to_string())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine_info(), "steps": args.steps, "divergence": args.divergence, "lr": args.lr,
                       "precision": args.precision, "online_samples_tau": args.online_samples_tau,
                       "samples_per_prompt": args.samples_per_prompt, "seconds": seconds, "rows": table.to_dict("records")}, fh, indent=2)


if __name__ == "__main__":
    main()
