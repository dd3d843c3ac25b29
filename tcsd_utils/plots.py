"""Plotly figures of the study, one function per figure, each returning a `go.Figure`.

Ouyang et al. 2024 ("Temperature-Centric Investigation of Speculative Decoding with
Knowledge Distillation", arXiv 2410.10141) argue about how the decoding temperature
``tau`` reshapes the target distribution ``p`` and the draft distribution ``q``, and so
the acceptance rate ``alpha`` of speculative decoding (Leviathan et al. 2023, arXiv
2211.17192: ``alpha = E[sum_x min(p(x), q(x))]``). The figures here show those pieces:

- `next_token_distribution`: the top tokens of ``p`` at several ``tau``;
- `temperature_effect`: entropy ``H(p)`` and top-k mass vs ``tau``;
- `overlap_vs_tau`: expected ``alpha = sum min(p, q)`` vs ``tau``, one line per draft;
- `acceptance_trace`: accepted draft tokens per verification step of one run;
- `overlap_at_position`, `entropy_histogram`, `token_html`: the panels' figures.

The figures of the study's stages and results table (`loss_curves`, `alpha_bars`,
`grid_heatmaps`, `tau_curves`, `agreement`) are in `tcsd_utils.study_plots`; notebook
06's, beyond the paper, are in `tcsd_utils.beyond_plots`.

Titles and axes use the paper's symbols (τ, α, p, q; DESIGN.md). Every function only
draws: the numbers come from `tcsd_utils.temperature` and the decoders. Showing and saving
a figure (`use_notebook_renderer`, `show`, `save_figure`) is `tcsd_utils.render`'s job.
"""

from __future__ import annotations

import html
import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

__all__ = ["token_label", "next_token_distribution", "temperature_effect", "overlap_vs_tau", "overlap_at_position",
           "entropy_histogram", "token_html", "acceptance_trace", "PROBABILITY_RANGE"]

PROBABILITY_RANGE = [0, 1.02]  # a probability axis, a little above 1 so that points at 1 show whole


def token_label(labels, token_id: int) -> str:
    """A readable, one-line label of a token id.

    Args:
        labels: a tokenizer (anything with ``decode``), a sequence of strings indexed by
            token id, a callable ``id -> str``, or ``None`` (the id itself).
        token_id: the token id.

    Returns:
        The token's text with a space shown as ``␣`` and a newline as ``↵``.
    """
    token_id = int(token_id)
    if labels is None:
        text = f"#{token_id}"
    elif hasattr(labels, "decode"):
        text = labels.decode([token_id])
    elif callable(labels):
        text = labels(token_id)
    else:
        text = labels[token_id]
    text = str(text).replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
    return text if text else f"#{token_id}"


def _unique_labels(labels, ids) -> list[str]:
    """Labels of ``ids``; a label two ids share gets its id appended (bars must not merge)."""
    texts = [token_label(labels, i) for i in ids]
    return [f"{t} (#{i})" if texts.count(t) > 1 else t for t, i in zip(texts, ids)]


def _tau_name(tau: float) -> str:
    return f"τ = {float(tau):g}" + (" (greedy)" if float(tau) == 0.0 else "")


def _up_to(tallest: float) -> list[float]:
    """A probability axis from 0 to 10% above the tallest bar (at most 1), so that a flat
    distribution still fills the plot."""
    return [0, min(1.0, 1.1 * tallest) if tallest > 0 else 1.0]


def next_token_distribution(p_by_tau: Mapping[float, "object"], labels=None, top: int = 15,
                            title: str | None = None, reference: Mapping[float, "object"] | None = None
                            ) -> go.Figure:
    """Grouped bars of the most likely next tokens under ``p`` at each temperature.

    For ``tau > 0`` the ranking of tokens is the ranking of the logits, the same at every
    ``tau``; only the heights change (flatter as ``tau`` grows, one-hot at ``tau = 0``).
    Tokens are ranked by their summed probability over the given ``tau``.

    Args:
        p_by_tau: ``{tau: p}`` with ``p`` a `torch.Tensor` of shape ``(vocab,)`` (one
            position of one prompt), for example ``probs(logits, tau)``.
        labels: how to name tokens; see `token_label` (a tokenizer works).
        top: how many tokens to show.
        title: the figure title; a default names ``p`` and the ``τ`` shown.
        reference: ``{tau: p}`` drawn as faint outlined bars behind the others (the slider
            of notebook 01 keeps ``τ = 1``, the model's own distribution, there); the
            tokens are still ranked by ``p_by_tau``.

    Returns:
        A `go.Figure` with one bar trace per ``tau``, the reference traces first. The
        axis runs from 0 to a little above the tallest bar, so a flat distribution at high
        tau still fills the plot (the slider's "log y" toggle re-draws it on a log axis).
    """
    if not p_by_tau:
        raise ValueError("p_by_tau is empty: give at least one {tau: p}")
    taus = sorted(p_by_tau)
    stacked = torch.stack([torch.as_tensor(p_by_tau[t]).float().reshape(-1) for t in taus])  # (n_tau, vocab)
    ids = stacked.sum(0).topk(min(top, stacked.shape[1])).indices.tolist()
    names = _unique_labels(labels, ids)
    fig = go.Figure()
    ref = {t: torch.as_tensor(p).float().reshape(-1)[ids] for t, p in sorted((reference or {}).items())}
    for t, row in ref.items():
        fig.add_trace(go.Bar(x=names, y=row.tolist(), name=f"{_tau_name(t)} (reference)",
                             marker=dict(color="rgba(0,0,0,0)", line=dict(color="rgba(90,90,90,0.6)", width=1.5)),
                             hovertemplate="%{x}: p = %{y:.3f}<extra>" + _tau_name(t) + "</extra>"))
    for t, row in zip(taus, stacked):
        fig.add_trace(go.Bar(x=names, y=row[ids].tolist(), name=_tau_name(t),
                             hovertemplate="%{x}: p = %{y:.3f}<extra>" + _tau_name(t) + "</extra>"))
    shown = ", ".join(f"{t:.2f}" for t in taus)
    fig.update_layout(title=title or f"Next-token distribution p at τ = {shown}: top {len(ids)} tokens",
                      barmode="overlay" if ref and len(taus) == 1 else "group", xaxis_title="token x",
                      yaxis_title="p(x)", legend_title_text="temperature")
    fig.update_yaxes(range=_up_to(max([float(stacked[:, ids].max())] + [float(r.max()) for r in ref.values()])))
    return fig


def overlap_at_position(p, q, labels=None, top: int = 12, tau: float | None = None,
                        draft: str = "draft", title: str | None = None) -> go.Figure:
    """p and q at one position side by side, with min(p, q) shaded behind them.

    The shaded area summed over the whole vocabulary is this position's acceptance
    probability, alpha = sum_x min(p(x), q(x)) (Leviathan et al. 2023, Theorem 3.5): what the
    draft's proposal and the target's distribution share. The title prints it.

    Args:
        p, q: `torch.Tensor` of shape ``(vocab,)``: the target's and the draft's distributions
            at the same tau (``temperature.probs``).
        labels: how to name tokens; see `token_label`.
        top: how many tokens to show: those with the largest p + q.
        tau: the temperature, for the title.
        draft: the draft's name, for the legend and the title.

    Returns:
        A `go.Figure`: traces ``min(p, q)`` (wide, shaded), ``p (target)`` and ``q (<draft>)``.
    """
    p, q = torch.as_tensor(p).float().reshape(-1), torch.as_tensor(q).float().reshape(-1)
    if p.shape != q.shape:
        raise ValueError(f"p and q must cover the same vocabulary, got {tuple(p.shape)} and {tuple(q.shape)}")
    both = torch.minimum(p, q)
    alpha = float(both.sum())
    ids = (p + q).topk(min(top, p.numel())).indices.tolist()
    names = _unique_labels(labels, ids)
    fig = go.Figure([
        go.Bar(x=names, y=both[ids].tolist(), name="min(p, q): accepted mass", width=0.9,
               marker=dict(color="rgba(44,160,44,0.25)", line=dict(width=0)),
               hovertemplate="%{x}: min(p, q) = %{y:.3f}<extra></extra>"),
        go.Bar(x=names, y=p[ids].tolist(), name="p (target)", width=0.4, offset=-0.4,
               hovertemplate="%{x}: p = %{y:.3f}<extra></extra>"),
        go.Bar(x=names, y=q[ids].tolist(), name=f"q ({draft})", width=0.4, offset=0.0,
               hovertemplate="%{x}: q = %{y:.3f}<extra></extra>"),
    ])
    at = "" if tau is None else f" at τ = {float(tau):.2f}"
    fig.update_layout(title=title or f"α = Σ min(p, q) = {alpha:.3f}{at}, {draft}",
                      barmode="overlay", xaxis_title="token x", yaxis_title="probability",
                      legend_title_text="")
    fig.update_yaxes(range=_up_to(float(torch.maximum(p[ids], q[ids]).max())))
    return fig


def entropy_histogram(h_p, h_q, tau: float | None = None, draft: str = "draft", vocab: int | None = None,
                      bins: int = 30) -> go.Figure:
    """Histograms of the per-position entropy of the target's p and a draft's q, in nats.

    Args:
        h_p, h_q: entropies at the same positions (``temperature.entropy``), any shape.
        tau: the temperature, for the title.
        draft: the draft's name.
        vocab: the vocabulary size: the axis ends at ln(vocab), the uniform distribution.
        bins: histogram bins over that axis.

    Returns:
        A `go.Figure` with the two histograms overlaid and each mean marked.
    """
    h_p, h_q = (torch.as_tensor(h).float().reshape(-1) for h in (h_p, h_q))
    top = math.log(vocab) if vocab else float(max(h_p.max(), h_q.max(), 1e-3))
    xbins = dict(start=0.0, end=top, size=top / bins)
    fig = go.Figure([go.Histogram(x=h_p.tolist(), name="H(p) target", opacity=0.55, xbins=xbins),
                     go.Histogram(x=h_q.tolist(), name=f"H(q) {draft}", opacity=0.55, xbins=xbins)])
    for h, dash in ((h_p, "solid"), (h_q, "dot")):
        fig.add_vline(x=float(h.mean()), line_dash=dash, line_color="black")
    at = "" if tau is None else f" at τ = {float(tau):.2f}"
    fig.update_layout(title=f"Entropy per position{at}: mean H(p) {float(h_p.mean()):.2f}, "
                            f"H(q) {float(h_q.mean()):.2f} nats ({draft})",
                      barmode="overlay", xaxis_title="entropy (nats)", yaxis_title="positions",
                      xaxis_range=[0, top])
    return fig


TOKEN_COLOURS = {"draft": "#c7e9c0", "resampled": "#fcbba1", "bonus": "#deebf7"}  # accepted, rejected, free


def token_html(pieces: Sequence[str], sources: Sequence[str]) -> str:
    """A speculative run's text with each token coloured by where it came from
    (`speculative.token_sources`): the draft's accepted tokens green, the target's token after
    a rejection red, the target's bonus token after a fully accepted step blue."""
    if len(pieces) != len(sources):
        raise ValueError(f"{len(pieces)} token texts but {len(sources)} sources")
    spans = [f'<span style="background:{TOKEN_COLOURS[s]}" title="{s}">{html.escape(t)}</span>'
             for t, s in zip(pieces, sources)]
    legend = " ".join(f'<span style="background:{c}">&nbsp;{n}&nbsp;</span>' for n, c in
                      (("accepted draft token", TOKEN_COLOURS["draft"]),
                       ("target's token after a rejection", TOKEN_COLOURS["resampled"]),
                       ("target's bonus token", TOKEN_COLOURS["bonus"])))
    return (f'<div style="white-space:pre-wrap;font-family:monospace;line-height:1.6">{"".join(spans)}</div>'
            f'<div style="margin-top:4px;font-size:90%">{legend}</div>')


def _mean_and_spread(values) -> tuple[list[float], list[float] | None]:
    """Mean over rows and standard deviation for a 2-D ``(n, n_tau)`` input; 1-D as is."""
    if hasattr(values, "detach"):  # a torch.Tensor, possibly on a GPU
        values = values.detach().float().cpu().numpy()
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        return arr.tolist(), None
    if arr.ndim != 2:
        raise ValueError(f"expected shape (n_tau,) or (n, n_tau), got {arr.shape}")
    return arr.mean(0).tolist(), arr.std(0).tolist()


def temperature_effect(taus: Sequence[float], entropies, top_mass, k: int = 10,
                       title: str | None = None) -> go.Figure:
    """Entropy ``H(p)`` and top-k mass of ``p`` against ``tau``, side by side.

    Args:
        taus: the temperatures, shape ``(n_tau,)``.
        entropies: ``H(p)`` in nats, shape ``(n_tau,)``, or ``(n, n_tau)`` for ``n``
            prompts (drawn as mean with a standard-deviation bar).
        top_mass: probability of the ``k`` most likely tokens, same shape as ``entropies``.
        k: the ``k`` of the top-k mass (for the labels).
        title: the figure title.

    Returns:
        A `go.Figure` with two subplots and one line trace in each.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "entropy H(p) (nats)", f"top-{k} mass of p"))
    for col, values, name in [(1, entropies, "H(p)"), (2, top_mass, f"top-{k} mass")]:
        mean, spread = _mean_and_spread(values)
        if len(mean) != len(taus):
            raise ValueError(f"{name}: {len(mean)} values for {len(taus)} temperatures")
        fig.add_trace(go.Scatter(
            x=list(map(float, taus)), y=mean, mode="lines+markers", name=name,
            error_y=dict(type="data", array=spread, visible=spread is not None)),
            row=1, col=col)
        fig.update_xaxes(title_text="τ", row=1, col=col)
    fig.update_yaxes(title_text="H(p) [nats]", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text=f"Σ top-{k} p(x)", range=PROBABILITY_RANGE, row=1, col=2)
    fig.update_layout(title=title or "How τ reshapes the target distribution p", showlegend=False)
    return fig


def overlap_vs_tau(taus: Sequence[float], overlaps, label: str = "draft",
                   title: str | None = None) -> go.Figure:
    """Expected acceptance ``alpha = sum_x min(p(x), q(x))`` against ``tau``.

    Args:
        taus: the decoding temperatures, shape ``(n_tau,)``.
        overlaps: the overlap at each ``tau`` (shape ``(n_tau,)`` or ``(n, n_tau)``), or
            a dict ``{draft name: overlaps}`` for one line per draft.
        label: the line's name when ``overlaps`` is not a dict.
        title: the figure title.

    Returns:
        A `go.Figure` with one line trace per draft.
    """
    series = overlaps if isinstance(overlaps, Mapping) else {label: overlaps}
    fig = go.Figure()
    for name, values in series.items():
        mean, spread = _mean_and_spread(values)
        if len(mean) != len(taus):
            raise ValueError(f"{name}: {len(mean)} values for {len(taus)} temperatures")
        fig.add_trace(go.Scatter(x=list(map(float, taus)), y=mean, mode="lines+markers", name=name,
                                 error_y=dict(type="data", array=spread, visible=spread is not None)))
    fig.update_layout(title=title or "Expected acceptance α = Σ min(p, q) vs τ",
                      xaxis_title="τ (decoding temperature of p and q)",
                      yaxis_title="α = E[Σ min(p, q)]", yaxis_range=PROBABILITY_RANGE,
                      legend_title_text="draft")
    return fig


def acceptance_trace(accepted_per_step: Sequence[int], k: int, title: str | None = None) -> go.Figure:
    """Accepted draft tokens ``n`` at each verification step of one speculative run.

    Each step commits ``n + 1`` tokens (the accepted prefix and one token from ``p``);
    ``n == k`` means the whole draft passed. A dashed line marks the mean of ``n``.

    Args:
        accepted_per_step: ``n`` per step (``DecodeStats.accepted_per_step``).
        k: draft tokens proposed per step.
        title: the figure title.

    Returns:
        A `go.Figure` with one bar trace.
    """
    n = [int(v) for v in accepted_per_step]
    steps = list(range(1, len(n) + 1))
    colors = ["#2ca02c" if v >= k else "#1f77b4" for v in n]  # green: the whole draft passed; blue: a rejection
    fig = go.Figure(go.Bar(x=steps, y=n, marker_color=colors, name="accepted n",
                           hovertemplate="step %{x}: n = %{y}<extra></extra>"))
    if n:
        mean = sum(n) / len(n)
        fig.add_hline(y=mean, line_dash="dash", annotation_text=f"mean n = {mean:.2f}",
                      annotation_position="top left")
    drafted = max(1, len(n) * k)
    alpha = sum(n) / drafted if n else math.nan
    fig.update_layout(title=title or f"Accepted draft tokens per step (k = {k}, α ≈ {alpha:.2f})",
                      xaxis_title="verification step", yaxis_title="accepted n",
                      yaxis_range=[0, k + 0.5], bargap=0.15, showlegend=False)  # half a token above a full pass
    return fig
