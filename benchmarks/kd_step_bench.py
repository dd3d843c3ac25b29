"""One online KD step on stored target scores, two ways: ``--compare layout`` (the default),
the dense (n, vocab) logits against the compact ones a sub-vocabulary draft needs
(`teacher.stored_logits` with ``slot``); ``--compare dtype``, the compact step in float32
against the same step under bfloat16 autocast (the draft's weights and AdamW stay float32).

Times whole training steps (the batch, the loss, backward and AdamW), the two ways
interleaved step by step after a warm-up, on the cpu study's stored scores at tau 1 and a
copy of its no-KD draft, and prints the median step time of each and their ratio. Run it on
an otherwise idle machine, after the cpu study has made its scores:

    .venv/bin/python benchmarks/kd_step_bench.py [--steps 12] [--threads 2] [--compare dtype]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time

import torch

from tcsd_utils import distill as D
from tcsd_utils.batching import pad_id
from tcsd_utils.distill import load_draft
from tcsd_utils.study import Study
from tcsd_utils.teacher import load_scores
from tcsd_utils.timing import machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps of each kind")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compare", choices=("layout", "dtype"), default="layout")
    parser.add_argument("--run", default="cpu", help="the cpu study's run whose scores and no-KD draft it reads "
                                                     "(cpu, cpu-seed1, ...)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    study = Study(args.run)
    scores = study.sample_path(1.0)  # the teacher samples at tau 1, their scores recorded while sampling
    if not (scores / "scores.safetensors").is_file():
        parser.error(f"no stored scores at {scores}: run the cpu study (or its notebook 02) first")
    data = load_scores(scores)
    cfg = study.settings.online
    start = load_draft(study.draft_dir("nokd"), study.target.device)  # as the run made it
    pad, eos = pad_id(study.tokenizer), study.tokenizer.eos_token_id
    arms = {}
    names = ("dense", "compact") if args.compare == "layout" else ("float32", "bfloat16 autocast")
    for name in names:
        draft = copy.deepcopy(start).float().train()
        params, opt = D._optimiser(draft, cfg)
        kept, slot = D._head_slots(draft, draft.device)
        arms[name] = (draft, params, opt, kept, slot)
    times = {name: [] for name in arms}
    print(json.dumps(machine_info()), flush=True)
    for step in range(2 + args.steps):  # two warm-up steps of each
        for name, (draft, params, opt, kept, slot) in arms.items():
            rng = random.Random(step)
            t0 = time.perf_counter()
            pairs, t_logits, compact = D._batch(cfg, rng, draft, None, data, None, None, pad, eos,
                                                None if name == "dense" else slot)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bfloat16 autocast"):
                loss, _ = D._loss(cfg, draft, None, pairs, t_logits, pad, kept, slot, compact)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, D.MAX_GRAD_NORM)
            opt.step()
            if step >= 2:
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name}: median {med[name]:.3f} s per step (min {min(t):.3f}, max {max(t):.3f}, {len(t)} steps)")
    print(f"{names[1]} / {names[0]}: {med[names[1]] / med[names[0]]:.2f}")


if __name__ == "__main__":
    main()
