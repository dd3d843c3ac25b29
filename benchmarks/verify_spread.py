"""How steady is the measured verification cost (`evaluate.verify_cost`, a forward over k + 1
new tokens in one-token forwards)? The bracketed measurement (one token, k + 1, one token,
per repeat) against the earlier one (every wide forward, then every one-token forward, a ratio
of the two medians), each called ``--calls`` times per k, the two interleaved call by call.
Prints each method's costs per k, their mean and spread (max - min): auto-k (`tcsd bench --k
auto`) picks k from differences of about 0.2 between these costs.

    .venv/bin/python benchmarks/verify_spread.py [--k 1 2 3 4] [--calls 4] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import json
import statistics

from verify_kernels import arguments, prepared_target  # benchmarks/: the same preamble

from tcsd_utils.evaluate import _median_time, verify_cost
from tcsd_utils.timing import machine_info


def blocks(target, k: int, repeats: int) -> float:
    """The earlier measurement: the median of ``repeats`` wide timings over that of one-token ones."""
    kw = dict(prompt_len=64, n_calls=16, fast=True)
    return _median_time(target, repeats, width=k + 1, **kw) / _median_time(target, repeats, **kw)


def main() -> None:
    args = arguments(__doc__, calls=4, repeats=5)
    target = prepared_target(args)
    print(json.dumps(machine_info()), flush=True)
    costs = {(m, k): [] for m in ("bracketed", "blocks") for k in args.k}
    for i in range(args.calls):
        for k in args.k:
            order = ("bracketed", "blocks") if i % 2 == 0 else ("blocks", "bracketed")
            for m in order:
                cost = verify_cost(target, k, repeats=args.repeats) if m == "bracketed" else blocks(target, k, args.repeats)
                costs[m, k].append(cost)
    print(f"{'method':<10} {'k':>2} {'mean':>6} {'spread':>6}  costs")
    for (m, k), v in costs.items():
        print(f"{m:<10} {k:>2} {statistics.mean(v):>6.3f} {max(v) - min(v):>6.3f}  "
              + " ".join(f"{x:.3f}" for x in v), flush=True)


if __name__ == "__main__":
    main()
