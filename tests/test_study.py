"""The study runner: notebooks in order, a killed study resumes at the notebook it stopped in."""

from __future__ import annotations

import json

import pytest

from tcsd_utils import study as S


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
        S.run_notebooks("smoke", root=tmp_path)
    notebooks = tmp_path / "smoke" / "notebooks"
    assert sorted(p.name for p in notebooks.glob("*.ipynb")) == [f"{n}.ipynb" for n in S.NOTEBOOKS[:2]]
    assert not list(notebooks.glob(".tmp-*"))  # no half-written notebook left behind
    done = S.run_notebooks("smoke", root=tmp_path)  # resumes: 01 and 02 are not executed again
    assert calls == [f"{n}.ipynb" for n in S.NOTEBOOKS[:2]] + ["crashed"] + [f"{n}.ipynb" for n in S.NOTEBOOKS[2:]]
    assert [p.stem for p in done] == S.NOTEBOOKS
    calls.clear()
    S.run_notebooks("smoke", root=tmp_path, only=["04"], force=True)
    assert calls == ["04_u_curve.ipynb"]
    with pytest.raises(ValueError, match="no notebook matches"):
        S.run_notebooks("smoke", root=tmp_path, only=["09"])
