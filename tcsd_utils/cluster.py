"""The study's stages as Ray tasks: one run spread over the cores and GPUs of a machine or a cluster.

``tcsd study --profile NAME --ray [ADDRESS]`` makes the stages of `graph.stages` here, then
runs the notebooks as always; they find every stage made and only draw and judge. Each stage
is idempotent and written atomically beside its config (`files.atomic_path`), so a retried
stage, or two workers making the same one, leave one whole artifact.

How the stages are placed:
    - a stage is sent once every stage it needs is done; one whose artifacts exist is not sent;
    - teacher samples and drafts run on workers (Ray actors) that keep the target loaded: one
      per GPU, or on CPU one per ``cpus_per_worker`` cores, each with that many torch threads;
    - c and the timing blocks run after them, on timing workers that hold a whole GPU each,
      or on CPU a whole machine each, so that no other stage disturbs a clock;
    - a worker that dies (a lost node, a kill) is restarted and its stage sent again.

Ray is an optional extra (``pip install -e ".[ray]"``); without it nothing here is imported
and the serial path is unchanged. `run_stage` is also what a serial run of one stage means
(the tests compare the two).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .files import output_dir, progress
from .graph import Stage, stages
from .models import default_dtype
from .profiles import settings
from .runners import SAMPLE_DTYPE_ENV, TRAIN_DTYPE_ENV, choose_sample_dtype, choose_train_dtype
from .study import Study

__all__ = ["run_stage", "done", "run_serial", "run_on_ray", "Worker", "MAKE_KINDS", "TIME_KINDS", "RETRIES"]

MAKE_KINDS = ("teacher", "draft")   # run on workers that may share a machine
TIME_KINDS = ("cost", "timing")     # run alone on their GPU or machine: they hold clocks
RETRIES = 2                         # a stage whose worker died is sent again this many times
# what the workers need from the driver's environment (the Hub switch and tcsd's own settings)
_PASSED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "TCSD_DEVICE", "TCSD_KERNEL", "TCSD_TIMING_THREADS")


def run_stage(study: Study, stage: Stage) -> str:
    """Make one stage with ``study`` (skipped inside when its artifact exists with the same
    config, as in a serial run). Returns the stage's key."""
    if stage.kind == "teacher":
        prompt_set, split, tau = stage.args
        study.samples(tau, split, prompt_set)
    elif stage.kind == "draft":
        study.draft(stage.args[0])
    elif stage.kind == "cost":
        study.cost()
    elif stage.kind == "timing":
        prompt_set, tau, names = stage.args
        study.evaluate(list(names), [tau], prompt_set)
    else:
        raise ValueError(f"unknown stage kind {stage.kind!r} in {stage.key}")
    return stage.key


def done(out: Path, stage: Stage) -> bool:
    """Whether every artifact of ``stage`` exists under the run folder ``out``. The driver
    skips those; a stage that is sent still checks its config before it reuses anything."""
    return all((Path(out) / a).exists() for a in stage.artifacts)


def run_serial(study: Study, graph: list[Stage] | None = None) -> list[str]:
    """Make every stage in order in this process: what ``--ray`` does, without Ray."""
    graph = stages(study.settings) if graph is None else graph
    return [run_stage(study, stage) for stage in graph if not done(study.out, stage)]


class Worker:
    """One Ray actor: a `Study` of the run, with the target loaded once for all its stages."""

    def __init__(self, run: str, root: str, overrides: dict, threads: int | None, dtype: str | None = None,
                 train_dtype: str | None = None, sample_dtype: str | None = None):
        if threads:
            import torch  # deferred: imported by Study anyway; here only to set the threads

            torch.set_num_threads(threads)
        if dtype:  # the run's one CPU dtype (`run_on_ray`), not this process's own measurement
            os.environ["TCSD_DTYPE"] = dtype
        if train_dtype:  # and its one training dtype (`runners.choose_train_dtype`)
            os.environ[TRAIN_DTYPE_ENV] = train_dtype
        if sample_dtype:  # and its one dtype for teacher samples (`runners.choose_sample_dtype`)
            os.environ[SAMPLE_DTYPE_ENV] = sample_dtype
        self.study = Study(run, root, **overrides)

    def run(self, stage: Stage) -> tuple[str, str, float]:
        t0 = time.perf_counter()
        run_stage(self.study, stage)
        return stage.key, socket.gethostname(), time.perf_counter() - t0


def _ray():
    try:
        import ray  # deferred: an optional extra
    except ImportError:
        raise SystemExit('--ray needs Ray: pip install -e ".[ray]" (the serial run needs nothing more)') from None
    return ray


def _schedule(ray, graph: list[Stage], workers: list, finished: set, bar, log: dict) -> None:
    """Send each stage of ``graph`` to a free worker once its needs are in ``finished``; wait
    for one to end, repeat. A stage whose worker raised stops the run with its key named."""
    waiting = list(graph)
    free, running = list(workers), {}
    while waiting or running:
        for stage in [st for st in waiting if all(n in finished for n in st.needs)]:
            if not free:
                break
            worker = free.pop()
            running[worker.run.remote(stage)] = (stage, worker)
            waiting.remove(stage)
        if not running:
            missing = sorted({n for st in waiting for n in st.needs} - finished)
            raise RuntimeError(f"stages wait for stages that are not in the graph: {missing}")
        ready, _ = ray.wait(list(running), num_returns=1)
        stage, worker = running.pop(ready[0])
        try:
            key, host, seconds = ray.get(ready[0])
        except Exception as err:  # noqa: BLE001 (Ray wraps the stage's own error)
            raise RuntimeError(f"stage {stage.key} failed: {err}") from err
        finished.add(key)
        log[key] = {"host": host, "seconds": round(seconds, 1)}
        free.append(worker)
        bar.update(1)


def run_on_ray(run: str, address: str | None = None, root=None, cpus_per_worker: int = 1,
               **overrides) -> dict:
    """Make the stages of ``run`` on Ray.

    Args:
        run: a profile, or ``<profile>-seed<S>``.
        address: ``None`` starts a local Ray on this machine; ``"auto"`` or ``host:port``
            joins a running cluster (whose nodes see ``outputs/`` on a shared filesystem and
            have tcsd installed).
        root: the folder holding ``outputs/`` (default: the project's, or ``$TCSD_OUTPUTS``).
        cpus_per_worker: on CPU, cores per worker that makes teacher samples and drafts.
        **overrides: fields of `profiles.Settings` to change for this run (as `Study` takes).

    Returns:
        ``{"stages": {key: {"host", "seconds"}}, "skipped": [...], "seconds": wall time,
        "resources": Ray's view of the cluster}``.
    """
    ray = _ray()
    s = settings(run, **overrides)
    out = output_dir(run, root)
    base = str(out.parent.resolve())
    graph = stages(s)
    todo = [st for st in graph if not done(out, st)]
    skipped = [st.key for st in graph if st not in todo]
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, runtime_env={"env_vars": env}, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    t0 = time.perf_counter()
    log: dict = {}
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        gpus = int(sum(n["Resources"].get("GPU", 0) for n in nodes))
        cpus = int(sum(n["Resources"].get("CPU", 0) for n in nodes))
        finished = {st.key for st in graph if st not in todo}
        bar = progress(total=len(todo), desc=f"stages on Ray ({len(nodes)} nodes, {cpus} CPUs, {gpus} GPUs)")
        worker = ray.remote(Worker)
        # One dtype for every CPU worker, chosen here: where bfloat16 and float32 run about as
        # fast, each worker's own measurement could pick either, and its samples and drafts
        # would differ from the others' (and from a serial run's). GPU workers use bfloat16.
        dtype = None if gpus else os.environ.get("TCSD_DTYPE") or str(default_dtype(device="cpu")).replace("torch.", "")
        train_dtype = None if gpus else str(choose_train_dtype()).replace("torch.", "")  # the same for training
        sample_dtype = None if gpus else str(choose_sample_dtype()).replace("torch.", "")  # and for teacher samples

        def start(threads=None, **resources):
            """One worker of the run; it is restarted, and its stage sent again, if it dies."""
            return worker.options(max_restarts=RETRIES, max_task_retries=RETRIES, **resources).remote(
                run, base, overrides, threads, dtype, train_dtype, sample_dtype)

        # teacher samples and drafts: a worker per GPU, or per cpus_per_worker cores
        made = [st for st in todo if st.kind in MAKE_KINDS]
        if not made:
            makers = []
        elif gpus:
            makers = [start(num_gpus=1, num_cpus=1) for _ in range(gpus)]
        else:
            makers = [start(cpus_per_worker, num_cpus=cpus_per_worker) for _ in range(max(1, cpus // cpus_per_worker))]
        _schedule(ray, made, makers, finished, bar, log)
        for w in makers:
            ray.kill(w)
        # c and the timing blocks: a whole GPU each, or a whole machine each on CPU
        timed = [st for st in todo if st.kind in TIME_KINDS]
        if timed:
            if gpus:
                timers = [start(num_gpus=1, num_cpus=1) for _ in range(gpus)]
            else:
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # deferred: optional

                timers = [start(num_cpus=int(n["Resources"]["CPU"]),
                                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                          for n in nodes if n["Resources"].get("CPU", 0) >= 1]
            _schedule(ray, timed, timers, finished, bar, log)
            for w in timers:
                ray.kill(w)
        bar.close()
        resources = {"nodes": len(nodes), "cpus": cpus, "gpus": gpus}
    finally:
        if started_here:
            ray.shutdown()
    return {"stages": log, "skipped": skipped, "seconds": round(time.perf_counter() - t0, 1), "resources": resources}
