"""Figures and widget panels: each figure function returns a Figure of the expected shape,
save_figure writes standalone HTML, and a slider redraws without any frontend."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
import torch

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


def test_save_figure_writes_offline_html(tmp_path):
    fig = plots.acceptance_trace([1, 2], k=2)
    path = plots.save_figure(fig, "01_trace", tmp_path / "figures")
    plots.save_figure(fig, "01_again", tmp_path / "figures")
    assert path == tmp_path / "figures" / "01_trace.html"
    text = path.read_text(encoding="utf-8")
    assert "<html" in text and "cdn.plot.ly" not in text and 'src="plotly.min.js"' in text
    # plotly.js once per folder, beside the figures; no temporary left
    assert sorted(p.name for p in path.parent.iterdir()) == ["01_again.html", "01_trace.html", "plotly.min.js"]
    assert (path.parent / "plotly.min.js").stat().st_size > 1_000_000
    with pytest.raises(ValueError):
        plots.save_figure(fig, "../escape", tmp_path)


def test_mime_bundle_is_json_only():
    bundle = plots.mime_bundle(plots.acceptance_trace([1], k=1))
    assert set(bundle) == {plots.MIME, "text/plain"}
    assert bundle[plots.MIME]["data"][0]["type"] == "bar"


def test_tau_slider_redraws_on_change_without_a_frontend():
    calls = []

    def figure_fn(tau):
        calls.append(tau)
        return plots.next_token_distribution({tau: probs(LOGITS, tau)}, top=3)

    panel = widgets.tau_slider(figure_fn, tau=1.0)
    slider, out = panel.children
    before = out.outputs
    assert calls == [1.0] and before[0]["data"][plots.MIME]["data"][0]["name"] == "τ = 1"
    slider.value = 0.0
    assert calls == [1.0, 0.0]
    assert out.outputs != before
    assert out.outputs[0]["data"][plots.MIME]["data"][0]["name"] == "τ = 0 (greedy)"


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
    fig = plots.grid_heatmaps(_grid_table(), "alpha", (0.0, 1.0), (0.0, 1.0, 2.0), label="α")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    offline = fig.data[0]
    assert list(offline.y) == ["no KD", "τ_kd 0", "τ_kd 1"] and list(offline.x) == ["0", "1", "2"]
    stars = [[("★" in cell) for cell in row] for row in offline.text]
    assert stars == [[False, False, False], [True, False, False], [False, True, True]]  # diagonal, then nearest
    assert len(fig.layout.shapes) == 4  # the diagonal outlined: 2 KD taus x 2 panels


def test_tau_curves_and_agreement():
    t = _grid_table()
    t["lo"], t["hi"] = t["alpha"] - 0.05, t["alpha"] + 0.05
    fig = plots.tau_curves(t, "alpha", error=("lo", "hi"), reference=1.0)
    assert len(fig.data) == 5 and list(fig.data[0].x) == [0.0, 1.0, 2.0]
    assert fig.data[1].error_y.array == pytest.approx((0.05, 0.05, 0.05))
    t["set"] = ["in" if m == "none" else "out" for m in t["mode"]]
    fig = plots.tau_curves(t, "alpha", dash="set")
    assert [tr.line.dash for tr in fig.data] == ["solid"] + ["dash"] * 4
    fig = plots.agreement([0.1, 0.2], [0.12, 0.18], ["a", "b"], "expected α", "empirical α")
    assert [t.name for t in fig.data] == ["cells", "y = x"] and fig.layout.xaxis.title.text == "expected α"
