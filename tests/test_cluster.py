"""The stage graph (`graph`) and the stages on Ray (`cluster`), on the 2-core CPU.

- the graph: a topological order, and exactly the timed cells the notebooks ask for;
- a local Ray cluster (``num_cpus=2``) makes the smoke profile's stages; the artifacts equal
  a serial run's (expected alpha exactly, timings by their keys and shapes), while one worker
  is killed in the middle of writing a draft: its stage is sent again and no temporary file
  is left;
- two workers racing for one stage leave one artifact.

The smoke profile with one decoding temperature instead of three keeps CI's time.
"""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tcsd_utils.files import TEMP_PREFIX, is_temp
from tcsd_utils.graph import levels, stages
from tcsd_utils.plan import Plan, estimate
from tcsd_utils.profiles import SETTINGS, draft_specs, grid_names, mix_names, ood_names, settings, tau_tag, trained_as

RUN = "smoke"
OVERRIDES = {"decode_taus": (1.0,)}  # one decoding temperature instead of three: CI's time


@pytest.mark.parametrize("profile", sorted(SETTINGS))
def test_the_graph_is_ordered_and_times_what_the_notebooks_ask_for(profile):
    s = SETTINGS[profile]
    graph = stages(s)
    keys = [st.key for st in graph]
    assert len(keys) == len(set(keys))
    seen = set()
    for st in graph:  # each stage after every stage it needs
        assert set(st.needs) <= seen, (st.key, set(st.needs) - seen)
        seen.add(st.key)
    timed = [(n, st.args[0], st.args[1]) for st in graph if st.kind == "timing" for n in st.args[2]]
    asked = {(n, s.train_set, float(t)) for names in (grid_names(s), ood_names(s), mix_names(s)) for n in names
             for t in s.decode_taus} | {(n, s.ood_set, float(t)) for n in ood_names(s) for t in s.decode_taus}
    assert len(timed) == len(set(timed)) and set(timed) == asked  # each cell timed once
    drafts = {st.args[0] for st in graph if st.kind == "draft"}  # a draft that trains as another has no stage
    assert drafts == {trained_as(s, n) for n in draft_specs(s)} - ({"nokd"} if s.paper_draft else set())
    for st in graph:  # a timed cell waits for the draft it is trained as
        if st.kind == "timing":
            assert {f"draft/{trained_as(s, n)}" for n in st.args[2]} & {f"draft/{d}" for d in drafts} <= set(st.needs)
    assert sum(len(level) for level in levels(graph)) == len(graph)


def test_online_drafts_on_one_pool_need_only_its_teacher_samples():
    """``online_samples_tau`` ("sample once, score many"): every online draft reads the pool's
    teacher samples; offline drafts still read their own tau's; a bad setting is refused."""
    s = settings("smoke", online_samples_tau=2.0)
    graph, pool = {st.key: st for st in stages(s)}, f"teacher/{s.train_set}_train_tau2"
    assert pool in graph
    for name, (mode, tau_kd, mix_weights) in draft_specs(s).items():
        needs = [n for n in graph[f"draft/{name}"].needs if n.startswith("teacher/")] if mode != "none" else []
        if mode == "online" and not mix_weights:
            assert needs == [pool], name
        elif mode == "offline" and not mix_weights:
            assert needs == [f"teacher/{s.train_set}_train_tau{tau_tag(tau_kd)}"], name
    assert pool not in [st.key for st in stages(settings("smoke"))]
    with pytest.raises(ValueError, match="online_pool and online_samples_tau"):
        settings("smoke", online_pool=True, online_samples_tau=1.0)
    with pytest.raises(ValueError, match="online_samples_tau"):
        settings("smoke", online_samples_tau=-1.0)


def test_the_plan_counts_the_graphs_timed_cells():
    s = SETTINGS["cpu"]
    costs = {k: 0.01 for k in ("step_1", "step_b", "forward", "train", "train_lm", "load")}
    row = next(r for r in estimate(Plan("cpu", s), costs).stages if r[0].startswith("speculative runs"))
    timing = [st for st in stages(s) if st.kind == "timing"]
    assert row[1].startswith(f"{sum(len(st.args[2]) for st in timing)} cells in {len(timing)} blocks")


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch):
    import sys

    from tcsd_utils import cluster

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(SystemExit, match=r"pip install -e \"\.\[ray\]\""):
        cluster.run_on_ray(RUN)


def test_a_worker_runs_in_the_dtype_the_run_chose(monkeypatch, tmp_path, tiny_pair_dir):
    """`run_on_ray` picks one CPU dtype and gives it to every worker: where bfloat16 and float32
    tie, a worker's own measurement could pick either and its artifacts would differ."""
    import torch

    from tcsd_utils import cluster
    from tcsd_utils.runners import SAMPLE_DTYPE_ENV, TRAIN_DTYPE_ENV, choose_sample_dtype, choose_train_dtype

    monkeypatch.setenv("TCSD_DTYPE", "fp32")  # restored after the test; the worker sets its own
    monkeypatch.setenv(TRAIN_DTYPE_ENV, "float32")
    monkeypatch.setenv(SAMPLE_DTYPE_ENV, "float32")
    worker = cluster.Worker(RUN, str(tmp_path), {"target": str(tiny_pair_dir / "target")}, None, "bfloat16",
                            "bfloat16", "bfloat16")
    assert worker.study.target.dtype == torch.bfloat16
    assert choose_train_dtype() == torch.bfloat16  # its drafts train in the run's precision too
    assert choose_sample_dtype() == torch.bfloat16  # and its teacher samples are drawn in the run's dtype
    monkeypatch.setenv(TRAIN_DTYPE_ENV, "fp16")
    with pytest.raises(ValueError, match="TCSD_TRAIN_DTYPE must be bfloat16 or float32"):
        choose_train_dtype()


# -- on Ray -------------------------------------------------------------------------------
ray = pytest.importorskip("ray", reason="the Ray extra (pip install -e '.[ray]'; make test installs it)")

from tcsd_utils.cluster import Worker, run_on_ray, run_stage, run_serial  # noqa: E402
from tcsd_utils.study import Study  # noqa: E402

def _killer(root: Path, stop: threading.Event, killed: list):
    """Kill the first process seen writing a draft's model (its pid is in the temp name)."""
    drafts = root / RUN / "drafts"
    while not stop.is_set() and not killed:
        for temp in drafts.glob(f"*/{TEMP_PREFIX}*-model") if drafts.is_dir() else []:
            pid = int(temp.name[len(TEMP_PREFIX):].rsplit("-", 3)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append((temp.parent.name, pid))
            return
        time.sleep(0.01)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same stages made twice: on a local Ray of 2 CPUs (a worker killed mid-write) and
    serially in this process."""
    on_ray, serial = tmp_path_factory.mktemp("ray"), tmp_path_factory.mktemp("serial")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_killer, args=(on_ray, stop, killed), daemon=True)
    watcher.start()
    try:
        made = run_on_ray(RUN, root=on_ray, **OVERRIDES)
    finally:
        stop.set()
        ray.shutdown()
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray worker (one core each)
    try:
        run_serial(Study(RUN, serial, **OVERRIDES))
    finally:
        torch.set_num_threads(threads)
    return on_ray / RUN, serial / RUN, made, killed


def _cells(out: Path) -> dict:
    return {str(p.relative_to(out)): json.loads(p.read_text())["row"]
            for p in sorted((out / "eval").glob("*/tau*/*.json"))}


def test_ray_makes_every_stage_and_a_killed_worker_leaves_no_temp(runs):
    out, _, made, killed = runs
    graph = stages(settings(RUN, **OVERRIDES))
    assert set(made["stages"]) == {st.key for st in graph} and not made["skipped"]
    assert killed, "no draft was seen being written: the kill was not exercised"
    assert f"draft/{killed[0][0]}" in made["stages"]  # sent again after its worker died
    assert (out / "drafts" / killed[0][0] / "model").is_dir()
    assert not [p for p in out.rglob("*") if is_temp(p)]


def test_ray_artifacts_equal_the_serial_runs(runs):
    out, serial, _, _ = runs
    a, b = _cells(out), _cells(serial)
    assert a.keys() == b.keys() and a
    for key in a:
        assert a[key].keys() == b[key].keys(), key
        assert a[key]["alpha_expected"] == b[key]["alpha_expected"], key  # exactly
        for col, value in a[key].items():  # timings differ run to run; their kinds do not
            assert type(value) is type(b[key][col]) or {type(value), type(b[key][col])} <= {int, float}, (key, col)
    s = settings(RUN, **OVERRIDES)
    for name in {trained_as(s, n) for n in draft_specs(s)}:  # each draft trained, once
        loss = [json.loads((o / "drafts" / name / "loss.json").read_text()) for o in (out, serial)]
        assert [r["loss"] for r in loss[0]] == [r["loss"] for r in loss[1]], name


def test_a_second_run_on_ray_skips_every_stage(runs, tmp_path):
    out, _, _, _ = runs
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        again = run_on_ray(RUN, root=out.parent, **OVERRIDES)
    finally:
        ray.shutdown()
    assert again["stages"] == {} and len(again["skipped"]) == len(stages(settings(RUN, **OVERRIDES)))


def test_two_workers_racing_for_one_stage_leave_one_artifact(tmp_path):
    stage = next(st for st in stages(settings(RUN, **OVERRIDES)) if st.kind == "teacher")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        w = ray.remote(Worker)
        workers = [w.options(num_cpus=1).remote(RUN, str(tmp_path), OVERRIDES, 1) for _ in range(2)]
        results = ray.get([x.run.remote(stage) for x in workers])
    finally:
        ray.shutdown()
    assert [r[0] for r in results] == [stage.key] * 2
    folder = tmp_path / RUN / stage.key
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # one artifact, no temp
    written = (folder / "config.json").stat().st_mtime_ns
    run_stage(Study(RUN, tmp_path, **OVERRIDES), stage)  # the artifact is whole: reused, not made again
    assert (folder / "config.json").stat().st_mtime_ns == written
