"""The ``tcsd`` command: ``tcsd study``, ``tcsd bench``, ``tcsd compare``, ``tcsd profiles``.

``tcsd study`` checks the profile (`tcsd_utils.plan`), runs the notebooks (`tcsd_utils.runs`)
and makes sure report.md is current (`tcsd_utils.report`); ``--dry-run`` prints the plan
only; ``--ray [ADDRESS]`` first makes the stages as Ray tasks (`tcsd_utils.cluster`).
``tcsd bench`` times our decoders against transformers (`tcsd_utils.bench`). ``tcsd compare``
sets the claims of several runs side by side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from . import plan
from .batching import pad_id
from .bench import format_table, regressions, run_bench
from .data import encode_prompts, load_prompts
from .files import atomic_path, output_dir, write_json
from .graph import describe, stages
from .models import check_same_tokenizer, load_model, load_pair, load_tokenizer
from .profiles import PROFILES, SETTINGS, run_name, settings
from .report import aligned, compare_runs, markdown, write_report
from .rules import claims, grid_cells
from .runs import CellError, report_is_current, run_notebooks

__all__ = ["main", "compare"]


def compare(dirs: list[str]) -> "pd.DataFrame":  # noqa: F821
    """The claims of several runs side by side (``tcsd compare``): each folder is an
    ``outputs/<run>/`` with a ``results.parquet``; its name gives the profile and seed."""
    results = []
    for d in dirs:
        path = Path(d)
        if not (path / "results.parquet").is_file():
            raise SystemExit(f"no results.parquet in {d}: run `tcsd study` there first")
        try:
            run_settings = settings(path.name)
        except ValueError as e:
            raise SystemExit(f"{d}: {e}") from None
        results.append((path.name, claims(pd.read_parquet(path / "results.parquet"), run_settings)))
    return compare_runs(*results)


def _bench_draft(spec: str, profile: str = "cpu", root=None) -> str:
    """The draft folder for ``tcsd bench --draft SPEC``: its ``model/`` when SPEC is a study's
    draft folder (``outputs/cpu/drafts/online_tau1``), SPEC itself when it is a model folder
    (its ``config.json``); else the study's draft of that name
    (``offline_tau0``, ``online_tau1``, ...) in the profile's outputs, trained now if the study
    has not made it yet (and cached for the study)."""
    if Path(spec).is_dir():
        if (Path(spec) / "model").is_dir():  # a study's draft folder: its KD config.json beside model/
            return str(Path(spec) / "model")
        if (Path(spec) / "config.json").is_file():
            return spec
        raise SystemExit(f"--draft {spec}: a folder, but neither a model (no config.json) nor a study's draft "
                         "(no model/; a draft still training has none yet)")
    if "/" in spec or "\\" in spec:
        raise SystemExit(f"no draft folder at {spec}")
    from .study import Study  # deferred: it imports transformers, which reads HF_HUB_OFFLINE (set in main) once

    study = Study(profile, root)
    try:
        study.draft(spec)
    except ValueError as e:  # an unknown name: the message lists the known ones
        raise SystemExit(f"--draft {spec}: not a folder, and {e}") from None
    return str(study.draft_dir(spec) / "model")


def _aligned_drafts(profile: str, taus: list[float], root=None) -> dict[float, str]:
    """``tcsd bench --draft aligned``: at each tau, the name of the profile's draft distilled
    at that tau, of the paradigm (offline or online) with the higher expected alpha there in
    the study's results (`report.aligned`); online KD where the study has not measured it yet
    (the paper's F3). A tau the profile distils no draft at is refused before any work."""
    kd_taus = SETTINGS[profile].kd_taus
    missing = [t for t in taus if t not in kd_taus]
    if missing:
        raise SystemExit(f"--draft aligned: the {profile} profile distils no draft at tau "
                         f"{', '.join(f'{t:g}' for t in missing)} (its KD temperatures: "
                         f"{', '.join(f'{t:g}' for t in kd_taus)}); pass --taus among those, or --draft NAME")
    results = output_dir(profile, root) / "results.parquet"
    table = grid_cells(pd.read_parquet(results)) if results.is_file() else None
    names = {}
    for tau in taus:
        best = aligned(table, tau) if table is not None else None
        names[tau] = str(best["draft"]) if best is not None else f"online_tau{tau:g}"
    return names


def _bench_device(requested: str) -> str | None:
    """The device ``tcsd bench --device`` runs on. ``cuda`` where there is none runs the
    same benchmark on the CPU and prints what was skipped and why, so the CUDA path's
    command runs end to end in CPU-only CI."""
    if requested == "auto":
        return None  # models.default_device: $TCSD_DEVICE, else CUDA if present, else CPU
    if requested == "cuda" and not torch.cuda.is_available():
        why = (f"this torch is a CPU build ({torch.__version__})" if torch.version.cuda is None
               else "torch.cuda.is_available() is False (no GPU or no driver)")
        print(f"--device cuda: no CUDA device: {why}. Running the same benchmark on the CPU; skipped: "
              "CUDA timing (synchronised clocks) and the kernel choice for CUDA.", flush=True)
        return "cpu"
    return requested


def _bench(args) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = _bench_device(args.device)
    names = (_aligned_drafts(args.profile, args.taus) if args.draft == "aligned"
             else {tau: args.draft for tau in args.taus})
    folders = {tau: _bench_draft(name, args.profile) for tau, name in names.items()}
    first = folders[args.taus[0]]
    pair = load_pair(args.target, first, device=device)
    models = {first: pair.draft}
    for folder in folders.values():
        if folder not in models:
            models[folder] = load_model(folder, pair.target.device, pair.target.dtype)
            check_same_tokenizer(pair.tokenizer, load_tokenizer(folder), args.target, folder, pair.target,
                                 models[folder])
    # held-out prompts of the set the profile's drafts were distilled on (math for cpu and smoke)
    prompts = encode_prompts(pair.tokenizer, load_prompts(SETTINGS[args.profile].train_set, args.prompts, 0,
                                                          split="test"))
    result = run_bench(pair.target, {tau: models[f] for tau, f in folders.items()}, prompts, args.taus, args.k,
                       args.max_new_tokens, args.repeats, pad=pad_id(pair.tokenizer), fast=args.runner == "fast",
                       draft_tau=args.draft_tau)
    result.update(target=args.target, draft=first if len(models) == 1 else {f"{t:g}": n for t, n in names.items()},
                  date=time.strftime("%Y-%m-%d"))
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    slow = regressions(result)
    if slow:  # whatever machine this is, the fast path must not lose to generate()
        print("REGRESSION: " + "; ".join(slow) + f". Kernels chosen: {result['kernels']}; force another with "
              "TCSD_KERNEL=linear|mv|matmul, or delete ~/.cache/tcsd/kernels.json to measure again.",
              file=sys.stderr)
        return 1
    return 0


def _dry_run(args) -> int:
    """``tcsd study --dry-run``: the checks and the plan (`plan`), nothing run."""
    if args.gpu and not args.dry_run:
        raise SystemExit("--gpu plans a run elsewhere: use it with --dry-run")
    run = run_name(args.profile, args.seed)
    try:
        checked = plan.check(run, gpu=args.gpu, dry_run=True)
    except (plan.ProfileError, ValueError) as err:
        print(f"study ({run}) refused: {err}", file=sys.stderr, flush=True)
        return 2
    s = checked.settings
    if args.gpu:
        costs = plan.gpu_costs(s, args.gpu)
    elif s.from_hub and not any(what.startswith("target") and status == "ok" for what, status, _ in checked.checks):
        costs = None
    else:
        print("measuring this machine's costs (a few seconds) ...", flush=True)
        costs = plan.measure_costs(s)
    if costs is not None:
        plan.estimate(checked, costs)
    print(plan.format_plan(checked))
    print(describe(stages(s)) + "\n  (what `tcsd study --ray` sends to Ray, level by level; the notebooks then draw and judge)")
    if costs is None:
        print("time: skipped (the target is not on this machine; plan for a GPU with --gpu H100 or H200)")
    return 0


def _ray_stages(args) -> int:
    """``tcsd study --ray``: the profile checked, then its stages made on Ray (`cluster`)."""
    from .cluster import run_on_ray  # deferred: it imports the study (transformers) and Ray

    run = run_name(args.profile, args.seed)
    try:
        plan.check(run)
    except (plan.ProfileError, ValueError) as err:
        print(f"study ({run}) refused before it started: {err}", file=sys.stderr, flush=True)
        return 2
    where = "a Ray started on this machine" if args.ray == "local" else f"the Ray cluster at {args.ray}"
    print(f"making the stages of {run} on {where} ...", flush=True)
    try:
        made = run_on_ray(run, address=None if args.ray == "local" else args.ray)
    except RuntimeError as err:
        print(f"study ({run}) stopped on Ray: {err}", file=sys.stderr, flush=True)
        return 1
    write_json(made, output_dir(run) / "ray.json")
    print(f"stages on Ray: {len(made['stages'])} made, {len(made['skipped'])} already there, in {made['seconds']:.0f} s "
          f"({made['resources']['nodes']} nodes, {made['resources']['cpus']} CPUs, {made['resources']['gpus']} GPUs); "
          "the notebooks now draw and judge", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``tcsd`` command."""
    parser = argparse.ArgumentParser(prog="tcsd", description="tcsd: the study companion of Ouyang et al. 2024 (arXiv 2410.10141)")
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("study", help="execute the notebooks into outputs/<profile>/")
    study.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    study.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 01 02")
    study.add_argument("--force", action="store_true", help="re-execute notebooks that already ran")
    study.add_argument("--seed", type=int, default=None,
                       help="prompt split, sampling, training and timing seed; writes to outputs/<profile>-seed<S>/")
    study.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                       help="stop a notebook cell that runs longer than this (default: the profile's cell_timeout)")
    study.add_argument("--dry-run", action="store_true",
                       help="check the profile against the data, models, memory and disk, print the plan with "
                            "an estimated time, and stop")
    study.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="first make the stages as Ray tasks: alone, on a Ray started on this machine; "
                            "'auto' or host:port joins a running cluster (pip install -e '.[ray]')")
    study.add_argument("--gpu", default=None, metavar="NAME",
                       help="with --dry-run: plan for this GPU (H100, H200) from its datasheet, not for this machine")
    cmp = sub.add_parser("compare", help="the claims of two or more runs side by side")
    cmp.add_argument("dirs", nargs="+", help="outputs/<run>/ folders, e.g. outputs/cpu outputs/cpu-seed1")
    cmp.add_argument("--markdown", default=None, help="also write the table here")
    sub.add_parser("profiles", help="print the profiles and their parameters")
    b = sub.add_parser("bench", help="tokens/s of our decoders vs transformers (plain and assisted)")
    b.add_argument("--draft", default="aligned",
                   help="a draft folder; the name of one of the study's drafts (trained first if missing); or "
                        "'aligned': at each tau, the draft distilled at that tau (the better paradigm in the "
                        "study's results, else online KD)")
    b.add_argument("--profile", default="cpu", choices=sorted(PROFILES), help="whose drafts --draft names")
    b.add_argument("--target", default="smollm2")
    b.add_argument("--taus", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    b.add_argument("--k", type=lambda v: v if v == "auto" else int(v), default=4,
                   help="draft tokens per step, or 'auto': per temperature, the k that maximises "
                        "the predicted speedup from a pilot pass's alpha, c and each k's measured "
                        "verification cost")
    b.add_argument("--draft-tau", type=float, default=None,
                   help="the temperature our speculative decoder's draft samples at (default: each --taus value); "
                        "the output stays exact")
    b.add_argument("--prompts", type=int, default=8,
                   help="held-out prompts of the set the profile's drafts were distilled on")
    b.add_argument("--max-new-tokens", type=int, default=64)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CUDA when there is one; cuda without one runs on the CPU and says what it skipped")
    b.add_argument("--runner", choices=["fast", "transformers"], default="fast",
                   help="the forward our decoders use: tcsd's Llama fast path, or transformers' model call")
    b.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    if args.command == "profiles":
        print(json.dumps(PROFILES, indent=2))
        return 0
    if args.command == "compare":
        if len(args.dirs) < 2:
            raise SystemExit("tcsd compare needs two or more outputs/<run>/ folders")
        table = compare(args.dirs)
        text = markdown(table)
        print(text)
        same = table["same decided verdict"].eq("yes").sum()
        print(f"\n{same} of {len(table)} claims: every run that decided gave the same verdict")
        if args.markdown:
            with atomic_path(args.markdown) as tmp:
                Path(tmp).write_text(text + "\n")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "0" if SETTINGS[args.profile].from_hub else "1")
    if args.dry_run or args.gpu:
        return _dry_run(args)
    logging.basicConfig(format="    %(message)s")  # the kernels' printed lines and progress bars
    logging.getLogger("papermill").setLevel(logging.INFO)
    t0 = time.perf_counter()
    if args.ray:
        code = _ray_stages(args)
        if code:
            return code
    try:
        paths = run_notebooks(args.profile, args.only, force=args.force, seed=args.seed,
                              cell_timeout=args.cell_timeout)
    except CellError as err:
        print(f"study ({args.profile}) stopped: {err}", file=sys.stderr, flush=True)
        return 1
    except plan.ProfileError as err:
        print(f"study ({args.profile}) refused before it started: {err}", file=sys.stderr, flush=True)
        return 2
    out = output_dir(run_name(args.profile, args.seed))
    if (out / "eval").is_dir():  # report.md has one writer per run, notebook 05; a run without it writes it here
        if report_is_current(out):
            print(f"report: {out / 'report.md'} (up to date with the results)", flush=True)
        else:
            from .study import Study  # deferred: it imports transformers, which reads HF_HUB_OFFLINE (set in main) once

            print(f"report: {write_report(Study(out.name))}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2  # KiB on Linux
    print(f"study ({args.profile}) finished in {time.perf_counter() - t0:.0f} s: "
          f"{len(paths)} notebooks, outputs in {paths[0].parent.parent if paths else output_dir(args.profile)}; "
          f"peak memory of a notebook kernel {peak:.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
