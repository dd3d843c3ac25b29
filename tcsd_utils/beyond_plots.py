"""Notebook 06's figures, beyond the paper: one function per figure, each drawing the rows
of one `tcsd_utils.beyond` measurement and returning a `go.Figure`.

- `draft_temperature`: expected alpha and predicted gamma against the draft's own tau_q;
- `step_cost_curves`: where a speculative step's time goes against tau, beside alpha;
- `acceptance_by_token`: alpha against a token's length or id;
- `schedule_comparison`: drafts under a temperature schedule.

They use the paper's symbols and `tcsd_utils.plots`' conventions (its probability axis and
interval bars); showing and saving is `tcsd_utils.render`'s job, through ``plots``.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import PROBABILITY_RANGE
from .study_plots import error_bars

__all__ = ["draft_temperature", "step_cost_curves", "acceptance_by_token", "schedule_comparison"]


def _band(rows, value: str):
    """Asymmetric error bars from ``<value>_lo`` / ``<value>_hi`` of each row."""
    return error_bars([r[value] for r in rows], ([r[f"{value}_lo"] for r in rows], [r[f"{value}_hi"] for r in rows]))


def _records(table) -> list[dict]:
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


def draft_temperature(rows, title: str | None = None) -> go.Figure:
    """Expected alpha and Leviathan's predicted speedup against the draft's own temperature
    tau_q, one line per target tau; the matched point tau_q = tau is a star.

    Args:
        rows: `beyond.draft_tau_sweep` rows (``tau``, ``draft_tau``, ``matched``, ``alpha``,
            ``gamma_predicted`` and their ``_lo``/``_hi``), one or several target taus.

    Returns:
        A `go.Figure` with two panels and, per target tau, one line in each panel.
    """
    rows = _records(rows)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("expected α = E[Σ min(p_τ, q_τq)]",
                                                        "predicted γ (Leviathan)"))
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
    for i, tau in enumerate(sorted({r["tau"] for r in rows})):
        mine = sorted((r for r in rows if r["tau"] == tau), key=lambda r: r["draft_tau"])
        for col, value in ((1, "alpha"), (2, "gamma_predicted")):
            fig.add_trace(go.Scatter(
                x=[r["draft_tau"] for r in mine], y=[r[value] for r in mine], mode="lines+markers",
                name=f"target τ = {tau:g}", legendgroup=str(tau), showlegend=col == 1, error_y=_band(mine, value),
                line={"color": colours[i % len(colours)]},
                marker={"symbol": ["star" if r["matched"] else "circle" for r in mine],
                        "size": [14 if r["matched"] else 7 for r in mine]}), 1, col)
        fig.update_xaxes(title_text="draft temperature τ_q", row=1, col=1)
    fig.update_xaxes(title_text="draft temperature τ_q", row=1, col=2)
    fig.update_yaxes(title_text="expected α", row=1, col=1)
    fig.update_yaxes(title_text="predicted γ", row=1, col=2)
    fig.update_layout(title=title or "The draft's own temperature τ_q at a fixed target τ (★ τ_q = τ)",
                      legend_title_text="")
    return fig


def step_cost_curves(rows, title: str | None = None) -> go.Figure:
    """Where a speculative step's time goes against tau, beside the acceptance rate.

    Args:
        rows: `beyond.step_costs` rows.

    Returns:
        A `go.Figure`: left, ms per step (whole step; the target's forward with the sampling
        criterion; the criterion alone) and ms per draft token; right, alpha with its
        interval and the tokens a step commits.
    """
    rows = sorted(_records(rows), key=lambda r: r["tau"])
    taus = [r["tau"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("time (ms)", "acceptance"))
    for key, name in (("ms_per_step", "whole step"), ("ms_target_per_step", "target forward + criterion"),
                      ("ms_verify_per_step", "sampling criterion alone"), ("ms_per_draft_token", "per draft token")):
        fig.add_trace(go.Scatter(x=taus, y=[r[key] for r in rows], mode="lines+markers", name=name), 1, 1)
    fig.add_trace(go.Scatter(x=taus, y=[r["alpha"] for r in rows], mode="lines+markers", name="α (accepted / tested)",
                             error_y=_band(rows, "alpha")), 1, 2)
    fig.add_trace(go.Scatter(x=taus, y=[r["tokens_per_step"] - 1 for r in rows], mode="lines+markers",
                             name="accepted draft tokens per step", line={"dash": "dot"}), 1, 2)
    fig.update_xaxes(title_text="decoding temperature τ")
    fig.update_yaxes(title_text="ms", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(title=title or "Why is a high τ slow? The cost of a step against the acceptance rate")
    return fig


def acceptance_by_token(binned, feature: str, title: str | None = None) -> go.Figure:
    """Mean acceptance (overlap) of positions binned by a property of the target's token
    there, one line per prompt set.

    Args:
        binned: `beyond.acceptance_by_bin` rows (``prompt_set``, ``bin``, ``x``, ``alpha``,
            ``alpha_lo``, ``alpha_hi``, ``positions``).
        feature: ``"chars"`` (token length in characters) or ``"token_id"`` (the id, a
            frequency rank: drawn on a log axis).

    Returns:
        A `go.Figure` with one line per prompt set.
    """
    rows = _records(binned)
    fig = go.Figure()
    for name in dict.fromkeys(r["prompt_set"] for r in rows):
        mine = sorted((r for r in rows if r["prompt_set"] == name), key=lambda r: r["x"])
        fig.add_trace(go.Scatter(x=[r["x"] for r in mine], y=[r["alpha"] for r in mine], mode="lines+markers",
                                 name=str(name), error_y=_band(mine, "alpha"), text=[r["bin"] for r in mine],
                                 customdata=[r["positions"] for r in mine],
                                 hovertemplate="bin %{text}: α %{y:.3f} over %{customdata} positions<extra></extra>"))
    axis = "token length (characters)" if feature == "chars" else "token id (a frequency rank: merge order)"
    fig.update_layout(title=title or f"Acceptance against {axis}", xaxis_title=axis,
                      yaxis_title="mean Σ min(p, q) at the position", yaxis_range=PROBABILITY_RANGE,
                      legend_title_text="prompts", xaxis_type="log" if feature == "token_id" else "linear")
    return fig


def schedule_comparison(rows, schedule, n_tokens: int, title: str | None = None) -> go.Figure:
    """Drafts under a temperature schedule: the schedule itself, and each draft's
    acceptance rate with its interval (the speedup printed on its bar).

    Args:
        rows: `beyond.schedule_runs` rows.
        schedule: a callable of the number of generated tokens (`temperature.Anneal`).
        n_tokens: how many tokens the runs generated (the schedule's x axis).

    Returns:
        A `go.Figure` with the schedule (left) and one bar per draft (right).
    """
    rows = _records(rows)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("τ(n)", "α under the schedule"), column_widths=[0.35, 0.65])
    ns = list(range(n_tokens))
    fig.add_trace(go.Scatter(x=ns, y=[float(schedule(n)) for n in ns], mode="lines", name="τ(n)",
                             showlegend=False), 1, 1)
    fig.add_trace(go.Bar(x=[r["draft"] for r in rows], y=[r["alpha"] for r in rows], error_y=_band(rows, "alpha"),
                         text=[f"γ {r['gamma_raw']:.2f}" for r in rows], textposition="outside", showlegend=False),
                  1, 2)
    fig.update_xaxes(title_text="generated tokens n", row=1, col=1)
    fig.update_yaxes(title_text="τ", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="α (accepted / tested)", range=PROBABILITY_RANGE, row=1, col=2)
    fig.update_layout(title=title or f"Drafts under the schedule {schedule}")
    return fig
