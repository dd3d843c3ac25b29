"""Does choosing the kernel per verification width pay? The target's verification cost (a
forward over k + 1 new tokens, in one-token forwards: `evaluate.verify_cost`) with the kernels
chosen per width, against one choice per weight shape (the one measured at width 2, reused for
widths 3 to `runners.SMALL`, as before kernels v3), interleaved round by round.

    .venv/bin/python benchmarks/verify_kernels.py [--k 1 2 3 4] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from tcsd_utils import runners as R
from tcsd_utils.evaluate import verify_cost
from tcsd_utils.models import load_model
from tcsd_utils.profiles import settings
from tcsd_utils.timing import machine_info


def arguments(doc: str, **more) -> argparse.Namespace:
    """The command line of a verification benchmark: ``--k`` and ``--threads``, and ``more``
    (``name=default``, whole numbers)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 4])
    for name, default in more.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args()


def prepared_target(args: argparse.Namespace):
    """The cpu profile's target, on ``args.threads`` threads, with every width's kernel of
    ``args.k`` chosen (and timed) before any timing."""
    if args.threads:
        torch.set_num_threads(args.threads)
    target = load_model(settings("cpu").target)
    for k in args.k:
        verify_cost(target, k, n_calls=2, repeats=1)
    return target


def main() -> None:
    args = arguments(__doc__, rounds=3)
    target = prepared_target(args)
    per_width = dict(R._CHOSEN)
    one_choice = {key: per_width.get(key[:-1] + (2,), kind) if key[-1] > 2 else kind for key, kind in per_width.items()}
    policies = {"per width": per_width, "one per shape": one_choice}
    costs = {(name, k): [] for name in policies for k in args.k}
    print(json.dumps(machine_info()), flush=True)
    for _ in range(args.rounds):
        for k in args.k:
            for name, chosen in policies.items():
                R._CHOSEN.clear()
                R._CHOSEN.update(chosen)
                costs[name, k].append(verify_cost(target, k))
    changed = sorted("|".join(map(str, key)) for key in per_width if per_width[key] != one_choice[key])
    print(f"choices that differ ({len(changed)}): {', '.join(changed) or 'none'}")
    for k in args.k:
        row = {name: statistics.median(costs[name, k]) for name in policies}
        print(f"k = {k}: verification cost per width {row['per width']:.2f}, one per shape {row['one per shape']:.2f} "
              f"(medians of {args.rounds}; all: {[round(c, 2) for c in costs['per width', k]]} / "
              f"{[round(c, 2) for c in costs['one per shape', k]]})")


if __name__ == "__main__":
    main()
