"""The papermill runner: the study's notebooks, executed in order, each once per source and settings.

The study re-measures the claims of Ouyang et al. 2024 (arXiv 2410.10141) by executing
the numbered notebooks in order with papermill. A profile is the one config a run
composes (STYLE.md item 5): each notebook owns its defaults in its ``parameters`` cell
(those defaults are the smoke profile, which nbval re-executes), and a profile overrides
some of them.

Profiles and their settings: `tcsd_utils.profiles`; the ``tcsd`` command: `tcsd_utils.cli`.

Every run writes under ``outputs/<profile>/``: executed notebooks in ``notebooks/`` and
figures in ``figures/``. Files are written atomically (``atomic_path``) so a killed run
never leaves a half-written file that a later run trusts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm

from .files import TEXT_PROGRESS, artifacts, atomic_path, cached, output_dir, repo_root, write_json
from .plan import check
# PROFILES: what papermill passes to the notebooks; SETTINGS: each profile's cell timeout
from .profiles import PROFILES, SETTINGS, run_name
from .render import PNG_ENV, png_available

__all__ = ["NOTEBOOKS", "run_notebooks", "report_is_current", "CellError"]

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


@contextlib.contextmanager
def _kernel_config():
    """The kernel managers' config for a run: each notebook's kernel talks over Unix sockets
    in a private temporary folder where the OS has them. Over TCP, the default, ipykernel 7.4
    and later warn in every notebook that the kernel's traffic is not encrypted, which would
    put six warnings in every run. Elsewhere (or under a temporary folder whose path leaves
    no room in a socket's name) the kernels use TCP as before."""
    from traitlets.config import Config  # deferred, with jupyter's other imports

    config = Config()
    if os.name != "posix":
        yield config
        return
    with tempfile.TemporaryDirectory(prefix="tcsd-kernel-") as folder:
        if len(folder) <= 80:  # a socket's path holds at most 107 bytes on Linux, 103 on macOS
            config.KernelManager.transport = "ipc"
            config.KernelManager.ip = os.path.join(folder, "k")  # sockets k-1, k-2, ...
        yield config


def _execute(names, src, out, params, profile, kernel_name, force, cell_timeout: int | None = None) -> list[Path]:
    """Run each notebook unless its stamp (source and parameters) says it already ran. Each
    cell may run at most ``cell_timeout`` seconds (None: no bound); a cell that fails or runs
    past it raises `CellError`, after the partly executed notebook is kept as
    ``<name>.failed.ipynb`` beside the others."""
    done = []
    with _kernel_config() as kernel_config:
        for i, name in enumerate(names, 1):
            target, stamp_path = out / f"{name}.ipynb", out / f"{name}.json"
            stamp = {"source_sha256": hashlib.sha256((src / f"{name}.ipynb").read_bytes()).hexdigest(),
                     "parameters": params}
            if not force and cached(stamp_path, stamp, artifact=target) is not None:
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
                                        execution_timeout=cell_timeout, config=kernel_config)
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


def report_is_current(out: Path) -> bool:
    """True when ``out/report.md`` was written after everything it is written from: the
    results table and each JSON under ``eval/`` (cells, cost, machine). Notebook 05 writes
    the report right after the table, so after a run that executed it, this holds."""
    report, table = out / "report.md", out / "results.parquet"
    if not report.is_file() or not table.is_file():
        return False
    written = report.stat().st_mtime_ns
    return all(p.stat().st_mtime_ns <= written for p in [table, *artifacts(out / "eval", "**/*.json")])


def run_notebooks(profile: str = "cpu", only: list[str] | None = None, root=None,
                  kernel_name: str = "python3", force: bool = False, seed: int | None = None,
                  cell_timeout: int | None = None) -> list[Path]:
    """Execute the notebooks in order with papermill into ``outputs/<run>/notebooks/``; make
    sure ``outputs/<run>/report.md`` is written from the current results. ``<run>`` is the
    profile, or ``<profile>-seed<S>`` with ``seed`` (prompt split, sampling, training and
    timing seeds).

    The report has one writer per run: notebook 05, which ends with the claims table, writes
    it; ``tcsd study`` writes it after this returns only when it is missing or older than the
    results (`report_is_current`; a run without notebook 05, such as ``--only 03``).

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
    return done

