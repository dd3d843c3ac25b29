"""How often each claim's rule decides on tables with no effect at all, and on tables with it.

The audit behind the verdict issue fed tables of pure noise to the old rules: F2 said
"partly" 64% of the time. This script repeats that test for the current rules
(`tcsd_utils.report`), with the synthetic tables of tests/test_report.py:

- null: every cell the same value plus normal noise (se 0.02), each with its 95% interval;
- rising: no effect except that gamma out of domain only rises (no falling arm, F4);
- effect: the paper's effects plus the same noise.

Prints, per rule, the share of draws that came out agree / partly / disagree / inconclusive.
A rule passes when agree + partly stays at or under 5% on the null tables.

    .venv/bin/python benchmarks/null_rules.py --draws 2000
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tcsd_utils.rules import CHECKS, INCONCLUSIVE, Estimates  # noqa: E402
from tests.test_report import CLAIMS, S, flat, make_table, paper_like, u_curve  # noqa: E402

SCENARIOS = {
    "null": dict(alpha=flat, gamma=lambda m, kd, tau: 1.0, ood_gamma=lambda tau: 1.0),
    "rising": dict(alpha=flat, gamma=lambda m, kd, tau: 1.0, ood_gamma=lambda tau: 0.9 + 0.1 * tau),
    "effect": dict(alpha=paper_like, ood_gamma=u_curve, mix_gain=0.15),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--n-boot", type=int, default=300)
    ap.add_argument("--se", type=float, default=0.02)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    failed = False
    t0 = time.perf_counter()
    for name, kw in SCENARIOS.items():
        counts = {c: collections.Counter() for c in CLAIMS}
        for _ in range(args.draws):
            table = make_table(se=args.se, rng=rng, **kw)
            est = Estimates(table, args.n_boot, seed=int(rng.integers(1 << 30)))
            for c in CLAIMS:
                counts[c][CHECKS[c](table, S, est)["verdict"]] += 1
        print(f"\n{name} tables, {args.draws} draws, noise se {args.se}:")
        print(f"{'rule':<12}{'agree':>8}{'partly':>8}{'disagree':>10}{'inconclusive':>14}")
        for c in CLAIMS:
            n = counts[c]
            share = {v: 100 * n[v] / args.draws for v in ("agree", "partly", "disagree", INCONCLUSIVE)}
            print(f"{c:<12}{share['agree']:>7.1f}%{share['partly']:>7.1f}%{share['disagree']:>9.1f}%"
                  f"{share[INCONCLUSIVE]:>13.1f}%")
            if name in ("null", "rising") and share["agree"] + share["partly"] > 5 and (name == "null" or c == "F4"):
                failed = True
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
