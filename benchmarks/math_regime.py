"""Is the cpu profile's draft in the paper's regime? Expected alpha on held-out math.

Trains (or reuses, from ``outputs/cpu/``) the cpu profile's no-KD draft and its offline and
online KD drafts at the KD temperatures given, then prints expected alpha with its 95%
interval on the math set's two held-out splits (`stages.Study.held_out`): ``test``, new
problems of the training templates, and ``unseen``, problems of templates never seen in
training; plus the training time of each draft. The issue's targets: aligned KD >= 0.60 at
tau 0 and >= 0.50 at tau 1 on ``test``, >= 0.50 at tau 0 on ``unseen``; no KD at most half.

    .venv/bin/python benchmarks/math_regime.py [--taus 0 1] [--threads N] [--json out.json]

The drafts and cells it makes are the study's own (same folder, same configs), so a later
`make study` reuses them.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from tcsd_utils.kernels import machine_info
from tcsd_utils.stages import Study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taus", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    study = Study("cpu")
    print(json.dumps(machine_info()), flush=True)
    names, seconds = ["nokd"], {}
    for tau in args.taus:
        for mode in ("offline", "online"):
            names.append(study.kd_name(mode, tau))
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
            json.dump({"machine": machine_info(), "seconds": seconds, "rows": table.to_dict("records")}, fh, indent=2)


if __name__ == "__main__":
    main()
