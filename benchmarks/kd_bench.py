"""Benchmark of the distillation stages on the embedded pair (issue: KD at a temperature).

Prints, for one KD temperature: teacher-data throughput (tokens/s at batch 32), the wall
time of no-KD pretraining, offline KD and online KD, the peak memory of the process, the
draft's size and cost ratio c, and the expected acceptance rate alpha of the no-KD, offline
and online drafts on held-out instruction prompts at the matching decoding temperature.
Everything is computed from scratch in a fresh folder (default: outputs/bench-kd/), so the
times are real; run it on an otherwise idle machine.

    .venv/bin/python benchmarks/kd_bench.py --tau 0 [--profile cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import torch

from tcsd_utils.files import repo_root
from tcsd_utils.study import Study
from tcsd_utils.batching import pad_id
from tcsd_utils.bench import peak_memory_gb
from tcsd_utils.evaluate import cost_ratio, expected_alpha


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tau", type=float, default=0.0, help="KD and decoding temperature")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--root", default=None, help="outputs folder (default: outputs/bench-kd)")
    parser.add_argument("--keep", action="store_true", help="reuse what an earlier run left")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()


    root = args.root or str(repo_root() / "outputs" / "bench-kd")
    study = Study(args.profile, root=root)
    if not args.keep:
        shutil.rmtree(study.out, ignore_errors=True)
        study.out.mkdir(parents=True)
    res = {"profile": args.profile, "tau": args.tau, "threads": torch.get_num_threads()}
    t = time.perf_counter()
    study.target
    res["load_target_s"] = time.perf_counter() - t

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        res[name] = time.perf_counter() - t0
        print(f"{name}: {res[name]:.1f}", flush=True)
        return out

    teacher = timed("teacher_s", lambda: study.samples(args.tau, "train"))
    res["teacher_tokens"] = sum(len(a) for a in teacher["answer_ids"])
    res["teacher_tokens_per_s"] = res["teacher_tokens"] / res["teacher_s"]
    held_out = timed("eval_samples_s", lambda: study.samples(args.tau, "test"))
    nokd = timed("nokd_train_s", study.nokd_draft)
    offline = timed("offline_kd_s", lambda: study.kd_draft("offline", args.tau))
    online = timed("online_kd_s", lambda: study.kd_draft("online", args.tau))
    res["draft_params_m"] = sum(p.numel() for p in nokd.parameters()) / 1e6
    dt = study.target.dtype
    res.update(cost_ratio(study.target, nokd.to(dt)))
    pad = pad_id(study.tokenizer)
    for name, draft in [("nokd", nokd), ("offline", offline), ("online", online)]:
        res[f"alpha_{name}"] = expected_alpha(study.target, draft.to(dt), held_out, args.tau, pad=pad)
    res["peak_rss_gb"] = peak_memory_gb()
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
