"""ipywidgets panels that wrap the figure functions of `tcsd_utils.plots`.

For exploring Ouyang et al. 2024 (arXiv 2410.10141) in JupyterLab: move the temperature
``tau`` and watch a figure redraw. A panel only wraps a function ``tau -> go.Figure``
(STYLE.md item 7); it computes nothing itself, and a notebook draws the same figure once
without widgets so that headless runs (papermill, nbval) show it too.

The figure goes into an `ipywidgets.Output` whose ``outputs`` are set directly to the
figure's display data (`render.mime_bundle`). That needs no frontend and no running
kernel, so building and redrawing a panel works headless and in tests. (plotly's own
``go.FigureWidget`` would need the ``anywidget`` package since plotly 6.)
"""

from __future__ import annotations

import traceback
from typing import Callable, Sequence

import ipywidgets as widgets

from .render import mime_bundle
from .temperature import check_tau

__all__ = ["Panel", "tau_slider"]


class Panel(widgets.VBox):
    """A `VBox` whose text form, what a notebook saved without widget state shows, tells
    the reader what to do instead of listing its children."""

    def __repr__(self) -> str:
        return "[an interactive panel: run this notebook in JupyterLab (Run > Run All Cells) to use it]"


_LAST: dict = {}  # a panel's key -> its controls' last values: re-running its cell keeps them
SLIDER_WIDTH = "520px"  # wide enough to place tau to 0.05 with a mouse (the default track is 124 px)


def tau_slider(figure_fn: Callable[[float], "object"], tau: float = 1.0, min: float = 0.0,
               max: float = 2.0, step: float = 0.05, description: str = "τ",
               log_toggle: bool = False, choices: Sequence[str] | None = None,
               choice_label: str = "draft", values: Sequence[float] | None = None,
               remember: bool = True) -> Panel:
    """A temperature slider above a figure that ``figure_fn(tau)`` redraws on release.

    ``figure_fn`` returns a `go.Figure`, or an HTML string (a panel of text, such as a
    grid cell's numbers and a coloured sample).

    Args:
        figure_fn: ``tau -> go.Figure``, usually a lambda around a `plots` function.
        tau: the starting temperature.
        min, max, step: the slider's range and step (``tau = 0`` is greedy).
        description: the slider's label.
        log_toggle: add a "log y" checkbox that redraws the figure with a logarithmic y axis.
        choices: add a drop-down of these names; ``figure_fn`` is then called as
            ``figure_fn(tau, choice)`` (the overlap explorer picks a draft with it).
        choice_label: the drop-down's label.
        values: only these temperatures (a grid's columns), in place of ``min``/``max``/``step``.
        remember: start from where the same panel (same ``figure_fn`` name, label and
            choices) was left in this kernel, so re-running its cell keeps the slider, the
            drop-down and the toggle; ``tau`` is only the first start.

    Returns:
        `Panel` (a ``VBox``): the controls, then an ``Output`` whose ``outputs`` hold the
        current figure's display data (``panel.children[-1]``); ``panel.slider``,
        ``panel.log_y`` and ``panel.choice`` (None when absent) are the controls. An error
        in ``figure_fn`` is shown in the output area instead of being lost in the kernel log.
    """
    tau = check_tau(tau)
    key = (getattr(figure_fn, "__qualname__", ""), description, choice_label, tuple(choices or ()),
           tuple(values or ()), min, max) if remember else None
    last = _LAST.get(key, {}) if key else {}
    if values is not None:
        values = [check_tau(v) for v in values]
        if tau not in values:
            raise ValueError(f"tau={tau} is not one of the slider's values {values}")
        tau = last["tau"] if last.get("tau") in values else tau
        slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in values], value=tau, description=description,
                                         continuous_update=False, layout=widgets.Layout(width=SLIDER_WIDTH))
    else:
        if not min <= tau <= max:
            raise ValueError(f"tau={tau} outside the slider range [{min}, {max}]")
        tau = last["tau"] if min <= last.get("tau", -1.0) <= max else tau
        slider = widgets.FloatSlider(value=tau, min=min, max=max, step=step, description=description,
                                     continuous_update=False, readout_format=".2f",
                                     layout=widgets.Layout(width=SLIDER_WIDTH))
    log_y = widgets.Checkbox(value=False, description="log y", indent=False) if log_toggle else None
    if choices is not None and not list(choices):
        raise ValueError("choices is empty: give at least one name, or None for no drop-down")
    choice = widgets.Dropdown(options=list(choices), description=choice_label) if choices is not None else None
    if choice is not None and last.get("choice") in list(choices):
        choice.value = last["choice"]
    if log_y is not None:
        log_y.value = bool(last.get("log_y", False))
    out = widgets.Output()

    def redraw(change=None):
        if key:
            _LAST[key] = {"tau": slider.value, "choice": choice.value if choice is not None else None,
                          "log_y": log_y.value if log_y is not None else False}
        try:
            fig = figure_fn(slider.value) if choice is None else figure_fn(slider.value, choice.value)
            if isinstance(fig, str):  # a panel of HTML
                data = {"text/html": fig, "text/plain": "(HTML: run the notebook to see it)"}
            else:
                if log_y is not None and log_y.value:
                    fig.update_yaxes(type="log", range=None, autorange=True)
                data = mime_bundle(fig)
            out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
        except Exception:  # show the error where the figure would be
            out.outputs = ({"output_type": "stream", "name": "stderr",
                            "text": traceback.format_exc()},)

    row = [slider]
    for control in (log_y, choice):
        if control is not None:
            row.append(control)
    for control in row:
        control.observe(redraw, names="value")
    redraw()
    panel = Panel([widgets.HBox(row) if len(row) > 1 else slider, out])
    panel.slider, panel.log_y, panel.choice = slider, log_y, choice
    return panel
