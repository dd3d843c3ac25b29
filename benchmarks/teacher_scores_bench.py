"""Benchmark: the target's top logits recorded while sampling against a scoring forward.

Online KD on stored samples needs the target's top-k logits at every answer position. They
can be recorded while the teacher samples are drawn (`teacher.teacher_data`'s ``top_k``) or
computed afterwards by a forward over the samples (`teacher.target_scores`). This times, on
the profile's target and train prompts, in interleaved rounds after a warm-up round:

- ``sample``: teacher samples alone;
- ``sample+record``: the same samples, the top logits recorded;
- ``score``: the forward over the samples of ``sample``.

and prints the median of each, the saving (``sample + score`` against ``sample+record``),
and how far the recorded logits are from the forward's (the same samples: recording
changes no draw). Run it on an otherwise idle machine.

    .venv/bin/python benchmarks/teacher_scores_bench.py [--prompts 96] [--rounds 3] [--tau 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tcsd_utils.study import Study
from tcsd_utils.teacher import load_scores, target_scores, teacher_data
from tcsd_utils.timing import machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--prompts", type=int, default=96, help="train prompts sampled per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, after one warm-up round")
    parser.add_argument("--tau", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        study = Study(args.profile, root=root)
        s = study.settings
        records, ids = study.prompts("train", n=args.prompts)
        names = [r["id"] for r in records]
        times = {"sample": [], "sample+record": [], "score": []}
        gap = {}

        def sample(folder: Path, top_k):
            return teacher_data(study.target, study.tokenizer, ids, names, args.tau, folder, s.new_tokens,
                                s.teacher_batch, s.seed, 1, top_k)

        for r in range(args.rounds + 1):  # round 0 warms up
            folder = Path(root) / f"round{r}"
            t0 = time.perf_counter()
            plain = sample(folder / "plain", None)
            t1 = time.perf_counter()
            sample(folder / "recorded", args.top_k)
            t2 = time.perf_counter()
            scored = target_scores(study.target, plain, folder / "scored", args.top_k, pad=study.pad_id())
            t3 = time.perf_counter()
            if r:
                times["sample"].append(t1 - t0)
                times["sample+record"].append(t2 - t1)
                times["score"].append(t3 - t2)
            if r == 1:
                recorded = load_scores(folder / "recorded")
                assert recorded.data["answer_ids"] == plain["answer_ids"], "recording changed the samples"
                same = (recorded.top_ids == scored.top_ids).all(1)  # positions whose top k agree, in order
                diff = (recorded.top_logits - scored.top_logits)[same].abs()
                gap = {"positions": int(same.numel()), "same_top_ids_share": round(same.float().mean().item(), 4),
                       "same_top1_share": round((recorded.top_ids[:, 0] == scored.top_ids[:, 0]).float().mean().item(), 4),
                       "max_abs_logit_diff": float(diff.max()), "mean_abs_logit_diff": float(diff.mean())}
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"machine": machine_info(), "profile": args.profile, "prompts": args.prompts, "tau": args.tau,
              "top_k": args.top_k, "new_tokens": s.new_tokens, "teacher_batch": s.teacher_batch,
              "rounds": args.rounds, "seconds": times, "median_s": med,
              "record_over_sample_plus_score": med["sample+record"] / (med["sample"] + med["score"]),
              "record_over_sample": med["sample+record"] / med["sample"], "recorded_against_forward": gap}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
