"""The study: profiles, where outputs go, the papermill runner and the ``tcsd`` command.

The study re-measures the claims of Ouyang et al. 2024 (arXiv 2410.10141) by executing
the numbered notebooks in order with papermill. A profile is the one config a run
composes (STYLE.md item 5): each notebook owns its defaults in its ``parameters`` cell
(those defaults are the smoke profile, which nbval re-executes), and a profile overrides
some of them.

Profiles and their settings: `tcsd_utils.profiles`.

Every run writes under ``outputs/<profile>/``: executed notebooks in ``notebooks/`` and
figures in ``figures/``. Files are written atomically (``atomic_path``) so a killed run
never leaves a half-written file that a later run trusts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# re-exported: the notebooks call study.figure_dir and study.write_json
from .files import TEXT_PROGRESS, atomic_path, figure_dir, output_dir, progress, repo_root, write_json  # noqa: F401
# PROFILES: what papermill passes to the notebooks; SETTINGS: whether a profile's models come from the Hub
from .profiles import PROFILES, SETTINGS, run_name, split_run_name
from .plan import ProfileError, check
from .render import PNG_ENV, png_available

__all__ = ["PROFILES", "NOTEBOOKS", "repo_root", "output_dir", "figure_dir", "atomic_path",
           "write_json", "progress", "run_notebooks", "CellError", "compare", "main"]

NOTEBOOKS = ["01_temperature_and_distributions", "02_knowledge_distillation", "03_alpha_gamma_grid",
             "04_u_curve", "05_data_mixing_recipe", "06_beyond_the_paper"]


def _parameters(profile: str, seed: int | None = None) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if seed is None:
        return {"PROFILE": profile, **PROFILES[profile]}
    if int(seed) < 0:
        raise ValueError(f"--seed must be 0 or more, got {seed}")
    # the run's folder name carries the seed to every notebook's Study (profiles.split_run_name)
    return {"PROFILE": run_name(profile, seed), **PROFILES[profile], "SEED": int(seed)}


class CellError(RuntimeError):
    """A notebook cell failed or ran past the cell timeout; the message says where and what
    it was doing, and how to resume."""


def _where(partial: Path, source_cells: list) -> tuple[int | None, str, str]:
    """From a partly executed notebook: the source notebook's index of the cell that was
    running (papermill's injected parameters cell not counted), its first line, and the last
    line it printed."""
    import nbformat

    try:
        nb = nbformat.read(str(partial), as_version=4)
    except Exception:
        return None, "", ""
    running = None
    for cell in nb.cells:  # the last cell that papermill started
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            running = cell
    if running is None:
        return None, "", ""
    source = running.get("source", "")
    index = next((i for i, c in enumerate(source_cells) if c.get("source", "") == source), None)
    printed = [o.get("text", "") for o in running.get("outputs", []) if o.get("output_type") == "stream"]
    lines = [ln.strip() for text in printed for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return index, first, lines[-1] if lines else ""


def _explain(name: str, err: Exception, src_path: Path, timeout: int, kept: Path | None) -> str:
    """The message of a failed notebook: which notebook and cell, what the cell was doing,
    where the partly executed copy is, and how to go on."""
    import nbformat

    cells = nbformat.read(str(src_path), as_version=4).cells
    index, first, last = _where(kept, cells) if kept is not None and kept.is_file() else (None, "", "")
    if isinstance(err, TimeoutError):
        what = f"ran past the cell timeout of {timeout} s (the profile's cell_timeout; --cell-timeout SECONDS changes it)"
    else:
        message = str(getattr(err, "evalue", err)).strip()
        what = f"failed: {getattr(err, 'ename', type(err).__name__)}: {message.splitlines()[0] if message else ''}"
    cell = f"cell {index} (counting from 0, as in the .ipynb)" if index is not None else "a cell"
    lines = [f"notebook {name}, {cell}, {what}."]
    if first:
        lines.append(f"  The cell begins: {first}")
    if last:
        lines.append(f"  Its last printed line: {last}")
    if kept is not None:
        lines.append(f"  The partly executed notebook: {kept}")
    lines.append("  Fix the cause and run the same command again: finished notebooks and stages are kept, "
                 "and the study resumes in this notebook.")
    return "\n".join(lines)


def _execute(names, src, out, params, profile, kernel_name, force, cell_timeout: int | None = None) -> list[Path]:
    """Run each notebook unless its stamp (source and parameters) says it already ran. Each
    cell may run at most ``cell_timeout`` seconds (None: no bound); a cell that fails or runs
    past it raises `CellError`, after the partly executed notebook is kept as
    ``<name>.failed.ipynb`` beside the others."""
    import hashlib

    import papermill as pm

    done = []
    for i, name in enumerate(names, 1):
        target, stamp_path = out / f"{name}.ipynb", out / f"{name}.json"
        stamp = {"source_sha256": hashlib.sha256((src / f"{name}.ipynb").read_bytes()).hexdigest(),
                 "parameters": params}
        if not force and target.is_file() and stamp_path.is_file() and \
                json.loads(stamp_path.read_text()) == json.loads(json.dumps(stamp)):
            print(f"[{i}/{len(names)}] {name}: already executed with these parameters, skipped", flush=True)
            done.append(target)
            continue
        print(f"[{i}/{len(names)}] {name} (profile {profile})", flush=True)
        t0 = time.perf_counter()
        failed = out / f"{name}.failed.ipynb"
        with atomic_path(target) as tmp:
            try:
                pm.execute_notebook(str(src / f"{name}.ipynb"), str(tmp), parameters=params,
                                    kernel_name=kernel_name, cwd=str(src), progress_bar=False,
                                    log_output=True, request_save_on_cell_execute=True,  # a partial copy to explain a failure
                                    execution_timeout=cell_timeout)
            except Exception as err:
                kept = None
                if Path(tmp).is_file():
                    os.replace(tmp, failed)
                    kept = failed
                raise CellError(_explain(name, err, src / f"{name}.ipynb", cell_timeout, kept)) from err
        failed.unlink(missing_ok=True)
        write_json(stamp, stamp_path)
        print(f"    done in {time.perf_counter() - t0:.0f} s -> {target}", flush=True)
        done.append(target)
    return done


def _report_is_current(out: Path) -> bool:
    """True when ``out/report.md`` was written after everything it is written from: the
    results table and each JSON under ``eval/`` (cells, cost, machine). Notebook 05 writes
    the report right after the table, so after a run that executed it, this holds."""
    report, table = out / "report.md", out / "results.parquet"
    if not report.is_file() or not table.is_file():
        return False
    written = report.stat().st_mtime_ns
    return all(p.stat().st_mtime_ns <= written for p in [table, *(out / "eval").rglob("*.json")])


def run_notebooks(profile: str = "cpu", only: list[str] | None = None, root=None,
                  kernel_name: str = "python3", force: bool = False, seed: int | None = None,
                  cell_timeout: int | None = None) -> list[Path]:
    """Execute the notebooks in order with papermill into ``outputs/<run>/notebooks/``; make
    sure ``outputs/<run>/report.md`` is written from the current results. ``<run>`` is the
    profile, or ``<profile>-seed<S>`` with ``seed`` (prompt split, sampling, training and
    timing seeds).

    The report has one writer per run: notebook 05, which ends with the claims table, writes
    it. The runner writes it only when the report is missing or older than the results
    (a run without notebook 05, such as ``--only 03``); otherwise it prints its path.

    A notebook already executed with the same source and parameters is skipped (its stamp
    ``notebooks/<name>.json`` records both), so a killed study resumes at the notebook it
    stopped in; inside that notebook the cached stages skip what was finished.

    No cell runs forever: each may take at most ``cell_timeout`` seconds (the profile's
    `Settings.cell_timeout` by default), and one that fails or runs past it stops the run
    with a `CellError` naming the notebook, the cell and what it was doing. Whether PNG
    figures can be made is asked once, before the first notebook: without a browser the run
    warns once and every notebook writes HTML only.

    Args:
        profile: a key of `PROFILES`.
        only: notebook name prefixes to run (for example ``["01"]``); all when ``None``.
        root: folder for ``outputs/`` (default: the project's).
        kernel_name: Jupyter kernel to run them in.
        force: execute even the notebooks whose stamps match.
        seed: a seed other than the profile's 0, in its own output folder.
        cell_timeout: seconds one cell may run (default: the profile's ``cell_timeout``).

    Returns:
        Paths of the executed notebooks.

    Raises:
        plan.ProfileError: the profile cannot run here (checked before the first notebook).
        CellError: a cell failed or ran past ``cell_timeout``.
    """
    params = _parameters(profile, seed)
    run = params["PROFILE"]
    check(run, root=root)  # ProfileError before any notebook: data, models, memory, disk (`plan`)
    out = output_dir(run, root) / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in NOTEBOOKS if not only or any(n.startswith(o) for o in only)]
    if not names:
        raise ValueError(f"no notebook matches {only}; notebooks are {NOTEBOOKS}")
    if cell_timeout is None:
        cell_timeout = SETTINGS[profile].cell_timeout
    if isinstance(cell_timeout, bool) or not isinstance(cell_timeout, int) or cell_timeout < 1:
        raise ValueError(f"cell_timeout must be a whole number of seconds, 1 or more, got {cell_timeout!r}")
    src = repo_root() / "notebooks"
    before = {key: os.environ.get(key) for key in (TEXT_PROGRESS, PNG_ENV)}
    os.environ[TEXT_PROGRESS] = "1"  # the kernels inherit it: training bars reach the log
    if not png_available():  # warned once, here; the kernels inherit TCSD_PNG=0 and write HTML only
        os.environ[PNG_ENV] = "0"
    try:
        done = _execute(names, src, out, params, profile, kernel_name, force, cell_timeout)
    finally:  # leave the caller's environment as it was
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    write_json({"profile": profile, "parameters": params, "notebooks": [str(p) for p in done]},
               output_dir(run, root) / "study.json")
    if (output_dir(run, root) / "eval").is_dir():
        if _report_is_current(output_dir(run, root)):  # notebook 05 wrote it
            print(f"report: {output_dir(run, root) / 'report.md'} (up to date with the results)", flush=True)
        else:
            from .report import write_report
            from .stages import Study

            print(f"report: {write_report(Study(run, root))}", flush=True)
    return done


def compare(dirs: list[str]) -> "pd.DataFrame":  # noqa: F821
    """The claims of several runs side by side (``tcsd compare``): each folder is an
    ``outputs/<run>/`` with a ``results.parquet``; its name gives the profile and seed."""
    import pandas as pd

    from .report import claims, compare_runs
    from .stages import Study

    results = []
    for d in dirs:
        path = Path(d)
        if not (path / "results.parquet").is_file():
            raise SystemExit(f"no results.parquet in {d}: run `tcsd study` there first")
        try:
            split_run_name(path.name)
        except ValueError as e:
            raise SystemExit(f"{d}: {e}") from None
        study = Study(path.name, root=path.parent)
        results.append((path.name, claims(pd.read_parquet(path / "results.parquet"), study.settings)))
    return compare_runs(*results)


def _bench_draft(spec: str, profile: str = "cpu", root=None) -> str:
    """The draft folder for ``tcsd bench --draft SPEC``: SPEC itself when it is a folder, else
    the study's draft of that name (``offline_tau0``, ``online_tau1``, ...) in the profile's
    outputs, trained now if the study has not made it yet (and cached for the study)."""
    if Path(spec).is_dir():
        return spec
    if "/" in spec or "\\" in spec:
        raise SystemExit(f"no draft folder at {spec}")
    from .stages import Study

    study = Study(profile, root)
    try:
        study.draft(spec)
    except ValueError as e:  # an unknown name: the message lists the known ones
        raise SystemExit(f"--draft {spec}: not a folder, and {e}") from None
    return str(study.draft_dir(spec) / "model")


def _bench_device(requested: str) -> str | None:
    """The device ``tcsd bench --device`` runs on. ``cuda`` where there is none runs the
    same benchmark on the CPU and prints what was skipped and why, so the CUDA path's
    command runs end to end in CPU-only CI."""
    import torch

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
    from .batching import pad_id
    from .bench import format_table, run_bench
    from .data import encode_prompts, load_prompts
    from .models import load_pair

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = _bench_device(args.device)
    draft = _bench_draft(args.draft, args.profile)
    pair = load_pair(args.target, draft, device=device)
    # held-out prompts of the set the profile's drafts were distilled on (math for cpu and smoke)
    prompts = encode_prompts(pair.tokenizer, load_prompts(SETTINGS[args.profile].train_set, args.prompts, 0,
                                                          split="test"))
    result = run_bench(pair.target, pair.draft, prompts, args.taus, args.k, args.max_new_tokens, args.repeats,
                       pad=pad_id(pair.tokenizer), fast=args.runner == "fast", draft_tau=args.draft_tau)
    result.update(target=args.target, draft=draft, date=time.strftime("%Y-%m-%d"))
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    from .bench import regressions

    slow = regressions(result)
    if slow:  # whatever machine this is, the fast path must not lose to generate()
        print("REGRESSION: " + "; ".join(slow) + f". Kernels chosen: {result['kernels']}; force another with "
              "TCSD_KERNEL=linear|mv|matmul, or delete ~/.cache/tcsd/kernels.json to measure again.",
              file=sys.stderr)
        return 1
    return 0


def _dry_run(args) -> int:
    """``tcsd study --dry-run``: the checks and the plan (`plan`), nothing run."""
    from . import plan

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
    if costs is None:
        print("time: skipped (the target is not on this machine; plan for a GPU with --gpu H100 or H200)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``tcsd`` command."""
    parser = argparse.ArgumentParser(prog="tcsd", description=__doc__.split("\n\n")[0])
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
    study.add_argument("--gpu", default=None, metavar="NAME",
                       help="with --dry-run: plan for this GPU (H100, H200) from its datasheet, not for this machine")
    cmp = sub.add_parser("compare", help="the claims of two or more runs side by side")
    cmp.add_argument("dirs", nargs="+", help="outputs/<run>/ folders, e.g. outputs/cpu outputs/cpu-seed1")
    cmp.add_argument("--markdown", default=None, help="also write the table here")
    sub.add_parser("profiles", help="print the profiles and their parameters")
    b = sub.add_parser("bench", help="tokens/s of our decoders vs transformers (plain and assisted)")
    b.add_argument("--draft", default="offline_tau0",
                   help="a draft folder, or the name of one of the study's drafts (trained first if missing)")
    b.add_argument("--profile", default="cpu", choices=sorted(PROFILES), help="whose drafts --draft names")
    b.add_argument("--target", default="smollm2")
    b.add_argument("--taus", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    b.add_argument("--k", type=lambda v: v if v == "auto" else int(v), default=4,
                   help="draft tokens per step, or 'auto': per temperature, the k that maximises "
                        "Leviathan's predicted speedup from a pilot pass's alpha and c")
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
        from .report import markdown

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
    import logging

    logging.basicConfig(format="    %(message)s")  # the kernels' printed lines and progress bars
    logging.getLogger("papermill").setLevel(logging.INFO)
    t0 = time.perf_counter()
    try:
        paths = run_notebooks(args.profile, args.only, force=args.force, seed=args.seed,
                              cell_timeout=args.cell_timeout)
    except CellError as err:
        print(f"study ({args.profile}) stopped: {err}", file=sys.stderr, flush=True)
        return 1
    except ProfileError as err:
        print(f"study ({args.profile}) refused before it started: {err}", file=sys.stderr, flush=True)
        return 2
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2  # KiB on Linux
    print(f"study ({args.profile}) finished in {time.perf_counter() - t0:.0f} s: "
          f"{len(paths)} notebooks, outputs in {paths[0].parent.parent if paths else output_dir(args.profile)}; "
          f"peak memory of a notebook kernel {peak:.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
