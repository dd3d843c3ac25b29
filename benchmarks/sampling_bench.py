"""Benchmark: teacher samples by dtype and batch size (`Settings.teacher_batch`, `runners.choose_sample_dtype`).

Draws the same profile's teacher samples (train prompts, top logits recorded as the study does)
with the target in float32 and in bfloat16, at each batch size, in interleaved rounds after a
warm-up round, and prints each arm's median seconds and its ratio to the first arm, with what
`runners.choose_sample_dtype` and `runners.choose_dtype` choose on this machine. Run it on an
otherwise idle machine.

    .venv/bin/python benchmarks/sampling_bench.py [--prompts 128] [--batches 32 64 128] [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tcsd_utils.runners import choose_dtype, choose_sample_dtype
from tcsd_utils.study import Study
from tcsd_utils.teacher import teacher_data
from tcsd_utils.timing import machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--prompts", type=int, default=128, help="train prompts sampled per arm and round")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds, after one warm-up round")
    parser.add_argument("--tau", type=float, default=1.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        study = Study(args.profile, root=root)
        s = study.settings
        records, ids = study.prompts("train", n=args.prompts)
        names = [r["id"] for r in records]
        models = {d: copy.deepcopy(study.target).to(getattr(torch, d)) for d in args.dtypes}
        arms = [(d, b) for d in args.dtypes for b in args.batches]
        seconds = {f"{d} x {b}": [] for d, b in arms}
        tokens = {}
        for r in range(args.rounds + 1):  # round 0 warms up
            for d, b in arms:
                t0 = time.perf_counter()
                data = teacher_data(models[d], study.tokenizer, ids, names, args.tau, Path(root) / f"r{r}_{d}_{b}",
                                    s.new_tokens, b, s.seed, 1, s.online_top_k)
                dt = time.perf_counter() - t0
                tokens[f"{d} x {b}"] = sum(len(a) for a in data["answer_ids"])
                if r:
                    seconds[f"{d} x {b}"].append(round(dt, 2))
    med = {k: statistics.median(v) for k, v in seconds.items()}
    first = next(iter(med))
    result = {"machine": machine_info(), "profile": args.profile, "prompts": args.prompts, "tau": args.tau,
              "new_tokens": s.new_tokens, "rounds": args.rounds, "seconds": seconds, "median_s": med,
              f"over {first}": {k: round(v / med[first], 3) for k, v in med.items()}, "answer_tokens": tokens,
              "choose_sample_dtype": str(choose_sample_dtype()), "choose_dtype": str(choose_dtype())}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
