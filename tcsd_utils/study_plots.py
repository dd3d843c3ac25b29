"""Figures of the study's stages and of its results table, one function per figure, each
returning a `go.Figure` (notebooks 02-05):

- `loss_curves`: the drafts' training losses; `alpha_bars`: alpha of each draft per tau;
- `grid_heatmaps`: a value over KD temperature x decoding temperature, one panel per KD
  paradigm, the no-KD row on top and the best KD temperature of each column starred;
- `tau_curves`: a value against the decoding temperature, one line per group (F1, U-curve);
- `agreement`: one measurement against another with the y = x line (two alphas, gamma
  against Leviathan's prediction); `error_bars`: a 95% interval as plotly error bars.

Titles and axes use the paper's symbols (τ, α, γ; DESIGN.md). `tcsd_utils.plots` holds the
figures of distributions and re-exports these.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["loss_curves", "alpha_bars", "grid_heatmaps", "tau_curves", "error_bars", "agreement"]


def loss_curves(histories: Mapping[str, Sequence[Mapping]], title: str | None = None) -> go.Figure:
    """Training loss against step, one line per draft.

    Args:
        histories: ``{draft name: [{"step": int, "loss": float}, ...]}`` (``loss.json``).
        title: the figure title.

    Returns:
        A `go.Figure` with one line trace per draft (log-scaled loss axis).
    """
    fig = go.Figure()
    for name, history in histories.items():
        fig.add_trace(go.Scatter(x=[h["step"] for h in history], y=[h["loss"] for h in history],
                                 mode="lines", name=name))
    fig.update_layout(title=title or "Training loss of the drafts", xaxis_title="optimiser step",
                      yaxis_title="loss (cross-entropy or divergence at τ_kd)", yaxis_type="log",
                      legend_title_text="draft")
    return fig


def alpha_bars(table, title: str | None = None) -> go.Figure:
    """Expected alpha of each draft, grouped by decoding temperature.

    Args:
        table: rows with keys ``draft``, ``tau`` (decoding temperature) and ``alpha``
            (a list of dicts or a pandas DataFrame).
        title: the figure title.

    Returns:
        A `go.Figure` with one bar trace per draft.
    """
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    fig = go.Figure()
    for name in dict.fromkeys(r["draft"] for r in rows):
        mine = [r for r in rows if r["draft"] == name]
        fig.add_trace(go.Bar(x=[f"τ = {r['tau']:g}" for r in mine], y=[r["alpha"] for r in mine], name=name,
                             text=[f"{r['alpha']:.2f}" for r in mine], textposition="outside"))
    fig.update_layout(title=title or "Expected acceptance rate α of each draft", barmode="group",
                      xaxis_title="decoding temperature τ", yaxis_title="α = E[Σ min(p, q)]",
                      yaxis_range=[0, 1.05], legend_title_text="draft")  # room above 1 for the bars' labels
    return fig


def grid_heatmaps(table, value: str, kd_taus: Sequence[float], decode_taus: Sequence[float],
                  modes: Sequence[str] = ("offline", "online"), title: str | None = None,
                  label: str | None = None) -> go.Figure:
    """``value`` over KD temperature (rows) x decoding temperature (columns), a panel per mode.

    Args:
        table: the results table (`Study.results`): columns ``draft``, ``mode``, ``tau_kd``,
            ``tau``, ``mix`` and ``value``; in-domain, single-temperature rows are used.
        value: the column to draw, for example ``"alpha_expected"`` or ``"gamma"``.
        kd_taus, decode_taus: the rows and columns.
        modes: one panel each; the no-KD draft (``mode == "none"``) is the top row of each.
        title, label: figure title and colour-bar label.

    Returns:
        A `go.Figure`; in each column the best KD row is starred (★), the matching
        temperature (the diagonal) is outlined, and where the table has the 95% interval
        columns ``<value>_lo`` and ``<value>_hi``, every other row whose interval overlaps
        the best one's is marked ≈ (this run cannot tell it from the best).
    """
    t = table[table["in_domain"] & (table["mix"] == "") & table["tau"].isin(list(decode_taus))]
    fig = make_subplots(rows=1, cols=len(modes), subplot_titles=[f"{m} KD" for m in modes],
                        shared_yaxes=True, horizontal_spacing=0.06)
    vmin, vmax = float(t[value].min()), float(t[value].max())
    cols = [f"{x:g}" for x in decode_taus]
    for i, mode in enumerate(modes, 1):
        z, text, rows = [], [], ["no KD"] + [f"τ_kd {x:g}" for x in kd_taus]
        has_ci = f"{value}_lo" in t and f"{value}_hi" in t
        grids = {}
        for col in [value] + ([f"{value}_lo", f"{value}_hi"] if has_ci else []):
            base = t[t["mode"] == "none"].set_index("tau")[col]
            kd = t[t["mode"] == mode].pivot_table(index="tau_kd", columns="tau", values=col)
            g = [[base.get(x, math.nan) for x in decode_taus]]
            for k in kd_taus:
                g.append([kd.loc[k, x] if k in kd.index and x in kd.columns else math.nan for x in decode_taus])
            grids[col] = g
        z = grids[value]
        best = [max(range(1, len(z)), key=lambda r: -math.inf if math.isnan(z[r][c]) else z[r][c])
                for c in range(len(cols))]

        def mark(r, c):
            if r == best[c]:
                return " ★"
            if has_ci and grids[f"{value}_hi"][r][c] >= grids[f"{value}_lo"][best[c]][c]:
                return " ≈"  # the intervals overlap
            return ""
        text = [[("" if math.isnan(v) else f"{v:.2f}") + mark(r, c) for c, v in enumerate(row)]
                for r, row in enumerate(z)]
        fig.add_trace(go.Heatmap(z=z, x=cols, y=rows, text=text, texttemplate="%{text}", zmin=vmin, zmax=vmax,
                                 colorscale="Viridis", showscale=i == len(modes),
                                 colorbar={"title": {"text": label or value}},
                                 hovertemplate="%{y}, decoding τ %{x}: %{z:.3f}<extra></extra>"), 1, i)
        for r, k in enumerate(kd_taus, 1):  # outline the diagonal
            if f"{k:g}" in cols:
                c = cols.index(f"{k:g}")
                fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5,
                              line={"color": "white", "width": 2}, row=1, col=i)
    fig.update_xaxes(title_text="decoding temperature τ", type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(title=title or f"{label or value} over τ_kd x τ (★ best τ_kd per column, ≈ its interval "
                                     "overlaps the best's, □ τ_kd = τ)")
    return fig


def tau_curves(table, value: str, group: str = "draft", title: str | None = None, label: str | None = None,
               error: tuple[str, str] | None = None, reference: float | None = None,
               dash: str | None = None) -> go.Figure:
    """``value`` against the decoding temperature ``tau``, one line per ``group``.

    Args:
        table: rows with ``tau``, ``group`` and ``value`` (a pandas DataFrame).
        error: optional (low column, high column) drawn as an error band per point.
        reference: a horizontal line (for example 1.0 for a speedup).
        dash: optional column whose values get a line style each (for example the prompt
            set: in domain solid, out of domain dashed).
    """
    fig = go.Figure()
    styles = ("solid", "dash", "dot", "dashdot", "longdash")
    dashes = {v: styles[i % len(styles)] for i, v in enumerate(dict.fromkeys(table[dash]))} if dash else {}
    for name, g in table.sort_values("tau").groupby(group, sort=False):
        err = None
        if error:
            err = {"type": "data", "symmetric": False, "array": (g[error[1]] - g[value]).tolist(),
                   "arrayminus": (g[value] - g[error[0]]).tolist(), "thickness": 1}
        line = {"dash": dashes[g[dash].iloc[0]]} if dash else None
        fig.add_trace(go.Scatter(x=g["tau"], y=g[value], mode="lines+markers", name=str(name), error_y=err,
                                 line=line))
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dot", line_color="grey")
    fig.update_layout(title=title or f"{label or value} against τ", xaxis_title="decoding temperature τ",
                      yaxis_title=label or value, legend_title_text=group)
    return fig


def error_bars(values, bounds):
    """Plotly error bars from (low, high) sequences around ``values``, or None."""
    if bounds is None:
        return None
    low, high = ([float(v) for v in b] for b in bounds)
    return {"type": "data", "symmetric": False, "array": [h - v for v, h in zip(values, high)],
            "arrayminus": [v - lo for v, lo in zip(values, low)], "thickness": 1}


def agreement(x, y, labels, x_title: str, y_title: str, title: str | None = None, y_err=None,
              x_err=None) -> go.Figure:
    """One measurement against another, with the line y = x; ``y_err``/``x_err`` are
    optional (low, high) interval bounds of each point."""
    x, y = [float(v) for v in x], [float(v) for v in y]
    lo, hi = min(x + y), max(x + y)
    fig = go.Figure(go.Scatter(x=x, y=y, mode="markers", text=list(labels), name="cells",
                               error_y=error_bars(y, y_err), error_x=error_bars(x, x_err),
                               hovertemplate="%{text}: %{x:.3f}, %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                             line={"dash": "dot", "color": "grey"}))
    fig.update_layout(title=title or f"{y_title} against {x_title}", xaxis_title=x_title, yaxis_title=y_title)
    return fig
