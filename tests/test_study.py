"""The study runner: notebooks in order, a killed study resumes at the notebook it stopped in."""

from __future__ import annotations

import json

import pytest

from tcsd_utils.cli import main
from tcsd_utils.profiles import SETTINGS
from tcsd_utils.runs import CellError, NOTEBOOKS, _execute, run_notebooks
from tcsd_utils.study import Study
from tcsd_utils import runs as S


def test_runner_executes_in_order_skips_finished_notebooks_and_resumes(tmp_path, monkeypatch):
    import papermill

    calls = []

    def fake_execute(src, out, parameters, **kwargs):
        name = src.rsplit("/", 1)[-1]
        if name.startswith("03") and not calls.count("crashed"):
            calls.append("crashed")
            raise KeyboardInterrupt  # killed inside notebook 03
        calls.append(name)
        with open(out, "w") as f:
            json.dump({"parameters": parameters}, f)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    with pytest.raises(KeyboardInterrupt):
        run_notebooks("smoke", root=tmp_path)
    notebooks = tmp_path / "smoke" / "notebooks"
    assert sorted(p.name for p in notebooks.glob("*.ipynb")) == [f"{n}.ipynb" for n in NOTEBOOKS[:2]]
    assert not list(notebooks.glob(".tmp-*"))  # no half-written notebook left behind
    done = run_notebooks("smoke", root=tmp_path)  # resumes: 01 and 02 are not executed again
    assert calls == [f"{n}.ipynb" for n in NOTEBOOKS[:2]] + ["crashed"] + [f"{n}.ipynb" for n in NOTEBOOKS[2:]]
    assert [p.stem for p in done] == NOTEBOOKS
    calls.clear()
    run_notebooks("smoke", root=tmp_path, only=["04"], force=True)
    assert calls == ["04_u_curve.ipynb"]
    with pytest.raises(ValueError, match="no notebook matches"):
        run_notebooks("smoke", root=tmp_path, only=["09"])


def test_the_report_has_one_writer_notebook_05_or_else_the_runner(tmp_path, monkeypatch, capsys):
    """Notebook 05 writes report.md right after the results table; the runner writes it only
    when it is missing or older than the results (a run without notebook 05)."""
    import os
    import time

    import papermill

    from tcsd_utils import cli

    monkeypatch.setenv("TCSD_OUTPUTS", str(tmp_path))
    out, by_runner = tmp_path / "smoke", []

    def fake_execute(src, dst, parameters, **kwargs):
        name = src.rsplit("/", 1)[-1]
        (out / "eval").mkdir(parents=True, exist_ok=True)
        if name[:2] in ("03", "04", "05"):  # these notebooks call study.results()
            (out / "results.parquet").write_text("table")
        if name.startswith("05"):
            (out / "report.md").write_text("by notebook 05")
        open(dst, "w").write("{}")

    def fake_report(study, table=None):
        by_runner.append(study.out.name)
        (study.out / "report.md").write_text("by the runner")
        return study.out / "report.md"

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(cli, "write_report", fake_report)

    def run_notebooks(profile, root=None, only=None, force=False):  # `tcsd study`, which writes a missing report
        assert main(["study", "--profile", profile, *(["--force"] if force else []),
                     *(["--only", *only] if only else [])]) == 0

    run_notebooks("smoke", root=tmp_path, only=["03"])  # no report yet, no notebook 05: the runner
    assert by_runner == ["smoke"] and (out / "report.md").read_text() == "by the runner"
    run_notebooks("smoke", root=tmp_path)  # notebook 05 runs: it is the one writer
    assert by_runner == ["smoke"] and (out / "report.md").read_text() == "by notebook 05"
    assert "report.md (up to date with the results)" in capsys.readouterr().out
    run_notebooks("smoke", root=tmp_path, only=["01"], force=True)  # nothing new: left as it is
    assert by_runner == ["smoke"]
    past = time.time() - 60
    os.utime(out / "report.md", (past, past))
    run_notebooks("smoke", root=tmp_path, only=["04"], force=True)  # newer results: the runner
    assert by_runner == ["smoke", "smoke"] and (out / "report.md").read_text() == "by the runner"
    os.utime(out / "report.md", (past, past))
    (out / "eval" / "cost.json").write_text("{}")  # a newer evaluation file counts as newer results
    run_notebooks("smoke", root=tmp_path, only=["01"], force=True)
    assert by_runner == ["smoke"] * 3


def test_a_seeded_run_has_its_own_folder_and_passes_its_seed_to_every_notebook(tmp_path, monkeypatch):
    import papermill

    from tcsd_utils.profiles import split_run_name

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, out, parameters, **kw: (seen.append(parameters), open(out, "w").write("{}")))
    run_notebooks("smoke", root=tmp_path, only=["01"], seed=3)
    assert (tmp_path / "smoke-seed3" / "notebooks" / "01_temperature_and_distributions.ipynb").is_file()
    from tcsd_utils.profiles import notebook_parameters

    assert seen == [{"PROFILE": "smoke-seed3", **notebook_parameters("smoke"), "SEED": 3}]
    study = Study("smoke-seed3", root=tmp_path)
    assert study.settings.seed == 3 and study.profile == "smoke" and study.out == tmp_path / "smoke-seed3"
    # the drafts train on batches of the run's seed too; the default run keeps seed 0
    assert {c.seed for c in (study.settings.nokd, study.settings.offline, study.settings.online)} == {3}
    assert {c.seed for c in (Study("smoke").settings.offline, Study("smoke").settings.online)} == {0}
    assert split_run_name("cpu") == ("cpu", None)
    for bad in ("cpu-seed", "cpu-seedx", "laptop-seed1", "cpu-seed-1"):
        with pytest.raises(ValueError, match="unknown profile"):
            split_run_name(bad)
    with pytest.raises(ValueError, match="--seed must be 0 or more"):
        run_notebooks("smoke", root=tmp_path, seed=-1)


def test_compare_reads_two_runs_and_names_a_folder_without_results(tmp_path, capsys):
    import numpy as np

    from tests.test_report import make_table, paper_like, u_curve

    for run, seed in (("smoke", 0), ("smoke-seed1", 1)):
        (tmp_path / run).mkdir()
        make_table(paper_like, ood_gamma=u_curve, mix_gain=0.15, se=0.003,
                   rng=np.random.default_rng(seed)).to_parquet(tmp_path / run / "results.parquet")
    out_md = tmp_path / "cmp.md"
    assert main(["compare", str(tmp_path / "smoke"), str(tmp_path / "smoke-seed1"), "--markdown", str(out_md)]) == 0
    text = capsys.readouterr().out
    assert "| F2 | agree |" in text and "6 of 6 claims: every run that decided gave the same verdict" in text
    assert out_md.read_text().startswith("| claim | smoke verdict |")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no results.parquet in"):
        main(["compare", str(tmp_path / "smoke"), str(tmp_path / "empty")])


@pytest.fixture(autouse=True)
def _no_png_check(monkeypatch):
    """The runner asks once whether PNGs can be made; here it is told no, without a browser."""
    monkeypatch.setattr(S, "png_available", lambda: False)


def test_without_pngs_the_kernels_inherit_html_only_and_the_environment_is_restored(tmp_path, monkeypatch):
    import os

    import papermill

    seen = []

    def fake_execute(src, out, parameters, **kwargs):
        seen.append((os.environ.get("TCSD_PNG"), kwargs.get("execution_timeout")))
        open(out, "w").write("{}")

    monkeypatch.delenv("TCSD_PNG", raising=False)
    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    run_notebooks("smoke", root=tmp_path, only=["01"])
    run_notebooks("smoke", root=tmp_path, only=["02"], cell_timeout=7)
    assert seen == [("0", SETTINGS["smoke"].cell_timeout), ("0", 7)]
    assert "TCSD_PNG" not in os.environ
    monkeypatch.setattr(S, "png_available", lambda: True)
    run_notebooks("smoke", root=tmp_path, only=["03"])
    assert seen[-1][0] is None  # PNGs possible: the kernels write them
    with pytest.raises(ValueError, match="cell_timeout"):
        run_notebooks("smoke", root=tmp_path, only=["04"], cell_timeout=0)


def _notebook(path, *cells):
    """A notebook with a papermill parameters cell and the given code cells."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("PROFILE = 'smoke'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_markdown_cell("A step of the study.")]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))


def test_a_cell_past_the_timeout_stops_the_run_saying_where_and_what_then_it_resumes(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _notebook(src / "n1.ipynb", "x = 1")
    slow = "# sample the teacher's answers\nprint('teacher samples: 3 of 10 prompts', flush=True)\nimport time\ntime.sleep(600)"
    _notebook(src / "n2.ipynb", "y = 2", slow, "z = 3")
    with pytest.raises(CellError) as info:
        _execute(["n1", "n2"], src, out, {"PROFILE": "smoke"}, "smoke", "python3", False, cell_timeout=5)
    message = str(info.value)
    assert "notebook n2, cell 3 (counting from 0" in message and "cell timeout of 5 s" in message
    assert "# sample the teacher's answers" in message and "teacher samples: 3 of 10 prompts" in message
    assert "run the same command again" in message and (out / "n2.failed.ipynb").is_file()
    assert (out / "n1.json").is_file() and not (out / "n2.ipynb").exists()
    _notebook(src / "n2.ipynb", "y = 2", "print('fixed')", "z = 3")  # the cause is fixed
    done = _execute(["n1", "n2"], src, out, {"PROFILE": "smoke"}, "smoke", "python3", False, cell_timeout=5)
    assert [p.name for p in done] == ["n1.ipynb", "n2.ipynb"]
    assert not (out / "n2.failed.ipynb").exists() and (out / "n2.json").is_file()


def test_a_failing_cell_names_its_notebook_cell_and_error(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _notebook(src / "n1.ipynb", "x = 1", "# train the drafts\nraise ValueError('no prompts left')")
    with pytest.raises(CellError) as info:
        _execute(["n1"], src, out, {"PROFILE": "smoke"}, "smoke", "python3", False, cell_timeout=60)
    message = str(info.value)
    assert "notebook n1, cell 3 (counting from 0" in message and "ValueError: no prompts left" in message
    assert "# train the drafts" in message


def test_a_smoke_notebook_finishes_where_no_browser_can_be_found(tmp_path):
    """The newcomer's machine (the hang this guards against waited forever in notebook 01's
    first saved figure): `tcsd study` finishes, writes HTML figures only, and warns once."""
    import subprocess
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import no_browser

    env = no_browser.hidden_env(data_home=str(tmp_path / "data"))
    env.pop("TCSD_PNG", None)
    env["TCSD_OUTPUTS"] = str(tmp_path / "outputs")
    try:
        cmd = no_browser.command([sys.executable, "-m", "tcsd_utils.cli", "study", "--profile", "smoke",
                                  "--only", "01"], env)
    except RuntimeError as err:
        pytest.skip(f"cannot hide the browser here: {err}")
    bound = 20 * 60  # the notebook takes about 6 min on a busy 2-core CPU; a hang never ends
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=bound)
    except subprocess.TimeoutExpired:
        pytest.fail(f"notebook 01 (smoke) did not finish within {bound} s without a browser")
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    figures = tmp_path / "outputs" / "smoke" / "figures"
    assert len(list(figures.glob("01_*.html"))) >= 3 and not list(figures.glob("*.png"))
    assert log.count("PNG figures are not written") == 1, log[-3000:]
    # and nothing else warns: not the kernel (over TCP, ipykernel 7.4 warns once per notebook)
    warned = [line for line in log.splitlines() if "WARNING" in line or "Warning:" in line]
    assert len(warned) == 1, warned
