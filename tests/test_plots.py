"""Figures and widget panels: each figure function returns a Figure of the expected shape,
save_figure writes standalone HTML, and a slider redraws without any frontend."""

from __future__ import annotations

import math
import os

import plotly.graph_objects as go
import pytest
import torch

from tcsd_utils.render import MIME, mime_bundle, save_figure
from tcsd_utils.study_plots import agreement, grid_heatmaps, tau_curves
from tcsd_utils import plots, widgets
from tcsd_utils.temperature import probs

from conftest import make_tokenizer

LOGITS = torch.tensor([4.0, 3.0, 2.5, 1.0, 0.0, -1.0, -2.0, -3.0])  # (vocab,)


def test_next_token_distribution_one_bar_trace_per_tau():
    p_by_tau = {tau: probs(LOGITS, tau) for tau in [1.0, 0.0, 2.0]}
    fig = plots.next_token_distribution(p_by_tau, labels=[f"t{i}" for i in range(8)], top=5)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["τ = 0 (greedy)", "τ = 1", "τ = 2"]
    assert all(t.type == "bar" and len(t.x) == 5 for t in fig.data)
    assert list(fig.data[0].x) == ["t0", "t1", "t2", "t3", "t4"]  # ranked like the logits
    assert list(fig.data[0].y) == [1.0, 0.0, 0.0, 0.0, 0.0]  # greedy: one-hot on the argmax
    assert "τ" in fig.layout.title.text and fig.layout.yaxis.title.text == "p(x)"


def test_next_token_distribution_labels_from_a_tokenizer_stay_distinct():
    tok = make_tokenizer()
    fig = plots.next_token_distribution({1.0: probs(torch.zeros(16), 1.0)}, labels=tok, top=16)
    assert len(set(fig.data[0].x)) == 16  # equal probabilities, yet no two bars merge
    assert "hello" in fig.data[0].x
    assert plots.token_label(lambda i: " a\n", 3) == "␣a↵"
    assert plots.token_label(None, 7) == "#7"
    with pytest.raises(ValueError):
        plots.next_token_distribution({})


def test_temperature_effect_two_subplots_and_mean_over_prompts():
    taus = [0.0, 0.5, 1.0]
    fig = plots.temperature_effect(taus, [[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]], [1.0, 0.8, 0.6], k=10)
    assert len(fig.data) == 2
    assert list(fig.data[0].y) == [0.0, 1.5, 3.0]  # mean over the two prompts
    assert fig.data[0].error_y.visible and not fig.data[1].error_y.visible
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["entropy H(p) (nats)", "top-10 mass of p"]
    assert fig.layout.xaxis.title.text == "τ"
    with pytest.raises(ValueError, match="temperatures"):
        plots.temperature_effect(taus, [0.0, 1.0], [1.0, 0.8, 0.6])


def test_overlap_vs_tau_one_line_per_draft():
    taus = [0.0, 1.0, 2.0]
    fig = plots.overlap_vs_tau(taus, {"no KD": [0.1, 0.2, 0.1], "online KD": [0.6, 0.5, 0.4]})
    assert [t.name for t in fig.data] == ["no KD", "online KD"]
    assert "α" in fig.layout.title.text and "min(p, q)" in fig.layout.yaxis.title.text
    single = plots.overlap_vs_tau(taus, [0.1, 0.2, 0.3], label="untrained")
    assert [t.name for t in single.data] == ["untrained"]


def test_acceptance_trace_bars_and_alpha_in_title():
    fig = plots.acceptance_trace([0, 4, 2, 4], k=4)
    assert len(fig.data) == 1 and list(fig.data[0].y) == [0, 4, 2, 4]
    assert "k = 4" in fig.layout.title.text and "α ≈ 0.62" in fig.layout.title.text
    assert len(fig.layout.shapes) == 1  # the mean line
    assert len(plots.acceptance_trace([], k=4).data) == 1  # no steps: an empty chart, no error


def test_save_figure_writes_offline_html(tmp_path, monkeypatch):
    monkeypatch.setenv("TCSD_PNG", "0")  # HTML only here; PNGs below
    fig = plots.acceptance_trace([1, 2], k=2)
    path = save_figure(fig, "01_trace", tmp_path / "figures")
    save_figure(fig, "01_again", tmp_path / "figures")
    assert path == tmp_path / "figures" / "01_trace.html"
    text = path.read_text(encoding="utf-8")
    assert "<html" in text and "cdn.plot.ly" not in text and 'src="plotly.min.js"' in text
    # plotly.js once per folder, beside the figures; no temporary left
    assert sorted(p.name for p in path.parent.iterdir()) == ["01_again.html", "01_trace.html", "plotly.min.js"]
    assert (path.parent / "plotly.min.js").stat().st_size > 1_000_000
    with pytest.raises(ValueError):
        save_figure(fig, "../escape", tmp_path)


def test_mime_bundle_is_json_only():
    bundle = mime_bundle(plots.acceptance_trace([1], k=1))
    assert set(bundle) == {MIME, "text/plain"}
    assert bundle[MIME]["data"][0]["type"] == "bar"


def _chromium_or_skip():
    from tcsd_utils import render

    if render.chromium() is None:
        if os.environ.get("TCSD_REQUIRE_CHROMIUM") == "1":  # CI installs it: a missing browser is a failure there
            pytest.fail("TCSD_REQUIRE_CHROMIUM=1 but no Chromium found (TCSD_CHROMIUM, or chromium on PATH)")
        pytest.skip("no Chromium found: PNG figures need one (apt-get install chromium, or set TCSD_CHROMIUM)")


def test_one_chromium_for_pngs_and_the_browser_test_and_tcsd_chromium_comes_first(tmp_path, monkeypatch):
    from tcsd_utils import render

    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TCSD_CHROMIUM", str(fake))
    assert render.chromium() == str(fake)
    monkeypatch.setenv("TCSD_CHROMIUM", str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: kaleido's own search comes last
    from choreographer.browsers.chromium import Chromium

    kaleidos = tmp_path / "kaleidos-chrome"
    kaleidos.write_text("#!/bin/sh\n")
    kaleidos.chmod(0o755)
    monkeypatch.setattr(Chromium, "find_browser", classmethod(lambda cls, **kw: str(kaleidos)))
    assert render.chromium() == str(kaleidos)
    monkeypatch.setattr(Chromium, "find_browser", classmethod(lambda cls, **kw: None))
    assert render.chromium() is None


def test_save_figure_writes_a_png_beside_the_html(tmp_path, monkeypatch):
    _chromium_or_skip()
    from tcsd_utils import render

    monkeypatch.delenv("TCSD_PNG", raising=False)
    monkeypatch.setattr(render, "_PNG", {"writer": None, "why": None})
    save_figure(plots.acceptance_trace([1, 2], k=2), "01_trace", tmp_path)
    png = (tmp_path / "01_trace.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000, render.png_status()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def _save_three(tmp_path):
    """Save three figures; return the warnings that said PNGs are off."""
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for name in ("a", "b", "c"):
            save_figure(plots.acceptance_trace([1], k=1), name, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["a.html", "b.html", "c.html"]
    assert not list(tmp_path.glob("*.png"))
    return [str(w.message) for w in seen if "PNG figures are not written" in str(w.message)]


def test_save_figure_says_once_why_no_png_and_keeps_the_html(tmp_path, monkeypatch):
    from tcsd_utils import render

    calls = []

    class Broken:  # a kaleido whose browser went away after it started
        def png(self, fig):
            calls.append("png")
            raise RuntimeError("the browser went away")

        def close(self):
            calls.append("closed")

    monkeypatch.delenv("TCSD_PNG", raising=False)
    monkeypatch.setattr(render, "_PNG", {"writer": Broken(), "why": None})
    said = _save_three(tmp_path)
    assert len(said) == 1 and "the browser went away" in said[0] and "chromium" in said[0]
    assert calls == ["png", "closed"]  # closed, and not tried again after the first failure
    assert "the browser went away" in render.png_status()


def test_without_a_browser_nothing_is_started(tmp_path, monkeypatch):
    from tcsd_utils import render

    def started(*args, **kwargs):
        raise AssertionError("kaleido was started although no browser was found")

    monkeypatch.delenv("TCSD_PNG", raising=False)
    monkeypatch.setattr(render, "_PNG", {"writer": None, "why": None})
    monkeypatch.setattr(render, "chromium", lambda: None)
    monkeypatch.setattr(render, "_PngWriter", started)
    said = _save_three(tmp_path)
    assert len(said) == 1 and "no Chrome or Chromium found" in said[0]
    assert render.png_available() is False


def _run_saving_three(tmp_path, env, wrap=lambda cmd: cmd, bound=120):
    """Save three figures in a fresh process under ``env``; fail if it does not end within
    ``bound`` seconds (the hang this guards against waited forever)."""
    import subprocess
    import sys

    script = ("from tcsd_utils import plots, render\n"
              "print('browser:', render.chromium())\n"
              "for n in 'abc':\n"
              f"    render.save_figure(plots.acceptance_trace([1], k=1), n, {str(tmp_path)!r})\n"
              "print('status:', render.png_status())\n")
    try:
        done = subprocess.run(wrap([sys.executable, "-c", script]), env=env, capture_output=True, text=True,
                              timeout=bound)
    except subprocess.TimeoutExpired:
        pytest.fail(f"save_figure did not return within {bound} s: a PNG write waits without a bound")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["a.html", "b.html", "c.html"]
    assert not list(tmp_path.glob("*.png"))
    assert done.stderr.count("PNG figures are not written") == 1, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("browser", ["stuck", "dead"])
def test_a_stuck_or_dead_browser_turns_pngs_off_within_the_timeout(tmp_path, browser):
    fake = tmp_path / f"{browser}-chrome"
    fake.write_text("#!/bin/sh\nexec sleep 600\n" if browser == "stuck" else "#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    # A stuck browser is cut off by the timeout. A dead one must be noticed by its exit, not
    # by the timeout, so it gets a long one: under load (CI) its start can outlast 2 s.
    timeout = 2 if browser == "stuck" else 60
    env = {**os.environ, "TCSD_CHROMIUM": str(fake), "TCSD_PNG_TIMEOUT": str(timeout)}
    env.pop("TCSD_PNG", None)
    out = tmp_path / "figures"
    done = _run_saving_three(out, env)
    assert f"browser: {fake}" in done.stdout
    assert ("did not start its browser within 2 s" if browser == "stuck" else "BrowserFailedError") in done.stdout


def test_save_figure_finishes_where_no_browser_can_be_found(tmp_path):
    """The newcomer's machine: no browser on PATH, through TCSD_CHROMIUM, or by kaleido's own
    search (tests/no_browser.py hides an installed one)."""
    import no_browser  # tests/no_browser.py

    env = no_browser.hidden_env(data_home=str(tmp_path / "data"))
    env.pop("TCSD_PNG", None)
    try:
        no_browser.command(["true"], env)
    except RuntimeError as err:
        pytest.skip(f"cannot hide the browser here: {err}")
    done = _run_saving_three(tmp_path / "figures", env, wrap=lambda cmd: no_browser.command(cmd, env))
    assert "browser: None" in done.stdout and "no Chrome or Chromium found" in done.stdout


def test_tau_slider_redraws_on_change_without_a_frontend():
    calls = []

    def figure_fn(tau):
        calls.append(tau)
        return plots.next_token_distribution({tau: probs(LOGITS, tau)}, top=3)

    panel = widgets.tau_slider(figure_fn, tau=1.0)
    slider, out = panel.children
    assert slider is panel.slider and panel.log_y is None
    before = out.outputs
    assert calls == [1.0] and before[0]["data"][MIME]["data"][0]["name"] == "τ = 1"
    slider.value = 0.0
    assert calls == [1.0, 0.0]
    assert out.outputs != before
    assert out.outputs[0]["data"][MIME]["data"][0]["name"] == "τ = 0 (greedy)"


def test_tau_slider_shows_errors_and_checks_its_range():
    def broken(tau):
        if tau > 1.5:
            raise RuntimeError("no figure here")
        return plots.acceptance_trace([1], k=1)

    panel = widgets.tau_slider(broken, tau=1.0)
    panel.children[0].value = 2.0
    assert "no figure here" in panel.children[1].outputs[0]["text"]
    with pytest.raises(ValueError):
        widgets.tau_slider(broken, tau=3.0, max=2.0)


def test_tau_slider_log_toggle_redraws_with_a_log_axis_and_names_its_tau():
    panel = widgets.tau_slider(lambda tau: plots.next_token_distribution({tau: probs(LOGITS, tau)},
                                                                         reference={1.0: probs(LOGITS, 1.0)}),
                               tau=0.5, log_toggle=True)
    fig = panel.children[-1].outputs[0]["data"][MIME]
    assert fig["layout"]["yaxis"].get("type") != "log"
    assert "0.50" in fig["layout"]["title"]["text"]
    panel.log_y.value = True
    fig = panel.children[-1].outputs[0]["data"][MIME]
    assert fig["layout"]["yaxis"]["type"] == "log"
    panel.slider.value = 1.7
    fig = panel.children[-1].outputs[0]["data"][MIME]
    assert "1.70" in fig["layout"]["title"]["text"] and fig["layout"]["yaxis"]["type"] == "log"
    assert [t["name"] for t in fig["data"]] == ["τ = 1 (reference)", "τ = 1.7"]


def test_next_token_distribution_axis_follows_the_tallest_bar():
    flat = plots.next_token_distribution({2.0: probs(LOGITS, 2.0)}, top=3)
    peaked = plots.next_token_distribution({0.0: probs(LOGITS, 0.0)}, top=3)
    tallest = max(flat.data[0].y)
    assert tallest < 0.9 and flat.layout.yaxis.range[1] == pytest.approx(1.1 * tallest)
    assert peaked.layout.yaxis.range[1] == 1.0


def test_overlap_at_position_shades_min_and_prints_alpha():
    p, q = probs(LOGITS, 1.0), probs(LOGITS.flip(0), 1.0)
    fig = plots.overlap_at_position(p, q, top=4, tau=1.0, draft="no KD")
    alpha = float(torch.minimum(p, q).sum())
    assert [t.name for t in fig.data] == ["min(p, q): accepted mass", "p (target)", "q (no KD)"]
    assert f"{alpha:.3f}" in fig.layout.title.text and "1.00" in fig.layout.title.text
    assert all(m <= min(a, b) + 1e-9 for m, a, b in zip(fig.data[0].y, fig.data[1].y, fig.data[2].y))
    same = plots.overlap_at_position(p, p)
    assert "1.000" in same.layout.title.text  # a draft equal to the target is always accepted
    with pytest.raises(ValueError):
        plots.overlap_at_position(p, q[:4])


def test_tau_slider_with_a_draft_drop_down_redraws_for_each_choice():
    logits = {"a": LOGITS, "b": LOGITS.flip(0)}
    calls = []

    def figure_fn(tau, name):
        calls.append((tau, name))
        return plots.overlap_at_position(probs(LOGITS, tau), probs(logits[name], tau), tau=tau, draft=name)

    panel = widgets.tau_slider(figure_fn, tau=1.0, choices=["a", "b"])
    assert calls == [(1.0, "a")] and "1.000" in panel.children[-1].outputs[0]["data"][MIME]["layout"]["title"]["text"]
    panel.choice.value = "b"
    panel.slider.value = 0.5
    assert calls[-2:] == [(1.0, "b"), (0.5, "b")]
    assert "q (b)" in [t["name"] for t in panel.children[-1].outputs[0]["data"][MIME]["data"]]
    with pytest.raises(ValueError):
        widgets.tau_slider(figure_fn, choices=[])


def test_entropy_histogram_marks_both_means_and_ends_at_the_uniform():
    h_p, h_q = torch.tensor([0.5, 1.0, 1.5]), torch.tensor([2.0, 2.5])
    fig = plots.entropy_histogram(h_p, h_q, tau=1.5, draft="online", vocab=8)
    assert [t.name for t in fig.data] == ["H(p) target", "H(q) online"]
    assert "1.50" in fig.layout.title.text and "1.00" in fig.layout.title.text and "2.25" in fig.layout.title.text
    assert fig.layout.xaxis.range[1] == pytest.approx(math.log(8)) and len(fig.layout.shapes) == 2


def test_token_html_colours_each_token_by_its_source_and_escapes_it():
    text = plots.token_html(["<a>", " b", " c"], ["draft", "resampled", "bonus"])
    assert text.count("<span style") == 3 + 3  # three tokens, three legend entries
    assert "&lt;a&gt;" in text and plots.TOKEN_COLOURS["resampled"] in text
    with pytest.raises(ValueError):
        plots.token_html(["a"], [])


def test_tau_slider_over_grid_values_shows_html_panels():
    panel = widgets.tau_slider(lambda tau, name: f"<b>{name} at {tau:g}</b>", tau=1.0, values=[0.0, 1.0, 2.0],
                               choices=["x", "y"])
    assert panel.children[-1].outputs[0]["data"]["text/html"] == "<b>x at 1</b>"
    panel.slider.value = 2.0
    assert panel.children[-1].outputs[0]["data"]["text/html"] == "<b>x at 2</b>"
    with pytest.raises(ValueError):
        widgets.tau_slider(lambda tau: "", tau=0.5, values=[0.0, 1.0])


def test_a_panel_built_again_starts_where_it_was_left():
    def fig_fn(tau, name):
        return plots.overlap_at_position(probs(LOGITS, tau), probs(LOGITS.flip(0), tau), tau=tau, draft=name)

    first = widgets.tau_slider(fig_fn, tau=1.0, choices=["a", "b"], log_toggle=True)
    first.slider.value, first.choice.value, first.log_y.value = 1.5, "b", True
    again = widgets.tau_slider(fig_fn, tau=1.0, choices=["a", "b"], log_toggle=True)  # the cell re-run
    assert (again.slider.value, again.choice.value, again.log_y.value) == (1.5, "b", True)
    assert "1.50" in again.children[-1].outputs[0]["data"][MIME]["layout"]["title"]["text"]
    fresh = widgets.tau_slider(fig_fn, tau=1.0, choices=["a", "b"], log_toggle=True, remember=False)
    assert (fresh.slider.value, fresh.choice.value, fresh.log_y.value) == (1.0, "a", False)
    other = widgets.tau_slider(fig_fn, tau=0.5, max=1.0, choices=["a", "b"])  # another panel: its own state
    assert other.slider.value == 0.5


def test_panel_text_form_says_to_run_the_notebook():
    panel = widgets.tau_slider(lambda tau: plots.acceptance_trace([1], k=1))
    assert "run this notebook" in repr(panel) and "FloatSlider" not in repr(panel)


def _grid_table():
    import pandas as pd

    rows = []
    for tau in (0.0, 1.0, 2.0):
        rows.append({"draft": "nokd", "mode": "none", "tau_kd": float("nan"), "mix": "", "in_domain": True,
                     "tau": tau, "alpha": 0.1})
        for mode in ("offline", "online"):
            for kd in (0.0, 1.0):
                rows.append({"draft": f"{mode}{kd}", "mode": mode, "tau_kd": kd, "mix": "", "in_domain": True,
                             "tau": tau, "alpha": 0.5 - 0.2 * abs(kd - tau)})
    return pd.DataFrame(rows)


def test_grid_heatmaps_star_the_best_kd_row_of_each_column():
    fig = grid_heatmaps(_grid_table(), "alpha", (0.0, 1.0), (0.0, 1.0, 2.0), label="α")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    offline = fig.data[0]
    assert list(offline.y) == ["no KD", "τ_kd 0", "τ_kd 1"] and list(offline.x) == ["0", "1", "2"]
    stars = [[("★" in cell) for cell in row] for row in offline.text]
    assert stars == [[False, False, False], [True, False, False], [False, True, True]]  # diagonal, then nearest
    assert len(fig.layout.shapes) == 4  # the diagonal outlined: 2 KD taus x 2 panels


def test_tau_curves_and_agreement():
    t = _grid_table()
    t["lo"], t["hi"] = t["alpha"] - 0.05, t["alpha"] + 0.05
    fig = tau_curves(t, "alpha", error=("lo", "hi"), reference=1.0)
    assert len(fig.data) == 5 and list(fig.data[0].x) == [0.0, 1.0, 2.0]
    assert fig.data[1].error_y.array == pytest.approx((0.05, 0.05, 0.05))
    t["set"] = ["in" if m == "none" else "out" for m in t["mode"]]
    fig = tau_curves(t, "alpha", dash="set")
    assert [tr.line.dash for tr in fig.data] == ["solid"] + ["dash"] * 4
    fig = agreement([0.1, 0.2], [0.12, 0.18], ["a", "b"], "expected α", "empirical α")
    assert [t.name for t in fig.data] == ["cells", "y = x"] and fig.layout.xaxis.title.text == "expected α"


def test_notebook_06_figures():
    import pandas as pd

    from tcsd_utils import beyond_plots
    from tcsd_utils.temperature import Anneal

    sweep = [{"tau": tau, "draft_tau": tq, "matched": tq == tau, "alpha": 0.3 - 0.1 * abs(tq - tau),
              "alpha_lo": 0.2, "alpha_hi": 0.4, "gamma_predicted": 1.1, "gamma_predicted_lo": 1.0,
              "gamma_predicted_hi": 1.2} for tau in (0.5, 1.0) for tq in (0.5, 1.0, 2.0)]
    fig = beyond_plots.draft_temperature(sweep)
    assert len(fig.data) == 4 and list(fig.data[0].x) == [0.5, 1.0, 2.0]
    assert list(fig.data[2].marker.symbol) == ["circle", "star", "circle"]  # target tau 1: tau_q = 1 starred
    costs = [{"tau": t, "ms_per_step": 10 + t, "ms_target_per_step": 8 + t, "ms_verify_per_step": 0.2,
              "ms_per_draft_token": 1.0, "tokens_per_step": 1.5 - 0.1 * t, "alpha": 0.5 - 0.1 * t,
              "alpha_lo": 0.3, "alpha_hi": 0.6} for t in (2.0, 0.0, 1.0)]
    fig = beyond_plots.step_cost_curves(costs)
    assert len(fig.data) == 6 and list(fig.data[0].x) == [0.0, 1.0, 2.0]
    binned = pd.DataFrame({"prompt_set": ["a", "a", "b"], "bin": ["1-1", "2-3", "1-1"], "x": [1.0, 2.5, 1.0],
                           "alpha": [0.3, 0.2, 0.1], "alpha_lo": [0.2, 0.1, 0.0], "alpha_hi": [0.4, 0.3, 0.2],
                           "positions": [10, 5, 3]})
    fig = beyond_plots.acceptance_by_token(binned, "token_id")
    assert [t.name for t in fig.data] == ["a", "b"] and fig.layout.xaxis.type == "log"
    runs = [{"draft": d, "alpha": 0.3, "alpha_lo": 0.2, "alpha_hi": 0.4, "gamma_raw": 1.05} for d in ("x", "y")]
    fig = beyond_plots.schedule_comparison(runs, Anneal(1.0, 0.3, 4), 6)
    assert list(fig.data[0].y) == pytest.approx([1.0, 0.825, 0.65, 0.475, 0.3, 0.3])
    assert list(fig.data[1].text) == ["γ 1.05", "γ 1.05"] and "τ 1 → 0.3 over 4 tokens" in fig.layout.title.text
